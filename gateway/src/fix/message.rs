//! FIX 4.4 tag=value framing: finding one message in a byte stream, checking
//! BodyLength and CheckSum, splitting fields, and writing messages.
//!
//! Invariants: [`next_frame`] never returns a message whose BeginString, BodyLength
//! and CheckSum are not all correct, and always makes progress on garbled input (it
//! skips to the next `8=FIX.4.4` start, as the session spec says garbled messages are
//! ignored); field slices borrow the input; [`Writer`] always produces a message that
//! [`next_frame`] accepts.

use smallvec::SmallVec;

/// Field separator.
pub const SOH: u8 = 0x01;
const BEGIN: &[u8] = b"8=FIX.4.4\x019=";

/// What the start of a buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole, well-formed message of this many bytes.
    Message(usize),
    /// Garbage or a garbled message of this many bytes, to be dropped.
    Garbled(usize),
    /// Not enough bytes yet.
    Incomplete,
    /// The announced message is longer than the limit: the connection must close.
    TooLong,
}

/// Classifies the start of `buf` (at most `max` bytes a message).
pub fn next_frame(buf: &[u8], max: usize) -> Frame {
    if buf.is_empty() {
        return Frame::Incomplete;
    }
    if !buf.starts_with(BEGIN) {
        if BEGIN.starts_with(&buf[..buf.len().min(BEGIN.len())]) {
            return Frame::Incomplete;
        }
        return Frame::Garbled(resync(buf, 1));
    }
    let rest = &buf[BEGIN.len()..];
    let Some(end) = rest.iter().take(10).position(|&b| b == SOH) else {
        return if rest.len() < 10 && rest.iter().all(u8::is_ascii_digit) {
            Frame::Incomplete
        } else {
            Frame::Garbled(resync(buf, 1))
        };
    };
    let Some(body_len) = parse_uint(&rest[..end]) else {
        return Frame::Garbled(resync(buf, 1));
    };
    let body_start = BEGIN.len() + end + 1;
    let total = body_start as u64 + body_len + 7;
    if total > max as u64 {
        return Frame::TooLong;
    }
    let total = total as usize;
    if buf.len() < total {
        return Frame::Incomplete;
    }
    let trailer = &buf[total - 7..total];
    let ok = trailer.starts_with(b"10=")
        && trailer[6] == SOH
        && buf[total - 8] == SOH
        && parse_uint(&trailer[3..6]) == Some(u64::from(checksum(&buf[..total - 7])));
    if ok {
        Frame::Message(total)
    } else {
        Frame::Garbled(resync(buf, 1))
    }
}

/// Bytes to drop so that `buf` starts at the next possible message start at or after
/// `from`.
fn resync(buf: &[u8], from: usize) -> usize {
    buf[from..]
        .windows(2)
        .position(|w| w == b"8=")
        .map_or(buf.len(), |i| i + from)
}

/// Sum of the bytes mod 256.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b))
}

/// An unsigned decimal without sign or spaces (at most 18 digits).
pub fn parse_uint(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 18 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |a, &d| a * 10 + u64::from(d - b'0')))
}

/// Why a framed message's fields could not be read (a session-level Reject).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// SessionRejectReason (373).
    pub reason: u32,
    /// RefTagID (371), when one tag is at fault.
    pub tag: Option<u32>,
}

/// A parsed message: its fields in order, borrowing the frame.
#[derive(Debug)]
pub struct Message<'a> {
    fields: SmallVec<[(u32, &'a [u8]); 32]>,
}

/// Tags that may repeat (inside repeating groups we accept and ignore).
const REPEATABLE: &[u32] = &[447, 448, 452, 523, 802, 803, 453, 1];

impl<'a> Message<'a> {
    /// Splits a frame accepted by [`next_frame`] into fields.
    pub fn parse(frame: &'a [u8]) -> Result<Message<'a>, FieldError> {
        let mut fields = SmallVec::new();
        let body = frame.strip_suffix(&[SOH]).unwrap_or(frame);
        for f in body.split(|&b| b == SOH) {
            let Some(eq) = f.iter().position(|&b| b == b'=') else {
                return Err(FieldError {
                    reason: 0,
                    tag: None,
                });
            };
            let Some(tag) = parse_uint(&f[..eq]).filter(|&t| t > 0 && t < 100_000) else {
                return Err(FieldError {
                    reason: 0,
                    tag: None,
                });
            };
            let tag = tag as u32;
            let value = &f[eq + 1..];
            if value.is_empty() {
                return Err(FieldError {
                    reason: 4,
                    tag: Some(tag),
                });
            }
            let fields_ref: &SmallVec<[(u32, &[u8]); 32]> = &fields;
            if !REPEATABLE.contains(&tag) && fields_ref.iter().any(|&(t, _)| t == tag) {
                return Err(FieldError {
                    reason: 13,
                    tag: Some(tag),
                });
            }
            fields.push((tag, value));
        }
        Ok(Message { fields })
    }

    /// The first value of `tag`.
    pub fn get(&self, tag: u32) -> Option<&'a [u8]> {
        self.fields.iter().find(|f| f.0 == tag).map(|f| f.1)
    }

    /// The value of `tag` as text.
    pub fn text(&self, tag: u32) -> Option<&'a str> {
        self.get(tag).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// `tag` as an unsigned integer: `Err` names the problem (missing 1, format 6).
    pub fn uint(&self, tag: u32) -> Result<u64, FieldError> {
        let v = self.get(tag).ok_or(FieldError {
            reason: 1,
            tag: Some(tag),
        })?;
        parse_uint(v).ok_or(FieldError {
            reason: 6,
            tag: Some(tag),
        })
    }

    /// `tag`, required.
    pub fn req(&self, tag: u32) -> Result<&'a [u8], FieldError> {
        self.get(tag).ok_or(FieldError {
            reason: 1,
            tag: Some(tag),
        })
    }

    /// MsgType (35).
    pub fn msg_type(&self) -> &'a [u8] {
        self.get(35).unwrap_or(b"")
    }

    /// Whether a Y/N flag is `Y`.
    pub fn flag(&self, tag: u32) -> bool {
        self.get(tag) == Some(b"Y")
    }
}

/// Builds one outgoing message: the standard header, body fields, then BodyLength
/// and CheckSum filled in by [`Writer::finish`].
pub struct Writer<'b> {
    out: &'b mut Vec<u8>,
    start: usize,
    body_start: usize,
}

impl<'b> Writer<'b> {
    /// Starts a message of `msg_type` at the end of `out`.
    pub fn new(out: &'b mut Vec<u8>, msg_type: &str) -> Writer<'b> {
        let start = out.len();
        out.extend_from_slice(b"8=FIX.4.4\x019=0000\x01");
        let body_start = out.len();
        let mut w = Writer {
            out,
            start,
            body_start,
        };
        w.str(35, msg_type);
        w
    }

    /// Appends `tag=value`.
    pub fn raw(&mut self, tag: u32, value: &[u8]) -> &mut Self {
        use std::io::Write;
        let _ = write!(self.out, "{tag}=");
        self.out.extend_from_slice(value);
        self.out.push(SOH);
        self
    }

    /// Appends a text field.
    pub fn str(&mut self, tag: u32, value: &str) -> &mut Self {
        self.raw(tag, value.as_bytes())
    }

    /// Appends an integer field.
    pub fn int(&mut self, tag: u32, value: impl std::fmt::Display) -> &mut Self {
        use std::io::Write;
        let _ = write!(self.out, "{tag}={value}\x01");
        self
    }

    /// Appends a decimal field from integer units.
    pub fn scaled(&mut self, tag: u32, value: i64, decimals: u32) -> &mut Self {
        use std::io::Write;
        let _ = write!(self.out, "{tag}=");
        crate::wire::format_scaled(value, decimals, self.out);
        self.out.push(SOH);
        self
    }

    /// Appends pre-encoded fields.
    pub fn fields(&mut self, bytes: &[u8]) -> &mut Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// Fills in BodyLength (4 digits reserved; more if needed) and appends CheckSum.
    pub fn finish(self) {
        let body_len = self.out.len() - self.body_start;
        let digits = body_len.to_string();
        let len_at = self.start + BEGIN.len();
        self.out.splice(len_at..len_at + 4, digits.bytes());
        let sum = checksum(&self.out[self.start..]);
        let trailer = format!("10={sum:03}\x01");
        self.out.extend_from_slice(trailer.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(fields: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, "D");
        for f in fields.split('|').filter(|f| !f.is_empty()) {
            let (t, v) = f.split_once('=').unwrap();
            w.str(t.parse().unwrap(), v);
        }
        w.finish();
        out
    }

    #[test]
    fn written_messages_frame_and_parse() {
        let m = msg("49=ALICE|56=CASCADE|34=2|11=7");
        assert_eq!(next_frame(&m, 4096), Frame::Message(m.len()));
        let p = Message::parse(&m).unwrap();
        assert_eq!(p.msg_type(), b"D");
        assert_eq!(p.uint(34), Ok(2));
        assert_eq!(p.text(49), Some("ALICE"));
        // Checksum as the spec computes it: every byte before "10=".
        let sum = checksum(&m[..m.len() - 7]);
        assert!(m.ends_with(format!("10={sum:03}\x01").as_bytes()));
    }

    #[test]
    fn a_known_message_has_the_known_trailer() {
        // Logon from the FIX 4.4 spec's style: lengths and sums computed by hand.
        let body = "35=0\x0149=A\x0156=B\x0134=1\x0152=20260101-00:00:00\x01";
        let mut m = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
        let sum: u32 = m.iter().map(|&b| u32::from(b)).sum::<u32>() % 256;
        m.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        assert_eq!(next_frame(&m, 4096), Frame::Message(m.len()));
    }

    #[test]
    fn garbled_messages_are_dropped_whole() {
        let good = msg("49=ALICE|56=CASCADE|34=2");
        let mut bad_sum = good.clone();
        let n = bad_sum.len();
        bad_sum[n - 2] = if bad_sum[n - 2] == b'0' { b'1' } else { b'0' };
        assert!(matches!(next_frame(&bad_sum, 4096), Frame::Garbled(_)));
        // BodyLength 3 short of the truth: the trailer is not where it says.
        let text = String::from_utf8(good.clone()).unwrap();
        let len: usize = text.split('\x01').nth(1).unwrap()[2..].parse().unwrap();
        let bad_len = text.replacen(&format!("9={len}\x01"), &format!("9={}\x01", len - 3), 1);
        let mut stream = bad_len.into_bytes();
        stream.extend_from_slice(&good);
        let Frame::Garbled(skip) = next_frame(&stream, 4096) else {
            panic!()
        };
        // after skipping, the good message is found again
        let mut rest = &stream[skip..];
        loop {
            match next_frame(rest, 4096) {
                Frame::Garbled(k) => rest = &rest[k..],
                Frame::Message(n) => {
                    assert_eq!(&rest[..n], &good[..]);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(next_frame(b"8=FIX.4", 4096), Frame::Incomplete);
        assert_eq!(
            next_frame(b"8=FIX.4.4\x019=99999999\x01", 4096),
            Frame::TooLong
        );
    }

    #[test]
    fn field_errors_name_the_reason() {
        let dup = msg("49=A|56=B|34=2|11=1|11=2");
        assert_eq!(
            Message::parse(&dup).unwrap_err(),
            FieldError {
                reason: 13,
                tag: Some(11)
            }
        );
        let m = msg("49=A|56=B|34=x");
        assert_eq!(Message::parse(&m).unwrap().uint(34).unwrap_err().reason, 6);
        assert_eq!(Message::parse(&m).unwrap().uint(38).unwrap_err().reason, 1);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_always_progress(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut rest = &b[..];
            while !rest.is_empty() {
                match next_frame(rest, 512) {
                    Frame::Garbled(k) => { prop_assert!(k > 0); rest = &rest[k..]; }
                    Frame::Message(n) => { let _ = Message::parse(&rest[..n]); rest = &rest[n..]; }
                    Frame::Incomplete | Frame::TooLong => break,
                }
            }
        }

        #[test]
        fn damaged_messages_are_never_accepted_as_other_messages(i in 0usize..60, x in 1u8..=255) {
            let m = msg("49=ALICE|56=CASCADE|34=12|11=99|55=BTC-PERP");
            let mut d = m.clone();
            let i = i % d.len();
            d[i] ^= x;
            if let Frame::Message(n) = next_frame(&d, 4096) {
                // a single flipped byte cannot keep both the length and the checksum
                prop_assert!(n != d.len() || d == m);
            }
        }
    }
}
