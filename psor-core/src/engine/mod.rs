//! The keyspace engine: scan, delete and copy everything under a prefix, fast.
//!
//! Every operation has the same shape: per master, one scanner thread pages through
//! `SCAN cursor MATCH <escaped prefix>* COUNT n` on its own connection and hands batches of
//! keys over a bounded channel to a few writer threads, each with its own connection, that
//! send one pipeline per batch. Scanning overlaps with writing, several pipelines are in
//! flight, and memory is bounded by `channel depth × batch size` whatever the keyspace size.

mod compare;
mod copy;
mod delete;
mod scan;

pub use copy::{copy, CopyOptions};
pub use delete::{delete, DeleteOptions};
pub use scan::{scan, KeyStream};

use std::sync::Mutex;
use std::time::Instant;

use crate::connect::{Node, Psor};
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
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { scan_count: 1000, batch_size: 1000, writers: 2, queue_depth: 4, keep_samples: 100 }
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
        }
    }
}

/// A writer: owns its connections and handles one batch of source keys at a time.
pub(crate) trait Writer: Send {
    fn write(&mut self, keys: Vec<Vec<u8>>, progress: &Progress, samples: &Samples) -> Result<()>;
}

/// Runs scanner → writers on every master and returns the outcome. `make_writer` opens a
/// writer's connections for the master it serves.
pub(crate) fn run<W: Writer>(
    psor: &Psor,
    prefix: &KeyPrefix,
    opts: &EngineOptions,
    progress: &Progress,
    make_writer: impl Fn(&Node) -> Result<W> + Sync,
) -> Result<Outcome> {
    let started = Instant::now();
    progress.total_keys.store(psor.dbsize()?, std::sync::atomic::Ordering::Relaxed);
    let samples = Samples::new(opts.keep_samples);
    // Open every connection before the first write, so a bad password or an unreachable
    // server stops the run before it has done anything.
    let mut plans = Vec::new();
    for node in psor.masters() {
        let scanner = node.connect()?;
        let writers = (0..opts.writers.max(1)).map(|_| make_writer(node)).collect::<Result<Vec<_>>>()?;
        plans.push((scanner, writers));
    }
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let fail = |e: Error| {
        progress.cancel();
        let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() || matches!(slot.as_ref(), Some(Error::Interrupted)) {
            *slot = Some(e);
        }
    };
    let (fail, samples_ref) = (&fail, &samples);
    std::thread::scope(|s| {
        for (mut scanner, writers) in plans {
            let (tx, rx) = crossbeam_channel::bounded::<Vec<Vec<u8>>>(opts.queue_depth.max(1));
            for mut writer in writers {
                let rx = rx.clone();
                s.spawn(move || {
                    for batch in rx.iter() {
                        if progress.is_cancelled() {
                            return fail(Error::Interrupted);
                        }
                        if let Err(e) = writer.write(batch, progress, samples_ref) {
                            return fail(e);
                        }
                    }
                });
            }
            drop(rx);
            s.spawn(move || {
                let result = scan::scan_node(&mut scanner, prefix, opts, progress, |batch| tx.send(batch).is_ok());
                if let Err(e) = result {
                    fail(e);
                }
            });
        }
    });
    progress.scan_finished.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(samples.into_outcome(progress, started, false))
}

/// Server errors that will fail every key the same way (out of memory, no permission, a
/// read-only replica, disk trouble): they stop the run instead of being counted per key.
pub(crate) fn is_fatal_for_run(err: &redis::ServerError) -> bool {
    matches!(err.code(), "OOM" | "NOPERM" | "NOAUTH" | "MISCONF" | "READONLY" | "NOSCRIPT" | "WRONGPASS")
        || err.details().is_some_and(|d| d.contains("DUMP payload version"))
}
