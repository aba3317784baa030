//! [`SnapshotWriter`]: streams records into a `.psnap` file with bounded memory.
//!
//! Records are encoded into an uncompressed frame buffer until it reaches the target size; full
//! frames wait in a small queue and are compressed together with rayon, then written in order.
//! At most [`WriterOptions::max_pending_frames`] frames (and about
//! [`WriterOptions::max_pending_bytes`] bytes plus one frame) are held at once, whatever the size
//! of the snapshot. The writer needs only `Write`: it tracks offsets itself.

use std::io::Write;

use rayon::prelude::*;

use crate::bytes::u64_of;
use crate::error::{Checksum, Error, Result};
use crate::footer::{self, Footer, Totals};
use crate::frame::{self, FrameInfo, FRAME_HEADER_LEN, MAX_FRAME_LEN};
use crate::header::{self, Header};
use crate::record::{encode_record, encoded_len, Record, RecordRef};

/// Largest encoded record the writer accepts: [`MAX_FRAME_LEN`] minus 8 MiB, so that even an
/// incompressible record's zstd output (at most ~0.4 % larger) fits in a frame.
pub const MAX_RECORD_LEN: u32 = MAX_FRAME_LEN - (8 << 20);

/// Tuning knobs of [`SnapshotWriter`]. The defaults suit psor; tests use tiny frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// A frame is closed once its uncompressed records reach this many bytes (default 1 MiB).
    /// A record larger than this gets a frame of its own. Clamped to `1 ..= MAX_RECORD_LEN`.
    pub frame_target: usize,
    /// zstd level (default 3).
    pub zstd_level: i32,
    /// Full frames queued before they are compressed together (default 8; at least 1).
    pub max_pending_frames: usize,
    /// Queued uncompressed bytes that also trigger compression (default 64 MiB).
    pub max_pending_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { frame_target: 1 << 20, zstd_level: 3, max_pending_frames: 8, max_pending_bytes: 64 << 20 }
    }
}

/// Streams records into a snapshot. Call [`finish`](Self::finish) at the end: a writer dropped
/// without it leaves a file with no trailer, which every reader refuses.
pub struct SnapshotWriter<W: Write> {
    w: W,
    opts: WriterOptions,
    /// Bytes written so far = offset of the next frame.
    pos: u64,
    current: Vec<u8>,
    current_count: u32,
    pending: Vec<(Vec<u8>, u32)>,
    pending_bytes: usize,
    frames: Vec<FrameInfo>,
    totals: Totals,
    poisoned: bool,
    /// A sorted file ([`Header::sorted`]): the last key pushed, which the next must exceed.
    last_key: Option<Vec<u8>>,
    sorted: bool,
}

impl<W: Write> SnapshotWriter<W> {
    /// Write the header and return a writer with default options.
    pub fn new(w: W, header: &Header) -> Result<Self> {
        Self::with_options(w, header, WriterOptions::default())
    }

    /// Write the header and return a writer with `opts`.
    pub fn with_options(mut w: W, header: &Header, mut opts: WriterOptions) -> Result<Self> {
        opts.frame_target = opts.frame_target.clamp(1, usize::try_from(MAX_RECORD_LEN).unwrap_or(usize::MAX));
        opts.max_pending_frames = opts.max_pending_frames.max(1);
        let h = header::encode(header)?;
        w.write_all(&h)?;
        Ok(SnapshotWriter {
            w,
            opts,
            pos: u64_of(h.len()),
            current: Vec::new(),
            current_count: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            frames: Vec::new(),
            totals: Totals::default(),
            poisoned: false,
            last_key: None,
            sorted: header.is_sorted(),
        })
    }

    /// Add one record.
    pub fn push(&mut self, record: &Record) -> Result<()> {
        self.push_ref(record.as_ref())
    }

    /// Add one borrowed record.
    ///
    /// A record whose encoding exceeds [`MAX_RECORD_LEN`] is refused with [`Error::TooLarge`]
    /// and the writer stays usable; so is, in a sorted file, a key that is not greater than
    /// the previous one ([`Error::Unsorted`]). Any other error poisons the writer.
    pub fn push_ref(&mut self, record: RecordRef<'_>) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if self.sorted {
            if self.last_key.as_deref().is_some_and(|last| record.key <= last) {
                return Err(Error::Unsorted { records: self.totals.keys });
            }
            let last = self.last_key.get_or_insert_with(Vec::new);
            last.clear();
            last.extend_from_slice(record.key);
        }
        let len = encoded_len(record);
        if len > usize::try_from(MAX_RECORD_LEN).unwrap_or(usize::MAX) {
            return Err(Error::TooLarge { what: "record", len: u64_of(len), max: u64::from(MAX_RECORD_LEN) });
        }
        let res = self.push_inner(record, len);
        if res.is_err() {
            self.poisoned = true;
        }
        res
    }

    fn push_inner(&mut self, record: RecordRef<'_>, len: usize) -> Result<()> {
        if self.current_count > 0 && self.current.len().saturating_add(len) > self.opts.frame_target {
            self.close_frame()?;
        }
        encode_record(record, &mut self.current)?;
        self.current_count += 1;
        self.totals.add(record);
        if self.current.len() >= self.opts.frame_target {
            self.close_frame()?;
        }
        Ok(())
    }

    /// Totals of the records pushed so far.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    fn close_frame(&mut self) -> Result<()> {
        if self.current_count == 0 {
            return Ok(());
        }
        let data = std::mem::take(&mut self.current);
        self.pending_bytes = self.pending_bytes.saturating_add(data.len());
        self.pending.push((data, self.current_count));
        self.current_count = 0;
        if self.pending.len() >= self.opts.max_pending_frames || self.pending_bytes >= self.opts.max_pending_bytes {
            self.flush_pending()?;
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<()> {
        let level = self.opts.zstd_level;
        let compressed: Vec<Result<Vec<u8>>> =
            self.pending.par_iter().map(|(data, _)| frame::compress(data, level)).collect();
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        for ((data, count), comp) in pending.into_iter().zip(compressed) {
            let comp = comp?;
            let too_large = |what, n: usize| Error::TooLarge { what, len: u64_of(n), max: u64::from(MAX_FRAME_LEN) };
            let info = FrameInfo {
                offset: self.pos,
                compressed_len: u32::try_from(comp.len()).map_err(|_| too_large("compressed frame", comp.len()))?,
                uncompressed_len: u32::try_from(data.len()).map_err(|_| too_large("frame", data.len()))?,
                record_count: count,
                data_crc: Checksum::of(&comp).0,
            };
            if info.compressed_len > MAX_FRAME_LEN {
                return Err(too_large("compressed frame", comp.len()));
            }
            self.w.write_all(&frame::encode_header(&info))?;
            self.w.write_all(&comp)?;
            self.pos = self.pos.saturating_add(u64_of(FRAME_HEADER_LEN + comp.len()));
            self.frames.push(info);
        }
        Ok(())
    }

    /// Flush the last frames, write footer and trailer, flush the writer. The caller decides
    /// about fsync and rename.
    pub fn finish(self) -> Result<Footer> {
        self.finish_into_inner().map(|(f, _)| f)
    }

    /// Like [`finish`](Self::finish), also giving the writer back (e.g. to fsync a `File`).
    pub fn finish_into_inner(mut self) -> Result<(Footer, W)> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        self.close_frame()?;
        self.flush_pending()?;
        let bytes = footer::encode(&self.frames, &self.totals)?;
        let len = u32::try_from(bytes.len()).map_err(|_| Error::TooLarge {
            what: "footer",
            len: u64_of(bytes.len()),
            max: u64::from(footer::MAX_FOOTER_LEN),
        })?;
        let offset = self.pos;
        self.w.write_all(&bytes)?;
        self.w.write_all(&footer::encode_trailer(offset, len))?;
        self.w.flush()?;
        Ok((Footer { frames: self.frames, totals: self.totals, offset, len }, self.w))
    }
}
