//! Events: the only output of the state machine, and the sinks that receive them.
//!
//! Invariants: every event carries the sequence number of the command that caused it and
//! its index within that command, starting at 0 and increasing by one. The byte encoding
//! in [`Event::encode`] is canonical (little-endian, fixed field order), so two event logs
//! are identical exactly when their hashes from [`HashSink`] agree.

use crate::market::MarketConfigError;
use crate::types::{AccountId, ClientOrderId, MarketId, OrderId, Price, Qty, Side};

/// One output event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Sequence number of the causing command.
    pub seq: u64,
    /// Index of this event within the causing command.
    pub index: u32,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A market was added with this id.
    MarketAdded(MarketId),
    /// A market was halted.
    MarketHalted(MarketId),
    /// A market resumed.
    MarketResumed(MarketId),
    /// An account was opened.
    AccountOpened(AccountId),
    /// The command was refused; nothing changed.
    Rejected(RejectReason),
    /// A new order passed validation and was given an id.
    Accepted {
        /// Engine-assigned id.
        order_id: OrderId,
        /// Owner.
        account: AccountId,
        /// Client id.
        client_id: ClientOrderId,
        /// Market.
        market: MarketId,
        /// Side.
        side: Side,
        /// Effective limit price (for market orders: the protection limit).
        price: Price,
        /// Quantity.
        qty: Qty,
    },
    /// A trade between a resting (maker) and an incoming (taker) order.
    Fill {
        /// Market.
        market: MarketId,
        /// Resting order.
        maker_order: OrderId,
        /// Owner of the resting order.
        maker_account: AccountId,
        /// Incoming order.
        taker_order: OrderId,
        /// Owner of the incoming order.
        taker_account: AccountId,
        /// Side of the incoming order.
        taker_side: Side,
        /// Trade price: always the resting order's price.
        price: Price,
        /// Traded quantity.
        qty: Qty,
    },
    /// Quantity of an order was removed without trading.
    Cancelled {
        /// Order.
        order_id: OrderId,
        /// Owner.
        account: AccountId,
        /// Quantity removed by this event.
        qty: Qty,
        /// Quantity left open after this event (0: the order is gone).
        remaining: Qty,
        /// Why.
        reason: CancelReason,
    },
    /// A resting order's price and remaining quantity were changed.
    Replaced {
        /// Order.
        order_id: OrderId,
        /// New price.
        price: Price,
        /// New remaining quantity.
        qty: Qty,
        /// Whether it kept its place in the queue.
        kept_priority: bool,
    },
    /// Aggregate of one price level after a change (market data).
    Level {
        /// Market.
        market: MarketId,
        /// Side of the level.
        side: Side,
        /// Level price.
        price: Price,
        /// Total resting quantity (0: the level is empty).
        qty: Qty,
        /// Number of resting orders.
        orders: u32,
    },
}

/// Why a command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// The market id names no market.
    UnknownMarket,
    /// The account id is out of range or not opened.
    UnknownAccount,
    /// The order id names no resting order of this account.
    UnknownOrder,
    /// The account is already open.
    AccountExists,
    /// The engine holds its configured number of markets.
    TooManyMarkets,
    /// The market configuration is invalid.
    InvalidMarket(MarketConfigError),
    /// The market is halted.
    MarketHalted,
    /// Quantity is zero or negative.
    NonPositiveQty,
    /// Quantity exceeds the market's `max_qty`.
    QtyTooLarge,
    /// Price is not a multiple of the market's tick.
    PriceOffTick,
    /// Price is outside the market's band.
    PriceOutOfBand,
    /// A market order met an empty opposite side.
    NoLiquidity,
    /// A post-only order (or replace of one) would take liquidity.
    PostOnlyWouldTake,
    /// The client id is already used by a resting order of the account.
    DuplicateClientId,
    /// The order pool is full.
    OrderCapacity,
    /// A level's total quantity would overflow.
    Overflow,
}

/// Why quantity was removed without trading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// The owner asked (`Cancel`).
    User,
    /// `MassCancel`.
    MassCancel,
    /// IOC or market remainder.
    Unfilled,
    /// A fill-or-kill order could not fill completely.
    FillOrKill,
    /// Self-trade prevention.
    SelfTrade,
}

/// Receives events from the engine.
pub trait EventSink {
    /// Takes one event.
    fn emit(&mut self, event: Event);
}

impl EventSink for Vec<Event> {
    fn emit(&mut self, event: Event) {
        self.push(event);
    }
}

/// Most bytes one encoded event takes.
pub const EVENT_BYTES_MAX: usize = 96;

impl Event {
    /// Writes the canonical little-endian encoding into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8; EVENT_BYTES_MAX]) -> usize {
        let mut w = Writer { buf, len: 0 };
        w.u64(self.seq);
        w.u64(u64::from(self.index));
        match self.kind {
            EventKind::MarketAdded(m) => w.tag(1).u64(u64::from(m.0)),
            EventKind::MarketHalted(m) => w.tag(2).u64(u64::from(m.0)),
            EventKind::MarketResumed(m) => w.tag(3).u64(u64::from(m.0)),
            EventKind::AccountOpened(a) => w.tag(4).u64(u64::from(a.0)),
            EventKind::Rejected(r) => w.tag(5).u64(reject_code(r)),
            EventKind::Accepted {
                order_id,
                account,
                client_id,
                market,
                side,
                price,
                qty,
            } => w
                .tag(6)
                .u64(order_id.0)
                .u64(u64::from(account.0))
                .u64(client_id.0)
                .u64(u64::from(market.0))
                .tag(side as u8)
                .i64(price.0)
                .i64(qty.0),
            EventKind::Fill {
                market,
                maker_order,
                maker_account,
                taker_order,
                taker_account,
                taker_side,
                price,
                qty,
            } => w
                .tag(7)
                .u64(u64::from(market.0))
                .u64(maker_order.0)
                .u64(u64::from(maker_account.0))
                .u64(taker_order.0)
                .u64(u64::from(taker_account.0))
                .tag(taker_side as u8)
                .i64(price.0)
                .i64(qty.0),
            EventKind::Cancelled {
                order_id,
                account,
                qty,
                remaining,
                reason,
            } => w
                .tag(8)
                .u64(order_id.0)
                .u64(u64::from(account.0))
                .i64(qty.0)
                .i64(remaining.0)
                .tag(reason as u8),
            EventKind::Replaced {
                order_id,
                price,
                qty,
                kept_priority,
            } => w
                .tag(9)
                .u64(order_id.0)
                .i64(price.0)
                .i64(qty.0)
                .tag(u8::from(kept_priority)),
            EventKind::Level {
                market,
                side,
                price,
                qty,
                orders,
            } => w
                .tag(10)
                .u64(u64::from(market.0))
                .tag(side as u8)
                .i64(price.0)
                .i64(qty.0)
                .u64(u64::from(orders)),
        };
        w.len
    }
}

/// Stable numeric code of a rejection (part of the canonical encoding).
fn reject_code(r: RejectReason) -> u64 {
    match r {
        RejectReason::UnknownMarket => 1,
        RejectReason::UnknownAccount => 2,
        RejectReason::UnknownOrder => 3,
        RejectReason::AccountExists => 4,
        RejectReason::TooManyMarkets => 5,
        RejectReason::InvalidMarket(e) => 100 + e as u64,
        RejectReason::MarketHalted => 6,
        RejectReason::NonPositiveQty => 7,
        RejectReason::QtyTooLarge => 8,
        RejectReason::PriceOffTick => 9,
        RejectReason::PriceOutOfBand => 10,
        RejectReason::NoLiquidity => 11,
        RejectReason::PostOnlyWouldTake => 12,
        RejectReason::DuplicateClientId => 13,
        RejectReason::OrderCapacity => 14,
        RejectReason::Overflow => 15,
    }
}

/// Appends fixed-width little-endian fields to a buffer.
struct Writer<'a> {
    buf: &'a mut [u8; EVENT_BYTES_MAX],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        self
    }
    fn tag(&mut self, t: u8) -> &mut Self {
        self.put(&[t])
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
}

/// A sink that keeps only a 64-bit hash of the canonical encodings and a count.
///
/// The hash is FNV-1a's step applied to little-endian 64-bit words (the encoding
/// zero-padded to a whole word) followed by a length word: stable across machines,
/// eight times fewer steps than byte-wise FNV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashSink {
    /// Running hash.
    pub hash: u64,
    /// Events seen.
    pub count: u64,
}

impl Default for HashSink {
    fn default() -> Self {
        HashSink {
            hash: 0xcbf2_9ce4_8422_2325,
            count: 0,
        }
    }
}

impl EventSink for HashSink {
    fn emit(&mut self, event: Event) {
        let mut buf = [0u8; EVENT_BYTES_MAX];
        let n = event.encode(&mut buf);
        for word in buf[..n.next_multiple_of(8)].chunks_exact(8) {
            let w = u64::from_le_bytes(word.try_into().expect("8-byte chunk"));
            self.hash = (self.hash ^ w).wrapping_mul(0x0100_0000_01b3);
        }
        self.hash = (self.hash ^ n as u64).wrapping_mul(0x0100_0000_01b3);
        self.count += 1;
    }
}
