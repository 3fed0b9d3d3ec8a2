//! cascade-gateway: the exchange gateway around `cascade-core`.
//!
//! Planned (see `docs/ARCHITECTURE.md`): sequencer, journal, rings to a pinned engine
//! thread, FIX 4.4 and binary protocols, market data. Today it only re-exports the core
//! so the workspace layout is fixed; nothing here claims to be a gateway yet.

pub use cascade_core as core;
