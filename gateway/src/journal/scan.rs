//! The recovery scan: reads every segment in order, verifies it, hands each valid
//! command to the caller, and classifies damage by the decision table in the module
//! docs of `journal`. It changes nothing on disk ([`super::Journal::open`] does).

use super::segment::{
    parse_segment_name, record_crc, u32_at, SegmentHeader, HEADER_BYTES, MAX_PAYLOAD, MIN_PAYLOAD,
    RECORD_HEADER_BYTES,
};
use super::{io_err, JournalError};
use cascade_core::Command;
use std::path::{Path, PathBuf};

/// The unacknowledged end of the last segment, cut off by recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Segment file.
    pub segment: PathBuf,
    /// Where the valid records end (0 for a segment whose header was torn: the file
    /// goes).
    pub offset: u64,
    /// Bytes past it.
    pub bytes: u64,
    /// Sequence of the last valid record before it (0 if none).
    pub last_seq: u64,
    /// What was found there.
    pub reason: &'static str,
}

/// What a scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Segment files read.
    pub segments: usize,
    /// Valid records.
    pub records: u64,
    /// Sequence of the first valid record (0 if none).
    pub first_seq: u64,
    /// Sequence of the last valid record (0 if none).
    pub last_seq: u64,
    /// Checksum of the last valid record: the chain value to continue from.
    pub last_crc: u32,
    /// The torn tail found, if any.
    pub torn: Option<TornTail>,
    /// The last segment with a valid header: path, first sequence, valid length.
    pub last_segment: Option<(PathBuf, u64, u64)>,
}

/// The segment files of `dir`, in sequence order (other files are ignored).
pub(super) fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        if let Some(seq) = name.to_str().and_then(parse_segment_name) {
            out.push((seq, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Reads the journal in `dir`, calling `f` with each valid command in order.
pub fn scan(dir: &Path, f: impl FnMut(&Command)) -> Result<ScanReport, JournalError> {
    scan_from(dir, 0, f)
}

/// [`scan`] that skips the segments holding only commands up to `after` (a snapshot's
/// sequence): they are not read, and the chain is checked from the first segment read,
/// whose header carries the chain value. `f` still sees every command of the segments
/// read, `after` included or not: the caller filters.
pub fn scan_from(
    dir: &Path,
    after: u64,
    mut f: impl FnMut(&Command),
) -> Result<ScanReport, JournalError> {
    let files = segments(dir)?;
    // A segment is skipped when the next one starts at or before `after + 1`.
    let first = files
        .windows(2)
        .take_while(|w| w[1].0 <= after.saturating_add(1))
        .count();
    let mut report = read_from(&files, first, &mut f)?;
    if first > 0 && report.records == 0 && report.torn.as_ref().is_some_and(|t| t.offset == 0) {
        // The first segment read is a torn creation: the chain and sequence to continue
        // from are the previous segment's.
        report = read_from(&files, first - 1, &mut f)?;
    }
    // The journal must reach back to what it continues: sequence 1, or `after + 1`.
    if let Some((_, path)) = files.get(first) {
        if report.records > 0 && report.first_seq > after.saturating_add(1) {
            return Err(JournalError::Corrupt {
                segment: path.clone(),
                offset: 0,
                reason: if after == 0 {
                    "the journal does not start at sequence 1 (a segment before it is missing)"
                } else {
                    "the journal starts after the snapshot's next sequence (a segment is missing)"
                },
            });
        }
    }
    Ok(report)
}

/// Reads `files[first..]` into a fresh report.
fn read_from(
    files: &[(u64, PathBuf)],
    first: usize,
    f: &mut impl FnMut(&Command),
) -> Result<ScanReport, JournalError> {
    let mut report = ScanReport::default();
    for (i, (named, path)) in files.iter().enumerate().skip(first) {
        let last = i + 1 == files.len();
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        report.segments += 1;
        if !read_segment(path, *named, &bytes, last, &mut report, f)? {
            break;
        }
    }
    Ok(report)
}

/// Reads one segment into `report`; false once a torn tail ends the journal.
fn read_segment(
    path: &Path,
    named: u64,
    bytes: &[u8],
    last: bool,
    report: &mut ScanReport,
    f: &mut impl FnMut(&Command),
) -> Result<bool, JournalError> {
    let corrupt = |offset: usize, reason| JournalError::Corrupt {
        segment: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    let header = match SegmentHeader::decode(bytes) {
        Ok(h) => h,
        Err(_) if last && bytes.len() <= HEADER_BYTES => {
            report.torn = Some(torn(
                path,
                0,
                bytes.len(),
                report,
                "segment header cut short",
            ));
            return Ok(false);
        }
        Err(reason) => return Err(corrupt(0, reason)),
    };
    let expected = report.last_seq + 1;
    if header.first_seq != named
        || report.segments > 1 && header.first_seq != expected
        || report.segments > 1 && header.chain != report.last_crc
    {
        return Err(corrupt(
            0,
            "segment does not follow its predecessor (sequence or checksum chain)",
        ));
    }
    if report.records == 0 {
        report.last_crc = header.chain;
        report.last_seq = header.first_seq.saturating_sub(1);
    }
    report.last_segment = Some((path.to_path_buf(), header.first_seq, bytes.len() as u64));
    let mut at = HEADER_BYTES;
    while at < bytes.len() {
        match record_at(bytes, at, report.last_crc, report.last_seq + 1) {
            Ok((cmd, crc, next)) => {
                f(&cmd);
                if report.records == 0 {
                    report.first_seq = cmd.seq;
                }
                (report.records, report.last_seq, report.last_crc) =
                    (report.records + 1, cmd.seq, crc);
                at = next;
            }
            Err(bad) if last && bad.tail_only(bytes) => {
                report.last_segment = Some((path.to_path_buf(), header.first_seq, at as u64));
                report.torn = Some(torn(path, at, bytes.len() - at, report, bad.reason));
                return Ok(false);
            }
            Err(bad) => return Err(corrupt(at, bad.reason)),
        }
    }
    Ok(true)
}

fn torn(path: &Path, at: usize, bytes: usize, r: &ScanReport, reason: &'static str) -> TornTail {
    TornTail {
        segment: path.to_path_buf(),
        offset: at as u64,
        bytes: bytes as u64,
        last_seq: r.last_seq,
        reason,
    }
}

/// A record that failed a check: why, and from where the rest of the file must be
/// zeros for it to be a torn write.
struct BadRecord {
    reason: &'static str,
    /// The end of its extent if its length checks; 4 bytes into it if not (a torn write
    /// can leave the length written and the rest of the page zeros).
    from: usize,
}

impl BadRecord {
    /// True if it can be a torn write: nothing but zeros from `from` to the end of the
    /// file (nothing after it was written).
    fn tail_only(&self, bytes: &[u8]) -> bool {
        self.from >= bytes.len() || bytes[self.from..].iter().all(|&b| b == 0)
    }
}

/// The record at `at`: its command, checksum and end, checked against the chain value
/// `prev` and the sequence `seq`.
fn record_at(
    bytes: &[u8],
    at: usize,
    prev: u32,
    seq: u64,
) -> Result<(Command, u32, usize), BadRecord> {
    let bad = |reason, from| Err(BadRecord { reason, from });
    if bytes.len() - at < RECORD_HEADER_BYTES {
        return bad("record header cut short", bytes.len());
    }
    let len = u32_at(bytes, at) as usize;
    let crc = u32_at(bytes, at + 8);
    if crc32c::crc32c(&bytes[at..at + 4]) != u32_at(bytes, at + 4) {
        return bad("record length checksum mismatch", at + 4);
    }
    if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&len) {
        return bad("record length out of range", at + 4);
    }
    let end = at + RECORD_HEADER_BYTES + len;
    if end > bytes.len() {
        return bad("record runs past the end of the segment", bytes.len());
    }
    let payload = &bytes[at + RECORD_HEADER_BYTES..end];
    if record_crc(prev, payload) != crc {
        return bad("record checksum mismatch", end);
    }
    let Ok(cmd) = Command::decode(payload) else {
        return bad("record payload does not decode", end);
    };
    if cmd.seq != seq {
        return bad("record out of sequence", end);
    }
    Ok((cmd, crc, end))
}
