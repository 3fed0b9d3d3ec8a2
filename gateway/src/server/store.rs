//! A session's persistent message store: every message the gateway sent (or queued)
//! on the session, by sequence number, and the next sequence number it expects from
//! the client. FIX resends and binary replays read from it; both survive a restart.
//!
//! Layout, in `DIR/`: `out.log` holds records `[u32 LE length][bytes]`, record `i` being
//! outgoing sequence `i + 1`; `in.seq` holds the next expected incoming sequence as a
//! little-endian u64, rewritten in place by a `pwrite` before the message it counts is
//! acted on. Outgoing records are buffered and written with one `write` by
//! [`Store::flush`], which the I/O thread calls before it writes any socket, so a
//! message is in the store before its bytes can leave. Both survive a killed process
//! (page cache); a machine crash may lose the tail, which the session protocols repair
//! (FIX resend, binary replay).
//!
//! Invariants: `index.len()` records are in `out.log`, `index[i]` is record `i`'s
//! offset; a torn last record (a kill mid-write) is cut when the store opens.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One session's store.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    out: File,
    seq_file: File,
    index: Vec<u64>,
    end: u64,
    next_in: u64,
    /// Records appended but not yet written.
    pending: Vec<u8>,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> io::Result<Store> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("out.log");
        let mut out = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let mut bytes = Vec::new();
        out.read_to_end(&mut bytes)?;
        let (index, end) = scan(&bytes);
        if end < bytes.len() as u64 {
            out.set_len(end)?;
        }
        let seq_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("in.seq"))?;
        let mut b = [0u8; 8];
        let next_in = match seq_file.read_exact_at(&mut b, 0) {
            Ok(()) => u64::from_le_bytes(b).max(1),
            Err(_) => 1,
        };
        Ok(Store {
            dir: dir.to_path_buf(),
            out,
            seq_file,
            index,
            end,
            next_in,
            pending: Vec::new(),
        })
    }

    /// The sequence number the next stored message gets.
    pub fn next_out(&self) -> u64 {
        self.index.len() as u64 + 1
    }

    /// The next expected incoming sequence number.
    pub fn next_in(&self) -> u64 {
        self.next_in
    }

    /// Records the next expected incoming sequence number.
    pub fn set_next_in(&mut self, seq: u64) -> io::Result<()> {
        self.next_in = seq;
        self.seq_file.write_all_at(&seq.to_le_bytes(), 0)
    }

    /// Appends one outgoing message (buffered until [`Store::flush`]); returns its
    /// sequence number.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<u64> {
        let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("record too long"))?;
        self.pending.extend_from_slice(&len.to_le_bytes());
        self.pending.extend_from_slice(bytes);
        self.index.push(self.end);
        self.end += 4 + u64::from(len);
        if self.pending.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(self.index.len() as u64)
    }

    /// Writes the buffered records.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.out.write_all(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }

    /// The stored message with this sequence number.
    pub fn get(&mut self, seq: u64) -> io::Result<Option<Vec<u8>>> {
        self.flush()?;
        let Some(&at) = seq.checked_sub(1).and_then(|i| self.index.get(i as usize)) else {
            return Ok(None);
        };
        let mut len = [0u8; 4];
        self.out.read_exact_at(&mut len, at)?;
        let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
        self.out.read_exact_at(&mut buf, at + 4)?;
        Ok(Some(buf))
    }

    /// Empties the store: both directions start again at 1 (FIX ResetSeqNumFlag).
    pub fn reset(&mut self) -> io::Result<()> {
        self.pending.clear();
        self.out.set_len(0)?;
        self.index.clear();
        self.end = 0;
        self.set_next_in(1)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Offsets of the whole records in `bytes`, and where the last whole one ends.
fn scan(bytes: &[u8]) -> (Vec<u64>, u64) {
    let mut index = Vec::new();
    let mut at = 0usize;
    while let Some(len) = bytes.get(at..at + 4) {
        let n = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
        if at + 4 + n > bytes.len() {
            break;
        }
        index.push(at as u64);
        at += 4 + n;
    }
    (index, at as u64)
}

/// Buffered records are written when the store is dropped (errors have no one to go
/// to here; the I/O thread's regular flushes report them).
impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_cuts_a_torn_tail() {
        let dir = std::env::temp_dir().join(format!("cascade-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = Store::open(&dir).unwrap();
        assert_eq!((s.next_out(), s.next_in()), (1, 1));
        assert_eq!(s.append(b"one").unwrap(), 1);
        assert_eq!(s.append(b"two").unwrap(), 2);
        s.set_next_in(7).unwrap();
        s.flush().unwrap();
        drop(s);
        // a kill in the middle of a third record
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join("out.log"))
            .unwrap();
        f.write_all(&[9, 0, 0, 0, b'x']).unwrap();
        let mut s = Store::open(&dir).unwrap();
        assert_eq!((s.next_out(), s.next_in()), (3, 7));
        assert_eq!(s.get(2).unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(s.get(3).unwrap(), None);
        assert_eq!(s.append(b"three").unwrap(), 3);
        assert_eq!(
            s.get(2).unwrap().as_deref(),
            Some(&b"two"[..]),
            "reads flush first"
        );
        assert_eq!(s.get(3).unwrap().as_deref(), Some(&b"three"[..]));
        s.reset().unwrap();
        assert_eq!((s.next_out(), s.next_in()), (1, 1));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
