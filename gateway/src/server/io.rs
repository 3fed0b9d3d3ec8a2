//! The I/O thread: one `mio` poll loop over the listeners and every connection. It
//! frames and decodes input, runs the FIX session layer, authenticates, throttles,
//! pushes requests into the inbound ring, takes replies off the outbound ring, holds
//! them until their command is durable, and writes execution reports and market data.
//!
//! Invariants: a connection's input is only consumed while the inbound ring has room
//! (otherwise it waits in its buffer: back-pressure, nothing dropped); replies are
//! released strictly in ring order and only once `seq ≤ durable`; a market-data
//! subscriber whose unsent bytes pass the bound is disconnected instead of slowing
//! anything else; nothing read from the network can panic this thread.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cascade_core::{AccountId, CancelReason, EventKind};
use crossbeam::queue::ArrayQueue;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

#[path = "io_binary.rs"]
mod binary_io;

use super::engine::{recover, EngineThread};
use super::orders::{report, Ctx, CxlWhy, Exec, ExecKind, Mirror};
use super::request::{Ask, Body, Origin, Reply, Request};
use super::Shared;
use crate::auth::{self, Gate, Lockout};
use crate::config::GatewayConfig;
use crate::fix::app::{self, AppIn, Pending};
use crate::fix::message::{next_frame, Frame, Message};
use crate::fix::session::{FixSession, Step};
use crate::marketdata::{self, Hub};
use crate::metrics::Metrics;
use crate::throttle::{Throttle, Verdict};

const FIX_L: Token = Token(0);
const BIN_L: Token = Token(1);
const MD_L: Token = Token(2);
const METRICS_L: Token = Token(3);
const WAKER: Token = Token(4);
const FIRST_CONN: usize = 16;
/// Messages one connection may have processed per turn of the poll loop: a flooding
/// session waits its turn behind the others instead of starving them.
const TURN_BUDGET: usize = 64;
/// An order-entry connection with more unsent bytes than this is not reading: closed
/// (its reports stay in the session store for a replay or resend).
const WBUF_MAX: usize = 64 << 20;
/// Kernel send buffer of a market-data connection.
const MD_SNDBUF: usize = 64 * 1024;

/// What a connection speaks.
#[derive(Debug)]
enum Proto {
    Fix { user: Option<usize> },
    Binary { user: Option<usize> },
    Md { subscribed: bool },
    Http,
}

struct Conn {
    stream: TcpStream,
    gen: u32,
    peer: SocketAddr,
    proto: Proto,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    closing: bool,
    eof: bool,
    /// Reading stopped at the buffer bound before the socket said WouldBlock: with
    /// edge-triggered readiness no new event will come, so read again ourselves.
    unread: bool,
    /// Its logon's password is being checked: input waits in the buffer.
    auth_pending: bool,
    /// A closing connection that has not drained by then is cut anyway.
    close_by: Option<Instant>,
    throttle: Throttle,
}

/// A configured user and its sessions.
struct User {
    username: String,
    /// `None`: the admin.
    account: Option<AccountId>,
    hash: String,
    cancel_on_disconnect: bool,
    fix: Option<FixSession>,
    fix_conn: Option<usize>,
    bin: Option<binary_io::BinSession>,
    bin_conn: Option<usize>,
}

/// Which protocol a request came in on (its specific answers go back on it alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Fix,
    Binary,
    Gateway,
}

/// A request in flight, as the answer needs it.
struct InFlight {
    user: usize,
    pending: Pending,
    ctx: Ctx,
    via: Via,
}

/// A logon held back by the lockout, answered when due.
struct Delayed {
    due: Instant,
    token: usize,
    gen: u32,
    logon: HeldLogon,
}

/// A logon waiting for its password check.
struct AuthTag {
    token: usize,
    gen: u32,
    ip: IpAddr,
    /// The user the name belongs to (`None`: unknown, or the name fields disagree).
    user: Option<usize>,
    logon: HeldLogon,
}

/// The held logon itself.
enum HeldLogon {
    /// A FIX Logon frame.
    Fix(Vec<u8>),
    /// A binary logon: user name, password, replay-from number, heartbeat.
    Binary(String, String, u64, u32),
}

/// The I/O thread's state.
pub struct Io {
    cfg: GatewayConfig,
    poll: Poll,
    listeners: Vec<(Token, TcpListener)>,
    conns: Vec<Option<Conn>>,
    gens: Vec<u32>,
    users: Vec<User>,
    by_name: HashMap<String, usize>,
    by_account: HashMap<u32, usize>,
    shared: Arc<Shared>,
    inbound: Arc<ArrayQueue<Request>>,
    outbound: Arc<ArrayQueue<Reply>>,
    engine: std::thread::Thread,
    held: VecDeque<Reply>,
    in_flight: HashMap<u64, InFlight>,
    next_rid: u64,
    mirror: Mirror,
    hub: Hub,
    lockout: Lockout,
    verifier: Option<auth::Verifier<AuthTag>>,
    /// Password checks queued or running, per address (at most
    /// `limits.checks_per_address`).
    checking: HashMap<IpAddr, u32>,
    delayed: Vec<Delayed>,
    stalled: Vec<usize>,
    execs: Vec<Exec>,
    /// The markets' wire conventions, shared so a report can hold one while the
    /// session writes it (no copy per report).
    markets: Arc<[crate::config::MarketSpec]>,
    metrics: Metrics,
    last_timers: Instant,
    stopping: bool,
}

/// Recovers, starts the engine thread, listens, prints the ready line, and serves
/// until `stop` is set; then drains and shuts down in order.
pub fn serve(cfg: GatewayConfig, shared: Arc<Shared>, stop: &AtomicBool) -> Result<(), String> {
    serve_with(cfg, shared, stop, None)
}

/// The addresses a running gateway listens on.
#[derive(Clone, Copy, Debug)]
pub struct Addrs {
    /// FIX order entry.
    pub fix: SocketAddr,
    /// Binary order entry.
    pub binary: SocketAddr,
    /// Market data.
    pub marketdata: SocketAddr,
    /// Metrics.
    pub metrics: SocketAddr,
}

/// [`serve`] for embedding (load tools, examples): with `ready`, the addresses are sent
/// there instead of printed.
pub fn serve_with(
    cfg: GatewayConfig,
    shared: Arc<Shared>,
    stop: &AtomicBool,
    ready: Option<std::sync::mpsc::Sender<Addrs>>,
) -> Result<(), String> {
    let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| format!("waker: {e}"))?);
    // The journal's writer thread publishes the watermark and wakes this thread itself.
    let hook = {
        let (shared, waker) = (Arc::clone(&shared), Arc::clone(&waker));
        crate::journal::DurableHook(Arc::new(move |d| {
            if shared.durable_seq.fetch_max(d, Ordering::AcqRel) < d {
                let _ = waker.wake();
            }
        }))
    };
    let (engine, journal, note) = recover(&cfg, Some(hook))?;
    crate::log!("info", "recovered", "{note}");
    let inbound = Arc::new(ArrayQueue::new(cfg.gateway.inbound_ring));
    let outbound = Arc::new(ArrayQueue::new(cfg.gateway.outbound_ring));
    let mut et = EngineThread::new(
        &cfg,
        (engine, journal),
        Arc::clone(&shared),
        Arc::clone(&inbound),
        Arc::clone(&outbound),
        Arc::clone(&waker),
    );
    et.genesis(&cfg)?;
    let startup = et.startup_reply();
    let g = &cfg.gateway;
    let host: IpAddr = g.host.parse().map_err(|e| format!("gateway.host: {e}"))?;
    let mut listeners = Vec::new();
    let mut addrs = Vec::new();
    for (tok, port, key) in [
        (FIX_L, g.fix_port, "fix_port"),
        (BIN_L, g.binary_port, "binary_port"),
        (MD_L, g.marketdata_port, "marketdata_port"),
        (METRICS_L, g.metrics_port, "metrics_port"),
    ] {
        let mut l = TcpListener::bind(SocketAddr::new(host, port)).map_err(|e| {
            format!("config key `gateway.{key}`: cannot listen on {host}:{port}: {e}")
        })?;
        poll.registry()
            .register(&mut l, tok, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        addrs.push(l.local_addr().map_err(|e| e.to_string())?);
        listeners.push((tok, l));
    }
    let cpu = g.engine_cpu;
    let handle = std::thread::Builder::new()
        .name("cascade-engine".into())
        .spawn(move || {
            if cpu >= 0 {
                let ok = core_affinity::get_core_ids()
                    .and_then(|ids| ids.into_iter().find(|c| c.id == cpu as usize))
                    .is_some_and(core_affinity::set_for_current);
                if !ok {
                    crate::log!(
                        "warn",
                        "unpinned",
                        "cpu={cpu} reason=\"could not pin the engine thread\""
                    );
                }
            }
            et.run(startup)
        })
        .map_err(|e| e.to_string())?;
    let verifier = {
        let waker = Arc::clone(&waker);
        auth::Verifier::spawn(move || {
            let _ = waker.wake();
        })
        .map_err(|e| format!("auth thread: {e}"))?
    };
    let mut io = Io::new(
        cfg,
        poll,
        listeners,
        shared,
        inbound,
        outbound,
        handle.thread().clone(),
    )?;
    io.verifier = Some(verifier);
    let a = Addrs {
        fix: addrs[0],
        binary: addrs[1],
        marketdata: addrs[2],
        metrics: addrs[3],
    };
    if let Some(tx) = ready {
        let _ = tx.send(a);
    } else {
        println!(
            "listening fix={} binary={} marketdata={} metrics={} journal={}",
            a.fix,
            a.binary,
            a.marketdata,
            a.metrics,
            io.cfg.gateway.journal_dir.display()
        );
        let _ = std::io::stdout().flush();
    }
    let served = io.run(stop);
    io.shared.stop.store(true, Ordering::Release);
    io.engine.unpark();
    let engine = handle
        .join()
        .map_err(|_| "the engine thread panicked".to_string())?;
    served?;
    engine?;
    crate::log!("info", "stopped", "durable_seq={}", io.shared.durable());
    Ok(())
}

impl Io {
    #[allow(clippy::too_many_arguments)]
    fn new(
        cfg: GatewayConfig,
        poll: Poll,
        listeners: Vec<(Token, TcpListener)>,
        shared: Arc<Shared>,
        inbound: Arc<ArrayQueue<Request>>,
        outbound: Arc<ArrayQueue<Reply>>,
        engine: std::thread::Thread,
    ) -> Result<Io, String> {
        let mut users = Vec::new();
        for a in &cfg.accounts {
            users.push(User {
                username: a.username.clone(),
                account: Some(AccountId(a.id)),
                hash: a.password_hash.clone(),
                cancel_on_disconnect: a.cancel_on_disconnect,
                fix: None,
                fix_conn: None,
                bin: None,
                bin_conn: None,
            });
        }
        users.push(User {
            username: cfg.admin.username.clone(),
            account: None,
            hash: cfg.admin.password_hash.clone(),
            cancel_on_disconnect: false,
            fix: None,
            fix_conn: None,
            bin: None,
            bin_conn: None,
        });
        let tolerance = (cfg.gateway.sending_time_tolerance_secs * 1000) as i64;
        for u in &mut users {
            let dir = cfg
                .gateway
                .journal_dir
                .join("sessions")
                .join("fix")
                .join(&u.username);
            if dir.exists() {
                u.fix = Some(
                    FixSession::open(&dir, &u.username, &cfg.gateway.comp_id, tolerance)
                        .map_err(|e| format!("{}: {e}", dir.display()))?,
                );
            }
            // Binary sessions, likewise: reports for users not connected since the
            // start are stored for their replay.
            let bin = cfg
                .gateway
                .journal_dir
                .join("sessions")
                .join("binary")
                .join(&u.username);
            if bin.exists() {
                u.bin = Some(
                    binary_io::BinSession::open(&bin)
                        .map_err(|e| format!("{}: {e}", bin.display()))?,
                );
            }
        }
        let by_name = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.username.clone(), i))
            .collect();
        let by_account = users
            .iter()
            .enumerate()
            .filter_map(|(i, u)| u.account.map(|a| (a.0, i)))
            .collect();
        Ok(Io {
            lockout: Lockout::new(cfg.limits),
            verifier: None,
            markets: cfg.markets.clone().into(),
            checking: HashMap::new(),
            cfg,
            poll,
            listeners,
            conns: Vec::new(),
            gens: Vec::new(),
            users,
            by_name,
            by_account,
            shared,
            inbound,
            outbound,
            engine,
            held: VecDeque::new(),
            in_flight: HashMap::new(),
            next_rid: 1,
            mirror: Mirror::default(),
            hub: Hub::new(1 << 16),
            delayed: Vec::new(),
            stalled: Vec::new(),
            execs: Vec::new(),
            metrics: Metrics::default(),
            last_timers: Instant::now(),
            stopping: false,
        })
    }

    fn run(&mut self, stop: &AtomicBool) -> Result<(), String> {
        let mut events = Events::with_capacity(1024);
        loop {
            let busy = !self.held.is_empty() || !self.stalled.is_empty();
            let timeout = if busy {
                Duration::from_millis(1)
            } else {
                Duration::from_millis(20)
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    return Err(format!("poll: {e}"));
                }
            }
            for ev in &events {
                match ev.token() {
                    WAKER => {}
                    t if t.0 < FIRST_CONN => self.accept(t),
                    t => self.on_ready(t.0 - FIRST_CONN),
                }
            }
            self.take_auth();
            self.retry_stalled();
            self.take_replies();
            let now = Instant::now();
            if now.duration_since(self.last_timers) >= Duration::from_millis(100) {
                self.last_timers = now;
                self.timers(now);
            }
            self.flush_all();
            if stop.load(Ordering::Acquire) && !self.stopping {
                self.begin_stop();
            }
            if self.stopping && self.shared.engine_done.load(Ordering::Acquire) {
                self.take_replies();
                if self.outbound.is_empty() && self.held.is_empty() {
                    self.finish_stop();
                    return Ok(());
                }
            }
        }
    }

    fn begin_stop(&mut self) {
        crate::log!("info", "stopping", "reason=signal");
        self.stopping = true;
        for (_, l) in &mut self.listeners {
            let _ = self.poll.registry().deregister(l);
        }
        self.listeners.clear();
        self.shared.stop.store(true, Ordering::Release);
        self.engine.unpark();
    }

    fn finish_stop(&mut self) {
        for t in 0..self.conns.len() {
            let Some(c) = self.conns[t].as_mut() else {
                continue;
            };
            match c.proto {
                Proto::Fix { user: Some(u) } => {
                    if let Some(s) = self.users[u].fix.as_mut() {
                        let _ = s.logout(&mut c.wbuf, "gateway shutting down");
                    }
                }
                Proto::Binary { user: Some(_) } => {
                    crate::binary::ServerMsg::Logout { reason: 4 }.encode(&mut c.wbuf);
                }
                Proto::Md { .. } => {
                    marketdata::disconnect_frame(&mut c.wbuf, marketdata::disconnect::SHUTDOWN);
                }
                _ => {}
            }
            c.closing = true;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && self.conns.iter().flatten().any(|c| !c.wbuf.is_empty()) {
            self.flush_all();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn accept(&mut self, t: Token) {
        let Some(idx) = self.listeners.iter().position(|(lt, _)| *lt == t) else {
            return;
        };
        loop {
            let (mut stream, peer) = match self.listeners[idx].1.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    crate::log!("error", "accept", "error={:?}", e.to_string());
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            if t == MD_L {
                // A fixed kernel send buffer (no autotuning up to megabytes): what a
                // stalled reader can hold back is bounded by it plus md_buffer_bytes.
                let _ = socket2::SockRef::from(&stream).set_send_buffer_size(MD_SNDBUF);
            }
            let slot = self
                .conns
                .iter()
                .position(Option::is_none)
                .unwrap_or_else(|| {
                    self.conns.push(None);
                    self.gens.push(0);
                    self.conns.len() - 1
                });
            if self
                .poll
                .registry()
                .register(
                    &mut stream,
                    Token(FIRST_CONN + slot),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                continue;
            }
            self.gens[slot] += 1;
            let proto = match t {
                FIX_L => Proto::Fix { user: None },
                BIN_L => Proto::Binary { user: None },
                MD_L => Proto::Md { subscribed: false },
                _ => Proto::Http,
            };
            self.metrics.connections += 1;
            let l = self.cfg.limits;
            self.conns[slot] = Some(Conn {
                stream,
                gen: self.gens[slot],
                peer,
                proto,
                rbuf: Vec::new(),
                wbuf: Vec::new(),
                closing: false,
                eof: false,
                unread: false,
                auth_pending: false,
                close_by: None,
                throttle: Throttle::new(
                    l.soft_orders_per_sec,
                    l.hard_orders_per_sec,
                    Instant::now(),
                ),
            });
        }
    }

    fn on_ready(&mut self, t: usize) {
        let max = self.cfg.gateway.max_message_bytes;
        let Some(c) = self.conns.get_mut(t).and_then(Option::as_mut) else {
            return;
        };
        let mut buf = [0u8; 16 * 1024];
        c.unread = true;
        while c.rbuf.len() < 4 * max && !c.eof {
            match c.stream.read(&mut buf) {
                Ok(0) => c.eof = true,
                Ok(n) => {
                    c.rbuf.extend_from_slice(&buf[..n]);
                    self.metrics.bytes_in += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    c.unread = false;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => c.eof = true,
            }
        }
        if c.eof {
            c.unread = false;
        }
        self.process(t);
    }

    fn process(&mut self, t: usize) {
        let Some(c) = self.conns.get(t).and_then(Option::as_ref) else {
            return;
        };
        if self.stopping && !matches!(c.proto, Proto::Http) {
            return;
        }
        match c.proto {
            Proto::Fix { .. } => self.fix_input(t),
            Proto::Binary { .. } => binary_io::input(self, t),
            Proto::Md { .. } => self.md_input(t),
            Proto::Http => self.http_input(t),
        }
        let Some(c) = self.conns.get(t).and_then(Option::as_ref) else {
            return;
        };
        let wants_more = c.unread || c.rbuf.len() >= 4 * self.cfg.gateway.max_message_bytes;
        let wants_more = wants_more || self.stalled.contains(&t);
        if c.eof && !wants_more {
            self.close(t);
        } else if wants_more && !self.stalled.contains(&t) {
            self.stalled.push(t);
        }
    }

    fn retry_stalled(&mut self) {
        if self.stalled.is_empty() || self.inbound.len() + 64 > self.inbound.capacity() {
            return;
        }
        // Input already buffered is processed before more is read.
        let list = std::mem::take(&mut self.stalled);
        for t in list {
            self.on_ready(t);
        }
    }

    fn ring_has_room(&self) -> bool {
        self.inbound.len() + 1 < self.inbound.capacity()
    }

    /// Sends a request to the engine thread (the caller checked there is room).
    fn send_request(
        &mut self,
        t: Option<usize>,
        user: usize,
        ask: Ask,
        ctx: Ctx,
        pending: Pending,
    ) {
        let rid = self.next_rid;
        self.next_rid += 1;
        let origin = t.and_then(|t| {
            self.conns[t].as_ref().map(|c| Origin {
                token: t,
                gen: c.gen,
            })
        });
        let via = match t.and_then(|t| self.conns[t].as_ref()).map(|c| &c.proto) {
            Some(Proto::Fix { .. }) => Via::Fix,
            Some(Proto::Binary { .. }) => Via::Binary,
            _ => Via::Gateway,
        };
        self.in_flight.insert(
            rid,
            InFlight {
                user,
                pending,
                ctx,
                via,
            },
        );
        let mut req = Request {
            origin,
            rid,
            what: ask,
        };
        while let Err(back) = self.inbound.push(req) {
            req = back;
            self.engine.unpark();
            std::thread::yield_now();
        }
        self.metrics.requests += 1;
        self.engine.unpark();
    }

    // ---- FIX ----

    fn fix_input(&mut self, t: usize) {
        let max = self.cfg.gateway.max_message_bytes;
        // The input is taken out of the connection while its messages are handled, so
        // each is handed on as a slice (no copy); what is left goes back afterwards.
        let Some(c) = self.conns[t].as_mut() else {
            return;
        };
        let buf = std::mem::take(&mut c.rbuf);
        let mut at = 0;
        let mut budget = TURN_BUDGET;
        loop {
            let room = self.ring_has_room();
            let Some(c) = self.conns[t].as_mut() else {
                return;
            };
            if c.closing || c.auth_pending {
                break;
            }
            match next_frame(&buf[at..], max) {
                Frame::Incomplete => break,
                Frame::Garbled(n) => {
                    at += n;
                    self.metrics.garbled += 1;
                }
                Frame::TooLong => {
                    self.metrics.garbled += 1;
                    c.closing = true;
                    break;
                }
                Frame::Message(n) => {
                    if !room || budget == 0 {
                        if !self.stalled.contains(&t) {
                            self.stalled.push(t);
                        }
                        break;
                    }
                    budget -= 1;
                    let frame = &buf[at..at + n];
                    at += n;
                    self.metrics.fix_in += 1;
                    self.fix_message(t, frame);
                }
            }
        }
        if let Some(c) = self.conns[t].as_mut() {
            if c.closing {
                c.rbuf.clear();
            } else {
                let mut rest = buf;
                rest.drain(..at);
                rest.extend_from_slice(&c.rbuf);
                c.rbuf = rest;
            }
        }
    }

    fn fix_message(&mut self, t: usize, frame: &[u8]) {
        let Some(c) = self.conns[t].as_mut() else {
            return;
        };
        let Proto::Fix { user } = c.proto else {
            return;
        };
        let msg = match Message::parse(frame) {
            Ok(m) => m,
            Err(e) => {
                if let Some(u) = user {
                    let seq = seq_of(frame);
                    if let Some(s) = self.users[u].fix.as_mut() {
                        if seq == Some(s.next_in()) {
                            let _ = s.reject(
                                &mut c.wbuf,
                                s.next_in(),
                                b"",
                                e.reason,
                                e.tag,
                                "malformed field",
                            );
                            let next = s.next_in() + 1;
                            let _ = s.set_next_in(next);
                        }
                    }
                } else {
                    c.closing = true;
                }
                return;
            }
        };
        let Some(u) = user else {
            self.fix_logon(t, &msg, frame, false);
            return;
        };
        let Some(s) = self.users[u].fix.as_mut() else {
            return;
        };
        match s.on_message(&msg, &mut c.wbuf) {
            Ok(Step::Done) => {}
            Ok(Step::Close) | Err(_) => c.closing = true,
            Ok(Step::App) => self.fix_app(t, u, &msg),
        }
    }

    fn fix_logon(&mut self, t: usize, msg: &Message<'_>, frame: &[u8], gated: bool) {
        let Some(c) = self.conns[t].as_mut() else {
            return;
        };
        let ip = c.peer.ip();
        if msg.msg_type() != b"A" || msg.text(56) != Some(self.cfg.gateway.comp_id.as_str()) {
            c.closing = true;
            return;
        }
        let now = Instant::now();
        if !gated {
            match self.lockout.gate(ip, now) {
                Gate::Open => {}
                Gate::Refuse => {
                    self.metrics.logon_refused += 1;
                    refuse_fix(
                        c,
                        msg,
                        &self.cfg.gateway.comp_id,
                        "too many failed logons from this address",
                    );
                    return;
                }
                Gate::Delay(d) => {
                    self.delayed.push(Delayed {
                        due: now + d,
                        token: t,
                        gen: c.gen,
                        logon: HeldLogon::Fix(frame.to_vec()),
                    });
                    return;
                }
            }
        }
        let name = msg.text(49).unwrap_or("");
        let user = self
            .by_name
            .get(name)
            .copied()
            .filter(|_| msg.text(553).is_none_or(|n| n == name));
        if !start_check(&mut self.checking, ip, self.cfg.limits.checks_per_address) {
            refuse_fix(
                c,
                msg,
                &self.cfg.gateway.comp_id,
                "too many logons in progress from this address",
            );
            return;
        }
        let phc = user.map(|u| self.users[u].hash.as_str());
        c.auth_pending = true;
        let tag = AuthTag {
            token: t,
            gen: c.gen,
            ip,
            user,
            logon: HeldLogon::Fix(frame.to_vec()),
        };
        if let Some(v) = &self.verifier {
            v.submit(phc, msg.get(554).unwrap_or(b""), tag);
        }
    }

    /// Password answers: each logon goes on where it stopped, then its buffered input.
    fn take_auth(&mut self) {
        while let Some((tag, ok)) = self.verifier.as_ref().and_then(auth::Verifier::try_recv) {
            if let Some(n) = self.checking.get_mut(&tag.ip) {
                *n -= 1;
                if *n == 0 {
                    self.checking.remove(&tag.ip);
                }
            }
            let Some(c) = self.conns.get_mut(tag.token).and_then(Option::as_mut) else {
                continue;
            };
            if c.gen != tag.gen {
                continue;
            }
            c.auth_pending = false;
            let ip = c.peer.ip();
            let ok = ok && tag.user.is_some();
            self.lockout.record(ip, ok, Instant::now());
            match tag.logon {
                HeldLogon::Fix(frame) => {
                    if let Ok(m) = Message::parse(&frame) {
                        self.fix_logon_checked(tag.token, &m, tag.user.filter(|_| ok));
                    }
                }
                HeldLogon::Binary(_, _, next, hb) => {
                    binary_io::logon_checked(self, tag.token, tag.user.filter(|_| ok), next, hb);
                }
            }
            self.process(tag.token);
        }
    }

    /// The rest of a FIX logon once the password check answered (`user`: `None` if it
    /// failed).
    fn fix_logon_checked(&mut self, t: usize, msg: &Message<'_>, user: Option<usize>) {
        let Some(c) = self.conns[t].as_mut() else {
            return;
        };
        let Some(u) = user else {
            crate::log!(
                "warn",
                "logon_refused",
                "peer={} proto=fix reason=credentials",
                c.peer
            );
            self.metrics.logon_failed += 1;
            refuse_fix(c, msg, &self.cfg.gateway.comp_id, "invalid credentials");
            return;
        };
        let name = self.users[u].username.clone();
        if self.users[u].fix_conn.is_some() {
            refuse_fix(
                c,
                msg,
                &self.cfg.gateway.comp_id,
                "session already logged on",
            );
            return;
        }
        let hb = match msg.uint(108) {
            Ok(h) if h <= 3600 => h,
            _ => {
                refuse_fix(
                    c,
                    msg,
                    &self.cfg.gateway.comp_id,
                    "HeartBtInt(108) required, 0 to 3600",
                );
                return;
            }
        };
        if self.users[u].fix.is_none() {
            let dir = self
                .cfg
                .gateway
                .journal_dir
                .join("sessions")
                .join("fix")
                .join(&name);
            let tol = (self.cfg.gateway.sending_time_tolerance_secs * 1000) as i64;
            match FixSession::open(&dir, &name, &self.cfg.gateway.comp_id, tol) {
                Ok(s) => self.users[u].fix = Some(s),
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
        let Some(s) = self.users[u].fix.as_mut() else {
            return;
        };
        let reset = msg.flag(141);
        if reset {
            let _ = s.reset();
        }
        let seq = msg.uint(34).unwrap_or(0);
        if seq < s.next_in() || seq == 0 {
            let text = format!(
                "MsgSeqNum too low, expecting {} but received {seq}",
                s.next_in()
            );
            let _ = s.logout(&mut c.wbuf, &text);
            c.closing = true;
            return;
        }
        let gap = seq > s.next_in();
        if !gap {
            let _ = s.set_next_in(seq + 1);
        }
        if s.logon_reply(&mut c.wbuf, hb, reset).is_err() {
            c.closing = true;
            return;
        }
        if gap {
            let _ = s.resend_request(&mut c.wbuf, seq);
        }
        c.proto = Proto::Fix { user: Some(u) };
        crate::log!(
            "info",
            "logon",
            "user={name} proto=fix peer={} next_in={}",
            c.peer,
            seq + u64::from(!gap)
        );
        self.users[u].fix_conn = Some(t);
        self.metrics.logons += 1;
    }

    fn fix_app(&mut self, t: usize, u: usize, msg: &Message<'_>) {
        let seq = msg.uint(34).unwrap_or(0);
        let Some(account) = self.users[u].account else {
            self.fix_admin(t, u, msg, seq);
            return;
        };
        match app::parse(&self.cfg, msg, account) {
            AppIn::Request(ask, ctx, pending) => {
                let counts = matches!(
                    ask,
                    Ask::Command(
                        cascade_core::CommandKind::NewOrder(_)
                            | cascade_core::CommandKind::NewConditional(_)
                    ) | Ask::ReplaceByClient { .. }
                );
                if counts {
                    let verdict = match self.conns[t].as_mut() {
                        Some(c) => c.throttle.order(Instant::now()),
                        None => return,
                    };
                    match verdict {
                        Verdict::Pass => {}
                        Verdict::Reject => {
                            self.metrics.throttled += 1;
                            if let Ctx::New(info) = ctx {
                                let e = report(
                                    ExecKind::GatewayRejected(
                                        "throttled: order rate above the session's soft limit",
                                    ),
                                    0,
                                    info,
                                );
                                self.send_exec(u, &e, &format!("T{seq}"));
                            } else {
                                self.send_cancel_reject(
                                    u,
                                    &ctx,
                                    false,
                                    CxlWhy::Throttled,
                                    Via::Fix,
                                );
                            }
                            return;
                        }
                        Verdict::Logout => {
                            self.metrics.throttled += 1;
                            let Some(c) = self.conns[t].as_mut() else {
                                return;
                            };
                            if let Some(s) = self.users[u].fix.as_mut() {
                                let _ = s.logout(
                                    &mut c.wbuf,
                                    "order rate above the session's hard limit",
                                );
                            }
                            c.closing = true;
                            return;
                        }
                    }
                }
                self.send_request(Some(t), u, ask, ctx, pending);
            }
            AppIn::Reject(e, text) => {
                self.metrics.session_rejects += 1;
                let Some(c) = self.conns[t].as_mut() else {
                    return;
                };
                if let Some(s) = self.users[u].fix.as_mut() {
                    let _ = s.reject(&mut c.wbuf, seq, msg.msg_type(), e.reason, e.tag, text);
                }
            }
            AppIn::Business(reason, text) => {
                self.metrics.business_rejects += 1;
                let ref_id = msg.get(11);
                self.fix_send(u, "j", |b| {
                    app::business_reject(b, seq, msg.msg_type(), reason, text, ref_id);
                });
            }
        }
    }

    fn fix_admin(&mut self, t: usize, u: usize, msg: &Message<'_>, seq: u64) {
        match crate::fix::admin::parse(&self.cfg, msg) {
            Ok(kind) => {
                self.send_request(Some(t), u, Ask::Command(kind), Ctx::Other, Pending::Order);
            }
            Err((reason, text)) => {
                self.metrics.business_rejects += 1;
                self.fix_send(u, "j", |b| {
                    app::business_reject(b, seq, msg.msg_type(), reason, text, None);
                });
            }
        }
    }

    /// Sends (or stores, when the user is not connected) an application message on the
    /// user's FIX session, if it has one.
    fn fix_send(
        &mut self,
        u: usize,
        msg_type: &str,
        f: impl FnOnce(&mut crate::fix::session::BodyWriter<'_>),
    ) {
        let user = &mut self.users[u];
        let Some(s) = user.fix.as_mut() else { return };
        let body = s.body(f);
        let out = user
            .fix_conn
            .and_then(|t| self.conns[t].as_mut())
            .map(|c| &mut c.wbuf);
        if s.send_app(out, msg_type, &body).is_ok() {
            self.metrics.fix_out += 1;
        }
    }

    fn send_exec(&mut self, u: usize, e: &Exec, exec_id: &str) {
        let markets = Arc::clone(&self.markets);
        let Some(spec) = markets.get(e.order.market.0 as usize) else {
            return;
        };
        self.fix_send(u, "8", |b| app::exec_report(b, e, spec, exec_id));
        binary_io::send_exec(self, u, e);
    }

    fn send_cancel_reject(&mut self, u: usize, ctx: &Ctx, cancel: bool, why: CxlWhy, via: Via) {
        match via {
            Via::Fix => self.fix_send(u, "9", |b| app::cancel_reject(b, ctx, cancel, why)),
            Via::Binary => binary_io::send_cancel_reject(self, u, ctx, why),
            Via::Gateway => {}
        }
    }

    // ---- replies ----

    fn take_replies(&mut self) {
        while let Some(r) = self.outbound.pop() {
            self.held.push_back(r);
        }
        let durable = self.shared.durable();
        while self.held.front().is_some_and(|r| r.seq <= durable) {
            let Some(r) = self.held.pop_front() else {
                break;
            };
            self.deliver(r);
        }
        let new = self.hub.take();
        if !new.is_empty() {
            self.broadcast(&new);
        }
    }

    fn deliver(&mut self, r: Reply) {
        let flight = if r.rid == 0 {
            None
        } else {
            self.in_flight.remove(&r.rid)
        };
        match r.body {
            Body::Startup { orders, levels } => {
                self.mirror.seed(&orders);
                self.hub.seed(&levels);
            }
            Body::Stats(rows) => self.hub.on_stats(&rows),
            Body::Events(events) => {
                let ctx = flight.as_ref().map_or(Ctx::Other, |f| f.ctx);
                let mut execs = std::mem::take(&mut self.execs);
                execs.clear();
                self.mirror.apply(&events, &ctx, &mut execs);
                self.hub.on_events(&events);
                let rejected = cascade_core::event::rejection(&events);
                if rejected.is_some() {
                    self.metrics.engine_rejects += 1;
                }
                for (i, e) in execs.iter().enumerate() {
                    if let Some(&u) = self.by_account.get(&e.order.account.0) {
                        self.send_exec(u, e, &format!("{}.{i}", r.seq));
                    }
                }
                self.execs = execs;
                if let Some(f) = flight {
                    self.answer(f, r.seq, &events, rejected);
                }
            }
            Body::Unknown => {
                if let Some(f) = flight {
                    if let Pending::CancelOrReplace(cancel) = f.pending {
                        self.send_cancel_reject(f.user, &f.ctx, cancel, CxlWhy::Unknown, f.via);
                    }
                }
            }
            Body::Order(view) => {
                if let Some(f) = flight {
                    self.status_answer(&f, view);
                }
            }
            Body::Positions(rows) => {
                if let Some(f) = flight {
                    self.positions_answer(f, &rows, r.seq);
                }
            }
        }
    }

    /// The request-specific part of an answer (cancel rejects, mass-cancel reports).
    fn answer(
        &mut self,
        f: InFlight,
        seq: u64,
        events: &[cascade_core::Event],
        rejected: Option<cascade_core::RejectReason>,
    ) {
        match f.pending {
            Pending::CancelOrReplace(cancel) => {
                if let Some(r) = rejected {
                    self.send_cancel_reject(f.user, &f.ctx, cancel, CxlWhy::Engine(r), f.via);
                }
            }
            Pending::MassCancel(cl, kind, market) => {
                let n = events
                    .iter()
                    .filter(|e| {
                        matches!(
                            e.kind,
                            EventKind::Cancelled {
                                reason: CancelReason::MassCancel,
                                ..
                            }
                        )
                    })
                    .count();
                let symbol = market
                    .and_then(|m| self.cfg.markets.get(m.0 as usize))
                    .map(|s| s.symbol.clone());
                match f.via {
                    Via::Fix => self.fix_send(f.user, "r", |b| {
                        app::mass_cancel_report(b, &cl, kind, n, rejected, symbol.as_deref());
                    }),
                    Via::Binary => binary_io::send_mass_cancel(self, f.user, n, rejected),
                    Via::Gateway => {}
                }
            }
            Pending::Order => {
                if self.users[f.user].account.is_none() {
                    match f.via {
                        Via::Fix => self
                            .fix_send(f.user, "U2", |b| crate::fix::admin::ack(b, seq, rejected)),
                        Via::Binary => binary_io::send_admin_ack(self, f.user, seq, rejected),
                        Via::Gateway => {}
                    }
                }
            }
            Pending::Status(..) | Pending::Positions(_) | Pending::Nothing => {}
        }
    }

    /// Answers an OrderStatusRequest: the order as the mirror knows it, or a reject
    /// saying the order is unknown (not resting, or not this account's).
    fn status_answer(&mut self, f: &InFlight, view: Option<cascade_core::OrderView>) {
        let known = view.and_then(|v| self.mirror.get(v.id.0).map(|i| (v.id.0, *i)));
        let e = if let Some((id, info)) = known {
            report(ExecKind::Status, id, info)
        } else {
            let (client_id, market) = match f.pending {
                Pending::Status(cl, m) => (cl, m),
                _ => (0, cascade_core::MarketId(0)),
            };
            let account = self.users[f.user].account.unwrap_or(AccountId(0));
            let info = super::orders::OrderInfo::open(
                account,
                market,
                cascade_core::Side::Buy,
                client_id,
                0,
                0,
                super::orders::Placer::Client,
            );
            report(ExecKind::GatewayRejected("unknown order"), 0, info)
        };
        let markets = Arc::clone(&self.markets);
        let Some(spec) = markets.get(e.order.market.0 as usize) else {
            return;
        };
        let id = format!("S{}", self.next_rid);
        self.next_rid += 1;
        self.fix_send(f.user, "8", |b| app::exec_report(b, &e, spec, &id));
    }

    fn positions_answer(&mut self, f: InFlight, rows: &[super::request::PositionRow], seq: u64) {
        let Pending::Positions(req) = f.pending else {
            return;
        };
        let Some(account) = self.users[f.user].account else {
            return;
        };
        let rid = format!("P{seq}");
        self.fix_send(f.user, "AO", |b| {
            app::positions_ack(b, &req, &rid, rows.len(), account);
        });
        for (i, row) in rows.iter().enumerate() {
            let markets = Arc::clone(&self.markets);
            let Some(spec) = markets.get(row.market.0 as usize) else {
                continue;
            };
            let id = format!("{rid}.{i}");
            self.fix_send(f.user, "AP", |b| {
                app::position_report(b, &req, &id, row, spec, account);
            });
        }
    }

    // ---- market data ----

    fn md_input(&mut self, t: usize) {
        let max = self.cfg.gateway.max_message_bytes;
        loop {
            let Some(c) = self.conns[t].as_mut() else {
                return;
            };
            match crate::binary::frame::split(&c.rbuf, max) {
                crate::binary::frame::Split::Incomplete => return,
                crate::binary::frame::Split::Bad(_) => {
                    marketdata::disconnect_frame(&mut c.wbuf, marketdata::disconnect::BAD_REQUEST);
                    c.rbuf.clear();
                    c.closing = true;
                    return;
                }
                crate::binary::frame::Split::Frame {
                    template,
                    schema,
                    version,
                    len,
                } => {
                    let block =
                        crate::binary::frame::Fields(&c.rbuf[crate::binary::frame::HEADER..len]);
                    let from = block.u64(0);
                    c.rbuf.drain(..len);
                    if let (
                        marketdata::template::SUBSCRIBE,
                        marketdata::SCHEMA,
                        marketdata::VERSION,
                        Some(from),
                    ) = (template, schema, version, from)
                    {
                        self.hub.subscribe(from, &mut c.wbuf);
                        c.proto = Proto::Md { subscribed: true };
                        self.metrics.md_subscribes += 1;
                    } else {
                        marketdata::disconnect_frame(
                            &mut c.wbuf,
                            marketdata::disconnect::BAD_REQUEST,
                        );
                        c.closing = true;
                        return;
                    }
                }
            }
        }
    }

    fn broadcast(&mut self, bytes: &[u8]) {
        let bound = self.cfg.gateway.md_buffer_bytes;
        for c in self.conns.iter_mut().flatten() {
            if let Proto::Md { subscribed: true } = c.proto {
                if c.closing {
                    continue;
                }
                if c.wbuf.len() + bytes.len() > bound {
                    // Whole frames only: what is queued stays, the reason follows it, and
                    // the connection is cut after a second whether or not it drains.
                    c.close_by = Some(Instant::now() + Duration::from_secs(1));
                    marketdata::disconnect_frame(
                        &mut c.wbuf,
                        marketdata::disconnect::SLOW_CONSUMER,
                    );
                    c.closing = true;
                    self.metrics.md_slow_disconnects += 1;
                    continue;
                }
                c.wbuf.extend_from_slice(bytes);
                self.metrics.md_bytes += bytes.len() as u64;
            }
        }
    }

    // ---- metrics ----

    fn http_input(&mut self, t: usize) {
        let Some(c) = self.conns[t].as_mut() else {
            return;
        };
        if c.rbuf.len() > 8192 {
            c.closing = true;
            return;
        }
        if !c.rbuf.windows(4).any(|w| w == b"\r\n\r\n") && !c.eof {
            return;
        }
        let ok = c.rbuf.starts_with(b"GET /metrics ") || c.rbuf.starts_with(b"GET / ");
        let body = if ok {
            self.metrics.render(
                &self.shared,
                self.inbound.len(),
                self.inbound.capacity(),
                self.outbound.len(),
                self.outbound.capacity(),
                self.held.len(),
                self.users
                    .iter()
                    .filter(|u| u.fix_conn.is_some() || u.bin_conn.is_some())
                    .count(),
            )
        } else {
            "not found: try /metrics\n".to_string()
        };
        let status = if ok { "200 OK" } else { "404 Not Found" };
        let head = format!("HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        c.wbuf.extend_from_slice(head.as_bytes());
        c.wbuf.extend_from_slice(body.as_bytes());
        c.rbuf.clear();
        c.closing = true;
    }

    // ---- timers, writing, closing ----

    fn timers(&mut self, now: Instant) {
        for u in 0..self.users.len() {
            let Some(t) = self.users[u].fix_conn else {
                continue;
            };
            let (Some(c), Some(s)) = (self.conns[t].as_mut(), self.users[u].fix.as_mut()) else {
                continue;
            };
            match s.timers(now, &mut c.wbuf) {
                Ok(false) => {}
                _ => c.closing = true,
            }
        }
        binary_io::timers(self, now);
        let due: Vec<Delayed> = {
            let (due, keep) = std::mem::take(&mut self.delayed)
                .into_iter()
                .partition(|d| d.due <= now);
            self.delayed = keep;
            due
        };
        for d in due {
            if self
                .conns
                .get(d.token)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.gen == d.gen)
            {
                match d.logon {
                    HeldLogon::Fix(frame) => {
                        if let Ok(m) = Message::parse(&frame) {
                            self.fix_logon(d.token, &m, &frame, true);
                        }
                    }
                    HeldLogon::Binary(name, pw, next, hb) => {
                        binary_io::logon(self, d.token, &name, &pw, next, hb, true);
                    }
                }
            }
        }
    }

    fn flush_all(&mut self) {
        for u in &mut self.users {
            if let Some(s) = u.fix.as_mut() {
                if let Err(e) = s.flush() {
                    crate::log!(
                        "error",
                        "session_store",
                        "user={} proto=fix error={:?}",
                        u.username,
                        e.to_string()
                    );
                }
            }
        }
        binary_io::flush_stores(self);
        for t in 0..self.conns.len() {
            let Some(c) = self.conns[t].as_mut() else {
                continue;
            };
            while !c.wbuf.is_empty() {
                match c.stream.write(&c.wbuf) {
                    Ok(0) => {
                        c.wbuf.clear();
                        c.closing = true;
                    }
                    Ok(n) => {
                        c.wbuf.drain(..n);
                        self.metrics.bytes_out += n as u64;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        c.wbuf.clear();
                        c.closing = true;
                    }
                }
            }
            if c.closing && c.close_by.is_none() {
                // A peer that stops reading cannot hold a closing connection (and its
                // user's session slot) open: it gets two seconds to drain.
                c.close_by = Some(Instant::now() + Duration::from_secs(2));
            }
            if c.wbuf.len() > WBUF_MAX && !c.closing {
                crate::log!(
                    "warn",
                    "not_reading",
                    "peer={} unsent={}",
                    c.peer,
                    c.wbuf.len()
                );
                c.closing = true;
                c.close_by = Some(Instant::now());
            }
            let overdue = c.close_by.is_some_and(|d| Instant::now() >= d);
            if c.closing && (c.wbuf.is_empty() || overdue) {
                self.close(t);
            }
        }
    }

    fn close(&mut self, t: usize) {
        let Some(mut c) = self.conns[t].take() else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut c.stream);
        self.stalled.retain(|&s| s != t);
        let user = match c.proto {
            Proto::Fix { user } => {
                if let Some(u) = user {
                    self.users[u].fix_conn = None;
                }
                user
            }
            Proto::Binary { user } => {
                if let Some(u) = user {
                    self.users[u].bin_conn = None;
                }
                user
            }
            _ => None,
        };
        if let Some(u) = user {
            crate::log!(
                "info",
                "disconnect",
                "user={} peer={}",
                self.users[u].username,
                c.peer
            );
            let still = self.users[u].fix_conn.is_some() || self.users[u].bin_conn.is_some();
            if let (false, true, Some(account), false) = (
                still,
                self.users[u].cancel_on_disconnect,
                self.users[u].account,
                self.stopping,
            ) {
                self.send_request(
                    None,
                    u,
                    Ask::Command(cascade_core::CommandKind::MassCancel {
                        account,
                        market: None,
                    }),
                    Ctx::Other,
                    Pending::Nothing,
                );
                self.metrics.cancel_on_disconnect += 1;
            }
        }
    }
}

/// Counts a password check for `ip`; `false` if the address has too many running.
fn start_check(checking: &mut HashMap<IpAddr, u32>, ip: IpAddr, max: u32) -> bool {
    let n = checking.entry(ip).or_insert(0);
    if *n >= max {
        return false;
    }
    *n += 1;
    true
}

/// A Logon refused before a session exists: Logout with the reason, then close.
fn refuse_fix(c: &mut Conn, msg: &Message<'_>, our: &str, text: &str) {
    let their = msg.text(49).unwrap_or("?");
    let mut w = crate::fix::message::Writer::new(&mut c.wbuf, "5");
    w.str(49, our)
        .str(56, their)
        .int(34, 1)
        .str(52, &crate::fix::time::format(crate::fix::time::now_ms()))
        .str(58, text);
    w.finish();
    c.closing = true;
}

fn seq_of(frame: &[u8]) -> Option<u64> {
    let at = frame.windows(4).position(|w| w == b"\x0134=")? + 4;
    let end = frame[at..].iter().position(|&b| b == 1)? + at;
    crate::fix::message::parse_uint(&frame[at..end])
}
