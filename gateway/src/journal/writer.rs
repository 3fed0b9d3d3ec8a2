//! The journal's writer: batches, group commit, the durable watermark, segment rolling.
//!
//! Invariants: `written_seq ≤ next_seq − 1`, `durable_seq ≤ written_seq`; the batch
//! holds exactly the records `written_seq + 1 ..= next_seq − 1`, chained from the last
//! written record; the open segment's length on disk is `segment_len`.

use super::scan::{scan_from, ScanReport};
use super::segment::{
    append_record, segment_name, SegmentHeader, MAX_PAYLOAD, RECORD_HEADER_BYTES,
};
use super::{io_err, FsyncPolicy, JournalConfig, JournalError};
use cascade_core::Command;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What one [`Journal::flush`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Bytes written (0: the batch was empty).
    pub bytes: usize,
    /// Records written.
    pub records: u64,
    /// How long the `fdatasync` took, if one ran.
    pub synced: Option<Duration>,
}

/// An open journal, appending to its last segment.
pub struct Journal {
    cfg: JournalConfig,
    file: File,
    path: PathBuf,
    segment_len: u64,
    batch: Vec<u8>,
    batch_records: u64,
    batch_started: Option<Instant>,
    chain: u32,
    next_seq: u64,
    written_seq: u64,
    durable_seq: u64,
    last_sync: Instant,
}

impl Journal {
    /// Recovers the journal in `cfg.dir` (created if missing), calling `f` with every
    /// valid command in order, cuts off a torn tail (reported in the [`ScanReport`]),
    /// and opens it for appending: the next command must have sequence `last_seq + 1`
    /// (1 for a new journal). Damage past which recovery must not go is an error.
    pub fn open(
        cfg: JournalConfig,
        f: impl FnMut(&Command),
    ) -> Result<(Journal, ScanReport), JournalError> {
        Journal::open_after(cfg, 0, f)
    }

    /// [`Journal::open`] after a snapshot at sequence `after`: the segments holding only
    /// commands up to it are not read ([`super::scan_from`]).
    pub fn open_after(
        cfg: JournalConfig,
        after: u64,
        f: impl FnMut(&Command),
    ) -> Result<(Journal, ScanReport), JournalError> {
        std::fs::create_dir_all(&cfg.dir).map_err(io_err(&cfg.dir))?;
        let report = scan_from(&cfg.dir, after, f)?;
        if let Some(t) = &report.torn {
            if t.offset == 0 {
                std::fs::remove_file(&t.segment).map_err(io_err(&t.segment))?;
            } else {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&t.segment)
                    .map_err(io_err(&t.segment))?;
                file.set_len(t.offset).map_err(io_err(&t.segment))?;
                file.sync_all().map_err(io_err(&t.segment))?;
            }
            sync_dir(&cfg.dir)?;
        }
        let next_seq = report.last_seq + 1;
        let (file, path, segment_len) = match &report.last_segment {
            Some((path, _, len)) if report.torn.as_ref().is_none_or(|t| t.offset > 0) => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(io_err(path))?;
                (file, path.clone(), *len)
            }
            _ => create_segment(&cfg, next_seq, report.last_crc)?,
        };
        let capacity = cfg.batch_bytes + RECORD_HEADER_BYTES + MAX_PAYLOAD;
        let journal = Journal {
            batch: Vec::with_capacity(capacity),
            cfg,
            file,
            path,
            segment_len,
            batch_records: 0,
            batch_started: None,
            chain: report.last_crc,
            next_seq,
            written_seq: report.last_seq,
            durable_seq: report.last_seq,
            last_sync: Instant::now(),
        };
        Ok((journal, report))
    }

    /// Adds `cmd` to the open batch; writes the batch once it is full. The command must
    /// carry the next sequence number.
    pub fn append(&mut self, cmd: &Command) -> Result<Option<FlushOutcome>, JournalError> {
        if cmd.seq != self.next_seq {
            return Err(JournalError::OutOfSequence {
                expected: self.next_seq,
                got: cmd.seq,
            });
        }
        if self.batch.is_empty() {
            self.batch_started = Some(Instant::now());
        }
        self.chain = append_record(&mut self.batch, self.chain, cmd);
        self.batch_records += 1;
        self.next_seq += 1;
        if self.batch.len() >= self.cfg.batch_bytes {
            return self.flush().map(Some);
        }
        Ok(None)
    }

    /// Writes the open batch (one `write`), syncs it as the policy says, and seals the
    /// segment if it is full.
    pub fn flush(&mut self) -> Result<FlushOutcome, JournalError> {
        let mut out = FlushOutcome::default();
        if !self.batch.is_empty() {
            if let Err(e) = self.file.write_all(&self.batch) {
                // Cut a partial write off, so the file holds whole batches only and a
                // retry appends at the right place.
                let _ = self.file.set_len(self.segment_len);
                return Err(io_err(&self.path)(e));
            }
            out.bytes = self.batch.len();
            out.records = self.batch_records;
            self.segment_len += self.batch.len() as u64;
            self.written_seq = self.next_seq - 1;
            self.batch.clear();
            self.batch_records = 0;
            self.batch_started = None;
        }
        out.synced = match self.cfg.fsync {
            FsyncPolicy::Batch => self.sync()?,
            FsyncPolicy::IntervalMs(ms)
                if self.last_sync.elapsed() >= Duration::from_millis(ms) =>
            {
                self.sync()?
            }
            FsyncPolicy::IntervalMs(_) => None,
            FsyncPolicy::Never => {
                self.durable_seq = self.written_seq;
                None
            }
        };
        if self.segment_len >= self.cfg.segment_bytes {
            self.roll()?;
        }
        Ok(out)
    }

    /// Flushes the batch once it is `batch_delay` old, and syncs under the interval
    /// policy once the interval has passed; call it whenever the caller is idle.
    pub fn tick(&mut self, now: Instant) -> Result<Option<FlushOutcome>, JournalError> {
        let due = self
            .batch_started
            .is_some_and(|t| now.duration_since(t) >= self.cfg.batch_delay);
        let sync_due = matches!(self.cfg.fsync, FsyncPolicy::IntervalMs(ms)
            if self.durable_seq < self.written_seq
                && now.duration_since(self.last_sync) >= Duration::from_millis(ms));
        if due || sync_due {
            return self.flush().map(Some);
        }
        Ok(None)
    }

    /// `fdatasync`s what was written, if anything is not yet durable; moves the
    /// watermark. Returns how long the sync took.
    pub fn sync(&mut self) -> Result<Option<Duration>, JournalError> {
        if self.durable_seq == self.written_seq {
            return Ok(None);
        }
        let start = Instant::now();
        self.file.sync_data().map_err(io_err(&self.path))?;
        let took = start.elapsed();
        self.last_sync = Instant::now();
        self.durable_seq = self.written_seq;
        Ok(Some(took))
    }

    /// Writes and syncs everything appended (whatever the policy), then closes.
    pub fn close(mut self) -> Result<u64, JournalError> {
        self.flush()?;
        self.sync()?;
        Ok(self.durable_seq)
    }

    /// The last sequence that is durable under the policy: acknowledge up to it.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// The last sequence handed to the OS.
    pub fn written_seq(&self) -> u64 {
        self.written_seq
    }

    /// The sequence the next appended command must carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Seals the full segment (synced unless the policy is `Never`) and starts the next.
    fn roll(&mut self) -> Result<(), JournalError> {
        if self.cfg.fsync != FsyncPolicy::Never {
            self.sync()?;
        }
        let (file, path, len) = create_segment(&self.cfg, self.next_seq, self.chain)?;
        (self.file, self.path, self.segment_len) = (file, path, len);
        Ok(())
    }
}

/// Creates the segment starting at `first_seq` with its header, synced with its
/// directory entry unless the policy is `Never`.
fn create_segment(
    cfg: &JournalConfig,
    first_seq: u64,
    chain: u32,
) -> Result<(File, PathBuf, u64), JournalError> {
    let path = cfg.dir.join(segment_name(first_seq));
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let header = SegmentHeader { first_seq, chain }.encode();
    file.write_all(&header).map_err(io_err(&path))?;
    if cfg.fsync != FsyncPolicy::Never {
        file.sync_all().map_err(io_err(&path))?;
        sync_dir(&cfg.dir)?;
    }
    Ok((file, path, header.len() as u64))
}

/// Makes a directory's entries durable (a new or removed segment file).
fn sync_dir(dir: &std::path::Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}
