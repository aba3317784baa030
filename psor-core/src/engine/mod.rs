//! The keyspace engine: scan, delete and copy everything under a prefix, fast.
//!
//! Every operation has the same shape, built on [`pipeline`]: per master, one scanner thread
//! pages through `SCAN cursor MATCH <escaped prefix>* COUNT n` on its own connection and
//! hands batches of keys over a bounded channel to a few writer threads, each with its own
//! connection, that send one pipeline per batch. Scanning overlaps with writing, several
//! pipelines are in flight, and memory is bounded by `channel depth × batch size` whatever
//! the keyspace size.

pub(crate) mod compare;
mod copy;
mod delete;
pub(crate) mod pacing;
pub(crate) mod pipeline;
pub(crate) mod router;
mod scan;
pub mod transcode;

pub use copy::{copy, CopyOptions};
pub use delete::{delete, DeleteOptions};
pub use pacing::Pacing;
pub(crate) use scan::{replica_lost, scan_node, scan_node_with, scan_on, side_for_key, ReadSide, ValueReads};
pub use scan::{scan, KeyStream};

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::connect::{Psor, ReadChoice, ReadFrom, SlotMap, Topology, DEFAULT_REPLICA_WAIT, SLOTS};
use crate::error::{classify_server, Error, ErrorClass, Result};
use crate::keys::{display_key, KeyPrefix};
use crate::progress::{Counts, Progress};

/// Tuning shared by every operation. The defaults saturate a single Redis server.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// `SCAN ... COUNT`: keys the server examines per call.
    pub scan_count: usize,
    /// Keys per batch handed to a writer (one pipeline).
    pub batch_size: usize,
    /// Writer threads per master, each with its own connection.
    pub writers: usize,
    /// Batches buffered between the scanner and the writers of one master.
    pub queue_depth: usize,
    /// How many failures and conflicts are kept (with their keys) for the report.
    pub keep_samples: usize,
    /// Staying gentle on a live server: a keys/s cap and a latency bound.
    pub pacing: Pacing,
    /// Copy hashes with field expirations to a target without them, dropping the fields'
    /// expiries (counted in [`Outcome::paths`]); otherwise such a copy is refused.
    pub drop_field_ttls: bool,
    /// The biggest payload one `RESTORE` may carry when the target's `proto-max-bulk-len`
    /// cannot be read (`None`: [`transcode::DEFAULT_MAX_PAYLOAD`]).
    pub max_payload: Option<u64>,
    /// Where the scan reads (`--read-from`): the masters, or caught-up replicas.
    pub read_from: ReadFrom,
    /// How long to wait, at the start of the run, for a replica to catch up with its
    /// master's replication offset before it is given up on.
    pub replica_wait: std::time::Duration,
    /// Drop a key SCAN returns again among a master's last 16,384 (its table shrank under the
    /// cursor), so what the run counts holds each key once: `survey`, `status` and `verify`
    /// set it. Off by default: it costs a copy of every key, and delete and copy count what
    /// the servers confirmed, which a repeat cannot change (a second `UNLINK` removes nothing).
    pub drop_repeats: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            scan_count: 1000,
            batch_size: 1000,
            writers: 2,
            queue_depth: 4,
            keep_samples: 100,
            pacing: Pacing::default(),
            drop_field_ttls: false,
            max_payload: None,
            read_from: ReadFrom::Master,
            replica_wait: DEFAULT_REPLICA_WAIT,
            drop_repeats: false,
        }
    }
}

/// One key whose action failed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyFailure {
    /// The key, escaped for display.
    pub key: String,
    /// `host:port` of the server.
    pub node: String,
    /// What the server said.
    pub error: String,
}

/// What a run did. Counts are exact for the keys the run saw.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Outcome {
    /// Nothing was written (`--dry-run`).
    pub dry_run: bool,
    /// What happened to the keys.
    #[serde(flatten)]
    pub counts: Counts,
    /// The first failures, with their keys.
    pub failures: Vec<KeyFailure>,
    /// The first conflicting keys, escaped for display.
    pub conflict_keys: Vec<String>,
    /// Dry run: the first keys that would be acted on, escaped for display.
    pub sample: Vec<String>,
    /// Wall time of the run.
    pub seconds: f64,
    /// Time writers waited because of pacing (`rate`, `max_latency`).
    pub paused_seconds: f64,
    /// The run was stopped ([`Progress::cancel`], Ctrl-C) before the end: the counts are
    /// exact for what was done, and running the same operation again finishes the job.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// How many keys reached another server as they were, transcoded, or rebuilt.
    pub paths: transcode::Paths,
    /// Where each master's keys were read (`--read-from replica…`), and any fall back to
    /// the master; empty when every read went to the masters by choice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read_from: Vec<ReadChoice>,
}

/// Collects samples of failures and of keys (conflicts, expired, would-be-restored…) from
/// several threads, up to a limit. The one such collector: the engine's runs and the
/// snapshots' use it alike.
pub(crate) struct Samples {
    limit: usize,
    failures: Mutex<Vec<KeyFailure>>,
    conflicts: Mutex<Vec<String>>,
}

impl Samples {
    pub(crate) fn new(limit: usize) -> Self {
        Samples { limit, failures: Mutex::new(Vec::new()), conflicts: Mutex::new(Vec::new()) }
    }

    /// Counts a failed key and keeps it as a sample.
    pub(crate) fn failure(&self, progress: &Progress, node: &str, key: &[u8], error: impl ToString) {
        Progress::add(&progress.failed, 1);
        self.sample_failure(node, key, error);
    }

    /// Keeps a failed key as a sample (the caller counts it).
    pub(crate) fn sample_failure(&self, node: &str, key: &[u8], error: impl ToString) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.len() < self.limit {
            f.push(KeyFailure { key: display_key(key), node: node.to_string(), error: error.to_string() });
        }
    }

    /// Counts a conflicting key and keeps it as a sample.
    pub(crate) fn conflict(&self, progress: &Progress, key: &[u8]) {
        Progress::add(&progress.conflicts, 1);
        self.key(key);
    }

    /// Keeps a key as a sample (the caller counts it).
    pub(crate) fn key(&self, key: &[u8]) {
        let mut c = self.conflicts.lock().unwrap_or_else(|p| p.into_inner());
        if c.len() < self.limit {
            c.push(display_key(key));
        }
    }

    /// The failures kept (their count is in the run's `Progress`).
    pub(crate) fn into_failures(self) -> Vec<KeyFailure> {
        self.failures.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    /// The failures and the keys kept.
    pub(crate) fn into_parts(self) -> (Vec<KeyFailure>, Vec<String>) {
        (
            self.failures.into_inner().unwrap_or_else(|p| p.into_inner()),
            self.conflicts.into_inner().unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// The outcome of a run whose counters stood at `base` when it started: its counts are
    /// its own, whatever earlier runs added to a shared `progress`.
    pub(crate) fn into_outcome(self, progress: &Progress, base: Counts, started: Instant, dry_run: bool) -> Outcome {
        let s = progress.snapshot();
        Outcome {
            dry_run,
            counts: s.counts - base,
            failures: self.failures.into_inner().unwrap_or_else(|p| p.into_inner()),
            conflict_keys: self.conflicts.into_inner().unwrap_or_else(|p| p.into_inner()),
            sample: Vec::new(),
            seconds: started.elapsed().as_secs_f64(),
            paused_seconds: 0.0,
            interrupted: false,
            paths: progress.paths.snapshot(),
            read_from: Vec::new(),
        }
    }
}

/// A writer: owns its connections and handles one batch of source keys at a time.
pub(crate) trait Writer: Send {
    fn write(&mut self, keys: Vec<Vec<u8>>, progress: &Progress, samples: &Samples) -> Result<()>;
    /// Writes whatever the writer still holds back (a cluster delete buffers keys per slot
    /// across batches). Called when the writer's queue closes, when the run is interrupted
    /// (what it holds was handed to it, so it is finished like the batch in hand), and after
    /// the sweep.
    fn finish(&mut self, _progress: &Progress, _samples: &Samples) -> Result<()> {
        Ok(())
    }
    /// Cluster slots that redirected or changed master while this writer worked.
    fn unstable(&self) -> BTreeSet<u16> {
        BTreeSet::new()
    }
}

/// A [`Writer`] as a worker of the [`pipeline`]: one lane per master, its scanner as the
/// source, no sink.
struct Writes<'a, W> {
    writer: W,
    samples: &'a Samples,
}

impl<W: Writer> pipeline::Stage for Writes<'_, W> {
    type Item = Vec<u8>;
    type Out = ();
    type Error = Error;
    fn handle(&mut self, keys: Vec<Vec<u8>>, progress: &Progress) -> Result<Option<()>> {
        self.writer.write(keys, progress, self.samples).map(|()| None)
    }
    fn finish(&mut self, progress: &Progress) -> Result<Option<()>> {
        self.writer.finish(progress, self.samples).map(|()| None)
    }
}

/// Runs scanner → writers on every master and returns the outcome. `make_writer` opens a
/// writer's connections. On a cluster, the slots whose master changed during the run (a
/// failover, a migration, a master that died mid-scan) are swept again at the end with
/// `CLUSTER GETKEYSINSLOT`, so no key is missed; a key may then be seen twice, which every
/// writer tolerates.
///
/// A cancelled run ([`Progress::cancel`]) stops its scanners, lets every writer finish the
/// write it is in (a batch, or under a latency bound a chunk of one; what is still queued is
/// dropped unwritten), skips the final sweep and returns its outcome marked `interrupted`:
/// every count is what the server confirmed.
pub(crate) fn run<W: Writer>(
    psor: &Psor,
    prefix: &KeyPrefix,
    opts: &EngineOptions,
    progress: &Progress,
    make_writer: impl Fn() -> Result<W> + Sync,
) -> Result<Outcome> {
    run_reading(psor, prefix, opts, progress, |_| make_writer())
}

/// [`run`] for writers that also read values where the scan reads (`--read-from`):
/// `make_writer` gets the pass's read sides (one per master, shared with its scanner).
pub(crate) fn run_reading<W: Writer>(
    psor: &Psor,
    prefix: &KeyPrefix,
    opts: &EngineOptions,
    progress: &Progress,
    make_writer: impl Fn(&[Arc<scan::ReadSide>]) -> Result<W> + Sync,
) -> Result<Outcome> {
    // Replicas are chosen (and waited for) once, before the first pass.
    let reads = scan::ReadSide::choose(psor, opts)?;
    run_reading_on(psor, reads, prefix, opts, progress, make_writer)
}

/// [`run_reading`] on read sides the caller chose ([`ReadSide::choose`]): a run that reads
/// several times on one PSOR (verify's two passes) waits for its replicas once.
pub(crate) fn run_reading_on<W: Writer>(
    psor: &Psor,
    reads: Vec<Arc<scan::ReadSide>>,
    prefix: &KeyPrefix,
    opts: &EngineOptions,
    progress: &Progress,
    make_writer: impl Fn(&[Arc<scan::ReadSide>]) -> Result<W> + Sync,
) -> Result<Outcome> {
    let started = Instant::now();
    // Under a latency bound, SCAN COUNT and batch sizes come from the bound (pacing.rs).
    let shaped = pacing::shape(opts);
    let opts = &shaped;
    let base = progress.snapshot().counts;
    let samples = Samples::new(opts.keep_samples);
    // A single server that is not the same server at the end (a Sentinel failover, a
    // restart that reloaded a snapshot) may have lost writes of this run and hidden keys
    // from its scan: one more full pass settles it. A cluster is settled by the slot sweep.
    let identity = |psor: &Psor| -> Result<Vec<(String, String)>> {
        if psor.is_cluster() {
            return Ok(Vec::new());
        }
        psor.masters().iter().map(|n| n.connect()?.identity()).collect()
    };
    let before = identity(psor)?;
    let mut paused = run_pass(psor, &reads, prefix, opts, progress, &make_writer, &samples)?;
    if !progress.is_cancelled() && identity(psor)? != before {
        // The master changed under the run: the second pass reads the master now.
        paused += run_pass(psor, &scan::ReadSide::masters(psor), prefix, opts, progress, &make_writer, &samples)?;
    }
    let interrupted = progress.is_cancelled();
    progress.scan_finished.store(!interrupted, Relaxed);
    let mut outcome = samples.into_outcome(progress, base, started, false);
    outcome.paused_seconds = paused;
    outcome.interrupted = interrupted;
    outcome.read_from = reads.iter().filter_map(|r| r.choice()).collect();
    Ok(outcome)
}

/// One pass: scanners and writers over every master, then (on a cluster) the sweep of the
/// slots that changed. Returns the seconds writers waited for pacing.
fn run_pass<W: Writer>(
    psor: &Psor,
    reads: &[Arc<scan::ReadSide>],
    prefix: &KeyPrefix,
    opts: &EngineOptions,
    progress: &Progress,
    make_writer: &(impl Fn(&[Arc<scan::ReadSide>]) -> Result<W> + Sync),
    samples: &Samples,
) -> Result<f64> {
    // Open every connection before the first write, so a bad password or an unreachable
    // server stops the run before it has done anything.
    let counters = progress.start_masters(psor.dbsize_per_master()?);
    let mut plans = Vec::new();
    for ((node, master), read) in psor.masters().iter().zip(counters).zip(reads) {
        // The master's scan reads the node `--read-from` chose (the master by default).
        let scanner = read.connect()?;
        let writers = (0..opts.writers.max(1)).map(|_| make_writer(reads)).collect::<Result<Vec<_>>>()?;
        plans.push((node.clone(), read, scanner, writers, master));
    }
    let pacer = pacing::Pacer::start_writers(opts, psor)?;
    let unstable: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let unstable_ref = &unstable;
    let lanes = plans
        .into_iter()
        .map(|(node, read, scanner, writers, master)| {
            let workers = writers.into_iter().map(|writer| Writes { writer, samples }).collect();
            pipeline::Lane::new(workers, move |emit| {
                match read.scan(scanner, Some(prefix), opts, progress, &master, emit) {
                    Ok(()) => Ok(()),
                    // A cluster master that died mid-scan: whoever serves its slots now is
                    // swept at the end instead of failing the run.
                    Err(e) if psor.is_cluster() && router::is_node_gone(&e) => {
                        if let (Topology::Cluster(map), Some(hp)) = (psor.topology(), node.host_port()) {
                            unstable_ref.lock().unwrap_or_else(|p| p.into_inner()).extend(map.slots_of(hp));
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            })
        })
        .collect();
    let run = pipeline::Pipeline { progress, pacer: Some(&pacer), queue_depth: opts.queue_depth, out_depth: 1 }
        .run(lanes, |()| Ok(()));
    let paused = pacer.stop();
    let ended = run?;
    if progress.is_cancelled() {
        return Ok(paused);
    }
    let mut unstable = unstable.into_inner().unwrap_or_else(|p| p.into_inner());
    unstable.extend(ended.iter().flat_map(|w| w.writer.unstable()));
    let mut spare = ended.into_iter().next().map(|w| w.writer);
    if let (Topology::Cluster(before), Some(writer)) = (psor.topology(), spare.as_mut()) {
        if let Some(after) = psor.rediscover()? {
            unstable.extend(moved_slots(before, &after));
            let swept = sweep_slots(psor, &after, std::slice::from_ref(prefix), &unstable, progress, |keys| {
                writer.write(keys, progress, samples)?;
                Ok(true)
            });
            // What the sweep handed the writer is written (and counted) before the run ends,
            // interrupted or not.
            writer.finish(progress, samples)?;
            match swept {
                // Interrupted during the sweep: the outcome says so.
                Err(Error::Interrupted) => {}
                other => other?,
            }
        }
    }
    Ok(paused)
}

/// The slots whose master differs between two slot maps, and those migrating in either: the
/// SCAN of their old master may have missed keys.
pub(crate) fn moved_slots(before: &SlotMap, after: &SlotMap) -> BTreeSet<u16> {
    (0..SLOTS as u16)
        .filter(|&s| before.master_of(s) != after.master_of(s))
        .chain(before.migrating.iter().chain(&after.migrating).copied())
        .collect()
}

/// The cluster slot sweep, the one copy of it: feeds `emit` every key under one of
/// `prefixes` in `slots`, read with `CLUSTER GETKEYSINSLOT` from whichever master of `map`
/// holds it now (each found key is counted as matched). Stops with `Ok` when `emit` says
/// `false`, with [`Error::Interrupted`] when `progress` is cancelled.
pub(crate) fn sweep_slots(
    psor: &Psor,
    map: &SlotMap,
    prefixes: &[KeyPrefix],
    slots: &BTreeSet<u16>,
    progress: &Progress,
    mut emit: impl FnMut(Vec<Vec<u8>>) -> Result<bool>,
) -> Result<()> {
    if slots.is_empty() {
        return Ok(());
    }
    for master in &map.masters {
        let mut con = psor.node_at(master).connect()?;
        let mut pipe = redis::pipe();
        for &slot in slots {
            pipe.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(slot);
        }
        let counts: Vec<u64> = con.retry("CLUSTER COUNTKEYSINSLOT", None, |c| pipe.query(c))?;
        for (&slot, n) in slots.iter().zip(counts) {
            if n == 0 {
                continue;
            }
            if progress.is_cancelled() {
                return Err(Error::Interrupted);
            }
            let keys: Vec<Vec<u8>> = con.retry("CLUSTER GETKEYSINSLOT", None, |c| {
                redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(n).query(c)
            })?;
            let mine: Vec<Vec<u8>> = keys.into_iter().filter(|k| prefixes.iter().any(|p| p.matches(k))).collect();
            if mine.is_empty() {
                continue;
            }
            Progress::add(&progress.matched, mine.len() as u64);
            if !emit(mine)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A per-key error reply that stops the run instead of being counted for its key. The router
/// has already redirected and waited out what [`crate::error::classify`] calls transient, so
/// a reply that is still not [`ErrorClass::PerKey`] (out of memory, no permission, disk
/// trouble, a server still read-only or loading after every resend) will fail every key.
pub(crate) fn is_fatal_for_run(err: &redis::ServerError) -> bool {
    classify_server(err) != ErrorClass::PerKey
}
