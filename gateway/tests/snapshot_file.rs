//! Snapshot files: written atomically and read back; any changed byte or cut is caught by
//! the checksums; recovery's loader skips damaged, misnamed or unrestorable files for
//! the newest good one, reporting each.

use cascade_gateway::core::{AccountId, Command, CommandKind, Engine, EngineConfig, HashSink};
use cascade_gateway::snapshot_file::{
    check_snapshot, latest_snapshot, snapshot_name, write_snapshot,
};
use std::path::PathBuf;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cascade-snapfile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An engine after `n` commands: accounts opened and funded.
fn engine_after(n: u64) -> Engine {
    let mut e = Engine::new(EngineConfig::default());
    for seq in 1..=n {
        let a = AccountId((seq / 2) as u32);
        let kind = if seq % 2 == 1 {
            CommandKind::OpenAccount(a)
        } else {
            CommandKind::Deposit {
                account: a,
                amount: seq as i64,
            }
        };
        e.apply(
            &Command {
                seq,
                ts_ns: 0,
                kind,
            },
            &mut HashSink::default(),
        );
    }
    e
}

fn write(dir: &std::path::Path, e: &Engine) -> PathBuf {
    let mut payload = Vec::new();
    e.snapshot(&mut payload);
    write_snapshot(dir, e.last_seq(), &payload).unwrap()
}

#[test]
fn every_changed_byte_and_every_cut_is_caught() {
    let dir = temp_dir("flip");
    let path = write(&dir, &engine_after(40));
    let bytes = std::fs::read(&path).unwrap();
    let (seq, payload) = check_snapshot(&bytes).unwrap();
    assert_eq!(seq, 40);
    assert_eq!(
        Engine::restore(payload).unwrap().state_hash(),
        engine_after(40).state_hash()
    );
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            assert!(check_snapshot(&b).is_err(), "byte {i} bit {bit:#x}");
        }
        assert!(check_snapshot(&bytes[..i]).is_err(), "cut at {i}");
    }
    assert!(!dir.join(format!("{}.tmp", snapshot_name(40))).exists());
}

#[test]
fn the_newest_good_snapshot_wins_and_bad_ones_are_reported() {
    let dir = temp_dir("latest");
    assert_eq!(latest_snapshot(&dir).unwrap().0.map(|(s, _)| s), None);
    write(&dir, &engine_after(10));
    write(&dir, &engine_after(20));
    let newest = write(&dir, &engine_after(30));
    let (found, skipped) = latest_snapshot(&dir).unwrap();
    assert_eq!(found.unwrap().0, 30);
    assert!(skipped.is_empty());
    // Damage the newest: the one before is used, and the skip is reported.
    let mut b = std::fs::read(&newest).unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    std::fs::write(&newest, &b).unwrap();
    // A file whose name disagrees with its header is not trusted either.
    std::fs::copy(dir.join(snapshot_name(10)), dir.join(snapshot_name(25))).unwrap();
    let (found, skipped) = latest_snapshot(&dir).unwrap();
    let (seq, engine) = found.unwrap();
    assert_eq!(seq, 20);
    assert_eq!(engine.state_hash(), engine_after(20).state_hash());
    assert_eq!(skipped.len(), 2);
    assert!(skipped[0].reason.contains("checksum"), "{:?}", skipped[0]);
    assert!(
        skipped[1].reason.contains("name says 25"),
        "{:?}",
        skipped[1]
    );
}
