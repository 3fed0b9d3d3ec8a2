//! The journal's appending side: batches, group commit, the durable watermark, segment
//! rolling. Writing and syncing happen on the journal's writer thread (`disk.rs`), one
//! batch at a time, while the next batch is encoded here (double buffering).
//!
//! Invariants: `durable_seq ≤ written_seq ≤ submitted_seq ≤ next_seq − 1`; at most one
//! batch is with the writer thread; the open batch holds exactly the records
//! `submitted_seq + 1 ..= next_seq − 1`, chained from the last submitted record;
//! `segment_len` is the open segment's length once every submitted batch is written.

use super::disk::{create_segment, sync_dir, Disk, Done, Job};
use super::scan::{scan_from, ScanReport};
use super::segment::{append_record, MAX_PAYLOAD, RECORD_HEADER_BYTES};
use super::{io_err, FsyncPolicy, JournalConfig, JournalError};
use cascade_core::Command;
use std::fs::OpenOptions;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What one call that writes did: the batches the writer thread finished during it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Bytes written (0: none finished).
    pub bytes: usize,
    /// Records written.
    pub records: u64,
    /// How long the last `fdatasync` among them took, if one ran.
    pub synced: Option<Duration>,
}

/// An open journal, appending to its last segment.
pub struct Journal {
    cfg: JournalConfig,
    jobs: Option<SyncSender<Job>>,
    dones: Receiver<Done>,
    /// With `inline_writes`: the disk, written on this thread, and its answers not yet
    /// taken in (the same order and accounting as the writer thread's).
    inline: Option<(Disk, std::collections::VecDeque<Done>)>,
    writer: Option<JoinHandle<()>>,
    /// Jobs sent and not yet answered.
    outstanding: usize,
    /// A cleared batch buffer, back from the writer thread.
    spare: Vec<u8>,
    segment_len: u64,
    batch: Vec<u8>,
    batch_records: u64,
    batch_started: Option<Instant>,
    chain: u32,
    next_seq: u64,
    submitted_seq: u64,
    written_seq: u64,
    durable_seq: u64,
    /// When the last sync was asked for (the interval policy's clock).
    last_sync: Instant,
    /// The writer thread failed: every later call is refused.
    failed: bool,
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
            _ => create_segment(&cfg.dir, cfg.fsync, next_seq, report.last_crc)?,
        };
        let mut disk = cfg.disk(file, path, segment_len, report.last_seq);
        let (jobs, job_rx) = sync_channel::<Job>(2);
        let (done_tx, dones) = channel::<Done>();
        let (writer, inline) = if cfg.inline_writes {
            (None, Some((disk, std::collections::VecDeque::new())))
        } else {
            let hook = cfg.on_durable.clone();
            let w = std::thread::Builder::new()
                .name("journal-writer".into())
                .spawn(move || run_writer(&mut disk, &job_rx, &done_tx, hook.as_ref()))
                .map_err(io_err(&cfg.dir))?;
            (Some(w), None)
        };
        let capacity = cfg.batch_bytes + RECORD_HEADER_BYTES + MAX_PAYLOAD;
        let journal = Journal {
            batch: Vec::with_capacity(capacity),
            spare: Vec::with_capacity(capacity),
            cfg,
            jobs: Some(jobs),
            dones,
            inline,
            writer,
            outstanding: 0,
            segment_len,
            batch_records: 0,
            batch_started: None,
            chain: report.last_crc,
            next_seq,
            submitted_seq: report.last_seq,
            written_seq: report.last_seq,
            durable_seq: report.last_seq,
            last_sync: Instant::now(),
            failed: false,
        };
        Ok((journal, report))
    }

    /// Adds `cmd` to the open batch; hands the batch to the writer once it is full. The
    /// command must carry the next sequence number.
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

    /// Hands the open batch to the writer thread (one `write`, then `fdatasync` as the
    /// policy says), first waiting for the batch before it: while this one is written,
    /// the next is encoded. Starts the next segment once this one is full.
    pub fn flush(&mut self) -> Result<FlushOutcome, JournalError> {
        let mut out = FlushOutcome::default();
        if self.batch.is_empty() {
            self.poll(&mut out)?;
            return Ok(out);
        }
        self.wait_all(&mut out)?;
        let buf = std::mem::replace(&mut self.batch, std::mem::take(&mut self.spare));
        self.segment_len += buf.len() as u64;
        self.submitted_seq = self.next_seq - 1;
        self.send(Job::Write {
            buf,
            records: self.batch_records,
            last_seq: self.submitted_seq,
        })?;
        (self.batch_records, self.batch_started) = (0, None);
        if self.cfg.fsync == FsyncPolicy::Batch {
            self.last_sync = Instant::now();
        }
        if self.segment_len >= self.cfg.segment_bytes {
            self.send(Job::Roll {
                first_seq: self.next_seq,
                chain: self.chain,
            })?;
            self.segment_len = super::HEADER_BYTES as u64;
        }
        Ok(out)
    }

    /// Hands over the batch once it is `batch_delay` old, syncs under the interval
    /// policy once the interval has passed, and takes in what the writer finished; call
    /// it whenever the caller is idle.
    pub fn tick(&mut self, now: Instant) -> Result<Option<FlushOutcome>, JournalError> {
        let due = self
            .batch_started
            .is_some_and(|t| now.duration_since(t) >= self.cfg.batch_delay);
        if due {
            return self.flush().map(Some);
        }
        let mut out = FlushOutcome::default();
        self.poll(&mut out)?;
        let sync_due = matches!(self.cfg.fsync, FsyncPolicy::IntervalMs(ms)
            if self.durable_seq < self.submitted_seq
                && now.duration_since(self.last_sync) >= Duration::from_millis(ms));
        if sync_due {
            let synced = self.sync()?;
            out.bytes += synced.bytes;
            out.records += synced.records;
            out.synced = synced.synced.or(out.synced);
        }
        Ok((out != FlushOutcome::default()).then_some(out))
    }

    /// Waits until everything handed over is written, then `fdatasync`s it if anything
    /// is not yet durable (whatever the policy); moves the watermark. Returns what
    /// finished meanwhile, with the last sync's duration.
    pub fn sync(&mut self) -> Result<FlushOutcome, JournalError> {
        let mut out = FlushOutcome::default();
        self.wait_all(&mut out)?;
        if self.durable_seq == self.written_seq {
            return Ok(out);
        }
        self.last_sync = Instant::now();
        self.send(Job::Sync)?;
        self.wait_all(&mut out)?;
        Ok(out)
    }

    /// Writes and syncs everything appended (whatever the policy), stops the writer
    /// thread, and returns the last durable sequence.
    pub fn close(mut self) -> Result<u64, JournalError> {
        self.flush()?;
        self.sync()?;
        self.stop();
        Ok(self.durable_seq)
    }

    /// The last sequence that is durable under the policy: acknowledge up to it.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// Whether a batch is with the writer thread (a `flush` now would wait for it).
    pub fn in_flight(&self) -> bool {
        self.outstanding > 0
    }

    /// Whether commands are appended but not yet handed to the writer thread.
    pub fn has_batch(&self) -> bool {
        !self.batch.is_empty()
    }

    /// The last sequence the writer thread has handed to the OS.
    pub fn written_seq(&self) -> u64 {
        self.written_seq
    }

    /// The sequence the next appended command must carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn send(&mut self, job: Job) -> Result<(), JournalError> {
        if self.failed {
            return Err(self.stopped());
        }
        if let Some((disk, ready)) = self.inline.as_mut() {
            let before = disk.durable;
            let done = disk.run(job);
            if let Some(h) = self
                .cfg
                .on_durable
                .as_ref()
                .filter(|_| done.durable > before && done.error.is_none())
            {
                (h.0)(done.durable);
            }
            ready.push_back(done);
            self.outstanding += 1;
            return Ok(());
        }
        let jobs = self.jobs.as_ref().ok_or_else(|| self.stopped())?;
        jobs.send(job).map_err(|_| self.stopped())?;
        self.outstanding += 1;
        Ok(())
    }

    /// Takes in every answer, waiting for those not yet given.
    fn wait_all(&mut self, out: &mut FlushOutcome) -> Result<(), JournalError> {
        while self.outstanding > 0 {
            let done = match self.inline.as_mut().and_then(|(_, r)| r.pop_front()) {
                Some(d) => d,
                None => self.dones.recv().map_err(|_| self.stopped())?,
            };
            self.take(done, out)?;
        }
        Ok(())
    }

    /// Takes in the answers already given.
    fn poll(&mut self, out: &mut FlushOutcome) -> Result<(), JournalError> {
        while self.outstanding > 0 {
            let done = match self.inline.as_mut().and_then(|(_, r)| r.pop_front()) {
                Some(d) => d,
                None => match self.dones.try_recv() {
                    Ok(d) => d,
                    Err(_) => break,
                },
            };
            self.take(done, out)?;
        }
        Ok(())
    }

    fn take(&mut self, done: Done, out: &mut FlushOutcome) -> Result<(), JournalError> {
        self.outstanding -= 1;
        if let Some(buf) = done.buf {
            self.spare = buf;
        }
        out.bytes += done.bytes;
        out.records += done.records;
        out.synced = done.synced.or(out.synced);
        (self.written_seq, self.durable_seq) = (done.written, done.durable);
        if let Some(e) = done.error {
            self.failed = true;
            return Err(e);
        }
        Ok(())
    }

    fn stopped(&self) -> JournalError {
        JournalError::Io {
            path: self.cfg.dir.clone(),
            source: std::io::Error::other("the journal's writer thread stopped after an error"),
        }
    }

    /// Ends the writer thread (what it was given is finished first).
    fn stop(&mut self) {
        drop(self.jobs.take());
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Journal {
    /// Stops the writer thread; the open batch, never handed over, is not written (it
    /// was never acknowledged).
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer thread: performs jobs in order until the journal hangs up.
fn run_writer(
    disk: &mut Disk,
    jobs: &Receiver<Job>,
    dones: &std::sync::mpsc::Sender<Done>,
    hook: Option<&super::DurableHook>,
) {
    for job in jobs {
        let before = disk.durable;
        let done = disk.run(job);
        if let Some(h) = hook.filter(|_| done.durable > before && done.error.is_none()) {
            (h.0)(done.durable);
        }
        if dones.send(done).is_err() {
            return;
        }
    }
}
