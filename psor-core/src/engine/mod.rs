//! The keyspace engine: scan, delete and copy everything under a prefix, fast.
//!
//! Every operation has the same shape: per master, one scanner thread pages through
//! `SCAN cursor MATCH <escaped prefix>* COUNT n` on its own connection and hands batches of
//! keys over a bounded channel to a few writer threads, each with its own connection, that
//! send one pipeline per batch. Scanning overlaps with writing, several pipelines are in
//! flight, and memory is bounded by `channel depth × batch size` whatever the keyspace size.

pub(crate) mod compare;
mod copy;
mod delete;
mod pacing;
pub(crate) mod router;
mod scan;
pub mod transcode;

pub use copy::{copy, CopyOptions};
pub use delete::{delete, DeleteOptions};
pub use pacing::Pacing;
pub use scan::{scan, KeyStream};

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;
use std::time::Instant;

use crate::connect::{Psor, SlotMap, Topology, SLOTS};
use crate::error::{Error, Result};
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
    /// How many keys reached another server as they were, transcoded, or rebuilt.
    pub paths: transcode::Paths,
}

/// Collects samples of failures and conflicts from several threads, up to a limit.
pub(crate) struct Samples {
    limit: usize,
    failures: Mutex<Vec<KeyFailure>>,
    conflicts: Mutex<Vec<String>>,
}

impl Samples {
    pub(crate) fn new(limit: usize) -> Self {
        Samples { limit, failures: Mutex::new(Vec::new()), conflicts: Mutex::new(Vec::new()) }
    }

    pub(crate) fn failure(&self, progress: &Progress, node: &str, key: &[u8], error: impl ToString) {
        Progress::add(&progress.failed, 1);
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.len() < self.limit {
            f.push(KeyFailure { key: display_key(key), node: node.to_string(), error: error.to_string() });
        }
    }

    pub(crate) fn conflict(&self, progress: &Progress, key: &[u8]) {
        Progress::add(&progress.conflicts, 1);
        let mut c = self.conflicts.lock().unwrap_or_else(|p| p.into_inner());
        if c.len() < self.limit {
            c.push(display_key(key));
        }
    }

    fn into_outcome(self, progress: &Progress, started: Instant, dry_run: bool) -> Outcome {
        let s = progress.snapshot();
        Outcome {
            dry_run,
            counts: s.counts,
            failures: self.failures.into_inner().unwrap_or_else(|p| p.into_inner()),
            conflict_keys: self.conflicts.into_inner().unwrap_or_else(|p| p.into_inner()),
            sample: Vec::new(),
            seconds: started.elapsed().as_secs_f64(),
            paused_seconds: 0.0,
            paths: progress.paths.snapshot(),
        }
    }
}

/// A writer: owns its connections and handles one batch of source keys at a time.
pub(crate) trait Writer: Send {
    fn write(&mut self, keys: Vec<Vec<u8>>, progress: &Progress, samples: &Samples) -> Result<()>;
    /// Cluster slots that redirected or changed master while this writer worked.
    fn unstable(&self) -> BTreeSet<u16> {
        BTreeSet::new()
    }
}

/// Runs scanner → writers on every master and returns the outcome. `make_writer` opens a
/// writer's connections. On a cluster, the slots whose master changed during the run (a
/// failover, a migration, a master that died mid-scan) are swept again at the end with
/// `CLUSTER GETKEYSINSLOT`, so no key is missed; a key may then be seen twice, which every
/// writer tolerates.
pub(crate) fn run<W: Writer>(
    psor: &Psor,
    prefix: &KeyPrefix,
    opts: &EngineOptions,
    progress: &Progress,
    make_writer: impl Fn() -> Result<W> + Sync,
) -> Result<Outcome> {
    let started = Instant::now();
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
    let mut paused = run_pass(psor, prefix, opts, progress, &make_writer, &samples)?;
    if identity(psor)? != before {
        paused += run_pass(psor, prefix, opts, progress, &make_writer, &samples)?;
    }
    progress.scan_finished.store(true, Relaxed);
    let mut outcome = samples.into_outcome(progress, started, false);
    outcome.paused_seconds = paused;
    Ok(outcome)
}

/// One pass: scanners and writers over every master, then (on a cluster) the sweep of the
/// slots that changed. Returns the seconds writers waited for pacing.
fn run_pass<W: Writer>(
    psor: &Psor,
    prefix: &KeyPrefix,
    opts: &EngineOptions,
    progress: &Progress,
    make_writer: &(impl Fn() -> Result<W> + Sync),
    samples: &Samples,
) -> Result<f64> {
    // Open every connection before the first write, so a bad password or an unreachable
    // server stops the run before it has done anything.
    let counters = progress.start_masters(psor.dbsize_per_master()?);
    let mut plans = Vec::new();
    for (node, master) in psor.masters().iter().zip(counters) {
        let scanner = node.connect()?;
        let writers = (0..opts.writers.max(1)).map(|_| make_writer()).collect::<Result<Vec<_>>>()?;
        plans.push((node.clone(), scanner, writers, master));
    }
    let pacer = pacing::Pacer::start(&opts.pacing, psor)?;
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let unstable: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let fail = |e: Error| {
        progress.cancel();
        let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() || matches!(slot.as_ref(), Some(Error::Interrupted)) {
            *slot = Some(e);
        }
    };
    let (fail, samples_ref, unstable_ref, pacer_ref) = (&fail, samples, &unstable, &pacer);
    let mut spare: Option<W> = None;
    let spare_slot = Mutex::new(&mut spare);
    std::thread::scope(|s| {
        for (node, mut scanner, writers, master) in plans {
            let (tx, rx) = crossbeam_channel::bounded::<Vec<Vec<u8>>>(opts.queue_depth.max(1));
            for mut writer in writers {
                let rx = rx.clone();
                let spare_slot = &spare_slot;
                s.spawn(move || {
                    for batch in rx.iter() {
                        if progress.is_cancelled() {
                            return fail(Error::Interrupted);
                        }
                        pacer_ref.admit(batch.len());
                        if let Err(e) = writer.write(batch, progress, samples_ref) {
                            return fail(e);
                        }
                    }
                    unstable_ref.lock().unwrap_or_else(|p| p.into_inner()).extend(writer.unstable());
                    let mut spare = spare_slot.lock().unwrap_or_else(|p| p.into_inner());
                    if spare.is_none() {
                        **spare = Some(writer);
                    }
                });
            }
            drop(rx);
            s.spawn(move || {
                let result =
                    scan::scan_node(&mut scanner, prefix, opts, progress, &master, |batch| tx.send(batch).is_ok());
                match result {
                    Ok(()) => {}
                    // A cluster master that died mid-scan: whoever serves its slots now is
                    // swept at the end instead of failing the run.
                    Err(e) if psor.is_cluster() && router::is_node_gone(&e) => {
                        if let (Topology::Cluster(map), Some(hp)) = (psor.topology(), node.host_port()) {
                            unstable_ref.lock().unwrap_or_else(|p| p.into_inner()).extend(map.slots_of(hp));
                        }
                    }
                    Err(e) => fail(e),
                }
            });
        }
    });
    let paused = pacer.stop();
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut unstable = unstable.into_inner().unwrap_or_else(|p| p.into_inner());
    if let (Topology::Cluster(before), Some(writer)) = (psor.topology(), spare.as_mut()) {
        if let Some(after) = psor.rediscover()? {
            for slot in 0..SLOTS as u16 {
                if before.master_of(slot) != after.master_of(slot) {
                    unstable.insert(slot);
                }
            }
            unstable.extend(before.migrating.iter().chain(&after.migrating).copied());
            sweep(psor, &after, prefix, &unstable, writer, progress, samples)?;
        }
    }
    Ok(paused)
}

/// Feeds every key under `prefix` in `slots` (on whichever master holds it now) to `writer`.
fn sweep<W: Writer>(
    psor: &Psor,
    map: &SlotMap,
    prefix: &KeyPrefix,
    slots: &BTreeSet<u16>,
    writer: &mut W,
    progress: &Progress,
    samples: &Samples,
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
            let keys: Vec<Vec<u8>> = con.retry("CLUSTER GETKEYSINSLOT", None, |c| {
                redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(n).query(c)
            })?;
            let mine: Vec<Vec<u8>> = keys.into_iter().filter(|k| prefix.matches(k)).collect();
            if !mine.is_empty() {
                Progress::add(&progress.matched, mine.len() as u64);
                writer.write(mine, progress, samples)?;
            }
        }
    }
    Ok(())
}

/// Server errors that will fail every key the same way (out of memory, no permission, a
/// read-only replica, disk trouble): they stop the run instead of being counted per key.
pub(crate) fn is_fatal_for_run(err: &redis::ServerError) -> bool {
    matches!(
        err.code(),
        "OOM"
            | "NOPERM"
            | "NOAUTH"
            | "MISCONF"
            | "READONLY"
            | "NOSCRIPT"
            | "WRONGPASS"
            | "EXECABORT"
            | "LOADING"
            | "MASTERDOWN"
    ) || err.details().is_some_and(|d| d.contains("DUMP payload version"))
}
