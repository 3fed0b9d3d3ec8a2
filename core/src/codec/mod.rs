//! Binary codecs of commands and events: bytes in, bytes out, no I/O. The journal, the
//! snapshot, the replay tool and the gateway's binary protocol share them.
//!
//! Invariants: every encoding is little-endian with a fixed field order, and a leading
//! tag fixes the layout of what follows, so the encoding is injective. Decoding is its
//! exact inverse on the encodings and refuses everything else with a [`DecodeError`]
//! naming the byte offset: a tag, flag or enum value outside its range, an id wider
//! than its type, missing bytes, or bytes left over. So a decoded value re-encodes to
//! the bytes it came from, and no input makes a decoder panic. Layout versions:
//! [`COMMAND_ENCODING_VERSION`] and [`crate::EVENT_ENCODING_VERSION`] (an event's
//! encoding is [`crate::Event::encode`]; hashes of event logs are over it).

mod command;
mod event;

use crate::command::StpMode;
use crate::types::Side;

pub use command::COMMAND_BYTES_MAX;
pub use event::REJECT_REASONS;

/// Layout version of [`crate::Command::encode`]; a journal's segment header records it.
///
/// - 1: the first layout (module docs of `codec::command`).
pub const COMMAND_ENCODING_VERSION: u16 = 1;

/// Why bytes are not an encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ends inside a value that starts at `at`.
    Truncated {
        /// Offset of the value.
        at: usize,
    },
    /// A tag, flag or enum byte (or a reject code) at `at` names nothing.
    BadTag {
        /// Offset of the tag.
        at: usize,
        /// The value read.
        value: u64,
    },
    /// An id at `at` does not fit its 32-bit type.
    IdTooLarge {
        /// Offset of the id.
        at: usize,
    },
    /// The value ends at `at` but the input goes on.
    TrailingBytes {
        /// Where the value ended.
        at: usize,
    },
}

/// Reads fixed-width little-endian fields, tracking the offset for errors.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn offset(&self) -> usize {
        self.at
    }

    /// Refuses input left over after the value.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes { at: self.at })
        }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let end = self.at.checked_add(N).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(DecodeError::Truncated { at: self.at })?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.at..end]);
        self.at = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    pub(crate) fn i128(&mut self) -> Result<i128, DecodeError> {
        Ok(i128::from_le_bytes(self.take()?))
    }

    /// A one-byte value below `n`.
    pub(crate) fn tag(&mut self, n: u8) -> Result<u8, DecodeError> {
        let at = self.at;
        let v = self.u8()?;
        if v < n {
            Ok(v)
        } else {
            Err(DecodeError::BadTag {
                at,
                value: u64::from(v),
            })
        }
    }

    /// A flag: exactly 0 or 1.
    pub(crate) fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.tag(2)? == 1)
    }

    /// A side: buy 0, sell 1.
    pub(crate) fn side(&mut self) -> Result<Side, DecodeError> {
        Ok(if self.tag(2)? == 0 {
            Side::Buy
        } else {
            Side::Sell
        })
    }

    /// A self-trade prevention mode: cancel-resting 0, cancel-aggressor 1,
    /// decrement-both 2.
    pub(crate) fn stp(&mut self) -> Result<StpMode, DecodeError> {
        Ok(match self.tag(3)? {
            0 => StpMode::CancelResting,
            1 => StpMode::CancelAggressor,
            _ => StpMode::DecrementBoth,
        })
    }

    /// A 32-bit id written as a `u64`.
    pub(crate) fn wide_u32(&mut self) -> Result<u32, DecodeError> {
        let at = self.at;
        u32::try_from(self.u64()?).map_err(|_| DecodeError::IdTooLarge { at })
    }

    /// An optional 32-bit id written as a `u64`, `u64::MAX` for none.
    pub(crate) fn wide_opt_u32(&mut self) -> Result<Option<u32>, DecodeError> {
        let at = self.at;
        match self.u64()? {
            u64::MAX => Ok(None),
            v => u32::try_from(v)
                .map(Some)
                .map_err(|_| DecodeError::IdTooLarge { at }),
        }
    }
}

/// Appends fixed-width little-endian fields to a vector.
pub(crate) struct Writer<'a>(pub(crate) &'a mut Vec<u8>);

impl Writer<'_> {
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn i128(&mut self, v: i128) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }
    /// A side as [`Reader::side`] reads it.
    pub(crate) fn side(&mut self, s: Side) -> &mut Self {
        self.u8(match s {
            Side::Buy => 0,
            Side::Sell => 1,
        })
    }
    /// A self-trade prevention mode as [`Reader::stp`] reads it.
    pub(crate) fn stp(&mut self, s: StpMode) -> &mut Self {
        self.u8(match s {
            StpMode::CancelResting => 0,
            StpMode::CancelAggressor => 1,
            StpMode::DecrementBoth => 2,
        })
    }
}
