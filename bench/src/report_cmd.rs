//! `cascade-bench report`: runs every benchmark and writes `docs/BENCHMARKS.md` with SVG
//! plots, stamped with the machine and date: the targets table (measured, met or
//! missed), throughput, in-engine and open-loop latency, LOBSTER replay, scaling curves,
//! the cascade curve, peers (with `--features peers`) and the latest criterion results.

use crate::{available_cores, cascade_cmd, measure, Args};
use cascade_bench::latency as lat;
use cascade_bench::lobster;
use cascade_bench::plot::{line_chart, Scale, Series};
use cascade_bench::workload::{self, Mix};
use cascade_core::Engine;
use hdrhistogram::Histogram;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Percentiles plotted on the latency curves.
const CURVE: [f64; 8] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 99.999];

/// Where the SVG plots go, relative to the report.
const PLOTS: &str = "benchmarks";

/// Sizes of one report run.
struct Plan {
    quick: bool,
    commands: usize,
    rates: &'static [u64],
    max_orders: usize,
    max_accounts: u32,
    max_markets: u32,
    cascade_accounts: u32,
    scale_accounts: u32,
    #[cfg_attr(not(feature = "peers"), allow(dead_code))]
    peer_ops: usize,
}

impl Plan {
    /// The report's default sizes, or the smoke-test sizes with `quick`.
    fn new(quick: bool) -> Plan {
        Plan {
            quick,
            commands: if quick { 100_000 } else { 1_000_000 },
            rates: if quick {
                &[500_000]
            } else {
                &[500_000, 1_000_000, 2_000_000]
            },
            max_orders: if quick { 10_000 } else { 10_000_000 },
            max_accounts: if quick { 10_000 } else { 10_000_000 },
            max_markets: if quick { 10 } else { 1_000 },
            cascade_accounts: if quick { 10_000 } else { 1_000_000 },
            scale_accounts: if quick { 1_000 } else { 1_000_000 },
            peer_ops: if quick { 100_000 } else { 2_000_000 },
        }
    }
}

/// What the targets table needs, filled in section by section.
#[derive(Default)]
struct Figures {
    plain_ns: f64,
    margin_ns: f64,
    allocs: u64,
    engine: Option<(u64, u64, u64)>,
    clock_p50: u64,
    open_1m: Option<(u64, u64, u64)>,
    lobster: Option<(f64, f64)>,
    peer_ratio: Option<f64>,
    wide: Option<(usize, f64)>,
    growth: Vec<(&'static str, f64)>,
    cascade: Option<(f64, f64)>,
}

/// The report's output: Markdown text and plots (written only with a directory).
struct Out {
    dir: Option<PathBuf>,
    md: String,
}

impl Out {
    fn plot(&mut self, name: &str, alt: &str, svg: &str) -> Result<(), String> {
        if let Some(dir) = &self.dir {
            let path = dir.join(PLOTS).join(name);
            std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
            let _ = writeln!(self.md, "\n![{alt}]({PLOTS}/{name})\n");
        }
        Ok(())
    }
}

/// `cascade-bench scaling`: the report's scaling section alone, printed as Markdown.
pub(crate) fn scaling_command(args: &[String]) -> Result<(), String> {
    let args = Args::parse(
        args,
        &[
            "--max-orders",
            "--max-accounts",
            "--max-markets",
            "--commands",
        ],
        &[],
    )?;
    let plan = Plan {
        commands: args.value::<usize>("--commands")?.unwrap_or(500_000) * 2,
        max_orders: args.value("--max-orders")?.unwrap_or(1_000_000),
        max_accounts: args.value("--max-accounts")?.unwrap_or(1_000_000),
        max_markets: args.value("--max-markets")?.unwrap_or(1_000),
        ..Plan::new(false)
    };
    let mut out = Out {
        dir: None,
        md: String::new(),
    };
    scaling(&plan, &mut Figures::default(), &mut out)?;
    print!("{}", out.md);
    Ok(())
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let args = Args::parse(
        args,
        &[
            "--out",
            "--max-orders",
            "--max-accounts",
            "--lobster",
            "--criterion",
        ],
        &["--quick"],
    )?;
    let quick = args.has("--quick");
    // Read before the latency runs pin this thread to one core.
    let machine = format!(
        "{} (UTC): {}, {} cores visible",
        today(),
        cpu_model(),
        available_cores()
    );
    let mut plan = Plan::new(quick);
    if let Some(n) = args.value("--max-orders")? {
        plan.max_orders = n;
    }
    if let Some(n) = args.value("--max-accounts")? {
        plan.max_accounts = n;
    }
    let lobster_dir: PathBuf = args.value("--lobster")?.unwrap_or_else(|| {
        std::env::var_os("CASCADE_LOBSTER_DIR")
            .map_or_else(|| "../shared/data/lobster".into(), PathBuf::from)
    });
    let criterion: PathBuf = args
        .value("--criterion")?
        .unwrap_or_else(|| "target/criterion".into());
    let dir: PathBuf = args.value("--out")?.unwrap_or_else(|| "docs".into());
    std::fs::create_dir_all(dir.join(PLOTS)).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut md = String::new();

    let mut f = Figures::default();
    let mut body = Out {
        dir: Some(dir.clone()),
        md: String::new(),
    };
    eprintln!("report: throughput");
    throughput(&plan, &mut f, &mut body);
    eprintln!("report: in-engine latency");
    engine_latency(&plan, &mut f, &mut body);
    eprintln!("report: open-loop latency");
    open_loop(&plan, &mut f, &mut body)?;
    eprintln!("report: LOBSTER");
    lobster_section(&lobster_dir, &mut f, &mut body)?;
    eprintln!("report: scaling");
    scaling(&plan, &mut f, &mut body)?;
    eprintln!("report: cascade");
    cascade_section(&plan, &mut f, &mut body)?;
    eprintln!("report: exchange-scale state");
    scale_section(&plan, &mut body)?;
    eprintln!("report: peers");
    peers_section(&plan, &mut f, &mut body);
    criterion_section(&criterion, &mut body);

    let command = format!(
        "cargo run --release -p cascade-bench{} -- report{}",
        if cfg!(feature = "peers") {
            " --features peers"
        } else {
            ""
        },
        args_echo(&args, quick)
    );
    let _ = writeln!(
        md,
        "# Benchmarks\n\n\
         Generated by `{command}` on {machine}. Every figure on this \
         page comes from that one run (criterion results from the last `cargo bench` \
         before it), so anyone can regenerate it; timings on a shared virtual machine \
         move by ±10% from run to run, ratios measured in one run are steadier. Nothing \
         here is asserted in a test: CI only smoke-runs each command.\n"
    );
    md += &targets(&f);
    md += MISSES;
    md += WORKLOAD;
    md += &body.md;
    let path = dir.join("BENCHMARKS.md");
    std::fs::write(&path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The report's own flags, echoed into its header.
fn args_echo(args: &Args, quick: bool) -> String {
    let mut s = String::new();
    for flag in ["--max-orders", "--max-accounts"] {
        if let Ok(Some(v)) = args.value::<String>(flag) {
            let _ = write!(s, " {flag} {v}");
        }
    }
    if quick {
        s += " --quick";
    }
    s
}

const MISSES: &str = "## Reading the misses\n\n\
Where the time goes comes from `perf record -g target/release/cascade-bench throughput` \
(a sampling profile; this page does not reproduce its percentages).\n\n\
- **Plain throughput and in-engine median.** Every structure a command touches is O(1): \
a dense level array found through a bitmap, pooled orders, a direct-mapped order-id \
index and a client-id table that hold only slot numbers. What remains is memory \
latency: a new order reads its account, its level, the tail of the level's queue and \
the account's order list, writes a pool record and two index entries; a cancel reads \
the index, the record and its neighbours in two lists. Each is a random access into \
megabytes, and every command also emits sequenced events. The 40 M/s single-book \
figure quoted in the issue keeps none of the per-account lists, client-id uniqueness \
or event stream. Next levers: a smaller order record (64 bytes now), keeping the \
per-account order list only where mass cancel or margin needs it, cheaper event \
emission, and prefetching a command's index and level lines so their misses overlap \
(the intrinsics need `unsafe`, which `core` forbids today).\n\
- **Margin-checked.** On top of the book, each order recomputes its pool's worst-case \
exposure and initial margin, and each fill settles both sides and re-keys both \
positions in the liquidation trigger index (a trigger price per maintenance tier in \
128-bit arithmetic).\n\
- **Open loop.** The harness floor (ring hand-off between two vCPUs, no engine) is \
most of the median, and its tails are as long as the engine's: the virtual CPUs are \
descheduled for milliseconds now and then.\n\
- **Peers.** The ratio follows the plain throughput; the peers' workload is the same \
kind of command mix.\n\
- **Scaling.** Costs grow with size only through the working set: at 10^7 resting \
orders the live order records alone take 640 MB, so each command pays several cache \
and TLB misses; no structure is walked, and where prices sit (narrow or ±20%) does not \
matter.\n\n";

const WORKLOAD: &str = "## Workload\n\n\
`bench/src/workload.rs`, seed 42: one market with tick 1 around a mid of 100,000 that \
random-walks, 1,000 accounts. About 56% limit adds 1–50 ticks behind the mid, 34% cancels \
of live orders, 10% marketable orders (80% IOC up to 20 ticks through the mid, 20% market \
orders with a 0.5% band), 1–100 lots each; the generator steers the book to about 10,000 \
resting orders. Cancels name real order ids: the log is generated against a live engine, \
then replayed on a fresh one. The margin-checked variant runs the same generator on a \
leveraged market with liquidation on (20× max, three maintenance tiers, maker −1 bp / taker \
5 bp, volatility-scaled margin): every account deposits first, every order passes the \
initial-margin check, every fill settles into positions with fees and keeps the \
liquidation trigger index current, and 1% of the commands are mark updates following the \
mid.\n\n";

/// A histogram's value at percentile `q`, with thousands separators.
fn p(h: &Histogram<u64>, q: f64) -> String {
    g(h.value_at_percentile(q))
}

/// p50, p99 and p99.9.
fn triple(h: &Histogram<u64>) -> (u64, u64, u64) {
    let q = |q| h.value_at_percentile(q);
    (q(50.0), q(99.0), q(99.9))
}

/// `n` with thousands separators: 1234567 → "1,234,567".
fn g(n: impl Into<u64>) -> String {
    let digits = n.into().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn throughput(plan: &Plan, f: &mut Figures, out: &mut Out) {
    let runs = if plan.quick { 1 } else { 3 };
    let mix = Mix {
        commands: plan.commands * 2,
        ..Mix::default()
    };
    let (plain, a) = measure(&mix, runs);
    let (margin, b) = measure(
        &Mix {
            margin: true,
            ..mix
        },
        runs,
    );
    let replaces = Mix {
        cancel_pct: 24,
        replace_pct: 20,
        ..mix
    };
    let (replacing, c) = measure(&replaces, runs);
    (f.plain_ns, f.margin_ns, f.allocs) = (plain, margin, a.max(b).max(c));
    let _ = writeln!(
        out.md,
        "## Throughput (one engine thread)\n\n\
         `throughput` — {} commands after set-up, best of {runs} runs on fresh engines; \
         heap allocations counted by a global counting allocator during the measured \
         commands.\n\n\
         | workload | ns/command | M commands/s | heap allocations |\n|---|---|---|---|\n\
         | plain book | {plain:.1} | {:.2} | {a} |\n\
         | margin-checked, liquidation on | {margin:.1} | {:.2} | {b} |\n\
         | plain, with replaces (`--cancel-pct 24 --replace-pct 20`) | {replacing:.1} | {:.2} | {c} |\n\n\
         Margin-checked / plain: {:.2}×.\n",
        g(mix.commands as u64),
        1e3 / plain,
        1e3 / margin,
        1e3 / replacing,
        margin / plain
    );
}

/// Per-command time inside `apply`, one clock read pair around each command, for the
/// plain and the margin-checked workload; the clock pair alone is measured too.
fn engine_latency(plan: &Plan, f: &mut Figures, out: &mut Out) {
    let mut clock = lat::histogram();
    for _ in 0..100_000 {
        let t = Instant::now();
        clock.saturating_record(t.elapsed().as_nanos() as u64);
    }
    f.clock_p50 = clock.value_at_percentile(50.0);
    let _ = writeln!(
        out.md,
        "## Per-command latency in the engine thread\n\n\
         Each of {} commands applied in a loop with a clock read pair around it (closed \
         loop, no ring); the pair alone costs p50 {} ns / p99 {} ns and is included.\n\n\
         | workload | p50 | p90 | p99 | p99.9 | p99.99 | max |\n|---|---|---|---|---|---|---|",
        g(plan.commands as u64),
        p(&clock, 50.0),
        p(&clock, 99.0)
    );
    for margin in [false, true] {
        let mix = Mix {
            commands: plan.commands,
            margin,
            ..Mix::default()
        };
        let w = workload::generate(&mix);
        let mut engine = Engine::new(workload::engine_config(&mix));
        let mut sink = lat::Count::default();
        for c in &w.setup {
            engine.apply(c, &mut sink);
        }
        let mut h = lat::histogram();
        for c in &w.commands {
            let t = Instant::now();
            engine.apply(c, &mut sink);
            h.saturating_record(t.elapsed().as_nanos() as u64);
        }
        if !margin {
            f.engine = Some(triple(&h));
        }
        let _ = writeln!(
            out.md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            if margin { "margin-checked" } else { "plain" },
            p(&h, 50.0),
            p(&h, 90.0),
            p(&h, 99.0),
            p(&h, 99.9),
            p(&h, 99.99),
            g(h.max())
        );
    }
    out.md.push('\n');
}

fn open_loop(plan: &Plan, f: &mut Figures, out: &mut Out) -> Result<(), String> {
    let mix = Mix {
        commands: plan.commands,
        ..Mix::default()
    };
    let w = workload::generate(&mix);
    let cmds = std::sync::Arc::new(w.commands);
    let _ = writeln!(
        out.md,
        "## Open-loop latency\n\n\
         `latency` — plain workload, {} commands per offered rate. A generator thread \
         pinned to one core offers command *i* at `start + i / rate` and pushes its index \
         into a bounded crossbeam ring ({} slots; a full ring makes the generator wait, \
         nothing is dropped); the engine thread pinned to another core pops and applies. \
         Latency runs from the **intended** send time to the end of `apply` \
         (coordinated omission corrected). \"in-engine\" is the time inside `apply`; the \
         **floor** is the same harness with no engine, measured in the same run. \
         Nanoseconds:\n\n\
         | offered rate | p50 | p90 | p99 | p99.9 | p99.99 | max | in-engine p50 / p99 | floor p50 / p99 / p99.9 |\n\
         |---|---|---|---|---|---|---|---|---|",
        g(plan.commands as u64),
        g(lat::RING_CAPACITY as u64)
    );
    let mut series = Vec::new();
    for &rate in plan.rates {
        let floor = lat::run(None, &w.setup, &cmds, rate);
        let r = lat::run(
            Some(Engine::new(workload::engine_config(&mix))),
            &w.setup,
            &cmds,
            rate,
        );
        let h = &r.latency;
        let _ = writeln!(
            out.md,
            "| {:.1} M/s | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} / {} |",
            rate as f64 / 1e6,
            p(h, 50.0),
            p(h, 90.0),
            p(h, 99.0),
            p(h, 99.9),
            p(h, 99.99),
            g(h.max()),
            p(&r.service, 50.0),
            p(&r.service, 99.0),
            p(&floor.latency, 50.0),
            p(&floor.latency, 99.0),
            p(&floor.latency, 99.9),
        );
        if rate == 1_000_000 {
            f.open_1m = Some(triple(h));
        }
        let curve = |h: &Histogram<u64>| {
            CURVE
                .iter()
                .map(|&q| (100.0 / (100.0 - q), h.value_at_percentile(q).max(1) as f64))
                .collect()
        };
        series.push(Series {
            name: format!("{:.1} M/s", rate as f64 / 1e6),
            points: curve(h),
        });
        if rate == plan.rates[0] {
            series.push(Series {
                name: format!("floor {:.1} M/s", rate as f64 / 1e6),
                points: curve(&floor.latency),
            });
        }
    }
    let _ = writeln!(
        out.md,
        "\nWhere the floor's tails are as long as the engine's, they are the virtual \
         machine's: its vCPUs are descheduled now and then and every command offered \
         meanwhile waits, which coordinated-omission correction charges."
    );
    out.plot(
        "latency.svg",
        "open-loop latency percentile curves",
        &line_chart(
            "Open-loop latency by percentile",
            (
                "1 / (1 − percentile): 2 = p50, 100 = p99, 1e3 = p99.9",
                Scale::Log,
            ),
            ("latency, ns", Scale::Log),
            &series,
        ),
    )
}

/// The first `*_message_*.csv` in `dir` and its `*_orderbook_*.csv`.
fn lobster_files(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    names.into_iter().find_map(|m| {
        let name = m.file_name()?.to_str()?;
        let book = m.with_file_name(name.replace("_message_", "_orderbook_"));
        (name.contains("_message_") && book.exists()).then_some((m, book))
    })
}

fn lobster_section(dir: &Path, f: &mut Figures, out: &mut Out) -> Result<(), String> {
    let _ = writeln!(out.md, "## LOBSTER replay\n");
    let Some((messages, orderbook)) = lobster_files(dir) else {
        let _ = writeln!(
            out.md,
            "No LOBSTER files found in `{}` (set `--lobster DIR` or `CASCADE_LOBSTER_DIR`): \
             section skipped.\n",
            dir.display()
        );
        return Ok(());
    };
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let (text, book_text) = (read(&messages)?, read(&orderbook)?);
    let t = Instant::now();
    let msgs = lobster::parse_messages(&messages, &text).map_err(|e| e.to_string())?;
    let parse = t.elapsed().as_secs_f64();
    let rows = lobster::parse_rows(&orderbook, &book_text).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let report = lobster::replay(&msgs, &rows).map_err(|e| e.to_string())?;
    let verified = t.elapsed().as_secs_f64();
    let mut engine = Engine::new(report.config);
    let mut sink = lat::Count::default();
    let (setup, replayed) = report.commands.split_at(report.setup_len);
    for c in setup {
        engine.apply(c, &mut sink);
    }
    let t = Instant::now();
    for c in replayed {
        engine.apply(c, &mut sink);
    }
    let apply = t.elapsed().as_secs_f64();
    let n = msgs.len() as f64;
    let rate = n / (parse + apply);
    f.lobster = Some((rate, n / verified));
    let _ = writeln!(
        out.md,
        "`{}` ({} messages, {} engine commands after the initial book):\n\n\
         | step | time | messages/s |\n|---|---|---|\n\
         | parse the message file (from memory) | {:.1} ms | {:.2} M |\n\
         | apply the replay's commands on a fresh engine | {:.1} ms | {:.2} M |\n\
         | **parse + apply** | {:.1} ms | **{:.2} M** |\n\
         | full conformance replay (`replay-lobster`: translate, apply, compare the book \
         with the exchange's after every message) | {:.1} ms | {:.2} M |\n",
        messages
            .file_name()
            .map_or_else(Default::default, |n| n.to_string_lossy()),
        g(msgs.len() as u64),
        g(replayed.len() as u64),
        parse * 1e3,
        n / parse / 1e6,
        apply * 1e3,
        n / apply / 1e6,
        (parse + apply) * 1e3,
        rate / 1e6,
        verified * 1e3,
        n / verified / 1e6,
    );
    // The same commands as an open-loop workload (`latency --lobster`).
    let rate = 1_000_000;
    let commands = std::sync::Arc::new(replayed.to_vec());
    let r = lat::run(Some(Engine::new(report.config)), setup, &commands, rate);
    let h = &r.latency;
    let _ = writeln!(
        out.md,
        "The replay's commands offered open loop at {} M/s through the ring (`latency \
         --lobster`), ns: p50 {}, p90 {}, p99 {}, p99.9 {}, max {}; in-engine p50 {} / \
         p99 {}.\n",
        rate / 1_000_000,
        p(h, 50.0),
        p(h, 90.0),
        p(h, 99.0),
        p(h, 99.9),
        g(h.max()),
        p(&r.service, 50.0),
        p(&r.service, 99.0),
    );
    Ok(())
}

/// One cost-per-command curve with one or more series over the same x values.
fn curve(
    out: &mut Out,
    (title, x, svg): (&str, &str, &str),
    xs: &[usize],
    series: &[(&str, &dyn Fn(usize) -> Mix)],
) -> Result<Vec<Vec<f64>>, String> {
    let _ = write!(out.md, "### {title}\n\n| {x} |");
    for (name, _) in series {
        let _ = write!(out.md, " {name}, ns/command |");
    }
    let _ = writeln!(out.md, "\n|---|{}", "---|".repeat(series.len()));
    let mut ys = vec![Vec::new(); series.len()];
    for &n in xs {
        let _ = write!(out.md, "| {} |", g(n as u64));
        for (k, (_, mix)) in series.iter().enumerate() {
            let ns = measure(&mix(n), 2).0;
            let first = ys[k].first().copied().unwrap_or(ns);
            let _ = write!(out.md, " {ns:.1} ({:.2}×) |", ns / first);
            ys[k].push(ns);
        }
        out.md.push('\n');
    }
    out.md.push('\n');
    let plotted: Vec<Series> = series
        .iter()
        .zip(&ys)
        .map(|((name, _), y)| Series {
            name: (*name).into(),
            points: xs
                .iter()
                .map(|&n| n as f64)
                .zip(y.iter().copied())
                .collect(),
        })
        .collect();
    out.plot(
        svg,
        title,
        &line_chart(
            title,
            (x, Scale::Log),
            ("ns per command", Scale::Linear),
            &plotted,
        ),
    )?;
    Ok(ys)
}

/// Last point over first point of a curve (1 for an empty one).
fn growth(y: &[f64]) -> f64 {
    y.last().copied().unwrap_or(1.0) / y.first().copied().unwrap_or(1.0)
}

fn powers(max: usize, from: usize) -> Vec<usize> {
    std::iter::successors(Some(from), |&n| Some(n * 10))
        .take_while(|&n| n <= max)
        .collect()
}

fn scaling(plan: &Plan, f: &mut Figures, out: &mut Out) -> Result<(), String> {
    let base = Mix {
        commands: plan.commands / 2,
        prefill: true,
        ..Mix::default()
    };
    let _ = writeln!(
        out.md,
        "## Scaling\n\n\
         `scaling` — each point prefills its state in the unmeasured set-up, then measures \
         {} commands of the mixed workload steered to stay near that size (best of 2); \
         ratios are against the first point of the same curve in this run.\n",
        g(base.commands as u64)
    );
    let orders = powers(plan.max_orders, 1_000);
    let narrow = |n: usize| Mix {
        target_orders: n,
        ..base
    };
    let wide = |n: usize| Mix {
        target_orders: n,
        spread_ticks: 20_000,
        ..base
    };
    let ys = curve(
        out,
        (
            "Cost per command against resting orders",
            "resting orders",
            "book_scaling.svg",
        ),
        &orders,
        &[
            ("narrow book (adds within 50 ticks)", &narrow),
            ("wide book (adds within 20,000 ticks, ±20%)", &wide),
        ],
    )?;
    f.growth.push(("resting orders", growth(&ys[0])));
    if let (Some(&n), Some(narrow), Some(wide)) = (orders.last(), ys[0].last(), ys[1].last()) {
        f.wide = Some((n, wide / narrow));
        let _ = writeln!(
            out.md,
            "Wide / narrow at {} resting orders: {:.2}×. Levels are a dense array found \
             through a bitmap, never walked, so where prices sit does not matter; size \
             does, through the working set (order pool, id tables) outgrowing the caches.\n",
            g(n as u64),
            wide / narrow
        );
    }
    let accounts = |a: usize| Mix {
        accounts: a as u32,
        margin: true,
        ..base
    };
    let ys = curve(
        out,
        (
            "Cost per command against accounts",
            "accounts",
            "account_scaling.svg",
        ),
        &powers(plan.max_accounts as usize, 1_000),
        &[("margin-checked, book near 10,000 orders", &accounts)],
    )?;
    f.growth.push(("accounts", growth(&ys[0])));
    let markets = |m: usize| Mix {
        markets: m as u32,
        ..base
    };
    let ys = curve(
        out,
        (
            "Cost per command against markets",
            "markets",
            "market_scaling.svg",
        ),
        &powers(plan.max_markets as usize, 1),
        &[(
            "plain, orders spread uniformly, book near 10,000 orders in all",
            &markets,
        )],
    )?;
    f.growth.push(("markets", growth(&ys[0])));
    Ok(())
}

fn cascade_section(plan: &Plan, f: &mut Figures, out: &mut Out) -> Result<(), String> {
    let rows = cascade_cmd::curve_points(plan.cascade_accounts);
    let _ = writeln!(
        out.md,
        "## Cascade resolution against liquidated accounts\n\n\
         `cascade --curve` — a generated population on one BTC-like market \
         (`bench/src/cascade.rs`: long/short pairs with leverage from 1× to 24×, market \
         makers' bid ladders down to −35%, an insurance fund of 0.1% of open interest), \
         then a 30% fall in 30 mark steps; each mark update runs its whole cascade.\n\n\
         | accounts | liquidations | time to resolve | per liquidation | heap allocations |\n\
         |---|---|---|---|---|"
    );
    let (mut total, mut each) = (Vec::new(), Vec::new());
    for &(accounts, liquidations, secs, allocs) in &rows {
        let per = secs * 1e9 / liquidations.max(1) as f64;
        let _ = writeln!(
            out.md,
            "| {} | {} | {secs:.4} s | {} ns | {allocs} |",
            g(accounts),
            g(liquidations),
            g(per as u64)
        );
        f.allocs = f.allocs.max(allocs);
        total.push((liquidations.max(1) as f64, (secs * 1e3).max(1e-6)));
        each.push((liquidations.max(1) as f64, per / 1e3));
    }
    let per: Vec<f64> = each.iter().map(|e| e.1 * 1e3).collect();
    f.cascade = Some((
        per.iter().copied().fold(f64::INFINITY, f64::min),
        per.iter().copied().fold(0.0, f64::max),
    ));
    out.plot(
        "cascade.svg",
        "cascade resolution time",
        &line_chart(
            "Cascade resolution time",
            ("liquidated accounts", Scale::Log),
            ("ms (total) / µs (per liquidation)", Scale::Log),
            &[
                Series {
                    name: "total, ms".into(),
                    points: total,
                },
                Series {
                    name: "per liquidation, µs".into(),
                    points: each,
                },
            ],
        ),
    )
}

/// `scale`: memory and costs against accounts holding 3 positions each over 1,000 markets.
fn scale_section(plan: &Plan, out: &mut Out) -> Result<(), String> {
    let _ = writeln!(
        out.md,
        "## Exchange-scale state\n\n\
         `scale --max-accounts {}` (`bench/src/scale_cmd.rs`): 1,000 liquidating markets, \
         accounts in pairs trading one lot in three markets each (every account holds three \
         cross positions), a tenth of the buyers thin; per row a fresh engine. Memory is \
         the heap the engine holds (capacities reserved up front) and the resident set; \
         then ns per command of a mixed workload, per `FundingRate` (mean over 1,024 \
         payments of ±1 bp, the slowest: a rebase that re-keys the market's holders, and the \
         mean with only two holders in an engine of that many account slots), per quiet \
         `MarkPrice`, and one `MarkPrice` falling 10% that \
         liquidates the thin pools holding that market.\n\n\
         | accounts | positions | engine heap | resident | ns/command | FundingRate mean | \
         FundingRate max | FundingRate, 2 holders | quiet MarkPrice | cascading MarkPrice | \
         liquidated |\n\
         |---|---|---|---|---|---|---|---|---|---|---|",
        plan.scale_accounts
    );
    let mut n = 1_000u32;
    while n <= plan.scale_accounts {
        let r = crate::scale_cmd::row(n, if plan.quick { 10_000 } else { 200_000 })?;
        let _ = writeln!(
            out.md,
            "| {} | {} | {} MB | {} MB | {:.0} | {} | {} | {} | {:.0} ns | {} | {} |",
            g(n),
            g(r.held),
            g((r.engine_bytes / 1_000_000) as u64),
            g(r.rss / 1_000_000),
            r.mixed,
            human_ns(r.funding),
            human_ns(r.funding_max),
            human_ns(r.funding_two),
            r.mark,
            human_ns(r.cascade),
            g(r.liquidated)
        );
        n = n.saturating_mul(10);
    }
    let _ = writeln!(out.md);
    Ok(())
}

#[cfg(not(feature = "peers"))]
fn peers_section(_: &Plan, _: &mut Figures, out: &mut Out) {
    let _ = writeln!(
        out.md,
        "## Peers side by side\n\nThis report was built without the peer books; \
         `cargo run --release -p cascade-bench --features peers -- report` includes them.\n"
    );
}

#[cfg(feature = "peers")]
fn peers_section(plan: &Plan, f: &mut Figures, out: &mut Out) {
    use cascade_bench::peers;
    let runs = if plan.quick { 1 } else { 3 };
    let ops = peers::generate(plan.peer_ops, 42, 10_000);
    let rows = peers::compare(&ops, runs, || peers::all_books(plan.peer_ops));
    let fastest = rows
        .iter()
        .skip(1)
        .map(|r| r.ops_per_sec)
        .fold(0.0, f64::max);
    f.peer_ratio = Some(rows[0].ops_per_sec / fastest);
    let _ = writeln!(
        out.md,
        "## Peers side by side\n\n\
         `peers` (built with `--features peers`) — {}, book near 10,000 orders, best of \
         {runs} runs; the subset every book supports: resting limit adds that never cross, \
         cancels by id, market orders from one taker that never rests. Latency is one clock \
         read pair per operation. Every book must report Cascade's fills and volume.\n\n\
         | book | M ops/s | vs fastest peer | p50 / p99 / p99.9 ns | fills, lots | agreement |\n\
         |---|---|---|---|---|---|",
        peers::describe(&ops)
    );
    for row in &rows {
        let agreement = row
            .agreement(rows[0].tally)
            .map_or_else(|e| e, str::to_owned);
        let _ = writeln!(
            out.md,
            "| {} | {:.2} | {:.2}× | {} / {} / {} | {}, {} | {agreement} |",
            row.name,
            row.ops_per_sec / 1e6,
            row.ops_per_sec / fastest,
            p(&row.latency, 50.0),
            p(&row.latency, 99.0),
            p(&row.latency, 99.9),
            g(row.tally.fills),
            g(row.tally.volume),
        );
    }
    let _ = writeln!(
        out.md,
        "\nSemantics that differ: `lobster` and `rust-order-book` take unsigned prices, \
         `orderbook-rs` u128 prices and its own id type and is built for concurrent access \
         (used here from one thread); `rust-order-book` assigns its own order ids, so its \
         adapter keeps a vector from workload id to its id, and it reports volume but no \
         per-fill records. Cascade is driven through its public command API with the \
         workload ids as client order ids, cancelling by client id.\n"
    );
}

/// The latest criterion results (`cargo bench -p cascade-bench --bench engine`), read
/// from criterion's own output directory.
fn criterion_section(dir: &Path, out: &mut Out) {
    let _ = writeln!(
        out.md,
        "## Criterion micro-benchmarks\n\n\
         `cargo bench -p cascade-bench --bench engine -- --warm-up-time 1 --measurement-time 3` \
         (run before the report; read from `{}`). Engines are warmed with workload \
         commands (book near 10,000 orders); each iteration leaves the state as it found \
         it.\n",
        dir.display()
    );
    let mut found = Vec::new();
    collect_estimates(dir, &mut found);
    found.sort_by(|a, b| a.0.cmp(&b.0));
    if found.is_empty() {
        let _ = writeln!(
            out.md,
            "No criterion results found: run the command above first.\n"
        );
        return;
    }
    let _ = writeln!(out.md, "| benchmark | mean |\n|---|---|");
    for (name, ns) in found {
        let _ = writeln!(out.md, "| {name} | {} |", human_ns(ns));
    }
    out.md.push('\n');
}

/// Every `new/benchmark.json` + `new/estimates.json` pair under `dir`: (full id, mean ns).
fn collect_estimates(dir: &Path, found: &mut Vec<(String, f64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.file_name().is_some_and(|n| n == "new") {
            let read = |f: &str| std::fs::read_to_string(path.join(f)).ok();
            let id = read("benchmark.json").and_then(|t| json_field(&t, "\"full_id\":\""));
            let mean = read("estimates.json")
                .and_then(|t| json_field(&t, "\"point_estimate\":"))
                .and_then(|v| v.parse().ok());
            if let (Some(id), Some(mean)) = (id, mean) {
                found.push((id, mean));
            }
        } else if path.is_dir() && path.file_name().is_some_and(|n| n != "report") {
            collect_estimates(&path, found);
        }
    }
}

/// The text after the first `key` up to the next `"`, `,` or `}` (criterion's JSON: the
/// first `point_estimate` is the mean's).
fn json_field(text: &str, key: &str) -> Option<String> {
    let rest = &text[text.find(key)? + key.len()..];
    let end = rest.find(['"', ',', '}'])?;
    Some(rest[..end].to_string())
}

fn human_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// The targets against this run's figures.
fn targets(f: &Figures) -> String {
    let mut md = String::from(
        "## Targets\n\nThe benchmarks issue's targets against this run (the sections below \
         give each figure's method):\n\n| target | measured | |\n|---|---|---|\n",
    );
    let mut row = |target: &str, measured: String, met: Option<bool>| {
        let verdict = match met {
            Some(true) => "**met**",
            Some(false) => "**missed**",
            None if target.contains("no numeric target") => "",
            None => "not measured in this run",
        };
        let _ = writeln!(md, "| {target} | {measured} | {verdict} |");
    };
    let plain = 1e3 / f.plain_ns;
    row(
        "plain mixed workload ≥ 25 M commands/s (stretch 40 M)",
        format!("{plain:.1} M/s"),
        Some(plain >= 25.0),
    );
    if let Some((p50, p99, p999)) = f.engine {
        row(
            "in-engine per command p50 ≤ 60 ns, p99 ≤ 300 ns, p99.9 ≤ 600 ns",
            format!(
                "{p50} / {p99} / {p999} ns (clock pair p50 {} ns included)",
                f.clock_p50
            ),
            Some(p50 <= 60 && p99 <= 300 && p999 <= 600),
        );
    }
    let open = f
        .open_1m
        .map_or(("no 1 M/s rate".into(), None), |(a, b, c)| {
            (
                format!("p50 {} ns, p99 {} ns, p99.9 {} ns", g(a), g(b), g(c)),
                Some(a <= 200 && b <= 1_000 && c <= 2_000),
            )
        });
    row(
        "open loop at 1 M/s: p50 ≤ 200 ns, p99 ≤ 1 µs, p99.9 ≤ 2 µs",
        open.0,
        open.1,
    );
    let margin = 1e3 / f.margin_ns;
    row(
        "margin on, marks moving ≥ 10 M commands/s",
        format!("{margin:.1} M/s"),
        Some(margin >= 10.0),
    );
    row(
        "LOBSTER replay including parsing ≥ 5 M messages/s",
        f.lobster.map_or("no data".into(), |(r, full)| {
            format!(
                "{:.2} M/s parsing and applying the translated log; {:.2} M/s for the \
                 conformance replay, which also translates and compares the book after \
                 every message",
                r / 1e6,
                full / 1e6
            )
        }),
        f.lobster.map(|(r, _)| r >= 5e6),
    );
    row(
        "≥ 4× the fastest peer crate, same fills and volume",
        f.peer_ratio
            .map_or("built without peers".into(), |r| format!("{r:.2}×")),
        f.peer_ratio.map(|r| r >= 4.0),
    );
    if let Some((n, r)) = f.wide {
        row(
            "wide prices (±20%) ≤ 2× the narrow cost at 10^7 resting orders",
            format!("{r:.2}× at {} resting orders", g(n as u64)),
            (n >= 10_000_000).then_some(r <= 2.0),
        );
    }
    for (what, g) in &f.growth {
        row(
            &format!("cost flat or logarithmic in {what} (read here: last / first ≤ 2×)"),
            format!("{g:.2}× over the curve"),
            Some(*g <= 2.0),
        );
    }
    if let Some((lo, hi)) = f.cascade {
        row(
            "cascade resolution time against liquidated accounts (no numeric target)",
            format!("{lo:.0}–{hi:.0} ns per liquidation"),
            None,
        );
    }
    row(
        "zero heap allocations per command after warm-up, liquidations included",
        format!(
            "{} in the measured throughput and cascade runs (and `tests/tests/zero_alloc.rs`)",
            f.allocs
        ),
        Some(f.allocs == 0),
    );
    md.push('\n');
    md
}

/// The CPU model from `/proc/cpuinfo`, or "unknown CPU".
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Today's date, `YYYY-MM-DD` (UTC), from the system clock (days-to-civil conversion).
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
