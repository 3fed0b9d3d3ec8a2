//! Framing shared by the binary order-entry protocol and the market-data feed: the
//! FIX Simple Open Framing Header (SOFH: message length u32 big-endian, encoding type
//! u16 big-endian, 0x5BE0 = SBE 1.0 little-endian), then an SBE message header
//! (blockLength, templateId, schemaId, version: u16 little-endian each), then the
//! fixed little-endian block.
//!
//! Invariants: [`split`] never returns a frame whose SOFH length, encoding type or
//! header is inconsistent; a frame's declared length covers exactly its header and
//! block; every reader method checks bounds (`None`, never a panic).

/// SOFH encoding type of SBE 1.0 little-endian.
pub const SBE_LE: u16 = 0x5BE0;
/// SOFH (6) + SBE header (8).
pub const HEADER: usize = 14;

/// What the start of a buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Split {
    /// A whole frame: template id, schema id, version, block, and its total length.
    Frame {
        /// Template id.
        template: u16,
        /// Schema id.
        schema: u16,
        /// Schema version.
        version: u16,
        /// Total bytes of the frame.
        len: usize,
    },
    /// Not enough bytes yet.
    Incomplete,
    /// The bytes cannot be a frame (wrong encoding type, length below the header or
    /// above the limit, block length disagreeing with the frame length): close.
    Bad(&'static str),
}

/// Looks at the start of `buf` (frames of at most `max` bytes).
pub fn split(buf: &[u8], max: usize) -> Split {
    if buf.len() < 6 {
        return Split::Incomplete;
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if u16::from_be_bytes([buf[4], buf[5]]) != SBE_LE {
        return Split::Bad("SOFH encoding type is not SBE 1.0 little-endian (0x5BE0)");
    }
    if len < HEADER || len > max {
        return Split::Bad("SOFH message length out of range");
    }
    if buf.len() < HEADER {
        return Split::Incomplete;
    }
    let u = |i: usize| u16::from_le_bytes([buf[i], buf[i + 1]]);
    if usize::from(u(6)) != len - HEADER {
        return Split::Bad("SBE blockLength disagrees with the SOFH length");
    }
    if buf.len() < len {
        return Split::Incomplete;
    }
    Split::Frame {
        template: u(8),
        schema: u(10),
        version: u(12),
        len,
    }
}

/// Writes one frame: header, then the block from `fill`.
pub fn write(
    out: &mut Vec<u8>,
    schema: u16,
    version: u16,
    template: u16,
    fill: impl FnOnce(&mut Block<'_>),
) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    let mut b = Block(out);
    fill(&mut b);
    let len = out.len() - start;
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    out[start + 4..start + 6].copy_from_slice(&SBE_LE.to_be_bytes());
    out[start + 6..start + 8].copy_from_slice(&((len - HEADER) as u16).to_le_bytes());
    out[start + 8..start + 10].copy_from_slice(&template.to_le_bytes());
    out[start + 10..start + 12].copy_from_slice(&schema.to_le_bytes());
    out[start + 12..start + 14].copy_from_slice(&version.to_le_bytes());
}

/// Appends little-endian fields.
pub struct Block<'a>(&'a mut Vec<u8>);

impl Block<'_> {
    /// u8.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    /// u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// i64.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Fixed-length text, NUL-padded (cut if longer).
    pub fn chars(&mut self, v: &str, n: usize) -> &mut Self {
        let b = v.as_bytes();
        let k = b.len().min(n);
        self.0.extend_from_slice(&b[..k]);
        self.0.extend(std::iter::repeat_n(0, n - k));
        self
    }
    /// Zero padding.
    pub fn pad(&mut self, n: usize) -> &mut Self {
        self.0.extend(std::iter::repeat_n(0, n));
        self
    }
}

/// Reads little-endian fields from a block, by offset.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a>(pub &'a [u8]);

impl Fields<'_> {
    /// u8 at `at`.
    pub fn u8(&self, at: usize) -> Option<u8> {
        self.0.get(at).copied()
    }
    /// u16 at `at`.
    pub fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(self.0.get(at..at + 2)?.try_into().ok()?))
    }
    /// u32 at `at`.
    pub fn u32(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(self.0.get(at..at + 4)?.try_into().ok()?))
    }
    /// u64 at `at`.
    pub fn u64(&self, at: usize) -> Option<u64> {
        Some(u64::from_le_bytes(self.0.get(at..at + 8)?.try_into().ok()?))
    }
    /// i64 at `at`.
    pub fn i64(&self, at: usize) -> Option<i64> {
        Some(i64::from_le_bytes(self.0.get(at..at + 8)?.try_into().ok()?))
    }
    /// NUL-padded text of `n` bytes at `at`.
    pub fn chars(&self, at: usize, n: usize) -> Option<&str> {
        let b = self.0.get(at..at + n)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(n);
        std::str::from_utf8(&b[..end]).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_written_frame_splits_back() {
        let mut out = Vec::new();
        write(&mut out, 1, 1, 7, |b| {
            b.u64(42).i64(-5).chars("abc", 8);
        });
        assert_eq!(out.len(), HEADER + 24);
        assert_eq!(&out[..6], &[0, 0, 0, 38, 0x5B, 0xE0]);
        assert_eq!(
            split(&out, 1024),
            Split::Frame {
                template: 7,
                schema: 1,
                version: 1,
                len: 38
            }
        );
        let f = Fields(&out[HEADER..]);
        assert_eq!(
            (f.u64(0), f.i64(8), f.chars(16, 8)),
            (Some(42), Some(-5), Some("abc"))
        );
        assert_eq!(f.u64(20), None);
        assert_eq!(split(&out[..20], 1024), Split::Incomplete);
        assert!(matches!(split(&out, 20), Split::Bad(_)));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Split::Frame { len, .. } = split(&b, 4096) {
                prop_assert!(len <= b.len() && len >= HEADER);
            }
        }
    }
}
