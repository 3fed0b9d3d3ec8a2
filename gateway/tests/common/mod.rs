//! Starts and stops a real `cascade-gateway` process for the integration tests: a
//! config derived from the embedded default (any free ports, a temporary journal, the
//! engine unpinned), the ready line parsed for the addresses.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cascade_gateway::binary::client::Client;
use cascade_gateway::binary::frame::{split, Split, HEADER};
use cascade_gateway::config::DEFAULT_TOML;

/// A running gateway.
pub struct Gateway {
    child: Child,
    /// FIX port.
    pub fix: SocketAddr,
    /// Binary port.
    pub binary: SocketAddr,
    /// Market-data port.
    pub md: SocketAddr,
    /// Metrics port.
    pub metrics: SocketAddr,
    /// Journal directory.
    pub dir: PathBuf,
    stderr: mpsc::Receiver<String>,
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cascade-gw-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The default config with test settings; `extra_accounts` LOADnn accounts share
/// ALICE's password.
pub fn config(dir: &Path, fsync: &str, extra_accounts: usize) -> PathBuf {
    let mut text = DEFAULT_TOML
        .replace(
            "journal_dir = \"./cascade-data\"",
            &format!("journal_dir = \"{}\"", dir.join("journal").display()),
        )
        .replace("fsync = \"batch\"", &format!("fsync = \"{fsync}\""))
        .replace("engine_cpu = 1 ", "engine_cpu = -1 ")
        // Every test client logs on from 127.0.0.1, twenty of them at once in one test.
        .replace("checks_per_address = 8 ", "checks_per_address = 64 ")
        // The tests send bursts far above a trading session's default throttle.
        .replace(
            "soft_orders_per_sec = 10000",
            "soft_orders_per_sec = 200000",
        )
        .replace(
            "hard_orders_per_sec = 20000",
            "hard_orders_per_sec = 400000",
        );
    for p in [
        "fix_port = 9876",
        "binary_port = 9877",
        "marketdata_port = 9878",
        "metrics_port = 9879",
    ] {
        let key = p.split(' ').next().unwrap();
        text = text.replace(p, &format!("{key} = 0"));
    }
    let alice = text
        .split("username = \"ALICE\"")
        .nth(1)
        .unwrap()
        .split("password_hash = \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    for i in 0..extra_accounts {
        let _ = write!(
            text,
            "\n[[accounts]]\nusername = \"LOAD{i:02}\"\nid = {}\npassword_hash = \"{alice}\"\ndeposit = 100000000000\ncancel_on_disconnect = false\n",
            100 + i
        );
    }
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Replaces settings in a config file written by [`config`]; each one must be there.
pub fn edit_config(path: &Path, edits: &[(&str, &str)]) {
    let mut text = std::fs::read_to_string(path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "config lacks {from:?}");
        text = text.replace(from, to);
    }
    std::fs::write(path, text).unwrap();
}

/// Opens `n` binary connections to `addr`, each sending a logon as LOAD00.. with the
/// demo password, without waiting for the answers.
pub fn raw_binary_logons(addr: SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    use std::io::Write;
    (0..n)
        .map(|i| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let mut msg = Vec::new();
            cascade_gateway::binary::ClientMsg::Logon {
                username: format!("LOAD{i:02}"),
                password: "alice-demo".into(),
                next_seq: 0,
                heartbeat_ms: 30_000,
            }
            .encode(&mut msg);
            s.write_all(&msg).unwrap();
            s
        })
        .collect()
}

impl Gateway {
    /// Starts the gateway on `config` and waits for its ready line.
    pub fn start(config: &Path) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cascade-gateway"))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cascade-gateway");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (etx, erx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = etx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let err: Vec<String> = erx.try_iter().collect();
                panic!("no ready line from cascade-gateway; stderr: {err:?}")
            });
        let field = |k: &str| -> String {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("ready line lacks {k}: {line}"))
                .to_string()
        };
        assert!(line.starts_with("listening fix="), "{line}");
        Gateway {
            child,
            fix: field("fix").parse().unwrap(),
            binary: field("binary").parse().unwrap(),
            md: field("marketdata").parse().unwrap(),
            metrics: field("metrics").parse().unwrap(),
            dir: PathBuf::from(field("journal")),
            stderr: erx,
        }
    }

    /// Logs on a binary client.
    pub fn client(&self, user: &str, password: &str) -> Client {
        Client::connect(self.binary, user, password, 0).unwrap_or_else(|e| panic!("{user}: {e}"))
    }

    /// SIGTERM, then waits for exit; returns the exit success and stderr lines.
    pub fn stop(mut self) -> (bool, Vec<String>) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return (status.success(), self.stderr.try_iter().collect());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gateway did not stop within 60 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The log lines (stderr) that have arrived so far.
    pub fn log_lines(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(50));
        self.stderr.try_iter().collect()
    }

    /// The `/metrics` page.
    pub fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.metrics).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::thread::sleep(Duration::from_millis(200));
            for l in self.stderr.try_iter() {
                eprintln!("gateway stderr: {l}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A market-data subscriber that rebuilds the book from snapshot and incrementals.
pub struct Subscriber {
    stream: std::net::TcpStream,
    buf: Vec<u8>,
    /// (market, side, price) → (qty, orders).
    pub book: std::collections::BTreeMap<(u32, u8, i64), (i64, u32)>,
    /// Last feed sequence number applied.
    pub seq: u64,
    /// Frames seen by template.
    pub seen: std::collections::BTreeMap<u16, u64>,
    /// A sequence gap was seen.
    pub gap: bool,
    /// The server disconnected us with this reason.
    pub disconnected: Option<u8>,
}

impl Subscriber {
    /// Connects and subscribes from `from` (0: snapshot).
    pub fn connect(addr: SocketAddr, from: u64) -> Subscriber {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let mut msg = Vec::new();
        cascade_gateway::binary::frame::write(&mut msg, 2, 1, 210, |b| {
            b.u64(from);
        });
        stream.write_all(&msg).unwrap();
        Subscriber {
            stream,
            buf: Vec::new(),
            book: std::collections::BTreeMap::default(),
            seq: from.saturating_sub(1),
            seen: std::collections::BTreeMap::default(),
            gap: false,
            disconnected: None,
        }
    }

    /// Reads and applies whatever arrives within `wait`.
    pub fn pump(&mut self, wait: Duration) {
        use std::io::Read;
        let deadline = std::time::Instant::now() + wait;
        let mut tmp = vec![0u8; 65536];
        while std::time::Instant::now() < deadline {
            self.stream
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            match self.stream.read(&mut tmp) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(_) => {}
            }
            self.apply();
        }
        self.apply();
    }

    fn apply(&mut self) {
        while let Split::Frame { template, len, .. } = split(&self.buf, 1 << 20) {
            let f = cascade_gateway::binary::frame::Fields(&self.buf[HEADER..len]);
            *self.seen.entry(template).or_default() += 1;
            match template {
                211 => {
                    self.book.clear();
                    self.seq = f.u64(0).unwrap();
                }
                212 => {
                    let key = (f.u32(0).unwrap(), f.u8(4).unwrap(), f.i64(8).unwrap());
                    self.book
                        .insert(key, (f.i64(16).unwrap(), f.u32(24).unwrap()));
                }
                230 => self.disconnected = f.u8(0),
                220..=226 => {
                    let seq = f.u64(0).unwrap();
                    if seq != self.seq + 1 {
                        self.gap = true;
                    }
                    self.seq = seq;
                    if template == 220 {
                        let key = (f.u32(8).unwrap(), f.u8(12).unwrap(), f.i64(16).unwrap());
                        let (q, n) = (f.i64(24).unwrap(), f.u32(32).unwrap());
                        if q == 0 {
                            self.book.remove(&key);
                        } else {
                            self.book.insert(key, (q, n));
                        }
                    }
                }
                _ => {}
            }
            self.buf.drain(..len);
        }
    }
}

/// A raw FIX client: builds headers itself, so tests can break any rule.
pub struct RawFix {
    stream: std::net::TcpStream,
    buf: Vec<u8>,
    /// Our SenderCompID.
    pub comp: String,
    /// Next MsgSeqNum to send.
    pub seq: u64,
}

/// One received FIX message as (tag, value) pairs.
pub type Fields = Vec<(u32, String)>;

/// The first value of `tag`.
pub fn tag(m: &Fields, tag: u32) -> Option<&str> {
    m.iter().find(|f| f.0 == tag).map(|f| f.1.as_str())
}

impl RawFix {
    /// Connects.
    pub fn connect(addr: SocketAddr, comp: &str) -> RawFix {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        RawFix {
            stream,
            buf: Vec::new(),
            comp: comp.into(),
            seq: 1,
        }
    }

    /// Sends a message with a standard header (overridable via `header`) and `body`.
    pub fn send_with(&mut self, msg_type: &str, header: &[(u32, String)], body: &[(u32, &str)]) {
        use std::io::Write;
        let mut out = Vec::new();
        let mut w = cascade_gateway::fix::message::Writer::new(&mut out, msg_type);
        let now = cascade_gateway::fix::time::format(cascade_gateway::fix::time::now_ms());
        let defaults = [
            (49u32, self.comp.clone()),
            (56, "CASCADE".into()),
            (34, self.seq.to_string()),
            (52, now),
        ];
        for (t, v) in &defaults {
            let v = header.iter().find(|h| h.0 == *t).map_or(v, |h| &h.1);
            w.str(*t, v);
        }
        for (t, v) in header
            .iter()
            .filter(|h| !defaults.iter().any(|d| d.0 == h.0))
        {
            w.str(*t, v);
        }
        for (t, v) in body {
            w.str(*t, v);
        }
        w.finish();
        self.seq += 1;
        self.stream.write_all(&out).unwrap();
    }

    /// Sends with the standard header.
    pub fn send(&mut self, msg_type: &str, body: &[(u32, &str)]) {
        self.send_with(msg_type, &[], body);
    }

    /// Sends raw bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stream.write_all(bytes).unwrap();
    }

    /// Logs on.
    pub fn logon(&mut self, password: &str) -> Fields {
        let user = self.comp.clone();
        self.send(
            "A",
            &[(98, "0"), (108, "30"), (553, &user), (554, password)],
        );
        self.recv().expect("an answer to Logon")
    }

    /// The next message (heartbeats included) within 5 s; `None` on close or timeout.
    pub fn recv(&mut self) -> Option<Fields> {
        use std::io::Read;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let cascade_gateway::fix::message::Frame::Message(n) =
                cascade_gateway::fix::message::next_frame(&self.buf, 1 << 20)
            {
                let text = String::from_utf8_lossy(&self.buf[..n]).into_owned();
                self.buf.drain(..n);
                return Some(
                    text.trim_end_matches('\x01')
                        .split('\x01')
                        .filter_map(|f| f.split_once('='))
                        .map(|(t, v)| (t.parse().unwrap_or(0), v.to_string()))
                        .collect(),
                );
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut tmp = [0u8; 8192];
            match self.stream.read(&mut tmp) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
            }
        }
    }

    /// The next message that is not a Heartbeat.
    pub fn recv_app(&mut self) -> Option<Fields> {
        loop {
            let m = self.recv()?;
            if tag(&m, 35) != Some("0") {
                return Some(m);
            }
        }
    }

    /// Whether the server closed the connection (within 5 s), skipping messages.
    pub fn closed(&mut self) -> bool {
        use std::io::Read;
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut tmp = [0u8; 8192];
        loop {
            match self.stream.read(&mut tmp) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }
}

/// The engine state a journal directory replays to.
pub fn replay_journal(dir: &Path) -> cascade_gateway::core::Engine {
    let cfg = cascade_gateway::engine_file::read_engine_config(dir).unwrap();
    let mut engine = cascade_gateway::core::Engine::new(cfg);
    let mut events = Vec::new();
    let mut jc = cascade_gateway::journal::JournalConfig::new(dir);
    jc.fsync = cascade_gateway::journal::FsyncPolicy::Never;
    let (journal, _) = cascade_gateway::journal::Journal::open(jc, |c| {
        events.clear();
        engine.apply(c, &mut events);
    })
    .unwrap();
    drop(journal);
    engine
}
