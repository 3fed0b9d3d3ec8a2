//! The journal on real files: round trips across segments and reopenings, the durable
//! watermark, and recovery against torn tails at every byte, bit flips at every byte,
//! zero-filled tails, lost and reordered segments, torn segment creation and random
//! garbage, each checked against the decision table in `journal`'s module docs.

use cascade_gateway::core::{
    AccountId, ClientOrderId, Command, CommandKind, MarketId, NewOrder, OrderId, OrderType, Price,
    Qty, Side, StpMode,
};
use cascade_gateway::journal::{
    scan, FsyncPolicy, Journal, JournalConfig, JournalError, ScanReport, HEADER_BYTES,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh, empty directory under the system's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("cascade-journal-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Command `seq`: a mix of kinds and sizes.
fn command(seq: u64) -> Command {
    let account = AccountId((seq % 7) as u32);
    let kind = match seq % 4 {
        0 => CommandKind::Deposit {
            account,
            amount: seq as i64,
        },
        1 => CommandKind::NewOrder(NewOrder {
            account,
            market: MarketId(1),
            client_id: ClientOrderId(seq),
            side: if seq % 8 == 1 { Side::Buy } else { Side::Sell },
            order_type: OrderType::Limit(Price(100 + (seq % 50) as i64)),
            qty: Qty(1 + (seq % 9) as i64),
            stp: StpMode::CancelResting,
            reduce_only: false,
        }),
        2 => CommandKind::Cancel {
            account,
            order_id: OrderId(seq / 2),
        },
        _ => CommandKind::MarkPrice {
            market: MarketId(1),
            price: Price(100 + (seq % 13) as i64),
        },
    };
    Command {
        seq,
        ts_ns: seq * 1_000,
        kind,
    }
}

fn config(dir: &Path) -> JournalConfig {
    JournalConfig {
        segment_bytes: 4_096,
        batch_bytes: 1_024,
        ..JournalConfig::new(dir)
    }
}

/// Writes commands `first..=last` into the journal in `dir` and closes it.
fn write(dir: &Path, first: u64, last: u64) {
    let (mut j, _) = Journal::open(config(dir), |_| {}).unwrap();
    assert_eq!(j.next_seq(), first);
    for seq in first..=last {
        j.append(&command(seq)).unwrap();
        if seq % 37 == 0 {
            j.flush().unwrap();
        }
    }
    assert_eq!(j.close().unwrap(), last);
}

/// Recovers `dir` (cutting any torn tail), returning the commands and the report.
fn recover(dir: &Path) -> Result<(Vec<Command>, ScanReport), JournalError> {
    let mut seen = Vec::new();
    let (j, report) = Journal::open(config(dir), |c| seen.push(c.clone()))?;
    drop(j);
    Ok((seen, report))
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Record boundaries of one segment file, from its bytes.
fn boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut at = HEADER_BYTES;
    let mut out = vec![at];
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 12 + len;
        out.push(at);
    }
    out
}

fn copy_dir(from: &Path, name: &str) -> PathBuf {
    let to = temp_dir(name);
    for f in segment_files(from) {
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
    to
}

#[test]
fn commands_come_back_in_order_across_segments_and_reopenings() {
    let dir = temp_dir("round-trip");
    write(&dir, 1, 1_500);
    write(&dir, 1_501, 2_000);
    let (seen, report) = recover(&dir).unwrap();
    assert_eq!(seen, (1..=2_000).map(command).collect::<Vec<_>>());
    assert_eq!((report.first_seq, report.last_seq), (1, 2_000));
    assert!(report.torn.is_none());
    assert!(report.segments > 10, "{} segments", report.segments);
    // Scanning alone agrees and changes nothing.
    let again = scan(&dir, |_| {}).unwrap();
    assert_eq!(again.records, 2_000);
}

#[test]
fn the_watermark_moves_only_when_a_batch_is_durable() {
    let dir = temp_dir("watermark");
    let (mut j, _) = Journal::open(config(&dir), |_| {}).unwrap();
    j.append(&command(1)).unwrap();
    j.append(&command(2)).unwrap();
    assert_eq!((j.written_seq(), j.durable_seq()), (0, 0));
    j.flush().unwrap();
    // Handed to the writer thread; `sync` waits for it, and under the batch policy the
    // writer has already synced it.
    let done = j.sync().unwrap();
    assert!(done.synced.is_some(), "batch policy syncs every batch");
    assert_eq!((done.records, done.bytes > 0), (2, true));
    assert_eq!((j.written_seq(), j.durable_seq()), (2, 2));
    assert!(matches!(
        j.append(&command(4)),
        Err(JournalError::OutOfSequence {
            expected: 3,
            got: 4
        })
    ));
    // A full batch is handed over without being asked.
    let mut flushed = 0;
    for seq in 3..200 {
        flushed += usize::from(j.append(&command(seq)).unwrap().is_some());
    }
    assert!(flushed > 1);
    assert!(j.durable_seq() > 2);
    assert_eq!(j.close().unwrap(), 199);

    // Interval policy: written, not durable, until the interval passes and a tick syncs.
    let dir = temp_dir("interval");
    let cfg = JournalConfig {
        fsync: FsyncPolicy::IntervalMs(300),
        ..config(&dir)
    };
    let (mut j, _) = Journal::open(cfg, |_| {}).unwrap();
    j.append(&command(1)).unwrap();
    j.flush().unwrap();
    while j.written_seq() < 1 {
        j.tick(std::time::Instant::now()).unwrap();
    }
    assert_eq!(j.durable_seq(), 0);
    std::thread::sleep(std::time::Duration::from_millis(310));
    j.tick(std::time::Instant::now()).unwrap();
    assert_eq!(j.durable_seq(), 1);
    assert_eq!("interval-ms:20".parse(), Ok(FsyncPolicy::IntervalMs(20)));
    assert!("sometimes".parse::<FsyncPolicy>().is_err());
}

/// Cutting the last segment at every byte: a cut on a record boundary is clean, any
/// other is a torn tail that recovery truncates and reports, keeping every complete
/// record; the journal then continues from there.
#[test]
fn a_torn_tail_is_cut_at_every_byte_and_the_journal_continues() {
    let dir = temp_dir("torn-src");
    write(&dir, 1, 60);
    let files = segment_files(&dir);
    let last = files.last().unwrap();
    let bytes = std::fs::read(last).unwrap();
    let bounds = boundaries(&bytes);
    let before: u64 = files.len() as u64;
    let first_in_last = {
        let (seen, _) = recover(&copy_dir(&dir, "count")).unwrap();
        seen.len() as u64 - (bounds.len() as u64 - 1)
    };
    for cut in HEADER_BYTES + 1..bytes.len() {
        let copy = copy_dir(&dir, "torn");
        let seg = copy.join(last.file_name().unwrap());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut as u64)
            .unwrap();
        let (seen, report) = recover(&copy).unwrap();
        let whole = bounds.iter().filter(|&&b| b <= cut).count() as u64 - 1;
        let kept = first_in_last + whole;
        assert_eq!(seen.len() as u64, kept, "cut at {cut}");
        assert_eq!(report.last_seq, kept);
        let boundary = bounds[whole as usize];
        match &report.torn {
            None => assert_eq!(cut, boundary, "cut at {cut}"),
            Some(t) => {
                assert_eq!(
                    (t.offset, t.bytes),
                    (boundary as u64, (cut - boundary) as u64)
                );
                assert_eq!(t.last_seq, kept);
            }
        }
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), boundary as u64);
        write(&copy, kept + 1, kept + 5);
        let (seen, report) = recover(&copy).unwrap();
        assert_eq!(seen, (1..=kept + 5).map(command).collect::<Vec<_>>());
        assert!(report.torn.is_none());
        assert!(report.segments as u64 >= before);
        std::fs::remove_dir_all(&copy).unwrap();
    }
}

/// Flipping one bit anywhere: never a panic, never a changed command replayed; damage
/// before the last record (or in a header, or in a sealed segment) is an error naming
/// the segment and the damaged record's offset; damage in the last record is an error
/// there or a torn tail that keeps everything before it.
#[test]
fn a_flipped_bit_anywhere_is_detected() {
    let dir = temp_dir("flip-src");
    write(&dir, 1, 120);
    let files = segment_files(&dir);
    assert!(files.len() >= 2, "needs a sealed segment");
    let all: Vec<Command> = (1..=120).map(command).collect();
    let mut checked = 0;
    for (fi, file) in files.iter().enumerate() {
        let bytes = std::fs::read(file).unwrap();
        let bounds = boundaries(&bytes);
        let first_seq = {
            let name = file.file_name().unwrap().to_str().unwrap();
            name[..20].parse::<u64>().unwrap()
        };
        let last_file = fi + 1 == files.len();
        for pos in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let copy = copy_dir(&dir, "flip");
                let seg = copy.join(file.file_name().unwrap());
                let mut damaged = bytes.clone();
                damaged[pos] ^= bit;
                std::fs::write(&seg, &damaged).unwrap();
                // The record the byte belongs to (None: the header).
                let record = bounds.windows(2).position(|w| (w[0]..w[1]).contains(&pos));
                let start = record.map_or(0, |r| bounds[r]) as u64;
                match recover(&copy) {
                    Ok((seen, report)) => {
                        let r = record.expect("header damage is an error");
                        assert!(last_file && r + 2 == bounds.len(), "pos {pos} of {file:?}");
                        let t = report.torn.expect("torn tail reported");
                        assert_eq!(t.offset, start);
                        assert_eq!(seen, all[..seen.len()].to_vec());
                        assert_eq!(seen.len() as u64, first_seq - 1 + r as u64);
                    }
                    Err(JournalError::Corrupt {
                        segment, offset, ..
                    }) => {
                        assert_eq!(segment, seg, "pos {pos}");
                        assert_eq!(offset, start, "pos {pos}");
                    }
                    Err(e) => panic!("pos {pos}: {e}"),
                }
                std::fs::remove_dir_all(&copy).unwrap();
                checked += 1;
            }
        }
    }
    assert!(checked > 1_000);
}

#[test]
fn zeros_after_the_last_record_are_a_torn_tail() {
    let dir = temp_dir("zeros");
    write(&dir, 1, 20);
    let last = segment_files(&dir).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    let len = bytes.len();
    bytes.extend_from_slice(&[0u8; 4_096]);
    std::fs::write(&last, &bytes).unwrap();
    let (seen, report) = recover(&dir).unwrap();
    assert_eq!(seen.len(), 20);
    let t = report.torn.unwrap();
    assert_eq!((t.offset, t.bytes), (len as u64, 4_096));
}

#[test]
fn a_lost_or_reordered_segment_is_an_error() {
    let dir = temp_dir("lost-src");
    write(&dir, 1, 200);
    let files = segment_files(&dir);
    assert!(files.len() >= 3);
    let lost = copy_dir(&dir, "lost");
    std::fs::remove_file(lost.join(files[1].file_name().unwrap())).unwrap();
    let err = recover(&lost).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { segment, offset: 0, .. } if segment.ends_with(files[2].file_name().unwrap())),
        "{err}"
    );
    // The contents of two segments swapped under each other's names.
    let swapped = copy_dir(&dir, "swapped");
    let (a, b) = (
        swapped.join(files[1].file_name().unwrap()),
        swapped.join(files[2].file_name().unwrap()),
    );
    let (x, y) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, y).unwrap();
    std::fs::write(&b, x).unwrap();
    assert!(matches!(
        recover(&swapped),
        Err(JournalError::Corrupt { offset: 0, .. })
    ));
    // A record of one journal in the same place of another: the chain differs.
    assert!(recover(&dir).is_ok());
}

#[test]
fn a_torn_segment_creation_is_removed_and_the_journal_continues() {
    for len in [0usize, 1, 31, 32] {
        let dir = temp_dir("torn-header");
        write(&dir, 1, 30);
        let next = dir.join(format!("{:020}.journal", 31));
        std::fs::write(&next, vec![0x5a; len]).unwrap();
        let (seen, report) = recover(&dir).unwrap();
        assert_eq!(seen.len(), 30, "header of {len} bytes");
        let t = report.torn.unwrap();
        assert_eq!((t.offset, t.bytes, t.last_seq), (0, len as u64, 30));
        assert!(!next.exists() || std::fs::metadata(&next).unwrap().len() == HEADER_BYTES as u64);
        write(&dir, 31, 40);
        assert_eq!(recover(&dir).unwrap().0.len(), 40);
    }
}

/// Random bytes after a valid header, and random whole files: an error or a torn tail,
/// never a panic, never an invented command.
#[test]
fn random_garbage_never_panics_or_invents_commands() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let dir = temp_dir("garbage-src");
    write(&dir, 1, 10);
    let seg = segment_files(&dir).pop().unwrap();
    let good = std::fs::read(&seg).unwrap();
    for round in 0..500 {
        let copy = copy_dir(&dir, "garbage");
        let target = copy.join(seg.file_name().unwrap());
        let keep = if round % 2 == 0 { good.len() } else { 0 };
        let mut bytes = good[..keep].to_vec();
        let extra = (next() % 600) as usize;
        bytes.extend((0..extra).map(|_| next() as u8));
        std::fs::write(&target, &bytes).unwrap();
        if let Ok((seen, _)) = recover(&copy) {
            assert!(seen.len() <= 10);
            assert_eq!(
                seen,
                (1..=seen.len() as u64).map(command).collect::<Vec<_>>()
            );
        }
        std::fs::remove_dir_all(&copy).unwrap();
    }
}

/// A crash can leave a record's length written and the rest of its page zeros: that is a
/// torn tail (the length's own checksum fails, then only zeros), not corruption.
#[test]
fn a_length_written_alone_before_zeros_is_a_torn_tail() {
    let dir = temp_dir("torn-length");
    write(&dir, 1, 20);
    let last = segment_files(&dir).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    let len = bytes.len();
    bytes.extend_from_slice(&53u32.to_le_bytes());
    bytes.extend_from_slice(&[0u8; 4_092]);
    std::fs::write(&last, &bytes).unwrap();
    let (seen, report) = recover(&dir).unwrap();
    assert_eq!(seen.len(), 20);
    assert_eq!(report.torn.unwrap().offset, len as u64);
}

/// After a snapshot the segments it covers are skipped; if the one segment left to
/// read is a torn creation, recovery still continues the chain from the segment before.
#[test]
fn recovery_after_a_snapshot_survives_a_torn_newest_segment() {
    let dir = temp_dir("skip-torn");
    write(&dir, 1, 200);
    let next = dir.join(format!("{:020}.journal", 201));
    std::fs::write(&next, [0x5a; 10]).unwrap();
    let mut seen = Vec::new();
    let (mut j, report) = Journal::open_after(config(&dir), 200, |c| seen.push(c.seq)).unwrap();
    assert_eq!(report.last_seq, 200);
    assert!(report.torn.is_some());
    assert!(seen.iter().all(|&s| s <= 200));
    for seq in 201..=210 {
        j.append(&command(seq)).unwrap();
    }
    j.close().unwrap();
    let (all, report) = recover(&dir).unwrap();
    assert_eq!(all, (1..=210).map(command).collect::<Vec<_>>());
    assert!(report.torn.is_none());
}

/// A journal whose first segment is gone does not start at sequence 1 (or after a
/// snapshot, at its next sequence): recovery says so instead of replaying a suffix.
#[test]
fn a_missing_first_segment_is_an_error() {
    let dir = temp_dir("no-first");
    write(&dir, 1, 200);
    let files = segment_files(&dir);
    std::fs::remove_file(&files[0]).unwrap();
    let err = recover(&dir).unwrap_err();
    assert!(
        err.to_string().contains("does not start at sequence 1"),
        "{err}"
    );
    let err = Journal::open_after(config(&dir), 0, |_| {}).err().unwrap();
    assert!(matches!(err, JournalError::Corrupt { offset: 0, .. }));
}

/// Writing on the appending thread (`inline_writes`, for `fsync = never`) keeps the
/// journal's behaviour: the same files and commands across segments and reopenings,
/// the watermark moving at each flush, the durable hook called with it.
#[test]
fn inline_writes_give_the_same_journal_as_the_writer_thread() {
    let threaded = temp_dir("inline-a");
    write(&threaded, 1, 500);
    let inline = temp_dir("inline-b");
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let hook = {
        let seen = std::sync::Arc::clone(&seen);
        cascade_gateway::journal::DurableHook(std::sync::Arc::new(move |d| {
            seen.fetch_max(d, std::sync::atomic::Ordering::SeqCst);
        }))
    };
    let cfg = JournalConfig {
        fsync: FsyncPolicy::Never,
        inline_writes: true,
        on_durable: Some(hook),
        ..config(&inline)
    };
    let (mut j, _) = Journal::open(cfg, |_| {}).unwrap();
    for seq in 1..=500 {
        j.append(&command(seq)).unwrap();
        if seq % 37 == 0 {
            j.flush().unwrap();
            j.flush().unwrap();
            assert_eq!(
                j.durable_seq(),
                seq,
                "written (never: durable) at the flush"
            );
            assert_eq!(
                seen.load(std::sync::atomic::Ordering::SeqCst),
                seq,
                "the hook saw it"
            );
        }
    }
    assert_eq!(j.close().unwrap(), 500);
    let (a, _) = recover(&threaded).unwrap();
    let (b, _) = recover(&inline).unwrap();
    assert_eq!(a, b);
    let names = |d: &Path| {
        segment_files(d)
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&threaded), names(&inline), "the same segments");
    for (x, y) in segment_files(&threaded).iter().zip(segment_files(&inline)) {
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(&y).unwrap(),
            "byte for byte"
        );
    }
}
