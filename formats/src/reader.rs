//! [`SnapshotReader`]: opens a `.psnap` file, checks header, trailer and footer, and streams
//! or verifies the frames.
//!
//! Opening reads only the header and the end of the file, so counts and sizes are available
//! without touching the frames. Frames are then read in order, in batches of at most
//! [`READ_AHEAD_FRAMES`] frames and about [`READ_AHEAD_BYTES`] uncompressed bytes (always at
//! least one frame), which are checked and decompressed in parallel with rayon. Memory stays
//! bounded by one batch whatever the file size.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};

use rayon::prelude::*;

use crate::bytes::{u64_of, usize_of};
use crate::error::{Error, Result};
use crate::footer::{self, Footer, Totals, TRAILER_LEN};
use crate::frame::{self, FrameInfo, FRAME_HEADER_LEN};
use crate::header::{self, Header};
use crate::record::{Record, RecordRef};

/// Most frames read ahead and decompressed at once.
pub const READ_AHEAD_FRAMES: usize = 8;
/// Uncompressed bytes after which a batch stops growing (64 MiB).
pub const READ_AHEAD_BYTES: u64 = 64 << 20;

/// A snapshot opened for reading.
pub struct SnapshotReader<R> {
    r: R,
    header: Header,
    footer: Footer,
    file_len: u64,
}

impl<R: Read + Seek> SnapshotReader<R> {
    /// Read and check the header, the trailer and the footer (not the frames).
    pub fn open(mut r: R) -> Result<Self> {
        let file_len = r.seek(SeekFrom::End(0))?;
        r.seek(SeekFrom::Start(0))?;
        let (header, header_len) = header::read(&mut r, file_len)?;
        let trailer_at = file_len
            .checked_sub(u64_of(TRAILER_LEN))
            .filter(|&t| t >= header_len)
            .ok_or(Error::NoTrailer { file_len })?;
        r.seek(SeekFrom::Start(trailer_at))?;
        let mut t = [0u8; TRAILER_LEN];
        r.read_exact(&mut t)?;
        let (footer_offset, footer_len) = footer::parse_trailer(&t, trailer_at, header_len, file_len)?;
        r.seek(SeekFrom::Start(footer_offset))?;
        let mut buf = vec![0u8; usize_of(u64::from(footer_len), "footer")?];
        r.read_exact(&mut buf)?;
        let footer = footer::parse(&buf, footer_offset, header_len, header.version)?;
        Ok(SnapshotReader { r, header, footer, file_len })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The footer: frame index and totals (as recorded by the writer; see
    /// [`verify_all`](Self::verify_all) to check them against the frames).
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// Length of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Give the underlying reader back.
    pub fn into_inner(self) -> R {
        self.r
    }

    /// Read frame `n`'s header and compressed bytes, checking the header against the index.
    fn read_frame(&mut self, n: usize) -> Result<(u32, FrameInfo, Vec<u8>)> {
        let info = *self.footer.frames.get(n).ok_or_else(|| Error::Corrupt {
            offset: self.footer.offset,
            frame: None,
            detail: format!("no frame {n} in the index"),
        })?;
        let frame_no = u32::try_from(n).map_err(|_| Error::TooLarge {
            what: "frame number",
            len: u64_of(n),
            max: u64::from(u32::MAX),
        })?;
        self.r.seek(SeekFrom::Start(info.offset))?;
        let mut h = [0u8; FRAME_HEADER_LEN];
        self.r.read_exact(&mut h)?;
        frame::check_header(&h, &info, frame_no)?;
        let mut data = vec![0u8; usize_of(u64::from(info.compressed_len), "frame")?];
        self.r.read_exact(&mut data)?;
        Ok((frame_no, info, data))
    }

    /// Read the next batch of frames starting at `start`.
    fn read_batch(&mut self, start: usize) -> Result<Vec<(u32, FrameInfo, Vec<u8>)>> {
        let mut batch = Vec::new();
        let mut bytes = 0u64;
        let mut n = start;
        while n < self.footer.frames.len()
            && batch.len() < READ_AHEAD_FRAMES
            && (batch.is_empty() || bytes < READ_AHEAD_BYTES)
        {
            let f = self.read_frame(n)?;
            bytes = bytes.saturating_add(u64::from(f.1.uncompressed_len));
            batch.push(f);
            n += 1;
        }
        Ok(batch)
    }

    fn check_totals(&self, seen: &Totals) -> Result<()> {
        if *seen != self.footer.totals {
            return Err(Error::Corrupt {
                offset: self.footer.offset,
                frame: None,
                detail: format!("records in the frames total {seen:?}, footer says {:?}", self.footer.totals),
            });
        }
        Ok(())
    }

    /// Check every frame (CRC, decompression, record decoding, counts) and that the records
    /// add up to the footer's totals, keeping no records. Use before importing anything.
    pub fn verify_all(&mut self) -> Result<Totals> {
        let mut seen = Totals::default();
        let mut next = 0;
        while next < self.footer.frames.len() {
            let batch = self.read_batch(next)?;
            next += batch.len();
            let parts: Vec<Result<Totals>> = batch
                .par_iter()
                .map(|(n, info, comp)| {
                    let data = frame::decompress(comp, info, *n)?;
                    let mut t = Totals::default();
                    frame::for_each_record(&data, info, *n, |r| {
                        t.add(r);
                        Ok(())
                    })?;
                    Ok(t)
                })
                .collect();
            for p in parts {
                seen.merge(&p?);
            }
        }
        self.check_totals(&seen)?;
        Ok(seen)
    }

    /// Call `f` on every record in file order, borrowing key and payload from the decoded frame
    /// (no copies). Checks everything [`verify_all`](Self::verify_all) checks; on error, `f` may
    /// already have seen the records before the damage.
    pub fn for_each_record(&mut self, mut f: impl FnMut(RecordRef<'_>)) -> Result<Totals> {
        let mut seen = Totals::default();
        let mut next = 0;
        while next < self.footer.frames.len() {
            let batch = self.read_batch(next)?;
            next += batch.len();
            let data: Vec<Result<Vec<u8>>> =
                batch.par_iter().map(|(n, info, comp)| frame::decompress(comp, info, *n)).collect();
            for ((n, info, _), d) in batch.iter().zip(data) {
                let d = d?;
                frame::for_each_record(&d, info, *n, |r| {
                    seen.add(r);
                    f(r);
                    Ok(())
                })?;
            }
        }
        self.check_totals(&seen)?;
        Ok(seen)
    }

    /// Decompress frame `n` and give its records to `f` until it returns `false`.
    fn scan_frame(&mut self, n: usize, mut f: impl FnMut(RecordRef<'_>) -> bool) -> Result<()> {
        let (n, info, comp) = self.read_frame(n)?;
        let data = frame::decompress(&comp, &info, n)?;
        let mut go = true;
        frame::for_each_record(&data, &info, n, |r| {
            if go {
                go = f(r);
            }
            Ok(())
        })
    }

    /// The record of `key`, if the file holds one. In a sorted file ([`Header::is_sorted`]) this
    /// is a binary search over the frame index that decodes about log2(frames) + 1 frames
    /// ([`Lookup::Indexed`]); otherwise every frame is decoded in order until the key shows
    /// ([`Lookup::Scanned`]). Only the frames decoded are checked.
    pub fn find(&mut self, key: &[u8]) -> Result<(Option<Record>, Lookup)> {
        let frames = self.footer.frames.len();
        if !self.header.is_sorted() {
            for n in 0..frames {
                let mut found = None;
                self.scan_frame(n, |r| {
                    if r.key == key {
                        found = Some(r.to_owned());
                    }
                    found.is_none()
                })?;
                if found.is_some() {
                    return Ok((found, Lookup::Scanned { frames: n + 1 }));
                }
            }
            return Ok((None, Lookup::Scanned { frames }));
        }
        if frames == 0 {
            return Ok((None, Lookup::Indexed { frames: 0 }));
        }
        // The last frame whose first key is <= `key` is the only one that can hold it.
        let (mut lo, mut hi, mut decoded) = (0usize, frames, 0usize);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let mut first_le = false;
            self.scan_frame(mid, |r| {
                first_le = r.key <= key;
                false
            })?;
            decoded += 1;
            if first_le {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let mut found = None;
        self.scan_frame(lo, |r| {
            if r.key == key {
                found = Some(r.to_owned());
            }
            found.is_none() && r.key < key
        })?;
        Ok((found, Lookup::Indexed { frames: decoded + 1 }))
    }

    /// Stream every record in file order. The iterator yields at most one `Err` and then ends;
    /// records yielded before an error came from frames that checked out, but the file as a whole
    /// is damaged, so callers importing data should run [`verify_all`](Self::verify_all) first.
    pub fn records(&mut self) -> Records<'_, R> {
        Records { reader: self, next_frame: 0, ready: VecDeque::new(), seen: Totals::default(), done: false }
    }
}

/// How [`SnapshotReader::find`] looked a key up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A binary search over the frames of a sorted file.
    Indexed {
        /// Frames decoded.
        frames: usize,
    },
    /// A linear scan of a file that is not sorted (written before format 1.1).
    Scanned {
        /// Frames decoded.
        frames: usize,
    },
}

/// Iterator over the records of a snapshot; see [`SnapshotReader::records`].
pub struct Records<'a, R> {
    reader: &'a mut SnapshotReader<R>,
    next_frame: usize,
    ready: VecDeque<Result<Record>>,
    seen: Totals,
    done: bool,
}

impl<R: Read + Seek> Records<'_, R> {
    fn fill(&mut self) -> Result<()> {
        let batch = self.reader.read_batch(self.next_frame)?;
        self.next_frame += batch.len();
        let decoded: Vec<Result<Vec<Record>>> = batch
            .par_iter()
            .map(|(n, info, comp)| {
                let data = frame::decompress(comp, info, *n)?;
                let mut v = Vec::with_capacity(usize_of(u64::from(info.record_count), "record count")?);
                frame::for_each_record(&data, info, *n, |r| {
                    v.push(r.to_owned());
                    Ok(())
                })?;
                Ok(v)
            })
            .collect();
        for d in decoded {
            match d {
                Ok(v) => self.ready.extend(v.into_iter().map(Ok)),
                Err(e) => {
                    self.ready.push_back(Err(e));
                    break;
                }
            }
        }
        Ok(())
    }
}

impl<R: Read + Seek> Iterator for Records<'_, R> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.ready.is_empty() {
            if self.next_frame >= self.reader.footer.frames.len() {
                self.done = true;
                return self.reader.check_totals(&self.seen).err().map(Err);
            }
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        match self.ready.pop_front() {
            Some(Ok(r)) => {
                self.seen.add(r.as_ref());
                Some(Ok(r))
            }
            Some(Err(e)) => {
                self.done = true;
                self.ready.clear();
                Some(Err(e))
            }
            None => {
                self.done = true;
                Some(Err(Error::Corrupt {
                    offset: self.reader.footer.offset,
                    frame: None,
                    detail: "empty frame batch".into(),
                }))
            }
        }
    }
}

impl<R: Read + Seek> std::iter::FusedIterator for Records<'_, R> {}
