//! The lab's scenarios over the generated population: which maker refills, how a run is
//! summarised in one line, and the paths the lab drives.
//!
//! Invariants: the summary line's keys are a contract (`mode= steps= liquidations=
//! liquidated_notional= backstop_notional= pre_liquidations= pre_liquidated_notional= …
//! report_hash=`); figures are integers (atoms, price units of $0.1, bps) except
//! `amplification`, printed with two decimals.

use crate::cascade::MARKET;
use cascade_core::lab::{Arbitrage, LabReport, MarkRule, PreLiquidation, Refill, Scenario};
use cascade_core::{AccountId, Price};

/// The refill maker: market maker 0 of the population.
pub const REFILL_ACCOUNT: AccountId = AccountId(0);

/// The basis arbitrageur: market maker 1 of the population.
pub const ARBITRAGE_ACCOUNT: AccountId = AccountId(1);

/// Atoms the lab credits the refill maker on its copy (hypothetical money, so its
/// quotes always pass margin).
pub const REFILL_DEPOSIT: i64 = 1 << 50;

/// How the book's liquidity responds in a lab run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liquidity {
    /// Share of each profile level's missing depth restored per step, bps (0: none).
    pub refill_bps: u32,
    /// Levels per side in the profile.
    pub levels: u32,
    /// Weight of the index in the refill's anchor, bps (the rest: the last trade).
    pub index_weight_bps: u32,
    /// Makers pull their refill quotes in steps moving more than this (0: never).
    pub pull_bps: u32,
    /// Feedback rounds per step.
    pub rounds: u32,
    /// Lots the basis arbitrageur may trade per step each way (0: none).
    pub arb_lots: i64,
    /// Pre-liquidation, if on.
    pub pre_liquidation: Option<PreLiquidation>,
}

/// A book that responds: 20% of the taken depth restored per step around an anchor
/// halfway between the last trade and the index, 5,000 lots of arbitrage per step, 16
/// feedback rounds. Without a response the median-of-three mark is held by a stale book.
impl Default for Liquidity {
    fn default() -> Self {
        Liquidity {
            refill_bps: 2_000,
            levels: 40,
            index_weight_bps: 5_000,
            pull_bps: 0,
            rounds: 16,
            arb_lots: 5_000,
            pre_liquidation: None,
        }
    }
}

/// The scenario of `rule` over `index` with this liquidity on the population's market.
pub fn scenario(rule: MarkRule, index: &[Price], liq: Liquidity) -> Scenario<'_> {
    Scenario {
        market: MARKET,
        index,
        rule,
        refill: (liq.refill_bps > 0).then_some(Refill {
            account: REFILL_ACCOUNT,
            deposit: REFILL_DEPOSIT,
            rate_bps: liq.refill_bps,
            levels: liq.levels,
            index_weight_bps: liq.index_weight_bps,
            pull_bps: liq.pull_bps,
        }),
        arbitrage: (liq.arb_lots > 0).then_some(Arbitrage {
            account: ARBITRAGE_ACCOUNT,
            deposit: REFILL_DEPOSIT,
            lots_per_step: liq.arb_lots,
        }),
        max_rounds: if rule == MarkRule::Index {
            1
        } else {
            liq.rounds
        },
        depth_bps: 200,
        compare_adl: false,
        pre_liquidation: liq.pre_liquidation,
        also: &[],
    }
}

/// The rule's name in summary lines.
pub fn rule_name(rule: MarkRule) -> &'static str {
    match rule {
        MarkRule::Index => "exogenous",
        MarkRule::MedianOfThree => "endogenous",
        MarkRule::AdverseMedian => "adverse",
    }
}

/// `mark move / index move` over the run, both measured to their lowest point from the
/// start (a fall); 0 when the index did not fall.
pub fn amplification(r: &LabReport) -> f64 {
    let (mark_low, _) = r.mark_range();
    let fall = r.start_mark - r.index_low();
    if fall <= 0 {
        return 0.0;
    }
    (r.start_mark - mark_low) as f64 / fall as f64
}

/// The default pre-liquidation: a band from 1.5 × MM down to MM, closing up to half
/// the position per step at MM, half the taker fee refunded.
pub const PRE_LIQUIDATION: PreLiquidation = PreLiquidation {
    level_bps: 15_000,
    max_close_bps: 5_000,
    fee_refund_bps: 5_000,
};

/// The one-line summary of a run.
pub fn summary(rule: MarkRule, r: &LabReport) -> String {
    let opt = |v: Option<usize>| v.map_or("none".to_string(), |s| s.to_string());
    format!(
        "mode={} steps={} liquidations={} liquidated_notional={} backstop_notional={} \
         pre_liquidations={} pre_liquidated_notional={} stops={} adl_fills={} \
         adl_notional={} bad_debt={} peak_liquidations={} start_mark={} index_low={} \
         mark_low={} amplification={:.2} first_liquidation_step={} first_adl_step={} \
         fund_start={} fund_low={} report_hash={:016x}",
        rule_name(rule),
        r.steps.len(),
        r.liquidations(),
        r.liquidated_notional(),
        r.backstop_notional(),
        r.pre_liquidations(),
        r.pre_liquidated_notional(),
        r.stops_triggered(),
        r.adl_fills(),
        r.adl_notional(),
        r.bad_debt(),
        r.peak_liquidations(),
        r.start_mark,
        r.index_low(),
        r.mark_range().0,
        amplification(r),
        opt(r.first_liquidation()),
        opt(r.first_adl()),
        r.fund_start,
        r.fund_low(),
        r.hash(),
    )
}
