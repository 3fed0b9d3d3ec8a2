//! cascade-gateway: the exchange gateway around `cascade-core`.
//!
//! Built so far: the durable input journal ([`journal`]), usable without the network.
//! Planned (see `docs/ARCHITECTURE.md`): snapshots and recovery into an engine, the
//! sequencer, rings to a pinned engine thread, FIX 4.4 and binary protocols, market
//! data.

pub mod journal;

pub use cascade_core as core;
