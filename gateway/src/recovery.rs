//! Recovery as a restart does it: the newest good snapshot (bad ones are skipped and
//! reported), then the journal's commands after it, applied to that engine; the torn
//! tail of a killed writer is cut off, and the journal is left open for appending.
//!
//! Invariant: the recovered engine is exactly the state after the journal's last
//! whole command; a snapshot ahead of the journal is an error, never a silent rewind.

use cascade_core::{Engine, EngineConfig, Event, EventSink};

use crate::journal::{Journal, JournalConfig, ScanReport};
use crate::snapshot_file::{latest_snapshot, Skipped};

/// What recovery found and rebuilt.
pub struct Recovered {
    /// The engine after the last whole command.
    pub engine: Engine,
    /// The journal, open for appending after it.
    pub journal: Journal,
    /// What the journal scan found (last sequence, torn tail).
    pub report: ScanReport,
    /// Sequence number of the snapshot started from (0: none, an empty engine).
    pub snapshot_seq: u64,
    /// Commands applied after the snapshot.
    pub replayed: u64,
    /// Snapshot files passed over, and why.
    pub skipped: Vec<Skipped>,
}

struct Discard;

impl EventSink for Discard {
    fn emit(&mut self, _: Event) {}
}

/// Recovers the journal in `jcfg.dir`; `capacities` make the engine when there is no
/// usable snapshot.
pub fn recover(jcfg: JournalConfig, capacities: EngineConfig) -> Result<Recovered, String> {
    let (found, skipped) = latest_snapshot(&jcfg.dir)?;
    let (snapshot_seq, mut engine) = match found {
        Some(x) => x,
        None => (
            0,
            Engine::try_new(capacities).map_err(|e| format!("engine capacities: {e:?}"))?,
        ),
    };
    let mut replayed = 0u64;
    let (journal, report) = Journal::open_after(jcfg, snapshot_seq, |c| {
        if c.seq > snapshot_seq {
            engine.apply(c, &mut Discard);
            replayed += 1;
        }
    })
    .map_err(|e| e.to_string())?;
    if report.last_seq < snapshot_seq {
        return Err(format!(
            "snapshot at seq {snapshot_seq} is ahead of the journal (last seq {})",
            report.last_seq
        ));
    }
    Ok(Recovered {
        engine,
        journal,
        report,
        snapshot_seq,
        replayed,
        skipped,
    })
}
