//! The liquidation waterfall: after each external command, every pool that fell below
//! maintenance margin is liquidated in a fixed order, and the cascade continues until
//! no pool with a position in a liquidating market that is not halted is below
//! maintenance margin.
//!
//! Order: rounds; a round's pools are those queued by the previous round (the command
//! itself for the first), sorted by margin ratio (equity ÷ MM, worst first), then
//! account id, then cross before isolated markets ascending. They pass through a bounded
//! ring; a full ring is drained one item before the next push. A pool's orders are
//! sized when it reaches the book, so ring capacity never changes the output. When a
//! round finds nothing, the fund is deleveraged if its equity is negative, and once per
//! command it sends its unwind orders (`fund.rs`); anything they touch starts a round.
//!
//! Per pool: margin call; cancel its resting orders; then, position by position (the
//! one with the largest maintenance margin first; halted markets skipped), while the
//! pool is below MM: (1) up to `MAX_PARTIALS` IOC liquidation orders sized to restore
//! MM × (1 + buffer), limited to the band price; (2) an IOC for the whole position
//! limited to the bankruptcy price; (3) the rest is taken over by the insurance fund at
//! the bankruptcy price as far as its equity (less a haircut) allows, and
//! auto-deleveraged at the bankruptcy price beyond that. Then the liquidation fee goes
//! to the fund, capped so the pool keeps MM × (1 + buffer); a closed pool left with
//! negative equity is covered by the fund, and what the fund cannot carry is bad debt.
//! Formulas: `SEMANTICS.md`.
//!
//! Invariants after the cascade: no pool with a position in a liquidating market that
//! is not halted is below MM; no pool without a position has negative money; the fee
//! ledger never pays out on a liquidation fill.

use super::margin::{saturate, PoolId};
use super::trigger::Kind;
use super::{Engine, Out, Taker, TakerKind};
use crate::command::StpMode;
use crate::event::{CancelReason, EventKind, EventSink};
use crate::pool::NIL;
use crate::risk::{ceil_div, mul_rate_up, AdlMode, LiquidationConfig, Rate};
use crate::types::{AccountId, MarketId, OrderId, Price, Qty, Side};
use std::cmp::Ordering;

/// One round's ADL ranking of the holders of one side of one market: its entries in the
/// ranking arena (`Engine::adl_ranks`), its pro-rata weights (`Engine::adl_sizes`, indexes
/// relative to its first entry), their total, and how many entries at its front are
/// passed over.
#[derive(Clone, Copy, Debug)]
pub(super) struct AdlRanking {
    key: (MarketId, Side),
    ranks: (u32, u32),
    sizes: (u32, u32),
    weight: i128,
    cursor: u32,
}

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
        // Equities clamped to ±2^64 and requirements to 2^62 keep the products in i128.
        let clamp = |e: i128| e.clamp(-(1 << 64), 1 << 64);
        let cap = |mm: i128| mm.min(1 << 62);
        (clamp(self.equity) * cap(o.mm))
            .cmp(&(clamp(o.equity) * cap(self.mm)))
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

/// `ceil(mark × band_bps / 10,000)`, exactly.
pub(super) fn band_of(mark: i64, band_bps: u32) -> i128 {
    ceil_div(i128::from(mark) * i128::from(band_bps), 10_000)
}

/// The bankruptcy price of a position of `size` lots in a pool (or fund) of `equity` at
/// `mark`: closing every lot there leaves the equity in `[0, |size|)`. Long:
/// `mark − floor(equity / u)`, short: `mark + floor(equity / u)`, at least 1.
pub(super) fn bankruptcy_price(equity: i128, size: i64, mark: i64) -> i64 {
    let step = equity.div_euclid(i128::from(size.abs()));
    let bk = if size > 0 {
        i128::from(mark) - step
    } else {
        i128::from(mark) + step
    };
    bk.clamp(1, i128::from(i64::MAX)) as i64
}

/// Rounds `p` to a multiple of `tick`: up if `up`, else down.
pub(super) fn to_tick(p: i64, tick: i64, up: bool) -> i64 {
    let down = p.div_euclid(tick) * tick;
    if up && down != p {
        // Saturates only for a bankruptcy price clamped near i64::MAX, far outside the band.
        down.saturating_add(tick)
    } else {
        down
    }
}

/// Most partial liquidation orders per position and waterfall: a partial that slips is
/// followed by another partial (resized from the state it left), not at once by the
/// whole-position order at the bankruptcy price.
pub const MAX_PARTIALS: u32 = 3;

impl Engine {
    /// Runs the cascade to its end: the waterfall for every pool queued so far, and for
    /// every pool its liquidations push below maintenance margin; then the fund's
    /// solvency and, once, its unwind orders, each followed by the rounds they cause.
    pub(super) fn resolve_liquidations<S: EventSink>(&mut self, out: &mut Out<S>) {
        let mut unwound = false;
        loop {
            self.clear_rankings();
            self.collect_candidates();
            let deficits = !self.deficits.is_empty();
            if deficits {
                self.cover_deficits(out);
            }
            if !self.candidates.is_empty() {
                self.run_round(out);
                continue;
            }
            if deficits {
                continue;
            }
            if self.fund_positions > 0 && self.fund_solvency(out) {
                continue;
            }
            if !unwound && self.fund_positions > 0 {
                unwound = true;
                if self.unwind(out) {
                    continue;
                }
            }
            return;
        }
    }

    /// Liquidates the round's candidates through the ring, in order.
    fn run_round<S: EventSink>(&mut self, out: &mut Out<S>) {
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

    /// Turns the queued accounts into the sorted, de-duplicated pools below MM.
    fn collect_candidates(&mut self) {
        self.candidates.clear();
        let mut k = 0;
        while k < self.to_check.len() {
            let a = AccountId(self.to_check[k]);
            k += 1;
            self.accounts[a.0 as usize].queued = false;
            self.collect_deficits(a);
            let mut cross_done = false;
            let mut s = self.first_slot(a);
            while s != NIL {
                let slot = s;
                s = self.next_slot(s);
                let Some(pool) = self.triggered_pool(Kind::Maintenance, a, slot, &mut cross_done)
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
                } else {
                    // A box key fired without a liquidation: a fresh box around the
                    // marks, so the next quiet move does not fire it again.
                    self.rekey(a, pool);
                }
            }
        }
        self.to_check.clear();
        self.candidates.sort_unstable_by(Candidate::order);
    }

    /// Notes the account's flat pools with negative money (cross, then isolated).
    fn collect_deficits(&mut self, a: AccountId) {
        if self.accounts[a.0 as usize].collateral < 0 && self.pool_flat(a, PoolId::Cross) {
            self.deficits.push((a.0, PoolId::Cross));
        }
        let mut s = self.first_slot(a);
        while s != NIL {
            let (m, p) = (self.slot_market(s), &self.slots.pos[s as usize]);
            let x = self.extra_of(p);
            if x.isolated && p.size == 0 && x.bucket < 0 && self.risk_of(m).is_some() {
                self.deficits.push((a.0, PoolId::Isolated(m)));
            }
            s = self.next_slot(s);
        }
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

    pub(super) fn liquidation_config(&self, m: MarketId) -> Option<LiquidationConfig> {
        self.risk_of(m).and_then(|r| r.liquidation)
    }

    /// A market where liquidation acts now: liquidation on and not halted.
    pub(super) fn liquidates_now(&self, m: MarketId) -> bool {
        self.liquidation_config(m).is_some() && !self.markets[m.0 as usize].halted
    }

    /// The pool's target: `Σ ceil(MM_m × (1 + buffer_m))` over its positions.
    fn pool_target(&self, a: AccountId, pool: PoolId) -> i128 {
        self.pool_positions(a, pool)
            .filter(|&(m, p)| self.risk_of(m).is_some() && p.size != 0)
            .map(|(m, _)| self.position_target(a, m))
            .sum()
    }

    /// `ceil(MM_m × (1 + buffer_m))` of one position (buffer 0 without liquidation).
    fn position_target(&self, a: AccountId, m: MarketId) -> i128 {
        let buffer = self.liquidation_config(m).map_or(Rate::ZERO, |c| c.buffer);
        mul_rate_up(self.maintenance_margin(a, m), Rate::ONE + buffer)
    }

    /// The pool's positions to liquidate, largest maintenance margin first (ties by
    /// market id), into `liq_order`.
    fn order_positions(&mut self, a: AccountId, pool: PoolId) {
        self.liq_order.clear();
        let mut s = self.first_slot(a);
        while s != NIL {
            let (m, p) = (self.slot_market(s), &self.slots.pos[s as usize]);
            if self.liquidates_now(m) && p.size != 0 && self.pool_of(a, m) == pool {
                let mm = self.maintenance_of(m, p);
                self.liq_order.push((mm, m.0));
            }
            s = self.next_slot(s);
        }
        self.liq_order
            .sort_unstable_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
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
        self.cancel_conditionals_where(
            a,
            CancelReason::Liquidation,
            |e, m| e.risk_of(m).is_some() && e.pool_of(a, m) == pool,
            out,
        );
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
        let mut whole_sent = false;
        self.order_positions(a, pool);
        for k in 0..self.liq_order.len() {
            let (e, mm, _) = self.pool_maintenance(a, pool);
            if e >= mm {
                break;
            }
            let m = MarketId(self.liq_order[k].1);
            let cfg = self
                .liquidation_config(m)
                .expect("ordered markets liquidate");
            let (value, whole) = self.close_position(a, pool, m, &cfg, deep, out);
            whole_sent |= whole;
            let scale = self.markets[m.0 as usize].scale;
            fee_due += mul_rate_up(
                mul_rate_up(mul_rate_up(value, cfg.fee_rate), scale),
                Rate::ONE + deep,
            );
        }
        let (e, _, _) = self.pool_maintenance(a, pool);
        // The pool keeps its target; after a whole-position close the fund takes the rest.
        let room = (e - self.pool_target(a, pool)).max(0);
        let fee = if whole_sent { room } else { fee_due.min(room) };
        // The pool's liquidation fund: that of the position it took up first.
        let fund = self.fund_of(self.liq_order[0].1 as usize);
        if fee > 0 {
            self.credit(a, pool, -fee);
            self.change_fund(fund, fee, out);
        }
        let mut e = e - fee;
        if e < 0 && self.pool_flat(a, pool) {
            self.cover_deficit(a, pool, (fund, -e), out);
            e = 0;
        }
        out.emit(EventKind::LiquidationFinished {
            account: a,
            market,
            fee: saturate(fee),
            equity: e,
        });
    }

    /// Closes one position while the pool is below MM: partial orders, the whole
    /// position at the bankruptcy price, then backstop and ADL. Returns the value closed
    /// and whether the whole-position order was sent.
    fn close_position<S: EventSink>(
        &mut self,
        a: AccountId,
        pool: PoolId,
        m: MarketId,
        cfg: &LiquidationConfig,
        deep: Rate,
        out: &mut Out<S>,
    ) -> (i128, bool) {
        let mi = m.0 as usize;
        let mut value: i128 = 0;
        let mut partials = 0;
        let mut whole = false;
        let mut whole_sent = false;
        let mut last: Option<((i64, i64), i128)> = None;
        loop {
            let (e, mm, _) = self.pool_maintenance(a, pool);
            let size = self.pos(a, m).size;
            if e >= mm || size == 0 {
                break;
            }
            let u = size.abs();
            let bk = bankruptcy_price(e, size, self.markets[mi].mark);
            let tick = self.markets[mi].book.cfg.tick;
            let partial_ok = last.is_none_or(|(_, traded)| traded > 0);
            let order = if !whole && partials < MAX_PARTIALS && partial_ok {
                partials += 1;
                self.partial_order(a, pool, m, cfg, e, deep, bk)
            } else if !whole {
                whole = true;
                let order = (u, to_tick(bk, tick, size > 0));
                // Skipped when it would repeat an unfilled previous order.
                if last == Some((order, 0)) {
                    continue;
                }
                order
            } else {
                value += self.backstop(a, m, bk, out);
                break;
            };
            let sent = self.liquidation_order(a, m, order.0, order.1, out);
            whole_sent |= whole && sent.is_some();
            let traded = sent.unwrap_or(0);
            value += traded;
            last = Some((order, traded));
        }
        (value, whole_sent)
    }

    /// `(lots, limit)` of a partial liquidation order: limited to the band price, never
    /// beyond the bankruptcy price; sized against the book within that limit
    /// ([`Engine::partial_size`]), or the whole position when the rest would be under the
    /// minimum notional.
    #[allow(clippy::too_many_arguments)]
    fn partial_order(
        &self,
        a: AccountId,
        pool: PoolId,
        m: MarketId,
        cfg: &LiquidationConfig,
        equity: i128,
        deep: Rate,
        bk: i64,
    ) -> (i64, i64) {
        let mk = &self.markets[m.0 as usize];
        let size = self.pos(a, m).size;
        let band = mul_rate_up(band_of(mk.mark, cfg.band_bps), Rate::ONE + deep)
            .min(i128::from(i64::MAX / 4)) as i64;
        let tick = mk.book.cfg.tick;
        let limit = if size > 0 {
            to_tick(mk.mark - band, tick, true).max(to_tick(bk, tick, true))
        } else {
            to_tick(mk.mark + band, tick, false).min(to_tick(bk, tick, false))
        };
        let u = i128::from(size.abs());
        let mut q = if equity > 0 {
            let target = self.pool_target(a, pool);
            let target_m = self.position_target(a, m);
            self.partial_size(m, size, limit, equity, target, target_m)
        } else {
            u
        };
        if (u - q) * i128::from(mk.mark) < i128::from(cfg.min_notional) {
            q = u;
        }
        (q as i64, limit)
    }

    /// The smallest `q ∈ [1, u]` with `u × (E − S(q)) + q × T_m ≥ u × T`, where `S(q)` is
    /// the slippage against the mark of closing `q` lots of a position of `size` into
    /// the resting orders that cross `limit` (lots beyond them at `limit`); `u` if none.
    /// The left side is concave and piecewise linear in `q` (the slippage per lot only
    /// grows along the walk), so one pass over the levels finds it: within a level it is
    /// linear, and once its slope is not positive it can never rise again.
    fn partial_size(
        &self,
        m: MarketId,
        size: i64,
        limit: i64,
        equity: i128,
        target: i128,
        target_m: i128,
    ) -> i128 {
        let mk = &self.markets[m.0 as usize];
        let book = &mk.book;
        let u = i128::from(size.abs());
        let close = if size > 0 { Side::Sell } else { Side::Buy };
        let slip_at = |p: i64| {
            let d = i128::from(mk.mark) - i128::from(p);
            if close == Side::Sell {
                d
            } else {
                -d
            }
        };
        let (mut done, mut slipped) = (0i128, 0i128);
        let mut cur = book.best(close.opposite());
        loop {
            // The next run of lots at one price: a visible level, or the rest at the limit.
            let (price, lots, last) = match cur {
                Some(idx) if close.crosses(Price(limit), book.cfg.price_of(idx)) => {
                    cur = book.next_worse(close.opposite(), idx);
                    (
                        book.cfg.price_of(idx).0,
                        i128::from(book.level(idx).qty),
                        false,
                    )
                }
                _ => (limit, u, true),
            };
            let take = lots.min(u - done);
            let s = slip_at(price);
            // need(done) and its slope per lot; an overflow (absurd sizes) closes it all.
            let step = || -> Option<i128> {
                let need = u
                    .checked_mul(equity.checked_sub(slipped)?)?
                    .checked_add(done.checked_mul(target_m)?)?
                    .checked_sub(u.checked_mul(target)?)?;
                if need >= 0 {
                    return Some(done.max(1));
                }
                let slope = target_m.checked_sub(u.checked_mul(s)?)?;
                if slope <= 0 {
                    return Some(u); // it can never rise again
                }
                let k = ceil_div(need.checked_neg()?, slope);
                (k <= take).then_some(done + k)
            };
            match step() {
                Some(q) => return q,
                None if last || done + take >= u => return u,
                None => {}
            }
            done += take;
            slipped = match s.checked_mul(take).and_then(|x| slipped.checked_add(x)) {
                Some(v) => v,
                None => return u,
            };
        }
    }

    /// Sends an IOC liquidation order closing up to `q` lots of the account's position at
    /// `limit` or better; returns the value traded (Σ price × lots), or `None` when no
    /// order is sent (a limit outside the band). The liquidated side pays only the
    /// maker's rebate as its taker fee.
    fn liquidation_order<S: EventSink>(
        &mut self,
        a: AccountId,
        m: MarketId,
        q: i64,
        limit: i64,
        out: &mut Out<S>,
    ) -> Option<i128> {
        let cfg = &self.markets[m.0 as usize].book.cfg;
        if q <= 0 || limit < cfg.min_price.0 || limit > cfg.max_price.0 {
            return None; // no admissible price at or better than the bankruptcy price
        }
        let side = if self.pos(a, m).size > 0 {
            Side::Sell
        } else {
            Side::Buy
        };
        let id = OrderId(self.next_order_id);
        out.emit(EventKind::LiquidationOrder {
            order_id: id,
            account: a,
            market: m,
            side,
            price: Price(limit),
            qty: Qty(q),
        });
        self.liquidated_value = 0;
        self.forced_ioc(m, a, TakerKind::Liquidation, side, (limit, q), out);
        Some(self.liquidated_value)
    }

    /// Matches a forced IOC (a liquidation or the fund's unwind order) with the next
    /// order id, announced by the caller's event: `(limit, lots)`; never self-trades
    /// away (its account's orders were cancelled, and the fund has none).
    pub(super) fn forced_ioc<S: EventSink>(
        &mut self,
        m: MarketId,
        account: AccountId,
        kind: TakerKind,
        side: Side,
        (limit, q): (i64, i64),
        out: &mut Out<S>,
    ) {
        let id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        let taker = Taker {
            id,
            account,
            side,
            limit: Price(limit),
            stp: StpMode::CancelResting,
            kind,
        };
        self.match_against_book(m, taker, Qty(q), out);
    }

    /// Closes the rest of the position at the bankruptcy price: the insurance fund takes
    /// over as many lots as its capacity allows, auto-deleveraging takes the rest.
    /// Returns the value closed.
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
        let covered = self.fund_capacity(m, close.opposite(), lots, bk);
        if covered > 0 {
            self.fund_takes(a, m, close, covered, bk, out);
        }
        if covered < lots {
            let left = self.deleverage(a, m, close, lots - covered, bk, out);
            if left > 0 {
                // Only the fund itself holds the rest of the opposite side: it closes its
                // own position at the bankruptcy price, whatever its capacity.
                self.fund_takes(a, m, close, left, bk, out);
            }
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
        let mark = self.markets[m.0 as usize].mark;
        let side = close.opposite();
        let realised = self.fund_book(m, side, q, mark);
        let edge = i128::from(q) * (i128::from(mark) - i128::from(price));
        let gain = realised + if side == Side::Buy { edge } else { -edge };
        out.emit(EventKind::Backstop {
            account: a,
            market: m,
            qty: Qty(q),
            price: Price(price),
        });
        self.change_fund(self.fund_of(m.0 as usize), gain, out);
    }

    /// Auto-deleveraging: closes up to `need` lots of the bankrupt side's position on
    /// `close` at `bk` against opposite positions chosen by the market's ADL mode. The
    /// bankrupt side is an account, or the fund (`AccountId::FUND`), whose cash moves
    /// by the realised PnL in `fund_cash_delta`. Returns the lots nobody could take.
    pub(super) fn deleverage<S: EventSink>(
        &mut self,
        a: AccountId,
        m: MarketId,
        close: Side,
        need: i64,
        bk: i64,
        out: &mut Out<S>,
    ) -> i64 {
        let mode = self.liquidation_config(m).map_or(AdlMode::Queue, |c| c.adl);
        // Opposite holders: their size has the sign of the bankrupt account's close.
        let want_sign: i64 = if close == Side::Buy { 1 } else { -1 };
        let g = match self.adl_rankings.iter().position(|r| r.key == (m, close)) {
            Some(g) => g,
            None => self.rank_holders(m, close, want_sign),
        };
        let r = self.adl_rankings[g];
        let ranks = r.ranks.0 as usize..(r.ranks.0 + r.ranks.1) as usize;
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
        if mode == AdlMode::ProRata && r.weight > 0 {
            // Shares of the round's profitable sizes: floor(total × lots / weight) is
            // non-zero only for the largest positions, a prefix of the sizes.
            let total = i128::from(need).min(r.weight);
            for k in r.sizes.0..r.sizes.0 + r.sizes.1 {
                let (lots, i) = self.adl_sizes[k as usize];
                let share = (total * i128::from(lots) / r.weight) as i64;
                if share == 0 {
                    break;
                }
                let b = self.adl_ranks[ranks.start + i as usize].1;
                let q = share.min(avail(self, b)).min(left);
                if q > 0 {
                    self.adl_trade(a, AccountId(b), m, close, q, bk, out);
                    left -= q;
                }
            }
        }
        // Queue mode, and whatever pro-rata could not place on profitable holders: whole
        // positions in rank order. A holder at the front that gives all it holds (or holds
        // nothing) is passed over for the rest of the round.
        let mut k = ranks.start + self.adl_rankings[g].cursor as usize;
        while left > 0 && k < ranks.end {
            let b = self.adl_ranks[k].1;
            let lots = avail(self, b);
            let q = lots.min(left);
            if q > 0 {
                self.adl_trade(a, AccountId(b), m, close, q, bk, out);
                left -= q;
            }
            let cursor = &mut self.adl_rankings[g].cursor;
            if q == lots && k == ranks.start + *cursor as usize {
                *cursor += 1;
            }
            k += 1;
        }
        left
    }

    /// Ranks the holders of `want_sign` positions in `m` into the round's ranking arena:
    /// highest ADL rank first, ties by account id, and their pro-rata weights (profitable
    /// sizes, largest first). Computed at a round's first ADL in that market and side,
    /// and reused for the rest of the round; returns its index in `adl_rankings`.
    fn rank_holders(&mut self, m: MarketId, close: Side, want_sign: i64) -> usize {
        let start = self.adl_ranks.len();
        let mut s = self.first_holder(m);
        while s != NIL {
            let (b, size) = (self.slot_account(s), self.slots.pos[s as usize].size);
            if size.signum() == want_sign {
                let rank = self.adl_rank(b, m);
                self.adl_ranks.push((rank, b.0, size.abs()));
            }
            s = self.next_holder(s);
        }
        self.adl_ranks[start..].sort_unstable_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
        // Pro-rata weights: the profitable sizes now, largest first (ties in rank order).
        let sizes = self.adl_sizes.len();
        let mut weight = 0;
        for i in start..self.adl_ranks.len() {
            let (rank, _, lots) = self.adl_ranks[i];
            if rank > 0 {
                self.adl_sizes.push((lots, (i - start) as u32));
                weight += i128::from(lots);
            }
        }
        self.adl_sizes[sizes..].sort_unstable_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
        self.adl_rankings.push(AdlRanking {
            key: (m, close),
            ranks: (start as u32, (self.adl_ranks.len() - start) as u32),
            sizes: (sizes as u32, (self.adl_sizes.len() - sizes) as u32),
            weight,
            cursor: 0,
        });
        self.adl_rankings.len() - 1
    }

    /// Forgets the round's ADL rankings (the next ADL in any market ranks afresh).
    pub(super) fn clear_rankings(&mut self) {
        self.adl_rankings.clear();
        self.adl_ranks.clear();
        self.adl_sizes.clear();
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
        if a == AccountId::FUND {
            self.fund_cash_delta += self.fund_book(m, close, q, bk);
        } else {
            self.settle(m, a, close, Price(bk), q, 0, out);
        }
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
