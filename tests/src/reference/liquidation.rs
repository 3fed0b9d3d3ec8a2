//! The reference liquidation model, written from docs/SEMANTICS.md ("Ledgers",
//! "Funding" and everything under "Liquidation") and from nothing else: it shares no
//! code or structure with `core/src/engine/`, so that a design bug cannot agree with
//! itself.
//!
//! Brute force throughout. After every accepted command:
//!
//! 1. a *round* scans every pool of every account, recomputing equity, maintenance
//!    margin and targets from the positions and the marks (no trigger index, no
//!    touched-account bookkeeping, no ring), sorts the pools found below MM and runs
//!    the waterfall on each one that is still below MM when its turn comes; rounds
//!    repeat until a scan finds nothing. Scanning every pool instead of "the pools
//!    touched" is equivalent: a pool nothing touched cannot newly fall below MM;
//! 2. fund solvency: while the fund's equity is negative, its positions are deleveraged
//!    whole by ADL at its bankruptcy price (fresh ranking); back to 1 if that traded;
//! 3. once per command, the fund's unwind orders; back to 1 if they traded.
//!
//! Readings of the text where it admits more than one are marked `AMBIGUITY:` below.

use super::{ceil_bits, rate_bits, sat, RefEngine, RefPool, Taker};
use cascade_core::risk::{AdlMode, LiquidationConfig, Rate};
use cascade_core::{
    AccountId, CancelReason, EventKind, MarketId, OrderId, Price, Qty, Side, StpMode,
};

/// At most this many partial orders per market and pool.
const MAX_PARTIALS: usize = 3;

/// `x × rate`, rounded up (toward +∞) for any sign of `x`.
fn up(x: i128, r: Rate) -> i128 {
    ceil_bits(x * rate_bits(r))
}

/// `x × rate`, rounded down (toward −∞).
fn down(x: i128, r: Rate) -> i128 {
    (x * rate_bits(r)) >> 32
}

/// `ceil(a / b)` for `b > 0`.
fn ceil_div(a: i128, b: i128) -> i128 {
    -(-a).div_euclid(b)
}

/// A multiple of `tick` at or above (`up`) or at or below `p`.
fn on_tick(p: i64, tick: i64, up: bool) -> i64 {
    let below = p.div_euclid(tick) * tick;
    if up && below < p {
        below + tick
    } else {
        below
    }
}

/// `ceil(mark × band_bps / 10,000)`, exactly.
///
/// AMBIGUITY: the spec writes `ceil(mark × band_bps / 10,000)` (and the market order
/// protection offset is exact integer arithmetic), so this is exact; the old reference
/// multiplied by `bps(band_bps)` (a rate a hair below `band_bps / 10,000`). The two
/// differ only for marks above about 429,497.
fn band(mark: i64, band_bps: u32) -> i128 {
    ceil_div(i128::from(mark) * i128::from(band_bps), 10_000)
}

/// Books `q` signed lots at `price` on a `(size, cost)` position: the part that reduces
/// an opposite position releases `ceil(cost × c / |size|)` of cost and realises
/// `−(±c) × price − released`; the rest opens at `price`. Returns `(size, cost, realised)`.
fn book(size: i64, cost: i128, q: i64, price: i64) -> (i64, i128, i128) {
    let (mut size, mut cost, mut realised, mut open) = (size, cost, 0, q);
    if size != 0 && q != 0 && (size > 0) != (q > 0) {
        let c = q.abs().min(size.abs());
        let closing = c * q.signum();
        let released = ceil_div(cost * i128::from(c), i128::from(size.abs()));
        realised = -i128::from(closing) * i128::from(price) - released;
        cost -= released;
        size += closing;
        open = q - closing;
    }
    (
        size + open,
        cost + i128::from(open) * i128::from(price),
        realised,
    )
}

/// `+1` for a buy, `−1` for a sell.
fn dir(side: Side) -> i64 {
    match side {
        Side::Buy => 1,
        Side::Sell => -1,
    }
}

/// A bankruptcy price: long `mark − floor(E / u)`, short `mark + floor(E / u)`, at least 1.
///
/// AMBIGUITY (harmless): the spec gives no upper bound; this saturates at `i64::MAX`
/// (any such price lies outside the band, so a limit there sends nothing).
fn bankruptcy(equity: i128, size: i64, mark: i64) -> i64 {
    let per_lot = equity.div_euclid(i128::from(size.abs()));
    let bk = if size > 0 {
        i128::from(mark) - per_lot
    } else {
        i128::from(mark) + per_lot
    };
    bk.clamp(1, i128::from(i64::MAX)) as i64
}

/// Who is deleveraged against the ADL counterparties.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bankrupt {
    Account(u32),
    Fund,
}

/// One ADL ranking: counterparties of the side that closes `close` in market `m`.
#[derive(Clone, Debug, Default)]
pub(super) struct AdlRanking {
    m: usize,
    close: Option<Side>,
    /// `(rank bits, account, rank positive, size when ranked)`, highest rank first,
    /// then account.
    list: Vec<(i64, u32, bool, i64)>,
    /// Entries at the front passed over for the rest of the round.
    skip: usize,
}

impl RefEngine {
    /// The fund of market `m`: `Some(m)` when it has its own (`isolated_fund`), `None`
    /// for the shared one.
    pub(super) fn fund_id(&self, m: usize) -> Option<usize> {
        self.liquidation_cfg(m)
            .is_some_and(|c| c.isolated_fund)
            .then_some(m)
    }

    /// A fund's cash.
    pub(super) fn cash(&self, fund: Option<usize>) -> i128 {
        fund.map_or(self.insurance, |m| self.fund_cash[m])
    }

    pub(super) fn cash_mut(&mut self, fund: Option<usize>) -> &mut i128 {
        match fund {
            None => &mut self.insurance,
            Some(m) => &mut self.fund_cash[m],
        }
    }

    /// The shared fund's equity: cash plus each of its positions at its mark minus cost.
    pub fn fund_equity(&self) -> i128 {
        self.fund_equity_of(None, self.insurance, &self.fund)
    }

    /// The shared fund's haircut: `Σ ceil(|size| × mark × fund_haircut)`.
    pub fn fund_haircut(&self) -> i128 {
        self.fund_haircut_of(None, &self.fund)
    }

    /// Equity of market `m`'s own fund, if it has one.
    pub fn market_fund_equity(&self, m: usize) -> Option<i128> {
        self.fund_id(m)
            .map(|f| self.fund_equity_of(Some(f), self.fund_cash[f], &self.fund))
    }

    /// Haircut of market `m`'s own fund, if it has one.
    pub fn market_fund_haircut(&self, m: usize) -> Option<i128> {
        self.fund_id(m)
            .map(|f| self.fund_haircut_of(Some(f), &self.fund))
    }

    /// `Σ collateral + Σ buckets − Σ cost + fee ledger + Σ fund cash − Σ fund cost +
    /// funding pot − bad debt`: net deposits, if money is conserved.
    pub fn money_accounted(&self) -> i128 {
        let accounts: i128 = (0..self.pos.len())
            .map(|a| {
                self.collateral[a] + self.pos[a].iter().map(|p| p.bucket - p.cost).sum::<i128>()
            })
            .sum();
        let fund_cost: i128 = self.fund.iter().map(|f| f.1).sum();
        let own_cash: i128 = self.fund_cash.iter().sum();
        accounts + self.fee_ledger + self.insurance + own_cash - fund_cost + self.funding_pot
            - self.bad_debt
    }

    /// What the spec promises after every cascade, checked by brute force: the fee
    /// ledger is not negative; no pool with a position in a liquidating market that is
    /// not halted is below MM; no pool whose positions are all in liquidating markets
    /// that are not halted (a flat pool included) has negative equity; the fund's
    /// equity is not negative while an account holds a position opposite to the fund's
    /// in a liquidating market that is not halted. `None` if all hold.
    pub fn cascade_violation(&self) -> Option<String> {
        if self.fee_ledger < 0 {
            return Some(format!("fee ledger {}", self.fee_ledger));
        }
        for a in 0..self.pos.len() as u32 {
            for (pool, _) in self.pools_of(a) {
                let (e, mm) = (self.equity(a, pool), self.maintenance(a, pool));
                if self.liquidatable(a, pool) {
                    return Some(format!("account {a} pool {pool:?} below MM: {e} < {mm}"));
                }
                let all = self
                    .held(a, pool)
                    .into_iter()
                    .all(|m| self.can_liquidate(m));
                if all && e < 0 {
                    return Some(format!("account {a} pool {pool:?} equity {e} < 0"));
                }
            }
        }
        for m in 0..self.markets.len() {
            let s = self.fund[m].0;
            let opposed = s != 0
                && self.can_liquidate(m)
                && self.pos.iter().any(|p| p[m].size.signum() == -s.signum());
            let fund = self.fund_id(m);
            let equity = self.fund_equity_of(fund, self.cash(fund), &self.fund);
            if opposed && equity < 0 {
                return Some(format!("fund {fund:?} equity {equity} < 0"));
            }
        }
        None
    }

    /// Equity of fund `id` with `cash` and positions `fund` (only the markets it serves).
    fn fund_equity_of(&self, id: Option<usize>, cash: i128, fund: &[(i64, i128)]) -> i128 {
        cash + (0..self.markets.len())
            .filter(|&m| self.fund_id(m) == id)
            .map(|m| i128::from(fund[m].0) * i128::from(self.markets[m].mark) - fund[m].1)
            .sum::<i128>()
    }

    /// Haircut of fund `id` with positions `fund`.
    fn fund_haircut_of(&self, id: Option<usize>, fund: &[(i64, i128)]) -> i128 {
        (0..self.markets.len())
            .filter(|&m| self.fund_id(m) == id)
            .map(|m| {
                let haircut = self
                    .liquidation_cfg(m)
                    .map_or(Rate::ZERO, |c| c.fund_haircut);
                up(
                    i128::from(fund[m].0.abs()) * i128::from(self.markets[m].mark),
                    haircut,
                )
            })
            .sum()
    }

    fn liquidation_cfg(&self, m: usize) -> Option<LiquidationConfig> {
        self.risk(m).and_then(|r| r.liquidation)
    }

    /// A liquidating market that is not halted: the only kind anything trades in.
    fn can_liquidate(&self, m: usize) -> bool {
        self.liquidation_cfg(m).is_some() && !self.markets[m].halted
    }

    /// Every pool of an account with its sort rank: cross (0), then isolated (1 + market).
    fn pools_of(&self, a: u32) -> Vec<(RefPool, u64)> {
        let mut pools = vec![(RefPool::Cross, 0)];
        for m in 0..self.markets.len() {
            if self.risk(m).is_some() && self.pos[a as usize][m].isolated {
                pools.push((RefPool::Isolated(m), 1 + m as u64));
            }
        }
        pools
    }

    /// The markets in which a pool holds a position.
    fn held(&self, a: u32, pool: RefPool) -> Vec<usize> {
        (0..self.markets.len())
            .filter(|&m| self.in_pool(a, m, pool) && self.pos[a as usize][m].size != 0)
            .collect()
    }

    fn equity(&self, a: u32, pool: RefPool) -> i128 {
        self.money(a, pool)
            + self
                .held(a, pool)
                .into_iter()
                .map(|m| self.upnl(a, m))
                .sum::<i128>()
    }

    fn maintenance(&self, a: u32, pool: RefPool) -> i128 {
        self.held(a, pool).into_iter().map(|m| self.mm(a, m)).sum()
    }

    /// `T_m = ceil(MM_m × (1 + buffer_m))`, buffer 0 without liquidation.
    fn target_of(&self, a: u32, m: usize) -> i128 {
        let buffer = self.liquidation_cfg(m).map_or(Rate::ZERO, |c| c.buffer);
        up(self.mm(a, m), Rate::ONE + buffer)
    }

    /// The pool's target `T = Σ T_m` over its positions (0 when flat).
    fn target(&self, a: u32, pool: RefPool) -> i128 {
        self.held(a, pool)
            .into_iter()
            .map(|m| self.target_of(a, m))
            .sum()
    }

    fn below_mm(&self, a: u32, pool: RefPool) -> bool {
        self.equity(a, pool) < self.maintenance(a, pool)
    }

    /// Below MM and holding a position in a liquidating market that is not halted: the
    /// pools the cascade liquidates ("Halted markets").
    fn liquidatable(&self, a: u32, pool: RefPool) -> bool {
        self.held(a, pool)
            .into_iter()
            .any(|m| self.can_liquidate(m))
            && self.below_mm(a, pool)
    }

    /// The whole cascade of one command: rounds, fund solvency, one unwind.
    pub(super) fn resolve_liquidations(&mut self) {
        let mut unwound = false;
        loop {
            while self.round() {}
            if self.fund_solvency() {
                continue;
            }
            if !unwound {
                unwound = true;
                if self.unwind() {
                    continue;
                }
            }
            return;
        }
    }

    /// The deficit step for a pool with no position and negative money: the fund pays
    /// up to its capacity, the rest is bad debt socialised on the fee ledger.
    fn write_off(&mut self, a: u32, pool: RefPool, fund: Option<usize>) {
        let deficit = -self.money(a, pool);
        let capacity = (self.fund_equity_of(fund, self.cash(fund), &self.fund)
            - self.fund_haircut_of(fund, &self.fund))
        .max(0);
        let paid = deficit.min(capacity);
        if paid > 0 {
            *self.money_mut(a, pool) += paid;
            *self.cash_mut(fund) -= paid;
            self.fund_event(fund, -paid);
        }
        let z = deficit - paid;
        if z > 0 {
            *self.money_mut(a, pool) += z;
            let socialised = z.min(self.fee_ledger);
            self.fee_ledger -= socialised;
            self.bad_debt += z - socialised;
            self.emit(EventKind::BadDebt {
                account: AccountId(a),
                market: match pool {
                    RefPool::Cross => None,
                    RefPool::Isolated(m) => Some(MarketId(m as u32)),
                },
                amount: z,
                socialised,
            });
        }
    }

    /// One round: first every pool with no position and negative money gets the deficit
    /// step (ascending account, cross before isolated); then scan every pool, sort the
    /// ones below MM, liquidate each that still is when its turn comes. Returns whether
    /// the round did anything.
    fn round(&mut self) -> bool {
        self.adl_cache.clear();
        let mut wrote_off = false;
        for a in 0..self.pos.len() as u32 {
            for (pool, _) in self.pools_of(a) {
                if self.money(a, pool) < 0 && self.held(a, pool).is_empty() {
                    // Deficits outside a waterfall: the shared fund.
                    self.write_off(a, pool, None);
                    wrote_off = true;
                }
            }
        }
        let mut found = Vec::new();
        for a in 0..self.pos.len() as u32 {
            for (pool, rank) in self.pools_of(a) {
                if self.liquidatable(a, pool) {
                    let (e, mm) = (self.equity(a, pool), self.maintenance(a, pool));
                    found.push((e.clamp(-(1 << 64), 1 << 64), mm.min(1 << 62), a, rank, pool));
                }
            }
        }
        if found.is_empty() {
            return wrote_off;
        }
        // Worst equity / MM first, by cross-multiplication (equities clamped to ±2^64, MM
        // to 2^62),
        // then account id, then cross before isolated by market id.
        found.sort_by(|x, y| {
            (x.0 * y.1)
                .cmp(&(y.0 * x.1))
                .then(x.2.cmp(&y.2))
                .then(x.3.cmp(&y.3))
        });
        for (_, _, a, _, pool) in found {
            if self.liquidatable(a, pool) {
                self.waterfall(a, pool);
            }
        }
        true
    }

    /// Order margin: every pool with resting orders in a liquidating market that is below
    /// initial margin loses all its resting orders (ascending account, cross first).
    pub(super) fn margin_cancels(&mut self) {
        for a in 0..self.pos.len() as u32 {
            for (pool, _) in self.pools_of(a) {
                let has_orders = (0..self.markets.len()).any(|m| {
                    self.in_pool(a, m, pool)
                        && self.liquidation_cfg(m).is_some_and(|c| c.order_margin)
                        && self.markets[m].orders.iter().any(|o| o.account == a)
                });
                let (equity, im) = self.pool_margin(a, pool, None);
                if has_orders && equity < im {
                    self.cancel_pool(a, pool, CancelReason::Margin);
                }
            }
        }
    }

    /// Cancels every resting order of a pool's markets, oldest first.
    ///
    /// AMBIGUITY: "every resting order of the pool's markets is cancelled" is read as
    /// including orders in halted markets (cancelling is not liquidating, and `Cancel`
    /// works while halted).
    fn cancel_pool(&mut self, a: u32, pool: RefPool, reason: CancelReason) {
        loop {
            let next = (0..self.markets.len())
                .filter(|&m| self.in_pool(a, m, pool))
                .flat_map(|m| {
                    self.markets[m]
                        .orders
                        .iter()
                        .enumerate()
                        .filter(|(_, o)| o.account == a)
                        .map(move |(i, o)| (o.id, m, i))
                })
                .min();
            let Some((_, m, i)) = next else { break };
            self.cancel_at(m, i, reason);
        }
    }

    pub(super) fn fund_event(&mut self, fund: Option<usize>, change: i128) {
        self.emit(EventKind::InsuranceFund {
            fund: fund.map(|m| MarketId(m as u32)),
            balance: self.cash(fund),
            change,
            equity: self.fund_equity_of(fund, self.cash(fund), &self.fund),
        });
    }

    /// The waterfall for one pool ("The waterfall for one pool", steps 1 to 6).
    fn waterfall(&mut self, a: u32, pool: RefPool) {
        let account = AccountId(a);
        let market = match pool {
            RefPool::Cross => None,
            RefPool::Isolated(m) => Some(MarketId(m as u32)),
        };
        // 1. Margin call, cancels, start.
        let (equity, mm) = (self.equity(a, pool), self.maintenance(a, pool));
        self.emit(EventKind::MarginCall {
            account,
            market,
            equity,
            maintenance: mm,
        });
        self.cancel_pool(a, pool, CancelReason::Liquidation);
        let account = AccountId(a);
        let markets: Vec<bool> = (0..self.markets.len())
            .map(|m| self.in_pool(a, m, pool))
            .collect();
        self.cancel_conditionals(CancelReason::Liquidation, |c| {
            c.account == account && markets[c.market.0 as usize]
        });
        self.emit(EventKind::LiquidationStarted {
            account,
            market,
            equity,
            maintenance: mm,
        });
        // 2. Depth = min((MM − E) / MM, 1) rounded up to 2^-32; 1 when E ≤ 0.
        let depth = if equity <= 0 {
            Rate::ONE
        } else {
            Rate::from_bits(ceil_div((mm - equity) << 32, mm).min(1 << 32) as i64)
        };
        // 3. Markets by MM at this moment, largest first, ties by market id; halted
        //    markets and markets without liquidation are left alone.
        let mut order: Vec<(i128, usize)> = self
            .held(a, pool)
            .into_iter()
            .filter(|&m| self.can_liquidate(m))
            .map(|m| (self.mm(a, m), m))
            .collect();
        order.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
        // The pool's fee and deficit go to / come from the fund of its first market.
        let pool_fund = order.first().and_then(|&(_, m)| self.fund_id(m));
        let (mut fee_due, mut whole_sent) = (0i128, false);
        for (_, m) in order {
            if !self.below_mm(a, pool) {
                break;
            }
            let cfg = self.liquidation_cfg(m).expect("liquidating");
            let value = self.liquidate_market(a, pool, m, &cfg, depth, &mut whole_sent);
            let scale = self.markets[m].scale;
            fee_due += up(up(up(value, cfg.fee_rate), scale), Rate::ONE + depth);
        }
        // 4. Fee, capped at what the pool holds above its target (all of it after a
        //    whole-position order).
        let room = (self.equity(a, pool) - self.target(a, pool)).max(0);
        let fee = if whole_sent { room } else { fee_due.min(room) };
        if fee > 0 {
            *self.money_mut(a, pool) -= fee;
            *self.cash_mut(pool_fund) += fee;
            self.fund_event(pool_fund, fee);
        }
        // 5. Deficit of a pool left without any position: the fund's capacity, then
        //    bad debt.
        let equity = self.equity(a, pool);
        if equity < 0 && self.held(a, pool).is_empty() {
            self.write_off(a, pool, pool_fund);
        }
        // 6. Done.
        let equity = self.equity(a, pool);
        self.emit(EventKind::LiquidationFinished {
            account,
            market,
            fee: sat(fee),
            equity,
        });
    }

    /// Step 3 for one market while the pool is below MM: partials, the whole-position
    /// order, backstop and ADL. Returns the value closed `V`.
    ///
    /// AMBIGUITY: "For each, while the pool is below MM" is read as covering every
    /// sub-step, the backstop and ADL included: a whole-position order that restores the
    /// pool with lots left over ends the market's steps and the rest stays open.
    fn liquidate_market(
        &mut self,
        a: u32,
        pool: RefPool,
        m: usize,
        cfg: &LiquidationConfig,
        depth: Rate,
        whole_sent: &mut bool,
    ) -> i128 {
        let tick = self.markets[m].cfg.tick;
        let active = |e: &RefEngine| e.pos[a as usize][m].size != 0 && e.below_mm(a, pool);
        let mut value = 0;
        // The previous order: (qty, limit, lots traded).
        let mut previous: Option<(i64, i64, i64)> = None;
        for _ in 0..MAX_PARTIALS {
            if !active(self) || previous.is_some_and(|p| p.2 == 0) {
                break;
            }
            let (q, limit) = self.partial(a, pool, m, cfg, depth);
            let (v, lots) = self.liquidation_order(a, m, q, limit).unwrap_or((0, 0));
            value += v;
            previous = Some((q, limit, lots));
        }
        if active(self) {
            let size = self.pos[a as usize][m].size;
            let bk = bankruptcy(self.equity(a, pool), size, self.markets[m].mark);
            let (u, limit) = (size.abs(), on_tick(bk, tick, size > 0));
            if previous != Some((u, limit, 0)) {
                // AMBIGUITY: "a whole-position order was sent" is read as "its
                // LiquidationOrder was emitted": a limit outside the band sends nothing,
                // and a skipped repeat is not sent.
                if let Some((v, _)) = self.liquidation_order(a, m, u, limit) {
                    value += v;
                    *whole_sent = true;
                }
            }
        }
        if active(self) {
            value += self.backstop_and_adl(a, pool, m);
        }
        value
    }

    /// Size and limit of a partial order, from the state at this moment.
    fn partial(
        &self,
        a: u32,
        pool: RefPool,
        m: usize,
        cfg: &LiquidationConfig,
        depth: Rate,
    ) -> (i64, i64) {
        let e = self.equity(a, pool);
        let size = self.pos[a as usize][m].size;
        let u = i128::from(size.abs());
        let mark = self.markets[m].mark;
        let bk = bankruptcy(e, size, mark);
        let (t, tm) = (self.target(a, pool), self.target_of(a, m));
        let band = up(band(mark, cfg.band_bps), Rate::ONE + depth);
        let band = band.min(i128::from(i64::MAX / 4)) as i64;
        let tick = self.markets[m].cfg.tick;
        let limit = if size > 0 {
            on_tick(mark - band, tick, true).max(on_tick(bk, tick, true))
        } else {
            on_tick(mark + band, tick, false).min(on_tick(bk, tick, false))
        };
        // Brute force over q: the slippage of the first q lots against the visible
        // opposite orders crossing the limit, lots beyond them at the limit.
        let lots = self.crossing_lots(m, size, limit);
        let slip = |p: i64| {
            let d = i128::from(mark) - i128::from(p);
            if size > 0 {
                d
            } else {
                -d
            }
        };
        let mut q = u;
        if e > 0 {
            let mut slipped = 0i128;
            let mut it = lots
                .iter()
                .flat_map(|&(p, n)| std::iter::repeat_n(p, n as usize));
            for k in 1..=u {
                slipped += slip(it.next().unwrap_or(limit));
                if u * (e - slipped) + k * tm >= u * t {
                    q = k;
                    break;
                }
            }
        }
        if (u - q) * i128::from(mark) < i128::from(cfg.min_notional) {
            q = u;
        }
        (q as i64, limit)
    }

    /// `(price, lots)` of the resting orders a liquidation order closing `size` at
    /// `limit` would meet, in price-time priority.
    fn crossing_lots(&self, m: usize, size: i64, limit: i64) -> Vec<(i64, i64)> {
        let maker = if size > 0 { Side::Buy } else { Side::Sell };
        let mut orders: Vec<_> = self.markets[m]
            .orders
            .iter()
            .filter(|o| o.side == maker)
            .filter(|o| {
                if size > 0 {
                    o.price >= limit
                } else {
                    o.price <= limit
                }
            })
            .map(|o| (super::priority(maker, o.price), o.time, o.price, o.qty))
            .collect();
        orders.sort_unstable();
        orders.into_iter().map(|o| (o.2, o.3)).collect()
    }

    /// An IOC liquidation order reducing the position; `None` (nothing sent) for a limit
    /// outside the band, else `Some((Σ price × lots, lots))`.
    fn liquidation_order(&mut self, a: u32, m: usize, q: i64, limit: i64) -> Option<(i128, i64)> {
        let cfg = self.markets[m].cfg;
        if limit < cfg.min_price.0 || limit > cfg.max_price.0 {
            return None;
        }
        let side = if self.pos[a as usize][m].size > 0 {
            Side::Sell
        } else {
            Side::Buy
        };
        let id = self.next_id;
        self.next_id += 1;
        self.emit(EventKind::LiquidationOrder {
            order_id: OrderId(id),
            account: AccountId(a),
            market: MarketId(m as u32),
            side,
            price: Price(limit),
            qty: Qty(q),
        });
        self.taker = Taker::Liquidation;
        self.taken = (0, 0, 0);
        self.take(m, id, a, side, limit, StpMode::CancelResting, q);
        self.taker = Taker::Account;
        Some((self.taken.0, self.taken.1))
    }

    /// The fund's `(cash, positions)` after taking over `c` lots on `side` at `bk`,
    /// booked at the mark: cash moves by the realised PnL plus the edge.
    fn after_takeover(&self, m: usize, side: Side, c: i64, bk: i64) -> (i128, Vec<(i64, i128)>) {
        let mark = self.markets[m].mark;
        let (size, cost) = self.fund[m];
        let (size, cost, realised) = book(size, cost, dir(side) * c, mark);
        let edge = i128::from(dir(side)) * i128::from(c) * i128::from(mark - bk);
        let mut fund = self.fund.clone();
        fund[m] = (size, cost);
        (self.cash(self.fund_id(m)) + realised + edge, fund)
    }

    /// The fund takes over `c` lots of the account's position at `bk`: the account's
    /// `PositionChanged`, `Backstop`, `InsuranceFund`.
    fn fund_takes(&mut self, a: u32, m: usize, close: Side, c: i64, bk: i64) {
        self.trade(m, a, close, bk, c, 0);
        let (cash, fund) = self.after_takeover(m, close.opposite(), c, bk);
        let id = self.fund_id(m);
        let change = cash - self.cash(id);
        *self.cash_mut(id) = cash;
        self.fund = fund;
        self.emit(EventKind::Backstop {
            account: AccountId(a),
            market: MarketId(m as u32),
            qty: Qty(c),
            price: Price(bk),
        });
        self.fund_event(id, change);
    }

    /// Backstop, then ADL, then the fund for what nobody else holds; returns `u × bk`.
    fn backstop_and_adl(&mut self, a: u32, pool: RefPool, m: usize) -> i128 {
        let size = self.pos[a as usize][m].size;
        let u = size.abs();
        let bk = bankruptcy(self.equity(a, pool), size, self.markets[m].mark);
        let close = if size > 0 { Side::Sell } else { Side::Buy };
        // The largest c ≤ u with E_f(c) − H(c) ≥ 0, by trying every c from u down.
        let c = (0..=u)
            .rev()
            .find(|&c| {
                let (cash, fund) = self.after_takeover(m, close.opposite(), c, bk);
                let id = self.fund_id(m);
                self.fund_equity_of(id, cash, &fund) - self.fund_haircut_of(id, &fund) >= 0
            })
            .unwrap_or(0);
        if c > 0 {
            self.fund_takes(a, m, close, c, bk);
        }
        if c < u {
            let done = self.adl(Bankrupt::Account(a), m, close, u - c, bk, true);
            if done < u - c {
                // Only the fund holds the rest: it takes it whatever its capacity.
                // AMBIGUITY: with the same events as a backstop (`PositionChanged`,
                // `Backstop`, `InsuranceFund`); the spec names no event for this.
                self.fund_takes(a, m, close, u - c - done, bk);
            }
        }
        i128::from(u) * i128::from(bk)
    }

    /// ADL rank of account `b`'s position in `m`, in I32F32 bits: `PnL% × leverage` if
    /// profitable, else `PnL% ÷ leverage`, every step truncated toward zero and
    /// saturating. Returns `(rank, profitable)`.
    ///
    /// AMBIGUITY: "truncated" read as toward zero (also for negative PnL%); "profitable"
    /// as `upnl > 0` (`upnl = 0` ranks 0 either way); a leverage that truncates to 0
    /// divides a loss to `i64::MIN` (saturating). `|cost|` is at least 1 lot × 1 atom
    /// for an open position, so PnL% never divides by zero.
    fn adl_rank(&self, b: u32, m: usize) -> (i64, bool) {
        let p = self.pos[b as usize][m];
        let mark = i128::from(self.markets[m].mark);
        let upnl = i128::from(p.size) * mark - p.cost;
        let notional = i128::from(p.size.abs()) * mark;
        let equity = self.equity(b, self.pool(b, m));
        let ratio = |n: i128, d: i128| sat(n.saturating_mul(1 << 32) / d);
        let pnl = ratio(upnl, p.cost.abs().max(1));
        let lev = if equity <= 0 {
            i64::MAX
        } else {
            ratio(notional, equity)
        };
        let rank = if upnl > 0 {
            sat(i128::from(pnl) * i128::from(lev) / (1 << 32))
        } else if lev == 0 {
            if pnl < 0 {
                i64::MIN
            } else {
                0
            }
        } else {
            sat((i128::from(pnl) << 32) / i128::from(lev))
        };
        (rank, upnl > 0)
    }

    /// A fresh ranking of the accounts holding the side opposite to `close` in `m`.
    fn rank(&self, m: usize, close: Side) -> AdlRanking {
        let sign = dir(close);
        let mut list: Vec<(i64, u32, bool, i64)> = (0..self.pos.len() as u32)
            .filter(|&b| self.pos[b as usize][m].size.signum() == sign)
            .map(|b| {
                let (rank, _) = self.adl_rank(b, m);
                (rank, b, rank > 0, self.pos[b as usize][m].size.abs())
            })
            .collect();
        list.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
        AdlRanking {
            m,
            close: Some(close),
            list,
            skip: 0,
        }
    }

    /// Lots account `b` can give against the bankrupt side closing with `close` now.
    fn live(&self, who: Bankrupt, b: u32, m: usize, close: Side) -> i64 {
        let s = self.pos[b as usize][m].size;
        if who != Bankrupt::Account(b) && s.signum() == dir(close) {
            s.abs()
        } else {
            0
        }
    }

    /// ADL of up to `need` lots closing with `close` at `bk`, by the market's mode;
    /// returns the lots placed. `cached`: reuse the round's ranking for (market, side)
    /// (computed here at the round's first ADL for it), else a fresh one.
    ///
    fn adl(
        &mut self,
        who: Bankrupt,
        m: usize,
        close: Side,
        need: i64,
        bk: i64,
        cached: bool,
    ) -> i64 {
        let mut ranking = if cached {
            match self
                .adl_cache
                .iter()
                .position(|r| r.m == m && r.close == Some(close))
            {
                Some(i) => self.adl_cache.swap_remove(i),
                None => self.rank(m, close),
            }
        } else {
            self.rank(m, close)
        };
        let mut left = need;
        let mode = self.liquidation_cfg(m).map_or(AdlMode::Queue, |c| c.adl);
        if mode == AdlMode::ProRata {
            // Weights: sizes when ranked of the positive ranks; largest first, ties in
            // rank order; each share at most what the holder has now.
            let mut weights: Vec<(i64, usize, u32)> = ranking
                .list
                .iter()
                .enumerate()
                .filter(|(_, r)| r.2)
                .map(|(i, r)| (r.3, i, r.1))
                .collect();
            weights.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
            let w: i128 = weights.iter().map(|x| i128::from(x.0)).sum();
            if w > 0 {
                let total = i128::from(need).min(w);
                for (size, _, b) in weights {
                    let share = (total * i128::from(size) / w) as i64;
                    let q = share.min(self.live(who, b, m, close)).min(left);
                    if q > 0 {
                        self.adl_fill(who, b, m, close, q, bk);
                        left -= q;
                    }
                }
            }
        }
        // Queue: a holder at the front that gives all it holds (or holds nothing) is
        // passed over for the rest of the round.
        let mut k = ranking.skip;
        while left > 0 && k < ranking.list.len() {
            let b = ranking.list[k].1;
            let have = self.live(who, b, m, close);
            let q = have.min(left);
            if q > 0 {
                self.adl_fill(who, b, m, close, q, bk);
                left -= q;
            }
            if q == have && k == ranking.skip {
                ranking.skip += 1;
            }
            k += 1;
        }
        if cached {
            self.adl_cache.push(ranking);
        }
        need - left
    }

    /// One ADL fill: the bankrupt side's `PositionChanged` (accounts only), the
    /// counterparty's, then `AdlFill`; both at `bk`, no fee. The fund's cash takes its
    /// realised PnL (its `InsuranceFund` is the caller's).
    fn adl_fill(&mut self, who: Bankrupt, b: u32, m: usize, close: Side, q: i64, bk: i64) {
        let account = match who {
            Bankrupt::Account(a) => {
                self.trade(m, a, close, bk, q, 0);
                AccountId(a)
            }
            Bankrupt::Fund => {
                let (size, cost) = self.fund[m];
                let (size, cost, realised) = book(size, cost, dir(close) * q, bk);
                self.fund[m] = (size, cost);
                *self.cash_mut(self.fund_id(m)) += realised;
                self.taken.2 += realised;
                AccountId::FUND
            }
        };
        self.trade(m, b, close.opposite(), bk, q, 0);
        self.emit(EventKind::AdlFill {
            market: MarketId(m as u32),
            account,
            counterparty: AccountId(b),
            qty: Qty(q),
            price: Price(bk),
        });
    }

    /// Fund solvency: while its equity is negative, its positions in liquidating markets
    /// that are not halted, ascending id, are deleveraged whole at its bankruptcy price
    /// (fresh ranking each). Returns whether anything traded.
    ///
    /// AMBIGUITY: one pass over the markets, each checked against `E_f < 0` when its turn
    /// comes; a market whose holders could not take everything is not revisited (a
    /// second pass would find the same holders empty). `InsuranceFund` follows a
    /// market's fills only if it had any.
    fn fund_solvency(&mut self) -> bool {
        let mut traded = false;
        for m in 0..self.markets.len() {
            let size = self.fund[m].0;
            let id = self.fund_id(m);
            let equity = self.fund_equity_of(id, self.cash(id), &self.fund);
            if equity >= 0 || size == 0 || !self.can_liquidate(m) {
                continue;
            }
            let bk = bankruptcy(equity, size, self.markets[m].mark);
            let close = if size > 0 { Side::Sell } else { Side::Buy };
            self.taken = (0, 0, 0);
            let done = self.adl(Bankrupt::Fund, m, close, size.abs(), bk, false);
            if done > 0 {
                traded = true;
                let change = self.taken.2;
                self.fund_event(id, change);
            }
        }
        traded
    }

    /// The fund's side of one unwind fill: its position trades at the fill price, its
    /// cash takes the realised PnL less the taker fee.
    pub(super) fn fund_fill(&mut self, m: usize, side: Side, price: i64, q: i64, fee: i64) {
        let (size, cost) = self.fund[m];
        let (size, cost, realised) = book(size, cost, dir(side) * q, price);
        self.fund[m] = (size, cost);
        let change = realised - i128::from(fee);
        *self.cash_mut(self.fund_id(m)) += change;
        self.fee_ledger += i128::from(fee);
        self.taken.2 += change;
    }

    /// The fund's unwind orders, once per command. Returns whether anything traded.
    fn unwind(&mut self) -> bool {
        let mut traded = false;
        for m in 0..self.markets.len() {
            let Some(cfg) = self.liquidation_cfg(m) else {
                continue;
            };
            let size = self.fund[m].0;
            if size == 0 || self.markets[m].halted || cfg.unwind_rate <= Rate::ZERO {
                continue;
            }
            let mk = &self.markets[m];
            let (mark, tick) = (mk.mark, mk.cfg.tick);
            let band = band(mark, cfg.band_bps).min(i128::from(i64::MAX / 4)) as i64;
            let side = if size > 0 { Side::Sell } else { Side::Buy };
            let limit = match side {
                Side::Sell => on_tick(mark - band, tick, true),
                Side::Buy => on_tick(mark + band, tick, false),
            }
            .clamp(mk.cfg.min_price.0, mk.cfg.max_price.0);
            let visible: i64 = mk
                .orders
                .iter()
                .filter(|o| o.side == side.opposite() && side.crosses(Price(limit), Price(o.price)))
                .map(|o| o.qty)
                .sum();
            if visible == 0 {
                continue;
            }
            let share = down(i128::from(visible), cfg.unwind_rate).max(1);
            let q = share.min(i128::from(size.abs())) as i64;
            let id = self.next_id;
            self.next_id += 1;
            self.emit(EventKind::FundOrder {
                order_id: OrderId(id),
                market: MarketId(m as u32),
                side,
                price: Price(limit),
                qty: Qty(q),
            });
            self.taker = Taker::Fund;
            self.taken = (0, 0, 0);
            self.take(
                m,
                id,
                AccountId::FUND.0,
                side,
                limit,
                StpMode::CancelResting,
                q,
            );
            self.taker = Taker::Account;
            if self.taken.1 > 0 {
                traded = true;
                let change = self.taken.2;
                self.fund_event(self.fund_id(m), change);
            }
        }
        traded
    }
}
