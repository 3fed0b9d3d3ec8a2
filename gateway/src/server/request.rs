//! What travels on the two rings: requests from the I/O thread to the engine thread,
//! replies back.
//!
//! Invariants: each [`Request`] gets exactly one [`Reply`] with the same `origin` and
//! `rid`, in the order the requests were taken; a reply's `seq` is the sequence number
//! of the command it answers, or for a query the last sequence number applied before
//! it, so holding replies until `seq` is durable never shows undurable state.

use cascade_core::{
    AccountId, ClientOrderId, CommandKind, Event, MarketId, OrderId, OrderView, Price, Qty,
};
use smallvec::SmallVec;

/// The connection a request came from; `gen` tells a reused slot from the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Slot in the I/O thread's connection table.
    pub token: usize,
    /// Generation of that slot.
    pub gen: u32,
}

/// A request to the engine thread.
#[derive(Clone, Debug)]
pub struct Request {
    /// Who asked (`None`: the gateway itself).
    pub origin: Option<Origin>,
    /// The asker's request number, echoed in the reply.
    pub rid: u64,
    /// What is asked.
    pub what: Ask,
}

/// What a request asks.
#[derive(Clone, Debug)]
pub enum Ask {
    /// Sequence, journal and apply this command.
    Command(CommandKind),
    /// Cancel the order or stop order the account knows by this client id.
    CancelByClient {
        /// Owner.
        account: AccountId,
        /// Client id the order was placed (or last replaced) with.
        client_id: ClientOrderId,
    },
    /// Replace the order the account knows by `orig`; afterwards `new_id` names it too.
    ReplaceByClient {
        /// Owner.
        account: AccountId,
        /// Client id the order is known by.
        orig: ClientOrderId,
        /// Client id the replaced order is known by from now on.
        new_id: ClientOrderId,
        /// New limit price.
        price: Price,
        /// New open quantity.
        qty: Qty,
    },
    /// The state of one order, by client id or order id.
    Status {
        /// Owner.
        account: AccountId,
        /// Client id, if given.
        client_id: Option<ClientOrderId>,
        /// Order id, if given (preferred).
        order_id: Option<OrderId>,
    },
    /// The account's positions and margin.
    Positions {
        /// Owner.
        account: AccountId,
    },
}

/// One open position, as reported to its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PositionRow {
    /// Market.
    pub market: MarketId,
    /// Signed size, lots.
    pub size: i64,
    /// Average entry price, core units (toward zero).
    pub entry: i64,
    /// Mark price.
    pub mark: i64,
    /// Unrealised PnL at mark, atoms.
    pub upnl: i128,
    /// Initial margin of the pool that holds it, atoms.
    pub initial: i128,
    /// Maintenance margin of that pool, atoms.
    pub maintenance: i128,
    /// Equity of that pool, atoms.
    pub equity: i128,
    /// Mark at which the pool reaches maintenance, other prices fixed (0: none).
    pub liquidation_price: i64,
}

/// Market-wide figures for the market-data feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketStats {
    /// Market.
    pub market: MarketId,
    /// Mark price (0: none yet).
    pub mark: i64,
    /// Open interest, lots (one side).
    pub open_interest: i64,
    /// Aggregate leverage ratio × 10^4 (0: undefined).
    pub leverage_bps: i64,
    /// Insurance fund equity covering this market, atoms.
    pub fund_equity: i128,
}

/// A reply from the engine thread.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Sequence number the reply reflects (release when durable).
    pub seq: u64,
    /// Who asked.
    pub origin: Option<Origin>,
    /// The asker's request number.
    pub rid: u64,
    /// The answer.
    pub body: Body,
}

/// The answer itself. Events stay inline (the common case, no allocation per
/// command), so the ring's slots are as large as that variant.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Body {
    /// A sequenced command's events.
    Events(SmallVec<[Event; 6]>),
    /// A cancel or replace named a client id the account has no order under; nothing
    /// was sequenced.
    Unknown,
    /// An order's state (`None`: not resting).
    Order(Option<OrderView>),
    /// Positions.
    Positions(Vec<PositionRow>),
    /// Market figures after marks, funding or trades.
    Stats(Vec<MarketStats>),
    /// At start: every resting order and every book level, to seed the I/O thread's
    /// mirrors.
    Startup {
        /// Resting orders.
        orders: Vec<OrderView>,
        /// Book levels: (market, side, price, qty, orders).
        levels: Vec<(MarketId, cascade_core::Side, Price, Qty, u32)>,
    },
}
