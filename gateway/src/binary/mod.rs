//! The binary order-entry protocol (schema 1, version 1) and the framing it shares
//! with the market-data feed ([`frame`]). Every message, field and offset is in
//! `docs/cascade-sbe.xml` (checked against this codec by a test) and `docs/PROTOCOL.md`.
//!
//! Invariants: every decoder checks the template's block length and returns `None`
//! for anything short or unknown, never panicking; encoding then decoding any
//! message gives it back unchanged.

pub mod client;
pub mod frame;

use frame::{Block, Fields};

/// Schema id of order entry.
pub const SCHEMA: u16 = 1;
/// Schema version.
pub const VERSION: u16 = 1;

/// Template ids and block lengths.
pub mod template {
    /// Client: logon.
    pub const LOGON: u16 = 1;
    /// Client: new order.
    pub const NEW_ORDER: u16 = 2;
    /// Client: cancel.
    pub const CANCEL: u16 = 3;
    /// Client: replace.
    pub const REPLACE: u16 = 4;
    /// Client: mass cancel.
    pub const MASS_CANCEL: u16 = 5;
    /// Both: heartbeat.
    pub const HEARTBEAT: u16 = 6;
    /// Both: logout.
    pub const LOGOUT: u16 = 7;
    /// Client (admin user only): admin command.
    pub const ADMIN: u16 = 8;
    /// Server: logon accepted.
    pub const LOGON_ACK: u16 = 101;
    /// Server: logon refused.
    pub const LOGON_REJECT: u16 = 102;
    /// Server: execution report.
    pub const EXEC: u16 = 103;
    /// Server: cancel or replace refused.
    pub const CANCEL_REJECT: u16 = 104;
    /// Server: mass cancel done.
    pub const MASS_CANCEL_DONE: u16 = 105;
    /// Server: admin command done.
    pub const ADMIN_ACK: u16 = 108;
}

/// Messages a client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each field is described in docs/cascade-sbe.xml
pub enum ClientMsg {
    /// Authenticate; replay sequenced server messages from `next_seq` (0: none).
    Logon {
        username: String,
        password: String,
        next_seq: u64,
        heartbeat_ms: u32,
    },
    /// A new order: `ord_type` 1 market, 2 limit, 3 stop, 4 stop-limit; `tif` 1 GTC,
    /// 3 IOC, 4 FOK; `flags` bit 0 post-only, bit 1 reduce-only; `stp` 1..=3 as FIX 8000.
    NewOrder {
        cl_ord_id: u64,
        market: u32,
        side: u8,
        ord_type: u8,
        tif: u8,
        flags: u8,
        stp: u8,
        price: i64,
        stop_px: i64,
        qty: i64,
    },
    /// Cancel by the order's client id.
    Cancel { cl_ord_id: u64, orig_cl_ord_id: u64 },
    /// Replace price and open quantity.
    Replace {
        cl_ord_id: u64,
        orig_cl_ord_id: u64,
        price: i64,
        qty: i64,
    },
    /// Cancel every order (market `u32::MAX`) or those of one market.
    MassCancel { market: u32 },
    /// Keep-alive.
    Heartbeat,
    /// End the session.
    Logout,
    /// Admin: 1 mark, 2 funding (bps), 3 halt, 4 resume, 5 deposit, 6 open account,
    /// 7 insurance deposit; `market`/`account` `u32::MAX` when not used.
    Admin {
        command: u8,
        market: u32,
        account: u32,
        value: i64,
    },
}

/// Messages the server sends.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each field is described in docs/cascade-sbe.xml
pub enum ServerMsg {
    /// Logon accepted; the next live sequenced message will carry `next_seq`.
    LogonAck { next_seq: u64, heartbeat_ms: u32 },
    /// Logon refused: 1 credentials, 2 locked out, 3 already logged on, 4 bad request.
    LogonReject { reason: u8 },
    /// An execution report.
    Exec(ExecMsg),
    /// A cancel or replace was refused (`reason` 1 unknown order, else OrdRejReason).
    CancelReject {
        seq: u64,
        cl_ord_id: u64,
        orig_cl_ord_id: u64,
        reason: u8,
    },
    /// A mass cancel finished: orders cancelled, result 0 or OrdRejReason.
    MassCancelDone { seq: u64, count: u32, result: u8 },
    /// Keep-alive.
    Heartbeat,
    /// The server ends the session (1 request, 2 throttle, 3 timeout, 4 shutdown).
    Logout { reason: u8 },
    /// An admin command was applied at `command_seq` (result 0) or refused.
    AdminAck {
        seq: u64,
        command_seq: u64,
        result: u8,
    },
}

/// An execution report (fields as FIX's ExecutionReport).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ExecMsg {
    /// Session sequence number.
    pub seq: u64,
    /// Order id (0: ADL or rejected).
    pub order_id: u64,
    /// Client id.
    pub cl_ord_id: u64,
    /// Client id a cancel or replace named.
    pub orig_cl_ord_id: u64,
    /// Account.
    pub account: u32,
    /// Market.
    pub market: u32,
    /// FIX ExecType as ASCII (b'0', b'F', b'4', b'5', b'8', b'D', b'I'; D: a stop triggered or the open quantity reduced).
    pub exec_type: u8,
    /// FIX OrdStatus as ASCII.
    pub ord_status: u8,
    /// 1 buy, 2 sell.
    pub side: u8,
    /// 0 normal, 1 liquidation, 2 ADL.
    pub fill_kind: u8,
    /// 0 none, 1 maker, 2 taker.
    pub liquidity: u8,
    /// OrdRejReason on rejects.
    pub reject_code: u8,
    /// Cancel reason (index of `CancelReason`, + 1), 0 if none.
    pub cancel_reason: u8,
    /// Price (stop orders: trigger), core units.
    pub price: i64,
    /// Quantity ordered, lots.
    pub qty: i64,
    /// Open quantity.
    pub leaves: i64,
    /// Filled quantity.
    pub cum: i64,
    /// Fill price.
    pub last_px: i64,
    /// Fill quantity.
    pub last_qty: i64,
    /// Fee, atoms.
    pub fee: i64,
}

/// Block lengths by template (the codec and the schema test agree on these).
pub fn block_len(tid: u16) -> Option<usize> {
    use self::template as t;
    Some(match tid {
        t::LOGON => 112,
        t::NEW_ORDER => 48,
        t::CANCEL | t::LOGON_ACK | t::MASS_CANCEL_DONE => 16,
        t::REPLACE | t::CANCEL_REJECT => 32,
        t::MASS_CANCEL | t::HEARTBEAT | t::LOGOUT | t::LOGON_REJECT => 8,
        t::ADMIN | t::ADMIN_ACK => 24,
        t::EXEC => 104,
        _ => return None,
    })
}

impl ClientMsg {
    /// Appends the framed message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use self::template as t;
        let w = |out: &mut Vec<u8>, tid, f: &dyn Fn(&mut Block<'_>)| {
            frame::write(out, SCHEMA, VERSION, tid, f);
        };
        match self {
            ClientMsg::Logon {
                username,
                password,
                next_seq,
                heartbeat_ms,
            } => w(out, t::LOGON, &|b| {
                b.chars(username, 32)
                    .chars(password, 64)
                    .u64(*next_seq)
                    .u32(*heartbeat_ms)
                    .pad(4);
            }),
            &ClientMsg::NewOrder {
                cl_ord_id,
                market,
                side,
                ord_type,
                tif,
                flags,
                stp,
                price,
                stop_px,
                qty,
            } => w(out, t::NEW_ORDER, &|b| {
                b.u64(cl_ord_id)
                    .u32(market)
                    .u8(side)
                    .u8(ord_type)
                    .u8(tif)
                    .u8(flags)
                    .i64(price)
                    .i64(stop_px)
                    .i64(qty)
                    .u8(stp)
                    .pad(7);
            }),
            &ClientMsg::Cancel {
                cl_ord_id,
                orig_cl_ord_id,
            } => w(out, t::CANCEL, &|b| {
                b.u64(cl_ord_id).u64(orig_cl_ord_id);
            }),
            &ClientMsg::Replace {
                cl_ord_id,
                orig_cl_ord_id,
                price,
                qty,
            } => w(out, t::REPLACE, &|b| {
                b.u64(cl_ord_id).u64(orig_cl_ord_id).i64(price).i64(qty);
            }),
            &ClientMsg::MassCancel { market } => w(out, t::MASS_CANCEL, &|b| {
                b.u32(market).pad(4);
            }),
            ClientMsg::Heartbeat => w(out, t::HEARTBEAT, &|b| {
                b.pad(8);
            }),
            ClientMsg::Logout => w(out, t::LOGOUT, &|b| {
                b.pad(8);
            }),
            &ClientMsg::Admin {
                command,
                market,
                account,
                value,
            } => w(out, t::ADMIN, &|b| {
                b.u8(command)
                    .pad(3)
                    .u32(market)
                    .u32(account)
                    .pad(4)
                    .i64(value);
            }),
        }
    }

    /// Decodes a block of `template` (schema 1); `None` if unknown or short.
    pub fn decode(tid: u16, block: &[u8]) -> Option<ClientMsg> {
        use self::template as t;
        if block.len() != block_len(tid)? {
            return None;
        }
        let f = Fields(block);
        Some(match tid {
            t::LOGON => ClientMsg::Logon {
                username: f.chars(0, 32)?.to_string(),
                password: f.chars(32, 64)?.to_string(),
                next_seq: f.u64(96)?,
                heartbeat_ms: f.u32(104)?,
            },
            t::NEW_ORDER => ClientMsg::NewOrder {
                cl_ord_id: f.u64(0)?,
                market: f.u32(8)?,
                side: f.u8(12)?,
                ord_type: f.u8(13)?,
                tif: f.u8(14)?,
                flags: f.u8(15)?,
                price: f.i64(16)?,
                stop_px: f.i64(24)?,
                qty: f.i64(32)?,
                stp: f.u8(40)?,
            },
            t::CANCEL => ClientMsg::Cancel {
                cl_ord_id: f.u64(0)?,
                orig_cl_ord_id: f.u64(8)?,
            },
            t::REPLACE => ClientMsg::Replace {
                cl_ord_id: f.u64(0)?,
                orig_cl_ord_id: f.u64(8)?,
                price: f.i64(16)?,
                qty: f.i64(24)?,
            },
            t::MASS_CANCEL => ClientMsg::MassCancel { market: f.u32(0)? },
            t::HEARTBEAT => ClientMsg::Heartbeat,
            t::LOGOUT => ClientMsg::Logout,
            t::ADMIN => ClientMsg::Admin {
                command: f.u8(0)?,
                market: f.u32(4)?,
                account: f.u32(8)?,
                value: f.i64(16)?,
            },
            _ => return None,
        })
    }
}

impl ServerMsg {
    /// Appends the framed message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use self::template as t;
        let w = |out: &mut Vec<u8>, tid, f: &dyn Fn(&mut Block<'_>)| {
            frame::write(out, SCHEMA, VERSION, tid, f);
        };
        match self {
            &ServerMsg::LogonAck {
                next_seq,
                heartbeat_ms,
            } => w(out, t::LOGON_ACK, &|b| {
                b.u64(next_seq).u32(heartbeat_ms).pad(4);
            }),
            &ServerMsg::LogonReject { reason } => w(out, t::LOGON_REJECT, &|b| {
                b.u8(reason).pad(7);
            }),
            ServerMsg::Exec(e) => w(out, t::EXEC, &|b| {
                b.u64(e.seq)
                    .u64(e.order_id)
                    .u64(e.cl_ord_id)
                    .u64(e.orig_cl_ord_id)
                    .u32(e.account)
                    .u32(e.market);
                b.u8(e.exec_type)
                    .u8(e.ord_status)
                    .u8(e.side)
                    .u8(e.fill_kind)
                    .u8(e.liquidity)
                    .u8(e.reject_code)
                    .u8(e.cancel_reason)
                    .pad(1);
                b.i64(e.price)
                    .i64(e.qty)
                    .i64(e.leaves)
                    .i64(e.cum)
                    .i64(e.last_px)
                    .i64(e.last_qty)
                    .i64(e.fee);
            }),
            &ServerMsg::CancelReject {
                seq,
                cl_ord_id,
                orig_cl_ord_id,
                reason,
            } => w(out, t::CANCEL_REJECT, &|b| {
                b.u64(seq)
                    .u64(cl_ord_id)
                    .u64(orig_cl_ord_id)
                    .u8(reason)
                    .pad(7);
            }),
            &ServerMsg::MassCancelDone { seq, count, result } => {
                w(out, t::MASS_CANCEL_DONE, &|b| {
                    b.u64(seq).u32(count).u8(result).pad(3);
                });
            }
            ServerMsg::Heartbeat => w(out, t::HEARTBEAT, &|b| {
                b.pad(8);
            }),
            &ServerMsg::Logout { reason } => w(out, t::LOGOUT, &|b| {
                b.u8(reason).pad(7);
            }),
            &ServerMsg::AdminAck {
                seq,
                command_seq,
                result,
            } => w(out, t::ADMIN_ACK, &|b| {
                b.u64(seq).u64(command_seq).u8(result).pad(7);
            }),
        }
    }

    /// Decodes a block of `template` (schema 1); `None` if unknown or short.
    pub fn decode(tid: u16, block: &[u8]) -> Option<ServerMsg> {
        use self::template as t;
        if block.len() != block_len(tid)? {
            return None;
        }
        let f = Fields(block);
        Some(match tid {
            t::LOGON_ACK => ServerMsg::LogonAck {
                next_seq: f.u64(0)?,
                heartbeat_ms: f.u32(8)?,
            },
            t::LOGON_REJECT => ServerMsg::LogonReject { reason: f.u8(0)? },
            t::EXEC => ServerMsg::Exec(ExecMsg {
                seq: f.u64(0)?,
                order_id: f.u64(8)?,
                cl_ord_id: f.u64(16)?,
                orig_cl_ord_id: f.u64(24)?,
                account: f.u32(32)?,
                market: f.u32(36)?,
                exec_type: f.u8(40)?,
                ord_status: f.u8(41)?,
                side: f.u8(42)?,
                fill_kind: f.u8(43)?,
                liquidity: f.u8(44)?,
                reject_code: f.u8(45)?,
                cancel_reason: f.u8(46)?,
                price: f.i64(48)?,
                qty: f.i64(56)?,
                leaves: f.i64(64)?,
                cum: f.i64(72)?,
                last_px: f.i64(80)?,
                last_qty: f.i64(88)?,
                fee: f.i64(96)?,
            }),
            t::CANCEL_REJECT => ServerMsg::CancelReject {
                seq: f.u64(0)?,
                cl_ord_id: f.u64(8)?,
                orig_cl_ord_id: f.u64(16)?,
                reason: f.u8(24)?,
            },
            t::MASS_CANCEL_DONE => ServerMsg::MassCancelDone {
                seq: f.u64(0)?,
                count: f.u32(8)?,
                result: f.u8(12)?,
            },
            t::HEARTBEAT => ServerMsg::Heartbeat,
            t::LOGOUT => ServerMsg::Logout { reason: f.u8(0)? },
            t::ADMIN_ACK => ServerMsg::AdminAck {
                seq: f.u64(0)?,
                command_seq: f.u64(8)?,
                result: f.u8(16)?,
            },
            _ => return None,
        })
    }

    /// The session sequence number of a sequenced message.
    pub fn seq(&self) -> Option<u64> {
        match self {
            ServerMsg::Exec(e) => Some(e.seq),
            ServerMsg::CancelReject { seq, .. }
            | ServerMsg::MassCancelDone { seq, .. }
            | ServerMsg::AdminAck { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::frame::{split, Split, HEADER};
    use super::*;
    use proptest::prelude::*;

    fn client_msg() -> impl Strategy<Value = ClientMsg> {
        prop_oneof![
            ("[A-Z]{1,32}", "[a-z0-9-]{0,64}", any::<u64>(), any::<u32>()).prop_map(
                |(username, password, next_seq, heartbeat_ms)| ClientMsg::Logon {
                    username,
                    password,
                    next_seq,
                    heartbeat_ms
                }
            ),
            (
                any::<u64>(),
                any::<u32>(),
                any::<u8>(),
                any::<u8>(),
                any::<u8>(),
                any::<u8>(),
                any::<u8>(),
                any::<i64>(),
                any::<i64>(),
                any::<i64>()
            )
                .prop_map(
                    |(cl_ord_id, market, side, ord_type, tif, flags, stp, price, stop_px, qty)| {
                        ClientMsg::NewOrder {
                            cl_ord_id,
                            market,
                            side,
                            ord_type,
                            tif,
                            flags,
                            stp,
                            price,
                            stop_px,
                            qty,
                        }
                    }
                ),
            (any::<u64>(), any::<u64>()).prop_map(|(cl_ord_id, orig_cl_ord_id)| {
                ClientMsg::Cancel {
                    cl_ord_id,
                    orig_cl_ord_id,
                }
            }),
            (any::<u64>(), any::<u64>(), any::<i64>(), any::<i64>()).prop_map(
                |(cl_ord_id, orig_cl_ord_id, price, qty)| ClientMsg::Replace {
                    cl_ord_id,
                    orig_cl_ord_id,
                    price,
                    qty
                }
            ),
            any::<u32>().prop_map(|market| ClientMsg::MassCancel { market }),
            Just(ClientMsg::Heartbeat),
            Just(ClientMsg::Logout),
            (any::<u8>(), any::<u32>(), any::<u32>(), any::<i64>()).prop_map(
                |(command, market, account, value)| ClientMsg::Admin {
                    command,
                    market,
                    account,
                    value
                }
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn client_messages_round_trip(m in client_msg()) {
            let mut out = Vec::new();
            m.encode(&mut out);
            let Split::Frame { template, schema, version, len } = split(&out, 4096) else { panic!("not a frame") };
            prop_assert_eq!((schema, version, len), (SCHEMA, VERSION, out.len()));
            prop_assert_eq!(ClientMsg::decode(template, &out[HEADER..len]), Some(m));
        }

        #[test]
        fn server_execs_round_trip(seq in any::<u64>(), order_id in any::<u64>(), cl in any::<u64>(), price in any::<i64>(), qty in any::<i64>(), t in any::<u8>()) {
            let m = ServerMsg::Exec(ExecMsg { seq, order_id, cl_ord_id: cl, price, qty, exec_type: t, ..ExecMsg::default() });
            let mut out = Vec::new();
            m.encode(&mut out);
            let Split::Frame { template, len, .. } = split(&out, 4096) else { panic!("not a frame") };
            prop_assert_eq!(ServerMsg::decode(template, &out[HEADER..len]), Some(m));
        }

        #[test]
        fn arbitrary_blocks_never_panic(t in any::<u16>(), b in proptest::collection::vec(any::<u8>(), 0..160)) {
            let _ = ClientMsg::decode(t, &b);
            let _ = ServerMsg::decode(t, &b);
        }

        #[test]
        fn damaged_frames_are_refused_or_decode_to_something(m in client_msg(), i in 0usize..200, x in 1u8..=255) {
            let mut out = Vec::new();
            m.encode(&mut out);
            let i = i % out.len();
            out[i] ^= x;
            if let Split::Frame { template, len, .. } = split(&out, 4096) {
                let _ = ClientMsg::decode(template, &out[HEADER..len]);
            }
        }
    }
}
