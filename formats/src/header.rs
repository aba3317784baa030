//! The file header: magic, version, flags, creation time, the "source" block, and a CRC32.
//!
//! It is written and parsed by hand (not by serde) so that its bytes are fixed by this file and
//! `FORMAT.md` alone, and so that a reader can recognise a file and refuse a newer major version
//! before it trusts anything else in it.
//!
//! # Byte table (format v1, all integers little-endian)
//!
//! | offset            | size | field                                             |
//! |-------------------|------|---------------------------------------------------|
//! | [`MAGIC_OFFSET`]  | 8    | [`MAGIC`] `89 50 53 4E 0D 0A 1A 0A` (`\x89PSN\r\n\x1a\n`) |
//! | [`MAJOR_OFFSET`]  | 2    | format major version (u16)                        |
//! | [`MINOR_OFFSET`]  | 2    | format minor version (u16)                        |
//! | [`FLAGS_OFFSET`]  | 4    | flags (u32): v1.1 defines [`FLAG_SORTED`]; 0 in v1.0 |
//! | [`CREATED_OFFSET`]| 8    | creation time, Unix ms (i64)                      |
//! | [`SOURCE_LEN_OFFSET`] | 4 | length `N` of the source block (u32, ≤ [`MAX_SOURCE_LEN`]) |
//! | [`SOURCE_OFFSET`] | N    | source block (below)                              |
//! | `SOURCE_OFFSET+N` | 4    | CRC32 of bytes `0 .. SOURCE_OFFSET+N`             |
//!
//! Source block: `str server_version`, `str spec`, `u8 selection_tag`, then for tag 0
//! (prefix) `bytes prefix`, for tag 1 (PAC/version) `str pac`, `str version`; where `bytes`
//! is a u32 length then the bytes and `str` is `bytes` holding UTF-8. A file of a newer minor
//! version may append fields after these; readers of an older minor skip them.

use std::io::Read;

use crate::bytes::{put_len_prefixed, u64_of, usize_of, Cursor};
use crate::error::{Checksum, Error, Result, Version};

/// The 8 header magic bytes: a high byte (catches 7-bit channels), `PSN`, then CR LF, ^Z and
/// LF (catch newline translation and `type` on DOS), PNG-style.
pub const MAGIC: [u8; 8] = *b"\x89PSN\r\n\x1a\n";
/// Offset of [`MAGIC`].
pub const MAGIC_OFFSET: usize = 0;
/// Offset of the major version (u16).
pub const MAJOR_OFFSET: usize = MAGIC_OFFSET + MAGIC.len();
/// Offset of the minor version (u16).
pub const MINOR_OFFSET: usize = MAJOR_OFFSET + 2;
/// Offset of the flags (u32).
pub const FLAGS_OFFSET: usize = MINOR_OFFSET + 2;
/// Offset of the creation time (i64, Unix ms).
pub const CREATED_OFFSET: usize = FLAGS_OFFSET + 4;
/// Offset of the source block length (u32).
pub const SOURCE_LEN_OFFSET: usize = CREATED_OFFSET + 8;
/// Offset of the source block.
pub const SOURCE_OFFSET: usize = SOURCE_LEN_OFFSET + 4;
/// Size of the header's CRC32 field.
pub const CRC_LEN: usize = 4;
/// Smallest possible header (empty source block, which v1 never writes).
pub const MIN_HEADER_LEN: usize = SOURCE_OFFSET + CRC_LEN;
/// Largest source block a reader accepts (1 MiB).
pub const MAX_SOURCE_LEN: u32 = 1 << 20;

/// The version this crate writes, and the newest it reads.
pub const CURRENT_VERSION: Version = Version { major: 1, minor: 1 };
/// The version a file without any v1.1 feature is written as, so that psor builds that read
/// only 1.0 still read it.
pub const V1_0: Version = Version { major: 1, minor: 0 };
/// Flag bit (v1.1): the records are in strictly increasing byte order of their key (so each
/// key is there once), which lets a reader find one key by a binary search over the frames.
pub const FLAG_SORTED: u32 = 1;
/// Flag bits defined by [`CURRENT_VERSION`].
pub const KNOWN_FLAGS: u32 = FLAG_SORTED;

/// The flag bits a file of version `v` may carry.
fn flags_of(v: Version) -> u32 {
    if v.major == 1 && v.minor == 0 {
        0
    } else {
        KNOWN_FLAGS
    }
}

const SELECTION_PREFIX: u8 = 0;
const SELECTION_PAC_VERSION: u8 = 1;

/// Which keys of the database a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selection {
    /// Every key whose name starts with these bytes (empty: every key).
    Prefix(Vec<u8>),
    /// The keys of one PAC at one version.
    PacVersion {
        /// PAC name.
        pac: String,
        /// PAC version.
        version: String,
    },
}

/// Where a snapshot came from. Never holds secrets: the caller passes the PSOR spec with
/// passwords and tokens removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    /// Redis server version string (`INFO server` → `redis_version`).
    pub server_version: String,
    /// The PSOR spec, without secrets.
    pub spec: String,
    /// Which keys were taken.
    pub selection: Selection,
}

/// The in-memory header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// Format version of the file (the writer writes the oldest version with every flag set:
    /// [`V1_0`] when none, [`CURRENT_VERSION`] otherwise).
    pub version: Version,
    /// Flag bits ([`FLAG_SORTED`]; none in v1.0).
    pub flags: u32,
    /// When the snapshot was started, Unix milliseconds.
    pub created_at_ms: i64,
    /// Where it came from.
    pub source: Source,
}

impl Header {
    /// A header for a new file without flags (written as [`V1_0`]).
    pub fn new(created_at_ms: i64, source: Source) -> Self {
        Header { version: V1_0, flags: 0, created_at_ms, source }
    }

    /// The same header, for a file whose records are sorted by key ([`FLAG_SORTED`]).
    pub fn sorted(mut self) -> Self {
        self.flags |= FLAG_SORTED;
        self.version = CURRENT_VERSION;
        self
    }

    /// True when the file's records are in strictly increasing key order.
    pub fn is_sorted(&self) -> bool {
        self.flags & FLAG_SORTED != 0
    }
}

/// The version a header is written as: the oldest one that has every flag it sets (1.0 when it
/// sets none, so older readers keep reading such files; 1.1 otherwise).
pub(crate) fn written_version(h: &Header) -> Version {
    if h.flags & KNOWN_FLAGS == 0 {
        V1_0
    } else {
        CURRENT_VERSION
    }
}

/// Encode the header as [`written_version`] (whatever `h.version` says), with the known flags
/// of `h.flags`, CRC included.
pub(crate) fn encode(h: &Header) -> Result<Vec<u8>> {
    let mut src = Vec::new();
    put_len_prefixed(&mut src, h.source.server_version.as_bytes(), "server version")?;
    put_len_prefixed(&mut src, h.source.spec.as_bytes(), "PSOR spec")?;
    match &h.source.selection {
        Selection::Prefix(p) => {
            src.push(SELECTION_PREFIX);
            put_len_prefixed(&mut src, p, "selection prefix")?;
        }
        Selection::PacVersion { pac, version } => {
            src.push(SELECTION_PAC_VERSION);
            put_len_prefixed(&mut src, pac.as_bytes(), "PAC name")?;
            put_len_prefixed(&mut src, version.as_bytes(), "PAC version")?;
        }
    }
    let src_len = u32::try_from(src.len()).ok().filter(|&n| n <= MAX_SOURCE_LEN).ok_or(Error::TooLarge {
        what: "source block",
        len: u64_of(src.len()),
        max: u64::from(MAX_SOURCE_LEN),
    })?;

    let mut out = Vec::with_capacity(SOURCE_OFFSET + src.len() + CRC_LEN);
    out.extend_from_slice(&MAGIC);
    let version = written_version(h);
    out.extend_from_slice(&version.major.to_le_bytes());
    out.extend_from_slice(&version.minor.to_le_bytes());
    out.extend_from_slice(&(h.flags & KNOWN_FLAGS).to_le_bytes());
    out.extend_from_slice(&h.created_at_ms.to_le_bytes());
    out.extend_from_slice(&src_len.to_le_bytes());
    debug_assert_eq!(out.len(), SOURCE_OFFSET);
    out.extend_from_slice(&src);
    let crc = Checksum::of(&out);
    out.extend_from_slice(&crc.0.to_le_bytes());
    Ok(out)
}

/// Check that `found` is a version this build reads.
pub(crate) fn check_version(found: Version) -> Result<()> {
    // Every released major stays listed here. Only 1 exists so far.
    match found.major {
        1 => Ok(()),
        _ => Err(Error::UnsupportedVersion { found, supported: CURRENT_VERSION }),
    }
}

/// Whether a file of version `v` may carry fields this build doesn't know (newer minor).
pub(crate) fn newer_minor(v: Version) -> bool {
    v.major == CURRENT_VERSION.major && v.minor > CURRENT_VERSION.minor
}

/// Read and validate the header from the current position (the start of the file).
/// Returns the header and its length in bytes.
pub(crate) fn read<R: Read>(r: &mut R, file_len: u64) -> Result<(Header, u64)> {
    let fixed_len = u64_of(SOURCE_OFFSET);
    // Magic first, so that a short non-psnap file says "bad magic", not "truncated".
    let magic_len = u64_of(MAGIC.len());
    if file_len < magic_len {
        return Err(Error::Truncated { what: "header", offset: 0, needed: magic_len, available: file_len });
    }
    let mut fixed = [0u8; SOURCE_OFFSET];
    r.read_exact(&mut fixed[..MAGIC.len()])?;
    if fixed[..MAGIC.len()] != MAGIC {
        return Err(Error::BadMagic { what: "header", offset: 0 });
    }
    if file_len < fixed_len {
        return Err(Error::Truncated { what: "header", offset: 0, needed: fixed_len, available: file_len });
    }
    r.read_exact(&mut fixed[MAGIC.len()..])?;
    let mut c = Cursor::new(&fixed[MAJOR_OFFSET..], u64_of(MAJOR_OFFSET), "header");
    let version = Version { major: c.u16()?, minor: c.u16()? };
    // Refuse a newer major before anything else: its layout may differ from here on.
    check_version(version)?;
    let flags = c.u32()?;
    let created_at_ms = c.i64()?;
    let source_len = c.u32()?;
    if source_len > MAX_SOURCE_LEN {
        return Err(Error::TooLarge {
            what: "header source block",
            len: u64::from(source_len),
            max: u64::from(MAX_SOURCE_LEN),
        });
    }
    let header_len = fixed_len + u64::from(source_len) + u64_of(CRC_LEN);
    if file_len < header_len {
        return Err(Error::Truncated { what: "header", offset: 0, needed: header_len, available: file_len });
    }
    let mut all = vec![0u8; usize_of(header_len, "header")?];
    all[..SOURCE_OFFSET].copy_from_slice(&fixed);
    r.read_exact(&mut all[SOURCE_OFFSET..])?;
    let crc_at = all.len() - CRC_LEN;
    let mut crc = [0u8; CRC_LEN];
    crc.copy_from_slice(&all[crc_at..]);
    Checksum::of(&all[..crc_at]).check(Checksum(u32::from_le_bytes(crc)), "header", 0)?;

    if flags & !flags_of(version) != 0 && !newer_minor(version) {
        return Err(Error::Corrupt {
            offset: u64_of(FLAGS_OFFSET),
            frame: None,
            detail: format!("unknown header flags {flags:#x} in a v{version} file"),
        });
    }

    let mut c = Cursor::new(&all[SOURCE_OFFSET..crc_at], u64_of(SOURCE_OFFSET), "header source block");
    let server_version = c.string("server version")?;
    let spec = c.string("PSOR spec")?;
    let tag_at = c.offset();
    let selection = match c.u8()? {
        SELECTION_PREFIX => Selection::Prefix(c.len_prefixed()?.to_vec()),
        SELECTION_PAC_VERSION => {
            Selection::PacVersion { pac: c.string("PAC name")?, version: c.string("PAC version")? }
        }
        tag => return Err(Error::UnknownTag { what: "selection", tag, offset: tag_at, frame: None }),
    };
    if c.remaining() != 0 && !newer_minor(version) {
        return Err(Error::Corrupt {
            offset: c.offset(),
            frame: None,
            detail: format!("{} unexpected bytes at the end of the header source block", c.remaining()),
        });
    }
    Ok((Header { version, flags, created_at_ms, source: Source { server_version, spec, selection } }, header_len))
}
