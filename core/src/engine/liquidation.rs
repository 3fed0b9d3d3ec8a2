//! The liquidation waterfall: after each external command, every pool that fell below
//! maintenance margin is liquidated in a fixed order, and the cascade continues until
//! no pool with a position is below maintenance margin.
//!
//! Order: rounds; a round's pools are those queued by the previous round (the command
//! itself for the first), sorted by margin ratio (equity ÷ MM, worst first), then
//! account id, then cross before isolated markets ascending. They pass through a bounded
//! ring; a full ring is drained one item before the next push. A pool's orders are
//! sized when it reaches the book, so ring capacity never changes the output.
//!
//! Per pool: margin call; cancel its resting orders; then, position by position
//! (ascending market), while the pool is below MM: (1) an IOC liquidation order for the
//! size that restores MM × (1 + buffer), limited to the band price; (2) an IOC for the
//! whole position limited to the bankruptcy price; (3) the rest is taken over by the
//! insurance fund at the bankruptcy price as far as the fund can pay for it, and
//! auto-deleveraged at the bankruptcy price beyond that. Finally the dynamic
//! liquidation fee goes to the insurance fund. Formulas: `SEMANTICS.md`.

use super::margin::{saturate, trade, PoolId};
use super::trigger::Kind;
use super::{Engine, Out, Taker};
use crate::command::StpMode;
use crate::event::{CancelReason, EventKind, EventSink};
use crate::pool::NIL;
use crate::risk::{ceil_div, mul_rate_up, AdlMode, LiquidationConfig, Rate};
use crate::types::{AccountId, MarketId, OrderId, Price, Qty, Side};
use std::cmp::Ordering;

/// A pool queued for liquidation, with its figures when it was queued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Candidate {
    pub(super) account: AccountId,
    pub(super) pool: PoolId,
    equity: i128,
    mm: i128,
}

impl Candidate {
    /// A pool with its equity and requirement.
    pub(super) fn new(account: AccountId, pool: PoolId, equity: i128, mm: i128) -> Candidate {
        Candidate {
            account,
            pool,
            equity,
            mm,
        }
    }

    /// Worst margin ratio first, then account id, then cross before isolated.
    fn order(&self, o: &Candidate) -> Ordering {
        // equity / mm < o.equity / o.mm  ⇔  equity × o.mm < o.equity × mm (mm > 0);
        // equities are clamped so the products fit (both are below their MM anyway).
        let clamp = |e: i128| e.clamp(-(1 << 64), 1 << 64);
        (clamp(self.equity) * o.mm)
            .cmp(&(clamp(o.equity) * self.mm))
            .then(self.account.0.cmp(&o.account.0))
            .then(pool_rank(self.pool).cmp(&pool_rank(o.pool)))
    }
}

pub(super) fn pool_rank(p: PoolId) -> u64 {
    match p {
        PoolId::Cross => 0,
        PoolId::Isolated(m) => 1 + u64::from(m.0),
    }
}

fn pool_market(p: PoolId) -> Option<MarketId> {
    match p {
        PoolId::Cross => None,
        PoolId::Isolated(m) => Some(m),
    }
}

/// `min((mm − equity) / mm, 1)` as a rate, rounded up; `mm > 0`.
fn depth(equity: i128, mm: i128) -> Rate {
    if equity <= 0 {
        return Rate::ONE;
    }
    Rate::from_bits(ceil_div((mm - equity) << 32, mm).clamp(0, 1 << 32) as i64)
}

/// Rounds `p` to a multiple of `tick`: up if `up`, else down.
fn to_tick(p: i64, tick: i64, up: bool) -> i64 {
    let down = p.div_euclid(tick) * tick;
    if up && down != p {
        down + tick
    } else {
        down
    }
}

impl Engine {
    /// Runs the cascade to its end: the waterfall for every pool queued so far, and for
    /// every pool its liquidations push below maintenance margin.
    pub(super) fn resolve_liquidations<S: EventSink>(&mut self, out: &mut Out<S>) {
        loop {
            self.adl_cache = None;
            self.collect_candidates();
            if self.candidates.is_empty() {
                return;
            }
            for k in 0..self.candidates.len() {
                let c = self.candidates[k];
                if let Err(c) = self.ring.push(c) {
                    let first = self.ring.pop().expect("a full ring holds an item");
                    self.liquidate(first, out);
                    self.ring.push(c).expect("one slot was just freed");
                }
            }
            while let Some(c) = self.ring.pop() {
                self.liquidate(c, out);
            }
        }
    }

    /// Turns the queued accounts into the sorted, de-duplicated pools below MM.
    fn collect_candidates(&mut self) {
        self.candidates.clear();
        let mut k = 0;
        while k < self.to_check.len() {
            let a = AccountId(self.to_check[k]);
            k += 1;
            self.accounts[a.0 as usize].queued = false;
            let mut cross_done = false;
            for m in 0..self.markets.len() {
                let Some(pool) = self.triggered_pool(Kind::Maintenance, a, m, &mut cross_done)
                else {
                    continue;
                };
                let (equity, mm, held) = self.pool_maintenance(a, pool);
                if held && equity < mm {
                    self.candidates.push(Candidate {
                        account: a,
                        pool,
                        equity,
                        mm,
                    });
                }
            }
        }
        self.to_check.clear();
        self.candidates.sort_unstable_by(Candidate::order);
    }

    /// Cancels every resting order of a pool, oldest first.
    pub(super) fn cancel_pool_orders<S: EventSink>(
        &mut self,
        a: AccountId,
        pool: PoolId,
        reason: CancelReason,
        out: &mut Out<S>,
    ) {
        let mut slot = self.accounts[a.0 as usize].head;
        while slot != NIL {
            let next = self.pool[slot].acct_next;
            let m = self.pool[slot].market;
            if self.risk_of(m).is_some() && self.pool_of(a, m) == pool {
                self.cancel_slot(slot, reason, out);
            }
            slot = next;
        }
    }

    fn liquidation_config(&self, m: MarketId) -> Option<LiquidationConfig> {
        self.risk_of(m).and_then(|r| r.liquidation)
    }

    /// The waterfall for one pool.
    fn liquidate<S: EventSink>(&mut self, c: Candidate, out: &mut Out<S>) {
        let (a, pool) = (c.account, c.pool);
        let (equity, mm, held) = self.pool_maintenance(a, pool);
        if !held || equity >= mm {
            return; // restored by an earlier liquidation in this round
        }
        let market = pool_market(pool);
        out.emit(EventKind::MarginCall {
            account: a,
            market,
            equity,
            maintenance: mm,
        });
        self.cancel_pool_orders(a, pool, CancelReason::Liquidation, out);
        // Resting orders carry no maintenance margin: the re-check gives the same figures.
        let (equity, mm, _) = self.pool_maintenance(a, pool);
        out.emit(EventKind::LiquidationStarted {
            account: a,
            market,
            equity,
            maintenance: mm,
        });
        let deep = depth(equity, mm);
        let mut fee_due: i128 = 0;
        for mi in 0..self.markets.len() {
            let m = MarketId(mi as u32);
            let Some(cfg) = self.liquidation_config(m) else {
                continue;
            };
            if self.pos(a, m).size == 0 || self.pool_of(a, m) != pool {
                continue;
            }
            let mut value: i128 = 0;
            let mut last_order = None;
            for step in 0..3 {
                let (e, mm, _) = self.pool_maintenance(a, pool);
                let size = self.pos(a, m).size;
                if e >= mm || size == 0 {
                    break;
                }
                let mark = self.markets[mi].mark;
                let u = size.abs();
                // Bankruptcy price: closing here at it leaves the pool's equity at ≥ 0.
                let bk = if size > 0 {
                    i128::from(mark) - e.div_euclid(i128::from(u))
                } else {
                    i128::from(mark) + e.div_euclid(i128::from(u))
                };
                let bk = bk.clamp(1, i128::from(i64::MAX)) as i64;
                let tick = self.markets[mi].book.cfg.tick;
                let order = match step {
                    0 => self.partial_order(a, m, &cfg, e, mm, deep, bk),
                    1 => (u, to_tick(bk, tick, size > 0)),
                    _ => {
                        value += self.backstop(a, m, bk, out);
                        break;
                    }
                };
                // The second order is skipped when it would repeat an unfilled first one.
                if last_order != Some((order, 0)) {
                    let traded = self.liquidation_order(a, m, order.0, order.1, out);
                    value += traded;
                    last_order = Some((order, traded));
                }
            }
            let scale = self.markets[mi].scale;
            fee_due += mul_rate_up(
                mul_rate_up(mul_rate_up(value, cfg.fee_rate), scale),
                Rate::ONE + deep,
            );
            let (e, mm, _) = self.pool_maintenance(a, pool);
            if e >= mm {
                break;
            }
        }
        let (e, mm, _) = self.pool_maintenance(a, pool);
        let fee = fee_due.min((e - mm).max(0));
        if fee > 0 {
            self.credit(a, pool, -fee);
            self.change_fund(fee, out);
        }
        out.emit(EventKind::LiquidationFinished {
            account: a,
            market,
            fee: saturate(fee),
            equity: e - fee,
        });
    }

    /// `(lots, limit)` of the first liquidation order: the size that brings the pool to
    /// MM × (1 + buffer) if filled at the mark, or the whole position when the pool's
    /// equity is ≤ 0 or the rest would be under the minimum notional; limited to the
    /// band price, never beyond the bankruptcy price.
    #[allow(clippy::too_many_arguments)]
    fn partial_order(
        &self,
        a: AccountId,
        m: MarketId,
        cfg: &LiquidationConfig,
        equity: i128,
        mm: i128,
        deep: Rate,
        bk: i64,
    ) -> (i64, i64) {
        let mk = &self.markets[m.0 as usize];
        let size = self.pos(a, m).size;
        let u = i128::from(size.abs());
        let target = mul_rate_up(mm, Rate::ONE + cfg.buffer);
        let target_m = mul_rate_up(self.maintenance_margin(a, m), Rate::ONE + cfg.buffer);
        let mut q = match u.checked_mul(target - equity) {
            Some(n) if equity > 0 && target - equity < target_m => {
                ceil_div(n, target_m).clamp(1, u)
            }
            _ => u,
        };
        if (u - q) * i128::from(mk.mark) < i128::from(cfg.min_notional) {
            q = u;
        }
        let band = mul_rate_up(
            mul_rate_up(
                i128::from(mk.mark),
                crate::risk::bps(i64::from(cfg.band_bps)),
            ),
            Rate::ONE + deep,
        ) as i64;
        let tick = mk.book.cfg.tick;
        let limit = if size > 0 {
            to_tick(mk.mark - band, tick, true).max(to_tick(bk, tick, true))
        } else {
            to_tick(mk.mark + band, tick, false).min(to_tick(bk, tick, false))
        };
        (q as i64, limit)
    }

    /// Sends an IOC liquidation order closing up to `q` lots of the account's position at
    /// `limit` or better; returns the value traded (Σ price × lots). No taker fee.
    fn liquidation_order<S: EventSink>(
        &mut self,
        a: AccountId,
        m: MarketId,
        q: i64,
        limit: i64,
        out: &mut Out<S>,
    ) -> i128 {
        let cfg = &self.markets[m.0 as usize].book.cfg;
        if q <= 0 || limit < cfg.min_price.0 || limit > cfg.max_price.0 {
            return 0; // no admissible price at or better than the bankruptcy price
        }
        let side = if self.pos(a, m).size > 0 {
            Side::Sell
        } else {
            Side::Buy
        };
        let id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        out.emit(EventKind::LiquidationOrder {
            order_id: id,
            account: a,
            market: m,
            side,
            price: Price(limit),
            qty: Qty(q),
        });
        let taker = Taker {
            id,
            account: a,
            side,
            limit: Price(limit),
            stp: StpMode::CancelResting,
            liquidation: true,
        };
        self.liquidated_value = 0;
        self.match_against_book(m, taker, Qty(q), out);
        self.liquidated_value
    }

    /// Closes the rest of the position at the bankruptcy price: the insurance fund takes
    /// over as many lots as it can pay for, auto-deleveraging takes the rest. Returns
    /// the value closed.
    fn backstop<S: EventSink>(
        &mut self,
        a: AccountId,
        m: MarketId,
        bk: i64,
        out: &mut Out<S>,
    ) -> i128 {
        let size = self.pos(a, m).size;
        let lots = size.abs();
        let close = if size > 0 { Side::Sell } else { Side::Buy };
        let covered = self.fund_can_take(m, close.opposite(), lots, bk);
        if covered > 0 {
            self.fund_takes(a, m, close, covered, bk, out);
        }
        if covered < lots {
            self.deleverage(a, m, close, lots - covered, bk, out);
        }
        i128::from(lots) * i128::from(bk)
    }

    /// The fund takes over `q` lots of the account's position (closed on `close`) at
    /// `price`, booked at the mark: `Backstop`, then `InsuranceFund`.
    #[allow(clippy::too_many_arguments)]
    fn fund_takes<S: EventSink>(
        &mut self,
        a: AccountId,
        m: MarketId,
        close: Side,
        q: i64,
        price: i64,
        out: &mut Out<S>,
    ) {
        self.settle(m, a, close, Price(price), q, 0, out);
        let gain = self.fund_trade(m, close.opposite(), q, price);
        out.emit(EventKind::Backstop {
            account: a,
            market: m,
            qty: Qty(q),
            price: Price(price),
        });
        self.change_fund(gain, out);
    }

    /// Money change of the fund if it trades `q` lots on `side` at the bankruptcy price
    /// `bk`, booking them at the mark: its realised PnL plus `q × (mark − bk)` (buying).
    fn fund_gain(&self, m: MarketId, side: Side, q: i64, bk: i64) -> i128 {
        let mk = &self.markets[m.0 as usize];
        let (mut size, mut cost) = (mk.fund_size, mk.fund_cost);
        let realised = trade(&mut size, &mut cost, side, q, mk.mark);
        let edge = i128::from(q) * (i128::from(mk.mark) - i128::from(bk));
        realised + if side == Side::Buy { edge } else { -edge }
    }

    /// Most lots (≤ `lots`) the fund can take over without its balance going negative.
    fn fund_can_take(&self, m: MarketId, side: Side, lots: i64, bk: i64) -> i64 {
        let ok = |q: i64| self.insurance + self.fund_gain(m, side, q, bk) >= 0;
        if ok(lots) {
            return lots;
        }
        // The feasible set is a prefix [0, q*]: the gain is piecewise linear with at most
        // two pieces and the full size is infeasible.
        let (mut lo, mut hi) = (0, lots);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if ok(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Books `q` lots on `side` into the fund's position at the mark; returns its money change.
    fn fund_trade(&mut self, m: MarketId, side: Side, q: i64, bk: i64) -> i128 {
        let gain = self.fund_gain(m, side, q, bk);
        let mk = &mut self.markets[m.0 as usize];
        let old = mk.fund_size;
        trade(&mut mk.fund_size, &mut mk.fund_cost, side, q, mk.mark);
        // The fund's money moves by `gain` in change_fund; here only its position.
        mk.oi += mk.fund_size.max(0) - old.max(0);
        gain
    }

    /// Moves the insurance fund by `delta` and reports it.
    pub(super) fn change_fund<S: EventSink>(&mut self, delta: i128, out: &mut Out<S>) {
        self.insurance += delta;
        out.emit(EventKind::InsuranceFund {
            balance: self.insurance,
            change: delta,
        });
    }

    /// Auto-deleveraging: closes `need` lots of the bankrupt account's position on
    /// `close` at `bk` against opposite positions chosen by the market's ADL mode.
    fn deleverage<S: EventSink>(
        &mut self,
        a: AccountId,
        m: MarketId,
        close: Side,
        need: i64,
        bk: i64,
        out: &mut Out<S>,
    ) {
        let mode = self.liquidation_config(m).map_or(AdlMode::Queue, |c| c.adl);
        // Opposite holders: their size has the sign of the bankrupt account's close.
        let want_sign: i64 = if close == Side::Buy { 1 } else { -1 };
        if self.adl_cache != Some((m, close)) {
            self.rank_holders(m, want_sign);
            self.adl_cache = Some((m, close));
            self.adl_cursor = 0;
        }
        // Lots a ranked holder can give now: the ranking is the round's, sizes are live.
        let avail = |e: &Engine, b: u32| -> i64 {
            let size = e.pos(AccountId(b), m).size;
            if b != a.0 && size.signum() == want_sign {
                size.abs()
            } else {
                0
            }
        };
        let mut left = need;
        if mode == AdlMode::ProRata && self.adl_weight > 0 {
            // Shares of the round's profitable sizes: floor(total × lots / weight) is
            // non-zero only for the largest positions, a prefix of `adl_sizes`.
            let total = i128::from(need).min(self.adl_weight);
            for k in 0..self.adl_sizes.len() {
                let (lots, i) = self.adl_sizes[k];
                let share = (total * i128::from(lots) / self.adl_weight) as i64;
                if share == 0 {
                    break;
                }
                let b = self.adl_ranks[i as usize].1;
                let q = share.min(avail(self, b)).min(left);
                if q > 0 {
                    self.adl_trade(a, AccountId(b), m, close, q, bk, out);
                    left -= q;
                }
            }
        }
        // Queue mode, and whatever pro-rata could not place on profitable holders: whole
        // positions in rank order. Holders found empty at the front are passed over for
        // the rest of the round.
        let mut k = self.adl_cursor;
        while left > 0 && k < self.adl_ranks.len() {
            let b = self.adl_ranks[k].1;
            let lots = avail(self, b);
            let q = lots.min(left);
            if q > 0 {
                self.adl_trade(a, AccountId(b), m, close, q, bk, out);
                left -= q;
            }
            if q == lots && k == self.adl_cursor {
                self.adl_cursor += 1;
            }
            k += 1;
        }
        if left > 0 {
            // Only the fund itself holds the rest of the opposite side. It takes it back at
            // the bankruptcy price if it can pay for that, else at the price that leaves it
            // at zero: the loss it cannot pay stays with the bankrupt account as a negative
            // balance (bad debt nobody else holds exposure to absorb).
            let side = close.opposite();
            let mark = self.markets[m.0 as usize].mark;
            let room = (self.fund_gain(m, side, left, mark) + self.insurance)
                .div_euclid(i128::from(left))
                .clamp(-i128::from(mark), i128::from(i64::MAX / 2)) as i64;
            let price = match side {
                Side::Buy => bk.min(mark + room).max(1),
                Side::Sell => bk.max(mark - room),
            };
            self.fund_takes(a, m, close, left, price, out);
        }
    }

    /// Ranks the holders of `want_sign` positions in `m`: highest ADL rank first, ties by
    /// account id. Computed at a round's first ADL in that market and side, and reused
    /// for the rest of the round.
    fn rank_holders(&mut self, m: MarketId, want_sign: i64) {
        self.adl_ranks.clear();
        for b in 0..self.cfg.max_accounts {
            let p = self.pos(AccountId(b), m);
            if p.size.signum() == want_sign {
                let rank = self.adl_rank(AccountId(b), m);
                self.adl_ranks.push((rank, b, p.size.abs()));
            }
        }
        self.adl_ranks
            .sort_unstable_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
        // Pro-rata weights: the profitable sizes now, largest first (ties in rank order).
        self.adl_sizes.clear();
        self.adl_weight = 0;
        for (i, &(rank, _, lots)) in self.adl_ranks.iter().enumerate() {
            if rank > 0 {
                self.adl_sizes.push((lots, i as u32));
                self.adl_weight += i128::from(lots);
            }
        }
        self.adl_sizes
            .sort_unstable_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    }

    /// One ADL trade: the bankrupt account `a` closes `q` lots on `close` against `b` at
    /// the bankruptcy price.
    #[allow(clippy::too_many_arguments)]
    fn adl_trade<S: EventSink>(
        &mut self,
        a: AccountId,
        b: AccountId,
        m: MarketId,
        close: Side,
        q: i64,
        bk: i64,
        out: &mut Out<S>,
    ) {
        self.settle(m, a, close, Price(bk), q, 0, out);
        self.settle(m, b, close.opposite(), Price(bk), q, 0, out);
        out.emit(EventKind::AdlFill {
            market: m,
            account: a,
            counterparty: b,
            qty: Qty(q),
            price: Price(bk),
        });
    }

    /// ADL rank of a position: unrealised PnL% × effective leverage when in profit,
    /// PnL% ÷ effective leverage otherwise (I32F32, saturating, truncated).
    fn adl_rank(&self, b: AccountId, m: MarketId) -> Rate {
        let p = self.pos(b, m);
        let mark = i128::from(self.markets[m.0 as usize].mark);
        let upnl = i128::from(p.size) * mark - p.cost;
        let notional = i128::from(p.size).abs() * mark;
        let (equity, _, _) = self.pool_maintenance(b, self.pool_of(b, m));
        let frac = |n: i128, d: i128| -> Rate {
            if d <= 0 {
                return Rate::MAX;
            }
            let bits = n.saturating_mul(1 << 32) / d;
            Rate::from_bits(bits.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
        };
        let pct = frac(upnl, p.cost.abs().max(1));
        let lev = frac(notional, equity);
        if upnl >= 0 {
            pct.saturating_mul(lev)
        } else if lev == Rate::ZERO {
            Rate::MIN
        } else {
            pct.saturating_div(lev)
        }
    }
}
