//! Snapshot files beside the journal: `snapshot-<seq, 20 digits>.snap`, each one
//! engine snapshot (`Engine::snapshot`) taken after command `seq`, behind a checksummed
//! header, written atomically (temporary file, `fsync`, rename, directory `fsync`).
//!
//! Header (40 bytes, little-endian): magic `CASCSNPF` (8) · file format version `u16` ·
//! reserved `u16` (0) · sequence `u64` · payload length `u64` · CRC32C of the payload
//! `u32` · reserved `u32` (0) · CRC32C of the 36 bytes before it `u32`.
//!
//! Loading ([`latest_snapshot`]) tries the files newest first and takes the first whose
//! header and payload checksums hold and that restores; each one skipped is reported
//! with its reason, so recovery falls back to an older snapshot, or to the empty engine
//! and the whole journal, rather than trust a damaged one.

use cascade_core::Engine;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Identifies a snapshot file.
pub const FILE_MAGIC: [u8; 8] = *b"CASCSNPF";
/// Version of the file layout.
pub const FILE_VERSION: u16 = 1;
/// Bytes of the header.
pub const FILE_HEADER_BYTES: usize = 40;

/// The file name of the snapshot after command `seq`.
pub fn snapshot_name(seq: u64) -> String {
    format!("snapshot-{seq:020}.snap")
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
    (digits.len() == 20 && digits.bytes().all(|c| c.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn header(seq: u64, payload: &[u8]) -> [u8; FILE_HEADER_BYTES] {
    let mut h = [0u8; FILE_HEADER_BYTES];
    h[..8].copy_from_slice(&FILE_MAGIC);
    h[8..10].copy_from_slice(&FILE_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&seq.to_le_bytes());
    h[20..28].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    h[28..32].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let crc = crc32c::crc32c(&h[..36]);
    h[36..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Formats an I/O error with its path.
fn io(p: &Path) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", p.display())
}

/// Writes `payload` (an engine snapshot after command `seq`) into `dir` atomically;
/// returns the file's path.
pub fn write_snapshot(dir: &Path, seq: u64, payload: &[u8]) -> Result<PathBuf, String> {
    let path = dir.join(snapshot_name(seq));
    let tmp = dir.join(format!("{}.tmp", snapshot_name(seq)));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&header(seq, payload))
        .and_then(|()| f.write_all(payload))
        .and_then(|()| f.sync_all())
        .map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(path)
}

/// Checks a snapshot file's bytes; returns its sequence and payload.
pub fn check_snapshot(bytes: &[u8]) -> Result<(u64, &[u8]), &'static str> {
    if bytes.len() < FILE_HEADER_BYTES {
        return Err("header cut short");
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let long = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    if crc32c::crc32c(&bytes[..36]) != word(36) {
        return Err("header checksum mismatch");
    }
    if bytes[..8] != FILE_MAGIC || u16::from_le_bytes([bytes[8], bytes[9]]) != FILE_VERSION {
        return Err("not a snapshot file of this version");
    }
    let payload = &bytes[FILE_HEADER_BYTES..];
    if payload.len() as u64 != long(20) {
        return Err("payload length differs from the header's");
    }
    if crc32c::crc32c(payload) != word(28) {
        return Err("payload checksum mismatch");
    }
    Ok((long(12), payload))
}

/// A snapshot file that was not used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// What [`latest_snapshot`] found: the newest good snapshot as `(seq, engine)`, if any,
/// and the newer files it skipped.
pub type Latest = (Option<(u64, Engine)>, Vec<Skipped>);

/// The newest snapshot in `dir` that checks and restores, and the newer files skipped.
pub fn latest_snapshot(dir: &Path) -> Result<Latest, String> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| {
            let p = e.ok()?.path();
            Some((parse_name(p.file_name()?.to_str()?)?, p))
        })
        .collect();
    files.sort_unstable_by(|a, b| b.cmp(a));
    let mut skipped = Vec::new();
    for (named, path) in files {
        let outcome = std::fs::read(&path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|bytes| {
                let (seq, payload) = check_snapshot(&bytes).map_err(str::to_string)?;
                Ok((seq, payload.to_vec()))
            })
            .and_then(|(seq, payload)| {
                if seq != named {
                    return Err(format!("header says seq {seq}, name says {named}"));
                }
                let engine = Engine::restore(&payload).map_err(|e| format!("{e:?}"))?;
                if engine.last_seq() != seq {
                    return Err(format!(
                        "engine at seq {}, file at {seq}",
                        engine.last_seq()
                    ));
                }
                Ok((seq, engine))
            });
        match outcome {
            Ok(found) => return Ok((Some(found), skipped)),
            Err(reason) => skipped.push(Skipped { path, reason }),
        }
    }
    Ok((None, skipped))
}
