//! Little-endian readers and writers for the hand-written structures (header, frame header,
//! footer, trailer).
//!
//! They exist so that every fixed-layout field is read through one bounds-checked cursor that
//! reports a typed error with the absolute file offset, instead of slicing with indexes that
//! could panic or `as` casts that could truncate.

use crate::error::{Error, Result};

/// A bounds-checked little-endian cursor over a block already read into memory.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute file offset of `buf[0]`, for error messages.
    base: u64,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], base: u64, what: &'static str) -> Self {
        Cursor { buf, pos: 0, base, what }
    }

    /// Absolute file offset of the next byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base.saturating_add(u64::try_from(self.pos).unwrap_or(u64::MAX))
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| Error::Corrupt {
            offset: self.offset(),
            frame: None,
            detail: format!("{}: field needs {n} bytes but only {} remain in the block", self.what, self.remaining()),
        })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A `u32 LE` length followed by that many bytes.
    pub(crate) fn len_prefixed(&mut self) -> Result<&'a [u8]> {
        let at = self.offset();
        let n = self.u32()?;
        let n = usize::try_from(n).map_err(|_| Error::Corrupt {
            offset: at,
            frame: None,
            detail: format!("{}: length {n} does not fit in memory", self.what),
        })?;
        self.take(n)
    }

    /// A length-prefixed UTF-8 string.
    pub(crate) fn string(&mut self, field: &str) -> Result<String> {
        let at = self.offset();
        let b = self.len_prefixed()?;
        String::from_utf8(b.to_vec()).map_err(|e| Error::Corrupt {
            offset: at,
            frame: None,
            detail: format!("{}: {field} is not UTF-8: {e}", self.what),
        })
    }
}

/// Append a `u32 LE` length then the bytes; refuses blocks longer than `u32::MAX`.
pub(crate) fn put_len_prefixed(out: &mut Vec<u8>, b: &[u8], what: &'static str) -> Result<()> {
    let n = u32::try_from(b.len()).map_err(|_| Error::TooLarge {
        what,
        len: u64::try_from(b.len()).unwrap_or(u64::MAX),
        max: u64::from(u32::MAX),
    })?;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(b);
    Ok(())
}

/// `usize` → `u64` without `as` (infallible on every platform Rust supports today).
pub(crate) fn u64_of(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A length from the file → `usize`, refusing what does not fit in this address space.
pub(crate) fn usize_of(n: u64, what: &'static str) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::TooLarge { what, len: n, max: u64_of(usize::MAX) })
}
