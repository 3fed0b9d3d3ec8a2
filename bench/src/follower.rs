//! The follower engine of `record --snapshot-every N`: snapshots are taken off the
//! sequencing thread, as LMAX's replicas take them. The follower receives every
//! journaled command over a bounded channel, applies it to its own engine, and after
//! every N-th serializes a snapshot (its own pause; the sequencing thread's is zero),
//! then waits until the journal is durable up to N before writing the file, so a
//! snapshot never gets ahead of the journal.
//!
//! Progress: the follower asks for durability through `wants`; the sequencing thread
//! answers (flush and sync) whenever it sees a request, and before blocking on a full
//! channel, so neither can wait on the other forever.

use cascade_core::{Command, Engine, EngineConfig, HashSink};
use crossbeam::channel::{bounded, Sender, TrySendError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the follower did.
pub(crate) struct FollowerStats {
    /// Snapshots written.
    pub(crate) taken: u64,
    /// Longest serialization, on the follower's thread (ms).
    pub(crate) serialize_ms_max: f64,
}

/// The sequencing thread's handle on the follower.
pub(crate) struct Follower {
    tx: Option<Sender<Command>>,
    /// The journal's durable sequence, published by the sequencing thread.
    durable: Arc<AtomicU64>,
    /// The sequence the follower waits to see durable (0: none).
    wants: Arc<AtomicU64>,
    handle: Option<JoinHandle<Result<FollowerStats, String>>>,
}

impl Follower {
    /// Starts the follower with a fresh engine of `cfg`, snapshotting every `every`
    /// commands into `dir`.
    pub(crate) fn start(every: u64, cfg: EngineConfig, dir: PathBuf) -> Follower {
        let (tx, rx) = bounded::<Command>(1 << 16);
        let durable = Arc::new(AtomicU64::new(0));
        let wants = Arc::new(AtomicU64::new(0));
        let (d, w) = (Arc::clone(&durable), Arc::clone(&wants));
        let handle = std::thread::spawn(move || {
            let mut engine = Engine::try_new(cfg).map_err(|e| format!("{e:?}"))?;
            let mut buf = Vec::new();
            let mut stats = FollowerStats {
                taken: 0,
                serialize_ms_max: 0.0,
            };
            for c in rx {
                engine.apply(&c, &mut HashSink::default());
                if c.seq % every != 0 {
                    continue;
                }
                let t = Instant::now();
                buf.clear();
                engine.snapshot(&mut buf);
                let serialize = t.elapsed().as_secs_f64() * 1e3;
                w.store(c.seq, Ordering::Release);
                while d.load(Ordering::Acquire) < c.seq {
                    std::thread::sleep(Duration::from_micros(50));
                }
                let t = Instant::now();
                cascade_gateway::snapshot_file::write_snapshot(&dir, c.seq, &buf)?;
                let write = t.elapsed().as_secs_f64() * 1e3;
                stats.taken += 1;
                stats.serialize_ms_max = stats.serialize_ms_max.max(serialize);
                println!(
                    "snapshot seq={} bytes={} follower_ms={serialize:.2} write_ms={write:.1}",
                    c.seq,
                    buf.len()
                );
            }
            Ok(stats)
        });
        Follower {
            tx: Some(tx),
            durable,
            wants,
            handle: Some(handle),
        }
    }

    /// The sequence the follower waits to see durable, if it is beyond `durable`.
    pub(crate) fn wants(&self, durable: u64) -> Option<u64> {
        let w = self.wants.load(Ordering::Acquire);
        (w > durable).then_some(w)
    }

    /// Publishes the journal's durable sequence.
    pub(crate) fn durable(&self, seq: u64) {
        self.durable.store(seq, Ordering::Release);
    }

    /// Sends `c`; if the channel is full, calls `serve` (make what the follower waits
    /// for durable) first, then waits for room.
    pub(crate) fn send(
        &self,
        c: &Command,
        mut serve: impl FnMut() -> Result<(), String>,
    ) -> Result<(), String> {
        let tx = self.tx.as_ref().expect("running");
        match tx.try_send(c.clone()) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(c)) => {
                serve()?;
                tx.send(c).map_err(|_| "the follower stopped".to_string())
            }
            Err(TrySendError::Disconnected(_)) => Err("the follower stopped".into()),
        }
    }

    /// Closes the channel and waits for the follower (the journal must be durable to
    /// the end first).
    pub(crate) fn finish(mut self) -> Result<FollowerStats, String> {
        drop(self.tx.take());
        self.handle
            .take()
            .expect("running")
            .join()
            .map_err(|_| "the follower panicked".to_string())?
    }
}
