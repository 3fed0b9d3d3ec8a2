//! cascade-core: the deterministic state machine of Cascade.
//!
//! Commands go in through [`Engine::apply`]; events come out through an [`EventSink`].
//! The crate does no I/O, starts no threads, reads no clock or randomness, uses no
//! floats, and allocates only at start-up (engine construction and `AddMarket`); the
//! [`lab`], which works on private copies of the engine, allocates its copies and reports.
//! The same command log therefore yields the same event log, byte for byte.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod book;
pub mod codec;
pub mod command;
pub mod engine;
pub mod event;
pub mod idmap;
pub mod lab;
pub mod market;
pub mod pool;
pub mod ring;
pub mod risk;
pub mod types;

pub use command::{
    Command, CommandKind, ConditionalKind, ConditionalOrder, NewOrder, OrderType, StpMode,
};
pub use engine::{
    AccountRisk, CascadeReport, ConfigError, Engine, EngineConfig, FundView, MarketRisk, OrderView,
    PositionView, SnapshotError,
};
pub use event::{
    rejection, CancelReason, Event, EventKind, EventSink, HashSink, RejectReason,
    EVENT_ENCODING_VERSION,
};
pub use market::{MarketConfig, MarketConfigError};
pub use risk::{AdlMode, LiquidationConfig, Rate, RiskConfig, RiskConfigError, Tier};
pub use types::{AccountId, ClientOrderId, MarketId, OrderId, Price, Qty, Side};
