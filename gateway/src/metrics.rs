//! `/metrics` in the Prometheus text exposition format.
//!
//! Invariant: counters only grow; every metric has HELP and TYPE lines.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::server::Shared;

/// Counters kept by the I/O thread.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connections accepted.
    pub connections: u64,
    /// Successful logons.
    pub logons: u64,
    /// Logons with wrong credentials.
    pub logon_failed: u64,
    /// Logons refused by the lockout.
    pub logon_refused: u64,
    /// FIX messages in.
    pub fix_in: u64,
    /// FIX application messages out.
    pub fix_out: u64,
    /// Binary frames in.
    pub binary_in: u64,
    /// Binary frames out.
    pub binary_out: u64,
    /// Garbled FIX messages dropped.
    pub garbled: u64,
    /// Requests sent to the engine.
    pub requests: u64,
    /// Session-level rejects.
    pub session_rejects: u64,
    /// Business-level rejects.
    pub business_rejects: u64,
    /// Commands the engine rejected.
    pub engine_rejects: u64,
    /// Orders rejected by a throttle.
    pub throttled: u64,
    /// Cancel-on-disconnect mass cancels.
    pub cancel_on_disconnect: u64,
    /// Market-data subscriptions.
    pub md_subscribes: u64,
    /// Market-data subscribers dropped as too slow.
    pub md_slow_disconnects: u64,
    /// Market-data bytes queued.
    pub md_bytes: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
}

fn line(out: &mut String, name: &str, kind: &str, help: &str, v: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP cascade_{name} {help}\n# TYPE cascade_{name} {kind}\ncascade_{name} {v}"
    );
}

impl Metrics {
    /// Renders every metric.
    #[allow(clippy::too_many_arguments)]
    pub fn render(
        &self,
        shared: &Shared,
        inb: usize,
        inb_cap: usize,
        outb: usize,
        outb_cap: usize,
        held: usize,
        sessions: usize,
    ) -> String {
        let mut o = String::with_capacity(4096);
        let c = |o: &mut String, n: &str, h: &str, v: u64| line(o, n, "counter", h, v);
        c(
            &mut o,
            "connections_total",
            "TCP connections accepted",
            self.connections,
        );
        c(&mut o, "logons_total", "successful logons", self.logons);
        c(
            &mut o,
            "logon_failures_total",
            "logons refused for wrong credentials",
            self.logon_failed,
        );
        c(
            &mut o,
            "logon_lockouts_total",
            "logons refused by the address lockout",
            self.logon_refused,
        );
        c(
            &mut o,
            "fix_messages_in_total",
            "FIX messages received",
            self.fix_in,
        );
        c(
            &mut o,
            "fix_messages_out_total",
            "FIX application messages sent or stored",
            self.fix_out,
        );
        c(
            &mut o,
            "binary_messages_in_total",
            "binary frames received",
            self.binary_in,
        );
        c(
            &mut o,
            "binary_messages_out_total",
            "binary frames sent or stored",
            self.binary_out,
        );
        c(
            &mut o,
            "fix_garbled_total",
            "garbled FIX messages ignored",
            self.garbled,
        );
        c(
            &mut o,
            "requests_total",
            "requests sent to the engine",
            self.requests,
        );
        c(
            &mut o,
            "session_rejects_total",
            "FIX session-level rejects",
            self.session_rejects,
        );
        c(
            &mut o,
            "business_rejects_total",
            "FIX business-level rejects",
            self.business_rejects,
        );
        c(
            &mut o,
            "engine_rejects_total",
            "commands the engine rejected",
            self.engine_rejects,
        );
        c(
            &mut o,
            "throttled_total",
            "orders rejected or sessions logged out by throttles",
            self.throttled,
        );
        c(
            &mut o,
            "cancel_on_disconnect_total",
            "mass cancels sent on disconnect",
            self.cancel_on_disconnect,
        );
        c(
            &mut o,
            "md_subscriptions_total",
            "market-data subscriptions",
            self.md_subscribes,
        );
        c(
            &mut o,
            "md_slow_disconnects_total",
            "market-data subscribers dropped as too slow",
            self.md_slow_disconnects,
        );
        c(
            &mut o,
            "md_bytes_total",
            "market-data bytes queued",
            self.md_bytes,
        );
        c(
            &mut o,
            "bytes_in_total",
            "bytes read from sockets",
            self.bytes_in,
        );
        c(
            &mut o,
            "bytes_out_total",
            "bytes written to sockets",
            self.bytes_out,
        );
        let g = |o: &mut String, n: &str, h: &str, v: i128| line(o, n, "gauge", h, v);
        let last = shared.last_seq.load(Ordering::Acquire);
        let durable = shared.durable();
        g(
            &mut o,
            "sessions",
            "users with a logged-on session",
            sessions as i128,
        );
        g(
            &mut o,
            "inbound_ring_used",
            "requests waiting for the engine",
            inb as i128,
        );
        g(
            &mut o,
            "inbound_ring_capacity",
            "inbound ring capacity",
            inb_cap as i128,
        );
        g(
            &mut o,
            "outbound_ring_used",
            "replies waiting for the I/O thread",
            outb as i128,
        );
        g(
            &mut o,
            "outbound_ring_capacity",
            "outbound ring capacity",
            outb_cap as i128,
        );
        g(
            &mut o,
            "replies_held",
            "replies held until durable",
            held as i128,
        );
        g(
            &mut o,
            "last_seq",
            "last sequence number assigned",
            i128::from(last),
        );
        g(
            &mut o,
            "durable_seq",
            "last sequence number durable",
            i128::from(durable),
        );
        g(
            &mut o,
            "journal_durable_lag",
            "commands applied but not yet durable",
            i128::from(last.saturating_sub(durable)),
        );
        c(
            &mut o,
            "engine_commands_total",
            "commands applied by the engine (rate() gives commands/s)",
            shared.applied.load(Ordering::Relaxed),
        );
        c(
            &mut o,
            "liquidations_total",
            "liquidations started",
            shared.liquidations.load(Ordering::Relaxed),
        );
        g(
            &mut o,
            "insurance_fund_equity_atoms",
            "shared insurance fund equity",
            i128::from(shared.fund_equity.load(Ordering::Relaxed)),
        );
        o
    }
}
