//! What a lab run reports: per step, per run, per market.
//!
//! Invariants: every figure is an integer (atoms, lots, price units) or a 32.32 rate;
//! [`LabReport::hash`] covers every figure in a fixed order, so equal reports hash equal
//! and any change of behaviour shows.

use super::adl::AdlPolicy;
use crate::risk::Rate;
use crate::types::{AccountId, MarketId};

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
    /// Aggregate leverage ratio: open interest notional / the backing of the accounts
    /// holding positions, the lab's refill maker and arbitrageur left out (their deposits
    /// are hypothetical); rounded down; `None` if that backing is ≤ 0.
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

/// A run's totals in one market it drove (the shocked one, or one whose mark followed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MarketTally {
    /// Market.
    pub market: MarketId,
    /// Mark before the first step.
    pub start_mark: i64,
    /// Lowest mark after any step.
    pub mark_low: i64,
    /// Highest mark after any step.
    pub mark_high: i64,
    /// Σ price × lots of liquidation orders' trades (atoms).
    pub liquidated_notional: i128,
    /// Σ bankruptcy price × lots the fund took over (atoms).
    pub backstop_notional: i128,
    /// Σ bankruptcy price × lots of ADL fills (atoms).
    pub adl_notional: i128,
}

impl MarketTally {
    /// Everything liquidated here: book, backstop and ADL notional.
    pub fn closed_notional(&self) -> i128 {
        self.liquidated_notional + self.backstop_notional + self.adl_notional
    }
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
    /// Totals per driven market: the scenario's market first, then `also` in order.
    pub markets: Vec<MarketTally>,
    /// Accounts liquidated (any pool), in the order of their first liquidation.
    pub liquidated: Vec<AccountId>,
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

    /// Σ pre-liquidation orders over the run.
    pub fn pre_liquidations(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| u64::from(s.pre_liquidations))
            .sum()
    }

    /// Σ pre-liquidated notional over the run.
    pub fn pre_liquidated_notional(&self) -> i128 {
        self.steps.iter().map(|s| s.pre_liquidated_notional).sum()
    }

    /// Σ ADL fills over the run.
    pub fn adl_fills(&self) -> u64 {
        self.steps.iter().map(|s| u64::from(s.adl_fills)).sum()
    }

    /// Lowest index of the steps (the start mark for a run with no steps).
    pub fn index_low(&self) -> i64 {
        self.steps
            .iter()
            .map(|s| s.index)
            .min()
            .unwrap_or(self.start_mark)
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
        for t in &self.markets {
            for v in [
                i128::from(t.market.0),
                i128::from(t.start_mark),
                i128::from(t.mark_low),
                i128::from(t.mark_high),
                t.liquidated_notional,
                t.backstop_notional,
                t.adl_notional,
            ] {
                h.i128(v);
            }
        }
        for a in &self.liquidated {
            h.i128(i128::from(a.0));
        }
        h.0
    }
}

/// FNV-1a, 64 bits.
pub(super) struct Fnv(pub(super) u64);

impl Fnv {
    pub(super) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(super) fn i128(&mut self, v: i128) {
        for b in v.to_le_bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}
