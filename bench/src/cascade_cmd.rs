//! `cascade-bench cascade`: runs a mark path over a generated population and reports
//! the cascade: liquidations, backstops, ADL, insurance fund drawdown, time to resolve
//! and heap allocations per command while it resolves.

use crate::{alloc_count, Args};
use cascade_bench::cascade::{self, Population, Tally, MARKET};
use cascade_core::{AdlMode, Engine, Price};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

/// A textual progress bar on stderr, drawn only when stderr is a terminal or when asked.
struct Progress {
    label: &'static str,
    total: usize,
    shown: usize,
    on: bool,
}

impl Progress {
    fn new(label: &'static str, total: usize, on: bool) -> Progress {
        Progress {
            label,
            total: total.max(1),
            shown: usize::MAX,
            on,
        }
    }

    fn tick(&mut self, done: usize) {
        let pct = done * 100 / self.total;
        if !self.on || pct == self.shown {
            return;
        }
        self.shown = pct;
        let bar = "#".repeat(pct / 4) + &".".repeat(25 - pct / 4);
        eprint!("\r{:<8} [{bar}] {pct:>3}%", self.label);
        let _ = std::io::stderr().flush();
        if done >= self.total {
            eprintln!();
        }
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let args = Args::parse(
        args,
        &[
            "--accounts",
            "--path",
            "--percent",
            "--steps",
            "--adl",
            "--seed",
            "--fund-bps",
            "--depth",
            "--haircut-bps",
            "--unwind-bps",
            "--stops",
        ],
        &["--progress", "--curve"],
    )?;
    if args.has("--curve") {
        curve();
        return Ok(());
    }
    let mut pop = Population::new(args.value("--accounts")?.unwrap_or(100_000));
    pop.seed = args.value("--seed")?.unwrap_or(pop.seed);
    pop.fund_bps = args.value("--fund-bps")?.unwrap_or(pop.fund_bps);
    pop.depth_percent = args.value("--depth")?.unwrap_or(pop.depth_percent);
    pop.fund_haircut_bps = args.value("--haircut-bps")?.unwrap_or(pop.fund_haircut_bps);
    pop.unwind_bps = args.value("--unwind-bps")?.unwrap_or(pop.unwind_bps);
    if !(0..=10_000).contains(&pop.fund_haircut_bps) || !(0..=10_000).contains(&pop.unwind_bps) {
        return Err("--haircut-bps and --unwind-bps must be 0..=10000".into());
    }
    pop.stops_pct = args.value("--stops")?.unwrap_or(0);
    if !(0..=100).contains(&pop.stops_pct) {
        return Err("--stops must be a percentage, 0..=100".into());
    }
    pop.adl = match args.value::<String>("--adl")?.as_deref() {
        None | Some("queue") => AdlMode::Queue,
        Some("pro-rata") => AdlMode::ProRata,
        Some(other) => return Err(format!("--adl: queue or pro-rata, not {other:?}")),
    };
    let path = if let Some(file) = args.value::<PathBuf>("--path")? {
        let p = cascade::load_mark_path(&file)?;
        pop.start = p[0];
        println!("mark path: {} ({} marks)", file.display(), p.len());
        p
    } else {
        let percent = args.value("--percent")?.unwrap_or(30);
        let steps = args.value("--steps")?.unwrap_or(30);
        if !(1..=90).contains(&percent) || steps < 1 {
            return Err("--percent must be 1..=90 and --steps ≥ 1".into());
        }
        println!("mark path: a {percent}% fall in {steps} equal steps");
        cascade::crash_path(pop.start, percent, steps)
    };
    let show = args.has("--progress") || std::io::stderr().is_terminal();

    let mut engine = Engine::new(pop.engine_config());
    let setup = cascade::sequence(pop.setup(), 1);
    let mut bar = Progress::new("setup", setup.len(), show);
    let mut tally = Tally::default();
    let t = Instant::now();
    for (i, c) in setup.iter().enumerate() {
        engine.apply(c, &mut tally);
        if i % 4096 == 0 || i + 1 == setup.len() {
            bar.tick(i + 1);
        }
    }
    if tally.rejects > 0 {
        return Err(format!("{} set-up commands were rejected", tally.rejects));
    }
    let risk = engine.market_risk(MARKET).expect("leveraged market");
    let fund0 = engine.insurance_fund();
    println!(
        "population: {} accounts ({} set-up commands in {:.2} s), open interest {} lots, \
         aggregate leverage {:.2}, insurance fund {fund0}",
        pop.accounts,
        setup.len(),
        t.elapsed().as_secs_f64(),
        risk.open_interest,
        risk.leverage.map_or(0.0, |l| l.to_num::<f64>()),
    );

    print_heatmap(&engine, pop.start);
    if pop.stops_pct > 0 {
        print_stop_heatmap(&engine, pop.start);
    }
    if let Some((Some(long), _)) = engine.nearest_triggers(MARKET) {
        println!(
            "distance to cascade: the first long can be liquidated at ${:.1}, {:.2}% below the mark",
            long.0 as f64 / 10.0,
            100.0 * (pop.start - long.0) as f64 / pop.start as f64
        );
    }
    let first = cascade::crash_path(pop.start, 5, 1);
    let first: Vec<Price> = first.into_iter().map(Price).collect();
    let what_if = engine.simulate_marks(MARKET, &first);
    println!(
        "what-if, a single 5% gap (on a copy): {} liquidations, {} lots through the book, \
         {} lots to the fund, {} ADL fills, best bid ${:.1} -> ${:.1}",
        what_if.liquidations,
        what_if.liquidated_lots,
        what_if.backstop_lots,
        what_if.adl_fills,
        what_if.top_before.0.map_or(0.0, |p| p.0 as f64 / 10.0),
        what_if.top_after.0.map_or(0.0, |p| p.0 as f64 / 10.0),
    );

    let marks = cascade::mark_commands(&path, setup.len() as u64 + 1);
    let mut bar = Progress::new("cascade", marks.len(), show);
    let mut tally = Tally {
        fund_low: Some(fund0),
        ..Tally::default()
    };
    let equity0 = engine.fund().equity;
    let mut equity_low = equity0;
    let (mut total, mut worst) = (0f64, 0f64);
    let allocs_before = alloc_count();
    for (i, c) in marks.iter().enumerate() {
        let t = Instant::now();
        engine.apply(c, &mut tally);
        let dt = t.elapsed().as_secs_f64();
        total += dt;
        worst = worst.max(dt);
        // The fund is marked to market: its equity moves with every mark, event or not.
        equity_low = equity_low.min(engine.fund().equity);
        bar.tick(i + 1);
    }
    let equity_low = tally.equity_low.map_or(equity_low, |l| l.min(equity_low));
    let allocs = alloc_count() - allocs_before;
    if tally.rejects > 0 {
        return Err(format!("{} mark updates were rejected", tally.rejects));
    }
    let fund = engine.insurance_fund();
    let low = tally.fund_low.unwrap_or(fund0);
    println!(
        "cascade: {} liquidations, {} liquidation fills, {} backstops, {} ADL fills",
        tally.liquidations, tally.liquidation_fills, tally.backstops, tally.adl_fills
    );
    println!(
        "insurance fund: start {fund0}, low {low} (drawdown {}), end {fund}",
        fund0 - low
    );
    let end = engine.fund();
    println!(
        "fund: cash_start={fund0} cash_end={} position_lots={} equity_low={equity_low} \
         equity_end={} unwound_lots={} bad_debt={}",
        end.cash, end.position_lots, end.equity, tally.unwound_lots, tally.bad_debt
    );
    println!("adl: fills={} lots={}", tally.adl_fills, tally.adl_lots);
    if pop.stops_pct > 0 {
        println!(
            "stops triggered={} lots={}",
            tally.stops_triggered, tally.stop_lots
        );
    }
    println!(
        "time to resolve: {:.3} s over {} mark updates (worst single update {:.3} s), \
         {} events",
        total,
        marks.len(),
        worst,
        tally.events
    );
    println!(
        "heap allocations during the cascade: {allocs} ({:.4} per command)",
        allocs as f64 / marks.len() as f64
    );
    let after = engine.market_risk(MARKET).expect("leveraged market");
    println!(
        "after: open interest {} lots, aggregate leverage {:.2}",
        after.open_interest,
        after.leverage.map_or(0.0, |l| l.to_num::<f64>())
    );
    Ok(())
}

/// Long lots by trigger price (the liquidation heatmap) from the start down 40%, in ten
/// rows, with the cumulative share of long open interest.
fn print_heatmap(engine: &Engine, start: i64) {
    let rows = 10;
    let mut lots = vec![0i64; rows];
    let low = start * 6 / 10;
    let step = (start - low) / rows as i64;
    let mut total = 0;
    engine.liquidation_heatmap(MARKET, |lo, hi, long, _| {
        total += long;
        let mid = (lo.0 + hi.0) / 2;
        if (low..start).contains(&mid) {
            lots[((start - 1 - mid) / step).min(rows as i64 - 1) as usize] += long;
        }
    });
    println!("liquidation heatmap, longs (trigger price at the index scale):");
    let mut cumulative = 0;
    for (k, &l) in lots.iter().enumerate() {
        cumulative += l;
        let hi = start - k as i64 * step;
        println!(
            "  ${:>7.0}..${:>7.0} {:>10} lots  cumulative {:>5.1}% of indexed longs",
            (hi - step) as f64 / 10.0,
            hi as f64 / 10.0,
            l,
            100.0 * cumulative as f64 / total.max(1) as f64
        );
    }
}

/// Stop-loss lots by trigger price (the stop heatmap) from the start down 40%, in ten
/// rows, beside the liquidation heatmap: sell stops of longs below the mark.
fn print_stop_heatmap(engine: &Engine, start: i64) {
    let rows = 10;
    let mut lots = vec![0i64; rows];
    let low = start * 6 / 10;
    let step = (start - low) / rows as i64;
    engine.stop_heatmap(MARKET, |lo, hi, _, sells| {
        let mid = (lo.0 + hi.0) / 2;
        if (low..start).contains(&mid) {
            lots[((start - 1 - mid) / step).min(rows as i64 - 1) as usize] += sells;
        }
    });
    println!("stop heatmap, sell stops (trigger price):");
    for (k, &l) in lots.iter().enumerate() {
        let hi = start - k as i64 * step;
        println!(
            "  ${:>7.0}..${:>7.0} {:>10} lots",
            (hi - step) as f64 / 10.0,
            hi as f64 / 10.0,
            l
        );
    }
}

/// Cascade resolution time against the number of liquidated accounts: the default 30%
/// crash over populations of 10^3 up to `max_accounts`; `(accounts, liquidations, s)`.
/// One point of the cascade curve: accounts, liquidations, seconds to resolve them all
/// and the heap allocations made meanwhile.
pub(crate) fn curve_points(max_accounts: u32) -> Vec<(u32, u64, f64, u64)> {
    let mut out = Vec::new();
    for accounts in [1_000, 10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|&a| a <= max_accounts)
    {
        let pop = Population::new(accounts);
        let mut engine = Engine::new(pop.engine_config());
        let setup = cascade::sequence(pop.setup(), 1);
        let mut tally = Tally::default();
        for c in &setup {
            engine.apply(c, &mut tally);
        }
        let mut tally = Tally::default();
        let marks = cascade::mark_commands(
            &cascade::crash_path(pop.start, 30, 30),
            setup.len() as u64 + 1,
        );
        let before = alloc_count();
        let t = Instant::now();
        for c in &marks {
            engine.apply(c, &mut tally);
        }
        let secs = t.elapsed().as_secs_f64();
        out.push((accounts, tally.liquidations, secs, alloc_count() - before));
    }
    out
}

fn curve() {
    println!("accounts  liquidations  time to resolve  per liquidation");
    for (accounts, liquidations, dt, _) in curve_points(1_000_000) {
        println!(
            "{accounts:>8}  {liquidations:>12}  {dt:>13.4} s  {:>12.0} ns",
            dt * 1e9 / liquidations.max(1) as f64
        );
    }
}
