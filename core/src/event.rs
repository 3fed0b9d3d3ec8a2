//! Events: the only output of the state machine, and the sinks that receive them.
//!
//! Invariants: every event carries the sequence number of the command that caused it and
//! its index within that command, starting at 0 and increasing by one. The byte encoding
//! in [`Event::encode`] is canonical (little-endian, fixed field order) and injective
//! (each variant's tag and each rejection's code fix the length and meaning of what
//! follows), so two event logs are identical exactly when their hashes from
//! [`HashSink`] agree (up to the hash's own collisions). Its layout is versioned by
//! [`EVENT_ENCODING_VERSION`].

use crate::market::MarketConfigError;
use crate::risk::RiskConfigError;
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
        /// Fee paid by the maker in quote atoms (negative: rebate received); 0 without risk.
        maker_fee: i64,
        /// Fee paid by the taker in quote atoms; 0 without risk and for liquidation orders.
        taker_fee: i64,
        /// The taker is a liquidation order.
        liquidation: bool,
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
    /// Collateral was deposited.
    Deposited {
        /// Account.
        account: AccountId,
        /// Atoms added.
        amount: i64,
        /// Cross collateral after.
        collateral: i128,
    },
    /// Collateral was withdrawn.
    Withdrawn {
        /// Account.
        account: AccountId,
        /// Atoms removed.
        amount: i64,
        /// Cross collateral after.
        collateral: i128,
    },
    /// Leverage was set.
    LeverageSet {
        /// Account.
        account: AccountId,
        /// Market.
        market: MarketId,
        /// New leverage.
        leverage: u32,
    },
    /// Margin mode was set.
    MarginModeSet {
        /// Account.
        account: AccountId,
        /// Market.
        market: MarketId,
        /// True for isolated.
        isolated: bool,
    },
    /// Collateral moved between the cross balance and an isolated bucket.
    IsolatedTransferred {
        /// Account.
        account: AccountId,
        /// Market.
        market: MarketId,
        /// Atoms moved into the bucket (negative: out of it).
        amount: i64,
        /// Bucket after.
        bucket: i128,
    },
    /// A new mark price was accepted.
    MarkUpdated {
        /// Market.
        market: MarketId,
        /// New mark.
        price: Price,
        /// Volatility margin scale after the update, as raw I32F32 bits.
        scale_bits: i64,
    },
    /// A funding payment moved the market's funding index: every position pays
    /// `size × delta / 2^32` atoms (longs pay when `delta > 0`, shorts receive), accrued
    /// and settled into its pool when it next changes (`PositionChanged::funding`).
    FundingIndexed {
        /// Market.
        market: MarketId,
        /// Per-lot payment of a long, in 2^-32 atoms (`mark × rate`, exact).
        delta: i128,
        /// The market's cumulative funding index after it, same unit.
        index: i128,
    },
    /// A funding payment was settled for one position (the insurance fund's, which
    /// settles at once).
    FundingPaid {
        /// Account.
        account: AccountId,
        /// Market.
        market: MarketId,
        /// Atoms received (negative: paid).
        amount: i64,
    },
    /// A position changed by a fill.
    PositionChanged {
        /// Account.
        account: AccountId,
        /// Market.
        market: MarketId,
        /// Signed size after (lots; negative is short).
        size: i64,
        /// Signed cost basis after (Σ price × lots of the open position).
        cost: i128,
        /// PnL realised by this change, before fees.
        realised: i64,
        /// Funding accrued on the position since it last changed, settled into its pool
        /// now (atoms received; negative: paid). See `FundingIndexed`.
        funding: i64,
    },
    /// A pool fell below maintenance margin and is about to be liquidated.
    MarginCall {
        /// Account.
        account: AccountId,
        /// The isolated market, or `None` for the cross pool.
        market: Option<MarketId>,
        /// Pool equity at the mark.
        equity: i128,
        /// Pool maintenance margin.
        maintenance: i128,
    },
    /// The pool's orders are cancelled; its positions are being liquidated.
    LiquidationStarted {
        /// Account.
        account: AccountId,
        /// The isolated market, or `None` for the cross pool.
        market: Option<MarketId>,
        /// Pool equity after the cancels.
        equity: i128,
        /// Pool maintenance margin after the cancels.
        maintenance: i128,
    },
    /// An IOC liquidation order entered the book; its trades are `Fill`s flagged
    /// `liquidation`.
    LiquidationOrder {
        /// Engine-assigned id.
        order_id: OrderId,
        /// Account being liquidated.
        account: AccountId,
        /// Market.
        market: MarketId,
        /// Side (reduces the position).
        side: Side,
        /// Limit price.
        price: Price,
        /// Quantity.
        qty: Qty,
    },
    /// The insurance fund took over part of a position at the bankruptcy price.
    Backstop {
        /// Account being liquidated.
        account: AccountId,
        /// Market.
        market: MarketId,
        /// Lots taken over.
        qty: Qty,
        /// Bankruptcy price.
        price: Price,
    },
    /// Auto-deleveraging closed part of an opposite position at the bankruptcy price.
    AdlFill {
        /// Market.
        market: MarketId,
        /// Bankrupt account.
        account: AccountId,
        /// Account deleveraged.
        counterparty: AccountId,
        /// Lots.
        qty: Qty,
        /// Bankruptcy price.
        price: Price,
    },
    /// The pool's liquidation ended.
    LiquidationFinished {
        /// Account.
        account: AccountId,
        /// The isolated market, or `None` for the cross pool.
        market: Option<MarketId>,
        /// Liquidation fee paid to the insurance fund.
        fee: i64,
        /// Pool equity after the fee.
        equity: i128,
    },
    /// An insurance fund's cash changed.
    InsuranceFund {
        /// Which fund: `None` the shared one, `Some(m)` market `m`'s own.
        fund: Option<MarketId>,
        /// Cash after.
        balance: i128,
        /// Change of cash (negative: paid out).
        change: i128,
        /// Equity after: cash plus every fund position at its mark minus its cost.
        equity: i128,
    },
    /// The insurance fund sent an IOC order to unwind a position it took over; its
    /// trades follow as `Fill { taker_account: AccountId::FUND, liquidation: true }`.
    FundOrder {
        /// Fresh engine order id.
        order_id: OrderId,
        /// Market.
        market: MarketId,
        /// Side (reduces the fund's position).
        side: Side,
        /// Limit price.
        price: Price,
        /// Quantity.
        qty: Qty,
    },
    /// A conditional order was placed and waits for the mark.
    ConditionalAccepted {
        /// Its id (from the order-id sequence).
        order_id: OrderId,
        /// Owner.
        account: AccountId,
        /// Market.
        market: MarketId,
        /// Side of the order it becomes.
        side: Side,
        /// Trigger price.
        trigger: Price,
        /// Quantity.
        qty: Qty,
    },
    /// A conditional order fired; the order it becomes follows (`Accepted`, or
    /// `ConditionalRejected`).
    ConditionalTriggered {
        /// The conditional's id.
        order_id: OrderId,
        /// Owner.
        account: AccountId,
        /// Market.
        market: MarketId,
    },
    /// The order a fired conditional became failed a check of a new order.
    ConditionalRejected {
        /// The conditional's id.
        order_id: OrderId,
        /// Why.
        reason: RejectReason,
    },
    /// A waiting conditional order was removed.
    ConditionalCancelled {
        /// The conditional's id.
        order_id: OrderId,
        /// Owner.
        account: AccountId,
        /// Why (`User`, `MassCancel` or `Liquidation`).
        reason: CancelReason,
    },
    /// A loss nothing could absorb was written off: a flat pool's negative balance was
    /// raised back to zero and the amount entered the bad-debt ledger.
    BadDebt {
        /// Account whose pool was left with negative equity.
        account: AccountId,
        /// The isolated market of the pool, or `None` for the cross pool.
        market: Option<MarketId>,
        /// Amount written off (atoms, positive).
        amount: i128,
        /// Part of `amount` socialised on the fee ledger; the rest stays outstanding.
        socialised: i128,
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
    /// The account holds its configured number of resting orders
    /// (`EngineConfig::max_orders_per_account`).
    AccountOrderCapacity,
    /// Every position slot is in use and the command would need one more for its
    /// (account, market) pair (`EngineConfig::max_positions`).
    PositionCapacity,
    /// A level's total quantity would overflow.
    Overflow,
    /// The command needs a leveraged market (one with a risk configuration).
    NotLeveraged,
    /// The leveraged market has no mark price yet.
    NoMarkPrice,
    /// Equity after the command would be below initial margin by `shortfall` atoms.
    InsufficientMargin {
        /// Missing atoms (saturated to i64).
        shortfall: i64,
    },
    /// An amount is zero or negative (or zero for a transfer).
    NonPositiveAmount,
    /// Collateral would exceed the engine's bound.
    CollateralLimit,
    /// Leverage outside 1 ..= max.
    BadLeverage,
    /// Margin mode cannot change while a position or orders are open in the market.
    PositionOrOrdersOpen,
    /// The account's margin mode for this market is not isolated.
    NotIsolated,
    /// A reduce-only order would grow or flip the position.
    ReduceOnlyWouldIncrease,
    /// The market's open-interest cap would be exceeded.
    OpenInterestCap,
    /// The account's share of the open-interest cap would be exceeded.
    AccountOpenInterestCap,
    /// The worst-case position would exceed the last risk-limit tier.
    PositionLimit,
    /// The mark moved more than the configured fraction from the previous mark.
    BadOraclePrint,
    /// The mark is outside the market's price band.
    MarkOutOfBand,
    /// A funding rate above 100% in absolute value.
    FundingRateTooLarge,
    /// A conditional order would fire at the current mark.
    WouldTriggerNow,
    /// Every conditional-order slot is taken (`EngineConfig::max_conditionals`).
    ConditionalCapacity,
    /// The market has no insurance fund of its own (`LiquidationConfig::isolated_fund`).
    NoIsolatedFund,
    /// The funding index would leave the range in which every position's accrued
    /// funding fits exactly (open interest × index range < 2^126).
    FundingIndexLimit,
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
    /// The owner's pool is being liquidated.
    Liquidation,
    /// The owner's pool no longer meets initial margin at the mark.
    Margin,
    /// A resting reduce-only order was larger than what its position still needs.
    ReduceOnly,
}

/// The rejection reason among a command's events, if it was rejected.
pub fn rejection(events: &[Event]) -> Option<RejectReason> {
    events.iter().find_map(|e| match e.kind {
        EventKind::Rejected(r) => Some(r),
        _ => None,
    })
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
pub const EVENT_BYTES_MAX: usize = 128;

/// Version of the byte layout of [`Event::encode`]; bumped whenever any event's encoding
/// changes (stored hashes of event logs compare only within one version).
///
/// - 1: a rejection was one `u64` code, `InsufficientMargin` packed as
///   `(18 << 56) ^ shortfall`, which collided with other codes (a shortfall of
///   `(18 << 56) ^ 13` encoded as `DuplicateClientId`).
/// - 2: a rejection is its reason's `u64` code followed by the reason's payload
///   (`InsufficientMargin`: code 18, then the shortfall as a full `i64`). Every other
///   event is encoded as in version 1.
/// - 3: `InsuranceFund` carries its fund (`u64::MAX` for the shared one) and equity;
///   new tags 26 (`FundOrder`), 27 (`BadDebt`), 28–31 (conditional orders); new reject
///   codes 32–36 (24, `ReduceOnlyNotImmediate`, retired); cancel reason `ReduceOnly`.
/// - 4: funding by index: new tag 32 (`FundingIndexed`); `PositionChanged` carries the
///   funding settled with it (`i64` after `realised`); `FundingPaid` only for the
///   insurance fund; reject code 37 (`FundingIndexLimit`).
pub const EVENT_ENCODING_VERSION: u16 = 4;

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
            EventKind::Rejected(r) => w.tag(5).reject(r),
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
                maker_fee,
                taker_fee,
                liquidation,
            } => w
                .tag(7)
                .u64(u64::from(market.0))
                .u64(maker_order.0)
                .u64(u64::from(maker_account.0))
                .u64(taker_order.0)
                .u64(u64::from(taker_account.0))
                .tag(taker_side as u8)
                .i64(price.0)
                .i64(qty.0)
                .i64(maker_fee)
                .i64(taker_fee)
                .tag(u8::from(liquidation)),
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
            EventKind::Deposited {
                account,
                amount,
                collateral,
            } => w
                .tag(11)
                .u64(u64::from(account.0))
                .i64(amount)
                .i128(collateral),
            EventKind::Withdrawn {
                account,
                amount,
                collateral,
            } => w
                .tag(12)
                .u64(u64::from(account.0))
                .i64(amount)
                .i128(collateral),
            EventKind::LeverageSet {
                account,
                market,
                leverage,
            } => w
                .tag(13)
                .u64(u64::from(account.0))
                .u64(u64::from(market.0))
                .u64(u64::from(leverage)),
            EventKind::MarginModeSet {
                account,
                market,
                isolated,
            } => w
                .tag(14)
                .u64(u64::from(account.0))
                .u64(u64::from(market.0))
                .tag(u8::from(isolated)),
            EventKind::IsolatedTransferred {
                account,
                market,
                amount,
                bucket,
            } => w
                .tag(15)
                .u64(u64::from(account.0))
                .u64(u64::from(market.0))
                .i64(amount)
                .i128(bucket),
            EventKind::MarkUpdated {
                market,
                price,
                scale_bits,
            } => w
                .tag(16)
                .u64(u64::from(market.0))
                .i64(price.0)
                .i64(scale_bits),
            EventKind::FundingPaid {
                account,
                market,
                amount,
            } => w
                .tag(17)
                .u64(u64::from(account.0))
                .u64(u64::from(market.0))
                .i64(amount),
            EventKind::PositionChanged {
                account,
                market,
                size,
                cost,
                realised,
                funding,
            } => w
                .tag(18)
                .u64(u64::from(account.0))
                .u64(u64::from(market.0))
                .i64(size)
                .i128(cost)
                .i64(realised)
                .i64(funding),
            EventKind::FundingIndexed {
                market,
                delta,
                index,
            } => w.tag(32).u64(u64::from(market.0)).i128(delta).i128(index),
            EventKind::MarginCall {
                account,
                market,
                equity,
                maintenance,
            } => w
                .tag(19)
                .u64(u64::from(account.0))
                .u64(market.map_or(u64::MAX, |m| u64::from(m.0)))
                .i128(equity)
                .i128(maintenance),
            EventKind::LiquidationStarted {
                account,
                market,
                equity,
                maintenance,
            } => w
                .tag(20)
                .u64(u64::from(account.0))
                .u64(market.map_or(u64::MAX, |m| u64::from(m.0)))
                .i128(equity)
                .i128(maintenance),
            EventKind::LiquidationOrder {
                order_id,
                account,
                market,
                side,
                price,
                qty,
            } => w
                .tag(21)
                .u64(order_id.0)
                .u64(u64::from(account.0))
                .u64(u64::from(market.0))
                .tag(side as u8)
                .i64(price.0)
                .i64(qty.0),
            EventKind::Backstop {
                account,
                market,
                qty,
                price,
            } => w
                .tag(22)
                .u64(u64::from(account.0))
                .u64(u64::from(market.0))
                .i64(qty.0)
                .i64(price.0),
            EventKind::AdlFill {
                market,
                account,
                counterparty,
                qty,
                price,
            } => w
                .tag(23)
                .u64(u64::from(market.0))
                .u64(u64::from(account.0))
                .u64(u64::from(counterparty.0))
                .i64(qty.0)
                .i64(price.0),
            EventKind::LiquidationFinished {
                account,
                market,
                fee,
                equity,
            } => w
                .tag(24)
                .u64(u64::from(account.0))
                .u64(market.map_or(u64::MAX, |m| u64::from(m.0)))
                .i64(fee)
                .i128(equity),
            EventKind::InsuranceFund {
                fund,
                balance,
                change,
                equity,
            } => w
                .tag(25)
                .u64(fund.map_or(u64::MAX, |m| u64::from(m.0)))
                .i128(balance)
                .i128(change)
                .i128(equity),
            EventKind::FundOrder {
                order_id,
                market,
                side,
                price,
                qty,
            } => w
                .tag(26)
                .u64(order_id.0)
                .u64(u64::from(market.0))
                .tag(side as u8)
                .i64(price.0)
                .i64(qty.0),
            EventKind::ConditionalAccepted {
                order_id,
                account,
                market,
                side,
                trigger,
                qty,
            } => w
                .tag(28)
                .u64(order_id.0)
                .u64(u64::from(account.0))
                .u64(u64::from(market.0))
                .tag(side as u8)
                .i64(trigger.0)
                .i64(qty.0),
            EventKind::ConditionalTriggered {
                order_id,
                account,
                market,
            } => w
                .tag(29)
                .u64(order_id.0)
                .u64(u64::from(account.0))
                .u64(u64::from(market.0)),
            EventKind::ConditionalRejected { order_id, reason } => {
                w.tag(30).u64(order_id.0).reject(reason)
            }
            EventKind::ConditionalCancelled {
                order_id,
                account,
                reason,
            } => w
                .tag(31)
                .u64(order_id.0)
                .u64(u64::from(account.0))
                .tag(reason as u8),
            EventKind::BadDebt {
                account,
                market,
                amount,
                socialised,
            } => w
                .tag(27)
                .u64(u64::from(account.0))
                .u64(market.map_or(u64::MAX, |m| u64::from(m.0)))
                .i128(amount)
                .i128(socialised),
        };
        w.len
    }
}

/// Stable numeric code of a rejection (part of the canonical encoding): distinct for
/// distinct reasons, payload aside (the payload is written after the code).
pub(crate) fn reject_code(r: RejectReason) -> u64 {
    match r {
        RejectReason::UnknownMarket => 1,
        RejectReason::UnknownAccount => 2,
        RejectReason::UnknownOrder => 3,
        RejectReason::AccountExists => 4,
        RejectReason::TooManyMarkets => 5,
        RejectReason::InvalidMarket(MarketConfigError::Risk(e)) => 200 + risk_code(e),
        RejectReason::InvalidMarket(e) => 100 + market_code(e),
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
        RejectReason::NotLeveraged => 16,
        RejectReason::NoMarkPrice => 17,
        RejectReason::InsufficientMargin { .. } => 18,
        RejectReason::NonPositiveAmount => 19,
        RejectReason::CollateralLimit => 20,
        RejectReason::BadLeverage => 21,
        RejectReason::PositionOrOrdersOpen => 22,
        RejectReason::NotIsolated => 23,
        RejectReason::ReduceOnlyWouldIncrease => 25,
        RejectReason::OpenInterestCap => 26,
        RejectReason::AccountOpenInterestCap => 27,
        RejectReason::PositionLimit => 28,
        RejectReason::BadOraclePrint => 29,
        RejectReason::MarkOutOfBand => 30,
        RejectReason::FundingRateTooLarge => 31,
        RejectReason::WouldTriggerNow => 33,
        RejectReason::ConditionalCapacity => 34,
        RejectReason::NoIsolatedFund => 36,
        RejectReason::FundingIndexLimit => 37,
        RejectReason::AccountOrderCapacity => 32,
        RejectReason::PositionCapacity => 35,
    }
}

fn market_code(e: MarketConfigError) -> u64 {
    match e {
        MarketConfigError::NonPositiveTickOrLot => 0,
        MarketConfigError::BadPriceBand => 1,
        MarketConfigError::TooManyLevels => 2,
        MarketConfigError::BadMaxQty => 3,
        MarketConfigError::BadMarketBand => 4,
        MarketConfigError::Risk(_) => 5,
    }
}

fn risk_code(e: RiskConfigError) -> u64 {
    e as u64
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
    fn i128(&mut self, v: i128) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
    /// A rejection: its code, then its payload if it has one.
    fn reject(&mut self, r: RejectReason) -> &mut Self {
        self.u64(reject_code(r));
        match r {
            RejectReason::InsufficientMargin { shortfall } => self.i64(shortfall),
            _ => self,
        }
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
