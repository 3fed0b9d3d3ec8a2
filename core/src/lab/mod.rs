//! The leverage-dynamics lab: what a price path would do to the live state, run on a
//! private copy of the engine so the live one is never touched.
//!
//! Invariants: every function here takes `&Engine` and returns figures; none mutates the
//! engine it is given. Everything is integer and deterministic: the same engine state and
//! the same scenario give the same report, byte for byte (see [`LabReport::hash`]).
//! Unlike the engine's hot path, the lab allocates (its copy of the engine, its report).

pub mod adl;
pub mod distance;
pub mod exposure;
pub mod history;
pub mod report;
pub mod run;
pub mod scenario;
mod sink;
pub mod warning;

pub use adl::{allocate, AdlPolicy, Allocation, Take, Winner};
pub use distance::{
    amplification_at, amplification_curve, distance_to_cascade, shock_path, AmplificationPoint,
    Direction, Shock,
};
pub use exposure::{liquidatable_within, Exposure};
pub use history::{History, Sample};
pub use report::{AdlOutcome, LabReport, MarketTally, StepReport, ADL_POLICIES};
pub use run::run;
pub use scenario::{Arbitrage, MarkRule, PreLiquidation, Refill, Scenario, ScenarioError};
pub use warning::{at_risk, first_passage, liquidation_probability, MarginWarning, WarningMonitor};
