//! The lab runner: an index path applied step by step to a private copy of the engine,
//! with the mark formed by the scenario's rule and the book refilled by its maker.
//!
//! Invariants: the engine passed in is only read (it is cloned once); each step applies
//! at most `max_rounds` mark updates, each inside the market's oracle guard and price
//! band (a larger move is clamped to the guard and flagged); the refill maker holds at
//! most one quote per profile level, so a run adds at most `2 × levels` orders to the
//! book whatever its length.

use super::adl::{allocate, AdlPolicy, Winner};
use super::scenario::{
    median3, Arbitrage, MarkRule, PreLiquidation, Refill, Scenario, ScenarioError,
};
use crate::command::{Command, CommandKind, NewOrder, OrderType, StpMode};
use crate::engine::Engine;
use crate::event::{Event, EventKind, EventSink};
use crate::market::MarketConfig;
use crate::risk::Rate;
use crate::types::{AccountId, ClientOrderId, MarketId, Price, Qty, Side};

/// Client ids of the refill quotes: profile level `j` (bids first, then asks) is
/// `BASE + j`.
const REFILL_CLIENT_BASE: u64 = 0x4C41_0000_0000;

/// The policies the lab compares on every step's ADL deficit.
pub const ADL_POLICIES: [AdlPolicy; 4] = [
    AdlPolicy::Queue,
    AdlPolicy::ProRata,
    AdlPolicy::CappedProRata { cap_bps: 10_000 },
    AdlPolicy::LeverageDraining,
];

/// One policy's allocation of a step's ADL deficit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdlOutcome {
    /// Profit taken (atoms).
    pub taken: i128,
    /// Profit taken beyond the deficit (atoms).
    pub overshoot: i128,
    /// Deficit the winners could not cover (atoms).
    pub uncovered: i128,
    /// Notional closed (atoms).
    pub notional_closed: i128,
    /// Winners touched.
    pub accounts: u32,
}

/// The figures of one step (one index price).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    /// The index of this step.
    pub index: i64,
    /// The mark after the step.
    pub mark: i64,
    /// Mark updates applied in this step (feedback rounds).
    pub rounds: u32,
    /// The oracle guard limited a mark move in this step.
    pub clamped: bool,
    /// Pools liquidated.
    pub liquidations: u32,
    /// Lots traded by liquidation orders (the fund's unwinds excluded).
    pub liquidated_lots: i64,
    /// Σ price × lots of those trades (atoms).
    pub liquidated_notional: i128,
    /// Σ bankruptcy price × lots the insurance fund took over (atoms).
    pub backstop_notional: i128,
    /// Pre-liquidation orders sent.
    pub pre_liquidations: u32,
    /// Lots they traded.
    pub pre_liquidated_lots: i64,
    /// Σ price × lots of their trades (atoms).
    pub pre_liquidated_notional: i128,
    /// Stop and take-profit orders that fired.
    pub stops_triggered: u32,
    /// Auto-deleveraging fills.
    pub adl_fills: u32,
    /// Σ price × lots of the ADL fills (atoms).
    pub adl_notional: i128,
    /// Bad debt written off (atoms).
    pub bad_debt: i128,
    /// Price of the last trade so far (0: none yet).
    pub last_trade: i64,
    /// Best bid after the step (0: none).
    pub best_bid: i64,
    /// Best ask after the step (0: none).
    pub best_ask: i64,
    /// Lots bid within `depth_bps` below the mark.
    pub bid_depth: i64,
    /// Lots offered within `depth_bps` above the mark.
    pub ask_depth: i64,
    /// Equity of the market's insurance fund (atoms).
    pub fund_equity: i128,
    /// Open interest (lots, one side).
    pub open_interest: i64,
    /// Aggregate leverage ratio (open interest notional / backing); `None` if backing ≤ 0.
    pub leverage: Option<Rate>,
    /// The deficit the step's ADL fills covered, at the mark: Σ lots × (bankruptcy
    /// price − mark) on the bankrupt's side, floored at 0 (atoms).
    pub adl_deficit: i128,
    /// With `Scenario::compare_adl`, each of [`ADL_POLICIES`] applied to that deficit
    /// over the winners standing after the step (a counterfactual: the engine's own
    /// mode is what ran).
    pub adl_compare: Option<[AdlOutcome; 4]>,
    /// The last ADL fill of the step was against shorts (a bankrupt long).
    pub adl_winners_short: bool,
}

/// What a whole run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabReport {
    /// Mark before the first step.
    pub start_mark: i64,
    /// Fund equity before the first step.
    pub fund_start: i128,
    /// One entry per index price.
    pub steps: Vec<StepReport>,
}

impl LabReport {
    /// Σ liquidations over the run.
    pub fn liquidations(&self) -> u64 {
        self.steps.iter().map(|s| u64::from(s.liquidations)).sum()
    }

    /// Σ liquidated notional over the run.
    pub fn liquidated_notional(&self) -> i128 {
        self.steps.iter().map(|s| s.liquidated_notional).sum()
    }

    /// Σ backstop notional over the run.
    pub fn backstop_notional(&self) -> i128 {
        self.steps.iter().map(|s| s.backstop_notional).sum()
    }

    /// Σ ADL notional over the run.
    pub fn adl_notional(&self) -> i128 {
        self.steps.iter().map(|s| s.adl_notional).sum()
    }

    /// Σ bad debt over the run.
    pub fn bad_debt(&self) -> i128 {
        self.steps.iter().map(|s| s.bad_debt).sum()
    }

    /// Σ stop orders fired over the run.
    pub fn stops_triggered(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| u64::from(s.stops_triggered))
            .sum()
    }

    /// Most liquidations in one step.
    pub fn peak_liquidations(&self) -> u32 {
        self.steps.iter().map(|s| s.liquidations).max().unwrap_or(0)
    }

    /// Lowest and highest mark over the run (the start included).
    pub fn mark_range(&self) -> (i64, i64) {
        self.steps
            .iter()
            .fold((self.start_mark, self.start_mark), |(lo, hi), s| {
                (lo.min(s.mark), hi.max(s.mark))
            })
    }

    /// Lowest fund equity after any step (the start included).
    pub fn fund_low(&self) -> i128 {
        self.steps
            .iter()
            .map(|s| s.fund_equity)
            .fold(self.fund_start, i128::min)
    }

    /// First step with a liquidation, if any.
    pub fn first_liquidation(&self) -> Option<usize> {
        self.steps.iter().position(|s| s.liquidations > 0)
    }

    /// First step with an ADL fill, if any.
    pub fn first_adl(&self) -> Option<usize> {
        self.steps.iter().position(|s| s.adl_fills > 0)
    }

    /// FNV-1a 64 over every figure of every step, in field order, little-endian: equal
    /// reports hash equal, and any change of behaviour shows.
    pub fn hash(&self) -> u64 {
        let mut h = Fnv::new();
        h.i128(i128::from(self.start_mark));
        h.i128(self.fund_start);
        for s in &self.steps {
            for v in [
                i128::from(s.index),
                i128::from(s.mark),
                i128::from(s.rounds),
                i128::from(s.clamped),
                i128::from(s.liquidations),
                i128::from(s.liquidated_lots),
                s.liquidated_notional,
                s.backstop_notional,
                i128::from(s.pre_liquidations),
                i128::from(s.pre_liquidated_lots),
                s.pre_liquidated_notional,
                i128::from(s.stops_triggered),
                i128::from(s.adl_fills),
                s.adl_notional,
                s.bad_debt,
                i128::from(s.last_trade),
                i128::from(s.best_bid),
                i128::from(s.best_ask),
                i128::from(s.bid_depth),
                i128::from(s.ask_depth),
                s.fund_equity,
                i128::from(s.open_interest),
                s.leverage.map_or(-1, |r| i128::from(r.to_bits())),
                s.adl_deficit,
            ] {
                h.i128(v);
            }
            for o in s.adl_compare.iter().flatten() {
                for v in [o.taken, o.overshoot, o.uncovered, o.notional_closed] {
                    h.i128(v);
                }
                h.i128(i128::from(o.accounts));
            }
        }
        h.0
    }
}

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn i128(&mut self, v: i128) {
        for b in v.to_le_bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Runs `s` on a copy of `engine` and reports every step.
pub fn run(engine: &Engine, s: &Scenario) -> Result<LabReport, ScenarioError> {
    s.validate()?;
    let m = s.market;
    let start = engine
        .market_risk(m)
        .map(|r| r.mark)
        .filter(|&p| p > 0)
        .ok_or(ScenarioError::NoMark)?;
    let cfg = *engine.market_config(m).ok_or(ScenarioError::NoMark)?;
    let guard = cfg.risk.map_or(0, |r| r.max_mark_move_bps);
    let mut lab = Lab {
        engine: engine.clone(),
        m,
        cfg,
        seq: 0,
        seq_client: 0,
        last_trade: 0,
        prev_index: start,
        taker_fees: 0,
        pre_order: false,
        profile: Vec::new(),
    };
    if let Some(r) = s.refill {
        lab.credit(r.account, r.deposit)
            .map_err(|()| ScenarioError::RefillAccount)?;
        lab.profile = profile(engine, m, r.levels, start);
    }
    if let Some(a) = s.arbitrage {
        lab.credit(a.account, a.deposit)
            .map_err(|()| ScenarioError::ArbitrageAccount)?;
    }
    let mut report = LabReport {
        start_mark: start,
        fund_start: lab.fund_equity(),
        steps: Vec::with_capacity(s.index.len()),
    };
    let mut prev_index = start;
    for &index in s.index {
        let mut step = StepReport {
            index: index.0,
            ..StepReport::default()
        };
        for _ in 0..s.max_rounds {
            let (cur, want) = (lab.mark(), lab.mark_for(s.rule, index.0));
            let next = clamp_move(cur, want, guard, &cfg);
            step.clamped |= next != want;
            if next == cur {
                break;
            }
            lab.apply(
                CommandKind::MarkPrice {
                    market: m,
                    price: Price(next),
                },
                &mut step,
            );
            step.rounds += 1;
        }
        if let Some(p) = s.pre_liquidation {
            lab.pre_liquidate(p, &mut step);
        }
        if let Some(a) = s.arbitrage {
            lab.arbitrage(a, index.0, &mut step);
        }
        if let Some(r) = s.refill {
            let moved = i128::from((index.0 - prev_index).abs()) * 10_000;
            if r.pull_bps > 0 && moved > i128::from(r.pull_bps) * i128::from(prev_index) {
                lab.pull(r, &mut step);
            } else {
                let own = if lab.last_trade > 0 {
                    lab.last_trade
                } else {
                    lab.mark()
                };
                let w = i128::from(r.index_weight_bps.min(10_000));
                let anchor = own + (i128::from(index.0 - own) * w).div_euclid(10_000) as i64;
                lab.refill(r, anchor, &mut step);
            }
        }
        lab.close_step(&mut step, s.depth_bps);
        step.adl_deficit = step.adl_deficit.max(0);
        if s.compare_adl && step.adl_fills > 0 {
            step.adl_compare = Some(lab.compare_adl(&step));
        }
        report.steps.push(step);
        prev_index = index.0;
        lab.prev_index = index.0;
    }
    Ok(report)
}

/// `want`, or the furthest the oracle guard lets the mark go from `cur` towards it,
/// inside the market's price band.
fn clamp_move(cur: i64, want: i64, guard_bps: u32, cfg: &MarketConfig) -> i64 {
    let want = want.clamp(cfg.min_price.0, cfg.max_price.0);
    if guard_bps == 0 {
        return want;
    }
    // The engine refuses |next − cur| × 10^4 > guard × cur: the floor is the largest move.
    let max = (i128::from(cur) * i128::from(guard_bps) / 10_000) as i64;
    want.clamp(cur - max, cur + max)
}

/// The starting book's shape: `(side, offset from the start mark, lots)` of up to
/// `levels` levels per side.
fn profile(engine: &Engine, m: MarketId, levels: u32, start: i64) -> Vec<(Side, i64, i64)> {
    let mut out = Vec::with_capacity(2 * levels as usize);
    for side in [Side::Buy, Side::Sell] {
        engine.depth(m, side, levels as usize, |p, q, _| {
            out.push((side, p.0 - start, q.0));
        });
    }
    out
}

/// The private engine and what the runner tracks across steps.
struct Lab {
    engine: Engine,
    m: MarketId,
    cfg: MarketConfig,
    seq: u64,
    seq_client: u64,
    last_trade: i64,
    prev_index: i64,
    /// Taker fees of the last command (pre-liquidation refunds).
    taker_fees: i64,
    /// The command being applied is a pre-liquidation order.
    pre_order: bool,
    profile: Vec<(Side, i64, i64)>,
}

impl Lab {
    fn apply(&mut self, kind: CommandKind, step: &mut StepReport) -> bool {
        self.seq += 1;
        let cmd = Command {
            seq: self.seq,
            ts_ns: 0,
            kind,
        };
        let mut mark = self.mark();
        let falling = step.index < self.prev_index;
        let mut sink = StepSink {
            m: self.m,
            step,
            last_trade: &mut self.last_trade,
            mark: &mut mark,
            rejected: false,
            changed: [(AccountId(u32::MAX), 0); 2],
            falling,
            pre_order: self.pre_order,
            taker_fees: &mut self.taker_fees,
        };
        self.engine.apply(&cmd, &mut sink);
        !sink.rejected
    }

    fn mark(&self) -> i64 {
        self.engine.market_risk(self.m).map_or(0, |r| r.mark)
    }

    fn fund_equity(&self) -> i128 {
        self.engine
            .market_fund(self.m)
            .unwrap_or_else(|| self.engine.fund())
            .equity
    }

    fn best(&self, side: Side) -> Option<i64> {
        self.engine.best(self.m, side).map(|(p, _)| p.0)
    }

    /// The mark the rule asks for at this index.
    fn mark_for(&self, rule: MarkRule, index: i64) -> i64 {
        match rule {
            MarkRule::Index => index,
            MarkRule::MedianOfThree => {
                let last = if self.last_trade > 0 {
                    self.last_trade
                } else {
                    index
                };
                let mid = match (self.best(Side::Buy), self.best(Side::Sell)) {
                    (Some(b), Some(a)) => {
                        let mid = (b + a).div_euclid(2);
                        mid - mid.rem_euclid(self.cfg.tick)
                    }
                    _ => index,
                };
                median3(index, last, mid)
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

    /// Sends a reduce-only market order for every pool in the pre-liquidation band,
    /// accounts in id order, and refunds part of its taker fee.
    fn pre_liquidate(&mut self, p: PreLiquidation, step: &mut StepReport) {
        for a in 0..self.engine.config().max_accounts {
            let account = AccountId(a);
            let Some(lots) = self.pre_liquidation_lots(p, account) else {
                continue;
            };
            let Some(pos) = self.engine.position(account, self.m) else {
                continue;
            };
            self.seq_client += 1;
            let order = NewOrder {
                account,
                market: self.m,
                client_id: ClientOrderId(REFILL_CLIENT_BASE - self.seq_client),
                side: if pos.size > 0 { Side::Sell } else { Side::Buy },
                order_type: OrderType::Market,
                qty: Qty(lots),
                stp: StpMode::CancelResting,
                reduce_only: true,
            };
            self.taker_fees = 0;
            self.pre_order = true;
            self.apply(CommandKind::NewOrder(order), step);
            self.pre_order = false;
            step.pre_liquidations += 1;
            let refund = (i128::from(self.taker_fees) * i128::from(p.fee_refund_bps)) / 10_000;
            if refund > 0 {
                self.credit(account, refund as i64).ok();
            }
        }
    }

    /// Lots a pool in the band closes now: `ceil(|size| × max_close × (level − h) /
    /// (level − 1))` with `h` = equity / MM; `None` outside the band (h ≥ level) or
    /// already liquidatable (h < 1), or with no position.
    fn pre_liquidation_lots(&self, p: PreLiquidation, a: AccountId) -> Option<i64> {
        let pos = self.engine.position(a, self.m).filter(|x| x.size != 0)?;
        let (equity, mm) = self.engine.pool_risk(a, Some(self.m))?;
        let level = i128::from(p.level_bps);
        // In the band: mm ≤ equity < mm × level / 10^4.
        if mm <= 0 || equity < mm || equity * 10_000 >= mm * level {
            return None;
        }
        // close = max_close × (level − h) / (level − 1), all in bps of MM:
        // (level·mm − 10^4·equity) / ((level − 10^4)·mm).
        let num = i128::from(p.max_close_bps) * (level * mm - 10_000 * equity);
        let den = 10_000 * (level - 10_000) * mm;
        let size = i128::from(pos.size.unsigned_abs());
        let lots = (size * num + den - 1).div_euclid(den).clamp(0, size) as i64;
        (lots > 0).then_some(lots)
    }

    /// Takes bids above the index and asks below it, up to the capacity each way, with
    /// IOC orders limited at the index.
    fn arbitrage(&mut self, a: Arbitrage, index: i64, step: &mut StepReport) {
        let t = self.cfg.tick;
        for side in [Side::Sell, Side::Buy] {
            // Sell down to the index rounded up to a tick; buy up to it rounded down.
            let limit = match side {
                Side::Sell => index + (t - index.rem_euclid(t)) % t,
                Side::Buy => index - index.rem_euclid(t),
            };
            let stale = match side {
                Side::Sell => self.best(Side::Buy).is_some_and(|b| b > limit),
                Side::Buy => self.best(Side::Sell).is_some_and(|x| x < limit),
            };
            if !stale || a.lots_per_step <= 0 || !self.cfg.admits_price(Price(limit)) {
                continue;
            }
            self.seq_client += 1;
            let order = NewOrder {
                account: a.account,
                market: self.m,
                client_id: ClientOrderId(REFILL_CLIENT_BASE - self.seq_client),
                side,
                order_type: OrderType::Ioc(Price(limit)),
                qty: Qty(a.lots_per_step.min(self.cfg.max_qty.0)),
                stp: StpMode::CancelResting,
                reduce_only: false,
            };
            self.apply(CommandKind::NewOrder(order), step);
        }
    }

    /// Client id of the quote for profile level `j`.
    fn client_id(j: usize) -> ClientOrderId {
        ClientOrderId(REFILL_CLIENT_BASE + j as u64)
    }

    /// Cancels every refill quote (makers pull in a fast market).
    fn pull(&mut self, r: Refill, step: &mut StepReport) {
        for j in 0..self.profile.len() {
            let cid = Lab::client_id(j);
            if let Some(o) = self.engine.order_by_client(r.account, cid) {
                let cancel = CommandKind::Cancel {
                    account: r.account,
                    order_id: o.id,
                };
                self.apply(cancel, step);
            }
        }
    }

    /// Tops each profile level, placed around `anchor`, up towards its starting quantity
    /// by `rate_bps` of what is missing (counting whatever else rests there).
    fn refill(&mut self, r: Refill, anchor: i64, step: &mut StepReport) {
        for j in 0..self.profile.len() {
            let (side, offset, lots) = self.profile[j];
            let cid = Lab::client_id(j);
            let own = self.engine.order_by_client(r.account, cid);
            let price = self.quote_price(side, anchor + offset);
            let crossing = price.is_none_or(|p| self.crosses(side, p));
            let target = match price.filter(|_| !crossing) {
                Some(p) => {
                    let here = self.engine.level_qty(self.m, side, Price(p)).0;
                    let own_here = own.filter(|o| o.price.0 == p).map_or(0, |o| o.qty.0);
                    let want = (lots - (here - own_here)).max(0);
                    let have = own.map_or(0, |o| o.qty.0);
                    let grow = (i128::from(want - have) * i128::from(r.rate_bps)).div_euclid(10_000)
                        as i64;
                    Some((p, if want > have { have + grow } else { want }))
                }
                None => None,
            };
            self.requote(
                r.account,
                cid,
                side,
                own.map(|o| (o.id, o.price.0, o.qty.0)),
                target,
                step,
            );
        }
    }

    /// Moves, resizes, places or cancels one refill quote.
    fn requote(
        &mut self,
        account: AccountId,
        cid: ClientOrderId,
        side: Side,
        own: Option<(crate::types::OrderId, i64, i64)>,
        target: Option<(i64, i64)>,
        step: &mut StepReport,
    ) {
        let target = target.filter(|&(_, q)| q > 0);
        let kind = match (own, target) {
            (Some((id, p0, q0)), Some((p, q))) if (p0, q0) != (p, q) => {
                CommandKind::CancelReplace {
                    account,
                    order_id: id,
                    price: Price(p),
                    qty: Qty(q),
                }
            }
            (Some((id, ..)), None) => CommandKind::Cancel {
                account,
                order_id: id,
            },
            (None, Some((p, q))) => CommandKind::NewOrder(NewOrder {
                account,
                market: self.m,
                client_id: cid,
                side,
                order_type: OrderType::PostOnly(Price(p)),
                qty: Qty(q),
                stp: StpMode::CancelResting,
                reduce_only: false,
            }),
            _ => return,
        };
        self.apply(kind, step);
    }

    /// `price` on tick (bids down, asks up) inside the band, if it is there.
    fn quote_price(&self, side: Side, price: i64) -> Option<i64> {
        let t = self.cfg.tick;
        let p = match side {
            Side::Buy => price - price.rem_euclid(t),
            Side::Sell => price + (t - price.rem_euclid(t)) % t,
        };
        self.cfg.admits_price(Price(p)).then_some(p)
    }

    /// True if a quote at `p` on `side` would trade now.
    fn crosses(&self, side: Side, p: i64) -> bool {
        match side {
            Side::Buy => self.best(Side::Sell).is_some_and(|a| p >= a),
            Side::Sell => self.best(Side::Buy).is_some_and(|b| p <= b),
        }
    }

    /// Each policy of [`ADL_POLICIES`] over the step's deficit and the winners now on
    /// the side the step deleveraged. O(accounts).
    fn compare_adl(&self, step: &StepReport) -> [AdlOutcome; 4] {
        let mark = self.mark();
        let winners: Vec<Winner> = (0..self.engine.config().max_accounts)
            .filter_map(|a| {
                let account = AccountId(a);
                let p = self.engine.position(account, self.m)?;
                let short = p.size < 0;
                if p.size == 0 || short != step.adl_winners_short {
                    return None;
                }
                let pnl = i128::from(p.size) * i128::from(mark) - p.cost;
                let (equity, _) = self.engine.pool_risk(account, Some(self.m))?;
                Some(Winner {
                    account,
                    pnl,
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

    /// Fills the step's end-of-step figures.
    fn close_step(&self, step: &mut StepReport, depth_bps: u32) {
        let mark = self.mark();
        step.mark = mark;
        step.last_trade = self.last_trade;
        step.best_bid = self.best(Side::Buy).unwrap_or(0);
        step.best_ask = self.best(Side::Sell).unwrap_or(0);
        let reach = (i128::from(mark) * i128::from(depth_bps) / 10_000) as i64;
        self.engine.depth(self.m, Side::Buy, usize::MAX, |p, q, _| {
            if p.0 >= mark - reach {
                step.bid_depth += q.0;
            }
        });
        self.engine
            .depth(self.m, Side::Sell, usize::MAX, |p, q, _| {
                if p.0 <= mark + reach {
                    step.ask_depth += q.0;
                }
            });
        step.fund_equity = self.fund_equity();
        if let Some(r) = self.engine.market_risk(self.m) {
            step.open_interest = r.open_interest;
            step.leverage = r.leverage;
        }
    }
}

/// Tallies one step's events.
struct StepSink<'a> {
    m: MarketId,
    step: &'a mut StepReport,
    last_trade: &'a mut i64,
    mark: &'a mut i64,
    rejected: bool,
    /// The last two `PositionChanged`: `(account, size after)`. An ADL fill follows the
    /// bankrupt's (unless it is the fund) and the counterparty's.
    changed: [(AccountId, i64); 2],
    /// The index fell in this step (decides the side when both positions closed).
    falling: bool,
    /// The command is a pre-liquidation order: its trades count as such.
    pre_order: bool,
    /// Σ taker fees of the command's trades.
    taker_fees: &'a mut i64,
}

impl StepSink<'_> {
    /// Whether the winners of an ADL fill are short: the counterparty's side, read from
    /// its size after the fill, else from the bankrupt's, else from the index's move.
    fn winners_short(&self, bankrupt: AccountId, counterparty: AccountId) -> bool {
        let after = |a: AccountId| {
            self.changed
                .iter()
                .rev()
                .find(|&&(x, _)| x == a)
                .map_or(0, |&(_, size)| size)
        };
        match (after(counterparty), after(bankrupt)) {
            (c, _) if c != 0 => c < 0,
            (_, b) if b != 0 => b > 0,
            _ => self.falling,
        }
    }
}

impl EventSink for StepSink<'_> {
    fn emit(&mut self, e: Event) {
        let s = &mut *self.step;
        match e.kind {
            EventKind::Rejected(_) => self.rejected = true,
            EventKind::Fill {
                market,
                price,
                qty,
                liquidation,
                taker_account,
                taker_fee,
                ..
            } if market == self.m => {
                *self.last_trade = price.0;
                *self.taker_fees += taker_fee;
                if self.pre_order {
                    s.pre_liquidated_lots += qty.0;
                    s.pre_liquidated_notional += i128::from(price.0) * i128::from(qty.0);
                } else if liquidation && taker_account != AccountId::FUND {
                    s.liquidated_lots += qty.0;
                    s.liquidated_notional += i128::from(price.0) * i128::from(qty.0);
                }
            }
            EventKind::LiquidationStarted { .. } => s.liquidations += 1,
            EventKind::ConditionalTriggered { .. } => s.stops_triggered += 1,
            EventKind::Backstop { qty, price, .. } => {
                s.backstop_notional += i128::from(price.0) * i128::from(qty.0);
            }
            EventKind::MarkUpdated { market, price, .. } if market == self.m => {
                *self.mark = price.0;
            }
            EventKind::PositionChanged { account, size, .. } => {
                self.changed = [self.changed[1], (account, size)];
            }
            EventKind::AdlFill {
                account,
                counterparty,
                qty,
                price,
                ..
            } => {
                let short = self.winners_short(account, counterparty);
                let s = &mut *self.step;
                s.adl_fills += 1;
                s.adl_notional += i128::from(price.0) * i128::from(qty.0);
                s.adl_winners_short = short;
                // What the winners give up against the mark: positive when the bankrupt
                // pool is below zero (bankruptcy price beyond the mark), negative when it
                // still had equity (the fund could not take it over).
                let edge = if short {
                    price.0 - *self.mark
                } else {
                    *self.mark - price.0
                };
                s.adl_deficit += i128::from(edge) * i128::from(qty.0);
            }
            EventKind::BadDebt { amount, .. } => s.bad_debt += amount,
            _ => {}
        }
    }
}
