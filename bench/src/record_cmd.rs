//! `cascade-bench record`: sequences the seeded demo workload into a journal and
//! measures it.
//!
//! The workload (set-up and mix, `--leveraged` for the margin-checked variant) is
//! generated first, its engine capacities written to `<dir>/engine.toml` (what `replay`
//! and `recover` build their engine from), then appended to a journal in `<dir>`
//! (which must hold none) one
//! command at a time, as a sequencer would: a batch is written when it holds 256 KiB
//! (`--batch-kib`),
//! and [`Journal::tick`] runs every 1,024 commands to flush one older than 1 ms. Each
//! time the durable watermark moves, `durable seq=N` is printed on its own line (and
//! flushed), so a parent process knows what was acknowledged before it killed this one;
//! `--kill-after-durable K` aborts the process (no unwinding, no flush) right after the
//! K-th such line. Timed: the whole append loop and the final flush and sync, with each
//! `fdatasync` timed on its own. With `--floor`, the same number of bytes is then
//! written in raw 256 KiB blocks, each followed by `fdatasync`, to a scratch file in
//! `<dir>` (removed after): the disk's floor in the same run. With `--ack-latency`, each
//! command's wait from its append until its batch is durable (what acknowledging only
//! durable commands adds) is measured: p50/p99 on a line and as `ack_p50_us`,
//! `ack_p99_us`. With `--snapshot-every N`, a follower engine on its own thread applies
//! every journaled command and writes `snapshot-<seq>.snap` after every N-th, once the
//! journal is durable to it (`follower.rs`; `snapshot seq= bytes= follower_ms= write_ms=`
//! lines): the sequencing thread never pauses for a snapshot.

use crate::follower::Follower;
use crate::Args;
use cascade_bench::workload::{self, Mix};
use cascade_gateway::journal::{FlushOutcome, FsyncPolicy, Journal, JournalConfig};
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Runs the subcommand.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let args = Args::parse(
        args,
        &[
            "--commands",
            "--seed",
            "--fsync",
            "--kill-after-durable",
            "--snapshot-every",
            "--batch-kib",
        ],
        &["--leveraged", "--floor", "--ack-latency"],
    )?;
    let [dir] = args.positional.as_slice() else {
        return Err("record needs exactly one argument: the journal directory".into());
    };
    let fsync: FsyncPolicy = args
        .value::<String>("--fsync")?
        .map_or(Ok(FsyncPolicy::Batch), |s| s.parse())?;
    let mix = Mix {
        commands: args.value("--commands")?.unwrap_or(1_000_000),
        seed: args.value("--seed")?.unwrap_or(42),
        margin: args.has("--leveraged"),
        ..Mix::default()
    };
    let kill_after: Option<u64> = args.value("--kill-after-durable")?;
    let snapshot_every: Option<u64> = args.value("--snapshot-every")?;
    if snapshot_every == Some(0) {
        return Err("--snapshot-every needs a positive number of commands".into());
    }
    let w = workload::generate(&mix);
    let commands: Vec<_> = w.setup.into_iter().chain(w.commands).collect();
    let defaults = JournalConfig::new(PathBuf::from(dir));
    let batch_bytes = match args.value::<usize>("--batch-kib")? {
        Some(0) => return Err("--batch-kib needs a positive size".into()),
        Some(kib) => kib.checked_mul(1024).ok_or("--batch-kib too large")?,
        None => defaults.batch_bytes,
    };
    let cfg = JournalConfig {
        fsync,
        batch_bytes,
        ..defaults
    };
    // Checked before opening: opening recovers, which could cut a torn tail.
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!(
            "{dir} already holds a journal or other files: record needs an empty directory"
        ));
    }
    let (mut journal, _) = Journal::open(cfg, |_| {}).map_err(|e| e.to_string())?;
    cascade_gateway::engine_file::write_engine_config(
        Path::new(dir),
        &workload::engine_config(&mix),
    )?;
    let mut rec = Recorder {
        durable: 0,
        kill_after,
        announced: 0,
        fsync_ns: Histogram::new(3).expect("histogram"),
        batches: 0,
        bytes: 0,
        waiting: args
            .has("--ack-latency")
            .then(|| std::collections::VecDeque::with_capacity(1 << 16)),
        ack_ns: Histogram::new(3).expect("histogram"),
    };
    let follower = snapshot_every
        .map(|every| Follower::start(every, workload::engine_config(&mix), PathBuf::from(dir)));
    let start = Instant::now();
    for (i, c) in commands.iter().enumerate() {
        if let Some(w) = rec.waiting.as_mut() {
            w.push_back((c.seq, Instant::now()));
        }
        let outcome = journal.append(c).map_err(|e| e.to_string())?;
        rec.note(&journal, outcome);
        if i % 1_024 == 1_023 {
            let outcome = journal.tick(Instant::now()).map_err(|e| e.to_string())?;
            rec.note(&journal, outcome);
        }
        if let Some(f) = &follower {
            serve_follower(f, &mut journal, &mut rec, false)?;
            f.send(c, || serve_follower(f, &mut journal, &mut rec, true))?;
        }
    }
    let outcome = journal.flush().map_err(|e| e.to_string())?;
    rec.note(&journal, Some(outcome));
    let synced = journal.sync().map_err(|e| e.to_string())?;
    rec.note(&journal, Some(synced));
    let secs = start.elapsed().as_secs_f64();
    let last_seq = journal.durable_seq();
    let snaps = match follower {
        Some(f) => {
            f.durable(last_seq);
            Some(f.finish()?)
        }
        None => None,
    };
    let fsyncs = rec.fsync_ns.len();
    println!(
        "fsync latency: p50 {:.0} us, p99 {:.0} us, max {:.0} us over {fsyncs} fsyncs",
        rec.fsync_ns.value_at_quantile(0.5) as f64 / 1e3,
        rec.fsync_ns.value_at_quantile(0.99) as f64 / 1e3,
        rec.fsync_ns.max() as f64 / 1e3,
    );
    if rec.waiting.is_some() {
        println!(
            "ack latency (append to durable): p50 {:.0} us, p99 {:.0} us, max {:.0} us over {} commands",
            rec.ack_ns.value_at_quantile(0.5) as f64 / 1e3,
            rec.ack_ns.value_at_quantile(0.99) as f64 / 1e3,
            rec.ack_ns.max() as f64 / 1e3,
            rec.ack_ns.len()
        );
    }
    let floor = if args.has("--floor") {
        Some(raw_floor(Path::new(dir), rec.bytes)?)
    } else {
        None
    };
    let mb_per_sec = rec.bytes as f64 / secs / 1e6;
    let mut line = format!(
        "commands={} bytes={} batches={} fsyncs={fsyncs} cmds_per_sec={:.0} mb_per_sec={mb_per_sec:.1} last_seq={last_seq} fsync_p50_us={:.0} fsync_p99_us={:.0}",
        commands.len(),
        rec.bytes,
        rec.batches,
        commands.len() as f64 / secs,
        rec.fsync_ns.value_at_quantile(0.5) as f64 / 1e3,
        rec.fsync_ns.value_at_quantile(0.99) as f64 / 1e3,
    );
    if let Some((floor_mb, floor_p99)) = floor {
        let _ = write!(
            line,
            " floor_mb_per_sec={floor_mb:.1} floor_p99_us={floor_p99:.0} of_floor_pct={:.0}",
            100.0 * mb_per_sec / floor_mb
        );
    }
    if rec.waiting.is_some() {
        let _ = write!(
            line,
            " ack_p50_us={:.0} ack_p99_us={:.0}",
            rec.ack_ns.value_at_quantile(0.5) as f64 / 1e3,
            rec.ack_ns.value_at_quantile(0.99) as f64 / 1e3
        );
    }
    if let Some(s) = &snaps {
        let _ = write!(
            line,
            " snapshots={} follower_snapshot_ms_max={:.1}",
            s.taken, s.serialize_ms_max
        );
    }
    println!("{line}");
    Ok(())
}

/// Publishes the journal's durable sequence to the follower and, if it waits for a
/// sequence already written to the batch (or `now`, with the channel full), makes the
/// journal durable up to it.
fn serve_follower(
    f: &Follower,
    journal: &mut Journal,
    rec: &mut Recorder,
    now: bool,
) -> Result<(), String> {
    if let Some(wanted) = f.wants(journal.durable_seq()) {
        if now || wanted < journal.next_seq() {
            let outcome = journal.flush().map_err(|e| e.to_string())?;
            rec.note(journal, Some(outcome));
            let synced = journal.sync().map_err(|e| e.to_string())?;
            rec.note(journal, Some(synced));
        }
    }
    f.durable(journal.durable_seq());
    Ok(())
}

/// What the loop has seen of the journal.
struct Recorder {
    durable: u64,
    kill_after: Option<u64>,
    announced: u64,
    fsync_ns: Histogram<u64>,
    batches: u64,
    bytes: u64,
    /// With `--ack-latency`: commands appended and not yet durable, with when.
    waiting: Option<std::collections::VecDeque<(u64, Instant)>>,
    /// How long each waited from its append until its batch was durable.
    ack_ns: Histogram<u64>,
}

impl Recorder {
    /// Counts a flush and announces a moved watermark (aborting after the K-th).
    fn note(&mut self, journal: &Journal, outcome: Option<FlushOutcome>) {
        let Some(o) = outcome else { return };
        if o.bytes > 0 {
            self.batches += 1;
            self.bytes += o.bytes as u64;
        }
        if let Some(d) = o.synced {
            self.fsync_ns
                .record(d.as_nanos().max(1) as u64)
                .expect("histogram range");
        }
        if journal.durable_seq() > self.durable {
            self.durable = journal.durable_seq();
            if let Some(w) = self.waiting.as_mut() {
                let now = Instant::now();
                while w.front().is_some_and(|&(seq, _)| seq <= self.durable) {
                    let (_, t) = w.pop_front().expect("front");
                    let ns = now.duration_since(t).as_nanos().max(1) as u64;
                    self.ack_ns.record(ns).expect("histogram range");
                }
            }
            self.announced += 1;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "durable seq={}", self.durable);
            let _ = out.flush();
            if self.kill_after == Some(self.announced) {
                std::process::abort();
            }
        }
    }
}

/// Writes `bytes` (at least 256 KiB) to a scratch file in 256 KiB blocks, each followed
/// by `fdatasync`: `(MB/s, p99 µs of one block)`.
fn raw_floor(dir: &Path, bytes: u64) -> Result<(f64, f64), String> {
    const BLOCK: usize = 256 << 10;
    let path = dir.join("floor.scratch");
    let mut file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let block = vec![0xa5u8; BLOCK];
    let blocks = bytes.div_ceil(BLOCK as u64).max(1);
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let start = Instant::now();
    for _ in 0..blocks {
        let t = Instant::now();
        file.write_all(&block)
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        hist.record(t.elapsed().as_nanos().max(1) as u64)
            .expect("histogram range");
    }
    let secs = start.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((
        (blocks * BLOCK as u64) as f64 / secs / 1e6,
        hist.value_at_quantile(0.99) as f64 / 1e3,
    ))
}
