//! A deliberately simple reference book: every market keeps its resting orders in one
//! `Vec`, and every question (best price, next maker, level totals) is answered by a
//! linear scan. It shares no code with the engine's book, pool or indexes, so agreement
//! between the two on the same command stream is evidence, not tautology.

use cascade_core::risk::{update_volatility, Rate};
use cascade_core::{
    AccountId, CancelReason, Command, CommandKind, ConditionalKind, ConditionalOrder, EngineConfig,
    Event, EventKind, MarketConfig, MarketId, NewOrder, OrderId, OrderType, Price, Qty,
    RejectReason, RiskConfig, Side, StpMode,
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
    /// Reduce-only: kept to what its position still needs.
    reduce_only: bool,
    /// Time priority: smaller is older.
    time: u64,
}

#[derive(Clone, Debug)]
struct RefMarket {
    cfg: MarketConfig,
    halted: bool,
    orders: Vec<RefOrder>,
    mark: i64,
    ewma: Rate,
    scale: Rate,
    /// Cumulative funding per lot paid by a long (2^-32 atoms) and the lowest and
    /// highest values it has taken (for the `FundingIndexLimit` rule).
    funding_index: (i128, i128, i128),
}

/// One account's position and isolated bucket in one market.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefPos {
    /// Signed lots.
    pub size: i64,
    /// Signed cost basis.
    pub cost: i128,
    /// Leverage set (0: market maximum).
    pub leverage: u32,
    /// Isolated mode.
    pub isolated: bool,
    /// Isolated bucket.
    pub bucket: i128,
    /// Funding owed since the position last changed, 2^-32 atoms (negative: owed to
    /// it); accumulated at every payment, settled when the position changes.
    pub accrued: i128,
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
    /// Cross collateral per account.
    pub collateral: Vec<i128>,
    /// `[account][market]` positions.
    pub pos: Vec<Vec<RefPos>>,
    /// Fees net of rebates, plus funding dust.
    pub fee_ledger: i128,
    /// Insurance fund cash (may be negative while its positions carry value).
    pub insurance: i128,
    /// Cash of each market's own insurance fund (markets with `isolated_fund`).
    pub fund_cash: Vec<i128>,
    /// The insurance fund's `(size, cost)` per market.
    pub fund: Vec<(i64, i128)>,
    /// Outstanding bad debt: written off and not socialised on the fee ledger.
    pub bad_debt: i128,
    /// Funding paid in and not yet paid out or swept to the fee ledger (atoms), and the
    /// sub-atom rounding remainder not yet swept (2^-32 atoms).
    pub funding_pot: i128,
    funding_dust: i128,
    /// Who the current aggressor in `take` is.
    taker: Taker,
    /// Σ price × lots, Σ lots and the fund's cash change traded by the current
    /// liquidation or fund order.
    taken: (i128, i64, i128),
    /// The current liquidation round's ADL rankings, one per (market, closing side).
    adl_cache: Vec<liquidation::AdlRanking>,
    /// Waiting conditional orders with their ids, in placement order.
    conds: Vec<(u64, ConditionalOrder)>,
}

/// The aggressor of a match: an account's own order, a liquidation order (the liquidated
/// side pays only what funds the maker's rebate) or the insurance fund's unwind order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Taker {
    Account,
    Liquidation,
    Fund,
}

mod liquidation;

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
            collateral: vec![0; cfg.max_accounts as usize],
            pos: vec![vec![RefPos::default(); cfg.max_markets as usize]; cfg.max_accounts as usize],
            fee_ledger: 0,
            insurance: 0,
            fund_cash: vec![0; cfg.max_markets as usize],
            fund: vec![(0, 0); cfg.max_markets as usize],
            bad_debt: 0,
            funding_pot: 0,
            funding_dust: 0,
            taker: Taker::Account,
            taken: (0, 0, 0),
            adl_cache: Vec::new(),
            conds: Vec::new(),
        }
    }

    /// Applies a command and returns its events.
    pub fn apply(&mut self, cmd: &Command) -> Vec<Event> {
        self.events.clear();
        self.seq = cmd.seq;
        if let Err(r) = self.dispatch(&cmd.kind) {
            self.emit(EventKind::Rejected(r));
        } else {
            let liquidating = self
                .markets
                .iter()
                .any(|m| m.cfg.risk.is_some_and(|r| r.liquidation.is_some()));
            if liquidating {
                self.resolve_liquidations();
            }
            self.trim_reduce_only();
            if liquidating {
                self.margin_cancels();
            }
        }
        std::mem::take(&mut self.events)
    }

    /// What a reduce-only order on `side` may close: `|size|` when it is opposite to the
    /// position, else nothing.
    fn closable(&self, m: usize, a: u32, side: Side) -> i64 {
        let size = self.pos[a as usize][m].size;
        match side {
            Side::Buy if size < 0 => -size,
            Side::Sell if size > 0 => size,
            _ => 0,
        }
    }

    /// The reduce-only rule: no larger than what the position needs closed less the
    /// account's other resting reduce-only orders on that side (`except` the one replaced).
    fn reduce_only_ok(
        &self,
        m: usize,
        a: u32,
        side: Side,
        qty: i64,
        except: Option<u64>,
    ) -> Result<(), RejectReason> {
        let others: i64 = self.markets[m]
            .orders
            .iter()
            .filter(|o| o.account == a && o.side == side && o.reduce_only && Some(o.id) != except)
            .map(|o| o.qty)
            .sum();
        if qty <= self.closable(m, a, side) - others {
            Ok(())
        } else {
            Err(RejectReason::ReduceOnlyWouldIncrease)
        }
    }

    /// Every account, ascending; its resting reduce-only orders newest first; each keeps
    /// at most what its position needs after its older ones on the same side.
    fn trim_reduce_only(&mut self) {
        for a in 0..self.pos.len() as u32 {
            let mut mine: Vec<(u64, usize)> = self
                .markets
                .iter()
                .enumerate()
                .flat_map(|(m, mk)| {
                    mk.orders
                        .iter()
                        .filter(|o| o.account == a && o.reduce_only)
                        .map(move |o| (o.id, m))
                })
                .collect();
            mine.sort_unstable_by_key(|x| std::cmp::Reverse(x.0));
            for (id, m) in mine {
                let i = self.markets[m]
                    .orders
                    .iter()
                    .position(|o| o.id == id)
                    .unwrap();
                let o = self.markets[m].orders[i].clone();
                let older: i64 = self.markets[m]
                    .orders
                    .iter()
                    .filter(|x| x.account == a && x.side == o.side && x.reduce_only && x.id < id)
                    .map(|x| x.qty)
                    .sum();
                let keep = (self.closable(m, a, o.side) - older).clamp(0, o.qty);
                if keep == 0 {
                    self.cancel_at(m, i, CancelReason::ReduceOnly);
                } else if keep < o.qty {
                    self.reduce_maker(m, i, o.qty - keep);
                    self.emit(EventKind::Cancelled {
                        order_id: OrderId(id),
                        account: AccountId(a),
                        qty: Qty(o.qty - keep),
                        remaining: Qty(keep),
                        reason: CancelReason::ReduceOnly,
                    });
                    self.level_event(m, o.side, o.price);
                }
            }
        }
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
            CommandKind::AddMarket(ref cfg) => {
                if self.markets.len() >= self.cfg.max_markets as usize {
                    return Err(RejectReason::TooManyMarkets);
                }
                cfg.validate().map_err(RejectReason::InvalidMarket)?;
                self.markets.push(RefMarket {
                    cfg: **cfg,
                    halted: false,
                    orders: Vec::new(),
                    mark: 0,
                    ewma: Rate::ZERO,
                    scale: cfg
                        .risk
                        .map_or(Rate::ONE, |r| Rate::ONE.clamp(r.vol_floor, r.vol_cap)),
                    funding_index: (0, 0, 0),
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
                if !halt {
                    self.fire_conditionals(m.0 as usize);
                }
            }
            CommandKind::NewConditional(ref o) => self.new_conditional(o)?,
            CommandKind::CancelConditional { account, order_id } => {
                self.account_ok(account)?;
                let i = self
                    .conds
                    .iter()
                    .position(|c| c.0 == order_id.0 && c.1.account == account)
                    .ok_or(RejectReason::UnknownOrder)?;
                self.drop_conditional(i, CancelReason::User);
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
            CommandKind::CancelByClientId { account, client_id } => {
                self.account_ok(account)?;
                let found = self.markets.iter().enumerate().find_map(|(mi, mk)| {
                    mk.orders
                        .iter()
                        .position(|o| o.account == account.0 && o.client == client_id.0)
                        .map(|i| (mi, i))
                });
                let (m, i) = found.ok_or(RejectReason::UnknownOrder)?;
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
            CommandKind::Deposit { .. }
            | CommandKind::Withdraw { .. }
            | CommandKind::SetLeverage { .. }
            | CommandKind::SetMarginMode { .. }
            | CommandKind::TransferIsolated { .. }
            | CommandKind::FundingRate { .. } => self.money_command(kind)?,
            CommandKind::MarkPrice { market, .. } => {
                self.money_command(kind)?;
                self.fire_conditionals(market.0 as usize);
            }
            CommandKind::InsuranceDeposit { market, amount } => {
                if let Some(m) = market {
                    self.market(m)?;
                    if self.fund_id(m.0 as usize).is_none() {
                        return Err(RejectReason::NoIsolatedFund);
                    }
                }
                if amount <= 0 {
                    return Err(RejectReason::NonPositiveAmount);
                }
                let fund = market.map(|m| m.0 as usize);
                if self.cash(fund) + i128::from(amount) > 1 << 100 {
                    return Err(RejectReason::CollateralLimit);
                }
                *self.cash_mut(fund) += i128::from(amount);
                self.fund_event(fund, i128::from(amount));
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
                self.cancel_conditionals(CancelReason::MassCancel, |c| {
                    c.account == account && market.is_none_or(|m| m == c.market)
                });
            }
        }
        Ok(())
    }

    /// `NewConditional`, checked in the order SEMANTICS.md lists.
    fn new_conditional(&mut self, o: &ConditionalOrder) -> Result<(), RejectReason> {
        let mk = self.market(o.market)?;
        let cfg = mk.cfg;
        let (halted, mark) = (mk.halted, mk.mark);
        self.account_ok(o.account)?;
        if cfg.risk.is_none() {
            return Err(RejectReason::NotLeveraged);
        }
        if halted {
            return Err(RejectReason::MarketHalted);
        }
        Self::check_qty_price(&cfg, o.qty, Some(o.trigger))?;
        if let Some(p) = o.limit {
            Self::check_qty_price(&cfg, o.qty, Some(p))?;
        }
        if mark == 0 {
            return Err(RejectReason::NoMarkPrice);
        }
        let fires = match (o.side, o.kind) {
            (Side::Buy, ConditionalKind::Stop) | (Side::Sell, ConditionalKind::TakeProfit) => {
                mark >= o.trigger.0
            }
            _ => mark <= o.trigger.0,
        };
        if fires {
            return Err(RejectReason::WouldTriggerNow);
        }
        if self.conds.len() >= self.cfg.max_conditionals as usize {
            return Err(RejectReason::ConditionalCapacity);
        }
        let mine = self
            .conds
            .iter()
            .filter(|c| c.1.account == o.account)
            .count();
        if mine >= self.cfg.max_orders_per_account as usize {
            return Err(RejectReason::AccountOrderCapacity);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.conds.push((id, *o));
        self.emit(EventKind::ConditionalAccepted {
            order_id: OrderId(id),
            account: o.account,
            market: o.market,
            side: o.side,
            trigger: o.trigger,
            qty: o.qty,
        });
        Ok(())
    }

    fn drop_conditional(&mut self, i: usize, reason: CancelReason) {
        let (id, c) = self.conds.remove(i);
        self.emit(EventKind::ConditionalCancelled {
            order_id: OrderId(id),
            account: c.account,
            reason,
        });
    }

    /// Cancels the conditionals `pick` selects, in ascending id.
    fn cancel_conditionals(
        &mut self,
        reason: CancelReason,
        pick: impl Fn(&ConditionalOrder) -> bool,
    ) {
        while let Some(i) = (0..self.conds.len())
            .filter(|&i| pick(&self.conds[i].1))
            .min_by_key(|&i| self.conds[i].0)
        {
            self.drop_conditional(i, reason);
        }
    }

    /// Fires the conditionals of market `m` whose condition holds at its mark (none while
    /// it is halted), in ascending id, each as a new order.
    fn fire_conditionals(&mut self, m: usize) {
        if self.markets[m].halted {
            return;
        }
        let mark = self.markets[m].mark;
        let mut fired: Vec<(u64, ConditionalOrder)> =
            self.conds
                .iter()
                .filter(|c| c.1.market.0 as usize == m)
                .filter(|c| match (c.1.side, c.1.kind) {
                    (Side::Buy, ConditionalKind::Stop)
                    | (Side::Sell, ConditionalKind::TakeProfit) => mark >= c.1.trigger.0,
                    _ => mark <= c.1.trigger.0,
                })
                .copied()
                .collect();
        fired.sort_by_key(|c| c.0);
        for (id, c) in fired {
            self.conds.retain(|x| x.0 != id);
            self.emit(EventKind::ConditionalTriggered {
                order_id: OrderId(id),
                account: c.account,
                market: c.market,
            });
            let order_type = c.limit.map_or(OrderType::Market, OrderType::Limit);
            let order = NewOrder {
                account: c.account,
                market: c.market,
                client_id: c.client_id,
                side: c.side,
                order_type,
                qty: c.qty,
                stp: c.stp,
                reduce_only: c.reduce_only,
            };
            if let Err(reason) = self.new_order(&order) {
                self.emit(EventKind::ConditionalRejected {
                    order_id: OrderId(id),
                    reason,
                });
            }
        }
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
            let own: usize = self
                .markets
                .iter()
                .map(|mk| {
                    mk.orders
                        .iter()
                        .filter(|r| r.account == o.account.0)
                        .count()
                })
                .sum();
            if own >= self.cfg.max_orders_per_account as usize {
                return Err(RejectReason::AccountOrderCapacity);
            }
            self.sum_at(m, limit, None)
                .checked_add(o.qty.0)
                .ok_or(RejectReason::Overflow)?;
        }
        self.order_risk(o, limit)?;
        if self.risk(m).is_some() {
            self.position_room(o.account.0, m)?;
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
                reduce_only: o.reduce_only,
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
            } else if maker.reduce_only && self.closable(m, maker.account, maker_side) < maker.qty {
                // A reduce-only maker never trades past its position: its excess goes
                // first (the part that can still trade stays for the next pass).
                let keep = self.closable(m, maker.account, maker_side);
                self.reduce_maker(m, i, maker.qty - keep);
                self.emit(EventKind::Cancelled {
                    order_id: OrderId(maker.id),
                    account: AccountId(maker.account),
                    qty: Qty(maker.qty - keep),
                    remaining: Qty(keep),
                    reason: CancelReason::ReduceOnly,
                });
            } else {
                let q = maker.qty.min(left);
                left -= q;
                let (maker_fee, mut taker_fee) = self.trade_fees(m, price, q);
                let liquidation = self.taker != Taker::Account;
                if self.taker == Taker::Liquidation {
                    // The liquidated side funds the maker's rebate and nothing more.
                    taker_fee = (-maker_fee).max(0);
                }
                if liquidation {
                    self.taken.0 += i128::from(price) * i128::from(q);
                    self.taken.1 += q;
                }
                self.emit(EventKind::Fill {
                    market: MarketId(m as u32),
                    maker_order: OrderId(maker.id),
                    maker_account: AccountId(maker.account),
                    taker_order: OrderId(id),
                    taker_account: AccountId(account),
                    taker_side: side,
                    price: Price(price),
                    qty: Qty(q),
                    maker_fee,
                    taker_fee,
                    liquidation,
                });
                self.reduce_maker(m, i, q);
                if self.markets[m].cfg.risk.is_some() {
                    self.trade(m, maker.account, maker_side, price, q, maker_fee);
                    if self.taker == Taker::Fund {
                        self.fund_fill(m, side, price, q, taker_fee);
                    } else {
                        self.trade(m, account, side, price, q, taker_fee);
                    }
                }
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
        if o.reduce_only {
            self.reduce_only_ok(m, o.account, o.side, qty.0, Some(o.id))?;
        } else {
            self.exposure(m, o.account, o.side, price.0, qty.0, o.qty)?;
        }
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

/// `ceil(v / 2^32)`, written out separately from the engine's helper.
fn ceil_bits(v: i128) -> i128 {
    let q = v >> 32;
    if q << 32 == v {
        q
    } else {
        q + 1
    }
}

fn rate_bits(r: Rate) -> i128 {
    i128::from(r.to_bits())
}

fn sat(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// The balance backing a position: the account's cross collateral or the bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RefPool {
    Cross,
    Isolated(usize),
}

/// Margin: every aggregate (resting quantity, open interest, backing) is recomputed by
/// scanning, never cached.
impl RefEngine {
    fn risk(&self, m: usize) -> Option<RiskConfig> {
        self.markets[m].cfg.risk
    }

    fn leveraged_markets(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.markets.len()).filter(|&m| self.risk(m).is_some())
    }

    fn pool(&self, a: u32, m: usize) -> RefPool {
        if self.pos[a as usize][m].isolated {
            RefPool::Isolated(m)
        } else {
            RefPool::Cross
        }
    }

    fn in_pool(&self, a: u32, m: usize, pool: RefPool) -> bool {
        self.risk(m).is_some()
            && match pool {
                RefPool::Cross => !self.pos[a as usize][m].isolated,
                RefPool::Isolated(i) => i == m,
            }
    }

    /// The pool's settled money less what its positions owe in funding, each owed
    /// amount rounded up (a receipt rounds down).
    fn money(&self, a: u32, pool: RefPool) -> i128 {
        let owed: i128 = (0..self.markets.len())
            .filter(|&m| self.in_pool(a, m, pool))
            .map(|m| ceil_bits(self.pos[a as usize][m].accrued))
            .sum();
        self.settled(a, pool) - owed
    }

    /// The pool's settled money: cross collateral or bucket.
    fn settled(&self, a: u32, pool: RefPool) -> i128 {
        match pool {
            RefPool::Cross => self.collateral[a as usize],
            RefPool::Isolated(m) => self.pos[a as usize][m].bucket,
        }
    }

    /// True if a resting order with this id is reduce-only.
    pub fn is_reduce_only(&self, id: OrderId) -> bool {
        self.markets
            .iter()
            .flat_map(|m| &m.orders)
            .any(|o| o.id == id.0 && o.reduce_only)
    }

    /// Cross money as a query reports it (unsettled funding applied).
    pub fn collateral_of(&self, a: u32) -> i128 {
        self.money(a, RefPool::Cross)
    }

    /// The bucket of `(a, m)` as a query reports it: with unsettled funding applied
    /// when the position is isolated.
    pub fn bucket_of(&self, a: u32, m: usize) -> i128 {
        if self.pos[a as usize][m].isolated {
            self.money(a, RefPool::Isolated(m))
        } else {
            self.pos[a as usize][m].bucket
        }
    }

    /// Pays `owed` (2^-32 atoms, negative: receives) rounded up into the funding pot;
    /// returns the atoms paid. Whole atoms of rounding remainder go to the fee ledger.
    fn pay_funding(&mut self, owed: i128) -> i128 {
        let paid = ceil_bits(owed);
        self.funding_pot += paid;
        self.funding_dust += paid * (1 << 32) - owed;
        let whole = self.funding_dust.div_euclid(1 << 32);
        self.funding_dust -= whole * (1 << 32);
        self.funding_pot -= whole;
        self.fee_ledger += whole;
        paid
    }

    fn money_mut(&mut self, a: u32, pool: RefPool) -> &mut i128 {
        match pool {
            RefPool::Cross => &mut self.collateral[a as usize],
            RefPool::Isolated(m) => &mut self.pos[a as usize][m].bucket,
        }
    }

    /// True if `(a, m)` holds state the engine keeps a position slot for: a leveraged
    /// market where the position differs from the default or the account rests orders.
    fn holds_state(&self, a: u32, m: usize) -> bool {
        self.risk(m).is_some()
            && (self.pos[a as usize][m] != RefPos::default()
                || self.markets[m].orders.iter().any(|o| o.account == a))
    }

    /// `PositionCapacity` if `(a, m)` holds no state and `max_positions` pairs already
    /// do (counted by brute force over every pair).
    fn position_room(&self, a: u32, m: usize) -> Result<(), RejectReason> {
        if self.holds_state(a, m) {
            return Ok(());
        }
        let used = (0..self.cfg.max_accounts)
            .flat_map(|b| (0..self.markets.len()).map(move |k| (b, k)))
            .filter(|&(b, k)| self.holds_state(b, k))
            .count();
        if used >= self.cfg.max_positions as usize {
            Err(RejectReason::PositionCapacity)
        } else {
            Ok(())
        }
    }

    /// Resting quantity of an account on one side of a market, by scanning the book.
    fn resting(&self, a: u32, m: usize, side: Side) -> i64 {
        self.markets[m]
            .orders
            .iter()
            .filter(|o| o.account == a && o.side == side)
            .map(|o| o.qty)
            .sum()
    }

    fn worst(&self, a: u32, m: usize, extra_buy: i64, extra_sell: i64) -> i128 {
        let size = i128::from(self.pos[a as usize][m].size);
        let buys = i128::from(self.resting(a, m, Side::Buy)) + i128::from(extra_buy);
        let sells = i128::from(self.resting(a, m, Side::Sell)) + i128::from(extra_sell);
        (size + buys).abs().max((size - sells).abs())
    }

    fn im(&self, a: u32, m: usize, extra: (i64, i64), lev: Option<u32>) -> i128 {
        let r = self.risk(m).expect("leveraged");
        let worst = self.worst(a, m, extra.0, extra.1);
        let lev = i128::from(lev.unwrap_or(match self.pos[a as usize][m].leverage {
            0 => r.max_leverage,
            l => l,
        }));
        let scaled =
            ceil_bits(worst * i128::from(self.markets[m].mark) * rate_bits(self.markets[m].scale));
        (scaled + lev - 1).div_euclid(lev)
    }

    /// Maintenance as the upper envelope of the tier lines `n × rate_k − amount_k`
    /// (equal to the tier formula because rates are non-decreasing), scaled.
    fn mm(&self, a: u32, m: usize) -> i128 {
        let r = self.risk(m).expect("leveraged");
        let n = i128::from(self.pos[a as usize][m].size).abs() * i128::from(self.markets[m].mark);
        let tiers = &r.tiers[..usize::from(r.tier_count)];
        let mut amount = 0i128;
        let mut best = i128::MIN;
        for (k, t) in tiers.iter().enumerate() {
            if k > 0 {
                amount += i128::from(tiers[k - 1].max_notional)
                    * (rate_bits(t.mm_rate) - rate_bits(tiers[k - 1].mm_rate));
            }
            best = best.max(ceil_bits(n * rate_bits(t.mm_rate) - amount));
        }
        ceil_bits(best * rate_bits(self.markets[m].scale))
    }

    fn upnl(&self, a: u32, m: usize) -> i128 {
        let p = &self.pos[a as usize][m];
        i128::from(p.size) * i128::from(self.markets[m].mark) - p.cost
    }

    /// `(equity, initial margin)` of a pool, with extra resting lots in one market.
    fn pool_margin(
        &self,
        a: u32,
        pool: RefPool,
        at: Option<(usize, (i64, i64), Option<u32>)>,
    ) -> (i128, i128) {
        let mut equity = self.money(a, pool);
        let mut im = 0;
        for m in self
            .leveraged_markets()
            .filter(|&m| self.in_pool(a, m, pool))
            .collect::<Vec<_>>()
        {
            equity += self.upnl(a, m);
            im += match at {
                Some((am, extra, lev)) if am == m => self.im(a, m, extra, lev),
                _ => self.im(a, m, (0, 0), None),
            };
        }
        (equity, im)
    }

    fn need(equity: i128, need: i128) -> Result<(), RejectReason> {
        if equity < need {
            Err(RejectReason::InsufficientMargin {
                shortfall: sat(need - equity),
            })
        } else {
            Ok(())
        }
    }

    /// Σ long sizes, the insurance fund's included.
    fn open_interest(&self, m: usize) -> i64 {
        self.pos.iter().map(|p| p[m].size.max(0)).sum::<i64>() + self.fund[m].0.max(0)
    }

    fn order_risk(&self, o: &NewOrder, limit: i64) -> Result<(), RejectReason> {
        let m = o.market.0 as usize;
        if self.risk(m).is_none() {
            return if o.reduce_only {
                Err(RejectReason::NotLeveraged)
            } else {
                Ok(())
            };
        }
        if self.markets[m].mark == 0 {
            return Err(RejectReason::NoMarkPrice);
        }
        if o.reduce_only {
            return self.reduce_only_ok(m, o.account.0, o.side, o.qty.0, None);
        }
        self.exposure(m, o.account.0, o.side, limit, o.qty.0, 0)
    }

    fn exposure(
        &self,
        m: usize,
        a: u32,
        side: Side,
        limit: i64,
        add: i64,
        removed: i64,
    ) -> Result<(), RejectReason> {
        let Some(r) = self.risk(m) else { return Ok(()) };
        let mark = i128::from(self.markets[m].mark);
        if mark == 0 {
            return Err(RejectReason::NoMarkPrice);
        }
        let extra = if side == Side::Buy {
            (add - removed, 0)
        } else {
            (0, add - removed)
        };
        let worst = self.worst(a, m, extra.0, extra.1);
        if worst * mark > i128::from(r.tiers[usize::from(r.tier_count) - 1].max_notional) {
            return Err(RejectReason::PositionLimit);
        }
        if worst > i128::from(r.oi_cap) * i128::from(r.account_oi_share_bps) / 10_000 {
            return Err(RejectReason::AccountOpenInterestCap);
        }
        let size = i128::from(self.pos[a as usize][m].size);
        let after = if side == Side::Buy {
            size + i128::from(add)
        } else {
            size - i128::from(add)
        };
        if i128::from(self.open_interest(m)) + (after.abs() - size.abs()).max(0)
            > i128::from(r.oi_cap)
        {
            return Err(RejectReason::OpenInterestCap);
        }
        let (equity, im) = self.pool_margin(a, self.pool(a, m), Some((m, extra, None)));
        let loss_per_lot = if side == Side::Buy {
            i128::from(limit) - mark
        } else {
            mark - i128::from(limit)
        };
        let fee_rate = [r.taker_fee, r.maker_fee, Rate::ZERO]
            .into_iter()
            .max()
            .unwrap();
        let reserve = ceil_bits(i128::from(limit) * i128::from(add) * rate_bits(fee_rate))
            + 2 * i128::from(add);
        Self::need(equity, im + loss_per_lot.max(0) * i128::from(add) + reserve)
    }

    fn trade_fees(&self, m: usize, price: i64, q: i64) -> (i64, i64) {
        let Some(r) = self.risk(m) else { return (0, 0) };
        let n = i128::from(price) * i128::from(q);
        // Fees round up; a rebate (negative rate) rounds its payout down.
        let fee = |rate: Rate| {
            if rate < 0 {
                -((n * -rate_bits(rate)) >> 32)
            } else {
                ceil_bits(n * rate_bits(rate))
            }
        };
        (sat(fee(r.maker_fee)), sat(fee(r.taker_fee)))
    }

    /// One side of a fill: close what is open the other way (released cost rounded up),
    /// open the rest, credit realised PnL minus fee to the pool.
    fn trade(&mut self, m: usize, a: u32, side: Side, price: i64, q: i64, fee: i64) {
        let pool = self.pool(a, m);
        let mut p = self.pos[a as usize][m];
        let signed = if side == Side::Buy {
            i128::from(q)
        } else {
            -i128::from(q)
        };
        let size = i128::from(p.size);
        let paid = self.pay_funding(p.accrued);
        p.accrued = 0;
        let mut realised = 0i128;
        let mut rest = signed;
        if size != 0 && (size > 0) != (signed > 0) {
            let close = signed.abs().min(size.abs());
            let num = p.cost * close;
            let released = -((-num).div_euclid(size.abs()));
            let closing = close * signed.signum();
            realised = -closing * i128::from(price) - released;
            p.cost -= released;
            p.size += closing as i64;
            rest = signed - closing;
        }
        p.cost += rest * i128::from(price);
        p.size += rest as i64;
        self.pos[a as usize][m] = p;
        *self.money_mut(a, pool) += realised - i128::from(fee) - paid;
        self.fee_ledger += i128::from(fee);
        self.emit(EventKind::PositionChanged {
            account: AccountId(a),
            market: MarketId(m as u32),
            size: p.size,
            cost: p.cost,
            realised: sat(realised),
            funding: sat(-paid),
        });
    }

    fn leveraged(&self, a: AccountId, m: MarketId) -> Result<RiskConfig, RejectReason> {
        self.account_ok(a)?;
        self.market(m)?;
        self.risk(m.0 as usize).ok_or(RejectReason::NotLeveraged)
    }

    fn release(&self, a: u32, pool: RefPool, amount: i64) -> Result<(), RejectReason> {
        let (equity, im) = self.pool_margin(a, pool, None);
        let amount = i128::from(amount);
        let shortfall = (amount - self.money(a, pool)).max(amount - equity + im);
        if shortfall > 0 {
            Err(RejectReason::InsufficientMargin {
                shortfall: sat(shortfall),
            })
        } else {
            Ok(())
        }
    }

    fn money_command(&mut self, kind: &CommandKind) -> Result<(), RejectReason> {
        match *kind {
            CommandKind::Deposit { account, amount } => {
                self.account_ok(account)?;
                if amount <= 0 {
                    return Err(RejectReason::NonPositiveAmount);
                }
                let a = account.0 as usize;
                if self.collateral_of(account.0) + i128::from(amount) > 1 << 100 {
                    return Err(RejectReason::CollateralLimit);
                }
                self.collateral[a] += i128::from(amount);
                self.emit(EventKind::Deposited {
                    account,
                    amount,
                    collateral: self.collateral_of(account.0),
                });
            }
            CommandKind::Withdraw { account, amount } => {
                self.account_ok(account)?;
                if amount <= 0 {
                    return Err(RejectReason::NonPositiveAmount);
                }
                self.release(account.0, RefPool::Cross, amount)?;
                let a = account.0 as usize;
                self.collateral[a] -= i128::from(amount);
                self.emit(EventKind::Withdrawn {
                    account,
                    amount,
                    collateral: self.collateral_of(account.0),
                });
            }
            CommandKind::SetLeverage {
                account,
                market,
                leverage,
            } => {
                let r = self.leveraged(account, market)?;
                if leverage == 0 || leverage > r.max_leverage {
                    return Err(RejectReason::BadLeverage);
                }
                let m = market.0 as usize;
                let (equity, im) = self.pool_margin(
                    account.0,
                    self.pool(account.0, m),
                    Some((m, (0, 0), Some(leverage))),
                );
                Self::need(equity, im)?;
                self.position_room(account.0, m)?;
                self.pos[account.0 as usize][m].leverage = leverage;
                self.emit(EventKind::LeverageSet {
                    account,
                    market,
                    leverage,
                });
            }
            CommandKind::SetMarginMode {
                account,
                market,
                isolated,
            } => {
                self.leveraged(account, market)?;
                let (a, m) = (account.0, market.0 as usize);
                let busy = self.pos[a as usize][m].size != 0
                    || self.markets[m].orders.iter().any(|o| o.account == a);
                if busy {
                    return Err(RejectReason::PositionOrOrdersOpen);
                }
                if isolated {
                    self.position_room(a, m)?;
                }
                let p = &mut self.pos[a as usize][m];
                let bucket = std::mem::take(&mut p.bucket);
                p.isolated = isolated;
                self.collateral[a as usize] += bucket;
                self.emit(EventKind::MarginModeSet {
                    account,
                    market,
                    isolated,
                });
            }
            CommandKind::TransferIsolated {
                account,
                market,
                amount,
            } => {
                self.leveraged(account, market)?;
                let (a, m) = (account.0, market.0 as usize);
                if !self.pos[a as usize][m].isolated {
                    return Err(RejectReason::NotIsolated);
                }
                if amount == 0 {
                    return Err(RejectReason::NonPositiveAmount);
                }
                let size = amount.saturating_abs();
                let (from, to) = if amount > 0 {
                    (RefPool::Cross, RefPool::Isolated(m))
                } else {
                    (RefPool::Isolated(m), RefPool::Cross)
                };
                self.release(a, from, size)?;
                *self.money_mut(a, from) -= i128::from(size);
                *self.money_mut(a, to) += i128::from(size);
                let bucket = self.bucket_of(a, m);
                self.emit(EventKind::IsolatedTransferred {
                    account,
                    market,
                    amount,
                    bucket,
                });
            }
            CommandKind::MarkPrice { market, price } => {
                self.market(market)?;
                let m = market.0 as usize;
                let r = self.risk(m).ok_or(RejectReason::NotLeveraged)?;
                let cfg = self.markets[m].cfg;
                if price < cfg.min_price || price > cfg.max_price {
                    return Err(RejectReason::MarkOutOfBand);
                }
                let mk = &mut self.markets[m];
                if mk.mark > 0 {
                    if i128::from((price.0 - mk.mark).abs()) * 10_000
                        > i128::from(r.max_mark_move_bps) * i128::from(mk.mark)
                    {
                        return Err(RejectReason::BadOraclePrint);
                    }
                    (mk.ewma, mk.scale) = update_volatility(&r, mk.ewma, mk.mark, price.0);
                }
                mk.mark = price.0;
                let scale_bits = mk.scale.to_bits();
                self.emit(EventKind::MarkUpdated {
                    market,
                    price,
                    scale_bits,
                });
            }
            CommandKind::FundingRate { market, rate } => {
                self.market(market)?;
                let m = market.0 as usize;
                self.risk(m).ok_or(RejectReason::NotLeveraged)?;
                let mark = i128::from(self.markets[m].mark);
                if mark == 0 {
                    return Err(RejectReason::NoMarkPrice);
                }
                if rate > Rate::ONE || rate < -Rate::ONE {
                    return Err(RejectReason::FundingRateTooLarge);
                }
                // The payment per lot by a long, exact; shorts receive it. Every
                // account's position accrues it (settled when the position changes); the
                // fund pays or receives at once, rounded up against it.
                let delta = mark * rate_bits(rate);
                let (index, low, high) = self.markets[m].funding_index;
                let next = index + delta;
                let range = high.max(next) - low.min(next);
                let oi = i128::from(self.open_interest(m)).max(1);
                if range.checked_mul(oi).is_none_or(|v| v >= 1 << 126) {
                    return Err(RejectReason::FundingIndexLimit);
                }
                if delta == 0 {
                    return Ok(());
                }
                self.markets[m].funding_index = (next, low.min(next), high.max(next));
                self.emit(EventKind::FundingIndexed {
                    market,
                    delta,
                    index: next,
                });
                for a in 0..self.pos.len() {
                    let p = &mut self.pos[a][m];
                    p.accrued += i128::from(p.size) * delta;
                }
                let fund_size = self.fund[m].0;
                if fund_size != 0 {
                    let paid = self.pay_funding(i128::from(fund_size) * delta);
                    let fund = self.fund_id(m);
                    *self.cash_mut(fund) -= paid;
                    self.emit(EventKind::FundingPaid {
                        account: AccountId::FUND,
                        market,
                        amount: sat(-paid),
                    });
                    self.fund_event(fund, -paid);
                }
            }
            _ => unreachable!("only money commands come here"),
        }
        Ok(())
    }

    /// `(cross equity, cross IM, cross MM)` of an account.
    pub fn cross_margin(&self, a: u32) -> (i128, i128, i128) {
        let (equity, im) = self.pool_margin(a, RefPool::Cross, None);
        let mm = self
            .leveraged_markets()
            .filter(|&m| self.in_pool(a, m, RefPool::Cross))
            .map(|m| self.mm(a, m))
            .sum();
        (equity, im, mm)
    }

    /// `(equity, IM)` of the pool that backs market `m` for the account.
    pub fn pool_of_market(&self, a: u32, m: usize) -> (i128, i128) {
        self.pool_margin(a, self.pool(a, m), None)
    }

    /// `(open interest, backing)` of a market, by scanning positions.
    pub fn market_totals(&self, m: usize) -> (i64, i128) {
        let backing = (0..self.pos.len() as u32)
            .filter(|&a| self.pos[a as usize][m].size != 0)
            .map(|a| self.settled(a, self.pool(a, m)))
            .sum();
        (self.open_interest(m), backing)
    }
}
