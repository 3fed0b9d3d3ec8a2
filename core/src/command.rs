//! Commands: the only input of the state machine.
//!
//! Each command carries a sequence number and a timestamp assigned upstream (by the
//! gateway's sequencer or a replay tool). The engine never reads a clock.

use crate::market::MarketConfig;
use crate::risk::Rate;
use crate::types::{AccountId, ClientOrderId, MarketId, OrderId, Price, Qty, Side};

/// A sequenced command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Sequence number assigned upstream; copied onto every event the command causes.
    pub seq: u64,
    /// Upstream timestamp in nanoseconds; carried, never interpreted by matching.
    pub ts_ns: u64,
    /// What to do.
    pub kind: CommandKind,
}

/// The command set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// Admin: open a new market; its id is the number of markets before it. Boxed: the
    /// config is large and rare, and every other command stays small.
    AddMarket(Box<MarketConfig>),
    /// Admin: stop accepting new orders and replaces in a market (cancels still work).
    HaltMarket(MarketId),
    /// Admin: accept orders again in a halted market.
    ResumeMarket(MarketId),
    /// Admin: open an account so it may trade.
    OpenAccount(AccountId),
    /// Submit a new order.
    NewOrder(NewOrder),
    /// Cancel a resting order owned by `account`.
    Cancel {
        /// Owner of the order.
        account: AccountId,
        /// Order to cancel.
        order_id: OrderId,
    },
    /// Cancel a resting order of `account` by its client order id.
    CancelByClientId {
        /// Owner of the order.
        account: AccountId,
        /// The client id the order was placed with.
        client_id: ClientOrderId,
    },
    /// Change a resting order's price and/or remaining quantity.
    CancelReplace {
        /// Owner of the order.
        account: AccountId,
        /// Order to change.
        order_id: OrderId,
        /// New limit price.
        price: Price,
        /// New remaining (open) quantity.
        qty: Qty,
    },
    /// Cancel every resting order of an account, optionally only in one market.
    MassCancel {
        /// Owner of the orders.
        account: AccountId,
        /// Restrict to this market, or all markets when `None`.
        market: Option<MarketId>,
    },
    /// Admin: add atoms to an insurance fund.
    InsuranceDeposit {
        /// `None`: the shared fund; `Some(m)`: market `m`'s own fund (markets with
        /// `LiquidationConfig::isolated_fund`).
        market: Option<MarketId>,
        /// Atoms, > 0.
        amount: i64,
    },
    /// Add collateral (quote atoms) to an account's cross balance.
    Deposit {
        /// Account.
        account: AccountId,
        /// Atoms, > 0.
        amount: i64,
    },
    /// Take collateral out of the cross balance; refused if it would break initial margin.
    Withdraw {
        /// Account.
        account: AccountId,
        /// Atoms, > 0.
        amount: i64,
    },
    /// Set the account's leverage in a leveraged market (initial margin rate = 1 / leverage).
    SetLeverage {
        /// Account.
        account: AccountId,
        /// Market.
        market: MarketId,
        /// 1 ..= the market's max leverage.
        leverage: u32,
    },
    /// Choose cross or isolated margin for one market; refused while a position or
    /// resting orders are open there.
    SetMarginMode {
        /// Account.
        account: AccountId,
        /// Market.
        market: MarketId,
        /// True for isolated.
        isolated: bool,
    },
    /// Move collateral between the cross balance and a market's isolated bucket
    /// (positive: into the bucket).
    TransferIsolated {
        /// Account.
        account: AccountId,
        /// Market (must be isolated for the account).
        market: MarketId,
        /// Atoms, non-zero.
        amount: i64,
    },
    /// Oracle input: the mark price of a leveraged market.
    MarkPrice {
        /// Market.
        market: MarketId,
        /// New mark, inside the market's price band (need not be on tick).
        price: Price,
    },
    /// Settle one funding payment at the current mark: longs pay shorts when positive.
    FundingRate {
        /// Market.
        market: MarketId,
        /// Rate applied to each position's notional at mark.
        rate: Rate,
    },
    /// Place a conditional (stop or take-profit) order that waits for the mark.
    NewConditional(ConditionalOrder),
    /// Cancel a waiting conditional order owned by `account`.
    CancelConditional {
        /// Owner of the conditional order.
        account: AccountId,
        /// Its id (from `ConditionalAccepted`).
        order_id: OrderId,
    },
}

/// When a conditional order fires, relative to its side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionalKind {
    /// A buy fires when the mark rises to the trigger, a sell when it falls to it.
    Stop,
    /// A buy fires when the mark falls to the trigger, a sell when it rises to it.
    TakeProfit,
}

/// A conditional order: becomes a `NewOrder` when the mark reaches `trigger`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConditionalOrder {
    /// Owner.
    pub account: AccountId,
    /// Market (leveraged).
    pub market: MarketId,
    /// Client id of the order it becomes.
    pub client_id: ClientOrderId,
    /// Buy or sell.
    pub side: Side,
    /// Quantity in lots.
    pub qty: Qty,
    /// Mark price at which it fires (on tick, inside the band).
    pub trigger: Price,
    /// Stop or take-profit.
    pub kind: ConditionalKind,
    /// `None`: fires as a market order; `Some(p)`: as a GTC limit at `p`.
    pub limit: Option<Price>,
    /// The order it becomes only reduces the position.
    pub reduce_only: bool,
    /// Self-trade prevention mode of the order it becomes.
    pub stp: StpMode,
}

impl ConditionalOrder {
    /// True if it fires when the mark rises to the trigger (else when it falls to it).
    pub fn fires_rising(&self) -> bool {
        (self.side == Side::Buy) == (self.kind == ConditionalKind::Stop)
    }

    /// True if it fires at mark `mark`.
    pub fn fires_at(&self, mark: i64) -> bool {
        if self.fires_rising() {
            mark >= self.trigger.0
        } else {
            mark <= self.trigger.0
        }
    }

    /// The order it becomes when it fires.
    pub fn to_order(&self) -> NewOrder {
        let order_type = self.limit.map_or(OrderType::Market, OrderType::Limit);
        NewOrder {
            account: self.account,
            market: self.market,
            client_id: self.client_id,
            side: self.side,
            order_type,
            qty: self.qty,
            stp: self.stp,
            reduce_only: self.reduce_only,
        }
    }
}

/// How an order executes and whether it may rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderType {
    /// Good-till-cancel limit: matches what it can, rests the remainder.
    Limit(Price),
    /// Immediate-or-cancel limit: matches what it can, cancels the remainder.
    Ioc(Price),
    /// Fill-or-kill limit: fills completely at once or changes nothing.
    Fok(Price),
    /// Post-only limit: rejected if any part would take liquidity; otherwise rests.
    PostOnly(Price),
    /// Market: matches up to the market's protection band around the best opposite
    /// price at arrival; the remainder is cancelled.
    Market,
}

impl OrderType {
    /// The explicit limit price, if the type has one.
    pub fn limit(self) -> Option<Price> {
        match self {
            OrderType::Limit(p)
            | OrderType::Ioc(p)
            | OrderType::Fok(p)
            | OrderType::PostOnly(p) => Some(p),
            OrderType::Market => None,
        }
    }

    /// True if an unfilled remainder rests on the book.
    pub fn rests(self) -> bool {
        matches!(self, OrderType::Limit(_) | OrderType::PostOnly(_))
    }
}

/// Self-trade prevention: what happens when an order would match its own account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StpMode {
    /// Cancel the resting order and keep matching.
    CancelResting,
    /// Cancel the incoming order's remainder and stop.
    CancelAggressor,
    /// Reduce both by the smaller quantity without a trade and keep matching.
    DecrementBoth,
}

/// A new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// Owner.
    pub account: AccountId,
    /// Market to trade.
    pub market: MarketId,
    /// Client-chosen id, unique among the account's resting orders.
    pub client_id: ClientOrderId,
    /// Buy or sell.
    pub side: Side,
    /// Execution type and limit price.
    pub order_type: OrderType,
    /// Quantity in lots.
    pub qty: Qty,
    /// Self-trade prevention mode.
    pub stp: StpMode,
    /// Only reduce the position: opposite to it and no larger than it less the account's
    /// other resting reduce-only orders on that side; a resting one is trimmed to what
    /// the position still needs.
    pub reduce_only: bool,
}
