//! The export's external sort: records in, records out sorted by key with each key once, in
//! memory bounded by one run whatever the keyspace.
//!
//! SCAN may return a key more than once, so an export must drop repeats; keeping every key
//! seen (even as a 16-byte hash) grows with the keyspace: 451 MiB at 10M keys. Instead,
//! records are collected into a run of at most [`RUN_BYTES`]; a full run is sorted by key
//! (a key read twice keeps its latest read) and written to an anonymous temporary file beside
//! the snapshot (deleted by the OS when closed, even if psor is killed). At the end the runs
//! and the last in-memory run are merged k-way (a binary heap holding one record per run),
//! dropping repeated keys and keeping the latest read, so the snapshot comes out sorted and
//! can be searched by key. Peak memory: one run plus, while merging, one record and a
//! [`READ_BUF`] buffer per run; at most [`MAX_RUNS`] runs are kept (more are merged into one
//! on the way), so at most 24 MiB + 8 MiB plus the records in flight, at any keyspace size.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use psor_formats::{decode_record, encode_record, Record};

/// Bytes of records (keys, payloads and per-record overhead) held in memory before a run is
/// sorted and written out.
pub(crate) const RUN_BYTES: usize = 24 << 20;
/// Read buffer per run while merging.
const READ_BUF: usize = 32 << 10;
/// Runs merged at once. When this many are on disk they are merged into one (oldest first, so
/// a repeated key still keeps its latest read), which bounds open files and merge buffers
/// (`MAX_RUNS × READ_BUF` = 8 MiB) at any keyspace size, for one more pass over the data
/// every `MAX_RUNS × RUN_BYTES` (6 GiB) of records.
const MAX_RUNS: usize = 256;
/// What one record costs in memory beyond its key and payload bytes (two `Vec`s, the rest of
/// the struct, allocator slack), for the run budget.
const RECORD_OVERHEAD: usize = 96;

/// Records in, sorted unique records out.
pub(crate) struct Spill {
    dir: PathBuf,
    limit: usize,
    run: Vec<Record>,
    run_bytes: usize,
    runs: Vec<File>,
    duplicates: u64,
}

impl Spill {
    /// Runs go to anonymous files in `dir` (the snapshot's directory: the same file system
    /// and the same free space the snapshot needs anyway).
    pub(crate) fn new(dir: &Path, limit: usize) -> Spill {
        Spill {
            dir: dir.to_path_buf(),
            limit: limit.max(1),
            run: Vec::new(),
            run_bytes: 0,
            runs: Vec::new(),
            duplicates: 0,
        }
    }

    /// Adds one record; may sort and write out the current run.
    pub(crate) fn push(&mut self, r: Record) -> std::io::Result<()> {
        self.run_bytes += r.key.len() + r.payload.len() + RECORD_OVERHEAD;
        self.run.push(r);
        if self.run_bytes >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    /// Runs written to disk so far.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Sorts the run, keeps each key's latest record.
    fn sorted_run(&mut self) -> Vec<Record> {
        let mut run = std::mem::take(&mut self.run);
        self.run_bytes = 0;
        // Stable: of equal keys, the one pushed last stays last.
        run.sort_by(|a, b| a.key.cmp(&b.key));
        let before = run.len();
        // In place (no second array of records): of equal neighbours the later one is kept.
        run.dedup_by(|later, kept| {
            if later.key == kept.key {
                std::mem::swap(later, kept);
                true
            } else {
                false
            }
        });
        self.duplicates += u64::try_from(before - run.len()).unwrap_or(u64::MAX);
        run
    }

    fn spill(&mut self) -> std::io::Result<()> {
        let run = self.sorted_run();
        if run.is_empty() {
            return Ok(());
        }
        let mut w = BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(&self.dir)?);
        let mut buf = Vec::new();
        for r in &run {
            write_record(&mut w, &mut buf, r)?;
        }
        let mut f = w.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0))?;
        self.runs.push(f);
        if self.runs.len() >= MAX_RUNS {
            self.compact()?;
        }
        Ok(())
    }

    /// Merges every run on disk into one.
    fn compact(&mut self) -> std::io::Result<()> {
        let sources = self.runs.drain(..).map(|f| Source::File(BufReader::with_capacity(READ_BUF, f))).collect();
        let mut w = BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(&self.dir)?);
        let mut buf = Vec::new();
        self.duplicates += merge_sources(sources, |e| e, |r| write_record(&mut w, &mut buf, &r))?;
        let mut f = w.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0))?;
        self.runs.push(f);
        Ok(())
    }

    /// Merges every run and gives `emit` each key once, in increasing key order (of a key
    /// read more than once, its latest read). Returns how many records were dropped as
    /// repeats. `emit` may stop the merge by returning an error; a failure to read a run back
    /// becomes an error with `io_err`.
    pub(crate) fn merge<E>(
        mut self,
        io_err: impl Fn(std::io::Error) -> E,
        emit: impl FnMut(Record) -> Result<(), E>,
    ) -> Result<u64, E> {
        let last = self.sorted_run();
        let mut sources: Vec<Source> =
            self.runs.drain(..).map(|f| Source::File(BufReader::with_capacity(READ_BUF, f))).collect();
        sources.push(Source::Memory(last.into_iter()));
        Ok(self.duplicates + merge_sources(sources, io_err, emit)?)
    }
}

/// One record of a run file: `u32` length, then the record in the snapshot's encoding.
fn write_record(w: &mut impl Write, buf: &mut Vec<u8>, r: &Record) -> std::io::Result<()> {
    buf.clear();
    encode_record(r.as_ref(), buf).map_err(std::io::Error::other)?;
    let len = u32::try_from(buf.len()).map_err(std::io::Error::other)?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(buf)
}

/// K-way merge of sorted sources, oldest first; of equal keys the newest source's record is
/// emitted and the others dropped. Returns how many were dropped.
fn merge_sources<E>(
    mut sources: Vec<Source>,
    io_err: impl Fn(std::io::Error) -> E,
    mut emit: impl FnMut(Record) -> Result<(), E>,
) -> Result<u64, E> {
    // Min-heap on (key, newest source first): among equal keys the newest comes out first
    // and the older ones are dropped.
    let mut heap: BinaryHeap<Reverse<(Vec<u8>, Reverse<usize>)>> = BinaryHeap::new();
    let mut heads: Vec<Option<Record>> = Vec::with_capacity(sources.len());
    for (i, s) in sources.iter_mut().enumerate() {
        let head = s.next().map_err(&io_err)?;
        if let Some(r) = &head {
            heap.push(Reverse((r.key.clone(), Reverse(i))));
        }
        heads.push(head);
    }
    let mut duplicates = 0u64;
    let mut previous: Option<Vec<u8>> = None;
    while let Some(Reverse((key, Reverse(i)))) = heap.pop() {
        let rec = heads[i].take().expect("a source in the heap has its head");
        let next = sources[i].next().map_err(&io_err)?;
        if let Some(r) = &next {
            heap.push(Reverse((r.key.clone(), Reverse(i))));
        }
        heads[i] = next;
        if previous.as_deref() == Some(&key[..]) {
            duplicates += 1;
            continue;
        }
        previous = Some(key);
        emit(rec)?;
    }
    Ok(duplicates)
}

enum Source {
    File(BufReader<File>),
    Memory(std::vec::IntoIter<Record>),
}

impl Source {
    fn next(&mut self) -> std::io::Result<Option<Record>> {
        match self {
            Source::Memory(it) => Ok(it.next()),
            Source::File(r) => {
                let mut len = [0u8; 4];
                match r.read_exact(&mut len) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e),
                }
                let len = usize::try_from(u32::from_le_bytes(len)).map_err(std::io::Error::other)?;
                let mut buf = vec![0u8; len];
                r.read_exact(&mut buf)?;
                let (rec, rest) = decode_record(&buf, 0, None).map_err(std::io::Error::other)?;
                if !rest.is_empty() {
                    return Err(std::io::Error::other("a spilled export run is damaged"));
                }
                Ok(Some(rec.to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psor_formats::KeyKind;

    fn rec(key: &str, payload: &str) -> Record {
        Record {
            key: key.as_bytes().to_vec(),
            kind: KeyKind::String,
            expire_at_ms: None,
            rdb_version: 11,
            payload: payload.as_bytes().to_vec(),
        }
    }

    #[test]
    fn merges_runs_sorted_once_per_key_keeping_the_latest_read() {
        let dir = tempfile::tempdir().unwrap();
        // A tiny budget: every few records make a run on disk.
        let mut s = Spill::new(dir.path(), 3 * (RECORD_OVERHEAD + 4));
        let mut expected = std::collections::BTreeMap::new();
        let mut state = 7u64;
        for i in 0..(2000u64 + 3 * MAX_RUNS as u64) {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let key = format!("k{}", (state >> 33) % 700);
            let payload = format!("v{i}");
            expected.insert(key.clone(), payload.clone());
            s.push(rec(&key, &payload)).unwrap();
        }
        // More runs than MAX_RUNS were written: they were compacted on the way.
        assert!(s.runs() >= 1 && s.runs() < MAX_RUNS, "{} runs", s.runs());
        let mut out = Vec::new();
        let dups = s
            .merge(
                |e| e,
                |r| {
                    out.push((String::from_utf8(r.key).unwrap(), String::from_utf8(r.payload).unwrap()));
                    Ok::<(), std::io::Error>(())
                },
            )
            .unwrap();
        let want: Vec<(String, String)> = expected.into_iter().collect();
        assert_eq!(dups, 2000 + 3 * MAX_RUNS as u64 - want.len() as u64);
        assert_eq!(out, want);
        // The runs were anonymous files: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
