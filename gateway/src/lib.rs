//! cascade-gateway: the exchange gateway around `cascade-core`.
//!
//! The data path (see `docs/ARCHITECTURE.md`): the I/O thread ([`server::io`]) reads
//! FIX 4.4 ([`fix`]) and binary ([`binary`]) sessions and turns messages into requests;
//! the engine thread ([`server::engine`]) sequences them, appends them to the durable
//! [`journal`] and applies them; events come back through a ring to the I/O thread,
//! which holds every report until its command is durable, then sends execution
//! reports and the market-data feed ([`marketdata`]). Around it: the configuration
//! ([`config`]), credentials ([`auth`]), throttles ([`throttle`]), metrics
//! ([`metrics`]), snapshots ([`snapshot_file`]) and the text command log
//! ([`text_log`]).

pub mod auth;
pub mod binary;
pub mod config;
pub mod engine_file;
pub mod fix;
pub mod journal;
pub mod log;
pub mod marketdata;
pub mod metrics;
pub mod recovery;
pub mod server;
pub mod snapshot_file;
pub mod text_log;
pub mod throttle;
pub mod wire;

pub use cascade_core as core;
