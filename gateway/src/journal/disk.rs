//! The journal's writer thread: it owns the open segment file and performs, in order,
//! the jobs the appending thread sends it: write a batch (with one `write`, then
//! `fdatasync` as the policy says), sync, or seal the segment and start the next. Each
//! job is answered with a [`Done`] saying what is now written and durable, so the
//! appending thread encodes the next batch while this one writes and syncs.
//!
//! Invariants: `durable ≤ written`; the file holds whole batches only (a failed write is
//! cut off); a new segment's header and directory entry are synced (unless the policy
//! is `Never`) before any batch goes into it.

use super::segment::{segment_name, SegmentHeader};
use super::{io_err, FsyncPolicy, JournalConfig, JournalError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Work for the writer thread.
pub(super) enum Job {
    /// Append a batch ending at `last_seq` (its buffer comes back in the answer).
    Write {
        buf: Vec<u8>,
        records: u64,
        last_seq: u64,
    },
    /// Make everything written durable.
    Sync,
    /// Seal the segment and start the one beginning at `first_seq` with `chain`.
    Roll { first_seq: u64, chain: u32 },
}

/// The answer to one job.
pub(super) struct Done {
    /// A written batch's buffer, cleared, for reuse.
    pub(super) buf: Option<Vec<u8>>,
    /// Bytes and records written by this job.
    pub(super) bytes: usize,
    pub(super) records: u64,
    /// The `fdatasync` this job ran, and how long it took.
    pub(super) synced: Option<Duration>,
    /// Sequences written and durable after it.
    pub(super) written: u64,
    pub(super) durable: u64,
    /// What failed, if anything did.
    pub(super) error: Option<JournalError>,
}

/// The writer thread's state.
pub(super) struct Disk {
    pub(super) fsync: FsyncPolicy,
    pub(super) dir: PathBuf,
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) len: u64,
    pub(super) written: u64,
    pub(super) durable: u64,
    pub(super) last_sync: Instant,
}

impl Disk {
    /// Performs `job`.
    pub(super) fn run(&mut self, job: Job) -> Done {
        let mut done = Done {
            buf: None,
            bytes: 0,
            records: 0,
            synced: None,
            written: self.written,
            durable: self.durable,
            error: None,
        };
        let result = match job {
            Job::Write {
                mut buf,
                records,
                last_seq,
            } => {
                let r = self.write(&buf, last_seq);
                if r.is_ok() {
                    (done.bytes, done.records) = (buf.len(), records);
                }
                buf.clear();
                done.buf = Some(buf);
                r.and_then(|()| self.sync_per_policy())
            }
            Job::Sync => self.sync(),
            Job::Roll { first_seq, chain } => self.roll(first_seq, chain),
        };
        match result {
            Ok(synced) => done.synced = synced,
            Err(e) => done.error = Some(e),
        }
        (done.written, done.durable) = (self.written, self.durable);
        done
    }

    fn write(&mut self, buf: &[u8], last_seq: u64) -> Result<(), JournalError> {
        if let Err(e) = self.file.write_all(buf) {
            // Cut a partial write off, so the file holds whole batches only.
            let _ = self.file.set_len(self.len);
            return Err(io_err(&self.path)(e));
        }
        self.len += buf.len() as u64;
        self.written = last_seq;
        Ok(())
    }

    fn sync_per_policy(&mut self) -> Result<Option<Duration>, JournalError> {
        match self.fsync {
            FsyncPolicy::Batch => self.sync(),
            FsyncPolicy::IntervalMs(ms)
                if self.last_sync.elapsed() >= Duration::from_millis(ms) =>
            {
                self.sync()
            }
            FsyncPolicy::IntervalMs(_) => Ok(None),
            FsyncPolicy::Never => {
                self.durable = self.written;
                Ok(None)
            }
        }
    }

    /// `fdatasync`s what was written, if anything is not yet durable.
    fn sync(&mut self) -> Result<Option<Duration>, JournalError> {
        if self.durable == self.written {
            return Ok(None);
        }
        let start = Instant::now();
        self.file.sync_data().map_err(io_err(&self.path))?;
        let took = start.elapsed();
        self.last_sync = Instant::now();
        self.durable = self.written;
        Ok(Some(took))
    }

    fn roll(&mut self, first_seq: u64, chain: u32) -> Result<Option<Duration>, JournalError> {
        let synced = if self.fsync == FsyncPolicy::Never {
            None
        } else {
            self.sync()?
        };
        let (file, path, len) = create_segment(&self.dir, self.fsync, first_seq, chain)?;
        (self.file, self.path, self.len) = (file, path, len);
        Ok(synced)
    }
}

/// Creates the segment starting at `first_seq` with its header, synced with its
/// directory entry unless the policy is `Never`.
pub(super) fn create_segment(
    dir: &Path,
    fsync: FsyncPolicy,
    first_seq: u64,
    chain: u32,
) -> Result<(File, PathBuf, u64), JournalError> {
    let path = dir.join(segment_name(first_seq));
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let header = SegmentHeader { first_seq, chain }.encode();
    file.write_all(&header).map_err(io_err(&path))?;
    if fsync != FsyncPolicy::Never {
        file.sync_all().map_err(io_err(&path))?;
        sync_dir(dir)?;
    }
    Ok((file, path, header.len() as u64))
}

/// Makes a directory's entries durable (a new or removed segment file).
pub(super) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl JournalConfig {
    /// The writer thread's view of the configuration.
    pub(super) fn disk(&self, file: File, path: PathBuf, len: u64, seq: u64) -> Disk {
        Disk {
            fsync: self.fsync,
            dir: self.dir.clone(),
            file,
            path,
            len,
            written: seq,
            durable: seq,
            last_sync: Instant::now(),
        }
    }
}
