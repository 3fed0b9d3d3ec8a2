//! The lab's studies as data, for the `lab` subcommands to print and the risk report to
//! plot: parameter what-ifs, the contagion matrix, early-warning calibration, the ADL
//! policy totals of a run.
//!
//! Invariants: every study builds its own engines from a population and never changes
//! an engine it is given; the order of rows and cells is fixed.

use crate::cascade::{self, Population};
use crate::contagion::{self, MultiPopulation};
use crate::lab::{self, Liquidity};
use crate::warning_eval::{self as we, Evaluation, Setup};
use cascade_core::lab::{
    run, shock_path, AdlPolicy, LabReport, MarkRule, Scenario, Shock, ADL_POLICIES,
};
use cascade_core::{AdlMode, MarketId};
use std::path::Path;
use std::time::Instant;

/// One what-if row's change to the population or the liquidity.
pub type Edit = fn(&mut Population, &mut Liquidity);

/// The parameter sets of the what-if table, in order.
pub const WHATIF: [(&str, Edit); 15] = [
    ("baseline", |_, _| {}),
    ("MM rates ×0.5", |p, _| p.mm_pct /= 2),
    ("MM rates ×1.25", |p, _| p.mm_pct = p.mm_pct * 5 / 4),
    ("no volatility scaling (k = 0)", |p, _| p.vol_k = 0),
    ("volatility slope k = 16 (the most allowed)", |p, _| {
        p.vol_k = 16;
    }),
    ("liquidation fee 1%", |p, _| p.liq_fee_bps = 100),
    ("liquidation buffer 0", |p, _| p.buffer_bps = 0),
    ("ADL pro-rata", |p, _| p.adl = AdlMode::ProRata),
    ("fund ×10", |p, _| p.fund_bps *= 10),
    ("no fund", |p, _| p.fund_bps = 0),
    ("refill 100% per step", |_, l| l.refill_bps = 10_000),
    ("no refill", |_, l| l.refill_bps = 0),
    ("makers pull above 50 bps", |_, l| l.pull_bps = 50),
    (
        "pre-liquidation 1.5×MM → MM, ≤ 50%/step, half fee",
        |_, l| {
            l.pre_liquidation = Some(lab::PRE_LIQUIDATION);
        },
    ),
    (
        "pre-liquidation 4×MM → MM, ≤ 50%/step, half fee",
        |_, l| {
            l.pre_liquidation = Some(cascade_core::lab::PreLiquidation {
                level_bps: 40_000,
                ..lab::PRE_LIQUIDATION
            });
        },
    ),
];

/// One row of the what-if table.
pub struct WhatifRow {
    /// The parameter set.
    pub name: &'static str,
    /// The run, or why the population could not be built.
    pub result: Result<LabReport, String>,
    /// Milliseconds the run took (the state copy included).
    pub ms: f64,
}

/// Every [`WHATIF`] row over `base` and `liq`, shocked by `move_bps` in `shock`'s shape.
pub fn whatif(
    base: Population,
    liq: Liquidity,
    rule: MarkRule,
    move_bps: u32,
    shock: Shock,
) -> Vec<WhatifRow> {
    WHATIF
        .iter()
        .map(|&(name, edit)| {
            let (mut pop, mut l) = (base, liq);
            edit(&mut pop, &mut l);
            let t = Instant::now();
            let result = cascade::build(&pop).and_then(|engine| {
                let path = shock_path(pop.start, move_bps, shock);
                run(&engine, &lab::scenario(rule, &path, l)).map_err(|e| e.to_string())
            });
            WhatifRow {
                name,
                result,
                ms: t.elapsed().as_secs_f64() * 1e3,
            }
        })
        .collect()
}

/// One cell of the contagion matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContagionCell {
    /// The shocked market.
    pub from: MarketId,
    /// The market measured.
    pub to: MarketId,
    /// Book, backstop and ADL notional closed in `to` (atoms).
    pub closed_notional: i128,
    /// The mark's fall in `to`, bps of its start.
    pub mark_move_bps: i64,
    /// Accounts liquidated that held both `from` and `to` at the start.
    pub carriers: usize,
}

/// The contagion matrix of `pop`: each market shocked in turn (endogenous, the others'
/// index held), row-major, `from` then `to` ascending.
pub fn contagion_matrix(
    pop: &MultiPopulation,
    liq: Liquidity,
    move_bps: u32,
    shock: Shock,
) -> Result<Vec<ContagionCell>, String> {
    let engine = contagion::build(pop)?;
    let markets: Vec<MarketId> = (0..pop.markets).map(MarketId).collect();
    let path = shock_path(pop.base.start, move_bps, shock);
    let mut cells = Vec::new();
    for &from in &markets {
        let others: Vec<MarketId> = markets.iter().copied().filter(|&m| m != from).collect();
        let scenario = Scenario {
            market: from,
            also: &others,
            ..lab::scenario(MarkRule::MedianOfThree, &path, liq)
        };
        let r = run(&engine, &scenario).map_err(|e| e.to_string())?;
        let mut row: Vec<ContagionCell> = r
            .markets
            .iter()
            .map(|t| {
                let holders = MultiPopulation::holders(&engine, pop.base.accounts, from, t.market);
                ContagionCell {
                    from,
                    to: t.market,
                    closed_notional: t.closed_notional(),
                    mark_move_bps: (t.start_mark - t.mark_low) * 10_000 / t.start_mark,
                    carriers: r
                        .liquidated
                        .iter()
                        .filter(|a| holders[a.0 as usize])
                        .count(),
                }
            })
            .collect();
        row.sort_by_key(|c| c.to);
        cells.extend(row);
    }
    Ok(cells)
}

/// The parameters of the early-warning study.
#[derive(Clone, Debug)]
pub struct WarningStudy {
    /// Horizons, minutes.
    pub horizons: Vec<usize>,
    /// Leverages of the generated positions.
    pub leverages: Vec<u32>,
    /// Minutes between decisions.
    pub stride: usize,
    /// Maintenance margin rate, bps.
    pub mm_bps: i64,
    /// Half-life of the volatility EWMA, minutes.
    pub half_life: f64,
}

impl Default for WarningStudy {
    fn default() -> Self {
        WarningStudy {
            horizons: vec![60, 240],
            leverages: vec![2, 3, 5, 10, 20, 25, 50, 100],
            stride: 15,
            mm_bps: 50,
            half_life: 30.0,
        }
    }
}

/// What the early-warning study found: the baseline's volatility and one evaluation
/// per dataset and horizon (`(dataset, horizon, evaluation)`), plus the bar counts.
pub struct WarningResults {
    /// The baseline's constant volatility per minute.
    pub naive_sigma: f64,
    /// One-minute bars of the crash days and of the 2022 month.
    pub bars: (usize, usize),
    /// Evaluations.
    pub rows: Vec<(&'static str, usize, Evaluation)>,
}

/// Runs the study over the recorded BTC paths in `prices` (the crash days 2025-10-09/10
/// and the month 2021-12-31..2022-02-01).
pub fn warning_study(prices: &Path, s: &WarningStudy) -> Result<WarningResults, String> {
    let load = |name: &str| we::load_bars(&prices.join(name));
    let month = load("btc-perp-20211231-20220201_1m.csv")?;
    let mut crash = load("BTCUSD_PERP-1m-2025-10-09.csv")?;
    crash.extend(load("BTCUSD_PERP-1m-2025-10-10.csv")?);
    let warmup = 60;
    // The baseline's one volatility: the median estimate over the 2022 month (in sample
    // there, out of sample for the 2025 crash days).
    let naive_sigma = we::median_sigma(&month, s.half_life, warmup);
    let mut rows = Vec::new();
    for (name, bars) in [
        ("2025-10-09..10", &crash),
        ("2021-12-31..2022-02-01", &month),
    ] {
        for &horizon in &s.horizons {
            let setup = Setup {
                horizon,
                stride: s.stride,
                leverages: s.leverages.clone(),
                mm_bps: s.mm_bps,
                warmup,
                half_life: s.half_life,
                naive_sigma,
            };
            rows.push((name, horizon, we::evaluate(bars, &setup)));
        }
    }
    Ok(WarningResults {
        naive_sigma,
        bars: (crash.len(), month.len()),
        rows,
    })
}

/// A policy's totals over a run's steps with ADL fills.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdlTotals {
    /// Σ profit taken.
    pub taken: i128,
    /// Σ overshoot.
    pub overshoot: i128,
    /// Σ uncovered.
    pub uncovered: i128,
    /// Σ notional closed.
    pub notional_closed: i128,
    /// Σ accounts touched (an account touched in two steps counts twice).
    pub accounts: u64,
}

/// The name of a policy in output lines.
pub fn policy_name(p: AdlPolicy) -> &'static str {
    match p {
        AdlPolicy::Queue => "queue",
        AdlPolicy::ProRata => "pro-rata",
        AdlPolicy::CappedProRata { .. } => "capped-pro-rata",
        AdlPolicy::LeverageDraining => "leverage-draining",
    }
}

/// Each of [`ADL_POLICIES`] totalled over the run (needs `compare_adl`), and the run's
/// total deficit.
pub fn adl_totals(r: &LabReport) -> (i128, [AdlTotals; 4]) {
    let deficit = r.steps.iter().map(|s| s.adl_deficit).sum();
    let mut out = [AdlTotals::default(); 4];
    for c in r.steps.iter().filter_map(|s| s.adl_compare) {
        for (t, o) in out.iter_mut().zip(c) {
            t.taken += o.taken;
            t.overshoot += o.overshoot;
            t.uncovered += o.uncovered;
            t.notional_closed += o.notional_closed;
            t.accounts += u64::from(o.accounts);
        }
    }
    debug_assert_eq!(out.len(), ADL_POLICIES.len());
    (deficit, out)
}
