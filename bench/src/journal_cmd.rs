//! `cascade-bench replay <journal-dir>` and `cascade-bench recover <dir>`: a journal
//! (written by `record`, capacities in `engine.toml` beside it) through a fresh engine.
//!
//! `replay` reads without changing anything and hashes every event: its last line is
//! `commands= events= events_hash= state_hash= cmds_per_sec=`. A torn tail ends the
//! replay where the valid records end (reported on its own line). `recover` does what a
//! restarting gateway does: it recovers the journal (cutting a torn tail off the file)
//! and applies every valid command; last line `snapshot_seq= replayed= truncated_bytes=
//! last_seq= state_hash= recovery_ms=` (`snapshot_seq=0`: there are no snapshots yet, so
//! recovery replays from the start). Damage recovery must not pass is a one-line error
//! naming the segment file and byte offset, and a non-zero exit.

use crate::Args;
use cascade_core::{Engine, HashSink};
use cascade_gateway::engine_file::read_engine_config;
use cascade_gateway::journal::{scan, Journal, JournalConfig};
use std::path::PathBuf;
use std::time::Instant;

/// `replay <journal-dir>`.
pub(crate) fn replay(args: &[String]) -> Result<(), String> {
    let dir = &one_dir(args, "replay")?;
    let mut engine = Engine::try_new(read_engine_config(dir)?).map_err(|e| format!("{e:?}"))?;
    let mut hash = HashSink::default();
    let start = Instant::now();
    let report = scan(dir, |c| engine.apply(c, &mut hash)).map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    if let Some(t) = &report.torn {
        println!(
            "torn tail: {} bytes at byte offset {} of {} after seq {} ({}); not replayed",
            t.bytes,
            t.offset,
            t.segment.display(),
            t.last_seq,
            t.reason
        );
    }
    println!(
        "commands={} events={} events_hash={:016x} state_hash={:016x} cmds_per_sec={:.0}",
        report.records,
        hash.count,
        hash.hash,
        engine.state_hash(),
        report.records as f64 / secs
    );
    Ok(())
}

/// `recover <dir>`.
pub(crate) fn recover(args: &[String]) -> Result<(), String> {
    let dir = &one_dir(args, "recover")?;
    let start = Instant::now();
    let mut engine = Engine::try_new(read_engine_config(dir)?).map_err(|e| format!("{e:?}"))?;
    let mut sink = HashSink::default();
    let (journal, report) = Journal::open(JournalConfig::new(dir), |c| engine.apply(c, &mut sink))
        .map_err(|e| e.to_string())?;
    let state = engine.state_hash();
    let ms = start.elapsed().as_secs_f64() * 1e3;
    drop(journal);
    if let Some(t) = &report.torn {
        println!(
            "torn tail cut: {} bytes at byte offset {} of {} after seq {} ({})",
            t.bytes,
            t.offset,
            t.segment.display(),
            t.last_seq,
            t.reason
        );
    }
    println!(
        "snapshot_seq=0 replayed={} truncated_bytes={} last_seq={} state_hash={state:016x} recovery_ms={ms:.1}",
        report.records,
        report.torn.as_ref().map_or(0, |t| t.bytes),
        report.last_seq,
    );
    Ok(())
}

fn one_dir(args: &[String], what: &str) -> Result<PathBuf, String> {
    let args = Args::parse(args, &[], &[])?;
    match args.positional.as_slice() {
        [dir] => Ok(PathBuf::from(dir)),
        _ => Err(format!(
            "{what} needs exactly one argument: the journal directory"
        )),
    }
}
