//! The reference liquidation model: brute force. After every command it scans every
//! account for pools below maintenance margin (no trigger index, no touched-account
//! bookkeeping, no ring), sorts them by the documented order and runs the documented
//! waterfall; rounds repeat until a scan finds nothing. Formulas are written from
//! docs/SEMANTICS.md, not shared with the engine.

use super::{ceil_bits, rate_bits, sat, RefEngine, RefPool};
use cascade_core::risk::{bps, AdlMode, LiquidationConfig, Rate};
use cascade_core::{AccountId, CancelReason, EventKind, MarketId, OrderId, Price, Qty, Side};

/// `x × rate`, rounded up, for `x ≥ 0` or any sign (ceil of the exact product).
fn up(x: i128, r: Rate) -> i128 {
    ceil_bits(x * rate_bits(r))
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

impl RefEngine {
    /// The fund's equity: cash plus each position at its mark minus its cost.
    pub fn fund_equity(&self) -> i128 {
        self.insurance
            + self
                .fund
                .iter()
                .zip(&self.markets)
                .map(|(&(size, cost), mk)| i128::from(size) * i128::from(mk.mark) - cost)
                .sum::<i128>()
    }

    fn liquidation_cfg(&self, m: usize) -> Option<LiquidationConfig> {
        self.risk(m).and_then(|r| r.liquidation)
    }

    /// `(equity, maintenance, holds a position in a liquidating market)` of a pool.
    fn pool_state(&self, a: u32, pool: RefPool) -> (i128, i128, bool) {
        let mut equity = self.money(a, pool);
        let (mut mm, mut held) = (0, false);
        for m in self.leveraged_markets().collect::<Vec<_>>() {
            if self.in_pool(a, m, pool) && self.pos[a as usize][m].size != 0 {
                equity += self.upnl(a, m);
                mm += self.mm(a, m);
                held |= self.liquidation_cfg(m).is_some();
            }
        }
        (equity, mm, held)
    }

    /// Runs liquidation rounds until no pool is below maintenance margin.
    pub(super) fn resolve_liquidations(&mut self) {
        loop {
            self.adl = None;
            let mut found = Vec::new();
            for a in 0..self.pos.len() as u32 {
                let mut pools = vec![(RefPool::Cross, 0u64)];
                for m in 0..self.markets.len() {
                    if self.risk(m).is_some() && self.pos[a as usize][m].isolated {
                        pools.push((RefPool::Isolated(m), 1 + m as u64));
                    }
                }
                for (pool, rank) in pools {
                    let (equity, mm, held) = self.pool_state(a, pool);
                    if held && equity < mm {
                        found.push((equity, mm, a, rank, pool));
                    }
                }
            }
            if found.is_empty() {
                return;
            }
            // Worst equity / MM first (cross-multiplied: MM > 0), then account, then pool.
            found.sort_by(|x, y| {
                (x.0 * y.1)
                    .cmp(&(y.0 * x.1))
                    .then(x.2.cmp(&y.2))
                    .then(x.3.cmp(&y.3))
            });
            for (_, _, a, _, pool) in found {
                self.liquidate_pool(a, pool);
            }
        }
    }

    /// Order margin: every pool with resting orders in a liquidating market that is below
    /// initial margin loses all its resting orders (ascending account, cross first).
    pub(super) fn margin_cancels(&mut self) {
        for a in 0..self.pos.len() as u32 {
            let mut pools = vec![RefPool::Cross];
            pools.extend(
                (0..self.markets.len())
                    .filter(|&m| self.risk(m).is_some() && self.pos[a as usize][m].isolated)
                    .map(RefPool::Isolated),
            );
            for pool in pools {
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

    /// Cancels every resting order of a pool, oldest first.
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

    fn pool_market(pool: RefPool) -> Option<MarketId> {
        match pool {
            RefPool::Cross => None,
            RefPool::Isolated(m) => Some(MarketId(m as u32)),
        }
    }

    fn liquidate_pool(&mut self, a: u32, pool: RefPool) {
        let (equity, mm, held) = self.pool_state(a, pool);
        if !held || equity >= mm {
            return;
        }
        let market = Self::pool_market(pool);
        let account = AccountId(a);
        self.emit(EventKind::MarginCall {
            account,
            market,
            equity,
            maintenance: mm,
        });
        self.cancel_pool(a, pool, CancelReason::Liquidation);
        self.emit(EventKind::LiquidationStarted {
            account,
            market,
            equity,
            maintenance: mm,
        });
        // Depth: min((MM − equity) / MM, 1) in 2^-32 units, rounded up; 1 if equity ≤ 0.
        let depth = if equity <= 0 {
            Rate::ONE
        } else {
            let bits = ((mm - equity) * (1 << 32) + mm - 1).div_euclid(mm);
            Rate::from_bits(bits.min(1 << 32) as i64)
        };
        let mut fee_due = 0i128;
        for m in 0..self.markets.len() {
            let Some(cfg) = self.liquidation_cfg(m) else {
                continue;
            };
            if !self.in_pool(a, m, pool) || self.pos[a as usize][m].size == 0 {
                continue;
            }
            let mut value = 0i128;
            let mut first: Option<(i64, i64, i128)> = None;
            for step in 0..3 {
                let (e, mm, _) = self.pool_state(a, pool);
                let size = self.pos[a as usize][m].size;
                if e >= mm || size == 0 {
                    break;
                }
                let mark = self.markets[m].mark;
                let lots = size.abs();
                // Closing every lot at the bankruptcy price leaves equity in [0, lots).
                let bk = if size > 0 {
                    i128::from(mark) - e.div_euclid(i128::from(lots))
                } else {
                    i128::from(mark) + e.div_euclid(i128::from(lots))
                };
                let bk = bk.clamp(1, i128::from(i64::MAX)) as i64;
                let tick = self.markets[m].cfg.tick;
                let (q, limit) = match step {
                    0 => self.first_order(a, m, &cfg, e, mm, depth, bk),
                    1 => (lots, on_tick(bk, tick, size > 0)),
                    _ => {
                        value += self.take_over(a, m, bk);
                        break;
                    }
                };
                if first == Some((q, limit, 0)) {
                    continue; // the same unfilled order again: skipped
                }
                let traded = self.liquidation_ioc(a, m, q, limit);
                value += traded;
                first = Some((q, limit, traded));
            }
            let scale = self.markets[m].scale;
            fee_due += up(up(up(value, cfg.fee_rate), scale), Rate::ONE + depth);
            let (e, mm, _) = self.pool_state(a, pool);
            if e >= mm {
                break;
            }
        }
        let (e, mm, _) = self.pool_state(a, pool);
        let fee = fee_due.min((e - mm).max(0));
        if fee > 0 {
            *self.money_mut(a, pool) -= fee;
            self.insurance += fee;
            self.emit(EventKind::InsuranceFund {
                balance: self.insurance,
                change: fee,
                equity: self.fund_equity(),
            });
        }
        self.emit(EventKind::LiquidationFinished {
            account,
            market,
            fee: sat(fee),
            equity: e - fee,
        });
    }

    /// Size and limit of the first liquidation order.
    #[allow(clippy::too_many_arguments)]
    fn first_order(
        &self,
        a: u32,
        m: usize,
        cfg: &LiquidationConfig,
        equity: i128,
        mm: i128,
        depth: Rate,
        bk: i64,
    ) -> (i64, i64) {
        let size = self.pos[a as usize][m].size;
        let lots = i128::from(size.abs());
        let mark = self.markets[m].mark;
        let target = up(mm, Rate::ONE + cfg.buffer);
        let target_here = up(self.mm(a, m), Rate::ONE + cfg.buffer);
        let mut q = if equity <= 0 || target - equity >= target_here {
            lots
        } else {
            (lots * (target - equity) + target_here - 1)
                .div_euclid(target_here)
                .clamp(1, lots)
        };
        if (lots - q) * i128::from(mark) < i128::from(cfg.min_notional) {
            q = lots;
        }
        let band = up(
            up(i128::from(mark), bps(i64::from(cfg.band_bps))),
            Rate::ONE + depth,
        ) as i64;
        let tick = self.markets[m].cfg.tick;
        let limit = if size > 0 {
            on_tick(mark - band, tick, true).max(on_tick(bk, tick, true))
        } else {
            on_tick(mark + band, tick, false).min(on_tick(bk, tick, false))
        };
        (q as i64, limit)
    }

    /// An IOC liquidation order through the reference book; returns Σ price × lots.
    fn liquidation_ioc(&mut self, a: u32, m: usize, q: i64, limit: i64) -> i128 {
        let cfg = self.markets[m].cfg;
        if q <= 0 || limit < cfg.min_price.0 || limit > cfg.max_price.0 {
            return 0;
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
        self.liquidating = true;
        self.liquidated_value = 0;
        self.take(
            m,
            id,
            a,
            side,
            limit,
            cascade_core::StpMode::CancelResting,
            q,
        );
        self.liquidating = false;
        self.liquidated_value
    }

    /// The fund's money change for trading `q` lots on `side` booked at the mark when
    /// the counterparty pays `price`: realised PnL on its own position plus the edge.
    fn fund_change(&self, m: usize, side: Side, q: i64, price: i64) -> i128 {
        let mark = self.markets[m].mark;
        let (size, cost) = self.fund[m];
        let dir: i128 = if side == Side::Buy { 1 } else { -1 };
        let mut realised = 0;
        if size != 0 && (size > 0) != (dir > 0) {
            let c = i128::from(q.min(size.abs()));
            let released =
                (cost * c + i128::from(size.abs()) - 1).div_euclid(i128::from(size.abs()));
            realised = -dir * c * i128::from(mark) - released;
        }
        realised + dir * i128::from(q) * i128::from(mark - price)
    }

    fn fund_book(&mut self, m: usize, side: Side, q: i64) {
        let mark = self.markets[m].mark;
        let (size, cost) = self.fund[m];
        let dir: i64 = if side == Side::Buy { 1 } else { -1 };
        let (mut size, mut cost) = (size, cost);
        let mut open = q;
        if size != 0 && size.signum() != dir {
            let c = q.min(size.abs());
            let released = (cost * i128::from(c) + i128::from(size.abs()) - 1)
                .div_euclid(i128::from(size.abs()));
            cost -= released;
            size += dir * c;
            open = q - c;
        }
        cost += i128::from(dir * open) * i128::from(mark);
        size += dir * open;
        self.fund[m] = (size, cost);
    }

    fn fund_takes(&mut self, a: u32, m: usize, close: Side, q: i64, price: i64) {
        self.trade(m, a, close, price, q, 0);
        let change = self.fund_change(m, close.opposite(), q, price);
        self.fund_book(m, close.opposite(), q);
        self.emit(EventKind::Backstop {
            account: AccountId(a),
            market: MarketId(m as u32),
            qty: Qty(q),
            price: Price(price),
        });
        self.insurance += change;
        self.emit(EventKind::InsuranceFund {
            balance: self.insurance,
            change,
            equity: self.fund_equity(),
        });
    }

    /// Backstop then ADL for the whole remaining position; returns lots × bk.
    fn take_over(&mut self, a: u32, m: usize, bk: i64) -> i128 {
        let size = self.pos[a as usize][m].size;
        let lots = size.abs();
        let close = if size > 0 { Side::Sell } else { Side::Buy };
        // Most lots the fund can pay for: tried from the whole position down.
        let covered = (0..=lots)
            .rev()
            .find(|&c| self.insurance + self.fund_change(m, close.opposite(), c, bk) >= 0)
            .unwrap_or(0);
        if covered > 0 {
            self.fund_takes(a, m, close, covered, bk);
        }
        if covered < lots {
            self.deleverage(a, m, close, lots - covered, bk);
        }
        i128::from(lots) * i128::from(bk)
    }

    fn adl_score(&self, b: u32, m: usize) -> Rate {
        let p = self.pos[b as usize][m];
        let mark = i128::from(self.markets[m].mark);
        let upnl = i128::from(p.size) * mark - p.cost;
        let notional = i128::from(p.size.abs()) * mark;
        let (equity, _, _) = self.pool_state(b, self.pool(b, m));
        let ratio = |n: i128, d: i128| {
            if d <= 0 {
                Rate::MAX
            } else {
                Rate::from_bits(
                    (n.saturating_mul(1 << 32) / d).clamp(i64::MIN.into(), i64::MAX.into()) as i64,
                )
            }
        };
        let pnl = ratio(upnl, p.cost.abs().max(1));
        let leverage = ratio(notional, equity);
        if upnl >= 0 {
            pnl.saturating_mul(leverage)
        } else if leverage == Rate::ZERO {
            Rate::MIN
        } else {
            pnl.saturating_div(leverage)
        }
    }

    fn deleverage(&mut self, a: u32, m: usize, close: Side, need: i64, bk: i64) {
        let sign: i64 = if close == Side::Buy { 1 } else { -1 };
        if self.adl != Some((m, close)) {
            let mut ranked: Vec<(Rate, u32, i64)> = (0..self.pos.len() as u32)
                .filter(|&b| self.pos[b as usize][m].size.signum() == sign)
                .map(|b| (self.adl_score(b, m), b, self.pos[b as usize][m].size.abs()))
                .collect();
            ranked.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
            self.adl_list = ranked;
            self.adl = Some((m, close));
            self.adl_skip = 0;
        }
        let can_give = |e: &RefEngine, b: u32| {
            let s = e.pos[b as usize][m].size;
            if b != a && s.signum() == sign {
                s.abs()
            } else {
                0
            }
        };
        let mut left = need;
        let mode = self.liquidation_cfg(m).map_or(AdlMode::Queue, |c| c.adl);
        if mode == AdlMode::ProRata {
            // Weights: the profitable sizes when ranked; largest first, ties in rank order.
            let mut weights: Vec<(i64, usize)> = self
                .adl_list
                .iter()
                .enumerate()
                .filter(|(_, r)| r.0 > 0)
                .map(|(i, r)| (r.2, i))
                .collect();
            weights.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
            let total_weight: i128 = weights.iter().map(|w| i128::from(w.0)).sum();
            if total_weight > 0 {
                let total = i128::from(need).min(total_weight);
                for (w, i) in weights {
                    let share = (total * i128::from(w) / total_weight) as i64;
                    if share == 0 {
                        break;
                    }
                    let b = self.adl_list[i].1;
                    let q = share.min(can_give(self, b)).min(left);
                    if q > 0 {
                        self.adl_fill(a, b, m, close, q, bk);
                        left -= q;
                    }
                }
            }
        }
        let mut k = self.adl_skip;
        while left > 0 && k < self.adl_list.len() {
            let b = self.adl_list[k].1;
            let have = can_give(self, b);
            let q = have.min(left);
            if q > 0 {
                self.adl_fill(a, b, m, close, q, bk);
                left -= q;
            }
            if q == have && k == self.adl_skip {
                self.adl_skip += 1;
            }
            k += 1;
        }
        if left > 0 {
            // Only the fund holds the rest of the other side: at bk if it can pay, else at
            // the price that leaves it at exactly what it can pay.
            let mark = self.markets[m].mark;
            let side = close.opposite();
            let room = (self.fund_change(m, side, left, mark) + self.insurance)
                .div_euclid(i128::from(left))
                .clamp(-i128::from(mark), i128::from(i64::MAX / 2)) as i64;
            let price = match side {
                Side::Buy => bk.min(mark + room).max(1),
                Side::Sell => bk.max(mark - room),
            };
            self.fund_takes(a, m, close, left, price);
        }
    }

    fn adl_fill(&mut self, a: u32, b: u32, m: usize, close: Side, q: i64, bk: i64) {
        self.trade(m, a, close, bk, q, 0);
        self.trade(m, b, close.opposite(), bk, q, 0);
        self.emit(EventKind::AdlFill {
            market: MarketId(m as u32),
            account: AccountId(a),
            counterparty: AccountId(b),
            qty: Qty(q),
            price: Price(bk),
        });
    }
}
