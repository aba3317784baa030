//! Deleting every key under a prefix: `UNLINK` in pipelined batches, overlapped with the scan.
//!
//! `UNLINK` frees big values in the background, so a large PPT entry never blocks the server
//! the way `DEL` would. On one server a batch is one multi-key `UNLINK`; on a cluster the
//! batch is grouped by slot, one `UNLINK` per slot, so no command ever spans two slots. A
//! dry run scans and counts, keeps a sample, and writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use redis::Value;

use super::router::{Routed, Router};
use super::{run, scan, EngineOptions, Outcome, Samples, Writer};
use crate::connect::{key_slot, Psor};
use crate::error::{Error, Result};
use crate::keys::{display_key, KeyPrefix};
use crate::progress::Progress;

/// What to delete.
#[derive(Clone, Debug)]
pub struct DeleteOptions {
    /// Every key starting with these bytes.
    pub prefix: KeyPrefix,
    /// Count and sample, delete nothing.
    pub dry_run: bool,
    /// How many keys a dry run shows.
    pub sample: usize,
}

struct Unlinker {
    router: Router,
    cluster: bool,
}

impl Writer for Unlinker {
    fn write(&mut self, keys: Vec<Vec<u8>>, progress: &Progress, _: &Samples) -> Result<()> {
        let mut groups: BTreeMap<u16, Vec<&Vec<u8>>> = BTreeMap::new();
        for k in &keys {
            groups.entry(if self.cluster { key_slot(k) } else { 0 }).or_default().push(k);
        }
        let cmds: Vec<Routed> = groups
            .into_iter()
            .map(|(slot, ks)| {
                let mut cmd = redis::cmd("UNLINK");
                cmd.arg(ks);
                Routed { slot, cmd }
            })
            .collect();
        // Retrying is safe (UNLINK is idempotent); a key deleted by a lost first attempt is
        // then counted as vanished, never as deleted twice.
        let mut removed = 0u64;
        for (reply, routed) in self.router.run("UNLINK", &cmds)?.into_iter().zip(&cmds) {
            match reply {
                Value::Int(n) => removed += n as u64,
                Value::ServerError(e) => {
                    return Err(Error::Command {
                        addr: self.router.label(routed.slot),
                        op: "UNLINK",
                        key: keys.first().cloned(),
                        source: e.into(),
                    })
                }
                other => {
                    return Err(Error::Protocol {
                        addr: self.router.label(routed.slot),
                        op: "UNLINK",
                        detail: format!("{other:?}"),
                    })
                }
            }
        }
        Progress::add(&progress.done, removed);
        Progress::add(&progress.vanished, (keys.len() as u64).saturating_sub(removed));
        Ok(())
    }

    fn unstable(&self) -> BTreeSet<u16> {
        self.router.unstable.clone()
    }
}

/// Deletes (or, dry, counts) every key under `opts.prefix`.
pub fn delete(psor: &Psor, opts: &DeleteOptions, engine: &EngineOptions, progress: Arc<Progress>) -> Result<Outcome> {
    if opts.dry_run {
        let started = Instant::now();
        let base = progress.snapshot().counts;
        let mut sample = Vec::new();
        for batch in scan(psor, &opts.prefix, engine, progress.clone())? {
            for key in batch? {
                if sample.len() < opts.sample {
                    sample.push(display_key(&key));
                }
            }
        }
        let mut outcome = Samples::new(0).into_outcome(&progress, base, started, true);
        outcome.counts.done = outcome.counts.matched;
        outcome.sample = sample;
        return Ok(outcome);
    }
    run(psor, &opts.prefix, engine, &progress, || {
        Ok(Unlinker { router: Router::new(psor)?, cluster: psor.is_cluster() })
    })
}
