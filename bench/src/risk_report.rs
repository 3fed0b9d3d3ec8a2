//! The risk report: one scenario through every study of the lab, written as a
//! self-contained HTML page (inline SVG, no script, nothing fetched) with SVG copies.
//!
//! Invariants: the figures come from the lab (`cascade_core::lab`) and the studies in
//! [`crate::lab_studies`]; nothing here computes a risk figure of its own. Plots are the
//! hand-written SVG of [`crate::plot`] (kept over `plotters`: no system fonts or native
//! libraries to install, byte-stable output that diffs, and a few lines per chart).

use crate::cascade::{self, Population, LEVERAGE_CLUSTERED, MARKET};
use crate::contagion::MultiPopulation;
use crate::lab::{self, Liquidity};
use crate::lab_studies::{self as studies, WarningStudy};
use crate::plot::{bar_chart, line_chart, Scale, Series};
use cascade_core::lab::{
    amplification_curve, distance_to_cascade, run, shock_path, Direction, LabReport, MarkRule,
    Scenario, Shock, ADL_POLICIES,
};
use cascade_core::{Engine, Side};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// What the report runs.
#[derive(Clone, Debug)]
pub struct ReportSetup {
    /// The population (the default report: leverage clustered at 5×/10×/20×/50×, stops).
    pub pop: Population,
    /// How liquidity responds.
    pub liquidity: Liquidity,
    /// The shock: an index fall of `move_bps` in `shock`'s shape.
    pub move_bps: u32,
    /// Its shape.
    pub shock: Shock,
    /// Where the recorded BTC paths are (`prices/`), for the early-warning study.
    pub prices: Option<PathBuf>,
    /// Markets of the contagion population.
    pub contagion_markets: u32,
}

impl ReportSetup {
    /// The default scenario: `accounts` accounts with leverage clustered at 5×, 10×,
    /// 20× and 50× (maximum 50×, maintenance rates halved so they stay under the 2%
    /// initial margin of 50×), a quarter holding stop-losses, bids 20% of open interest,
    /// endogenous marks over a 10% fall in 20 steps then 10 at the low.
    pub fn clustered(accounts: u32) -> ReportSetup {
        let mut pop = Population::new(accounts);
        pop.leverages = &LEVERAGE_CLUSTERED;
        pop.max_leverage = 50;
        pop.mm_pct = 50;
        pop.stops_pct = 25;
        pop.depth_percent = 20;
        ReportSetup {
            pop,
            liquidity: Liquidity::default(),
            move_bps: 1_000,
            shock: Shock {
                direction: Direction::Down,
                steps: 20,
                settle: 10,
            },
            prices: None,
            contagion_markets: 3,
        }
    }
}

/// A written report.
pub struct Written {
    /// The HTML file.
    pub html: PathBuf,
    /// Plots in it (each also written as an SVG file beside it).
    pub plots: usize,
    /// The report hash of the scenario's endogenous run.
    pub scenario_hash: u64,
}

/// The page being assembled: sections of HTML and the plots they hold.
struct Page {
    body: String,
    plots: Vec<(String, String)>,
}

impl Page {
    fn section(&mut self, title: &str, text: &str) {
        let _ = write!(self.body, "<h2>{}</h2>\n<p>{}</p>\n", esc(title), text);
    }

    fn plot(&mut self, name: &str, svg: String) {
        let _ = writeln!(self.body, "<figure id=\"{name}\">{svg}</figure>");
        self.plots.push((name.to_string(), svg));
    }

    fn table(&mut self, head: &[&str], rows: &[Vec<String>]) {
        self.body.push_str("<table>\n<tr>");
        for h in head {
            let _ = write!(self.body, "<th>{}</th>", esc(h));
        }
        self.body.push_str("</tr>\n");
        for r in rows {
            self.body.push_str("<tr>");
            for c in r {
                let _ = write!(self.body, "<td>{}</td>", esc(c));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</table>\n");
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Price units ($0.1) to dollars.
fn dollars(p: i64) -> f64 {
    p as f64 / 10.0
}

/// Runs every study and writes `out/risk-report.html` and `out/risk/*.svg`.
pub fn write(setup: &ReportSetup, out: &Path) -> Result<Written, String> {
    let engine = cascade::build(&setup.pop)?;
    let mut page = Page {
        body: String::new(),
        plots: Vec::new(),
    };
    let path = shock_path(setup.pop.start, setup.move_bps, setup.shock);
    let scenario = |rule| Scenario {
        compare_adl: true,
        ..lab::scenario(rule, &path, setup.liquidity)
    };
    let endo = run(&engine, &scenario(MarkRule::MedianOfThree)).map_err(|e| e.to_string())?;
    let exo = run(&engine, &scenario(MarkRule::Index)).map_err(|e| e.to_string())?;
    intro(&mut page, setup, &engine, &endo, &exo);
    heatmaps(&mut page, &engine);
    amplification(&mut page, setup, &engine)?;
    cascade_path(&mut page, &endo, &exo);
    history(&mut page, &endo);
    adl(&mut page, &endo);
    contagion(&mut page, setup)?;
    whatif(&mut page, setup);
    warning(&mut page, setup);
    let dir = out.join("risk");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, svg) in &page.plots {
        let file = dir.join(format!("{name}.svg"));
        std::fs::write(&file, svg).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    let html = out.join("risk-report.html");
    let text = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cascade risk report</title>\n<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;}}table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}figure{{margin:1em 0}}</style></head>\n<body>\n<h1>Cascade risk report</h1>\n{}</body></html>\n",
        page.body
    );
    std::fs::write(&html, text).map_err(|e| format!("{}: {e}", html.display()))?;
    Ok(Written {
        html,
        plots: page.plots.len(),
        scenario_hash: endo.hash(),
    })
}

fn intro(page: &mut Page, setup: &ReportSetup, engine: &Engine, endo: &LabReport, exo: &LabReport) {
    let risk = engine.market_risk(MARKET).expect("leveraged market");
    let pop = &setup.pop;
    page.section(
        "Scenario",
        &format!(
            "{} accounts (seed {}), leverage drawn from {:?}× (maximum {}×), {}% of traders \
             holding a reduce-only stop-loss, makers' bids {}% of open interest; open interest \
             {} lots, aggregate leverage {:.2}. Shock: the index falls {} bps in {} steps and \
             holds {} steps. Liquidity: {} bps of taken depth refilled per step, {} lots of \
             basis arbitrage per step. Endogenous run: {} liquidations, mark low ${:.1} against \
             an index low of ${:.1} (amplification {:.2}); exogenous: {} liquidations. \
             Scenario hash {:016x}. Every figure is defined in docs/RISK.md.",
            pop.accounts,
            pop.seed,
            pop.leverages,
            pop.max_leverage,
            pop.stops_pct,
            pop.depth_percent,
            risk.open_interest,
            risk.leverage.map_or(0.0, |r| r.to_num::<f64>()),
            setup.move_bps,
            setup.shock.steps,
            setup.shock.settle,
            setup.liquidity.refill_bps,
            setup.liquidity.arb_lots,
            endo.liquidations(),
            dollars(endo.mark_range().0),
            dollars(endo.index_low()),
            lab::amplification(endo),
            exo.liquidations(),
            endo.hash()
        ),
    );
}

fn heatmaps(page: &mut Page, engine: &Engine) {
    let (mut long, mut short, mut sells, mut buys, mut bids, mut asks) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mark = engine.market_risk(MARKET).map_or(0, |r| r.mark);
    let near = |lo: i64, hi: i64| hi >= mark * 7 / 10 && lo <= mark * 13 / 10;
    // The book read once per side, ascending by price, then summed per bucket.
    let levels = |side| {
        let mut v = Vec::new();
        engine.depth(MARKET, side, usize::MAX, |p, q, _| v.push((p.0, q.0)));
        v.sort_unstable();
        v
    };
    let (bid_levels, ask_levels) = (levels(Side::Buy), levels(Side::Sell));
    let within = |book: &[(i64, i64)], lo: i64, hi: i64| -> i64 {
        let start = book.partition_point(|&(p, _)| p < lo);
        book[start..]
            .iter()
            .take_while(|&&(p, _)| p <= hi)
            .map(|&(_, q)| q)
            .sum()
    };
    engine.liquidation_heatmap(MARKET, |lo, hi, l, s| {
        if near(lo.0, hi.0) {
            let x = dollars((lo.0 + hi.0) / 2);
            long.push((x, l as f64));
            short.push((x, s as f64));
            bids.push((x, within(&bid_levels, lo.0, hi.0) as f64));
            asks.push((x, within(&ask_levels, lo.0, hi.0) as f64));
        }
    });
    engine.stop_heatmap(MARKET, |lo, hi, b, s| {
        if near(lo.0, hi.0) {
            let x = dollars((lo.0 + hi.0) / 2);
            buys.push((x, b as f64));
            sells.push((x, s as f64));
        }
    });
    page.section(
        "Liquidation and stop heatmaps against the book",
        "Lots whose liquidation trigger (at the index scale) or stop trigger lies in each \
         price bucket, beside the lots resting in the book in the same bucket, within ±30% \
         of the mark.",
    );
    let series = vec![
        Series {
            name: "long liquidations".into(),
            points: long,
        },
        Series {
            name: "short liquidations".into(),
            points: short,
        },
        Series {
            name: "sell stops".into(),
            points: sells,
        },
        Series {
            name: "buy stops".into(),
            points: buys,
        },
        Series {
            name: "bids resting".into(),
            points: bids,
        },
        Series {
            name: "asks resting".into(),
            points: asks,
        },
    ];
    page.plot(
        "heatmap",
        line_chart(
            "Triggers and depth by price",
            ("price ($)", Scale::Linear),
            ("lots", Scale::Linear),
            &series,
        ),
    );
}

fn amplification(page: &mut Page, setup: &ReportSetup, engine: &Engine) -> Result<(), String> {
    let empty = [];
    let moves = [50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000];
    let shock = Shock {
        direction: Direction::Down,
        steps: 5,
        settle: 10,
    };
    let mut series = Vec::new();
    let mut distances = Vec::new();
    for rule in [MarkRule::MedianOfThree, MarkRule::Index] {
        let template = lab::scenario(rule, &empty, setup.liquidity);
        let curve =
            amplification_curve(engine, &template, shock, &moves).map_err(|e| e.to_string())?;
        series.push(Series {
            name: lab::rule_name(rule).into(),
            points: curve
                .iter()
                .map(|p| {
                    (
                        f64::from(p.move_bps),
                        p.mark_move as f64 * f64::from(p.move_bps) / p.index_move.max(1) as f64,
                    )
                })
                .collect(),
        });
        let d =
            distance_to_cascade(engine, &template, shock, 3_000, 10).map_err(|e| e.to_string())?;
        distances.push(format!(
            "{}: {}",
            lab::rule_name(rule),
            d.map_or("none within 30%".to_string(), |x| format!("{x} bps"))
        ));
    }
    page.section(
        "Amplification and distance to cascade",
        &format!(
            "The mark's furthest fall against the index's fall, each shock applied over 5 \
             steps then held 10. Distance to cascade (smallest fall whose mark falls at least \
             twice as far): {}.",
            distances.join("; ")
        ),
    );
    page.plot(
        "amplification",
        line_chart(
            "Amplification curve",
            ("index fall (bps)", Scale::Linear),
            ("mark fall (bps)", Scale::Linear),
            &series,
        ),
    );
    Ok(())
}

fn per_step(r: &LabReport, f: impl Fn(&cascade_core::lab::StepReport) -> f64) -> Vec<(f64, f64)> {
    r.steps
        .iter()
        .enumerate()
        .map(|(k, s)| (k as f64, f(s)))
        .collect()
}

fn cascade_path(page: &mut Page, endo: &LabReport, exo: &LabReport) {
    page.section(
        "The cascade",
        "Index and mark per step (endogenous and exogenous runs), then pools liquidated and \
         ADL notional per step in the endogenous run.",
    );
    let series = vec![
        Series {
            name: "index".into(),
            points: per_step(endo, |s| dollars(s.index)),
        },
        Series {
            name: "mark (endogenous)".into(),
            points: per_step(endo, |s| dollars(s.mark)),
        },
        Series {
            name: "mark (exogenous)".into(),
            points: per_step(exo, |s| dollars(s.mark)),
        },
    ];
    page.plot(
        "price-path",
        line_chart(
            "Price path",
            ("step", Scale::Linear),
            ("$", Scale::Linear),
            &series,
        ),
    );
    let labels: Vec<String> = (0..endo.steps.len()).map(|k| k.to_string()).collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    page.plot(
        "liquidations",
        bar_chart(
            "Liquidations per step (endogenous)",
            "pools",
            &labels,
            &[(
                "liquidations",
                endo.steps
                    .iter()
                    .map(|s| f64::from(s.liquidations))
                    .collect(),
            )],
        ),
    );
    page.plot(
        "adl",
        bar_chart(
            "ADL notional per step (endogenous)",
            "atoms",
            &labels,
            &[(
                "ADL notional",
                endo.steps.iter().map(|s| s.adl_notional as f64).collect(),
            )],
        ),
    );
}

fn history(page: &mut Page, endo: &LabReport) {
    page.section(
        "Leverage, open interest and the insurance fund",
        "Sampled after every step of the endogenous run.",
    );
    let lev = vec![Series {
        name: "aggregate leverage".into(),
        points: per_step(endo, |s| s.leverage.map_or(0.0, |r| r.to_num::<f64>())),
    }];
    page.plot(
        "leverage",
        line_chart(
            "Aggregate leverage ratio",
            ("step", Scale::Linear),
            ("ratio", Scale::Linear),
            &lev,
        ),
    );
    let oi = vec![Series {
        name: "open interest".into(),
        points: per_step(endo, |s| s.open_interest as f64),
    }];
    page.plot(
        "open-interest",
        line_chart(
            "Open interest",
            ("step", Scale::Linear),
            ("lots", Scale::Linear),
            &oi,
        ),
    );
    let fund = vec![Series {
        name: "fund equity".into(),
        points: per_step(endo, |s| s.fund_equity as f64),
    }];
    page.plot(
        "fund",
        line_chart(
            "Insurance fund equity",
            ("step", Scale::Linear),
            ("atoms", Scale::Linear),
            &fund,
        ),
    );
}

fn adl(page: &mut Page, endo: &LabReport) {
    let (deficit, totals) = studies::adl_totals(endo);
    page.section(
        "ADL policies compared",
        &format!(
            "Each policy applied to every step's ADL deficit (Σ {deficit} atoms) over the \
             winners standing after the step; the engine ran its own queue. Overshoot: profit \
             taken beyond the deficit."
        ),
    );
    let names: Vec<&str> = ADL_POLICIES
        .iter()
        .map(|&p| studies::policy_name(p))
        .collect();
    let rows: Vec<Vec<String>> = names
        .iter()
        .zip(totals)
        .map(|(n, t)| {
            vec![
                n.to_string(),
                t.taken.to_string(),
                t.overshoot.to_string(),
                t.uncovered.to_string(),
                t.notional_closed.to_string(),
                t.accounts.to_string(),
            ]
        })
        .collect();
    page.table(
        &[
            "policy",
            "taken",
            "overshoot",
            "uncovered",
            "notional closed",
            "accounts touched",
        ],
        &rows,
    );
    page.plot(
        "adl-policies",
        bar_chart(
            "ADL policies: profit taken and overshoot",
            "atoms",
            &names,
            &[
                ("taken", totals.iter().map(|t| t.taken as f64).collect()),
                (
                    "overshoot",
                    totals.iter().map(|t| t.overshoot as f64).collect(),
                ),
            ],
        ),
    );
}

fn contagion(page: &mut Page, setup: &ReportSetup) -> Result<(), String> {
    let mut pop =
        MultiPopulation::new((setup.pop.accounts / 2).max(1_000), setup.contagion_markets);
    pop.base.seed = setup.pop.seed;
    let cells = studies::contagion_matrix(&pop, setup.liquidity, setup.move_bps, setup.shock)?;
    page.section(
        "Contagion across markets",
        &format!(
            "{} accounts over {} copies of the market, half the trader pairs cross-margined \
             over two neighbouring markets; each market shocked in turn, the others' index \
             held. Cell: notional closed (book, backstop, ADL) / mark fall / accounts that \
             carried it (liquidated, holding both markets).",
            pop.base.accounts, pop.markets
        ),
    );
    let n = pop.markets as usize;
    let head: Vec<String> = std::iter::once("shock in ↓, effect in →".to_string())
        .chain((0..n).map(|m| format!("market {m}")))
        .collect();
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = cells
        .chunks(n)
        .map(|row| {
            std::iter::once(format!("market {}", row[0].from.0))
                .chain(row.iter().map(|c| {
                    format!(
                        "{} / {} bps / {}",
                        c.closed_notional, c.mark_move_bps, c.carriers
                    )
                }))
                .collect()
        })
        .collect();
    page.table(&head, &rows);
    let labels: Vec<String> = (0..n).map(|m| format!("shock in {m}")).collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let series: Vec<(String, Vec<f64>)> = (0..n)
        .map(|j| {
            (
                format!("closed in market {j}"),
                cells
                    .chunks(n)
                    .map(|row| row[j].closed_notional as f64)
                    .collect(),
            )
        })
        .collect();
    let series: Vec<(&str, Vec<f64>)> = series
        .iter()
        .map(|(s, v)| (s.as_str(), v.clone()))
        .collect();
    page.plot(
        "contagion",
        bar_chart(
            "Contagion: notional closed per market",
            "atoms",
            &labels,
            &series,
        ),
    );
    Ok(())
}

fn whatif(page: &mut Page, setup: &ReportSetup) {
    page.section(
        "Parameters side by side",
        "The same population and shock under each parameter set (endogenous marks): \
         first the report's population, then the default population (leverage drawn \
         from 1–24×, median 4×, no stops, bids 40% of open interest) of as many accounts, \
         where a cascade does not sweep everything in one step and the parameters separate.",
    );
    let mut mixed = Population::new(setup.pop.accounts);
    mixed.seed = setup.pop.seed;
    for pop in [setup.pop, mixed] {
        let rows = studies::whatif(
            pop,
            setup.liquidity,
            MarkRule::MedianOfThree,
            setup.move_bps,
            setup.shock,
        );
        whatif_table(page, &rows);
    }
}

fn whatif_table(page: &mut Page, rows: &[studies::WhatifRow]) {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| match &r.result {
            Ok(x) => vec![
                r.name.to_string(),
                x.liquidations().to_string(),
                x.peak_liquidations().to_string(),
                x.adl_notional().to_string(),
                x.bad_debt().to_string(),
                x.fund_low().to_string(),
                format!("{:.1}", dollars(x.mark_range().0)),
                format!("{:.2}", lab::amplification(x)),
            ],
            Err(e) => vec![r.name.to_string(), format!("refused: {e}")],
        })
        .collect();
    page.table(
        &[
            "parameters",
            "liquidations",
            "peak per step",
            "ADL notional",
            "bad debt",
            "fund low",
            "mark low ($)",
            "amplification",
        ],
        &table,
    );
}

fn warning(page: &mut Page, setup: &ReportSetup) {
    let Some(prices) = &setup.prices else {
        page.section(
            "Early warning",
            "Skipped: no recorded price directory was given.",
        );
        return;
    };
    let w = match studies::warning_study(prices, &WarningStudy::default()) {
        Ok(w) => w,
        Err(e) => {
            page.section("Early warning", &format!("Skipped: {}", esc(&e)));
            return;
        }
    };
    page.section(
        "Early warning, calibrated on recorded BTC paths",
        &format!(
            "Positions at 2–100× opened every 15 minutes on the recorded one-minute paths; \
             predicted probability of liquidation within 60 minutes (first-passage model with \
             the EWMA volatility, and a baseline with one constant volatility of {:.6} per \
             minute) against the realised frequency, per predicted-probability bin. Brier \
             scores: {}.",
            w.naive_sigma,
            w.rows
                .iter()
                .map(|(n, h, e)| format!(
                    "{n} {h} min: model {:.5}, baseline {:.5}",
                    e.brier_model, e.brier_naive
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    );
    let mut series = vec![Series {
        name: "perfect".into(),
        points: vec![(0.0, 0.0), (1.0, 1.0)],
    }];
    for (name, h, e) in w.rows.iter().filter(|(_, h, _)| *h == 60) {
        for (label, bins) in [("model", &e.model_bins), ("baseline", &e.naive_bins)] {
            series.push(Series {
                name: format!("{label}, {name} ({h} min)"),
                points: bins
                    .iter()
                    .filter(|b| b.n > 0)
                    .map(|b| (b.predicted / b.n as f64, b.hits as f64 / b.n as f64))
                    .collect(),
            });
        }
    }
    page.plot(
        "calibration",
        line_chart(
            "Early-warning calibration",
            ("predicted", Scale::Linear),
            ("realised", Scale::Linear),
            &series,
        ),
    );
}
