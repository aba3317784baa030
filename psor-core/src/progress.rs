//! Progress that leaves the library as counters the caller polls.
//!
//! The engine only increments atomics; the CLI (or any embedding program) reads a
//! [`ProgressSnapshot`] as often as it likes from another thread to draw a bar, and may
//! [`Progress::cancel`] the run. Nothing here prints.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Live counters of one run. Use a fresh one per run.
#[derive(Debug, Default)]
pub struct Progress {
    pub(crate) total_keys: AtomicU64,
    pub(crate) examined: AtomicU64,
    pub(crate) matched: AtomicU64,
    pub(crate) done: AtomicU64,
    pub(crate) unchanged: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) vanished: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) scan_finished: AtomicBool,
    cancelled: AtomicBool,
    /// A flag shared with whoever may interrupt the run from outside (the CLI's SIGINT
    /// handler); the run stops as for [`Progress::cancel`] once it is set.
    interrupt: Option<Arc<AtomicBool>>,
    pub(crate) paths: PathCounters,
    masters: Mutex<Vec<Arc<MasterCounters>>>,
}

/// The scan's progress on one master of a cluster (or the one server).
#[derive(Debug, Default)]
pub(crate) struct MasterCounters {
    addr: String,
    total_keys: u64,
    pub(crate) examined: AtomicU64,
    pub(crate) matched: AtomicU64,
}

/// One master's share of the work at one moment.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MasterProgress {
    /// `host:port`.
    pub addr: String,
    /// Its `DBSIZE` when the run started.
    pub total_keys: u64,
    /// Keys its SCAN has looked at (estimated; at most `total_keys`).
    pub examined: u64,
    /// Keys found under the prefix on it.
    pub matched: u64,
}

/// What happened to the keys of a run: live in a [`ProgressSnapshot`], final in an
/// [`crate::engine::Outcome`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Keys found under the prefix.
    pub matched: u64,
    /// Keys deleted / copied / moved (for a dry run: that would be).
    pub done: u64,
    /// Keys whose target already held identical content and expiry.
    pub unchanged: u64,
    /// Keys left alone because the target exists with other content.
    pub conflicts: u64,
    /// Keys that disappeared between the scan and the action.
    pub vanished: u64,
    /// Keys whose expiry passed before they could be copied.
    pub expired: u64,
    /// Keys whose action failed.
    pub failed: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, b: Counts) {
        self.matched += b.matched;
        self.done += b.done;
        self.unchanged += b.unchanged;
        self.conflicts += b.conflicts;
        self.vanished += b.vanished;
        self.expired += b.expired;
        self.failed += b.failed;
    }
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    /// What happened between two snapshots of the same counters (`later - earlier`).
    fn sub(self, b: Counts) -> Counts {
        Counts {
            matched: self.matched.saturating_sub(b.matched),
            done: self.done.saturating_sub(b.done),
            unchanged: self.unchanged.saturating_sub(b.unchanged),
            conflicts: self.conflicts.saturating_sub(b.conflicts),
            vanished: self.vanished.saturating_sub(b.vanished),
            expired: self.expired.saturating_sub(b.expired),
            failed: self.failed.saturating_sub(b.failed),
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProgressSnapshot {
    /// Keys in the whole keyspace when the run started (`DBSIZE`, summed over masters).
    pub total_keys: u64,
    /// Keys SCAN has looked at so far (estimated from calls × COUNT; at most `total_keys`).
    pub examined: u64,
    /// The keys' counts so far.
    #[serde(flatten)]
    pub counts: Counts,
    /// True once every SCAN has finished (the matched count is then final).
    pub scan_finished: bool,
}

impl Progress {
    /// A fresh set of counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fresh counters for a run that also stops once `flag` is set (by a signal handler,
    /// another thread). Several runs may share one flag; [`Progress::cancel`] never sets it.
    pub fn with_interrupt(flag: Arc<AtomicBool>) -> Self {
        Progress { interrupt: Some(flag), ..Self::default() }
    }

    /// The counters now.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let total_keys = self.total_keys.load(Relaxed);
        ProgressSnapshot {
            total_keys,
            examined: self.examined.load(Relaxed).min(total_keys.max(1)),
            counts: Counts {
                matched: self.matched.load(Relaxed),
                done: self.done.load(Relaxed),
                unchanged: self.unchanged.load(Relaxed),
                conflicts: self.conflicts.load(Relaxed),
                vanished: self.vanished.load(Relaxed),
                expired: self.expired.load(Relaxed),
                failed: self.failed.load(Relaxed),
            },
            scan_finished: self.scan_finished.load(Relaxed),
        }
    }

    /// Each master's share of the work (one entry per master once a scan has started).
    pub fn masters(&self) -> Vec<MasterProgress> {
        self.masters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|m| MasterProgress {
                addr: m.addr.clone(),
                total_keys: m.total_keys,
                examined: m.examined.load(Relaxed).min(m.total_keys.max(1)),
                matched: m.matched.load(Relaxed),
            })
            .collect()
    }

    /// Starts counting a run over these masters (`host:port`, `DBSIZE`); sets the total.
    pub(crate) fn start_masters(&self, masters: Vec<(String, u64)>) -> Vec<Arc<MasterCounters>> {
        self.total_keys.store(masters.iter().map(|m| m.1).sum(), Relaxed);
        let counters: Vec<Arc<MasterCounters>> = masters
            .into_iter()
            .map(|(addr, total_keys)| Arc::new(MasterCounters { addr, total_keys, ..MasterCounters::default() }))
            .collect();
        *self.masters.lock().unwrap_or_else(|p| p.into_inner()) = counters.clone();
        counters
    }

    /// Asks the run to stop: the source stops, batches in flight finish, and the engine's
    /// operations return their [`crate::engine::Outcome`] marked `interrupted` with exact
    /// counts (the operations that cannot give a partial result, such as an export, return
    /// [`crate::Error::Interrupted`]).
    pub fn cancel(&self) {
        self.cancelled.store(true, Relaxed);
    }

    /// Clears what [`Progress::cancel`] set, for a run that starts a pass again after the
    /// pipeline cancelled the last one on its own error (a survey whose replica was lost).
    /// An interrupt from outside (the interrupt flag) stays.
    pub(crate) fn resume(&self) {
        self.cancelled.store(false, Relaxed);
    }

    /// True once [`Progress::cancel`] was called or the interrupt flag was set.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Relaxed) || self.interrupt.as_ref().is_some_and(|f| f.load(Relaxed))
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }
}

/// How one key travels (decided in [`crate::engine::transcode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// `RESTORE` of the payload as it is.
    Restore,
    /// `RESTORE` of a payload rewritten for the target.
    Transcoded,
    /// Rebuilt on the target with typed commands.
    Rebuilt,
}

/// How many keys took each path, and how many hashes lost their fields' expiries.
#[derive(Debug, Default)]
pub struct PathCounters {
    restore: AtomicU64,
    transcoded: AtomicU64,
    rebuilt: AtomicU64,
    field_ttls_dropped: AtomicU64,
}

impl PathCounters {
    /// Counts one key written through `path`.
    pub fn add(&self, path: Path) {
        match path {
            Path::Restore => &self.restore,
            Path::Transcoded => &self.transcoded,
            Path::Rebuilt => &self.rebuilt,
        }
        .fetch_add(1, Relaxed);
    }

    /// Counts one hash copied without its fields' expiries.
    pub fn dropped_field_ttls(&self) {
        self.field_ttls_dropped.fetch_add(1, Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> Paths {
        Paths {
            restore: self.restore.load(Relaxed),
            transcoded: self.transcoded.load(Relaxed),
            rebuilt: self.rebuilt.load(Relaxed),
            field_ttls_dropped: self.field_ttls_dropped.load(Relaxed),
        }
    }
}

/// How many keys took each path (`--json`: `"paths"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Paths {
    /// Restored from the source's payload as it is.
    pub restore: u64,
    /// Restored from a payload rewritten for the target.
    pub transcoded: u64,
    /// Rebuilt with typed commands.
    pub rebuilt: u64,
    /// Hashes copied without their fields' expiries (`--drop-field-ttls`).
    pub field_ttls_dropped: u64,
}
