//! Typed errors and the CRC32 [`Checksum`] newtype.
//!
//! Every way a `.psnap` file can be wrong gets its own variant carrying the byte offset (and
//! frame number where there is one), so that `psor` can tell an operator *where* a file is
//! damaged and refuse an import before it writes anything. Nothing in this crate panics or
//! truncates on bad input: all such paths end here.

use std::fmt;

/// A format version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Incompatible layout changes bump this; readers refuse a newer major.
    pub major: u16,
    /// Backward-compatible additions bump this; readers accept any minor of their major.
    pub minor: u16,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Everything that can go wrong writing or reading a snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The underlying reader or writer failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// A magic number is not where the format puts it (not a `.psnap` file, or damaged).
    #[error("bad magic for {what} at offset {offset}: not a psor snapshot, or damaged")]
    BadMagic {
        /// Which structure was expected (`"header"`, `"frame"`, `"footer"`, `"trailer"`).
        what: &'static str,
        /// Byte offset of the magic in the file.
        offset: u64,
    },

    /// The file was written by an incompatible (newer major, or never released) format version.
    #[error(
        "snapshot format version {found} is not supported: this build of psor reads format \
         {supported} and every older release of major {}; upgrade psor to read this file",
        supported.major
    )]
    UnsupportedVersion {
        /// Version found in the file.
        found: Version,
        /// Newest version this build reads (and writes).
        supported: Version,
    },

    /// A CRC32 did not match the bytes it covers.
    #[error("checksum mismatch in {what} at offset {offset}: stored {expected:#010x}, computed {found:#010x}")]
    Checksum {
        /// Which structure (`"header"`, `"frame 3 header"`, `"frame 3 data"`, ...).
        what: String,
        /// Byte offset of the covered region.
        offset: u64,
        /// The CRC32 stored in the file.
        expected: u32,
        /// The CRC32 computed over the bytes read.
        found: u32,
    },

    /// The file ends before a structure it announces.
    #[error("file truncated: {what} at offset {offset} needs {needed} bytes but the file has {available}")]
    Truncated {
        /// Which structure was being read.
        what: &'static str,
        /// Byte offset where the structure starts.
        offset: u64,
        /// How many bytes it needs.
        needed: u64,
        /// How many bytes remain in the file from `offset`.
        available: u64,
    },

    /// The file does not end with a trailer: it is truncated, still being written, or has
    /// trailing garbage appended.
    #[error("no snapshot trailer at the end of the file (length {file_len}): the file is truncated, incomplete or has trailing data")]
    NoTrailer {
        /// Length of the file in bytes.
        file_len: u64,
    },

    /// A structure is internally inconsistent (lengths that don't add up, counts that differ
    /// from the index, bytes left over, invalid UTF-8, ...).
    #[error("corrupt snapshot at offset {offset}{}: {detail}", frame.map(|n| format!(" (frame {n})")).unwrap_or_default())]
    Corrupt {
        /// Byte offset of the structure at fault.
        offset: u64,
        /// Frame number (0-based), when the problem is inside a frame.
        frame: Option<u32>,
        /// What is wrong.
        detail: String,
    },

    /// A record pushed into a sorted file whose key is not greater than the previous key.
    #[error("a sorted snapshot's record {records} has a key not greater than the previous one")]
    Unsorted {
        /// Records written before it.
        records: u64,
    },

    /// A tag byte has a value this version does not define.
    #[error("unknown {what} tag {tag} at offset {offset}{}", frame.map(|n| format!(" (frame {n})")).unwrap_or_default())]
    UnknownTag {
        /// What the tag selects (`"key kind"`, `"selection"`).
        what: &'static str,
        /// The tag value found.
        tag: u8,
        /// Byte offset of the structure holding it.
        offset: u64,
        /// Frame number, when inside a frame.
        frame: Option<u32>,
    },

    /// A length exceeds a documented limit of the format (see `FORMAT.md`, "Limits").
    #[error("{what} is {len} bytes, above the format limit of {max} bytes")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },

    /// zstd refused a frame's bytes (after its CRC matched: a writer bug or a crafted file).
    #[error("frame {frame} at offset {offset} does not decompress: {detail}")]
    Decompress {
        /// Frame number (0-based).
        frame: u32,
        /// Byte offset of the frame header.
        offset: u64,
        /// zstd's message.
        detail: String,
    },

    /// An earlier error left this writer in an unknown state; the output must be discarded.
    #[error("snapshot writer failed earlier; the output is incomplete and must be discarded")]
    Poisoned,
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A CRC32 (IEEE, as computed by `crc32fast` / zlib) over some bytes of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum(pub u32);

impl Checksum {
    /// The CRC32 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Checksum(crc32fast::hash(bytes))
    }

    /// Compare this computed checksum with the `expected` one stored in the file; `what` and
    /// `offset` name the covered region in the error.
    pub fn check(self, expected: Checksum, what: impl Into<String>, offset: u64) -> Result<()> {
        if self == expected {
            Ok(())
        } else {
            Err(Error::Checksum { what: what.into(), offset, expected: expected.0, found: self.0 })
        }
    }
}
