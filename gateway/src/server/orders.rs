//! The I/O thread's mirror of live orders, and the translation of engine events into
//! protocol-neutral execution reports ([`Exec`]) addressed to accounts.
//!
//! Invariants: the mirror holds exactly the orders and stop orders the released events
//! left live (seeded at start from the engine); `cum + leaves` of a client order never
//! exceeds its order quantity; every fill produces one report per side that belongs to
//! a trading account, and every liquidation or ADL fill is flagged as such.

use std::collections::HashMap;

use cascade_core::{
    AccountId, CancelReason, Event, EventKind, MarketId, OrderView, RejectReason, Side,
};

/// Who placed an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placer {
    /// The account's own order.
    Client,
    /// The engine, liquidating the account.
    Liquidation,
    /// The insurance fund (no account to report to).
    Fund,
}

/// One live order as the gateway reports it.
#[derive(Clone, Copy, Debug)]
pub struct OrderInfo {
    /// Owner.
    pub account: AccountId,
    /// Market.
    pub market: MarketId,
    /// Side.
    pub side: Side,
    /// Client id it is known by now.
    pub client_id: u64,
    /// Quantity ordered (after the last replace).
    pub qty: i64,
    /// Filled so far.
    pub cum: i64,
    /// Σ price × qty of the fills.
    pub notional: i128,
    /// Limit price (stop orders: the trigger).
    pub price: i64,
    /// Open quantity.
    pub leaves: i64,
    /// Who placed it.
    pub placer: Placer,
    /// A stop order not yet triggered.
    pub stop: bool,
}

impl OrderInfo {
    /// A new open order: nothing filled, all of `qty` open.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        account: AccountId,
        market: MarketId,
        side: Side,
        client_id: u64,
        price: i64,
        qty: i64,
        placer: Placer,
    ) -> OrderInfo {
        OrderInfo {
            account,
            market,
            side,
            client_id,
            qty,
            cum: 0,
            notional: 0,
            price,
            leaves: qty,
            placer,
            stop: false,
        }
    }
}

/// What an execution report says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecKind {
    /// Accepted (resting or about to match).
    New,
    /// Filled (partly or fully).
    Trade,
    /// Cancelled (by request, IOC/FOK remainder, self-trade, liquidation, margin...).
    Cancelled(CancelReason),
    /// Part of the open quantity cancelled, the rest still live (self-trade
    /// decrement, reduce-only trim).
    Reduced(CancelReason),
    /// Price or quantity changed.
    Replaced,
    /// Refused by the engine.
    Rejected(RejectReason),
    /// Refused by the gateway before sequencing (throttle), with the reason.
    GatewayRejected(&'static str),
    /// A stop order triggered.
    Triggered,
    /// Answer to a status request.
    Status,
}

/// Why a cancel or replace request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CxlWhy {
    /// No live order of the account has that client id.
    Unknown,
    /// The engine refused the command.
    Engine(RejectReason),
    /// The session's order throttle (replaces count as orders).
    Throttled,
}

/// Kind of fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillKind {
    /// An ordinary match.
    Normal,
    /// The account's position was liquidated (its liquidation order or a backstop).
    Liquidation,
    /// Auto-deleveraging against a liquidated position.
    Adl,
}

/// An execution report for one account.
#[derive(Clone, Copy, Debug)]
pub struct Exec {
    /// What happened.
    pub kind: ExecKind,
    /// Order id (0 for ADL and rejected orders).
    pub order_id: u64,
    /// The order as it stands after the event.
    pub order: OrderInfo,
    /// For cancels and replaces: the client id the request named.
    pub orig_client_id: u64,
    /// Fill price.
    pub last_px: i64,
    /// Fill quantity.
    pub last_qty: i64,
    /// Fee charged (negative: rebate), atoms.
    pub fee: i64,
    /// Maker (`true`) or taker.
    pub maker: bool,
    /// Fill kind.
    pub fill: FillKind,
}

/// The request an answer belongs to, as the I/O thread remembers it.
#[derive(Clone, Copy, Debug)]
pub enum Ctx {
    /// A new order or stop order.
    New(OrderInfo),
    /// A cancel: the new client id and the one it names.
    Cancel {
        /// Owner.
        account: AccountId,
        /// Client id of the cancel request.
        client_id: u64,
        /// Client id of the order.
        orig: u64,
    },
    /// A replace.
    Replace {
        /// Owner.
        account: AccountId,
        /// Client id the order is known by afterwards.
        client_id: u64,
        /// Client id it was known by.
        orig: u64,
    },
    /// Anything else.
    Other,
}

/// Live orders by order id.
#[derive(Debug, Default)]
pub struct Mirror {
    orders: HashMap<u64, OrderInfo>,
    stops: HashMap<u64, OrderInfo>,
}

impl Mirror {
    /// Seeds the mirror with the engine's resting orders (after a restart the quantity
    /// ordered is taken to be what is open: fills before the restart are not known).
    pub fn seed(&mut self, orders: &[OrderView]) {
        for o in orders {
            let info = OrderInfo::open(
                o.account,
                o.market,
                o.side,
                o.client_id.0,
                o.price.0,
                o.qty.0,
                Placer::Client,
            );
            self.orders.insert(o.id.0, info);
        }
    }

    /// Number of live orders and stop orders known.
    pub fn len(&self) -> usize {
        self.orders.len() + self.stops.len()
    }

    /// Whether no order is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A live order.
    pub fn get(&self, id: u64) -> Option<&OrderInfo> {
        self.orders.get(&id).or_else(|| self.stops.get(&id))
    }

    /// Translates one command's events into reports, updating the mirror. `ctx` is the
    /// request the command came from.
    pub fn apply(&mut self, events: &[Event], ctx: &Ctx, out: &mut Vec<Exec>) {
        for e in events {
            self.event(e, ctx, out);
        }
    }

    fn event(&mut self, e: &Event, ctx: &Ctx, out: &mut Vec<Exec>) {
        match e.kind {
            EventKind::Accepted {
                order_id,
                account,
                client_id,
                market,
                side,
                price,
                qty,
            } => {
                let mut info = OrderInfo::open(
                    account,
                    market,
                    side,
                    client_id.0,
                    price.0,
                    qty.0,
                    Placer::Client,
                );
                if let Ctx::New(n) = ctx {
                    if n.client_id == client_id.0 && n.account == account {
                        info.qty = n.qty.max(qty.0);
                    }
                }
                self.orders.insert(order_id.0, info);
                out.push(report(ExecKind::New, order_id.0, info));
            }
            EventKind::LiquidationOrder {
                order_id,
                account,
                market,
                side,
                price,
                qty,
            } => {
                let info = OrderInfo::open(
                    account,
                    market,
                    side,
                    0,
                    price.0,
                    qty.0,
                    Placer::Liquidation,
                );
                self.orders.insert(order_id.0, info);
            }
            EventKind::FundOrder {
                order_id,
                market,
                side,
                price,
                qty,
            } => {
                let info = OrderInfo::open(
                    AccountId(u32::MAX),
                    market,
                    side,
                    0,
                    price.0,
                    qty.0,
                    Placer::Fund,
                );
                self.orders.insert(order_id.0, info);
            }
            EventKind::Fill {
                maker_order,
                taker_order,
                price,
                qty,
                maker_fee,
                taker_fee,
                ..
            } => {
                self.fill(maker_order.0, price.0, qty.0, maker_fee, true, out);
                self.fill(taker_order.0, price.0, qty.0, taker_fee, false, out);
            }
            EventKind::Cancelled {
                order_id,
                remaining,
                reason,
                ..
            } => {
                let Some(mut info) = self.orders.remove(&order_id.0) else {
                    return;
                };
                info.leaves = remaining.0;
                info.qty = info.qty.min(info.cum + remaining.0).max(info.cum);
                if remaining.0 > 0 {
                    self.orders.insert(order_id.0, info);
                }
                let kind = if remaining.0 > 0 {
                    ExecKind::Reduced(reason)
                } else {
                    ExecKind::Cancelled(reason)
                };
                let mut r = report(kind, order_id.0, info);
                if let Ctx::Cancel {
                    client_id, orig, ..
                } = *ctx
                {
                    r.orig_client_id = orig;
                    r.order.client_id = client_id;
                }
                if info.placer == Placer::Client {
                    out.push(r);
                }
            }
            EventKind::Replaced {
                order_id,
                price,
                qty,
                ..
            } => {
                let Some(info) = self.orders.get_mut(&order_id.0) else {
                    return;
                };
                info.price = price.0;
                info.leaves = qty.0;
                info.qty = info.cum + qty.0;
                let mut orig = 0;
                if let Ctx::Replace {
                    client_id, orig: o, ..
                } = *ctx
                {
                    orig = o;
                    info.client_id = client_id;
                }
                let mut r = report(ExecKind::Replaced, order_id.0, *info);
                r.orig_client_id = orig;
                out.push(r);
            }
            EventKind::Rejected(reason) => {
                if let Ctx::New(info) = ctx {
                    out.push(report(ExecKind::Rejected(reason), 0, *info));
                }
            }
            EventKind::ConditionalAccepted {
                order_id,
                account,
                market,
                side,
                trigger,
                qty,
            } => {
                let client_id = match ctx {
                    Ctx::New(n) => n.client_id,
                    _ => 0,
                };
                let info = OrderInfo {
                    stop: true,
                    ..OrderInfo::open(
                        account,
                        market,
                        side,
                        client_id,
                        trigger.0,
                        qty.0,
                        Placer::Client,
                    )
                };
                self.stops.insert(order_id.0, info);
                out.push(report(ExecKind::New, order_id.0, info));
            }
            EventKind::ConditionalTriggered { order_id, .. } => {
                if let Some(info) = self.stops.remove(&order_id.0) {
                    out.push(report(ExecKind::Triggered, order_id.0, info));
                }
            }
            EventKind::ConditionalCancelled {
                order_id, reason, ..
            } => {
                if let Some(info) = self.stops.remove(&order_id.0) {
                    let mut r = report(ExecKind::Cancelled(reason), order_id.0, info);
                    if let Ctx::Cancel {
                        client_id, orig, ..
                    } = *ctx
                    {
                        r.orig_client_id = orig;
                        r.order.client_id = client_id;
                    }
                    r.order.leaves = 0;
                    out.push(r);
                }
            }
            EventKind::ConditionalRejected { order_id, reason } => {
                if let Some(info) = self.stops.remove(&order_id.0) {
                    out.push(report(ExecKind::Rejected(reason), order_id.0, info));
                }
            }
            EventKind::Backstop {
                account,
                market,
                qty,
                price,
            } => {
                out.push(position_fill(
                    account,
                    market,
                    qty.0,
                    price.0,
                    FillKind::Liquidation,
                ));
            }
            EventKind::AdlFill {
                market,
                account,
                counterparty,
                qty,
                price,
            } => {
                out.push(position_fill(
                    account,
                    market,
                    qty.0,
                    price.0,
                    FillKind::Adl,
                ));
                out.push(position_fill(
                    counterparty,
                    market,
                    qty.0,
                    price.0,
                    FillKind::Adl,
                ));
            }
            _ => {}
        }
    }

    fn fill(&mut self, id: u64, price: i64, qty: i64, fee: i64, maker: bool, out: &mut Vec<Exec>) {
        let Some(info) = self.orders.get_mut(&id) else {
            return;
        };
        info.cum += qty;
        info.notional += i128::from(price) * i128::from(qty);
        info.leaves = (info.leaves - qty).max(0);
        info.qty = info.qty.max(info.cum + info.leaves);
        let snapshot = *info;
        if info.leaves == 0 {
            self.orders.remove(&id);
        }
        if snapshot.placer == Placer::Fund {
            return;
        }
        let mut r = report(ExecKind::Trade, id, snapshot);
        r.last_px = price;
        r.last_qty = qty;
        r.fee = fee;
        r.maker = maker;
        if snapshot.placer == Placer::Liquidation {
            r.fill = FillKind::Liquidation;
        }
        out.push(r);
    }
}

/// A report of `kind` on `order`, with no fill.
pub fn report(kind: ExecKind, order_id: u64, order: OrderInfo) -> Exec {
    Exec {
        kind,
        order_id,
        order,
        orig_client_id: 0,
        last_px: 0,
        last_qty: 0,
        fee: 0,
        maker: false,
        fill: FillKind::Normal,
    }
}

impl Ctx {
    /// The client ids a cancel or replace carries: (its own, the order's); zeros otherwise.
    pub fn ids(&self) -> (u64, u64) {
        match *self {
            Ctx::Cancel {
                client_id, orig, ..
            }
            | Ctx::Replace {
                client_id, orig, ..
            } => (client_id, orig),
            _ => (0, 0),
        }
    }
}

/// A fill that closes part of a position without an order of the account's (backstop
/// or ADL); the side is left as `Buy` — the position report tells the direction.
fn position_fill(
    account: AccountId,
    market: MarketId,
    qty: i64,
    price: i64,
    fill: FillKind,
) -> Exec {
    let info = OrderInfo {
        account,
        market,
        side: Side::Buy,
        client_id: 0,
        qty,
        cum: qty,
        notional: i128::from(qty) * i128::from(price),
        price,
        leaves: 0,
        placer: Placer::Liquidation,
        stop: false,
    };
    let mut r = report(ExecKind::Trade, 0, info);
    r.last_px = price;
    r.last_qty = qty;
    r.fill = fill;
    r
}

/// Average fill price of an order, core units, rounded toward zero (0: no fills).
pub fn avg_px(o: &OrderInfo) -> i64 {
    if o.cum == 0 {
        0
    } else {
        (o.notional / i128::from(o.cum)) as i64
    }
}
