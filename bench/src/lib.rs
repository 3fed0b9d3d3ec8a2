//! cascade-bench: replay of recorded order flow, workload generation and benchmarks.

pub mod cascade;
pub mod contagion;
pub mod lab;
pub mod lab_studies;
pub mod latency;
pub mod lobster;
pub mod peers;
pub mod plot;
pub mod risk_report;
pub mod rng;
pub mod warning_eval;
pub mod workload;
