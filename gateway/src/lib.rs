//! cascade-gateway: the exchange gateway around `cascade-core`.
//!
//! Built so far: the durable input journal ([`journal`]), usable without the network,
//! the capacities file recorded beside it ([`engine_file`]), checksummed snapshot files
//! ([`snapshot_file`]), and the text form of command logs ([`text_log`]).
//! Planned (see `docs/ARCHITECTURE.md`): snapshots and recovery into an engine, the
//! sequencer, rings to a pinned engine thread, FIX 4.4 and binary protocols, market
//! data.

pub mod engine_file;
pub mod journal;
pub mod snapshot_file;
pub mod text_log;

pub use cascade_core as core;
