//! The FIX 4.4 session layer for one counterparty (one SenderCompID): sequence numbers
//! in both directions, heartbeats and test requests, resend requests answered from the
//! persistent store, sequence resets, session-level rejects and logout.
//!
//! Invariants: an incoming message is passed to the application only when its MsgSeqNum
//! is exactly the next expected one, and the expected number is stored before the
//! application sees the message; every outgoing message takes the next outgoing number
//! and is in the store before its bytes are queued; a resend repeats application
//! messages with PossDupFlag=Y and OrigSendingTime, and replaces admin messages with
//! SequenceReset-GapFill, so the counterparty sees every number exactly once.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use super::message::{Message, Writer, SOH};
use super::time;
use crate::server::store::Store;

/// What the connection should do after a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing more.
    Done,
    /// Give this message to the application layer.
    App,
    /// Close the connection once the queued bytes are sent.
    Close,
}

/// One counterparty's session state, kept across connections and restarts.
#[derive(Debug)]
pub struct FixSession {
    /// The counterparty's CompID (also its user name).
    pub their_comp: String,
    our_comp: String,
    store: Store,
    /// Negotiated heartbeat interval.
    pub heartbeat: Duration,
    /// When the last message arrived.
    pub last_in: Instant,
    /// When the last message was queued.
    pub last_out: Instant,
    /// A TestRequest is outstanding since then.
    pub test_sent: Option<Instant>,
    /// We sent Logout and wait for the answer.
    pub logout_sent: bool,
    body: Vec<u8>,
    /// SendingTime tolerance.
    tolerance_ms: i64,
    /// A ResendRequest of ours is outstanding until the expected number passes this.
    resend_until: u64,
}

/// SessionRejectReason values we use (tag 373).
pub mod reason {
    /// Invalid tag number.
    pub const INVALID_TAG: u32 = 0;
    /// Required tag missing.
    pub const REQUIRED_TAG_MISSING: u32 = 1;
    /// Value is incorrect (out of range) for this tag.
    pub const VALUE_INCORRECT: u32 = 5;
    /// Incorrect data format for value.
    pub const INCORRECT_FORMAT: u32 = 6;
    /// CompID problem.
    pub const COMP_ID: u32 = 9;
    /// SendingTime accuracy problem.
    pub const SENDING_TIME: u32 = 10;
    /// Invalid MsgType.
    pub const INVALID_MSG_TYPE: u32 = 11;
}

impl FixSession {
    /// Opens the session's store under `dir`.
    pub fn open(
        dir: &Path,
        their_comp: &str,
        our_comp: &str,
        tolerance_ms: i64,
    ) -> io::Result<FixSession> {
        let now = Instant::now();
        Ok(FixSession {
            their_comp: their_comp.to_string(),
            our_comp: our_comp.to_string(),
            store: Store::open(dir)?,
            heartbeat: Duration::from_secs(30),
            last_in: now,
            last_out: now,
            test_sent: None,
            logout_sent: false,
            body: Vec::with_capacity(512),
            tolerance_ms,
            resend_until: 0,
        })
    }

    /// Next expected incoming MsgSeqNum.
    pub fn next_in(&self) -> u64 {
        self.store.next_in()
    }

    /// Next outgoing MsgSeqNum.
    pub fn next_out(&self) -> u64 {
        self.store.next_out()
    }

    /// Sets the next expected incoming MsgSeqNum.
    pub fn set_next_in(&mut self, seq: u64) -> io::Result<()> {
        self.store.set_next_in(seq)
    }

    /// Writes buffered outgoing records (before any socket write).
    pub fn flush(&mut self) -> io::Result<()> {
        self.store.flush()
    }

    /// Empties the store (ResetSeqNumFlag): both sides start again at 1.
    pub fn reset(&mut self) -> io::Result<()> {
        self.store.reset()
    }

    /// Sends (or, with `out` = `None`, only stores) an application message whose body
    /// fields (after the header) are `body`.
    pub fn send_app(
        &mut self,
        out: Option<&mut Vec<u8>>,
        msg_type: &str,
        body: &[u8],
    ) -> io::Result<()> {
        let sent = time::now_ms();
        let mut rec = Vec::with_capacity(body.len() + 32);
        rec.push(b'M');
        rec.extend_from_slice(msg_type.as_bytes());
        rec.push(SOH);
        rec.extend_from_slice(&sent.to_le_bytes());
        rec.extend_from_slice(body);
        let seq = self.store.append(&rec)?;
        if let Some(out) = out {
            self.frame(out, msg_type, seq, None, sent, body);
        }
        Ok(())
    }

    /// Sends an admin message (stored as a gap to fill on resend).
    pub fn send_admin(&mut self, out: &mut Vec<u8>, msg_type: &str, body: &[u8]) -> io::Result<()> {
        let seq = self.store.append(b"A")?;
        self.frame(out, msg_type, seq, None, time::now_ms(), body);
        Ok(())
    }

    fn frame(
        &mut self,
        out: &mut Vec<u8>,
        msg_type: &str,
        seq: u64,
        orig: Option<i64>,
        sent: i64,
        body: &[u8],
    ) {
        let mut w = Writer::new(out, msg_type);
        w.str(49, &self.our_comp)
            .str(56, &self.their_comp)
            .int(34, seq);
        if let Some(orig) = orig {
            w.str(43, "Y").str(122, &time::format(orig));
        }
        w.str(52, &time::format(sent));
        w.fields(body);
        w.finish();
        self.last_out = Instant::now();
    }

    /// Builds body fields with a [`Writer`]-like closure into the session's scratch.
    pub fn body(&mut self, f: impl FnOnce(&mut BodyWriter)) -> Vec<u8> {
        self.body.clear();
        let mut b = BodyWriter(&mut self.body);
        f(&mut b);
        self.body.clone()
    }

    /// Session-level Reject of message `ref_seq`.
    pub fn reject(
        &mut self,
        out: &mut Vec<u8>,
        ref_seq: u64,
        msg_type: &[u8],
        reason: u32,
        tag: Option<u32>,
        text: &str,
    ) -> io::Result<()> {
        let body = self.body(|b| {
            b.int(45, ref_seq);
            if let Some(t) = tag {
                b.int(371, t);
            }
            if !msg_type.is_empty() && msg_type.len() <= 4 {
                b.raw(372, msg_type);
            }
            b.int(373, reason).str(58, text);
        });
        self.send_admin(out, "3", &body)
    }

    /// Logout with a reason.
    pub fn logout(&mut self, out: &mut Vec<u8>, text: &str) -> io::Result<()> {
        let body = self.body(|b| {
            if !text.is_empty() {
                b.str(58, text);
            }
        });
        self.logout_sent = true;
        self.send_admin(out, "5", &body)
    }

    /// The Logon answer: our heartbeat echo, and 141=Y when resetting.
    pub fn logon_reply(
        &mut self,
        out: &mut Vec<u8>,
        heartbeat: u64,
        reset: bool,
    ) -> io::Result<()> {
        let body = self.body(|b| {
            b.int(98, 0).int(108, heartbeat);
            if reset {
                b.str(141, "Y");
            }
        });
        // HeartBtInt 0: no heartbeats and no test requests on this session.
        self.heartbeat = Duration::from_secs(heartbeat);
        self.logout_sent = false;
        self.resend_until = 0;
        self.test_sent = None;
        self.last_in = Instant::now();
        self.send_admin(out, "A", &body)
    }

    /// Asks for everything from the next expected number on.
    pub fn resend_request(&mut self, out: &mut Vec<u8>, upto: u64) -> io::Result<()> {
        self.resend_until = upto;
        let from = self.next_in();
        let body = self.body(|b| {
            b.int(7, from).int(16, 0);
        });
        self.send_admin(out, "2", &body)
    }

    /// Checks the header of a message received while logged on and applies the
    /// sequence rules. `App` means: hand it to the application (the number is taken).
    pub fn on_message(&mut self, msg: &Message<'_>, out: &mut Vec<u8>) -> io::Result<Step> {
        self.last_in = Instant::now();
        self.test_sent = None;
        let mt = msg.msg_type();
        let Ok(seq) = msg.uint(34) else {
            self.logout(out, "MsgSeqNum(34) missing or not a number")?;
            return Ok(Step::Close);
        };
        if let Some(step) = self.check_header(msg, seq, out)? {
            return Ok(step);
        }
        if mt == b"4" && !msg.flag(123) {
            return self.sequence_reset(msg, seq, out);
        }
        let expected = self.next_in();
        if seq > expected {
            if mt == b"5" {
                self.logout(out, "")?;
                return Ok(Step::Close);
            }
            if mt == b"2" {
                self.answer_resend(msg, seq, out)?;
            }
            if self.resend_until < expected {
                self.resend_request(out, seq)?;
            }
            return Ok(Step::Done);
        }
        if seq < expected {
            if msg.flag(43) {
                return Ok(Step::Done);
            }
            let text = format!("MsgSeqNum too low, expecting {expected} but received {seq}");
            self.logout(out, &text)?;
            return Ok(Step::Close);
        }
        self.store.set_next_in(seq + 1)?;
        self.admin(msg, seq, out)
    }

    /// CompIDs, SendingTime and PossDup's OrigSendingTime. `Some` ends processing.
    fn check_header(
        &mut self,
        msg: &Message<'_>,
        seq: u64,
        out: &mut Vec<u8>,
    ) -> io::Result<Option<Step>> {
        let mt = msg.msg_type();
        if msg.text(49) != Some(self.their_comp.as_str())
            || msg.text(56) != Some(self.our_comp.as_str())
        {
            self.reject(
                out,
                seq,
                mt,
                reason::COMP_ID,
                Some(if msg.text(49) == Some(self.their_comp.as_str()) {
                    56
                } else {
                    49
                }),
                "CompID problem",
            )?;
            self.logout(out, "CompID problem")?;
            return Ok(Some(Step::Close));
        }
        let Some(sent) = msg.get(52).and_then(time::parse) else {
            if seq == self.next_in() {
                self.store.set_next_in(seq + 1)?;
            }
            self.reject(
                out,
                seq,
                mt,
                reason::REQUIRED_TAG_MISSING,
                Some(52),
                "SendingTime(52) missing or malformed",
            )?;
            return Ok(Some(Step::Done));
        };
        if (sent - time::now_ms()).abs() > self.tolerance_ms {
            self.reject(
                out,
                seq,
                mt,
                reason::SENDING_TIME,
                Some(52),
                "SendingTime accuracy problem",
            )?;
            self.logout(out, "SendingTime accuracy problem")?;
            return Ok(Some(Step::Close));
        }
        if msg.flag(43) && mt != b"4" {
            match msg.get(122).and_then(time::parse) {
                Some(orig) if orig <= sent => {}
                Some(_) => {
                    self.reject(
                        out,
                        seq,
                        mt,
                        reason::SENDING_TIME,
                        Some(122),
                        "OrigSendingTime after SendingTime",
                    )?;
                    self.logout(out, "SendingTime accuracy problem")?;
                    return Ok(Some(Step::Close));
                }
                None => {
                    if seq == self.next_in() {
                        self.store.set_next_in(seq + 1)?;
                    }
                    self.reject(
                        out,
                        seq,
                        mt,
                        reason::REQUIRED_TAG_MISSING,
                        Some(122),
                        "OrigSendingTime(122) required with PossDupFlag",
                    )?;
                    return Ok(Some(Step::Done));
                }
            }
        }
        Ok(None)
    }

    /// Admin messages in sequence; application ones go on.
    fn admin(&mut self, msg: &Message<'_>, seq: u64, out: &mut Vec<u8>) -> io::Result<Step> {
        match msg.msg_type() {
            b"0" | b"3" => Ok(Step::Done),
            b"1" => {
                let id = msg.get(112).unwrap_or(b"");
                let body = self.body(|b| {
                    if !id.is_empty() {
                        b.raw(112, id);
                    }
                });
                self.send_admin(out, "0", &body)?;
                Ok(Step::Done)
            }
            b"2" => {
                self.answer_resend(msg, seq, out)?;
                Ok(Step::Done)
            }
            b"4" => self.gap_fill(msg, seq, out),
            b"5" => {
                if !self.logout_sent {
                    self.logout(out, "")?;
                }
                Ok(Step::Close)
            }
            b"A" => {
                self.reject(
                    out,
                    seq,
                    b"A",
                    reason::VALUE_INCORRECT,
                    None,
                    "already logged on",
                )?;
                Ok(Step::Done)
            }
            _ => Ok(Step::App),
        }
    }

    /// SequenceReset-GapFill (in sequence): moves the expected number forward.
    fn gap_fill(&mut self, msg: &Message<'_>, seq: u64, out: &mut Vec<u8>) -> io::Result<Step> {
        let floor = seq + 1;
        self.new_seq_no(msg, seq, out, floor, "NewSeqNo must be above MsgSeqNum")
    }

    /// SequenceReset-Reset: sets the expected number whatever MsgSeqNum says; never
    /// backwards.
    fn sequence_reset(
        &mut self,
        msg: &Message<'_>,
        seq: u64,
        out: &mut Vec<u8>,
    ) -> io::Result<Step> {
        let floor = self.next_in();
        self.new_seq_no(
            msg,
            seq,
            out,
            floor,
            "NewSeqNo would move the sequence backwards",
        )
    }

    /// Takes NewSeqNo (36) as the next expected number if it is at least `floor`;
    /// otherwise a Reject saying why.
    fn new_seq_no(
        &mut self,
        msg: &Message<'_>,
        seq: u64,
        out: &mut Vec<u8>,
        floor: u64,
        too_low: &str,
    ) -> io::Result<Step> {
        match msg.uint(36) {
            Ok(n) if n >= floor => self.store.set_next_in(n)?,
            Ok(_) => self.reject(out, seq, b"4", reason::VALUE_INCORRECT, Some(36), too_low)?,
            Err(e) => self.reject(
                out,
                seq,
                b"4",
                e.reason,
                e.tag,
                "NewSeqNo(36) missing or malformed",
            )?,
        }
        Ok(Step::Done)
    }

    /// Resends `BeginSeqNo..=EndSeqNo` (0: all) from the store.
    fn answer_resend(&mut self, msg: &Message<'_>, seq: u64, out: &mut Vec<u8>) -> io::Result<()> {
        let (Ok(begin), Ok(end)) = (msg.uint(7), msg.uint(16)) else {
            return self.reject(
                out,
                seq,
                b"2",
                reason::REQUIRED_TAG_MISSING,
                Some(7),
                "BeginSeqNo(7) and EndSeqNo(16) required",
            );
        };
        let last = self.next_out() - 1;
        let end = if end == 0 || end > last { last } else { end };
        let begin = begin.max(1);
        let mut gap_from: Option<u64> = None;
        for s in begin..=end {
            let rec = self.store.get(s)?.unwrap_or_else(|| b"A".to_vec());
            if rec.first() == Some(&b'M') {
                if let Some(g) = gap_from.take() {
                    self.gap_fill_out(out, g, s);
                }
                self.resend_one(out, s, &rec);
            } else if gap_from.is_none() {
                gap_from = Some(s);
            }
        }
        if let Some(g) = gap_from {
            self.gap_fill_out(out, g, end + 1);
        }
        Ok(())
    }

    fn gap_fill_out(&mut self, out: &mut Vec<u8>, from: u64, to: u64) {
        let body = self.body(|b| {
            b.str(123, "Y").int(36, to);
        });
        let now = time::now_ms();
        self.frame(out, "4", from, Some(now), now, &body);
    }

    fn resend_one(&mut self, out: &mut Vec<u8>, seq: u64, rec: &[u8]) {
        let Some(sep) = rec.iter().position(|&b| b == SOH) else {
            return;
        };
        let msg_type = String::from_utf8_lossy(&rec[1..sep]).into_owned();
        let Some(orig) = rec.get(sep + 1..sep + 9) else {
            return;
        };
        let orig = i64::from_le_bytes(orig.try_into().unwrap_or_default());
        let body = rec[sep + 9..].to_vec();
        self.frame(out, &msg_type, seq, Some(orig), time::now_ms(), &body);
    }

    /// Heartbeat and TestRequest timers; `true` means the counterparty is gone.
    pub fn timers(&mut self, now: Instant, out: &mut Vec<u8>) -> io::Result<bool> {
        let hb = self.heartbeat;
        if hb.is_zero() {
            return Ok(false);
        }
        if let Some(t) = self.test_sent {
            if now.duration_since(t) > hb {
                return Ok(true);
            }
        } else if now.duration_since(self.last_in) > hb + hb / 5 {
            let body = self.body(|b| {
                b.str(112, "TEST");
            });
            self.send_admin(out, "1", &body)?;
            self.test_sent = Some(now);
        }
        if now.duration_since(self.last_out) >= hb {
            self.send_admin(out, "0", &[])?;
        }
        Ok(false)
    }
}

/// Writes body fields (no header, no trailer).
pub struct BodyWriter<'a>(pub &'a mut Vec<u8>);

impl BodyWriter<'_> {
    /// `tag=value`.
    pub fn raw(&mut self, tag: u32, value: &[u8]) -> &mut Self {
        use std::io::Write;
        let _ = write!(self.0, "{tag}=");
        self.0.extend_from_slice(value);
        self.0.push(SOH);
        self
    }

    /// A text field.
    pub fn str(&mut self, tag: u32, value: &str) -> &mut Self {
        self.raw(tag, value.as_bytes())
    }

    /// An integer field.
    pub fn int(&mut self, tag: u32, value: impl std::fmt::Display) -> &mut Self {
        use std::io::Write;
        let _ = write!(self.0, "{tag}={value}\x01");
        self
    }

    /// A decimal field from integer units.
    pub fn scaled(&mut self, tag: u32, value: i64, decimals: u32) -> &mut Self {
        use std::io::Write;
        let _ = write!(self.0, "{tag}=");
        crate::wire::format_scaled(value, decimals, self.0);
        self.0.push(SOH);
        self
    }
}
