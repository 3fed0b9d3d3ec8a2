//! The running gateway: three threads joined by two bounded rings.
//!
//! ```text
//!  clients ──TCP──▶ I/O thread (mio) ──inbound ring──▶ engine thread (pinned)
//!                     ▲  decode, auth, throttle           sequence, journal.append,
//!                     │  hold until durable               engine.apply
//!                     └────────── outbound ring ◀──────────┘   │ batches
//!                                                   journal writer thread (write+fsync)
//! ```
//!
//! Invariants: every request the I/O thread takes off a socket goes into the inbound
//! ring (a full ring stops reading, never drops); each gets exactly one answer on the
//! outbound ring; an answer is released to any socket only once the journal's durable
//! watermark covers the sequence number it reflects.

pub mod engine;
pub mod io;
pub mod orders;
pub mod request;
pub mod store;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::GatewayConfig;

/// Counters the engine thread publishes for the I/O thread and `/metrics`.
#[derive(Debug, Default)]
pub struct Shared {
    /// Last sequence number durable under the fsync policy.
    pub durable_seq: AtomicU64,
    /// Last sequence number assigned.
    pub last_seq: AtomicU64,
    /// Commands applied since start.
    pub applied: AtomicU64,
    /// Liquidations started since start.
    pub liquidations: AtomicU64,
    /// Insurance fund equity (atoms, saturated to i64).
    pub fund_equity: std::sync::atomic::AtomicI64,
    /// Set by a signal or the I/O thread: drain and stop.
    pub stop: AtomicBool,
    /// Set by the engine thread once the final snapshot is written.
    pub engine_done: AtomicBool,
}

impl Shared {
    /// Reads the durable watermark.
    pub fn durable(&self) -> u64 {
        self.durable_seq.load(Ordering::Acquire)
    }
}

/// Runs the gateway until SIGTERM or Ctrl-C; prints the ready line once listening.
pub fn run(cfg: GatewayConfig) -> Result<(), String> {
    let shared = Arc::new(Shared::default());
    let stop_flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop_flag))
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    io::serve(cfg, shared, &stop_flag)
}
