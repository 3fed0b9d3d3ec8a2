//! The binary order-entry sessions on the I/O thread: logon with replay from a
//! sequence number (SoupBinTCP / FIXP style: server messages are sequenced and stored,
//! client messages are not), orders, heartbeats, logout.
//!
//! Invariants: as for FIX, every sequenced server message is in the user's store
//! before its bytes are queued, so a replay from any number up to the last gives each
//! message exactly once; a frame that cannot be a frame closes the connection.

use std::time::{Duration, Instant};

use cascade_core::command::{ConditionalKind, ConditionalOrder, NewOrder, OrderType, StpMode};
use cascade_core::{
    AccountId, CancelReason, ClientOrderId, CommandKind, MarketId, Price, Qty, RejectReason, Side,
};

use super::{Io, Proto};
use crate::auth::Gate;
use crate::binary::frame::{split, Split, HEADER};
use crate::binary::{ClientMsg, ExecMsg, ServerMsg, SCHEMA};
use crate::fix::app::{reject_reason, Pending};
use crate::server::orders::{Ctx, CxlWhy, Exec, ExecKind, FillKind, OrderInfo, Placer};
use crate::server::request::Ask;
use crate::server::store::Store;
use crate::throttle::Verdict;

/// A user's binary session state, kept across connections.
pub(super) struct BinSession {
    store: Store,
    heartbeat: Duration,
    last_in: Instant,
    last_out: Instant,
}

impl BinSession {
    /// Opens a user's store (created if missing).
    pub(super) fn open(dir: &std::path::Path) -> std::io::Result<BinSession> {
        let now = Instant::now();
        Ok(BinSession {
            store: Store::open(dir)?,
            heartbeat: Duration::from_secs(30),
            last_in: now,
            last_out: now,
        })
    }
}

/// Writes every binary session's buffered records.
pub(super) fn flush_stores(io: &mut Io) {
    for u in &mut io.users {
        if let Some(s) = u.bin.as_mut() {
            if let Err(e) = s.store.flush() {
                crate::log!(
                    "error",
                    "session_store",
                    "user={} proto=binary error={:?}",
                    u.username,
                    e.to_string()
                );
            }
        }
    }
}

pub(super) fn input(io: &mut Io, t: usize) {
    let max = io.cfg.gateway.max_message_bytes;
    let mut budget = super::TURN_BUDGET;
    // Frames are taken from `at` on; what they used is dropped once, at the end.
    let mut at = 0;
    loop {
        let room = io.ring_has_room();
        let Some(c) = io.conns[t].as_mut() else {
            return;
        };
        if c.closing || c.auth_pending {
            break;
        }
        match split(&c.rbuf[at..], max) {
            Split::Incomplete => break,
            Split::Bad(why) => {
                crate::log!(
                    "warn",
                    "bad_frame",
                    "peer={} proto=binary reason={why:?}",
                    c.peer
                );
                ServerMsg::Logout { reason: 1 }.encode(&mut c.wbuf);
                c.closing = true;
                break;
            }
            Split::Frame {
                template,
                schema,
                version,
                len,
            } => {
                if !room || budget == 0 {
                    if !io.stalled.contains(&t) {
                        io.stalled.push(t);
                    }
                    break;
                }
                budget -= 1;
                let msg = (schema == SCHEMA && version == crate::binary::VERSION)
                    .then(|| ClientMsg::decode(template, &c.rbuf[at + HEADER..at + len]))
                    .flatten();
                at += len;
                io.metrics.binary_in += 1;
                if let Some(m) = msg {
                    message(io, t, m);
                } else {
                    crate::log!(
                        "warn",
                        "bad_frame",
                        "peer={} proto=binary template={template} schema={schema}",
                        c.peer
                    );
                    ServerMsg::Logout { reason: 1 }.encode(&mut c.wbuf);
                    c.closing = true;
                }
            }
        }
    }
    if let Some(c) = io.conns[t].as_mut() {
        if c.closing {
            c.rbuf.clear();
        } else {
            c.rbuf.drain(..at);
        }
    }
}

fn message(io: &mut Io, t: usize, m: ClientMsg) {
    let Some(c) = io.conns[t].as_mut() else {
        return;
    };
    let Proto::Binary { user } = c.proto else {
        return;
    };
    let Some(u) = user else {
        if let ClientMsg::Logon {
            username,
            password,
            next_seq,
            heartbeat_ms,
        } = m
        {
            logon(io, t, &username, &password, next_seq, heartbeat_ms, false);
        } else {
            ServerMsg::LogonReject { reason: 4 }.encode(&mut c.wbuf);
            c.closing = true;
        }
        return;
    };
    if let Some(s) = io.users[u].bin.as_mut() {
        s.last_in = Instant::now();
    }
    let account = io.users[u].account;
    match (m, account) {
        (ClientMsg::Heartbeat | ClientMsg::Logon { .. }, _) => {}
        (ClientMsg::Logout, _) => {
            ServerMsg::Logout { reason: 1 }.encode(&mut c.wbuf);
            c.closing = true;
        }
        (
            ClientMsg::Admin {
                command,
                market,
                account: a,
                value,
            },
            None,
        ) => match admin(io, command, market, a, value) {
            Some(kind) => {
                io.send_request(Some(t), u, Ask::Command(kind), Ctx::Other, Pending::Order);
            }
            None => send(io, u, |seq| ServerMsg::AdminAck {
                seq,
                command_seq: 0,
                result: 99,
            }),
        },
        // Admin commands from a trading session, or orders from the admin session.
        (ClientMsg::Admin { .. }, Some(_)) | (_, None) => send(io, u, |seq| ServerMsg::AdminAck {
            seq,
            command_seq: 0,
            result: 98,
        }),
        (m, Some(account)) => order_msg(io, t, u, account, &m),
    }
}

fn order_msg(io: &mut Io, t: usize, u: usize, account: AccountId, m: &ClientMsg) {
    let (ask, ctx, pending) = match *m {
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
        } => {
            let Some((kind, info)) = new_order(
                account, cl_ord_id, market, side, ord_type, tif, flags, stp, price, stop_px, qty,
            ) else {
                let info = bare(account, cl_ord_id, market, qty);
                let e = crate::server::orders::report(
                    ExecKind::GatewayRejected("malformed order fields"),
                    0,
                    info,
                );
                send_exec(io, u, &e);
                return;
            };
            (Ask::Command(kind), Ctx::New(info), Pending::Order)
        }
        ClientMsg::Cancel {
            cl_ord_id,
            orig_cl_ord_id,
        } => (
            Ask::CancelByClient {
                account,
                client_id: ClientOrderId(orig_cl_ord_id),
            },
            Ctx::Cancel {
                account,
                client_id: cl_ord_id,
                orig: orig_cl_ord_id,
            },
            Pending::CancelOrReplace(true),
        ),
        ClientMsg::Replace {
            cl_ord_id,
            orig_cl_ord_id,
            price,
            qty,
        } => (
            Ask::ReplaceByClient {
                account,
                orig: ClientOrderId(orig_cl_ord_id),
                new_id: ClientOrderId(cl_ord_id),
                price: Price(price),
                qty: Qty(qty),
            },
            Ctx::Replace {
                account,
                client_id: cl_ord_id,
                orig: orig_cl_ord_id,
            },
            Pending::CancelOrReplace(false),
        ),
        ClientMsg::MassCancel { market } => {
            let market = (market != u32::MAX).then_some(MarketId(market));
            (
                Ask::Command(CommandKind::MassCancel { account, market }),
                Ctx::Other,
                Pending::MassCancel(String::new(), 0, market),
            )
        }
        _ => return,
    };
    if matches!(ctx, Ctx::New(_) | Ctx::Replace { .. }) {
        let Some(c) = io.conns[t].as_mut() else {
            return;
        };
        match c.throttle.order(Instant::now()) {
            Verdict::Pass => {}
            Verdict::Reject => {
                io.metrics.throttled += 1;
                match ctx {
                    Ctx::New(info) => send_exec(
                        io,
                        u,
                        &crate::server::orders::report(
                            ExecKind::GatewayRejected("throttled"),
                            0,
                            info,
                        ),
                    ),
                    _ => send_cancel_reject(io, u, &ctx, CxlWhy::Throttled),
                }
                return;
            }
            Verdict::Logout => {
                io.metrics.throttled += 1;
                crate::log!("warn", "throttle_logout", "peer={} proto=binary", c.peer);
                ServerMsg::Logout { reason: 2 }.encode(&mut c.wbuf);
                c.closing = true;
                return;
            }
        }
    }
    io.send_request(Some(t), u, ask, ctx, pending);
}

fn bare(account: AccountId, cl: u64, market: u32, qty: i64) -> OrderInfo {
    OrderInfo {
        leaves: 0,
        ..OrderInfo::open(
            account,
            MarketId(market),
            Side::Buy,
            cl,
            0,
            qty,
            Placer::Client,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn new_order(
    account: AccountId,
    cl: u64,
    market: u32,
    side: u8,
    ord_type: u8,
    tif: u8,
    flags: u8,
    stp: u8,
    price: i64,
    stop_px: i64,
    qty: i64,
) -> Option<(CommandKind, OrderInfo)> {
    let side = match side {
        1 => Side::Buy,
        2 => Side::Sell,
        _ => return None,
    };
    let stp = match stp {
        0 | 1 => StpMode::CancelResting,
        2 => StpMode::CancelAggressor,
        3 => StpMode::DecrementBoth,
        _ => return None,
    };
    let (post_only, reduce_only) = (flags & 1 != 0, flags & 2 != 0);
    // Post-only only on plain limit orders; time in force only matters for them too.
    if flags > 3 || cl == 0 || (post_only && ord_type != 2) {
        return None;
    }
    let p = Price(price);
    let limit = match (tif, post_only) {
        (1, false) => OrderType::Limit(p),
        (1, true) => OrderType::PostOnly(p),
        (3, false) => OrderType::Ioc(p),
        (4, false) => OrderType::Fok(p),
        _ if ord_type != 2 => OrderType::Limit(p),
        _ => return None,
    };
    let mut info = OrderInfo {
        side,
        price,
        leaves: qty,
        ..bare(account, cl, market, qty)
    };
    let m = MarketId(market);
    let order = |order_type| {
        CommandKind::NewOrder(NewOrder {
            account,
            market: m,
            client_id: ClientOrderId(cl),
            side,
            order_type,
            qty: Qty(qty),
            stp,
            reduce_only,
        })
    };
    let kind = match ord_type {
        1 if !post_only => {
            info.price = 0;
            order(OrderType::Market)
        }
        2 => order(limit),
        3 | 4 => {
            info.price = stop_px;
            info.stop = true;
            CommandKind::NewConditional(ConditionalOrder {
                account,
                market: m,
                client_id: ClientOrderId(cl),
                side,
                qty: Qty(qty),
                trigger: Price(stop_px),
                kind: ConditionalKind::Stop,
                limit: (ord_type == 4).then_some(p),
                reduce_only,
                stp,
            })
        }
        _ => return None,
    };
    Some((kind, info))
}

fn admin(io: &Io, command: u8, market: u32, account: u32, value: i64) -> Option<CommandKind> {
    let m = MarketId(market);
    let has_market = (market as usize) < io.cfg.markets.len();
    Some(match command {
        1 if has_market => CommandKind::MarkPrice {
            market: m,
            price: Price(value),
        },
        2 if has_market => CommandKind::FundingRate {
            market: m,
            rate: cascade_core::risk::bps(value.clamp(-1_000_000, 1_000_000)),
        },
        3 if has_market => CommandKind::HaltMarket(m),
        4 if has_market => CommandKind::ResumeMarket(m),
        5 => CommandKind::Deposit {
            account: AccountId(account),
            amount: value,
        },
        6 => CommandKind::OpenAccount(AccountId(account)),
        7 => CommandKind::InsuranceDeposit {
            market: has_market.then_some(m),
            amount: value,
        },
        _ => return None,
    })
}

/// Checks a logon (after the lockout's delay when `gated`), answers it, and replays
/// stored messages from `next_seq`.
pub(super) fn logon(
    io: &mut Io,
    t: usize,
    name: &str,
    password: &str,
    next_seq: u64,
    heartbeat_ms: u32,
    gated: bool,
) {
    let Some(c) = io.conns[t].as_mut() else {
        return;
    };
    let now = Instant::now();
    let ip = c.peer.ip();
    match if gated {
        Gate::Open
    } else {
        io.lockout.gate(ip, now)
    } {
        Gate::Refuse => {
            io.metrics.logon_refused += 1;
            ServerMsg::LogonReject { reason: 2 }.encode(&mut c.wbuf);
            c.closing = true;
            return;
        }
        Gate::Delay(d) => {
            let gen = c.gen;
            let logon =
                super::HeldLogon::Binary(name.into(), password.into(), next_seq, heartbeat_ms);
            io.delayed.push(super::Delayed {
                due: now + d,
                token: t,
                gen,
                logon,
            });
            return;
        }
        Gate::Open => {}
    }
    let user = io.by_name.get(name).copied();
    let gen = c.gen;
    if !super::start_check(&mut io.checking, ip, io.cfg.limits.checks_per_address) {
        if let Some(c) = io.conns[t].as_mut() {
            ServerMsg::LogonReject { reason: 2 }.encode(&mut c.wbuf);
            c.closing = true;
        }
        return;
    }
    let Some(c) = io.conns[t].as_mut() else {
        return;
    };
    c.auth_pending = true;
    let tag = super::AuthTag {
        token: t,
        gen,
        ip,
        user,
        logon: super::HeldLogon::Binary(name.into(), String::new(), next_seq, heartbeat_ms),
    };
    if let Some(v) = &io.verifier {
        v.submit(
            user.map(|u| io.users[u].hash.as_str()),
            password.as_bytes(),
            tag,
        );
    }
}

/// The rest of a binary logon once the password check answered (`user`: `None` if it
/// failed): the session store, the acknowledgement, the replay from `next_seq`.
pub(super) fn logon_checked(
    io: &mut Io,
    t: usize,
    user: Option<usize>,
    next_seq: u64,
    heartbeat_ms: u32,
) {
    let now = Instant::now();
    let Some(c) = io.conns[t].as_mut() else {
        return;
    };
    let Some(u) = user else {
        crate::log!(
            "warn",
            "logon_refused",
            "peer={} proto=binary reason=credentials",
            c.peer
        );
        io.metrics.logon_failed += 1;
        ServerMsg::LogonReject { reason: 1 }.encode(&mut c.wbuf);
        c.closing = true;
        return;
    };
    if io.users[u].bin_conn.is_some() {
        ServerMsg::LogonReject { reason: 3 }.encode(&mut c.wbuf);
        c.closing = true;
        return;
    }
    if io.users[u].bin.is_none() {
        let dir = io
            .cfg
            .gateway
            .journal_dir
            .join("sessions")
            .join("binary")
            .join(&io.users[u].username);
        match BinSession::open(&dir) {
            Ok(s) => io.users[u].bin = Some(s),
            Err(e) => {
                crate::log!(
                    "error",
                    "session_store",
                    "path={:?} error={:?}",
                    dir.display().to_string(),
                    e.to_string()
                );
                c.closing = true;
                return;
            }
        }
    }
    let Some(s) = io.users[u].bin.as_mut() else {
        return;
    };
    s.heartbeat = Duration::from_millis(u64::from(heartbeat_ms.clamp(100, 3_600_000)));
    (s.last_in, s.last_out) = (now, now);
    let live = s.store.next_out();
    ServerMsg::LogonAck {
        next_seq: live,
        heartbeat_ms: s.heartbeat.as_millis() as u32,
    }
    .encode(&mut c.wbuf);
    if next_seq > 0 {
        for seq in next_seq..live {
            if let Ok(Some(bytes)) = s.store.get(seq) {
                c.wbuf.extend_from_slice(&bytes);
            }
        }
    }
    c.proto = Proto::Binary { user: Some(u) };
    crate::log!(
        "info",
        "logon",
        "user={} proto=binary peer={} replay_from={next_seq} next_out={live}",
        io.users[u].username,
        c.peer
    );
    io.users[u].bin_conn = Some(t);
    io.metrics.logons += 1;
}

/// Stores a sequenced message on the user's binary session and sends it if connected.
fn send(io: &mut Io, u: usize, make: impl FnOnce(u64) -> ServerMsg) {
    let user = &mut io.users[u];
    let Some(s) = user.bin.as_mut() else { return };
    let mut bytes = Vec::with_capacity(128);
    make(s.store.next_out()).encode(&mut bytes);
    if s.store.append(&bytes).is_err() {
        return;
    }
    io.metrics.binary_out += 1;
    if let Some(c) = user.bin_conn.and_then(|t| io.conns[t].as_mut()) {
        c.wbuf.extend_from_slice(&bytes);
        s.last_out = Instant::now();
    }
}

pub(super) fn send_exec(io: &mut Io, u: usize, e: &Exec) {
    let o = &e.order;
    let (exec_type, ord_status) = match e.kind {
        ExecKind::New => (b'0', if o.cum > 0 { b'1' } else { b'0' }),
        ExecKind::Trade => (b'F', if o.leaves == 0 { b'2' } else { b'1' }),
        ExecKind::Cancelled(_) => (b'4', b'4'),
        ExecKind::Replaced => (b'5', if o.cum > 0 { b'1' } else { b'0' }),
        ExecKind::Rejected(_) | ExecKind::GatewayRejected(_) => (b'8', b'8'),
        ExecKind::Triggered => (b'D', b'0'),
        ExecKind::Reduced(_) => (b'D', if o.cum > 0 { b'1' } else { b'0' }),
        ExecKind::Status => (b'I', if o.cum > 0 { b'1' } else { b'0' }),
    };
    let reject_code = match e.kind {
        ExecKind::Rejected(r) => reject_reason(r).0 as u8,
        ExecKind::GatewayRejected(_) => 99,
        _ => 0,
    };
    let cancel_reason = match e.kind {
        ExecKind::Cancelled(r) | ExecKind::Reduced(r) => cancel_code(r),
        _ => 0,
    };
    let done = matches!(
        e.kind,
        ExecKind::Cancelled(_) | ExecKind::Rejected(_) | ExecKind::GatewayRejected(_)
    );
    let msg = ExecMsg {
        seq: 0,
        order_id: e.order_id,
        cl_ord_id: o.client_id,
        orig_cl_ord_id: e.orig_client_id,
        account: o.account.0,
        market: o.market.0,
        exec_type,
        ord_status,
        side: if o.side == Side::Buy { 1 } else { 2 },
        fill_kind: match e.fill {
            FillKind::Normal => 0,
            FillKind::Liquidation => 1,
            FillKind::Adl => 2,
        },
        liquidity: if e.kind == ExecKind::Trade {
            if e.maker {
                1
            } else {
                2
            }
        } else {
            0
        },
        reject_code,
        cancel_reason,
        price: o.price,
        qty: o.qty,
        leaves: if done { 0 } else { o.leaves },
        cum: o.cum,
        last_px: e.last_px,
        last_qty: e.last_qty,
        fee: e.fee,
    };
    send(io, u, |seq| ServerMsg::Exec(ExecMsg { seq, ..msg }));
}

/// `CancelReason` as a wire code (1-based, in declaration order).
pub(super) fn cancel_code(r: CancelReason) -> u8 {
    match r {
        CancelReason::User => 1,
        CancelReason::MassCancel => 2,
        CancelReason::Unfilled => 3,
        CancelReason::FillOrKill => 4,
        CancelReason::SelfTrade => 5,
        CancelReason::Liquidation => 6,
        CancelReason::Margin => 7,
        CancelReason::ReduceOnly => 8,
    }
}

/// CancelReject: reason 1 for an unknown order (whether the gateway or the engine
/// found it unknown), 99 when throttled, else the engine's OrdRejReason code.
pub(super) fn send_cancel_reject(io: &mut Io, u: usize, ctx: &Ctx, why: CxlWhy) {
    let (cl, orig) = ctx.ids();
    let code = match why {
        CxlWhy::Unknown | CxlWhy::Engine(RejectReason::UnknownOrder) => 1,
        CxlWhy::Throttled => 99,
        CxlWhy::Engine(r) => reject_reason(r).0 as u8,
    };
    send(io, u, |seq| ServerMsg::CancelReject {
        seq,
        cl_ord_id: cl,
        orig_cl_ord_id: orig,
        reason: code,
    });
}

pub(super) fn send_mass_cancel(io: &mut Io, u: usize, n: usize, rejected: Option<RejectReason>) {
    let result = rejected.map_or(0, |r| reject_reason(r).0 as u8);
    send(io, u, |seq| ServerMsg::MassCancelDone {
        seq,
        count: n as u32,
        result,
    });
}

pub(super) fn send_admin_ack(
    io: &mut Io,
    u: usize,
    command_seq: u64,
    rejected: Option<RejectReason>,
) {
    let result = rejected.map_or(0, |r| reject_reason(r).0 as u8);
    send(io, u, |seq| ServerMsg::AdminAck {
        seq,
        command_seq,
        result,
    });
}

pub(super) fn timers(io: &mut Io, now: Instant) {
    for u in 0..io.users.len() {
        let Some(t) = io.users[u].bin_conn else {
            continue;
        };
        let (Some(c), Some(s)) = (io.conns[t].as_mut(), io.users[u].bin.as_mut()) else {
            continue;
        };
        if now.duration_since(s.last_in) > s.heartbeat * 3 {
            ServerMsg::Logout { reason: 3 }.encode(&mut c.wbuf);
            c.closing = true;
        } else if now.duration_since(s.last_out) >= s.heartbeat {
            ServerMsg::Heartbeat.encode(&mut c.wbuf);
            s.last_out = now;
        }
    }
}
