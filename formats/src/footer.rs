//! The footer (frame index and totals) and the fixed-size trailer at the very end of the file.
//!
//! They exist so that `psor inspect` and the pre-import checks can learn everything countable
//! about a snapshot by reading only the header and the last few bytes, never the frames, and so
//! that a reader can check that the frames it reads are exactly the ones that were written.
//!
//! # Footer byte table (format v1, little-endian; `F` = frame count, `K` = 7 kinds)
//!
//! | offset                | size   | field                                        |
//! |-----------------------|--------|----------------------------------------------|
//! | [`MAGIC_OFFSET`]      | 4      | [`FOOTER_MAGIC`] `PSFT`                      |
//! | [`FRAME_COUNT_OFFSET`]| 4      | frame count `F` (u32)                        |
//! | [`KEYS_OFFSET`]       | 8      | total keys (u64)                             |
//! | [`KEY_BYTES_OFFSET`]  | 8      | total key-name bytes (u64)                   |
//! | [`PAYLOAD_BYTES_OFFSET`] | 8   | total payload bytes (u64)                    |
//! | [`KINDS_OFFSET`]      | 16 × K | per kind in tag order: count (u64), payload bytes (u64) |
//! | [`INDEX_OFFSET`]      | 24 × F | per frame: offset (u64), compressed len (u32), uncompressed len (u32), record count (u32), data CRC32 (u32) |
//! | …                     | …      | (newer minor versions only: extension bytes, skipped by older readers) |
//! | `L - 4`               | 4      | CRC32 of footer bytes `0 .. L-4`             |
//!
//! # Trailer byte table (last [`TRAILER_LEN`] bytes of the file)
//!
//! | offset                        | size | field                                  |
//! |-------------------------------|------|----------------------------------------|
//! | [`TRAILER_FOOTER_OFFSET`]     | 8    | absolute offset of the footer (u64)    |
//! | [`TRAILER_FOOTER_LEN`]        | 4    | footer length `L` (u32, ≤ [`MAX_FOOTER_LEN`]) |
//! | [`TRAILER_CRC_OFFSET`]        | 4    | CRC32 of trailer bytes `0 .. 12`       |
//! | [`TRAILER_MAGIC_OFFSET`]      | 8    | [`TRAILER_MAGIC`] `PSNAPEND`           |

use crate::bytes::{u64_of, usize_of, Cursor};
use crate::error::{Checksum, Error, Result, Version};
use crate::frame::FrameInfo;
use crate::header::newer_minor;
use crate::record::{KeyKind, RecordRef};

/// Footer magic.
pub const FOOTER_MAGIC: [u8; 4] = *b"PSFT";
/// Offset of [`FOOTER_MAGIC`] in the footer.
pub const MAGIC_OFFSET: usize = 0;
/// Offset of the frame count.
pub const FRAME_COUNT_OFFSET: usize = MAGIC_OFFSET + FOOTER_MAGIC.len();
/// Offset of the total key count.
pub const KEYS_OFFSET: usize = FRAME_COUNT_OFFSET + 4;
/// Offset of the total key-name bytes.
pub const KEY_BYTES_OFFSET: usize = KEYS_OFFSET + 8;
/// Offset of the total payload bytes.
pub const PAYLOAD_BYTES_OFFSET: usize = KEY_BYTES_OFFSET + 8;
/// Offset of the per-kind table.
pub const KINDS_OFFSET: usize = PAYLOAD_BYTES_OFFSET + 8;
/// Size of one per-kind entry.
pub const KIND_ENTRY_LEN: usize = 16;
/// Offset of the frame index.
pub const INDEX_OFFSET: usize = KINDS_OFFSET + KeyKind::COUNT * KIND_ENTRY_LEN;
/// Size of one frame index entry.
pub const INDEX_ENTRY_LEN: usize = 24;
/// Size of the footer CRC.
pub const CRC_LEN: usize = 4;
/// Largest footer a reader accepts (64 MiB, about 2.8 million frames).
pub const MAX_FOOTER_LEN: u32 = 64 << 20;

/// Trailer magic, the last 8 bytes of every complete file.
pub const TRAILER_MAGIC: [u8; 8] = *b"PSNAPEND";
/// Offset of the footer offset in the trailer.
pub const TRAILER_FOOTER_OFFSET: usize = 0;
/// Offset of the footer length in the trailer.
pub const TRAILER_FOOTER_LEN: usize = TRAILER_FOOTER_OFFSET + 8;
/// Offset of the trailer CRC.
pub const TRAILER_CRC_OFFSET: usize = TRAILER_FOOTER_LEN + 4;
/// Offset of [`TRAILER_MAGIC`] in the trailer.
pub const TRAILER_MAGIC_OFFSET: usize = TRAILER_CRC_OFFSET + 4;
/// Size of the trailer.
pub const TRAILER_LEN: usize = TRAILER_MAGIC_OFFSET + TRAILER_MAGIC.len();

/// Count and payload bytes of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct KindTotals {
    /// Number of keys.
    pub count: u64,
    /// Sum of their `DUMP` payload lengths.
    pub payload_bytes: u64,
}

/// What a snapshot holds, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Totals {
    /// Number of keys (records).
    pub keys: u64,
    /// Sum of key-name lengths.
    pub key_bytes: u64,
    /// Sum of `DUMP` payload lengths.
    pub payload_bytes: u64,
    /// Per kind, indexed by [`KeyKind::index`].
    pub per_kind: [KindTotals; KeyKind::COUNT],
}

impl Totals {
    /// Totals of one kind.
    pub fn kind(&self, kind: KeyKind) -> KindTotals {
        self.per_kind[kind.index()]
    }

    /// Count one record.
    pub fn add(&mut self, r: RecordRef<'_>) {
        let p = u64_of(r.payload.len());
        self.keys = self.keys.saturating_add(1);
        self.key_bytes = self.key_bytes.saturating_add(u64_of(r.key.len()));
        self.payload_bytes = self.payload_bytes.saturating_add(p);
        let k = &mut self.per_kind[r.kind.index()];
        k.count = k.count.saturating_add(1);
        k.payload_bytes = k.payload_bytes.saturating_add(p);
    }

    /// Add another set of totals.
    pub fn merge(&mut self, o: &Totals) {
        self.keys = self.keys.saturating_add(o.keys);
        self.key_bytes = self.key_bytes.saturating_add(o.key_bytes);
        self.payload_bytes = self.payload_bytes.saturating_add(o.payload_bytes);
        for (a, b) in self.per_kind.iter_mut().zip(o.per_kind.iter()) {
            a.count = a.count.saturating_add(b.count);
            a.payload_bytes = a.payload_bytes.saturating_add(b.payload_bytes);
        }
    }
}

/// The in-memory footer: frame index and totals.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Footer {
    /// One entry per frame, in file order.
    pub frames: Vec<FrameInfo>,
    /// Totals over all records.
    pub totals: Totals,
    /// Absolute offset of the footer in the file.
    pub offset: u64,
    /// Length of the footer in bytes.
    pub len: u32,
}

/// Encode footer bytes (CRC included) for frames and totals.
pub(crate) fn encode(frames: &[FrameInfo], totals: &Totals) -> Result<Vec<u8>> {
    let frame_count = u32::try_from(frames.len()).map_err(|_| Error::TooLarge {
        what: "frame count",
        len: u64_of(frames.len()),
        max: u64::from(u32::MAX),
    })?;
    let mut out = Vec::with_capacity(INDEX_OFFSET + frames.len() * INDEX_ENTRY_LEN + CRC_LEN);
    out.extend_from_slice(&FOOTER_MAGIC);
    out.extend_from_slice(&frame_count.to_le_bytes());
    out.extend_from_slice(&totals.keys.to_le_bytes());
    out.extend_from_slice(&totals.key_bytes.to_le_bytes());
    out.extend_from_slice(&totals.payload_bytes.to_le_bytes());
    for k in &totals.per_kind {
        out.extend_from_slice(&k.count.to_le_bytes());
        out.extend_from_slice(&k.payload_bytes.to_le_bytes());
    }
    debug_assert_eq!(out.len(), INDEX_OFFSET);
    for f in frames {
        out.extend_from_slice(&f.offset.to_le_bytes());
        out.extend_from_slice(&f.compressed_len.to_le_bytes());
        out.extend_from_slice(&f.uncompressed_len.to_le_bytes());
        out.extend_from_slice(&f.record_count.to_le_bytes());
        out.extend_from_slice(&f.data_crc.to_le_bytes());
    }
    let crc = Checksum::of(&out);
    out.extend_from_slice(&crc.0.to_le_bytes());
    if out.len() > usize_of(u64::from(MAX_FOOTER_LEN), "footer")? {
        return Err(Error::TooLarge { what: "footer", len: u64_of(out.len()), max: u64::from(MAX_FOOTER_LEN) });
    }
    Ok(out)
}

/// Encode the trailer.
pub(crate) fn encode_trailer(footer_offset: u64, footer_len: u32) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[TRAILER_FOOTER_OFFSET..TRAILER_FOOTER_LEN].copy_from_slice(&footer_offset.to_le_bytes());
    t[TRAILER_FOOTER_LEN..TRAILER_CRC_OFFSET].copy_from_slice(&footer_len.to_le_bytes());
    let crc = Checksum::of(&t[..TRAILER_CRC_OFFSET]);
    t[TRAILER_CRC_OFFSET..TRAILER_MAGIC_OFFSET].copy_from_slice(&crc.0.to_le_bytes());
    t[TRAILER_MAGIC_OFFSET..].copy_from_slice(&TRAILER_MAGIC);
    t
}

/// Parse the trailer found at `offset` (= file length − [`TRAILER_LEN`]) and check where it
/// points: returns (footer offset, footer length).
pub(crate) fn parse_trailer(t: &[u8; TRAILER_LEN], offset: u64, header_len: u64, file_len: u64) -> Result<(u64, u32)> {
    if t[TRAILER_MAGIC_OFFSET..] != TRAILER_MAGIC {
        return Err(Error::NoTrailer { file_len });
    }
    let mut c = Cursor::new(t, offset, "trailer");
    let footer_offset = c.u64()?;
    let footer_len = c.u32()?;
    let stored = c.u32()?;
    Checksum::of(&t[..TRAILER_CRC_OFFSET]).check(Checksum(stored), "trailer", offset)?;
    let min_len = u64_of(INDEX_OFFSET + CRC_LEN);
    if u64::from(footer_len) < min_len || footer_len > MAX_FOOTER_LEN {
        return Err(Error::Corrupt {
            offset,
            frame: None,
            detail: format!("footer length {footer_len} outside {min_len}..={MAX_FOOTER_LEN}"),
        });
    }
    // The footer must sit between the header and the trailer, ending exactly at the trailer.
    if footer_offset < header_len || footer_offset.checked_add(u64::from(footer_len)) != Some(offset) {
        return Err(Error::Corrupt {
            offset,
            frame: None,
            detail: format!(
                "trailer points at a footer of {footer_len} bytes at offset {footer_offset}, \
                 which does not end where the trailer starts ({offset}) after the header ({header_len})"
            ),
        });
    }
    Ok((footer_offset, footer_len))
}

/// Parse and validate the footer bytes read at `offset`; `header_len` is where frame 0 must
/// start, and `version` the file's version (for skipping extensions of newer minors).
pub(crate) fn parse(buf: &[u8], offset: u64, header_len: u64, version: Version) -> Result<Footer> {
    let corrupt = |at: u64, detail: String| Error::Corrupt { offset: at, frame: None, detail };
    let len = u32::try_from(buf.len()).map_err(|_| corrupt(offset, "footer too long".into()))?;
    if buf.get(..FOOTER_MAGIC.len()) != Some(&FOOTER_MAGIC[..]) {
        return Err(Error::BadMagic { what: "footer", offset });
    }
    let crc_at = buf.len().checked_sub(CRC_LEN).ok_or_else(|| corrupt(offset, "footer shorter than its CRC".into()))?;
    let mut c = Cursor::new(&buf[crc_at..], offset + u64_of(crc_at), "footer");
    let stored = c.u32()?;
    Checksum::of(&buf[..crc_at]).check(Checksum(stored), "footer", offset)?;

    let mut c = Cursor::new(&buf[..crc_at], offset, "footer");
    c.take(FOOTER_MAGIC.len())?;
    let frame_count = c.u32()?;
    let mut totals = Totals { keys: c.u64()?, key_bytes: c.u64()?, payload_bytes: c.u64()?, ..Totals::default() };
    for k in totals.per_kind.iter_mut() {
        *k = KindTotals { count: c.u64()?, payload_bytes: c.u64()? };
    }
    let index_len = u64::from(frame_count) * u64_of(INDEX_ENTRY_LEN);
    if index_len > u64_of(c.remaining()) {
        return Err(corrupt(
            c.offset(),
            format!("footer announces {frame_count} frames but has room for {}", c.remaining() / INDEX_ENTRY_LEN),
        ));
    }
    let mut frames = Vec::with_capacity(usize_of(u64::from(frame_count), "frame count")?);
    let mut expect_at = header_len;
    let mut counted = 0u64;
    for n in 0..frame_count {
        let at = c.offset();
        let f = FrameInfo {
            offset: c.u64()?,
            compressed_len: c.u32()?,
            uncompressed_len: c.u32()?,
            record_count: c.u32()?,
            data_crc: c.u32()?,
        };
        if f.offset != expect_at {
            return Err(corrupt(
                at,
                format!("index says frame {n} starts at {}, but the previous one ends at {expect_at}", f.offset),
            ));
        }
        f.check_limits(n)?;
        expect_at = f.end();
        counted = counted.saturating_add(u64::from(f.record_count));
        frames.push(f);
    }
    if c.remaining() != 0 && !newer_minor(version) {
        return Err(corrupt(c.offset(), format!("{} unexpected bytes at the end of the footer", c.remaining())));
    }
    if expect_at != offset {
        return Err(corrupt(offset, format!("frames end at {expect_at} but the footer starts at {offset}")));
    }
    if counted != totals.keys {
        return Err(corrupt(offset, format!("frame index holds {counted} records but the totals say {}", totals.keys)));
    }
    let kind_keys = totals.per_kind.iter().fold(0u64, |a, k| a.saturating_add(k.count));
    let kind_bytes = totals.per_kind.iter().fold(0u64, |a, k| a.saturating_add(k.payload_bytes));
    if kind_keys != totals.keys || kind_bytes != totals.payload_bytes {
        return Err(corrupt(offset, "per-kind totals do not add up to the overall totals".into()));
    }
    Ok(Footer { frames, totals, offset, len })
}
