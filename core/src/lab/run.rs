//! The lab runner: an index path applied step by step to a private copy of the engine,
//! with the mark formed by the scenario's rule and the book refilled by its maker.
//!
//! Invariants: the engine passed in is only read (it is cloned once); each step applies
//! at most `max_rounds` rounds of mark updates, each inside its market's oracle guard
//! and price band (a larger move is clamped; the scenario market's step is flagged
//! `clamped`); the refill maker holds at most
//! one quote per profile level and driven market, so a run adds at most `2 × levels`
//! orders per driven market whatever its length.

use super::adl::{allocate, Winner};
use super::report::{AdlOutcome, LabReport, MarketTally, StepReport, ADL_POLICIES};
use super::scenario::{
    median3, Arbitrage, MarkRule, PreLiquidation, Refill, Scenario, ScenarioError,
};
use super::sink::StepSink;
use crate::command::{Command, CommandKind, NewOrder, OrderType, StpMode};
use crate::engine::Engine;
use crate::market::MarketConfig;
use crate::risk::Rate;
use crate::types::{AccountId, ClientOrderId, MarketId, OrderId, Price, Qty, Side};

/// Client ids of the refill quotes: profile level `j` (bids first, then asks) of driven
/// market `k` is `BASE + k·2^20 + j`; the lab's IOC orders count down from `BASE − 1`.
const REFILL_CLIENT_BASE: u64 = 0x4C41_0000_0000;

/// One market the run drives.
struct Driven {
    m: MarketId,
    cfg: MarketConfig,
    /// The oracle guard, bps.
    guard: u32,
    /// Index at the start, now and at the previous step.
    start: i64,
    index: i64,
    prev_index: i64,
    /// The starting book's shape: `(side, offset from the start mark, lots)`.
    profile: Vec<(Side, i64, i64)>,
}

/// Runs `s` on a copy of `engine` and reports every step.
pub fn run(engine: &Engine, s: &Scenario) -> Result<LabReport, ScenarioError> {
    s.validate()?;
    let markets = std::iter::once(s.market).chain(s.also.iter().copied());
    let driven = markets
        .map(|m| driven(engine, m, s.refill))
        .collect::<Result<Vec<_>, _>>()?;
    let mut lab = Lab::new(engine, driven);
    if let Some(r) = s.refill {
        lab.credit(r.account, r.deposit)
            .map_err(|()| ScenarioError::RefillAccount)?;
        lab.own_accounts.push((r.account, r.deposit.max(0)));
    }
    if let Some(a) = s.arbitrage {
        lab.credit(a.account, a.deposit)
            .map_err(|()| ScenarioError::ArbitrageAccount)?;
        lab.own_accounts.push((a.account, a.deposit.max(0)));
    }
    let mut report = LabReport {
        start_mark: lab.driven[0].index,
        fund_start: lab.fund_equity(),
        steps: Vec::with_capacity(s.index.len()),
        ..LabReport::default()
    };
    let band = (lab.driven[0].cfg.min_price.0, lab.driven[0].cfg.max_price.0);
    for &index in s.index {
        // An index outside the market's price band is read at the band's edge.
        lab.driven[0].index = index.0.clamp(band.0, band.1);
        let step = lab.step(s);
        report.steps.push(step);
        for d in &mut lab.driven {
            d.prev_index = d.index;
        }
    }
    report.markets = lab
        .driven
        .iter()
        .map(|d| lab.tallies[d.m.0 as usize])
        .collect();
    report.liquidated = std::mem::take(&mut lab.liquidated);
    Ok(report)
}

/// A driven market's state at the start.
fn driven(engine: &Engine, m: MarketId, refill: Option<Refill>) -> Result<Driven, ScenarioError> {
    let start = engine
        .market_risk(m)
        .map(|r| r.mark)
        .filter(|&p| p > 0)
        .ok_or(ScenarioError::NoMark)?;
    let cfg = *engine.market_config(m).ok_or(ScenarioError::NoMark)?;
    let levels = refill.map_or(0, |r| r.levels as usize);
    let mut profile = Vec::with_capacity(2 * levels);
    for side in [Side::Buy, Side::Sell] {
        engine.depth(m, side, levels, |p, q, _| {
            profile.push((side, p.0 - start, q.0));
        });
    }
    Ok(Driven {
        m,
        cfg,
        guard: cfg.risk.map_or(0, |r| r.max_mark_move_bps),
        start,
        index: start,
        prev_index: start,
        profile,
    })
}

/// `want`, or the furthest the oracle guard lets the mark go from `cur` towards it,
/// inside the market's price band (a guard of 0 allows no move, as in the engine).
fn clamp_move(cur: i64, want: i64, guard_bps: u32, cfg: &MarketConfig) -> i64 {
    let want = want.clamp(cfg.min_price.0, cfg.max_price.0);
    // The engine refuses |next − cur| × 10^4 > guard × cur: the floor is the largest move.
    let max = (i128::from(cur) * i128::from(guard_bps) / 10_000).min(i128::from(i64::MAX));
    let max = max as i64;
    want.clamp(cur.saturating_sub(max), cur.saturating_add(max))
}

/// The private engine and what the runner tracks across steps.
struct Lab {
    engine: Engine,
    /// The scenario's market first.
    driven: Vec<Driven>,
    seq: u64,
    seq_client: u64,
    /// Last trade per market id (0: none yet).
    last_trades: Vec<i64>,
    /// Totals per market id.
    tallies: Vec<MarketTally>,
    liquidated: Vec<AccountId>,
    seen: Vec<bool>,
    /// Taker fees of the last pre-liquidation order.
    taker_fees: i64,
    /// The command being applied is a pre-liquidation order.
    pre_order: bool,
    /// The refill maker and the arbitrageur (their money is not the market's backing).
    own_accounts: Vec<(AccountId, i64)>,
}

impl Lab {
    fn new(engine: &Engine, driven: Vec<Driven>) -> Lab {
        let n = engine.market_count();
        let mut tallies = vec![MarketTally::default(); n];
        for d in &driven {
            tallies[d.m.0 as usize] = MarketTally {
                market: d.m,
                start_mark: d.index,
                mark_low: d.index,
                mark_high: d.index,
                ..MarketTally::default()
            };
        }
        Lab {
            engine: engine.clone(),
            driven,
            seq: 0,
            seq_client: 0,
            last_trades: vec![0; n],
            tallies,
            liquidated: Vec::new(),
            seen: vec![false; engine.config().max_accounts as usize],
            taker_fees: 0,
            pre_order: false,
            own_accounts: Vec::new(),
        }
    }

    /// One step: rounds of marks, pre-liquidation, arbitrage, refill, figures.
    fn step(&mut self, s: &Scenario) -> StepReport {
        let mut step = StepReport {
            index: self.driven[0].index,
            ..StepReport::default()
        };
        for _ in 0..s.max_rounds {
            if !self.round(s.rule, &mut step) {
                break;
            }
        }
        if let Some(p) = s.pre_liquidation {
            self.pre_liquidate(p, &mut step);
        }
        for k in 0..self.driven.len() {
            if let Some(a) = s.arbitrage {
                self.arbitrage(k, a, &mut step);
            }
            if let Some(r) = s.refill {
                self.respond(k, r, &mut step);
            }
        }
        self.close_step(&mut step, s.depth_bps);
        step.adl_deficit = step.adl_deficit.max(0);
        if s.compare_adl && step.adl_fills > 0 {
            step.adl_compare = Some(self.compare_adl(&step));
        }
        for d in &self.driven {
            let mark = self.mark_of(d.m);
            let t = &mut self.tallies[d.m.0 as usize];
            (t.mark_low, t.mark_high) = (t.mark_low.min(mark), t.mark_high.max(mark));
        }
        step
    }

    /// One round: every driven market's mark moved to what the rule asks (within its
    /// guard). False if no mark moved.
    fn round(&mut self, rule: MarkRule, step: &mut StepReport) -> bool {
        let mut moved = false;
        for k in 0..self.driven.len() {
            let d = &self.driven[k];
            let (m, cur, want) = (d.m, self.mark_of(d.m), self.mark_for(k, rule));
            let next = clamp_move(cur, want, d.guard, &d.cfg);
            if k == 0 {
                step.clamped |= next != want;
            }
            if next != cur {
                let kind = CommandKind::MarkPrice {
                    market: m,
                    price: Price(next),
                };
                self.apply(kind, step);
                moved = true;
                step.rounds += u32::from(k == 0);
            }
        }
        moved
    }

    fn apply(&mut self, kind: CommandKind, step: &mut StepReport) -> bool {
        self.seq += 1;
        let cmd = Command {
            seq: self.seq,
            ts_ns: 0,
            kind,
        };
        let d = &self.driven[0];
        let mut sink = StepSink {
            m: d.m,
            mark: self.engine.market_risk(d.m).map_or(0, |r| r.mark),
            falling: d.index < d.prev_index,
            step,
            last_trades: &mut self.last_trades,
            tallies: &mut self.tallies,
            rejected: false,
            changed: [(AccountId(u32::MAX), 0); 2],
            pre_order: self.pre_order,
            taker_fees: 0,
            liquidated: &mut self.liquidated,
            seen: &mut self.seen,
        };
        self.engine.apply(&cmd, &mut sink);
        self.taker_fees = sink.taker_fees;
        !sink.rejected
    }

    fn mark_of(&self, m: MarketId) -> i64 {
        self.engine.market_risk(m).map_or(0, |r| r.mark)
    }

    fn fund_equity(&self) -> i128 {
        let m = self.driven[0].m;
        self.engine
            .market_fund(m)
            .unwrap_or_else(|| self.engine.fund())
            .equity
    }

    fn best(&self, m: MarketId, side: Side) -> Option<i64> {
        self.engine.best(m, side).map(|(p, _)| p.0)
    }

    /// The last trade in `m`, else its mark.
    fn own_price(&self, m: MarketId) -> i64 {
        match self.last_trades[m.0 as usize] {
            0 => self.mark_of(m),
            p => p,
        }
    }

    /// The mark the rule asks for in driven market `k` at its index.
    fn mark_for(&self, k: usize, rule: MarkRule) -> i64 {
        let d = &self.driven[k];
        match rule {
            MarkRule::Index => d.index,
            MarkRule::MedianOfThree => {
                let last = match self.last_trades[d.m.0 as usize] {
                    0 => d.index,
                    p => p,
                };
                let mid = match (self.best(d.m, Side::Buy), self.best(d.m, Side::Sell)) {
                    (Some(b), Some(a)) => {
                        let mid = (b + a).div_euclid(2);
                        mid - mid.rem_euclid(d.cfg.tick)
                    }
                    _ => d.index,
                };
                median3(d.index, last, mid)
            }
            MarkRule::AdverseMedian => {
                let median = self.mark_for(k, MarkRule::MedianOfThree);
                if k > 0 {
                    return median; // a market of `also`: its index never moves
                }
                match d.index.cmp(&d.start) {
                    std::cmp::Ordering::Less => median.min(d.index),
                    std::cmp::Ordering::Greater => median.max(d.index),
                    std::cmp::Ordering::Equal => d.index,
                }
            }
        }
    }

    /// Credits `amount` atoms to `account` on the copy (nothing if `amount` ≤ 0).
    fn credit(&mut self, account: AccountId, amount: i64) -> Result<(), ()> {
        let kind = CommandKind::Deposit { account, amount };
        let mut scratch = StepReport::default();
        if amount > 0 && !self.apply(kind, &mut scratch) {
            return Err(());
        }
        Ok(())
    }

    /// A fresh client id for the lab's IOC and market orders.
    fn next_client_id(&mut self) -> ClientOrderId {
        self.seq_client += 1;
        ClientOrderId(REFILL_CLIENT_BASE - self.seq_client)
    }

    /// Sends a reduce-only market order for every pool in the pre-liquidation band of
    /// the scenario's market, accounts in id order, and refunds part of its taker fee.
    fn pre_liquidate(&mut self, p: PreLiquidation, step: &mut StepReport) {
        let m = self.driven[0].m;
        for a in 0..self.engine.config().max_accounts {
            let account = AccountId(a);
            let Some((lots, side)) = self.pre_liquidation_order(p, account, m) else {
                continue;
            };
            let order = NewOrder {
                account,
                market: m,
                client_id: self.next_client_id(),
                side,
                order_type: OrderType::Market,
                qty: Qty(lots),
                stp: StpMode::CancelResting,
                reduce_only: true,
            };
            self.pre_order = true;
            self.apply(CommandKind::NewOrder(order), step);
            self.pre_order = false;
            step.pre_liquidations += 1;
            let refund = (i128::from(self.taker_fees) * i128::from(p.fee_refund_bps)) / 10_000;
            if refund > 0 {
                // A refused credit (collateral limit) only forgoes the refund.
                let _ = self.credit(account, refund as i64);
            }
        }
    }

    /// Lots (and side) a pool in the band closes now: `ceil(|size| × max_close ×
    /// (level − h) / (level − 1))` with `h` = equity / MM; `None` outside the band
    /// (h ≥ level), already liquidatable (h < 1), or with no position.
    fn pre_liquidation_order(
        &self,
        p: PreLiquidation,
        a: AccountId,
        m: MarketId,
    ) -> Option<(i64, Side)> {
        let pos = self.engine.position(a, m).filter(|x| x.size != 0)?;
        let (equity, mm) = self.engine.pool_risk(a, Some(m))?;
        let level = i128::from(p.level_bps);
        // In the band: mm ≤ equity < mm × level / 10^4.
        if mm <= 0 || equity < mm || equity.saturating_mul(10_000) >= mm.saturating_mul(level) {
            return None;
        }
        // close = max_close × (level − h) / (level − 1), all in bps of MM:
        // (level·mm − 10^4·equity) / ((level − 10^4)·mm).
        let gap = level
            .checked_mul(mm)?
            .checked_sub(equity.checked_mul(10_000)?)?;
        let num = gap.checked_mul(i128::from(p.max_close_bps))?;
        let den = (10_000 * (level - 10_000)).checked_mul(mm)?;
        let size = i128::from(pos.size.unsigned_abs());
        let lots = size
            .checked_mul(num)?
            .saturating_add(den - 1)
            .div_euclid(den)
            .clamp(0, size) as i64;
        let side = if pos.size > 0 { Side::Sell } else { Side::Buy };
        (lots > 0).then_some((lots, side))
    }

    /// Takes bids above the index and asks below it in driven market `k`, up to the
    /// capacity each way, with IOC orders limited at the index.
    fn arbitrage(&mut self, k: usize, a: Arbitrage, step: &mut StepReport) {
        let (m, cfg, index) = (self.driven[k].m, self.driven[k].cfg, self.driven[k].index);
        let t = cfg.tick;
        for side in [Side::Sell, Side::Buy] {
            // Sell down to the index rounded up to a tick; buy up to it rounded down.
            let limit = match side {
                Side::Sell => index + (t - index.rem_euclid(t)) % t,
                Side::Buy => index - index.rem_euclid(t),
            };
            let stale = match side {
                Side::Sell => self.best(m, Side::Buy).is_some_and(|b| b > limit),
                Side::Buy => self.best(m, Side::Sell).is_some_and(|x| x < limit),
            };
            if !stale || a.lots_per_step <= 0 || !cfg.admits_price(Price(limit)) {
                continue;
            }
            let order = NewOrder {
                account: a.account,
                market: m,
                client_id: self.next_client_id(),
                side,
                order_type: OrderType::Ioc(Price(limit)),
                qty: Qty(a.lots_per_step.min(cfg.max_qty.0)),
                stp: StpMode::CancelResting,
                reduce_only: false,
            };
            self.apply(CommandKind::NewOrder(order), step);
        }
    }

    /// The refill's response in driven market `k`: pull in a fast step, else refill
    /// around the anchor between the last trade and the index.
    fn respond(&mut self, k: usize, r: Refill, step: &mut StepReport) {
        let d = &self.driven[k];
        let moved = i128::from((d.index - d.prev_index).abs()) * 10_000;
        if r.pull_bps > 0 && moved > i128::from(r.pull_bps) * i128::from(d.prev_index) {
            self.pull(k, r, step);
        } else {
            let own = self.own_price(d.m);
            let w = i128::from(r.index_weight_bps.min(10_000));
            let anchor = own + (i128::from(d.index - own) * w).div_euclid(10_000) as i64;
            self.refill(k, r, anchor, step);
        }
    }

    /// Client id of the quote for profile level `j` of driven market `k`.
    fn client_id(k: usize, j: usize) -> ClientOrderId {
        ClientOrderId(REFILL_CLIENT_BASE + ((k as u64) << 20) + j as u64)
    }

    /// Cancels every refill quote in driven market `k` (makers pull in a fast market).
    fn pull(&mut self, k: usize, r: Refill, step: &mut StepReport) {
        for j in 0..self.driven[k].profile.len() {
            if let Some(o) = self.engine.order_by_client(r.account, Lab::client_id(k, j)) {
                let cancel = CommandKind::Cancel {
                    account: r.account,
                    order_id: o.id,
                };
                self.apply(cancel, step);
            }
        }
    }

    /// Tops each profile level of driven market `k`, placed around `anchor`, up towards
    /// its starting quantity by `rate_bps` of what is missing (counting whatever else
    /// rests there).
    fn refill(&mut self, k: usize, r: Refill, anchor: i64, step: &mut StepReport) {
        let m = self.driven[k].m;
        for j in 0..self.driven[k].profile.len() {
            let (side, offset, lots) = self.driven[k].profile[j];
            let cid = Lab::client_id(k, j);
            let own = self.engine.order_by_client(r.account, cid);
            let price = self.quote_price(k, side, anchor + offset);
            let target = price.filter(|&p| !self.crosses(m, side, p)).map(|p| {
                let here = self.engine.level_qty(m, side, Price(p)).0;
                let own_here = own.filter(|o| o.price.0 == p).map_or(0, |o| o.qty.0);
                let want = (lots - (here - own_here)).max(0);
                let have = own.map_or(0, |o| o.qty.0);
                let grow =
                    (i128::from(want - have) * i128::from(r.rate_bps)).div_euclid(10_000) as i64;
                (p, if want > have { have + grow } else { want })
            });
            let own = own.map(|o| (o.id, o.price.0, o.qty.0));
            self.requote(
                Quote {
                    account: r.account,
                    market: m,
                    cid,
                    side,
                },
                own,
                target,
                step,
            );
        }
    }

    /// Moves, resizes, places or cancels one refill quote.
    fn requote(
        &mut self,
        q: Quote,
        own: Option<(OrderId, i64, i64)>,
        target: Option<(i64, i64)>,
        step: &mut StepReport,
    ) {
        let account = q.account;
        let kind = match (own, target.filter(|&(_, n)| n > 0)) {
            (Some((id, p0, q0)), Some((p, n))) if (p0, q0) != (p, n) => {
                CommandKind::CancelReplace {
                    account,
                    order_id: id,
                    price: Price(p),
                    qty: Qty(n),
                }
            }
            (Some((id, ..)), None) => CommandKind::Cancel {
                account,
                order_id: id,
            },
            (None, Some((p, n))) => CommandKind::NewOrder(NewOrder {
                account,
                market: q.market,
                client_id: q.cid,
                side: q.side,
                order_type: OrderType::PostOnly(Price(p)),
                qty: Qty(n),
                stp: StpMode::CancelResting,
                reduce_only: false,
            }),
            _ => return,
        };
        self.apply(kind, step);
    }

    /// `price` on tick (bids down, asks up) inside driven market `k`'s band, if it is.
    fn quote_price(&self, k: usize, side: Side, price: i64) -> Option<i64> {
        let cfg = &self.driven[k].cfg;
        let t = cfg.tick;
        let p = match side {
            Side::Buy => price - price.rem_euclid(t),
            Side::Sell => price + (t - price.rem_euclid(t)) % t,
        };
        cfg.admits_price(Price(p)).then_some(p)
    }

    /// True if a quote at `p` on `side` of `m` would trade now.
    fn crosses(&self, m: MarketId, side: Side, p: i64) -> bool {
        match side {
            Side::Buy => self.best(m, Side::Sell).is_some_and(|a| p >= a),
            Side::Sell => self.best(m, Side::Buy).is_some_and(|b| p <= b),
        }
    }

    /// Each policy of [`ADL_POLICIES`] over the step's deficit and the winners now on
    /// the side the step deleveraged in the scenario's market. O(accounts).
    fn compare_adl(&self, step: &StepReport) -> [AdlOutcome; 4] {
        let m = self.driven[0].m;
        let mark = self.mark_of(m);
        let winners: Vec<Winner> = (0..self.engine.config().max_accounts)
            .filter_map(|a| {
                let account = AccountId(a);
                let p = self.engine.position(account, m)?;
                if p.size == 0 || (p.size < 0) != step.adl_winners_short {
                    return None;
                }
                let (equity, _) = self.engine.pool_risk(account, Some(m))?;
                Some(Winner {
                    account,
                    pnl: i128::from(p.size) * i128::from(mark) - p.cost,
                    equity,
                    notional: i128::from(p.size.unsigned_abs()) * i128::from(mark),
                    lots: p.size.abs(),
                })
            })
            .collect();
        ADL_POLICIES.map(|policy| {
            let a = allocate(policy, step.adl_deficit, &winners, mark);
            AdlOutcome {
                taken: a.taken,
                overshoot: a.overshoot,
                uncovered: a.uncovered,
                notional_closed: a.notional_closed,
                accounts: a.takes.len() as u32,
            }
        })
    }

    /// Fills the step's end-of-step figures (the scenario's market).
    fn close_step(&self, step: &mut StepReport, depth_bps: u32) {
        let m = self.driven[0].m;
        let mark = self.mark_of(m);
        step.mark = mark;
        step.last_trade = self.last_trades[m.0 as usize];
        step.best_bid = self.best(m, Side::Buy).unwrap_or(0);
        step.best_ask = self.best(m, Side::Sell).unwrap_or(0);
        let reach =
            (i128::from(mark) * i128::from(depth_bps) / 10_000).min(i128::from(i64::MAX)) as i64;
        let (low, high) = (mark.saturating_sub(reach), mark.saturating_add(reach));
        self.engine.depth(m, Side::Buy, usize::MAX, |p, q, _| {
            if p.0 >= low {
                step.bid_depth += q.0;
            }
        });
        self.engine.depth(m, Side::Sell, usize::MAX, |p, q, _| {
            if p.0 <= high {
                step.ask_depth += q.0;
            }
        });
        step.fund_equity = self.fund_equity();
        if let Some(r) = self.engine.market_risk(m) {
            step.open_interest = r.open_interest;
            // The lab's own accounts hold hypothetical deposits: left out of the backing.
            // Only what the lab credited is left out (up to the cross money still there).
            let lab_money: i128 = self
                .own_accounts
                .iter()
                .filter(|&&(a, _)| {
                    self.engine
                        .position(a, m)
                        .is_some_and(|p| p.size != 0 && !p.isolated)
                })
                .filter_map(|&(a, credited)| {
                    Some(i128::from(credited).min(self.engine.account_risk(a)?.collateral.max(0)))
                })
                .sum();
            let backing = r.backing - lab_money;
            step.leverage = (backing > 0).then(|| {
                let bits = r
                    .oi_notional
                    .checked_mul(1 << 32)
                    .map_or(i128::MAX, |n| n / backing);
                Rate::from_bits(bits.min(i128::from(i64::MAX)) as i64)
            });
        }
    }
}

/// Who quotes what, where.
#[derive(Clone, Copy)]
struct Quote {
    account: AccountId,
    market: MarketId,
    cid: ClientOrderId,
    side: Side,
}
