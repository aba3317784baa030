//! Export: every key under a selection, read atomically per key, into a `.psnap` file that
//! appears at its final path only once it is complete and on disk.
//!
//! One thread feeds SCAN batches (from `engine::scan`, every master) to a few reader
//! threads, each with its own router (one connection per master), that send per key `MULTI
//! TYPE DUMP PEXPIRETIME EXEC` in pipelines to the master of the key's slot (`PTTL` + `TIME`
//! instead of `PEXPIRETIME` before Redis 7.0, turned into an absolute instant with the
//! server's own clock) — with `--read-from replica`, to the caught-up replica whose scan found
//! the key (`engine::ValueReads`), else the master. A transaction split by a redirection (its slot moved: the commands
//! were answered one by one elsewhere, `EXEC` aborted) is read again whole. On a cluster, the
//! slots whose master changed while SCAN ran are swept again at the end with `CLUSTER
//! GETKEYSINSLOT`, so a key that moved is not missed. The calling thread writes the records
//! to `FILE.tmp` beside the target, fsyncs it, renames it over the target and fsyncs the
//! directory: a crash leaves either the old file or the new one, never a torn one.

use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use psor_formats::file::{sync_dir, tmp_path};
use psor_formats::{dump_rdb_version, Header, KeyKind, Record, Selection, SnapshotWriter, Source};
use redis::Value;

use super::spill::{Spill, RUN_BYTES};
use super::{check_output_path, is_fatal_for_run, now_ms, open_router, per_kind, Error, PerKind, Result, Samples};
use crate::connect::{key_slot, Psor, ReadChoice, Topology};
use crate::engine::router::{Routed, Router};
use crate::engine::{self, pipeline, EngineOptions, KeyFailure, ReadSide, ValueReads};
use crate::keys::KeyPrefix;
use crate::progress::Progress;

/// Which keys go into the file, and how the file names them.
#[derive(Clone, Debug)]
pub struct ExportSelection {
    recorded: Selection,
    prefixes: Vec<KeyPrefix>,
}

impl ExportSelection {
    /// Every key under one prefix.
    pub fn prefix(prefix: KeyPrefix) -> Self {
        ExportSelection { recorded: Selection::Prefix(prefix.as_bytes().to_vec()), prefixes: vec![prefix] }
    }

    /// The keys of one PAC at one version: the caller (the PAC layout) gives the prefixes
    /// its stores live under. Prefixes where one starts with another are refused: a key
    /// would be taken twice.
    pub fn pac_version(pac: impl Into<String>, version: impl Into<String>, prefixes: Vec<KeyPrefix>) -> Result<Self> {
        if prefixes.is_empty() {
            return Err(Error::Refused("a PAC selection needs at least one key prefix".into()));
        }
        for (i, a) in prefixes.iter().enumerate() {
            if let Some(b) = prefixes[i + 1..].iter().find(|b| a.overlaps(b)) {
                return Err(Error::Refused(format!("prefixes {a} and {b} overlap: a key would be exported twice")));
            }
        }
        Ok(ExportSelection { recorded: Selection::PacVersion { pac: pac.into(), version: version.into() }, prefixes })
    }

    /// The selection as the file records it.
    pub fn recorded(&self) -> &Selection {
        &self.recorded
    }

    /// The prefixes scanned.
    pub fn prefixes(&self) -> &[KeyPrefix] {
        &self.prefixes
    }
}

/// What to export, and where.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// The keys.
    pub selection: ExportSelection,
    /// The file to write.
    pub path: PathBuf,
    /// Replace an existing file at `path` (only a snapshot of this build's format version or
    /// an older one; anything else, a newer snapshot, and the file of the `file:` store being
    /// exported are never overwritten: see [`super::check_output_path`]).
    pub overwrite: bool,
}

/// What an export did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ExportOutcome {
    /// The file written.
    pub path: PathBuf,
    /// The server's version, as recorded in the file.
    pub server_version: String,
    /// Keys written.
    pub keys: u64,
    /// Key-name bytes written.
    pub key_bytes: u64,
    /// `DUMP` payload bytes written.
    pub payload_bytes: u64,
    /// Per type: keys and payload bytes.
    pub per_type: PerKind,
    /// Keys written that carry an expiry.
    pub with_ttl: u64,
    /// Keys found by SCAN that were gone when read (not written).
    pub vanished: u64,
    /// Keys SCAN returned more than once (written once).
    pub duplicates: u64,
    /// Keys whose read failed (not written; the first are in `failures`).
    pub failed: u64,
    /// The first failures.
    pub failures: Vec<KeyFailure>,
    /// Size of the file.
    pub file_bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// Where each master's keys were scanned and read (`--read-from replica…`), and any fall
    /// back to the master; empty when every read went to the masters by choice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read_from: Vec<ReadChoice>,
}

/// Keys per read pipeline: bounds the payload bytes one reader holds at once.
const READ_CHUNK: usize = 256;

/// Exports the keys of `opts.selection` on `psor` to `opts.path`.
///
/// `progress` counts keys examined and matched (SCAN), `done` (written), `vanished` and
/// `failed`; its `total_keys` is `DBSIZE`.
pub fn export(
    psor: &Psor,
    opts: &ExportOptions,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<ExportOutcome> {
    let started = Instant::now();
    // Under a latency bound, SCAN COUNT and the keys per read come from the bound (pacing.rs).
    let engine = &crate::engine::pacing::shape(engine);
    // The run's own counts, whatever earlier runs added to a shared `progress`.
    let base = progress.snapshot().counts;
    // Never over the file of the store being exported (it would be saved over the export
    // later), nor over anything else that is not ours to replace.
    let in_use: Vec<PathBuf> = psor.store_path().into_iter().collect();
    check_output_path(&opts.path, opts.overwrite, &in_use)?;
    let header = Header::new(
        now_ms(),
        Source {
            server_version: psor.server().header_version(),
            spec: psor.spec().redacted(),
            selection: opts.selection.recorded.clone(),
        },
    )
    .sorted();
    // Where the keys are scanned and read (`--read-from`), chosen (and the replicas waited
    // for) once for every prefix: each key is read on the node whose scan found it.
    let sides = engine::ReadSide::choose(psor, engine)?;
    // Open every connection before creating the file: a bad password leaves nothing behind.
    let readers = (0..engine.writers.max(1))
        .map(|_| {
            open_router(psor).map(|router| Reader {
                router,
                reads: ValueReads::new(psor, &sides),
                abs_ttl: psor.version().has_pexpiretime(),
            })
        })
        .collect::<crate::Result<Vec<_>>>()?;
    let tmp = tmp_path(&opts.path);
    let file = OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Refused(format!(
                "{} exists: another export to {} is running, or one was killed; remove it if none is running",
                tmp.display(),
                opts.path.display()
            ))
        } else {
            Error::Write { path: tmp.clone(), source }
        }
    })?;
    let result = write_snapshot(psor, opts, engine, &progress, &header, file, readers, &sides, &tmp);
    let (totals, counts) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if let Err(e) = persist(&tmp, &opts.path, opts.overwrite) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(&opts.path);
    let file_bytes = std::fs::metadata(&opts.path).map(|m| m.len()).unwrap_or(0);
    let own = progress.snapshot().counts - base;
    Ok(ExportOutcome {
        path: opts.path.clone(),
        server_version: header.source.server_version,
        keys: totals.keys,
        key_bytes: totals.key_bytes,
        payload_bytes: totals.payload_bytes,
        per_type: per_kind(&totals),
        with_ttl: counts.with_ttl,
        vanished: own.vanished,
        duplicates: counts.duplicates,
        failed: own.failed,
        failures: counts.failures,
        file_bytes,
        seconds: started.elapsed().as_secs_f64(),
        read_from: sides.iter().filter_map(|s| s.choice()).collect(),
    })
}

/// Moves the finished `tmp` to `path` ([`psor_formats::file::persist`]): never over a file
/// that appeared while the export ran, unless replacing was asked (and checked).
fn persist(tmp: &Path, path: &Path, overwrite: bool) -> Result<()> {
    psor_formats::file::persist(tmp, path, overwrite).map_err(|source| {
        if !overwrite && source.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Refused(format!(
                "{} appeared while the export ran: not replaced (use --overwrite to replace it)",
                path.display()
            ))
        } else {
            Error::Write { path: path.to_path_buf(), source }
        }
    })
}

#[derive(Default)]
struct WriteCounts {
    with_ttl: u64,
    duplicates: u64,
    failures: Vec<KeyFailure>,
}

#[allow(clippy::too_many_arguments)]
fn write_snapshot(
    psor: &Psor,
    opts: &ExportOptions,
    engine: &EngineOptions,
    progress: &Arc<Progress>,
    header: &Header,
    file: File,
    readers: Vec<Reader>,
    sides: &[Arc<ReadSide>],
    tmp: &Path,
) -> Result<(psor_formats::Totals, WriteCounts)> {
    let werr = |e: psor_formats::Error| match e {
        psor_formats::Error::Io(source) => Error::Write { path: tmp.to_path_buf(), source },
        other => Error::Write { path: tmp.to_path_buf(), source: std::io::Error::other(other) },
    };
    let mut writer = SnapshotWriter::new(BufWriter::with_capacity(1 << 20, file), header).map_err(werr)?;
    let samples = Samples::new(engine.keep_samples);
    let read_chunk = crate::engine::pacing::pipeline_keys(engine, READ_CHUNK);
    let mut with_ttl = 0u64;
    let depth = engine.queue_depth.max(1);
    let spill_dir = match tmp.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut spill = Spill::new(&spill_dir, RUN_BYTES);
    let samples_ref = &samples;
    let workers: Vec<ReadKeys> = readers.into_iter().map(|reader| ReadKeys { reader, samples: samples_ref }).collect();
    let out_depth = depth * workers.len().max(1);
    // Feeder: scans each prefix (paced by `engine::scan`, which hands the keys out at the
    // pace of `engine.pacing`) and hands the keys on in chunks of `read_chunk`, one read
    // each. A key SCAN returns twice is read twice and written once: the merge drops repeats.
    let progress_f = progress.clone();
    let feeder = pipeline::Lane::new(workers, move |emit| {
        let mut send = |batch: Vec<Vec<u8>>| {
            let mut keys = batch.into_iter();
            loop {
                let chunk: Vec<Vec<u8>> = keys.by_ref().take(read_chunk).collect();
                if chunk.is_empty() {
                    return true;
                }
                if !emit(chunk) {
                    return false; // the readers stopped: an error was recorded
                }
            }
        };
        for prefix in &opts.selection.prefixes {
            for batch in engine::scan_on(psor, prefix, engine, progress_f.clone(), sides.to_vec())? {
                if !send(batch?) {
                    return Ok(());
                }
            }
        }
        sweep_moved_slots(psor, &opts.selection.prefixes, &progress_f, send)?;
        Ok(())
    });
    // As many keys queued as whole batches would be.
    let queue_depth = depth * engine.batch_size.max(1).div_ceil(read_chunk);
    let run = pipeline::Pipeline { progress, pacer: None, queue_depth, out_depth }.run(vec![feeder], |records| {
        // This thread writes (to the sorted runs the merge reads back).
        for r in records {
            spill.push(r).map_err(|source| Error::Write { path: spill_dir.clone(), source })?;
            Progress::add(&progress.done, 1);
        }
        Ok(())
    });
    progress.scan_finished.store(true, Relaxed);
    run?;
    if progress.is_cancelled() {
        return Err(crate::Error::Interrupted.into());
    }
    // The merge writes the file in key order; `done` counted every record read, so the
    // repeats it drops are taken back off.
    let mut merged = 0u64;
    let dups = spill.merge(
        |source| Error::Write { path: spill_dir.clone(), source },
        |r| {
            merged += 1;
            if merged.is_multiple_of(4096) && progress.is_cancelled() {
                return Err(Error::Core(crate::Error::Interrupted));
            }
            with_ttl += u64::from(r.expire_at_ms.is_some());
            writer.push(&r).map_err(werr)
        },
    )?;
    progress.done.fetch_sub(dups.min(progress.done.load(Relaxed)), Relaxed);
    let (footer, buf) = writer.finish_into_inner().map_err(werr)?;
    let file = buf.into_inner().map_err(|e| Error::Write { path: tmp.to_path_buf(), source: e.into_error() })?;
    file.sync_all().map_err(|source| Error::Write { path: tmp.to_path_buf(), source })?;
    let (failures, _) = samples.into_parts();
    Ok((footer.totals, WriteCounts { with_ttl, duplicates: dups, failures }))
}

/// A [`Reader`] as a worker of the [`pipeline`]: keys in, their records out to the file.
struct ReadKeys<'a> {
    reader: Reader,
    samples: &'a Samples,
}

impl pipeline::Stage for ReadKeys<'_> {
    type Item = Vec<u8>;
    type Out = Vec<Record>;
    type Error = Error;
    fn handle(&mut self, keys: Vec<Vec<u8>>, progress: &Progress) -> Result<Option<Vec<Record>>> {
        let records = self.reader.read(&keys, progress, self.samples)?;
        Ok((!records.is_empty()).then_some(records))
    }
}

/// On a cluster: feeds `emit` the keys under `prefixes` in every slot whose master changed
/// since `psor` connected (a failover, a finished migration) or that is being migrated, read
/// with `CLUSTER GETKEYSINSLOT` from every master now. The SCAN of a slot's old master may
/// have missed them; keys read twice are dropped by the merge. Stops (with `Ok`)
/// when `emit` returns false. Nothing to do on a single server or an unchanged cluster.
fn sweep_moved_slots(
    psor: &Psor,
    prefixes: &[KeyPrefix],
    progress: &Progress,
    mut emit: impl FnMut(Vec<Vec<u8>>) -> bool,
) -> crate::Result<()> {
    let Topology::Cluster(before) = psor.topology() else { return Ok(()) };
    let Some(after) = psor.rediscover()? else { return Ok(()) };
    let slots = engine::moved_slots(before, &after);
    engine::sweep_slots(psor, &after, prefixes, &slots, progress, |batch| Ok(emit(batch)))
}

/// How many times a key's transaction is sent again after a redirection split it.
const READ_ATTEMPTS: usize = 5;

/// One reader: a router with a connection to each master, and where the values are read
/// (`--read-from`: each master's caught-up replica, or the master through the router).
struct Reader {
    router: Router,
    reads: ValueReads,
    abs_ttl: bool,
}

impl Reader {
    /// Reads `keys` atomically each; returns the records of the keys that exist.
    fn read(&mut self, keys: &[Vec<u8>], progress: &Progress, samples: &Samples) -> Result<Vec<Record>> {
        let per_key = if self.abs_ttl { 5 } else { 6 };
        let slots: Vec<u16> = keys.iter().map(|k| key_slot(k)).collect();
        let mut out: Vec<Option<Record>> = keys.iter().map(|_| None).collect();
        let mut todo: Vec<usize> = (0..keys.len()).collect();
        for _ in 0..READ_ATTEMPTS {
            let cmds: Vec<Routed> = todo.iter().flat_map(|&i| self.transaction(&keys[i], slots[i])).collect();
            // Reading is idempotent: a retried pipeline reads the keys again.
            let replies = self.reads.run(&mut self.router, "DUMP", &cmds)?;
            if replies.len() != todo.len() * per_key {
                let detail = format!("{} replies for {} keys", replies.len(), todo.len());
                return Err(self.protocol(slots[todo[0]], detail));
            }
            let mut again = Vec::new();
            for (&i, r) in todo.iter().zip(replies.chunks(per_key)) {
                if split(r) {
                    again.push(i);
                    continue;
                }
                let key = &keys[i];
                // Errors while queueing (NOPERM, OOM...) show on the queued command and abort EXEC.
                if let Some(e) = r.iter().find_map(|v| match v {
                    Value::ServerError(e) => Some(e),
                    _ => None,
                }) {
                    if is_fatal_for_run(e) {
                        return Err(crate::Error::Command {
                            addr: self.router.label(slots[i]),
                            op: "DUMP",
                            key: Some(key.clone()),
                            source: e.clone().into(),
                        }
                        .into());
                    }
                    Progress::add(&progress.failed, 1);
                    samples.sample_failure(&self.router.label(slots[i]), key, e);
                    continue;
                }
                let exec = match &r[per_key - 1] {
                    Value::Array(items) => items,
                    other => return Err(self.protocol(slots[i], format!("EXEC replied {other:?}"))),
                };
                match self.record(slots[i], key, exec)? {
                    Some(rec) => out[i] = Some(rec),
                    None => Progress::add(&progress.vanished, 1),
                }
            }
            todo = again;
            if todo.is_empty() {
                break;
            }
        }
        for &i in &todo {
            Progress::add(&progress.failed, 1);
            let label = self.router.label(slots[i]);
            let why = format!("slot {} kept moving while the key was read ({READ_ATTEMPTS} attempts)", slots[i]);
            samples.sample_failure(&label, &keys[i], why);
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// `MULTI TYPE DUMP PEXPIRETIME EXEC` (or `… PTTL TIME EXEC`) for one key, all to its slot.
    fn transaction(&self, key: &[u8], slot: u16) -> Vec<Routed> {
        let cmd = |name: &str, key: Option<&[u8]>| {
            let mut cmd = redis::cmd(name);
            if let Some(k) = key {
                cmd.arg(k);
            }
            Routed { slot, cmd }
        };
        let mut cmds = vec![cmd("MULTI", None), cmd("TYPE", Some(key)), cmd("DUMP", Some(key))];
        if self.abs_ttl {
            cmds.push(cmd("PEXPIRETIME", Some(key)));
        } else {
            cmds.push(cmd("PTTL", Some(key)));
            cmds.push(cmd("TIME", None));
        }
        cmds.push(cmd("EXEC", None));
        cmds
    }

    /// One key's record from its EXEC reply, or `None` when the key was gone.
    fn record(&mut self, slot: u16, key: &[u8], exec: &[Value]) -> Result<Option<Record>> {
        let kind = match exec.first() {
            Some(Value::SimpleString(t)) => t.as_str(),
            Some(Value::BulkString(t)) => std::str::from_utf8(t).unwrap_or("other"),
            other => return Err(self.protocol(slot, format!("TYPE replied {other:?}"))),
        };
        let Some(kind) = KeyKind::from_type_reply(kind) else { return Ok(None) };
        let payload = match exec.get(1) {
            Some(Value::BulkString(p)) => p.clone(),
            Some(Value::Nil) => return Ok(None),
            other => return Err(self.protocol(slot, format!("DUMP replied {other:?}"))),
        };
        let ttl = match exec.get(2) {
            Some(Value::Int(t)) => *t,
            other => return Err(self.protocol(slot, format!("expiry reply {other:?}"))),
        };
        let expire_at_ms = match ttl {
            -2 => return Ok(None),
            -1 => None,
            t if self.abs_ttl => Some(t),
            t => match server_time_ms(exec.get(3)) {
                Some(now) => Some(now + t),
                None => return Err(self.protocol(slot, "TIME reply".into())),
            },
        };
        let rdb_version = dump_rdb_version(&payload).unwrap_or(0);
        Ok(Some(Record { key: key.to_vec(), kind, expire_at_ms, rdb_version, payload }))
    }

    fn protocol(&mut self, slot: u16, detail: String) -> Error {
        crate::Error::Protocol { addr: self.router.label(slot), op: "MULTI/EXEC", detail }.into()
    }
}

/// True when a key's transaction was split by a redirection (`MOVED`, `ASK`, `TRYAGAIN`…):
/// the router answered its commands one by one, possibly on another master, and `EXEC` was
/// aborted (or found no `MULTI`). Its replies are not one state of the key: read it again.
fn split(replies: &[Value]) -> bool {
    let Some((exec, rest)) = replies.split_last() else { return false };
    let aborted = matches!(exec, Value::ServerError(e)
        if e.code() == "EXECABORT" || e.details().is_some_and(|d| d.contains("without MULTI")));
    aborted && !rest.iter().any(|v| matches!(v, Value::ServerError(_)))
}

/// `TIME` → Unix milliseconds.
fn server_time_ms(v: Option<&Value>) -> Option<i64> {
    let Some(Value::Array(parts)) = v else { return None };
    let num = |v: &Value| -> Option<i64> {
        match v {
            Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            Value::Int(i) => Some(*i),
            _ => None,
        }
    };
    Some(num(parts.first()?)? * 1000 + num(parts.get(1)?)? / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_is_beside_the_target() {
        assert_eq!(tmp_path(Path::new("/a/b/x.psnap")), PathBuf::from("/a/b/x.psnap.tmp"));
        assert_eq!(tmp_path(Path::new("x.psnap")), PathBuf::from("x.psnap.tmp"));
    }

    #[test]
    fn overlapping_pac_prefixes_are_refused() {
        let p = |s: &str| KeyPrefix::new(s.as_bytes().to_vec()).unwrap();
        assert!(matches!(ExportSelection::pac_version("P", "1", vec![p("a:"), p("a:b")]), Err(Error::Refused(_))));
        assert!(ExportSelection::pac_version("P", "1", vec![p("a:"), p("b:")]).is_ok());
    }
}
