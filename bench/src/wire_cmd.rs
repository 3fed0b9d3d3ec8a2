//! `cascade-bench wire`: wire-to-wire latency and throughput of the gateway over
//! loopback TCP, open loop and corrected for coordinated omission (each order's latency
//! runs from the time it was due, not from when the generator got round to it), with a
//! raw TCP echo floor measured in the same run.
//!
//! The generator is one thread multiplexing every client connection (non-blocking
//! sockets, busy polling), so on a small machine it takes one core, not one per client.
//! Orders are IOC limit orders that do not cross (alternately a bid below and an ask
//! above the demo mark): each is sequenced, journaled, applied and answered, and the
//! book stays empty. An order's latency ends at its first execution report.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cascade_gateway::binary::frame::{split, Split, HEADER};
use cascade_gateway::binary::{ClientMsg, ServerMsg};
use cascade_gateway::config::GatewayConfig;
use cascade_gateway::fix::message::{next_frame, Frame, Message, Writer};
use hdrhistogram::Histogram;

use crate::Args;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    Binary,
    Fix,
}

struct Opts {
    protocol: Protocol,
    clients: usize,
    rate: u64,
    duration: f64,
    addr: Option<SocketAddr>,
    fsync: String,
    flood: bool,
    stalled_reader: bool,
}

const USERS: [(&str, &str); 3] = [
    ("ALICE", "alice-demo"),
    ("BOB", "bob-demo"),
    ("CAROL", "carol-demo"),
];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let a = Args::parse(
        args,
        &[
            "--protocol",
            "--clients",
            "--rate",
            "--duration",
            "--addr",
            "--fsync",
        ],
        &["--flood", "--stalled-reader"],
    )?;
    let protocol = match a.value::<String>("--protocol")?.as_deref() {
        None | Some("binary") => Protocol::Binary,
        Some("fix") => Protocol::Fix,
        Some(p) => return Err(format!("--protocol must be binary or fix, not {p}")),
    };
    let o = Opts {
        protocol,
        clients: a.value("--clients")?.unwrap_or(4),
        rate: a.value("--rate")?.unwrap_or(10_000),
        duration: a.value("--duration")?.unwrap_or(5.0),
        addr: a.value("--addr")?,
        fsync: a.value("--fsync")?.unwrap_or_else(|| "never".to_string()),
        flood: a.has("--flood"),
        stalled_reader: a.has("--stalled-reader"),
    };
    if o.clients == 0 || o.rate == 0 || !(o.duration > 0.0 && o.duration <= 600.0) {
        return Err("--clients and --rate must be positive, --duration in (0, 600] seconds".into());
    }
    if o.addr.is_some() && (o.clients > USERS.len() || o.flood) {
        return Err(format!(
            "with --addr the clients log on as the default config's demo users: at most {} clients, no --flood",
            USERS.len()
        ));
    }
    let floor = echo_floor(&o)?;
    let (addrs, gateway) = if let Some(addr) = o.addr {
        (
            Target {
                order: addr,
                md: None,
            },
            None,
        )
    } else {
        let g = InProcess::start(&o)?;
        (g.target, Some(g))
    };
    println!(
        "wire: protocol={:?} clients={} rate={}/s duration={}s gateway={} fsync={} flood={} stalled_reader={}",
        o.protocol,
        o.clients,
        o.rate,
        o.duration,
        if gateway.is_some() { "in-process" } else { "external" },
        if gateway.is_some() { o.fsync.as_str() } else { "(the gateway's)" },
        o.flood,
        o.stalled_reader
    );
    let stall = if o.stalled_reader {
        addrs.md.map(stalled_reader).transpose()?
    } else {
        None
    };
    let flood = if o.flood {
        Some(Flood::start(&o, addrs.order)?)
    } else {
        None
    };
    let r = measure(&o, addrs.order)?;
    if let Some(f) = flood {
        println!("flood: {} orders sent by the flooding session", f.stop());
    }
    drop(stall);
    if let Some(g) = gateway {
        g.stop()?;
    }
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / 1e3;
    println!(
        "achieved: {:.0} acks/s over {:.2} s",
        r.acked as f64 / r.secs,
        r.secs
    );
    println!(
        "protocol={} offered={} sent={} acked={} p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1} floor_p50_us={:.1} floor_p99_us={:.1}",
        if o.protocol == Protocol::Binary { "binary" } else { "fix" },
        o.rate,
        r.sent,
        r.acked,
        q(&r.hist, 0.5),
        q(&r.hist, 0.99),
        q(&r.hist, 0.999),
        r.hist.max() as f64 / 1e3,
        q(&floor, 0.5),
        q(&floor, 0.99),
    );
    Ok(())
}

#[derive(Clone, Copy)]
struct Target {
    order: SocketAddr,
    md: Option<SocketAddr>,
}

/// A gateway run inside this process on free loopback ports with a temporary journal.
struct InProcess {
    target: Target,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<(), String>>,
    dir: std::path::PathBuf,
}

impl InProcess {
    fn start(o: &Opts) -> Result<InProcess, String> {
        let dir = std::env::temp_dir().join(format!("cascade-wire-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut cfg = GatewayConfig::default_config();
        let g = &mut cfg.gateway;
        (g.fix_port, g.binary_port, g.marketdata_port, g.metrics_port) = (0, 0, 0, 0);
        g.journal_dir.clone_from(&dir);
        g.fsync.clone_from(&o.fsync);
        g.engine_cpu = -1;
        g.snapshot_every = 0;
        // The default config's throttles, raised only as far as the measured clients'
        // own rate needs (a flooding session meets them as configured).
        let per_client = u32::try_from(o.rate.div_ceil(o.clients as u64) * 2).unwrap_or(u32::MAX);
        let soft = cfg.limits.soft_orders_per_sec.max(per_client);
        cfg.limits.soft_orders_per_sec = soft;
        cfg.limits.hard_orders_per_sec = cfg.limits.hard_orders_per_sec.max(soft.saturating_mul(2));
        let hash = cfg.accounts[0].password_hash.clone();
        for i in 0..=o.clients {
            let mut acct = cfg.accounts[0].clone();
            acct.username = format!("LOAD{i:02}");
            acct.id = 100 + i as u32;
            acct.password_hash.clone_from(&hash);
            cfg.accounts.push(acct);
        }
        cfg.check().map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let s = Arc::clone(&stop);
        let shared = Arc::new(cascade_gateway::server::Shared::default());
        let thread = std::thread::spawn(move || {
            cascade_gateway::server::io::serve_with(cfg, shared, &s, Some(tx))
        });
        let a = rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the in-process gateway did not start".to_string())?;
        let order = a.binary;
        let target = Target {
            order: if o.protocol == Protocol::Binary {
                order
            } else {
                a.fix
            },
            md: Some(a.marketdata),
        };
        Ok(InProcess {
            target,
            stop,
            thread,
            dir,
        })
    }

    fn stop(self) -> Result<(), String> {
        self.stop.store(true, Ordering::Release);
        let r = self
            .thread
            .join()
            .map_err(|_| "gateway thread panicked".to_string())?;
        let _ = std::fs::remove_dir_all(&self.dir);
        r
    }
}

/// The user a client logs on as.
fn user(o: &Opts, i: usize) -> (String, String) {
    match o.addr {
        Some(_) => (USERS[i].0.to_string(), USERS[i].1.to_string()),
        None => (format!("LOAD{i:02}"), "alice-demo".to_string()),
    }
}

/// One client connection of the generator.
struct Conn {
    stream: TcpStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    seq: u64,
    comp: String,
}

impl Conn {
    fn connect(o: &Opts, addr: SocketAddr, i: usize) -> Result<Conn, String> {
        let (name, pw) = user(o, i);
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut c = Conn {
            stream,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            seq: 1,
            comp: name.clone(),
        };
        match o.protocol {
            Protocol::Binary => {
                ClientMsg::Logon {
                    username: name,
                    password: pw,
                    next_seq: 0,
                    heartbeat_ms: 60_000,
                }
                .encode(&mut c.wbuf);
            }
            Protocol::Fix => {
                c.fix(
                    "A",
                    &[
                        (98, "0"),
                        (108, "60"),
                        (141, "Y"),
                        (553, &name.clone()),
                        (554, &pw),
                    ],
                );
            }
        }
        c.stream.write_all(&c.wbuf).map_err(|e| e.to_string())?;
        c.wbuf.clear();
        c.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut got = [0u8; 4096];
        let n = c.stream.read(&mut got).map_err(|e| format!("logon: {e}"))?;
        c.rbuf.extend_from_slice(&got[..n]);
        let ok = match o.protocol {
            Protocol::Binary => {
                matches!(split(&c.rbuf, 1 << 20), Split::Frame { template: 101, .. })
            }
            Protocol::Fix => c.rbuf.windows(5).any(|w| w == b"\x0135=A"),
        };
        if !ok {
            return Err(format!("logon of {} refused", c.comp));
        }
        c.rbuf.clear();
        c.stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        Ok(c)
    }

    fn fix(&mut self, msg_type: &str, body: &[(u32, &str)]) {
        let now = cascade_gateway::fix::time::format(cascade_gateway::fix::time::now_ms());
        let mut w = Writer::new(&mut self.wbuf, msg_type);
        w.str(49, &self.comp)
            .str(56, "CASCADE")
            .int(34, self.seq)
            .str(52, &now);
        for (t, v) in body {
            w.str(*t, v);
        }
        w.finish();
        self.seq += 1;
    }

    /// Queues order `cl` (an IOC that does not cross).
    fn order(&mut self, protocol: Protocol, cl: u64) {
        let buy = cl % 2 == 0;
        match protocol {
            Protocol::Binary => ClientMsg::NewOrder {
                cl_ord_id: cl,
                market: 0,
                side: if buy { 1 } else { 2 },
                ord_type: 2,
                tif: 3,
                flags: 0,
                stp: 1,
                price: if buy { 590_000 } else { 610_000 },
                stop_px: 0,
                qty: 1,
            }
            .encode(&mut self.wbuf),
            Protocol::Fix => {
                let id = cl.to_string();
                let (side, px) = if buy {
                    ("1", "59000.0")
                } else {
                    ("2", "61000.0")
                };
                self.fix(
                    "D",
                    &[
                        (11, &id),
                        (55, "BTC-PERP"),
                        (54, side),
                        (38, "0.001"),
                        (40, "2"),
                        (44, px),
                        (59, "3"),
                        (60, "20260101-00:00:00"),
                    ],
                );
            }
        }
    }

    fn flush(&mut self) -> Result<(), String> {
        while !self.wbuf.is_empty() {
            match self.stream.write(&self.wbuf) {
                Ok(n) => {
                    self.wbuf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        Ok(())
    }

    /// Reads what is there; calls `f` with the client id of each execution report.
    fn poll(&mut self, protocol: Protocol, mut f: impl FnMut(u64)) -> Result<(), String> {
        let mut tmp = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut tmp) {
                Ok(0) => return Err("the gateway closed a client connection".into()),
                Ok(n) => self.rbuf.extend_from_slice(&tmp[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        let mut at = 0;
        match protocol {
            Protocol::Binary => {
                while let Split::Frame { template, len, .. } = split(&self.rbuf[at..], 1 << 20) {
                    if let Some(ServerMsg::Exec(e)) =
                        ServerMsg::decode(template, &self.rbuf[at + HEADER..at + len])
                    {
                        f(e.cl_ord_id);
                    }
                    at += len;
                }
            }
            Protocol::Fix => loop {
                match next_frame(&self.rbuf[at..], 1 << 20) {
                    Frame::Message(n) => {
                        if let Ok(m) = Message::parse(&self.rbuf[at..at + n]) {
                            if m.msg_type() == b"8" {
                                if let Ok(cl) = m.uint(11) {
                                    f(cl);
                                }
                            }
                        }
                        at += n;
                    }
                    Frame::Garbled(n) => at += n,
                    Frame::Incomplete | Frame::TooLong => break,
                }
            },
        }
        self.rbuf.drain(..at);
        Ok(())
    }
}

struct Outcome {
    hist: Histogram<u64>,
    sent: u64,
    acked: u64,
    secs: f64,
}

/// The open-loop run: order k is due at start + k / rate, on client k mod C.
fn measure(o: &Opts, addr: SocketAddr) -> Result<Outcome, String> {
    let mut conns = (0..o.clients)
        .map(|i| Conn::connect(o, addr, i))
        .collect::<Result<Vec<_>, _>>()?;
    let total = (o.rate as f64 * o.duration) as u64;
    let per = total / o.clients as u64 + 1;
    let mut due = vec![Duration::ZERO; total as usize];
    let mut done = vec![false; total as usize];
    let mut hist =
        Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let start = Instant::now() + Duration::from_millis(20);
    let step = 1e9 / o.rate as f64;
    let (mut next, mut acked) = (0u64, 0u64);
    let deadline = start + Duration::from_secs_f64(o.duration + 10.0);
    while acked < total {
        let now = Instant::now();
        if now > deadline {
            break;
        }
        while next < total && start + Duration::from_nanos((next as f64 * step) as u64) <= now {
            let c = (next % o.clients as u64) as usize;
            due[next as usize] = Duration::from_nanos((next as f64 * step) as u64);
            // Client ids: per connection, k / C + 1, so each connection's are dense.
            conns[c].order(o.protocol, next / o.clients as u64 + 1);
            next += 1;
        }
        // Spinning, but yielding: on a machine with few cores the gateway's threads
        // get the CPU as soon as they are runnable.
        std::thread::yield_now();
        for (ci, c) in conns.iter_mut().enumerate() {
            c.flush()?;
            let elapsed = start.elapsed();
            c.poll(o.protocol, |cl| {
                let Some(k) = cl.checked_sub(1).map(|c| c * o.clients as u64 + ci as u64) else {
                    return;
                };
                if cl <= per && k < total && !done[k as usize] {
                    done[k as usize] = true;
                    acked += 1;
                    let lat = elapsed.saturating_sub(due[k as usize]);
                    let _ = hist.record(lat.as_nanos().max(1_000) as u64);
                }
            })?;
        }
    }
    Ok(Outcome {
        hist,
        sent: next,
        acked,
        secs: start.elapsed().as_secs_f64(),
    })
}

/// The raw TCP floor: 64-byte messages echoed by a plain blocking server, sent on the
/// same open-loop schedule over as many connections (at most 3 seconds of it).
fn echo_floor(o: &Opts) -> Result<Histogram<u64>, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let clients = o.clients;
    std::thread::spawn(move || {
        for s in listener.incoming().take(clients).flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let _ = s.set_nodelay(true);
                let mut b = [0u8; 4096];
                while let Ok(n) = s.read(&mut b) {
                    if n == 0 || s.write_all(&b[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let mut conns = Vec::new();
    for _ in 0..clients {
        let s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        conns.push((s, Vec::<u8>::new(), Vec::<u8>::new()));
    }
    let total = (o.rate as f64 * o.duration.min(3.0)) as u64;
    let step = 1e9 / o.rate as f64;
    let mut hist =
        Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let start = Instant::now() + Duration::from_millis(20);
    let (mut next, mut got) = (0u64, 0u64);
    let deadline = start + Duration::from_secs_f64(o.duration.min(3.0) + 10.0);
    let mut tmp = [0u8; 16 * 1024];
    while got < total && Instant::now() < deadline {
        let now = Instant::now();
        while next < total && start + Duration::from_nanos((next as f64 * step) as u64) <= now {
            let mut msg = [0u8; 64];
            msg[..8].copy_from_slice(&next.to_le_bytes());
            conns[(next % clients as u64) as usize]
                .2
                .extend_from_slice(&msg);
            next += 1;
        }
        std::thread::yield_now();
        for (s, buf, out) in &mut conns {
            while !out.is_empty() {
                match s.write(out) {
                    Ok(n) => {
                        out.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.to_string()),
                }
            }
            match s.read(&mut tmp) {
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.to_string()),
            }
            let elapsed = start.elapsed();
            while buf.len() >= 64 {
                let k = u64::from_le_bytes(buf[..8].try_into().unwrap_or_default());
                buf.drain(..64);
                let lat = elapsed.saturating_sub(Duration::from_nanos((k as f64 * step) as u64));
                let _ = hist.record(lat.as_nanos().max(1_000) as u64);
                got += 1;
            }
        }
    }
    Ok(hist)
}

/// A market-data subscriber that never reads.
fn stalled_reader(addr: SocketAddr) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let mut msg = Vec::new();
    cascade_gateway::binary::frame::write(&mut msg, 2, 1, 210, |b| {
        b.u64(0);
    });
    s.write_all(&msg).map_err(|e| e.to_string())?;
    Ok(s)
}

/// A session sending orders as fast as the gateway takes them (up to 2,000
/// unanswered), logged on as the LOAD account after the measured clients'.
struct Flood {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Flood {
    fn start(o: &Opts, addr: SocketAddr) -> Result<Flood, String> {
        let c = Conn::connect(o, addr, o.clients)?;
        let protocol = o.protocol;
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || flood_loop(c, protocol, &s));
        Ok(Flood { stop, thread })
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Release);
        self.thread.join().unwrap_or(0)
    }
}

fn flood_loop(mut c: Conn, protocol: Protocol, stop: &AtomicBool) -> u64 {
    let mut seen = vec![false; 1];
    let (mut sent, mut answered) = (0u64, 0u64);
    while !stop.load(Ordering::Acquire) {
        while sent - answered < 2_000 {
            sent += 1;
            c.order(protocol, sent);
        }
        seen.resize(sent as usize + 1, false);
        let ok = c.flush().is_ok()
            && c.poll(protocol, |cl| {
                if let Some(s) = seen.get_mut(cl as usize) {
                    if !*s {
                        *s = true;
                        answered += 1;
                    }
                }
            })
            .is_ok();
        if !ok {
            break;
        }
    }
    sent
}
