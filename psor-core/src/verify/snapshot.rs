//! Verifying live keys against a `.psnap` file (a backup before `rem-old-pac`, an export
//! before an import elsewhere), with bounded memory.
//!
//! Pass 1 streams the file's records in batches. Each batch is restored into a private
//! in-memory embedded store (never saved), where it is read by type exactly as a server is
//! read (`engine::compare`), and compared with the live keys, read in pipelines. Streams are
//! decoded from their payload and digested as a live stream is read
//! (`engine::compare::payload_stream_content`), so a snapshot of a Valkey 9.1 stream verifies against
//! the Redis 7.0 stream psor transcoded or rebuilt it into. Module types and encodings the
//! embedded store does not decode (hashes with field expirations) are compared by their `DUMP`
//! bytes.
//! Pass 2 scans the live keys and looks each up in the index of the file's key names built in
//! pass 1: a sorted `Vec<u64>` of 64-bit hashes of the names, 8 bytes per record.
//!
//! Naming: side A is the live PSOR (prefix `from`), side B the file (prefix `to`): a live key
//! not in the file is `missing`, a record with no live key is `extra`. Records outside `to`
//! are not compared; a record whose expiry has already passed is skipped, as `import` skips it.
//!
//! Under `--read-from replica…` the live side's scan and first reads go to the read nodes
//! chosen once at the start (`engine::ReadSide`), and every re-read after the pause (a key
//! that differed; pass 2's look-up of a live key the file lacks) to the masters, as a live ↔
//! live verify does (`super`'s module docs).

use std::fs::File;
use std::hash::{DefaultHasher, Hasher};
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use psor_formats::{KeyKind, Record, SnapshotReader};
use redis::Value;

use super::compare::{classify, classify_expiry, now_ms, DumpDigest, KeyState};
use super::{Kind, Side, Tally, VerifyOptions, VerifyOutcome};
use crate::connect::{Node, NodeConn, Psor};
use crate::engine::compare::{payload_keeps_stream_counters, payload_stream_content, read_with, Content};
use crate::engine::{scan_on, EngineOptions, ReadSide, Samples};
use crate::progress::Progress;
use crate::snapshot::{Error, Result};

/// Records per batch (and bytes of payload, whichever comes first).
const BATCH_RECORDS: usize = 256;
const BATCH_BYTES: usize = 16 << 20;

/// The longest prefix every key in the snapshot at `path` shares (streamed: bounded memory),
/// for verifying a whole file. Refused when it is empty (a file of unrelated keys).
pub fn common_prefix(path: &Path) -> Result<crate::keys::KeyPrefix> {
    let file_err = |source| Error::File { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(|source| Error::Open { path: path.to_path_buf(), source })?;
    let mut reader = SnapshotReader::open(BufReader::with_capacity(1 << 20, file)).map_err(file_err)?;
    let mut common: Option<Vec<u8>> = None;
    reader
        .for_each_record(|r| match &mut common {
            None => common = Some(r.key.to_vec()),
            Some(c) => {
                let n = c.iter().zip(r.key).take_while(|(a, b)| a == b).count();
                c.truncate(n);
            }
        })
        .map_err(file_err)?;
    let common = common.unwrap_or_default();
    crate::keys::KeyPrefix::new(common).map_err(|_| {
        Error::Refused(format!(
            "{}: its keys share no prefix; verify it with `psor verify --prefix P --snapshot FILE` per prefix",
            path.display()
        ))
    })
}

fn name_hash(key: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(key);
    h.finish()
}

/// Compares the live keys under `opts.from` on `live` with the records under `opts.to` in the
/// snapshot at `path`, both directions. Reads only; the file is not modified. An interrupted
/// run is an error (`Interrupted`): never an outcome that could read as "the same".
pub fn verify_snapshot(
    live: &Psor,
    path: &Path,
    opts: &VerifyOptions,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<VerifyOutcome> {
    let out = verify_snapshot_report(live, path, opts, engine, progress)?;
    if out.interrupted {
        return Err(crate::Error::Interrupted.into());
    }
    Ok(out)
}

/// [`verify_snapshot`], but an interrupted run returns what it compared so far, marked
/// [`VerifyOutcome::interrupted`] (the batch in hand is finished first, so the counts are
/// exact for the keys compared).
pub fn verify_snapshot_report(
    live: &Psor,
    path: &Path,
    opts: &VerifyOptions,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<VerifyOutcome> {
    let started = Instant::now();
    // A live key SCAN returns twice (its table shrank under the cursor) is looked up once.
    let engine = &EngineOptions { drop_repeats: true, ..engine.clone() };
    let file_err = |source| Error::File { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(|source| Error::Open { path: path.to_path_buf(), source })?;
    let mut reader = SnapshotReader::open(BufReader::with_capacity(1 << 20, file)).map_err(file_err)?;
    progress.total_keys.store(reader.footer().totals.keys, std::sync::atomic::Ordering::Relaxed);
    let tally = Tally::new(opts.show);
    let samples = Samples::new(engine.keep_samples);
    // The live side's read nodes, chosen (and waited for) once: pass 1's reads, pass 2's scan.
    let sides = ReadSide::choose(live, engine)?;
    let mut side = Side::new(live, &sides)?;
    // Sized once from the footer: 8 bytes per record, no doubling on the way.
    let mut index: Vec<u64> = Vec::with_capacity(usize::try_from(reader.footer().totals.keys).unwrap_or(0));
    let (mut batch, mut bytes) = (Vec::new(), 0usize);
    let now = now_ms();
    // Paced as every bulk command (`--rate`, `--max-latency`): one admission per batch.
    let pacer = crate::engine::pacing::Pacer::start(&engine.pacing, live)?;
    // The pacer's watcher threads are stopped whatever happens.
    let result = (|| -> Result<()> {
        for r in reader.records() {
            if progress.is_cancelled() {
                return Err(crate::Error::Interrupted.into());
            }
            let r = r.map_err(file_err)?;
            Progress::add(&progress.examined, 1);
            if !opts.to.matches(&r.key) || r.expire_at_ms.is_some_and(|t| t <= now) {
                continue;
            }
            Progress::add(&progress.matched, 1);
            index.push(name_hash(&opts.to.rewrite(&r.key, &opts.from)));
            bytes += r.payload.len();
            batch.push(r);
            if batch.len() >= BATCH_RECORDS || bytes >= BATCH_BYTES {
                pacer.admit(batch.len(), &progress);
                compare_batch(&mut side, &std::mem::take(&mut batch), opts, &tally, &samples, &progress)?;
                bytes = 0;
            }
        }
        if !batch.is_empty() {
            pacer.admit(batch.len(), &progress);
            compare_batch(&mut side, &batch, opts, &tally, &samples, &progress)?;
        }
        index.sort_unstable();
        index.dedup();

        // Pass 2: live keys the file does not have. Counted on its own: a replica lost
        // mid-scan leaves the scan to the master from the start, and the pass is counted again
        // from there (a key must not be counted missing twice).
        loop {
            let pass2 = Tally::new(opts.show);
            let scanned = sides.iter().filter(|s| s.on_replica()).count();
            for keys in scan_on(live, &opts.from, engine, progress.clone(), sides.clone())? {
                let keys = keys?;
                pacer.admit(keys.len(), &progress);
                let suspects: Vec<&[u8]> =
                    keys.iter().filter(|k| index.binary_search(&name_hash(k)).is_err()).map(Vec::as_slice).collect();
                if suspects.is_empty() {
                    continue;
                }
                std::thread::sleep(opts.recheck_delay);
                // Asked of the master: a key the replica still holds may be gone there.
                side.on_masters(true);
                for (k, e) in suspects.iter().zip(side.exists(&suspects)?) {
                    match e {
                        Ok(true) => {
                            let file_name = opts.from.rewrite(k, &opts.to);
                            pass2.differs(Kind::Missing, k, &file_name, "not in the snapshot".into())
                        }
                        Ok(false) => pass2.changed(1),
                        Err(e) => {
                            let label = side.label(k);
                            samples.failure(&progress, &label, k, e)
                        }
                    }
                }
            }
            if sides.iter().filter(|s| s.on_replica()).count() == scanned {
                tally.absorb(&pass2);
                break;
            }
        }
        Ok(())
    })();
    let paused = pacer.stop();
    let interrupted = match result {
        Err(Error::Core(crate::Error::Interrupted)) => true,
        other => {
            other?;
            false
        }
    };
    let failures = samples.into_failures();
    let mut out = tally.outcome(opts.quick, progress.snapshot().counts.failed, failures, started);
    out.paused_seconds = paused;
    out.interrupted = interrupted;
    out.read_from = sides.iter().filter_map(|s| s.choice()).collect();
    Ok(out)
}

/// Pass 1 for one batch of records. First the live keys' `DUMP` payloads (not with `--quick`):
/// a record whose payload is byte-identical to its live key's is the same content without
/// being decoded, and only its expiry is compared. The rest go to [`compare_typed`].
fn compare_batch(
    side: &mut Side,
    records: &[Record],
    opts: &VerifyOptions,
    tally: &Tally,
    samples: &Samples,
    progress: &Progress,
) -> Result<()> {
    side.on_masters(false);
    let probed = if opts.quick { None } else { probe_against(side, records, opts)? };
    let Some(settled) = probed else {
        return compare_typed(side, &records.iter().collect::<Vec<_>>(), opts, tally, samples, progress);
    };
    let mut typed = Vec::new();
    let mut suspects = Vec::new();
    for (r, s) in records.iter().zip(settled) {
        match s {
            None => typed.push(r),
            Some(None) => {
                tally.same(1);
                tally.by_payload(1);
                Progress::add(&progress.done, 1);
            }
            Some(Some(_)) => suspects.push(r),
        }
    }
    if !typed.is_empty() {
        compare_typed(side, &typed, opts, tally, samples, progress)?;
    }
    if suspects.is_empty() {
        return Ok(());
    }
    // Identical payloads, another expiry: read again after the pause, as the typed path does.
    std::thread::sleep(opts.recheck_delay);
    // Read again on the master (a replica's lag is not a difference).
    side.on_masters(true);
    let again: Vec<Record> = suspects.into_iter().cloned().collect();
    let mut changed_bytes = Vec::new();
    for (r, s) in again.iter().zip(probe_against(side, &again, opts)?.unwrap_or_else(|| vec![None; again.len()])) {
        match s {
            Some(None) => tally.changed(1),
            Some(Some((kind, detail))) => tally.differs(kind, &opts.to.rewrite(&r.key, &opts.from), &r.key, detail),
            // Its bytes changed since: the typed path decides, from its first read (and
            // counts it done).
            None => {
                changed_bytes.push(r);
                continue;
            }
        }
        Progress::add(&progress.done, 1);
    }
    if !changed_bytes.is_empty() {
        compare_typed(side, &changed_bytes, opts, tally, samples, progress)?;
    }
    Ok(())
}

/// The live keys' `DUMP` digests against the records' payloads: per record, `Some(verdict)`
/// when the payloads are byte-identical (the verdict: expiry only), `None` when the typed path
/// must decide. `None` overall when the server refuses the probe.
#[allow(clippy::type_complexity)]
fn probe_against(
    side: &mut Side,
    records: &[Record],
    opts: &VerifyOptions,
) -> Result<Option<Vec<Option<Option<(Kind, String)>>>>> {
    let live_names: Vec<Vec<u8>> = records.iter().map(|r| opts.to.rewrite(&r.key, &opts.from)).collect();
    let names: Vec<&[u8]> = live_names.iter().map(Vec::as_slice).collect();
    let digest = DumpDigest::default();
    let Some(probes) = side.probe(&names, &digest)? else {
        return Ok(None);
    };
    Ok(Some(
        records
            .iter()
            .zip(probes)
            .map(|(r, p)| {
                p.dump
                    .filter(|&d| d == digest.of(&r.payload))
                    .map(|_| classify_expiry(p.expire_at, r.expire_at_ms, opts.ttl_tolerance_ms))
            })
            .collect(),
    ))
}

/// Pass 1 by type for some records of a batch: read them from a private in-memory store and
/// the live keys from `side`; differing keys are read again live after the pause.
fn compare_typed(
    side: &mut Side,
    records: &[&Record],
    opts: &VerifyOptions,
    tally: &Tally,
    samples: &Samples,
    progress: &Progress,
) -> Result<()> {
    let live_names: Vec<Vec<u8>> = records.iter().map(|r| opts.to.rewrite(&r.key, &opts.from)).collect();
    let names: Vec<&[u8]> = live_names.iter().map(Vec::as_slice).collect();
    // The first look on the read nodes (a record whose bytes changed under the probe comes
    // here from its re-read: looked at afresh, then re-read on the master).
    side.on_masters(false);
    // Streams' Redis 7.0 counters are compared where the live server and the records keep them.
    let counters = side.entries_read
        && records.iter().all(|r| r.kind != KeyKind::Stream || payload_keeps_stream_counters(&r.payload));
    // The live keys are read on a second thread while the records are decoded on this one.
    let (file_states, live) = std::thread::scope(|s| -> Result<_> {
        let on_live = s.spawn(|| side.read(&names, opts.quick, counters));
        let decoded = (|| -> Result<Vec<KeyState>> {
            let store = psor_embedded::in_memory();
            let s2 = store.clone();
            let node = Node::in_process("snapshot", Arc::new(move || Box::new(s2.connect())));
            let mut con = node.connect()?;
            records.iter().map(|r| file_state(&mut con, r, opts.quick, counters)).collect()
        })();
        let live = on_live.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok((decoded?, live?))
    })?;
    let mut suspects = Vec::new();
    for (i, l) in live.into_iter().enumerate() {
        match l.map(|l| judge(side, &l, &file_states[i], records[i], &live_names[i], opts)) {
            Ok(Ok(None)) => tally.same(1),
            Ok(Ok(Some(_))) => suspects.push(i),
            Ok(Err(e)) | Err(e) => {
                let label = side.label(&live_names[i]);
                samples.failure(progress, &label, &live_names[i], e)
            }
        }
        Progress::add(&progress.done, 1);
    }
    if suspects.is_empty() {
        return Ok(());
    }
    std::thread::sleep(opts.recheck_delay);
    side.on_masters(true);
    let again: Vec<&[u8]> = suspects.iter().map(|&i| live_names[i].as_slice()).collect();
    for (&i, l) in suspects.iter().zip(side.read(&again, opts.quick, counters)?) {
        match l.map(|l| judge(side, &l, &file_states[i], records[i], &live_names[i], opts)) {
            Ok(Ok(None)) => tally.changed(1),
            Ok(Ok(Some((kind, detail)))) => tally.differs(kind, &live_names[i], &records[i].key, detail),
            Ok(Err(e)) | Err(e) => {
                let label = side.label(&live_names[i]);
                samples.failure(progress, &label, &live_names[i], e)
            }
        }
    }
    Ok(())
}

/// The record as a [`KeyState`]: restored into the private store and read by type; a stream
/// decoded and digested as a live one is read (`stream_counters`: with Redis 7.0's counters);
/// module types stay [`Content::Opaque`] (compared by `DUMP` bytes in [`judge`]).
fn file_state(con: &mut NodeConn, r: &Record, quick: bool, stream_counters: bool) -> Result<KeyState> {
    let kind = r.kind.as_str();
    let content = match r.kind {
        KeyKind::Other => Content::Opaque(kind.to_string()),
        // Decoded entry by entry into the digest (never a copy of the stream). A stream
        // payload psor cannot decode: compared by DUMP bytes in `judge`.
        KeyKind::Stream => match payload_stream_content(&r.payload, stream_counters) {
            // With --quick, type and size only, as the live side reads it.
            Some(Content::Value { kind, len, .. }) if quick => {
                Content::Value { kind, len, digest: 0, field_expiry: (0, 0) }
            }
            Some(content) => content,
            None => Content::Opaque(kind.to_string()),
        },
        _ => {
            let ok: Value = con.retry("RESTORE", Some(&r.key), |c| {
                redis::cmd("RESTORE").arg(&r.key).arg(0).arg(&r.payload).arg("REPLACE").query(c)
            })?;
            if !matches!(ok, Value::Okay) {
                // An encoding the embedded store does not decode (a hash with field
                // expirations, say): compared by DUMP bytes instead.
                return Ok(KeyState { content: Content::Opaque(kind.to_string()), expire_at: r.expire_at_ms });
            }
            let len_cmd = crate::engine::compare::len_command(kind).expect("a readable kind");
            let len: u64 = con.retry(len_cmd, Some(&r.key), |c| redis::cmd(len_cmd).arg(&r.key).query(c))?;
            if quick {
                Content::Value { kind: kind.to_string(), len, digest: 0, field_expiry: (0, 0) }
            } else {
                read_with(con, &r.key, kind, len)?
            }
        }
    };
    Ok(KeyState { content, expire_at: r.expire_at_ms })
}

/// How the live key differs from the record (`None`: the same).
fn judge(
    side: &mut Side,
    live: &KeyState,
    file: &KeyState,
    r: &Record,
    live_name: &[u8],
    opts: &VerifyOptions,
) -> std::result::Result<Option<(Kind, String)>, String> {
    if matches!(live.content, Content::Missing) {
        return Ok(Some((Kind::Extra, format!("{} in the snapshot only", file.content.kind()))));
    }
    let kind = file.content.kind();
    // A live stream that could not be read by type (a user without `xinfo`, a `file:` store)
    // against a decoded one: compared by bytes, as before streams had a content form.
    let unread = matches!(live.content, Content::Opaque(_));
    if (matches!(file.content, Content::Opaque(_)) || unread) && live.content.kind() == kind {
        // A module type (the embedded store does not decode it), or the above: compare bytes
        // (not with --quick: type and expiry only).
        if !opts.quick && side.dump(live_name)?.as_deref() != Some(&r.payload[..]) {
            return Ok(Some((Kind::Content, format!("{kind}: other DUMP bytes"))));
        }
        let live = KeyState { content: file.content.clone(), expire_at: live.expire_at };
        return Ok(classify(&live, file, opts.ttl_tolerance_ms));
    }
    Ok(classify(live, file, opts.ttl_tolerance_ms))
}
