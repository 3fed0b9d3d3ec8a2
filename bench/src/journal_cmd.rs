//! `cascade-bench replay <journal-dir | commands.csv>`, `recover <dir>` and `convert
//! <in> <out>`: a journal (written by `record`, capacities in `engine.toml` beside it)
//! or a text log (`cascade_gateway::text_log`, capacities on its `# engine:` line)
//! through a fresh engine, and conversion between the two.
//!
//! `replay` reads without changing anything and hashes every event: its last line is
//! `commands= events= events_hash= state_hash= cmds_per_sec=`. A torn tail ends the
//! replay where the valid records end (reported on its own line). `recover` does what a
//! restarting gateway does: it recovers the journal (cutting a torn tail off the file)
//! and applies every valid command; last line `snapshot_seq= replayed= truncated_bytes=
//! last_seq= state_hash= recovery_ms=`: it starts from the newest snapshot file whose
//! checksums hold and that restores (`snapshot_seq=0`: none, so from the empty engine;
//! each file skipped is reported on a line) and applies the journal's commands after
//! it. Damage recovery must not pass is a one-line error
//! naming the segment file and byte offset, and a non-zero exit.

use crate::Args;
use cascade_core::{Command, Engine, EngineConfig, HashSink};
use cascade_gateway::engine_file::{
    engine_config_line, parse_engine_line, read_engine_config, write_engine_config,
};
use cascade_gateway::journal::{scan, Journal, JournalConfig, TornTail};
use cascade_gateway::text_log::{parse_log, write_line, HEADER};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `replay <journal-dir | commands.csv>`.
pub(crate) fn replay(args: &[String]) -> Result<(), String> {
    let path = &one_dir(args, "replay")?;
    if path.is_file() {
        return replay_text(path);
    }
    let dir = path;
    let mut engine = Engine::try_new(read_engine_config(dir)?).map_err(|e| format!("{e:?}"))?;
    let mut hash = HashSink::default();
    let start = Instant::now();
    let report = scan(dir, |c| engine.apply(c, &mut hash)).map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    if let Some(t) = &report.torn {
        println!("{}; not replayed", torn_line("torn tail", t));
    }
    print_replay(report.records, &hash, &engine, secs);
    Ok(())
}

fn print_replay(commands: u64, hash: &HashSink, engine: &Engine, secs: f64) {
    println!(
        "commands={commands} events={} events_hash={:016x} state_hash={:016x} cmds_per_sec={:.0}",
        hash.count,
        hash.hash,
        engine.state_hash(),
        commands as f64 / secs
    );
}

/// Reads a text log; its `# engine:` line is required for a replay.
fn read_text(path: &Path) -> Result<(Vec<Command>, Option<EngineConfig>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (commands, engine) = parse_log(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let origin = format!("{}: # engine", path.display());
    let engine = engine.map(|l| parse_engine_line(&l, &origin)).transpose()?;
    Ok((commands, engine))
}

fn replay_text(path: &Path) -> Result<(), String> {
    let (commands, cfg) = read_text(path)?;
    let cfg = cfg.ok_or_else(|| {
        format!(
            "{}: no `# engine:` line: the capacities to replay with",
            path.display()
        )
    })?;
    let mut engine = Engine::try_new(cfg).map_err(|e| format!("{e:?}"))?;
    let mut hash = HashSink::default();
    let start = Instant::now();
    for c in &commands {
        engine.apply(c, &mut hash);
    }
    print_replay(
        commands.len() as u64,
        &hash,
        &engine,
        start.elapsed().as_secs_f64(),
    );
    Ok(())
}

/// `convert <in> <out>`: a journal directory to a text log, or a text log to a new
/// journal directory (with its `engine.toml` when the log names its capacities).
pub(crate) fn convert(args: &[String]) -> Result<(), String> {
    let args = Args::parse(args, &[], &[])?;
    let [input, output] = args.positional.as_slice() else {
        return Err("convert needs two arguments: <in> <out>".into());
    };
    let (input, output) = (Path::new(input), Path::new(output));
    if input.is_dir() {
        let mut text = format!("{HEADER}\n");
        if let Ok(cfg) = read_engine_config(input) {
            text.push_str("# engine: ");
            text.push_str(&engine_config_line(&cfg));
            text.push('\n');
        }
        let report = scan(input, |c| write_line(c, &mut text)).map_err(|e| e.to_string())?;
        if report.torn.is_some() {
            return Err(format!(
                "{}: the journal has a torn tail; run recover first",
                input.display()
            ));
        }
        std::fs::write(output, text).map_err(|e| format!("{}: {e}", output.display()))?;
        println!(
            "commands={} format=text out={}",
            report.records,
            output.display()
        );
    } else {
        let (commands, cfg) = read_text(input)?;
        let (mut journal, report) =
            Journal::open(JournalConfig::new(output), |_| {}).map_err(|e| e.to_string())?;
        if report.records > 0 {
            return Err(format!("{} already holds a journal", output.display()));
        }
        if let Some(cfg) = cfg {
            write_engine_config(output, &cfg)?;
        }
        for c in &commands {
            journal
                .append(c)
                .map_err(|e| format!("{}: {e}", input.display()))?;
        }
        let last = journal.close().map_err(|e| e.to_string())?;
        println!(
            "commands={} format=journal out={} last_seq={last}",
            commands.len(),
            output.display()
        );
    }
    Ok(())
}

/// `recover <dir>`.
pub(crate) fn recover(args: &[String]) -> Result<(), String> {
    let dir = &one_dir(args, "recover")?;
    let start = Instant::now();
    let r = cascade_gateway::recovery::recover(JournalConfig::new(dir), read_engine_config(dir)?)?;
    for s in &r.skipped {
        println!("snapshot skipped: {}: {}", s.path.display(), s.reason);
    }
    let (engine, journal, report) = (r.engine, r.journal, r.report);
    let (snapshot_seq, replayed) = (r.snapshot_seq, r.replayed);
    let state = engine.state_hash();
    let ms = start.elapsed().as_secs_f64() * 1e3;
    drop(journal);
    if let Some(t) = &report.torn {
        println!("{}", torn_line("torn tail cut", t));
    }
    println!(
        "snapshot_seq={snapshot_seq} replayed={replayed} truncated_bytes={} last_seq={} state_hash={state:016x} recovery_ms={ms:.1}",
        report.torn.as_ref().map_or(0, |t| t.bytes),
        report.last_seq,
    );
    Ok(())
}

/// A torn tail, located.
fn torn_line(what: &str, t: &TornTail) -> String {
    format!(
        "{what}: {} bytes at byte offset {} of {} after seq {} ({})",
        t.bytes,
        t.offset,
        t.segment.display(),
        t.last_seq,
        t.reason
    )
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
