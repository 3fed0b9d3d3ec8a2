//! The on-disk format of journal segments: a fixed header, then records back to back.
//!
//! Segment header (32 bytes, little-endian): magic `CASCJRNL` (8) · format version
//! `u16` · command encoding version `u16` · reserved `u32` (0) · first sequence `u64` ·
//! the chain value the segment starts from `u32` (the last record checksum of the
//! previous segment, 0 for the first) · CRC32C of the 28 bytes before it `u32`.
//!
//! Record: payload length `u32` · CRC32C of those 4 length bytes `u32` · checksum `u32`
//! · payload (one command in `cascade_core::codec` encoding, which holds its sequence
//! and timestamp). The length's own checksum lets recovery trust a length before it
//! trusts the payload: a record whose checked length runs past the end of the file was
//! cut short by a crash, while a damaged length is corruption. The checksum is CRC32C
//! over the previous record's checksum (4 bytes, the segment's chain value for its first
//! record), the length (4 bytes) and the payload, so each record's checksum depends on
//! every record before it: a lost, reordered or misdirected write breaks the chain, not
//! just a flipped bit.
//!
//! File names: the first sequence, 20 decimal digits, then `.journal`; they sort in
//! sequence order.

use cascade_core::codec::{COMMAND_BYTES_MAX, COMMAND_ENCODING_VERSION};
use cascade_core::Command;

/// Identifies a journal segment.
pub const MAGIC: [u8; 8] = *b"CASCJRNL";
/// Version of the segment and record layout.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes of a segment header.
pub const HEADER_BYTES: usize = 32;
/// Bytes before a record's payload (length, length checksum, checksum).
pub const RECORD_HEADER_BYTES: usize = 12;
/// Smallest payload: a command's sequence, timestamp and tag.
pub const MIN_PAYLOAD: usize = 17;
/// Largest payload: the largest command.
pub const MAX_PAYLOAD: usize = COMMAND_BYTES_MAX;

/// The header fields a reader checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Sequence of the segment's first record.
    pub first_seq: u64,
    /// Checksum the chain starts from in this segment.
    pub chain: u32,
}

impl SegmentHeader {
    /// The 32 header bytes.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut b = [0u8; HEADER_BYTES];
        b[..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&COMMAND_ENCODING_VERSION.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        b[24..28].copy_from_slice(&self.chain.to_le_bytes());
        let crc = crc32c::crc32c(&b[..28]);
        b[28..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks a header; the error says which field is wrong.
    pub fn decode(b: &[u8]) -> Result<SegmentHeader, &'static str> {
        if b.len() < HEADER_BYTES {
            return Err("segment header cut short");
        }
        if crc32c::crc32c(&b[..28]) != u32_at(b, 28) {
            return Err("segment header checksum mismatch");
        }
        if b[..8] != MAGIC {
            return Err("not a journal segment (bad magic)");
        }
        if u16::from_le_bytes([b[8], b[9]]) != FORMAT_VERSION {
            return Err("unsupported journal format version");
        }
        if u16::from_le_bytes([b[10], b[11]]) != COMMAND_ENCODING_VERSION {
            return Err("unsupported command encoding version");
        }
        Ok(SegmentHeader {
            first_seq: u64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
            chain: u32_at(b, 24),
        })
    }
}

/// The little-endian `u32` at `at` (the caller checked the length).
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// A record's checksum: CRC32C of the previous checksum, the length and the payload.
pub fn record_crc(prev: u32, payload: &[u8]) -> u32 {
    let len = payload.len() as u32;
    let c = crc32c::crc32c(&prev.to_le_bytes());
    let c = crc32c::crc32c_append(c, &len.to_le_bytes());
    crc32c::crc32c_append(c, payload)
}

/// Appends one record holding `cmd` to `out`, chained to `prev`; returns its checksum.
pub fn append_record(out: &mut Vec<u8>, prev: u32, cmd: &Command) -> u32 {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_BYTES]);
    let len = (cmd.encode(out) as u32).to_le_bytes();
    let crc = record_crc(prev, &out[start + RECORD_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc32c::crc32c(&len).to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    crc
}

/// The file name of the segment starting at `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.journal")
}

/// The first sequence a segment file name states, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".journal")?;
    (digits.len() == 20 && digits.bytes().all(|c| c.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}
