//! Frames: a small hand-written frame header followed by zstd-compressed postcard records.
//!
//! Frames are the unit of compression, checksumming and parallelism: the writer compresses
//! several at once, the reader checks a frame's CRC32 *before* handing its bytes to zstd and
//! decompresses into a buffer bounded by the length the frame header announces.
//!
//! # Frame header byte table (format v1, little-endian)
//!
//! | offset                  | size | field                                          |
//! |-------------------------|------|------------------------------------------------|
//! | [`MAGIC_OFFSET`]        | 4    | [`FRAME_MAGIC`] `PSFR`                         |
//! | [`COMPRESSED_OFFSET`]   | 4    | compressed length `C` (u32, 1 ..= [`MAX_FRAME_LEN`]) |
//! | [`UNCOMPRESSED_OFFSET`] | 4    | uncompressed length `U` (u32, 1 ..= [`MAX_FRAME_LEN`]) |
//! | [`COUNT_OFFSET`]        | 4    | record count (u32, ≥ 1)                        |
//! | [`DATA_CRC_OFFSET`]     | 4    | CRC32 of the `C` compressed bytes              |
//! | [`HEADER_CRC_OFFSET`]   | 4    | CRC32 of frame header bytes `0 .. 20`          |
//!
//! Then `C` bytes: one or more zstd frames whose decompressed concatenation is exactly `U`
//! bytes holding exactly `record count` postcard records back to back.

use std::io::Read;

use crate::bytes::{u64_of, usize_of, Cursor};
use crate::error::{Checksum, Error, Result};
use crate::record::{decode_record, RecordRef};

/// Frame magic.
pub const FRAME_MAGIC: [u8; 4] = *b"PSFR";
/// Offset of [`FRAME_MAGIC`] in the frame header.
pub const MAGIC_OFFSET: usize = 0;
/// Offset of the compressed length.
pub const COMPRESSED_OFFSET: usize = MAGIC_OFFSET + FRAME_MAGIC.len();
/// Offset of the uncompressed length.
pub const UNCOMPRESSED_OFFSET: usize = COMPRESSED_OFFSET + 4;
/// Offset of the record count.
pub const COUNT_OFFSET: usize = UNCOMPRESSED_OFFSET + 4;
/// Offset of the CRC32 of the compressed bytes.
pub const DATA_CRC_OFFSET: usize = COUNT_OFFSET + 4;
/// Offset of the frame header's own CRC32.
pub const HEADER_CRC_OFFSET: usize = DATA_CRC_OFFSET + 4;
/// Size of a frame header.
pub const FRAME_HEADER_LEN: usize = HEADER_CRC_OFFSET + 4;

/// Largest compressed or uncompressed frame a reader accepts and a writer produces: 1 GiB.
/// Redis values are at most 512 MiB, and a `DUMP` adds little, so one record always fits; a
/// record whose encoding exceeds this is refused by the writer ([`Error::TooLarge`]).
pub const MAX_FRAME_LEN: u32 = 1 << 30;
/// Smallest encoded record (empty key and payload, no expiry): bounds the record count a
/// frame of `U` bytes may claim.
pub const MIN_RECORD_LEN: u32 = 5;

/// One frame's entry in the index (and the fields of its frame header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameInfo {
    /// Absolute offset of the frame header in the file.
    pub offset: u64,
    /// Length of the compressed bytes after the frame header.
    pub compressed_len: u32,
    /// Length of the decompressed records.
    pub uncompressed_len: u32,
    /// Number of records.
    pub record_count: u32,
    /// CRC32 of the compressed bytes.
    pub data_crc: u32,
}

impl FrameInfo {
    /// Offset just past this frame (header + compressed bytes).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(u64_of(FRAME_HEADER_LEN)).saturating_add(u64::from(self.compressed_len))
    }

    /// Check the lengths and count against the format limits.
    pub(crate) fn check_limits(&self, frame: u32) -> Result<()> {
        let bad = |detail: String| Err(Error::Corrupt { offset: self.offset, frame: Some(frame), detail });
        if self.compressed_len == 0 || self.compressed_len > MAX_FRAME_LEN {
            return bad(format!("compressed length {} outside 1..={MAX_FRAME_LEN}", self.compressed_len));
        }
        if self.uncompressed_len == 0 || self.uncompressed_len > MAX_FRAME_LEN {
            return bad(format!("uncompressed length {} outside 1..={MAX_FRAME_LEN}", self.uncompressed_len));
        }
        if self.record_count == 0 || self.record_count > self.uncompressed_len / MIN_RECORD_LEN {
            return bad(format!(
                "record count {} impossible for {} uncompressed bytes",
                self.record_count, self.uncompressed_len
            ));
        }
        Ok(())
    }
}

/// The on-disk frame header.
pub(crate) fn encode_header(info: &FrameInfo) -> [u8; FRAME_HEADER_LEN] {
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[MAGIC_OFFSET..COMPRESSED_OFFSET].copy_from_slice(&FRAME_MAGIC);
    h[COMPRESSED_OFFSET..UNCOMPRESSED_OFFSET].copy_from_slice(&info.compressed_len.to_le_bytes());
    h[UNCOMPRESSED_OFFSET..COUNT_OFFSET].copy_from_slice(&info.uncompressed_len.to_le_bytes());
    h[COUNT_OFFSET..DATA_CRC_OFFSET].copy_from_slice(&info.record_count.to_le_bytes());
    h[DATA_CRC_OFFSET..HEADER_CRC_OFFSET].copy_from_slice(&info.data_crc.to_le_bytes());
    let crc = Checksum::of(&h[..HEADER_CRC_OFFSET]);
    h[HEADER_CRC_OFFSET..].copy_from_slice(&crc.0.to_le_bytes());
    h
}

/// Parse and check a frame header read at `offset`, and check it agrees with the index entry.
pub(crate) fn check_header(h: &[u8; FRAME_HEADER_LEN], expected: &FrameInfo, frame: u32) -> Result<()> {
    let offset = expected.offset;
    if h[MAGIC_OFFSET..COMPRESSED_OFFSET] != FRAME_MAGIC {
        return Err(Error::BadMagic { what: "frame", offset });
    }
    let mut c = Cursor::new(&h[COMPRESSED_OFFSET..], offset + u64_of(COMPRESSED_OFFSET), "frame header");
    let compressed_len = c.u32()?;
    let uncompressed_len = c.u32()?;
    let record_count = c.u32()?;
    let data_crc = c.u32()?;
    let stored = c.u32()?;
    Checksum::of(&h[..HEADER_CRC_OFFSET]).check(Checksum(stored), format!("frame {frame} header"), offset)?;
    let found = FrameInfo { offset, compressed_len, uncompressed_len, record_count, data_crc };
    if found != *expected {
        return Err(Error::Corrupt {
            offset,
            frame: Some(frame),
            detail: format!("frame header {found:?} disagrees with the footer index {expected:?}"),
        });
    }
    Ok(())
}

/// Compress one frame's records.
pub(crate) fn compress(data: &[u8], level: i32) -> Result<Vec<u8>> {
    Ok(zstd::bulk::compress(data, level)?)
}

/// Check the CRC of `compressed`, then decompress it into exactly `info.uncompressed_len`
/// bytes, never allocating or producing more.
pub(crate) fn decompress(compressed: &[u8], info: &FrameInfo, frame: u32) -> Result<Vec<u8>> {
    let data_offset = info.offset + u64_of(FRAME_HEADER_LEN);
    Checksum::of(compressed).check(Checksum(info.data_crc), format!("frame {frame} data"), data_offset)?;
    let want = u64::from(info.uncompressed_len);
    let decompress_err = |e: std::io::Error| Error::Decompress { frame, offset: info.offset, detail: e.to_string() };
    let dec = zstd::stream::read::Decoder::with_buffer(compressed).map_err(decompress_err)?;
    // Start small: `want` is only trusted once the bytes are really produced.
    let mut out = Vec::with_capacity(usize_of(want.min(16 << 20), "frame")?);
    dec.take(want + 1).read_to_end(&mut out).map_err(decompress_err)?;
    if u64_of(out.len()) != want {
        let got = if u64_of(out.len()) > want { format!("more than {want}") } else { out.len().to_string() };
        return Err(Error::Corrupt {
            offset: info.offset,
            frame: Some(frame),
            detail: format!("frame decompresses to {got} bytes, its header says {want}"),
        });
    }
    Ok(out)
}

/// Decode exactly `info.record_count` records from a decompressed frame, calling `f` on each,
/// and refuse leftover bytes.
pub(crate) fn for_each_record<'a>(
    mut buf: &'a [u8],
    info: &FrameInfo,
    frame: u32,
    mut f: impl FnMut(RecordRef<'a>) -> Result<()>,
) -> Result<()> {
    for i in 0..info.record_count {
        let (rec, rest) = decode_record(buf, info.offset, Some(frame)).map_err(|e| match e {
            Error::Corrupt { offset, frame, detail } => {
                Error::Corrupt { offset, frame, detail: format!("record {i} of {}: {detail}", info.record_count) }
            }
            e => e,
        })?;
        f(rec)?;
        buf = rest;
    }
    if !buf.is_empty() {
        return Err(Error::Corrupt {
            offset: info.offset,
            frame: Some(frame),
            detail: format!("{} bytes left after the frame's {} records", buf.len(), info.record_count),
        });
    }
    Ok(())
}
