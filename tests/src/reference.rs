//! A deliberately simple reference book: every market keeps its resting orders in one
//! `Vec`, and every question (best price, next maker, level totals) is answered by a
//! linear scan. It shares no code with the engine's book, pool or indexes, so agreement
//! between the two on the same command stream is evidence, not tautology.

use cascade_core::{
    AccountId, CancelReason, Command, CommandKind, EngineConfig, Event, EventKind, MarketConfig,
    MarketId, NewOrder, OrderId, OrderType, Price, Qty, RejectReason, Side, StpMode,
};

#[derive(Clone, Debug)]
struct RefOrder {
    id: u64,
    client: u64,
    account: u32,
    side: Side,
    price: i64,
    qty: i64,
    stp: StpMode,
    post_only: bool,
    /// Time priority: smaller is older.
    time: u64,
}

#[derive(Clone, Debug)]
struct RefMarket {
    cfg: MarketConfig,
    halted: bool,
    orders: Vec<RefOrder>,
}

/// The reference engine.
#[derive(Clone, Debug)]
pub struct RefEngine {
    cfg: EngineConfig,
    markets: Vec<RefMarket>,
    open: Vec<bool>,
    next_id: u64,
    clock: u64,
    events: Vec<Event>,
    seq: u64,
}

/// Price priority key: smaller is better for a maker on `side`.
fn priority(side: Side, price: i64) -> i64 {
    match side {
        Side::Buy => -price,
        Side::Sell => price,
    }
}

impl RefEngine {
    /// An empty reference engine with the same capacities as the engine under test.
    pub fn new(cfg: EngineConfig) -> RefEngine {
        RefEngine {
            cfg,
            markets: Vec::new(),
            open: vec![false; cfg.max_accounts as usize],
            next_id: 1,
            clock: 0,
            events: Vec::new(),
            seq: 0,
        }
    }

    /// Applies a command and returns its events.
    pub fn apply(&mut self, cmd: &Command) -> Vec<Event> {
        self.events.clear();
        self.seq = cmd.seq;
        if let Err(r) = self.dispatch(&cmd.kind) {
            self.emit(EventKind::Rejected(r));
        }
        std::mem::take(&mut self.events)
    }

    fn emit(&mut self, kind: EventKind) {
        let index = self.events.len() as u32;
        self.events.push(Event {
            seq: self.seq,
            index,
            kind,
        });
    }

    fn total_orders(&self) -> usize {
        self.markets.iter().map(|m| m.orders.len()).sum()
    }

    fn account_ok(&self, a: AccountId) -> Result<(), RejectReason> {
        if self.open.get(a.0 as usize).copied().unwrap_or(false) {
            Ok(())
        } else {
            Err(RejectReason::UnknownAccount)
        }
    }

    fn market(&self, m: MarketId) -> Result<&RefMarket, RejectReason> {
        self.markets
            .get(m.0 as usize)
            .ok_or(RejectReason::UnknownMarket)
    }

    fn dispatch(&mut self, kind: &CommandKind) -> Result<(), RejectReason> {
        match *kind {
            CommandKind::AddMarket(cfg) => {
                if self.markets.len() >= self.cfg.max_markets as usize {
                    return Err(RejectReason::TooManyMarkets);
                }
                cfg.validate().map_err(RejectReason::InvalidMarket)?;
                self.markets.push(RefMarket {
                    cfg,
                    halted: false,
                    orders: Vec::new(),
                });
                self.emit(EventKind::MarketAdded(MarketId(
                    self.markets.len() as u32 - 1,
                )));
            }
            CommandKind::HaltMarket(m) | CommandKind::ResumeMarket(m) => {
                self.market(m)?;
                let halt = matches!(kind, CommandKind::HaltMarket(_));
                self.markets[m.0 as usize].halted = halt;
                self.emit(if halt {
                    EventKind::MarketHalted(m)
                } else {
                    EventKind::MarketResumed(m)
                });
            }
            CommandKind::OpenAccount(a) => {
                match self.open.get(a.0 as usize) {
                    None => return Err(RejectReason::UnknownAccount),
                    Some(true) => return Err(RejectReason::AccountExists),
                    Some(false) => self.open[a.0 as usize] = true,
                }
                self.emit(EventKind::AccountOpened(a));
            }
            CommandKind::NewOrder(ref o) => self.new_order(o)?,
            CommandKind::Cancel { account, order_id } => {
                let (m, i) = self.find_owned(account, order_id)?;
                self.cancel_at(m, i, CancelReason::User);
            }
            CommandKind::CancelReplace {
                account,
                order_id,
                price,
                qty,
            } => {
                self.replace(account, order_id, price, qty)?;
            }
            CommandKind::MassCancel { account, market } => {
                self.account_ok(account)?;
                if let Some(m) = market {
                    self.market(m)?;
                }
                let mut ids: Vec<(u64, usize)> = Vec::new();
                for (mi, mk) in self.markets.iter().enumerate() {
                    if market.is_some_and(|m| m.0 as usize != mi) {
                        continue;
                    }
                    ids.extend(
                        mk.orders
                            .iter()
                            .filter(|o| o.account == account.0)
                            .map(|o| (o.id, mi)),
                    );
                }
                ids.sort_unstable();
                for (id, mi) in ids {
                    let i = self.markets[mi]
                        .orders
                        .iter()
                        .position(|o| o.id == id)
                        .unwrap();
                    self.cancel_at(mi, i, CancelReason::MassCancel);
                }
            }
        }
        Ok(())
    }

    fn find_owned(&self, account: AccountId, id: OrderId) -> Result<(usize, usize), RejectReason> {
        self.account_ok(account)?;
        for (mi, mk) in self.markets.iter().enumerate() {
            if let Some(i) = mk.orders.iter().position(|o| o.id == id.0) {
                return if mk.orders[i].account == account.0 {
                    Ok((mi, i))
                } else {
                    Err(RejectReason::UnknownOrder)
                };
            }
        }
        Err(RejectReason::UnknownOrder)
    }

    fn level_event(&mut self, m: usize, side: Side, price: i64) {
        let (qty, n) = self.markets[m]
            .orders
            .iter()
            .filter(|o| o.side == side && o.price == price)
            .fold((0, 0), |(q, n), o| (q + o.qty, n + 1));
        self.emit(EventKind::Level {
            market: MarketId(m as u32),
            side,
            price: Price(price),
            qty: Qty(qty),
            orders: n,
        });
    }

    fn cancel_at(&mut self, m: usize, i: usize, reason: CancelReason) {
        let o = self.markets[m].orders.remove(i);
        self.emit(EventKind::Cancelled {
            order_id: OrderId(o.id),
            account: AccountId(o.account),
            qty: Qty(o.qty),
            remaining: Qty(0),
            reason,
        });
        self.level_event(m, o.side, o.price);
    }

    fn check_qty_price(
        cfg: &MarketConfig,
        qty: Qty,
        price: Option<Price>,
    ) -> Result<(), RejectReason> {
        if qty.0 <= 0 {
            return Err(RejectReason::NonPositiveQty);
        }
        if qty > cfg.max_qty {
            return Err(RejectReason::QtyTooLarge);
        }
        if let Some(p) = price {
            if p.0 % cfg.tick != 0 {
                return Err(RejectReason::PriceOffTick);
            }
            if p < cfg.min_price || p > cfg.max_price {
                return Err(RejectReason::PriceOutOfBand);
            }
        }
        Ok(())
    }

    /// The best maker on `side`: best price, then oldest.
    fn best_maker(&self, m: usize, side: Side) -> Option<usize> {
        let orders = &self.markets[m].orders;
        (0..orders.len())
            .filter(|&i| orders[i].side == side)
            .min_by_key(|&i| (priority(side, orders[i].price), orders[i].time))
    }

    fn best_price(&self, m: usize, side: Side) -> Option<i64> {
        self.best_maker(m, side)
            .map(|i| self.markets[m].orders[i].price)
    }

    fn sum_at(&self, m: usize, price: i64, except: Option<u64>) -> i64 {
        self.markets[m]
            .orders
            .iter()
            .filter(|o| o.price == price && Some(o.id) != except)
            .map(|o| o.qty)
            .sum()
    }

    fn new_order(&mut self, o: &NewOrder) -> Result<(), RejectReason> {
        let mk = self.market(o.market)?;
        self.account_ok(o.account)?;
        if mk.halted {
            return Err(RejectReason::MarketHalted);
        }
        let cfg = mk.cfg;
        Self::check_qty_price(&cfg, o.qty, o.order_type.limit())?;
        let m = o.market.0 as usize;
        let live_client = self.markets.iter().any(|mk| {
            mk.orders
                .iter()
                .any(|r| r.account == o.account.0 && r.client == o.client_id.0)
        });
        if live_client {
            return Err(RejectReason::DuplicateClientId);
        }
        let best_opp = self.best_price(m, o.side.opposite());
        let limit = match o.order_type {
            OrderType::Market => {
                let best = best_opp.ok_or(RejectReason::NoLiquidity)?;
                // Independent restatement of the protection band: offset in whole ticks.
                let offset = (i128::from(best) * i128::from(cfg.market_band_bps) / 10_000) as i64;
                let offset = offset - offset % cfg.tick;
                let raw = if o.side == Side::Buy {
                    best + offset
                } else {
                    best - offset
                };
                raw.clamp(cfg.min_price.0, cfg.max_price.0)
            }
            OrderType::PostOnly(p) => {
                if best_opp.is_some_and(|b| o.side.crosses(p, Price(b))) {
                    return Err(RejectReason::PostOnlyWouldTake);
                }
                p.0
            }
            OrderType::Limit(p) | OrderType::Ioc(p) | OrderType::Fok(p) => p.0,
        };
        if o.order_type.rests() {
            if self.total_orders() >= self.cfg.max_orders as usize {
                return Err(RejectReason::OrderCapacity);
            }
            self.sum_at(m, limit, None)
                .checked_add(o.qty.0)
                .ok_or(RejectReason::Overflow)?;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.emit(EventKind::Accepted {
            order_id: OrderId(id),
            account: o.account,
            client_id: o.client_id,
            market: o.market,
            side: o.side,
            price: Price(limit),
            qty: o.qty,
        });
        let cancel_self = |qty: i64, reason| EventKind::Cancelled {
            order_id: OrderId(id),
            account: o.account,
            qty: Qty(qty),
            remaining: Qty(0),
            reason,
        };
        if matches!(o.order_type, OrderType::Fok(_)) && !self.fok_ok(m, o, limit) {
            self.emit(cancel_self(o.qty.0, CancelReason::FillOrKill));
            return Ok(());
        }
        let (left, stopped) = self.take(m, id, o.account.0, o.side, limit, o.stp, o.qty.0);
        if stopped {
            self.emit(cancel_self(left, CancelReason::SelfTrade));
        } else if left > 0 && o.order_type.rests() {
            self.clock += 1;
            self.markets[m].orders.push(RefOrder {
                id,
                client: o.client_id.0,
                account: o.account.0,
                side: o.side,
                price: limit,
                qty: left,
                stp: o.stp,
                post_only: matches!(o.order_type, OrderType::PostOnly(_)),
                time: self.clock,
            });
            self.level_event(m, o.side, limit);
        } else if left > 0 {
            self.emit(cancel_self(left, CancelReason::Unfilled));
        }
        Ok(())
    }

    /// FOK feasibility: walk makers in priority order, as documented for the engine.
    fn fok_ok(&self, m: usize, o: &NewOrder, limit: i64) -> bool {
        let side = o.side.opposite();
        let mut makers: Vec<&RefOrder> = self.markets[m]
            .orders
            .iter()
            .filter(|r| r.side == side && o.side.crosses(Price(limit), Price(r.price)))
            .collect();
        makers.sort_by_key(|r| (priority(side, r.price), r.time));
        let mut need = o.qty.0;
        for r in makers {
            if r.account == o.account.0 {
                if o.stp != StpMode::CancelResting {
                    return false;
                }
            } else {
                need -= r.qty;
                if need <= 0 {
                    return true;
                }
            }
        }
        false
    }

    /// Matches an aggressor; returns (remaining, stopped by self-trade prevention).
    #[allow(clippy::too_many_arguments)]
    fn take(
        &mut self,
        m: usize,
        id: u64,
        account: u32,
        side: Side,
        limit: i64,
        stp: StpMode,
        mut left: i64,
    ) -> (i64, bool) {
        let maker_side = side.opposite();
        let mut current_level: Option<i64> = None;
        let mut stopped = false;
        while left > 0 {
            let Some(i) = self.best_maker(m, maker_side) else {
                break;
            };
            let price = self.markets[m].orders[i].price;
            if !side.crosses(Price(limit), Price(price)) {
                break;
            }
            if let Some(p) = current_level.filter(|&p| p != price) {
                self.level_event(m, maker_side, p);
                current_level = None;
            }
            let maker = self.markets[m].orders[i].clone();
            if maker.account == account {
                match stp {
                    StpMode::CancelAggressor => {
                        stopped = true;
                        break;
                    }
                    StpMode::CancelResting => {
                        self.markets[m].orders.remove(i);
                        self.emit(EventKind::Cancelled {
                            order_id: OrderId(maker.id),
                            account: AccountId(account),
                            qty: Qty(maker.qty),
                            remaining: Qty(0),
                            reason: CancelReason::SelfTrade,
                        });
                    }
                    StpMode::DecrementBoth => {
                        let d = maker.qty.min(left);
                        left -= d;
                        self.reduce_maker(m, i, d);
                        self.emit(EventKind::Cancelled {
                            order_id: OrderId(maker.id),
                            account: AccountId(account),
                            qty: Qty(d),
                            remaining: Qty(maker.qty - d),
                            reason: CancelReason::SelfTrade,
                        });
                        self.emit(EventKind::Cancelled {
                            order_id: OrderId(id),
                            account: AccountId(account),
                            qty: Qty(d),
                            remaining: Qty(left),
                            reason: CancelReason::SelfTrade,
                        });
                    }
                }
            } else {
                let q = maker.qty.min(left);
                left -= q;
                self.emit(EventKind::Fill {
                    market: MarketId(m as u32),
                    maker_order: OrderId(maker.id),
                    maker_account: AccountId(maker.account),
                    taker_order: OrderId(id),
                    taker_account: AccountId(account),
                    taker_side: side,
                    price: Price(price),
                    qty: Qty(q),
                });
                self.reduce_maker(m, i, q);
            }
            current_level = Some(price);
        }
        if let Some(p) = current_level {
            self.level_event(m, maker_side, p);
        }
        (left, stopped)
    }

    fn reduce_maker(&mut self, m: usize, i: usize, by: i64) {
        let orders = &mut self.markets[m].orders;
        orders[i].qty -= by;
        if orders[i].qty == 0 {
            orders.remove(i);
        }
    }

    fn replace(
        &mut self,
        account: AccountId,
        order_id: OrderId,
        price: Price,
        qty: Qty,
    ) -> Result<(), RejectReason> {
        let (m, i) = self.find_owned(account, order_id)?;
        if self.markets[m].halted {
            return Err(RejectReason::MarketHalted);
        }
        Self::check_qty_price(&self.markets[m].cfg, qty, Some(price))?;
        let o = self.markets[m].orders[i].clone();
        if price.0 == o.price && qty.0 <= o.qty {
            self.markets[m].orders[i].qty = qty.0;
            self.emit(EventKind::Replaced {
                order_id,
                price,
                qty,
                kept_priority: true,
            });
            if qty.0 != o.qty {
                self.level_event(m, o.side, o.price);
            }
            return Ok(());
        }
        if o.post_only
            && self
                .best_price(m, o.side.opposite())
                .is_some_and(|b| o.side.crosses(price, Price(b)))
        {
            return Err(RejectReason::PostOnlyWouldTake);
        }
        self.sum_at(m, price.0, Some(o.id))
            .checked_add(qty.0)
            .ok_or(RejectReason::Overflow)?;
        self.emit(EventKind::Replaced {
            order_id,
            price,
            qty,
            kept_priority: false,
        });
        self.markets[m].orders.remove(i);
        self.level_event(m, o.side, o.price);
        let (left, stopped) = self.take(m, o.id, o.account, o.side, price.0, o.stp, qty.0);
        if stopped {
            self.emit(EventKind::Cancelled {
                order_id,
                account,
                qty: Qty(left),
                remaining: Qty(0),
                reason: CancelReason::SelfTrade,
            });
        } else if left > 0 {
            self.clock += 1;
            self.markets[m].orders.push(RefOrder {
                price: price.0,
                qty: left,
                time: self.clock,
                ..o
            });
            self.level_event(m, o.side, price.0);
        }
        Ok(())
    }

    /// Resting `(price, total qty)` levels of a side, best first (for book comparisons).
    pub fn levels(&self, m: MarketId, side: Side) -> Vec<(Price, Qty)> {
        let mut out: Vec<(Price, Qty)> = Vec::new();
        let mut orders: Vec<&RefOrder> = self.markets[m.0 as usize]
            .orders
            .iter()
            .filter(|o| o.side == side)
            .collect();
        orders.sort_by_key(|o| priority(side, o.price));
        for o in orders {
            match out.last_mut() {
                Some((p, q)) if p.0 == o.price => q.0 += o.qty,
                _ => out.push((Price(o.price), Qty(o.qty))),
            }
        }
        out
    }
}
