//! Shared helpers for Cascade's integration tests: the reference book, random command
//! streams, and invariant checks.

pub mod arb;
pub mod gen;
pub mod harness;
pub mod reference;
