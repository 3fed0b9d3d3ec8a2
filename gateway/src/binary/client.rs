//! A blocking client of the binary order-entry protocol, used by the tests, the load
//! generator (`cascade-bench wire`) and the examples.
//!
//! Invariant: `recv` returns whole messages in arrival order and tracks the next
//! expected session sequence number, so a reconnect can ask for a replay from it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::frame::{split, Split, HEADER};
use super::{ClientMsg, ServerMsg, SCHEMA};

/// A connected, logged-on session.
pub struct Client {
    stream: TcpStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    /// The next sequenced message's number.
    pub next_seq: u64,
}

impl Client {
    /// Connects and logs on; asks for a replay from `next_seq` (0: none).
    pub fn connect(
        addr: SocketAddr,
        user: &str,
        password: &str,
        next_seq: u64,
    ) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        let mut c = Client {
            stream,
            rbuf: Vec::with_capacity(1 << 16),
            wbuf: Vec::new(),
            next_seq,
        };
        c.send(&ClientMsg::Logon {
            username: user.into(),
            password: password.into(),
            next_seq,
            heartbeat_ms: 30_000,
        })?;
        match c.recv(Duration::from_secs(10))? {
            Some(ServerMsg::LogonAck { next_seq: live, .. }) => {
                if c.next_seq == 0 {
                    c.next_seq = live;
                }
                Ok(c)
            }
            Some(ServerMsg::LogonReject { reason }) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("logon refused (reason {reason})"),
            )),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected answer to logon: {other:?}"),
            )),
        }
    }

    /// Sends one message.
    pub fn send(&mut self, m: &ClientMsg) -> io::Result<()> {
        self.wbuf.clear();
        m.encode(&mut self.wbuf);
        self.stream.write_all(&self.wbuf)
    }

    /// Queues a message without writing it (see [`Client::flush`]).
    pub fn queue(&mut self, m: &ClientMsg) {
        m.encode(&mut self.wbuf);
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> io::Result<()> {
        let r = self.stream.write_all(&self.wbuf);
        self.wbuf.clear();
        r
    }

    /// The underlying stream (for polling or shutting down).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Waits up to `timeout` for one message (`None`: none came).
    pub fn recv(&mut self, timeout: Duration) -> io::Result<Option<ServerMsg>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(m) = self.try_take()? {
                return Ok(Some(m));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut buf = [0u8; 16 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed the connection",
                    ))
                }
                Ok(n) => self.rbuf.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A message already received, if one is whole.
    pub fn try_take(&mut self) -> io::Result<Option<ServerMsg>> {
        match split(&self.rbuf, 1 << 20) {
            Split::Incomplete => Ok(None),
            Split::Bad(why) => Err(io::Error::new(io::ErrorKind::InvalidData, why)),
            Split::Frame {
                template,
                schema,
                len,
                ..
            } => {
                let m = (schema == SCHEMA)
                    .then(|| ServerMsg::decode(template, &self.rbuf[HEADER..len]))
                    .flatten();
                self.rbuf.drain(..len);
                let m = m.ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unknown template {template}"),
                    )
                })?;
                if let Some(s) = m.seq() {
                    self.next_seq = s + 1;
                }
                Ok(Some(m))
            }
        }
    }
}
