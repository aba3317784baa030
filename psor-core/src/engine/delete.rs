//! Deleting every key under a prefix: `UNLINK` in pipelined batches, overlapped with the scan.
//!
//! `UNLINK` frees big values in the background, so a large PPT entry never blocks the server
//! the way `DEL` would. A dry run scans and counts, keeps a sample, and writes nothing.

use std::sync::Arc;
use std::time::Instant;

use super::{run, scan, EngineOptions, Outcome, Samples, Writer};
use crate::connect::{NodeConn, Psor};
use crate::error::Result;
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
    con: NodeConn,
}

impl Writer for Unlinker {
    fn write(&mut self, keys: Vec<Vec<u8>>, progress: &Progress, _: &Samples) -> Result<()> {
        // One multi-key UNLINK per batch: on a standalone server every key lives in the same
        // keyspace. Retrying is safe (UNLINK is idempotent); a key deleted by a lost first
        // attempt is then counted as vanished, never as deleted twice.
        let removed: u64 = self.con.retry("UNLINK", keys.first().map(Vec::as_slice), |c| {
            redis::cmd("UNLINK").arg(&keys).query(c)
        })?;
        Progress::add(&progress.done, removed);
        Progress::add(&progress.vanished, (keys.len() as u64).saturating_sub(removed));
        Ok(())
    }
}

/// Deletes (or, dry, counts) every key under `opts.prefix`.
pub fn delete(psor: &Psor, opts: &DeleteOptions, engine: &EngineOptions, progress: Arc<Progress>) -> Result<Outcome> {
    if opts.dry_run {
        let started = Instant::now();
        let mut sample = Vec::new();
        for batch in scan(psor, &opts.prefix, engine, progress.clone())? {
            for key in batch? {
                if sample.len() < opts.sample {
                    sample.push(display_key(&key));
                }
            }
        }
        let mut outcome = Samples::new(0).into_outcome(&progress, started, true);
        outcome.counts.done = outcome.counts.matched;
        outcome.sample = sample;
        return Ok(outcome);
    }
    run(psor, &opts.prefix, engine, &progress, |node| Ok(Unlinker { con: node.connect()? }))
}
