//! `cascade-bench`: the command-line front end (demo, LOBSTER replay).

use cascade_bench::lobster;
use cascade_bench::workload::{self, Mix};
use cascade_core::{Engine, Event, EventKind, EventSink, HashSink, MarketId, Side};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

mod cascade_cmd;
mod follower;
mod journal_cmd;
mod lab_cmd;
mod record_cmd;
mod report_cmd;
mod risk_cmd;
mod scale_cmd;
mod snapshot_cmd;
mod wire_cmd;

/// Counts heap allocations (all threads) so `cascade` can report them per command.
struct CountingAlloc;

static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bytes allocated and not yet freed (all threads).
static LIVE_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// SAFETY: every method forwards its arguments unchanged to the system allocator, which
// upholds the GlobalAlloc contract; the only addition is a relaxed counter increment.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's layout obligations pass through unchanged.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: `ptr` came from `System` with this layout (every allocation does).
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        LIVE_BYTES.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: as for `dealloc`; `size` is the caller's, unchanged.
        unsafe { std::alloc::System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Heap bytes allocated and not freed.
fn bytes_live() -> usize {
    LIVE_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Heap allocations so far (including reallocations).
fn alloc_count() -> u64 {
    ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

const USAGE: &str = "usage:
  cascade-bench demo [--commands N] [--seed S]
      generate a seeded mixed workload, run it, print throughput and book/fill statistics
  cascade-bench throughput [--commands N] [--runs R] [SHARES]
      best-of-R commands/s on one engine thread for the plain and the margin-checked workload
  cascade-bench latency [--rates R1,R2,..] [--commands N] [--margin] [--hgrm DIR] [SHARES]
      [--lobster <message.csv> <orderbook.csv>]
      open-loop latency at fixed offered rates, generator -> ring -> pinned engine thread,
      measured from each command's intended send time (coordinated omission corrected);
      the workload is the generated mix or the commands of a LOBSTER replay
  cascade-bench scaling [--max-orders N] [--max-accounts N] [--max-markets N] [--commands N]
      cost per command against resting orders (narrow and ±20% books), accounts and
      markets, printed as the report's Markdown section
  cascade-bench scale [--max-accounts N] [--commands N]
      engine memory and ns per command (mixed, FundingRate, quiet MarkPrice) at 10^3 ..
      N accounts (default 10^7) holding 3 positions each over 1,000 markets; the last
      line is key=value pairs
  cascade-bench peers [--commands N] [--runs R]   (built with --features peers)
      the same workload through Cascade and three crates.io order books, side by side
  cascade-bench replay-lobster <message.csv> <orderbook.csv>
      [--max-exec-mismatch-pct P] [--max-book-mismatch-pct P] [--explain]
      replay LOBSTER order flow and check the engine against the exchange after every message
  cascade-bench cascade [--accounts N] [--path KLINE.csv | --percent P --steps S]
      [--adl queue|pro-rata] [--seed S] [--fund-bps B] [--depth PCT] [--progress]
      [--haircut-bps B] [--unwind-bps B] [--stops PCT]
      run a crash (default 30% in 30 steps) or a recorded mark path over a generated
      population (default 100,000 accounts): heatmap, liquidations, ADL, insurance fund
      (cash and marked-to-market equity, unwinding, bad debt), time to resolve,
      allocations. The fund's haircut (default 1,000 bps) limits what it takes over;
      its unwind orders take --unwind-bps (default 2,500) of the depth within the band;
      --stops gives that share of traders a reduce-only stop-loss (stop heatmap, and a
      `stops triggered=N lots=L` line)
  cascade-bench record <dir> [--commands N] [--leveraged] [--seed S]
      [--fsync batch|interval-ms:N|never] [--kill-after-durable K] [--floor]
      [--ack-latency] [--snapshot-every N] [--batch-kib K]
      sequence the seeded demo workload (default 1,000,000 commands; --leveraged: the
      margin-checked variant) into a new journal in <dir>: `durable seq=N` each time the
      durable watermark moves, fsync latency, and `commands= bytes= batches= fsyncs=
      cmds_per_sec= mb_per_sec= last_seq=` (then fsync p50/p99, and with --floor the
      disk's raw 256 KiB write+fdatasync rate in the same run); --kill-after-durable K
      aborts right after the K-th durable batch (crash tests)
  cascade-bench replay <journal-dir | commands.csv>
      replay a journal (capacities from its engine.toml) or a text log (capacities from
      its `# engine:` line) through a fresh engine without changing it:
      `commands= events= events_hash= state_hash= cmds_per_sec=`
  cascade-bench convert <in> <out>
      a journal directory to a text log (one command per line, docs/ARCHITECTURE.md),
      or a text log to a new journal directory
  cascade-bench recover <dir>
      recover a journal as a restart does (a torn tail is cut off and reported) and apply
      it: `snapshot_seq= replayed= truncated_bytes= last_seq= state_hash= recovery_ms=`;
      mid-log damage is a one-line error naming segment and byte offset, exit 1
  cascade-bench snapshot [--accounts N] [--orders M]
      cost of Engine::snapshot (the engine thread's pause), restore and state_hash at N
      accounts (default 10^6) and M resting orders (default 10^6)
  cascade-bench wire [--protocol binary|fix] [--clients C] [--rate R] [--duration S]
      [--addr HOST:PORT] [--fsync batch|interval-ms:N|never] [--flood] [--stalled-reader]
      open-loop wire-to-wire latency through the gateway (in this process on free
      loopback ports, or at --addr as the demo users), coordinated-omission corrected,
      next to a raw loopback TCP echo floor from the same run; --flood adds a session
      sending as fast as it can, --stalled-reader a market-data subscriber that never
      reads; the last line is `protocol= offered= sent= acked= p50_us= p99_us= p999_us=
      max_us= floor_p50_us= floor_p99_us=`
  cascade-bench lab <run|distance|warning|whatif|oct10> [--help]
      the leverage-dynamics lab: cascades with price feedback on a copy of the engine,
      distance to cascade, early-warning calibration on recorded BTC paths, parameter
      what-ifs, the 2025-10-10 crash against Hyperliquid's record (`lab --help`)
  cascade-bench risk-report [--out DIR] [--accounts N] [--move-bps B] [--prices DIR]
      the default scenario (leverage clustered at 5/10/20/50x, stops, endogenous marks)
      through every study of the lab: a self-contained HTML page with plots and SVG
      copies; last line `report=PATH plots=N scenario_hash=HASH` (`risk-report --help`)
  cascade-bench cascade --curve
      cascade resolution time against the number of liquidated accounts (10^3..10^6)
  cascade-bench report [--out DIR] [--quick] [--max-orders N] [--max-accounts N]
      [--lobster DIR] [--criterion DIR]
      run every benchmark (peers too when built with --features peers; criterion results
      are read from target/criterion) and write DIR/BENCHMARKS.md with SVG plots in
      DIR/benchmarks (default DIR: docs)
SHARES: --cancel-pct P (default 34) --replace-pct P (0) --marketable-pct P (10): the
  generated mix's command shares in percent; the rest are limit adds near the touch";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("replay-lobster") => replay_lobster(&args[1..]),
        Some("throughput") => throughput(&args[1..]),
        Some("latency") => latency(&args[1..]),
        Some("peers") => peers(&args[1..]),
        Some("scaling") => report_cmd::scaling_command(&args[1..]),
        Some("scale") => scale_cmd::run(&args[1..]),
        Some("cascade") => cascade_cmd::run(&args[1..]),
        Some("record") => record_cmd::run(&args[1..]),
        Some("replay") => journal_cmd::replay(&args[1..]),
        Some("recover") => journal_cmd::recover(&args[1..]),
        Some("convert") => journal_cmd::convert(&args[1..]),
        Some("snapshot") => snapshot_cmd::run(&args[1..]),
        Some("wire") => wire_cmd::run(&args[1..]),
        Some("report") => report_cmd::run(&args[1..]),
        Some("lab") => lab_cmd::run_cli(&args[1..]),
        Some("risk-report") => risk_cmd::run(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown or missing subcommand\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Splits `--flag value` pairs and bare flags from positional arguments.
struct Args {
    positional: Vec<String>,
    flags: Vec<(String, Option<String>)>,
}

impl Args {
    fn parse(args: &[String], valued: &[&str], bare: &[&str]) -> Result<Args, String> {
        let mut out = Args {
            positional: Vec::new(),
            flags: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if valued.contains(&a.as_str()) {
                let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
                out.flags.push((a.clone(), Some(v.clone())));
            } else if bare.contains(&a.as_str()) {
                out.flags.push((a.clone(), None));
            } else if a.starts_with("--") {
                return Err(format!("unknown option {a}\n{USAGE}"));
            } else {
                out.positional.push(a.clone());
            }
        }
        Ok(out)
    }

    fn value<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        match self.flags.iter().find(|(n, _)| n == name) {
            Some((_, Some(v))) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}: cannot parse {v:?}")),
            _ => Ok(None),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(n, _)| n == name)
    }
}

/// Counts what the demo prints.
#[derive(Default)]
struct Stats {
    events: u64,
    fills: u64,
    volume: i64,
    rejects: u64,
    cancels: u64,
}

impl EventSink for Stats {
    fn emit(&mut self, event: Event) {
        match event.kind {
            EventKind::Fill { qty, .. } => {
                self.fills += 1;
                self.volume += qty.0;
            }
            EventKind::Rejected(_) => self.rejects += 1,
            EventKind::Cancelled { .. } => self.cancels += 1,
            _ => {}
        }
        self.events += 1;
    }
}

/// Runs a workload `runs` times on fresh engines: the last engine and its statistics, the
/// best time of the measured commands, and the most heap allocations any run made
/// during them.
fn run_workload(mix: &Mix, w: &workload::Workload, runs: usize) -> (Engine, Stats, f64, u64) {
    let mut best = f64::INFINITY;
    let mut allocs = 0;
    let mut last = None;
    for _ in 0..runs {
        let mut engine = Engine::new(workload::engine_config(mix));
        let mut stats = Stats::default();
        for c in &w.setup {
            engine.apply(c, &mut stats);
        }
        let before = alloc_count();
        let t = Instant::now();
        for c in &w.commands {
            engine.apply(c, &mut stats);
        }
        best = best.min(t.elapsed().as_secs_f64());
        allocs = allocs.max(alloc_count() - before);
        last = Some((engine, stats));
    }
    let (engine, stats) = last.expect("at least one run");
    (engine, stats, best, allocs)
}

fn demo(args: &[String]) -> Result<(), String> {
    let args = Args::parse(args, &["--commands", "--seed"], &[])?;
    let plain = Mix {
        commands: args.value("--commands")?.unwrap_or(2_000_000),
        seed: args.value("--seed")?.unwrap_or(42),
        ..Mix::default()
    };
    let leveraged = Mix {
        margin: true,
        ..plain
    };
    println!(
        "workload: seed {} | {} commands | ~56% limit adds within 50 ticks of mid, ~34% cancels, ~10% marketable | {} accounts | book near {} orders",
        plain.seed, plain.commands, plain.accounts, plain.target_orders
    );
    println!(
        "leveraged run: every account deposits {} atoms, every order margin-checked (20x max), fills settle with fees, mark follows the mid every 100 commands",
        workload::DEPOSIT
    );
    let t = Instant::now();
    let (wp, wl) = (workload::generate(&plain), workload::generate(&leveraged));
    println!("generated both in {:.2} s", t.elapsed().as_secs_f64());

    // Alternate plain and leveraged runs and keep each one's best: the machine is shared.
    let (mut secs_plain, mut secs_lev) = (f64::INFINITY, f64::INFINITY);
    let mut result = None;
    for _ in 0..5 {
        secs_plain = secs_plain.min(run_workload(&plain, &wp, 1).2);
        let (engine, stats, secs, _) = run_workload(&leveraged, &wl, 1);
        secs_lev = secs_lev.min(secs);
        result = Some((engine, stats));
    }
    let (engine, stats) = result.expect("ran");
    engine
        .verify()
        .map_err(|e| format!("engine invariant broken: {e}"))?;
    let mut hash = HashSink::default();
    let mut again = Engine::new(workload::engine_config(&leveraged));
    for c in wl.setup.iter().chain(&wl.commands) {
        again.apply(c, &mut hash);
    }

    let m = MarketId(0);
    let mut levels = [0usize; 2];
    for (i, side) in [Side::Buy, Side::Sell].into_iter().enumerate() {
        engine.depth(m, side, usize::MAX, |_, _, _| levels[i] += 1);
    }
    let top = |side| {
        engine
            .best(m, side)
            .map_or("-".to_owned(), |(p, q)| format!("{} x {}", p.0, q.0))
    };
    let per_cmd = |secs: f64, n: usize| secs * 1e9 / n as f64;
    let (ns_plain, ns_lev) = (
        per_cmd(secs_plain, plain.commands),
        per_cmd(secs_lev, leveraged.commands),
    );
    println!(
        "throughput, plain book:      {:.2} M commands/s ({ns_plain:.1} ns/command, best of 5)",
        1e3 / ns_plain
    );
    println!(
        "throughput, margin-checked:  {:.2} M commands/s ({ns_lev:.1} ns/command, best of 5)",
        1e3 / ns_lev
    );
    println!("margin-checked / plain cost: {:.2}x", ns_lev / ns_plain);
    println!(
        "fills: {} ({} lots) | cancels: {} | rejects: {}",
        stats.fills, stats.volume, stats.cancels, stats.rejects
    );
    println!(
        "book: {} resting orders on {} bid / {} ask levels | best bid {} | best ask {}",
        engine.open_orders(),
        levels[0],
        levels[1],
        top(Side::Buy),
        top(Side::Sell)
    );
    if let Some(r) = engine.market_risk(m) {
        let lev = r
            .leverage
            .map_or("-".to_owned(), |l| format!("{:.4}", l.to_num::<f64>()));
        println!(
            "market 0: mark {} | open interest {} lots ({} atoms notional) | backing collateral {} | aggregate leverage ratio {lev} | fee ledger {}",
            r.mark,
            r.open_interest,
            r.oi_notional,
            r.backing,
            engine.fee_ledger()
        );
    }
    println!(
        "event log: {} events, hash {:016x} (same seed => same hash on every machine)",
        hash.count, hash.hash
    );
    Ok(())
}

/// The command-share flags of `throughput` and `latency`.
const SHARES: [&str; 3] = ["--cancel-pct", "--replace-pct", "--marketable-pct"];

/// `mix` with the shares given on the command line (the rest are limit adds).
fn with_shares(args: &Args, mix: Mix) -> Result<Mix, String> {
    let mix = Mix {
        cancel_pct: args.value(SHARES[0])?.unwrap_or(mix.cancel_pct),
        replace_pct: args.value(SHARES[1])?.unwrap_or(mix.replace_pct),
        marketable_pct: args.value(SHARES[2])?.unwrap_or(mix.marketable_pct),
        ..mix
    };
    if mix.cancel_pct + mix.replace_pct + mix.marketable_pct > 100 {
        return Err("--cancel-pct + --replace-pct + --marketable-pct must not exceed 100".into());
    }
    Ok(mix)
}

fn throughput(args: &[String]) -> Result<(), String> {
    let args = Args::parse(
        args,
        &[&["--commands", "--runs"][..], &SHARES].concat(),
        &[],
    )?;
    let runs: usize = args.value("--runs")?.unwrap_or(5);
    let plain = with_shares(
        &args,
        Mix {
            commands: args.value("--commands")?.unwrap_or(2_000_000),
            ..Mix::default()
        },
    )?;
    println!(
        "machine: {} cores visible; one engine thread; best of {runs} runs each",
        available_cores()
    );
    for mix in [
        plain,
        Mix {
            margin: true,
            ..plain
        },
    ] {
        let w = workload::generate(&mix);
        let (_, _, secs, _) = run_workload(&mix, &w, runs.max(1));
        let name = if mix.margin {
            "margin-checked"
        } else {
            "plain book"
        };
        println!(
            "workload={name} commands={} secs={secs:.4} commands_per_sec={:.0} ns_per_command={:.1}",
            mix.commands,
            mix.commands as f64 / secs,
            secs * 1e9 / mix.commands as f64
        );
    }
    Ok(())
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

fn latency(args: &[String]) -> Result<(), String> {
    use cascade_bench::latency as lat;
    let args = Args::parse(
        args,
        &[&["--rates", "--commands", "--hgrm"][..], &SHARES].concat(),
        &["--margin", "--lobster"],
    )?;
    let rates: Vec<u64> = match args.value::<String>("--rates")? {
        Some(list) => list
            .split(',')
            .map(|r| {
                r.trim()
                    .parse()
                    .map_err(|_| format!("--rates: cannot parse {r:?}"))
            })
            .collect::<Result<_, _>>()?,
        None => vec![500_000, 1_000_000, 2_000_000, 5_000_000],
    };
    if rates.contains(&0) {
        return Err("--rates: rates must be positive".into());
    }
    let mix = with_shares(
        &args,
        Mix {
            commands: args.value("--commands")?.unwrap_or(1_000_000),
            margin: args.has("--margin"),
            ..Mix::default()
        },
    )?;
    let hgrm_dir: Option<PathBuf> = args.value::<String>("--hgrm")?.map(PathBuf::from);
    if let Some(dir) = &hgrm_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // The workload: the generated mix, or the commands of a LOBSTER replay.
    let (setup, commands, config, what) = if args.has("--lobster") {
        let [messages, orderbook] = args.positional.as_slice() else {
            return Err(format!(
                "latency --lobster needs <message.csv> <orderbook.csv>\n{USAGE}"
            ));
        };
        let (msgs, rows) = lobster::load(&PathBuf::from(messages), &PathBuf::from(orderbook))?;
        let mut report = lobster::replay(&msgs, &rows).map_err(|e| e.to_string())?;
        let replayed = report.commands.split_off(report.setup_len);
        (
            report.commands,
            replayed,
            report.config,
            format!("LOBSTER {messages}"),
        )
    } else {
        let w = workload::generate(&mix);
        let what = if mix.margin {
            "margin-checked"
        } else {
            "plain"
        };
        (
            w.setup,
            w.commands,
            workload::engine_config(&mix),
            what.to_string(),
        )
    };
    let commands = std::sync::Arc::new(commands);
    println!(
        "open loop: {} commands per rate ({what} workload), generator on core 1 -> ring of {} -> engine on core 0; {} cores visible; ns from intended send time",
        commands.len(),
        lat::RING_CAPACITY,
        available_cores()
    );
    for rate in rates {
        let floor = lat::run(None, &setup, &commands, rate);
        let r = lat::run(Some(Engine::new(config)), &setup, &commands, rate);
        println!(
            "rate={rate} latency_ns: {} | in-engine_ns: {} | ring_full_waits={}",
            lat::summary(&r.latency),
            lat::summary(&r.service),
            r.ring_full
        );
        println!(
            "rate={rate} harness_floor_ns (ring only, no engine): {}",
            lat::summary(&floor.latency)
        );
        if let Some(dir) = &hgrm_dir {
            let path = dir.join(format!("latency_{rate}.hgrm"));
            std::fs::write(&path, lat::hgrm(&r.latency))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// ns per measured command (best of `runs` on fresh engines) and the most heap
/// allocations a run made during the measured commands.
fn measure(mix: &Mix, runs: usize) -> (f64, u64) {
    let w = workload::generate(mix);
    let (_, _, secs, allocs) = run_workload(mix, &w, runs);
    (secs * 1e9 / mix.commands as f64, allocs)
}

#[cfg(not(feature = "peers"))]
fn peers(_: &[String]) -> Result<(), String> {
    Err("this build has no peer books: cargo run --release -p cascade-bench --features peers -- peers".into())
}

#[cfg(feature = "peers")]
fn peers(args: &[String]) -> Result<(), String> {
    use cascade_bench::peers;
    let args = Args::parse(args, &["--commands", "--runs"], &[])?;
    let n: usize = args.value("--commands")?.unwrap_or(2_000_000);
    let runs: usize = args.value::<usize>("--runs")?.unwrap_or(3).max(1);
    let ops = peers::generate(n, 42, 10_000);
    println!(
        "workload: {}, book near 10,000 orders, one taker; best of {runs} runs; latency = one clock read pair per operation",
        peers::describe(&ops)
    );
    let rows = peers::compare(&ops, runs, || peers::all_books(n));
    let fastest_peer = rows
        .iter()
        .skip(1)
        .map(|r| r.ops_per_sec)
        .fold(0.0, f64::max);
    let mut differ: Vec<&str> = Vec::new();
    for row in &rows {
        let same = match row.agreement(rows[0].tally) {
            Ok(words) => words.to_owned(),
            Err(words) => {
                differ.push(row.name);
                words
            }
        };
        println!(
            "{:<24} {:>7.2} M ops/s  {:>5.2}x fastest peer | p50={} p99={} p99.9={} ns | fills={} volume={} | {same}",
            row.name,
            row.ops_per_sec / 1e6,
            row.ops_per_sec / fastest_peer,
            row.latency.value_at_percentile(50.0),
            row.latency.value_at_percentile(99.0),
            row.latency.value_at_percentile(99.9),
            row.tally.fills,
            row.tally.volume
        );
    }
    if differ.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fills or volume differ from cascade's: {}",
            differ.join(", ")
        ))
    }
}

fn replay_lobster(args: &[String]) -> Result<(), String> {
    let args = Args::parse(
        args,
        &["--max-exec-mismatch-pct", "--max-book-mismatch-pct"],
        &["--explain"],
    )?;
    let [messages, orderbook] = args.positional.as_slice() else {
        return Err(format!(
            "replay-lobster needs <message.csv> <orderbook.csv>\n{USAGE}"
        ));
    };
    let max_exec: Option<f64> = args.value("--max-exec-mismatch-pct")?;
    let max_book: Option<f64> = args.value("--max-book-mismatch-pct")?;
    let t = Instant::now();
    let (msgs, rows) = lobster::load(&PathBuf::from(messages), &PathBuf::from(orderbook))?;
    let report = lobster::replay(&msgs, &rows).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    if args.has("--explain") {
        for (kind, text) in &report.examples {
            println!("{kind}: {text}");
        }
    }
    let s = &report.summary;
    println!(
        "levels={} exec_mismatch_pct={:.3} book_mismatch_pct={:.3} hidden_executions={} crosses={} halts={} requeued={} crossed_rows={}",
        rows.levels,
        s.exec_mismatch_pct(),
        s.book_mismatch_pct(),
        s.hidden_executions,
        s.crosses,
        s.halts,
        s.requeued,
        s.crossed_rows
    );
    println!(
        "rows={} executions={} exec_checked={} exec_mismatches={} book_mismatch_rows={} reveals={} unknown_refs={} msgs_per_sec={:.0}",
        s.rows,
        s.executions,
        s.exec_checked,
        s.exec_mismatches,
        s.book_mismatch_rows,
        s.reveals,
        s.unknown_refs,
        s.rows as f64 / secs
    );
    let mut over = Vec::new();
    if max_exec.is_some_and(|m| s.exec_mismatch_pct() > m) {
        over.push(format!(
            "exec mismatches {:.3}% > {}%",
            s.exec_mismatch_pct(),
            max_exec.unwrap_or_default()
        ));
    }
    if max_book.is_some_and(|m| s.book_mismatch_pct() > m) {
        over.push(format!(
            "book mismatch rows {:.3}% > {}%",
            s.book_mismatch_pct(),
            max_book.unwrap_or_default()
        ));
    }
    if over.is_empty() {
        Ok(())
    } else {
        Err(over.join("; "))
    }
}
