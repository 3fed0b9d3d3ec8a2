//! The durable input journal: every sequenced command, in order, in checksummed and
//! hash-chained records (`segment` has the byte layout), written in group-committed
//! batches, and read back by a recovery scan that trusts nothing it cannot verify.
//!
//! Writing ([`Journal`]): `append` encodes a command into the open batch; `flush`
//! hands the batch to the journal's writer thread (`disk.rs`), which writes it with one
//! `write` and, under [`FsyncPolicy::Batch`], one `fdatasync`, while the next batch is
//! encoded (at most one batch in flight). The durable watermark
//! ([`Journal::durable_seq`]), which callers release acknowledgements against, moves
//! only when the writer answers after its sync. A batch is handed over when it reaches
//! `JournalConfig::batch_bytes`, or by [`Journal::tick`] once it is
//! `JournalConfig::batch_delay` old. A segment is sealed (synced, unless the policy is
//! `Never`) and a new one started once it reaches `JournalConfig::segment_bytes`; a new
//! segment's header and directory entry are synced before any record goes into it.
//!
//! Recovery ([`scan`], and [`Journal::open`], which acts on its verdict) reads segments
//! in sequence order and checks every header, every record's length, checksum chain,
//! decoding and sequence (each one more than the last, across segments). What it finds
//! decides what happens, as in this table (the last segment is the one written to when
//! the process stopped):
//!
//! | found | where | verdict |
//! |---|---|---|
//! | valid records to the end | any segment | clean |
//! | fewer than 12 bytes (a record header) after the last valid record | last segment | torn tail: truncated there, bytes and last sequence reported |
//! | a record whose length (its own checksum verified) runs past the end of the file | last segment | torn tail |
//! | a record whose checked length ends exactly at the end of the file but whose payload fails (checksum, decoding, sequence) | last segment | torn tail |
//! | a bad record followed by nothing but zero bytes (from its end, or from 4 bytes into it when its length is damaged or out of range: a torn page can leave the length alone) | last segment | torn tail |
//! | a header cut short, nothing after it | last segment | torn segment creation: the file is removed, reported |
//! | a bad record followed by any non-zero byte | any segment | **error**: segment file and byte offset; nothing past it is replayed |
//! | any damage in a sealed (not last) segment | sealed segment | **error**: segment and offset |
//! | a bad header, a first sequence that does not follow the previous segment, or a chain value that is not the previous segment's last checksum | any segment | **error** (a lost, reordered or misdirected segment) |
//! | a first record after sequence 1 (or, reading after a snapshot at `s`, after `s + 1`) | first segment read | **error**: a segment before it is missing |
//!
//! After a snapshot at `s` ([`scan_from`]), segments holding only commands up to `s` are
//! not read; the chain is checked from the first segment read (its header carries the
//! chain value). If that segment is a torn creation, the one before it is read too, so
//! the journal continues from its last record.
//!
//! A torn tail holds only records that were never acknowledged under the `Batch`
//! policy: their batch's `fdatasync` had not returned. A crash can persist a batch's
//! sectors out of order, leaving an intact record after a hole; that is a bad record
//! followed by non-zero bytes, so it stops recovery with an error rather than guess.

mod disk;
mod scan;
mod segment;
mod writer;

pub use scan::{scan, scan_from, ScanReport, TornTail};
pub use segment::{
    append_record, parse_segment_name, record_crc, segment_name, SegmentHeader, FORMAT_VERSION,
    HEADER_BYTES, MAGIC, MAX_PAYLOAD, MIN_PAYLOAD, RECORD_HEADER_BYTES,
};
pub use writer::{FlushOutcome, Journal};

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// When written batches are made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` after every batch: nothing is durable (acknowledged) before it.
    Batch,
    /// `fdatasync` at most every this many milliseconds; the watermark moves at each.
    IntervalMs(u64),
    /// Never: the watermark follows what was handed to the OS (a crash of the machine
    /// can lose acknowledged commands).
    Never,
}

impl FromStr for FsyncPolicy {
    type Err = String;

    /// `batch`, `interval-ms:N` or `never`.
    fn from_str(s: &str) -> Result<FsyncPolicy, String> {
        match s {
            "batch" => Ok(FsyncPolicy::Batch),
            "never" => Ok(FsyncPolicy::Never),
            _ => s
                .strip_prefix("interval-ms:")
                .and_then(|n| n.parse().ok())
                .map(FsyncPolicy::IntervalMs)
                .ok_or_else(|| {
                    format!("fsync policy `{s}`: expected batch, interval-ms:N or never")
                }),
        }
    }
}

/// Where and how the journal writes.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    /// Directory of the segment files (created if missing).
    pub dir: PathBuf,
    /// Durability of batches.
    pub fsync: FsyncPolicy,
    /// A batch is written once it holds this many bytes (256 KiB by default).
    pub batch_bytes: usize,
    /// ... or once its first record is this old, at the next [`Journal::tick`] (1 ms).
    pub batch_delay: Duration,
    /// A segment is sealed once it holds this many bytes (64 MiB).
    pub segment_bytes: u64,
    /// Called on the writer thread with the new durable watermark each time it moves,
    /// before the appending thread hears of it (the gateway wakes its I/O thread here,
    /// saving a hop through the engine thread).
    pub on_durable: Option<DurableHook>,
    /// Write batches on the appending thread itself instead of the writer thread: no
    /// hand-off per batch. Meant for `FsyncPolicy::Never`, where a batch is one
    /// `write` into the page cache; with a sync policy the appending thread would wait
    /// for each `fdatasync`.
    pub inline_writes: bool,
}

/// A callback taking the new durable watermark.
#[derive(Clone)]
pub struct DurableHook(pub std::sync::Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for DurableHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DurableHook")
    }
}

impl JournalConfig {
    /// The defaults for `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> JournalConfig {
        JournalConfig {
            dir: dir.into(),
            fsync: FsyncPolicy::Batch,
            batch_bytes: 256 << 10,
            batch_delay: Duration::from_millis(1),
            segment_bytes: 64 << 20,
            on_durable: None,
            inline_writes: false,
        }
    }
}

/// Why the journal cannot be read or written.
#[derive(Debug)]
pub enum JournalError {
    /// An operating-system error on this path.
    Io {
        /// File or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Damage recovery must not pass (module docs): segment file and byte offset.
    Corrupt {
        /// Segment file.
        segment: PathBuf,
        /// Offset of the damaged header or record.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A command appended out of sequence.
    OutOfSequence {
        /// The sequence the journal expects next.
        expected: u64,
        /// The command's.
        got: u64,
    },
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            JournalError::Corrupt {
                segment,
                offset,
                reason,
            } => write!(
                f,
                "journal corrupt: {} at byte offset {offset}: {reason}",
                segment.display()
            ),
            JournalError::OutOfSequence { expected, got } => {
                write!(
                    f,
                    "journal: command seq {got} appended, {expected} expected"
                )
            }
        }
    }
}

impl std::error::Error for JournalError {}

/// Wraps an I/O error with its path.
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}
