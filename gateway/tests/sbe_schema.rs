//! The SBE schemas in `docs/` against the codecs, byte for byte.
//!
//! `docs/cascade-sbe.xml` (binary order entry, schema 1) and `docs/cascade-md-sbe.xml`
//! (market data, schema 2) are read with a small string scanner (std only, no XML
//! crate). For every `<sbe:message>` the test checks four things:
//!
//! - its blockLength equals `binary::block_len` (order entry) or what the feed's
//!   encoder writes (market data);
//! - its fields, at their explicit offsets, stay inside the block, do not overlap, and
//!   describe every byte (padding is declared as `pad…` fields);
//! - a message encoded by the gateway's own code, with known and mostly distinct field
//!   values, has each value at the schema's offset and zero padding;
//! - the frame has a correct SOFH (length u32 big-endian over the whole frame, encoding
//!   type 0x5BE0 big-endian) and SBE header (blockLength, templateId, schemaId and
//!   version, little-endian).
//!
//! Order-entry samples are also decoded back (`decode(encode(m)) == m`).

use std::collections::{BTreeSet, HashMap};

use cascade_gateway::binary::frame::{split, Split, HEADER, SBE_LE};
use cascade_gateway::binary::{
    block_len, template, ClientMsg, ExecMsg, ServerMsg, SCHEMA, VERSION,
};
use cascade_gateway::core::{AccountId, Event, EventKind, MarketId, OrderId, Price, Qty, Side};
use cascade_gateway::marketdata::{self, template as md, Hub};
use cascade_gateway::server::request::MarketStats;

const ORDER_ENTRY_XML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cascade-sbe.xml");
const MARKET_DATA_XML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cascade-md-sbe.xml");

/// 32 characters: fills `Username` exactly.
const FULL_USERNAME: &str = "abcdefghijklmnopqrstuvwxyz012345";
/// 64 characters: fills `Password` exactly.
const FULL_PASSWORD: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// ---- the schema, as far as the checks need it ----

/// One `<field>`, its size resolved through `<types>`.
#[derive(Debug)]
struct Field {
    name: String,
    id: u32,
    offset: usize,
    size: usize,
}

/// One `<sbe:message>`.
#[derive(Debug)]
struct Message {
    name: String,
    id: u16,
    block_length: usize,
    fields: Vec<Field>,
}

/// One `<sbe:messageSchema>`.
#[derive(Debug)]
struct Schema {
    id: u16,
    version: u16,
    byte_order: String,
    messages: Vec<Message>,
}

impl Schema {
    fn message(&self, id: u16) -> &Message {
        self.messages
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("schema {} declares no template {id}", self.id))
    }

    fn ids(&self) -> BTreeSet<u16> {
        self.messages.iter().map(|m| m.id).collect()
    }
}

/// One XML tag.
#[derive(Debug)]
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
    /// `</name>`.
    closing: bool,
    /// `<name ... />`.
    empty: bool,
}

impl Tag {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn req(&self, key: &str) -> &str {
        self.attr(key)
            .unwrap_or_else(|| panic!("<{}> has no attribute {key}", self.name))
    }

    fn num<T: std::str::FromStr>(&self, key: &str) -> T {
        let v = self.req(key);
        v.parse()
            .unwrap_or_else(|_| panic!("<{} {key}=\"{v}\">: not a number", self.name))
    }
}

/// The tags of `xml` in document order; comments, the XML declaration and text
/// between tags are skipped. Attribute values must not contain `>`.
fn tags(xml: &str) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        if let Some(comment) = after.strip_prefix("!--") {
            let end = comment.find("-->").expect("unterminated comment");
            rest = &comment[end + 3..];
            continue;
        }
        let end = after.find('>').expect("unterminated tag");
        let inner = &after[..end];
        rest = &after[end + 1..];
        if inner.starts_with('?') || inner.starts_with('!') {
            continue;
        }
        let (closing, inner) = inner
            .strip_prefix('/')
            .map_or((false, inner), |i| (true, i));
        let (empty, inner) = inner
            .strip_suffix('/')
            .map_or((false, inner), |i| (true, i));
        let inner = inner.trim();
        let name_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
        out.push(Tag {
            name: inner[..name_end].to_string(),
            attrs: attributes(&inner[name_end..]),
            closing,
            empty,
        });
    }
    out
}

/// `key="value"` pairs (either quote).
fn attributes(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut s = text;
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return out;
        }
        let eq = s
            .find('=')
            .unwrap_or_else(|| panic!("attribute without a value: {s}"));
        let key = s[..eq].trim().to_string();
        let value = s[eq + 1..].trim_start();
        let quote = value
            .chars()
            .next()
            .filter(|&c| c == '"' || c == '\'')
            .unwrap_or_else(|| panic!("attribute {key} is not quoted"));
        let value = &value[quote.len_utf8()..];
        let close = value
            .find(quote)
            .unwrap_or_else(|| panic!("attribute {key} is not terminated"));
        out.push((key, value[..close].to_string()));
        s = &value[close + quote.len_utf8()..];
    }
}

/// Bytes of an SBE primitive type.
fn primitive_size(p: &str) -> Option<usize> {
    Some(match p {
        "char" | "int8" | "uint8" => 1,
        "int16" | "uint16" => 2,
        "int32" | "uint32" | "float" => 4,
        "int64" | "uint64" | "double" => 8,
        _ => return None,
    })
}

/// Reads the schema at `path`: its id, version, byte order, and every message with
/// its fields' offsets and sizes.
fn parse_schema(path: &str) -> Schema {
    let xml = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut schema: Option<Schema> = None;
    let mut sizes: HashMap<String, usize> = HashMap::new();
    let mut in_composite = false;
    let mut message: Option<Message> = None;
    for t in tags(&xml) {
        match (t.name.as_str(), t.closing) {
            ("sbe:messageSchema", false) => {
                schema = Some(Schema {
                    id: t.num("id"),
                    version: t.num("version"),
                    byte_order: t.req("byteOrder").to_string(),
                    messages: Vec::new(),
                });
            }
            ("composite", false) => in_composite = !t.empty,
            ("composite", true) => in_composite = false,
            ("type", false) if !in_composite => {
                let primitive = t.req("primitiveType");
                let size = primitive_size(primitive).unwrap_or_else(|| {
                    panic!("type {}: unknown primitive {primitive}", t.req("name"))
                });
                let length: usize = t
                    .attr("length")
                    .map_or(1, |l| l.parse().expect("type length"));
                sizes.insert(t.req("name").to_string(), size * length);
            }
            ("enum" | "set", false) => {
                let encoding = t.req("encodingType");
                let size = primitive_size(encoding).unwrap_or_else(|| {
                    panic!("{} {}: unknown encoding {encoding}", t.name, t.req("name"))
                });
                sizes.insert(t.req("name").to_string(), size);
            }
            ("sbe:message", false) => {
                assert!(message.is_none(), "<sbe:message> inside another");
                message = Some(Message {
                    name: t.req("name").to_string(),
                    id: t.num("id"),
                    block_length: t.num("blockLength"),
                    fields: Vec::new(),
                });
            }
            ("sbe:message", true) => {
                let m = message
                    .take()
                    .expect("</sbe:message> without <sbe:message>");
                schema
                    .as_mut()
                    .expect("<sbe:message> outside <sbe:messageSchema>")
                    .messages
                    .push(m);
            }
            ("field", false) => {
                let m = message.as_mut().expect("<field> outside <sbe:message>");
                let ty = t.req("type");
                let size = sizes
                    .get(ty)
                    .copied()
                    .or_else(|| primitive_size(ty))
                    .unwrap_or_else(|| panic!("{}.{}: unknown type {ty}", m.name, t.req("name")));
                m.fields.push(Field {
                    name: t.req("name").to_string(),
                    id: t.num("id"),
                    offset: t.num("offset"),
                    size,
                });
            }
            _ => {}
        }
    }
    assert!(message.is_none(), "unterminated <sbe:message>");
    schema.unwrap_or_else(|| panic!("{path}: no <sbe:messageSchema>"))
}

/// Every message: unique template id, unique field names and ids, and fields that
/// tile the block exactly (no overlap, no undescribed byte, nothing past the end).
fn check_layout(schema: &Schema) {
    let mut ids = BTreeSet::new();
    for m in &schema.messages {
        assert!(ids.insert(m.id), "template {} is declared twice", m.id);
        let mut fields: Vec<&Field> = m.fields.iter().collect();
        fields.sort_by_key(|f| f.offset);
        let mut names = BTreeSet::new();
        let mut field_ids = BTreeSet::new();
        let mut end = 0;
        for f in fields {
            assert!(
                names.insert(f.name.as_str()),
                "{}: field {} is declared twice",
                m.name,
                f.name
            );
            assert!(
                field_ids.insert(f.id),
                "{}: field id {} is used twice",
                m.name,
                f.id
            );
            assert!(f.size > 0, "{}.{} has no size", m.name, f.name);
            assert!(
                f.offset >= end,
                "{}.{} at offset {} overlaps the field before it, which ends at {end}",
                m.name,
                f.name,
                f.offset
            );
            assert_eq!(
                f.offset, end,
                "{}: bytes {end}..{} are not described (declare them as padding)",
                m.name, f.offset
            );
            end = f.offset + f.size;
            assert!(
                end <= m.block_length,
                "{}.{} ends at {end}, past blockLength {}",
                m.name,
                f.name,
                m.block_length
            );
        }
        assert_eq!(
            end, m.block_length,
            "{}: bytes {end}.. of the block are not described",
            m.name
        );
    }
}

// ---- frames and values ----

/// An expected field value.
#[derive(Clone, Copy, Debug)]
enum V {
    /// An unsigned integer, enum or set of the field's size.
    U(u64),
    /// An int64.
    I(i64),
    /// NUL-padded text.
    S(&'static str),
}

/// Checks a frame's SOFH and SBE header against the message `m` of `schema`; returns
/// its block.
fn block<'a>(frame: &'a [u8], schema: &Schema, m: &Message, label: &str) -> &'a [u8] {
    assert_eq!(
        frame.len(),
        HEADER + m.block_length,
        "{label}: frame length"
    );
    let sofh = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    assert_eq!(
        usize::try_from(sofh).ok(),
        Some(frame.len()),
        "{label}: SOFH message length (u32 big-endian, whole frame)"
    );
    assert_eq!(
        &frame[4..6],
        &[0x5B, 0xE0],
        "{label}: SOFH encoding type (big-endian)"
    );
    assert_eq!(
        u16::from_be_bytes([frame[4], frame[5]]),
        SBE_LE,
        "{label}: SBE_LE"
    );
    let header = |at: usize| u16::from_le_bytes([frame[at], frame[at + 1]]);
    assert_eq!(
        usize::from(header(6)),
        m.block_length,
        "{label}: blockLength"
    );
    assert_eq!(header(8), m.id, "{label}: templateId");
    assert_eq!(header(10), schema.id, "{label}: schemaId");
    assert_eq!(header(12), schema.version, "{label}: version");
    &frame[HEADER..]
}

/// Little-endian unsigned integer of up to 8 bytes.
fn le(bytes: &[u8]) -> u64 {
    assert!(bytes.len() <= 8, "{} bytes do not fit a u64", bytes.len());
    bytes
        .iter()
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// Every field of `m` in `block` holds its value in `values`, and padding is zero.
/// Every name in `values` is a field of `m`, and every non-padding field has a value.
fn check_fields(m: &Message, block: &[u8], values: &[(&str, V)], label: &str) {
    for (name, _) in values {
        assert!(
            m.fields.iter().any(|f| f.name == *name),
            "{label}: the schema's {} has no field {name}",
            m.name
        );
    }
    for f in &m.fields {
        let bytes = &block[f.offset..f.offset + f.size];
        if f.name.starts_with("pad") {
            assert!(
                bytes.iter().all(|&b| b == 0),
                "{label}: padding {} is {bytes:?}",
                f.name
            );
            continue;
        }
        let Some(&(_, v)) = values.iter().find(|(n, _)| *n == f.name) else {
            panic!("{label}: no sample value for {}.{}", m.name, f.name);
        };
        let at = format!("{label}: {}.{} at offset {}", m.name, f.name, f.offset);
        match v {
            V::U(x) => assert_eq!(le(bytes), x, "{at}"),
            V::I(x) => {
                let b: [u8; 8] = bytes
                    .try_into()
                    .unwrap_or_else(|_| panic!("{at}: an int64 needs 8 bytes"));
                assert_eq!(i64::from_le_bytes(b), x, "{at}");
            }
            V::S(s) => {
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                assert_eq!(&bytes[..end], s.as_bytes(), "{at}");
                assert!(bytes[end..].iter().all(|&b| b == 0), "{at}: not NUL-padded");
            }
        }
    }
}

/// Splits a buffer of whole frames.
fn frames(buf: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        match split(rest, 1 << 16) {
            Split::Frame { len, .. } => {
                out.push(&rest[..len]);
                rest = &rest[len..];
            }
            other => panic!("not a whole frame: {other:?}"),
        }
    }
    out
}

// ---- order entry (schema 1) ----

/// A message encoded by the codec, the schema message it must match, and the values
/// its fields must hold.
struct Sample {
    name: &'static str,
    template: u16,
    label: String,
    bytes: Vec<u8>,
    values: Vec<(&'static str, V)>,
}

fn client(
    name: &'static str,
    template: u16,
    msg: &ClientMsg,
    values: Vec<(&'static str, V)>,
) -> Sample {
    let mut bytes = Vec::new();
    msg.encode(&mut bytes);
    let label = format!("{msg:?}");
    assert_eq!(
        ClientMsg::decode(template, &bytes[HEADER..]).as_ref(),
        Some(msg),
        "{label}: decode(encode(m)) is not m"
    );
    Sample {
        name,
        template,
        label,
        bytes,
        values,
    }
}

fn server(
    name: &'static str,
    template: u16,
    msg: &ServerMsg,
    values: Vec<(&'static str, V)>,
) -> Sample {
    let mut bytes = Vec::new();
    msg.encode(&mut bytes);
    let label = format!("{msg:?}");
    assert_eq!(
        ServerMsg::decode(template, &bytes[HEADER..]).as_ref(),
        Some(msg),
        "{label}: decode(encode(m)) is not m"
    );
    Sample {
        name,
        template,
        label,
        bytes,
        values,
    }
}

/// At least one sample of every order-entry template.
fn order_entry_samples() -> Vec<Sample> {
    use template as t;
    use V::{I, S, U};
    let fill = ExecMsg {
        seq: 0x0101_0202_0303_0404,
        order_id: 0x0505_0606_0707_0808,
        cl_ord_id: 0x1111_2222_3333_4444,
        orig_cl_ord_id: 0x5555_6666_7777_8888,
        account: 0x0A0B_0C0D,
        market: 0x0E0F_1011,
        exec_type: b'F',
        ord_status: b'1',
        side: 2,
        fill_kind: 1,
        liquidity: 2,
        reject_code: 0,
        cancel_reason: 0,
        price: 600_005,
        qty: 1_000,
        leaves: 400,
        cum: 600,
        last_px: 599_995,
        last_qty: 250,
        fee: -75,
    };
    // Every byte field distinct, so that two swapped offsets cannot pass.
    let distinct = ExecMsg {
        exec_type: 0x41,
        ord_status: 0x42,
        side: 0x43,
        fill_kind: 0x44,
        liquidity: 0x45,
        reject_code: 0x46,
        cancel_reason: 0x47,
        price: -0x0102_0304_0506_0708,
        qty: 0x1112_1314_1516_1718,
        leaves: 0x2122_2324_2526_2728,
        cum: 0x3132_3334_3536_3738,
        last_px: i64::MIN,
        last_qty: i64::MAX,
        fee: -1,
        ..fill
    };
    let exec_values = |e: &ExecMsg| {
        vec![
            ("seq", U(e.seq)),
            ("order_id", U(e.order_id)),
            ("cl_ord_id", U(e.cl_ord_id)),
            ("orig_cl_ord_id", U(e.orig_cl_ord_id)),
            ("account", U(u64::from(e.account))),
            ("market", U(u64::from(e.market))),
            ("exec_type", U(u64::from(e.exec_type))),
            ("ord_status", U(u64::from(e.ord_status))),
            ("side", U(u64::from(e.side))),
            ("fill_kind", U(u64::from(e.fill_kind))),
            ("liquidity", U(u64::from(e.liquidity))),
            ("reject_code", U(u64::from(e.reject_code))),
            ("cancel_reason", U(u64::from(e.cancel_reason))),
            ("price", I(e.price)),
            ("qty", I(e.qty)),
            ("leaves", I(e.leaves)),
            ("cum", I(e.cum)),
            ("last_px", I(e.last_px)),
            ("last_qty", I(e.last_qty)),
            ("fee", I(e.fee)),
        ]
    };
    vec![
        client(
            "Logon",
            t::LOGON,
            &ClientMsg::Logon {
                username: "ALICE".into(),
                password: "alice-demo".into(),
                next_seq: 0x0102_0304_0506_0708,
                heartbeat_ms: 30_000,
            },
            vec![
                ("username", S("ALICE")),
                ("password", S("alice-demo")),
                ("next_seq", U(0x0102_0304_0506_0708)),
                ("heartbeat_ms", U(30_000)),
            ],
        ),
        client(
            "Logon",
            t::LOGON,
            &ClientMsg::Logon {
                username: FULL_USERNAME.into(),
                password: FULL_PASSWORD.into(),
                next_seq: 0,
                heartbeat_ms: u32::MAX,
            },
            vec![
                ("username", S(FULL_USERNAME)),
                ("password", S(FULL_PASSWORD)),
                ("next_seq", U(0)),
                ("heartbeat_ms", U(u64::from(u32::MAX))),
            ],
        ),
        client(
            "NewOrder",
            t::NEW_ORDER,
            &ClientMsg::NewOrder {
                cl_ord_id: 0x0102_0304_0506_0708,
                market: 7,
                side: 2,
                ord_type: 4,
                tif: 3,
                flags: 2,
                stp: 3,
                price: 123,
                stop_px: -456,
                qty: 789,
            },
            vec![
                ("cl_ord_id", U(0x0102_0304_0506_0708)),
                ("market", U(7)),
                ("side", U(2)),
                ("ord_type", U(4)),
                ("tif", U(3)),
                ("flags", U(2)),
                ("stp", U(3)),
                ("price", I(123)),
                ("stop_px", I(-456)),
                ("qty", I(789)),
            ],
        ),
        client(
            "NewOrder",
            t::NEW_ORDER,
            &ClientMsg::NewOrder {
                cl_ord_id: u64::MAX - 1,
                market: 0x3132_3334,
                side: 0x21,
                ord_type: 0x22,
                tif: 0x23,
                flags: 0x24,
                stp: 0x25,
                price: -1_234_567_890_123,
                stop_px: 0x7E7D_7C7B_7A79_7877,
                qty: -9,
            },
            vec![
                ("cl_ord_id", U(u64::MAX - 1)),
                ("market", U(0x3132_3334)),
                ("side", U(0x21)),
                ("ord_type", U(0x22)),
                ("tif", U(0x23)),
                ("flags", U(0x24)),
                ("stp", U(0x25)),
                ("price", I(-1_234_567_890_123)),
                ("stop_px", I(0x7E7D_7C7B_7A79_7877)),
                ("qty", I(-9)),
            ],
        ),
        client(
            "Cancel",
            t::CANCEL,
            &ClientMsg::Cancel {
                cl_ord_id: 0x0102_0304_0506_0708,
                orig_cl_ord_id: 0x1112_1314_1516_1718,
            },
            vec![
                ("cl_ord_id", U(0x0102_0304_0506_0708)),
                ("orig_cl_ord_id", U(0x1112_1314_1516_1718)),
            ],
        ),
        client(
            "Replace",
            t::REPLACE,
            &ClientMsg::Replace {
                cl_ord_id: 0x2122_2324_2526_2728,
                orig_cl_ord_id: 0x3132_3334_3536_3738,
                price: -600_005,
                qty: 1_000_001,
            },
            vec![
                ("cl_ord_id", U(0x2122_2324_2526_2728)),
                ("orig_cl_ord_id", U(0x3132_3334_3536_3738)),
                ("price", I(-600_005)),
                ("qty", I(1_000_001)),
            ],
        ),
        client(
            "MassCancel",
            t::MASS_CANCEL,
            &ClientMsg::MassCancel {
                market: 0x0A0B_0C0D,
            },
            vec![("market", U(0x0A0B_0C0D))],
        ),
        client(
            "MassCancel",
            t::MASS_CANCEL,
            &ClientMsg::MassCancel { market: u32::MAX },
            vec![("market", U(u64::from(u32::MAX)))],
        ),
        client("Heartbeat", t::HEARTBEAT, &ClientMsg::Heartbeat, vec![]),
        server("Heartbeat", t::HEARTBEAT, &ServerMsg::Heartbeat, vec![]),
        client(
            "Logout",
            t::LOGOUT,
            &ClientMsg::Logout,
            vec![("reason", U(0))],
        ),
        server(
            "Logout",
            t::LOGOUT,
            &ServerMsg::Logout { reason: 4 },
            vec![("reason", U(4))],
        ),
        client(
            "Admin",
            t::ADMIN,
            &ClientMsg::Admin {
                command: 5,
                market: 0x0102_0304,
                account: 0x0506_0708,
                value: -0x0A0B_0C0D_0E0F_1011,
            },
            vec![
                ("command", U(5)),
                ("market", U(0x0102_0304)),
                ("account", U(0x0506_0708)),
                ("value", I(-0x0A0B_0C0D_0E0F_1011)),
            ],
        ),
        server(
            "LogonAck",
            t::LOGON_ACK,
            &ServerMsg::LogonAck {
                next_seq: 0x0102_0304_0506_0708,
                heartbeat_ms: 0x0A0B_0C0D,
            },
            vec![
                ("next_seq", U(0x0102_0304_0506_0708)),
                ("heartbeat_ms", U(0x0A0B_0C0D)),
            ],
        ),
        server(
            "LogonReject",
            t::LOGON_REJECT,
            &ServerMsg::LogonReject { reason: 3 },
            vec![("reason", U(3))],
        ),
        server("Exec", t::EXEC, &ServerMsg::Exec(fill), exec_values(&fill)),
        server(
            "Exec",
            t::EXEC,
            &ServerMsg::Exec(distinct),
            exec_values(&distinct),
        ),
        server(
            "CancelReject",
            t::CANCEL_REJECT,
            &ServerMsg::CancelReject {
                seq: 0x0102_0304_0506_0708,
                cl_ord_id: 0x1112_1314_1516_1718,
                orig_cl_ord_id: 0x2122_2324_2526_2728,
                reason: 99,
            },
            vec![
                ("seq", U(0x0102_0304_0506_0708)),
                ("cl_ord_id", U(0x1112_1314_1516_1718)),
                ("orig_cl_ord_id", U(0x2122_2324_2526_2728)),
                ("reason", U(99)),
            ],
        ),
        server(
            "MassCancelDone",
            t::MASS_CANCEL_DONE,
            &ServerMsg::MassCancelDone {
                seq: 0x0102_0304_0506_0708,
                count: 0x0A0B_0C0D,
                result: 0x63,
            },
            vec![
                ("seq", U(0x0102_0304_0506_0708)),
                ("count", U(0x0A0B_0C0D)),
                ("result", U(0x63)),
            ],
        ),
        server(
            "AdminAck",
            t::ADMIN_ACK,
            &ServerMsg::AdminAck {
                seq: 0x0102_0304_0506_0708,
                command_seq: 0x1112_1314_1516_1718,
                result: 98,
            },
            vec![
                ("seq", U(0x0102_0304_0506_0708)),
                ("command_seq", U(0x1112_1314_1516_1718)),
                ("result", U(98)),
            ],
        ),
    ]
}

#[test]
fn order_entry_schema_matches_the_codec() {
    let schema = parse_schema(ORDER_ENTRY_XML);
    assert_eq!(schema.id, SCHEMA, "schema id");
    assert_eq!(schema.version, VERSION, "schema version");
    assert_eq!(schema.byte_order, "littleEndian");
    check_layout(&schema);

    let declared = schema.ids();
    let t = [
        template::LOGON,
        template::NEW_ORDER,
        template::CANCEL,
        template::REPLACE,
        template::MASS_CANCEL,
        template::HEARTBEAT,
        template::LOGOUT,
        template::ADMIN,
        template::LOGON_ACK,
        template::LOGON_REJECT,
        template::EXEC,
        template::CANCEL_REJECT,
        template::MASS_CANCEL_DONE,
        template::ADMIN_ACK,
    ];
    assert_eq!(
        declared,
        t.into_iter().collect::<BTreeSet<u16>>(),
        "the schema declares exactly the codec's templates"
    );
    for m in &schema.messages {
        assert_eq!(
            block_len(m.id),
            Some(m.block_length),
            "template {} ({}): blockLength vs block_len",
            m.id,
            m.name
        );
    }
    for id in 0..=1000u16 {
        if !declared.contains(&id) {
            assert_eq!(
                block_len(id),
                None,
                "block_len knows template {id}, the schema does not"
            );
        }
    }

    let mut covered = BTreeSet::new();
    for s in order_entry_samples() {
        let m = schema.message(s.template);
        assert_eq!(
            m.name, s.name,
            "template {}: name in the schema",
            s.template
        );
        let b = block(&s.bytes, &schema, m, &s.label);
        check_fields(m, b, &s.values, &s.label);
        covered.insert(s.template);
    }
    assert_eq!(covered, declared, "every template has a sample");
}

// ---- market data (schema 2) ----

fn event(kind: EventKind) -> Event {
    Event {
        seq: 1,
        index: 0,
        kind,
    }
}

#[test]
fn market_data_schema_matches_the_feed() {
    use V::{I, U};
    let schema = parse_schema(MARKET_DATA_XML);
    assert_eq!(schema.id, marketdata::SCHEMA, "schema id");
    assert_eq!(schema.version, marketdata::VERSION, "schema version");
    assert_eq!(schema.byte_order, "littleEndian");
    check_layout(&schema);

    let declared = schema.ids();
    let t = [
        md::SUBSCRIBE,
        md::SNAPSHOT_START,
        md::SNAPSHOT_LEVEL,
        md::SNAPSHOT_END,
        md::LEVEL,
        md::TRADE,
        md::LIQUIDATION,
        md::ADL,
        md::MARK,
        md::FUNDING,
        md::STATS,
        md::DISCONNECT,
    ];
    assert_eq!(
        declared,
        t.into_iter().collect::<BTreeSet<u16>>(),
        "the schema declares exactly the feed's templates"
    );

    // Subscribe has no encoder: the I/O thread reads `from_seq` as the u64 at offset 0.
    let subscribe = schema.message(md::SUBSCRIBE);
    assert_eq!(subscribe.block_length, 8, "Subscribe blockLength");
    assert_eq!(subscribe.fields.len(), 1, "Subscribe has one field");
    let from = &subscribe.fields[0];
    assert_eq!(
        (from.name.as_str(), from.offset, from.size),
        ("from_seq", 0, 8),
        "Subscribe.from_seq"
    );

    let mut hub = Hub::new(16);
    hub.on_events(&[
        event(EventKind::Level {
            market: MarketId(7),
            side: Side::Sell,
            price: Price(600_005),
            qty: Qty(1_234),
            orders: 9,
        }),
        event(EventKind::Fill {
            market: MarketId(7),
            maker_order: OrderId(1),
            maker_account: AccountId(2),
            taker_order: OrderId(3),
            taker_account: AccountId(4),
            taker_side: Side::Sell,
            price: Price(600_010),
            qty: Qty(55),
            maker_fee: 0,
            taker_fee: 3,
            liquidation: true,
        }),
        event(EventKind::LiquidationOrder {
            order_id: OrderId(9),
            account: AccountId(33),
            market: MarketId(7),
            side: Side::Buy,
            price: Price(599_000),
            qty: Qty(77),
        }),
        event(EventKind::LiquidationStarted {
            account: AccountId(34),
            market: None,
            equity: -5_000,
            maintenance: 100,
        }),
        event(EventKind::AdlFill {
            market: MarketId(7),
            account: AccountId(35),
            counterparty: AccountId(36),
            qty: Qty(88),
            price: Price(598_000),
        }),
        event(EventKind::MarkUpdated {
            market: MarketId(7),
            price: Price(600_100),
            scale_bits: 0,
        }),
        event(EventKind::FundingIndexed {
            market: MarketId(7),
            delta: -42,
            index: 1 << 40,
        }),
    ]);
    hub.on_stats(&[MarketStats {
        market: MarketId(7),
        mark: 600_200,
        open_interest: 1_000,
        leverage_bps: 25_000,
        fund_equity: -9,
    }]);
    let live = hub.take();
    assert_eq!(hub.seq(), 8, "eight incrementals");

    let mut replay = Vec::new();
    hub.subscribe(1, &mut replay);
    assert_eq!(
        replay, live,
        "a subscription from 1 replays the retained incrementals"
    );
    let mut stream = live;
    hub.subscribe(0, &mut stream);
    marketdata::disconnect_frame(&mut stream, marketdata::disconnect::SLOW_CONSUMER);

    let expected: Vec<(u16, Vec<(&'static str, V)>)> = vec![
        (
            md::LEVEL,
            vec![
                ("seq", U(1)),
                ("market", U(7)),
                ("side", U(2)),
                ("price", I(600_005)),
                ("qty", I(1_234)),
                ("orders", U(9)),
            ],
        ),
        (
            md::TRADE,
            vec![
                ("seq", U(2)),
                ("market", U(7)),
                ("taker_side", U(2)),
                ("liquidation", U(1)),
                ("price", I(600_010)),
                ("qty", I(55)),
            ],
        ),
        (
            md::LIQUIDATION,
            vec![
                ("seq", U(3)),
                ("market", U(7)),
                ("step", U(u64::from(marketdata::liquidation::ORDER))),
                ("side", U(1)),
                ("account", U(33)),
                ("price", I(599_000)),
                ("qty", I(77)),
                ("amount", I(0)),
            ],
        ),
        (
            md::LIQUIDATION,
            vec![
                ("seq", U(4)),
                ("market", U(u64::from(u32::MAX))),
                ("step", U(u64::from(marketdata::liquidation::STARTED))),
                ("side", U(0)),
                ("account", U(34)),
                ("price", I(0)),
                ("qty", I(0)),
                ("amount", I(-5_000)),
            ],
        ),
        (
            md::ADL,
            vec![
                ("seq", U(5)),
                ("market", U(7)),
                ("account", U(35)),
                ("counterparty", U(36)),
                ("price", I(598_000)),
                ("qty", I(88)),
            ],
        ),
        (
            md::MARK,
            vec![("seq", U(6)), ("market", U(7)), ("price", I(600_100))],
        ),
        (
            md::FUNDING,
            vec![
                ("seq", U(7)),
                ("market", U(7)),
                ("delta", I(-42)),
                ("index", I(1 << 40)),
            ],
        ),
        (
            md::STATS,
            vec![
                ("seq", U(8)),
                ("market", U(7)),
                ("mark", I(600_200)),
                ("open_interest", I(1_000)),
                ("leverage_bps", I(25_000)),
                ("fund_equity", I(-9)),
            ],
        ),
        (
            md::SNAPSHOT_START,
            vec![("seq", U(8)), ("level_count", U(1))],
        ),
        (
            md::SNAPSHOT_LEVEL,
            vec![
                ("market", U(7)),
                ("side", U(2)),
                ("price", I(600_005)),
                ("qty", I(1_234)),
                ("orders", U(9)),
            ],
        ),
        (md::SNAPSHOT_END, vec![("seq", U(8))]),
        (
            md::DISCONNECT,
            vec![(
                "reason",
                U(u64::from(marketdata::disconnect::SLOW_CONSUMER)),
            )],
        ),
    ];

    let got = frames(&stream);
    assert_eq!(got.len(), expected.len(), "frames in the stream");
    let mut covered = BTreeSet::from([md::SUBSCRIBE]);
    for (i, (frame, (tid, values))) in got.iter().zip(&expected).enumerate() {
        let m = schema.message(*tid);
        let label = format!("frame {i} ({})", m.name);
        let b = block(frame, &schema, m, &label);
        check_fields(m, b, values, &label);
        covered.insert(*tid);
    }
    assert_eq!(covered, declared, "every template has a sample");
}
