//! Deleting every key under a prefix: `UNLINK` in pipelined batches, overlapped with the scan.
//!
//! `UNLINK` frees big values in the background, so a large PPT entry never blocks the server
//! the way `DEL` would. On one server a batch is one multi-key `UNLINK`. On a cluster a
//! command may not span two slots, and a master's batch of 1000 keys is spread over its
//! ~5461 slots, so each writer keeps a buffer per slot across batches and sends a slot's keys
//! as one `UNLINK` when it holds [`SLOT_FLUSH`] of them; when all its buffers together reach
//! [`BUFFER_CAP`] keys it sends the fullest slots, keys that waited [`MAX_AGE`] go with the
//! next batch, and what is left is sent when the writer's queue closes or the run is
//! interrupted. A writer's memory is thus bounded by the cap, not the keyspace, and only what
//! a server confirmed is counted as deleted. A dry run scans and counts, keeps a sample, and
//! writes nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// A slot's buffer is sent as one `UNLINK` once it holds this many keys.
const SLOT_FLUSH: usize = 100;
/// Keys one cluster writer may hold back over all slots; past it, the fullest slots are sent
/// until half of it is left. With one key at most ~1 KiB (a PSOR key is far shorter), this
/// bounds a writer's buffers to a few MiB whatever the keyspace.
const BUFFER_CAP: usize = 20_000;
/// A slot's keys held back this long are sent with the next batch the writer gets, so a
/// slow run still makes progress a user can see (what is left goes out at the end anyway).
const MAX_AGE: Duration = Duration::from_secs(5);

/// Keys of one slot held back until the slot has enough of them for one `UNLINK`.
struct SlotBuffer {
    since: Instant,
    keys: Vec<Vec<u8>>,
}

struct Unlinker {
    router: Router,
    cluster: bool,
    /// Cluster only: keys per slot, kept across batches (a batch of 1000 keys spread over
    /// 5461 slots of a master would otherwise be ~1000 single-key `UNLINK`s).
    buffers: HashMap<u16, SlotBuffer>,
    buffered: usize,
    /// Keys per pipeline when buffers are sent (the engine's batch size).
    pipeline_keys: usize,
    last_age_check: Instant,
}

impl Unlinker {
    /// Sends one `UNLINK` per group, `pipeline_keys` keys per pipeline, and counts what the
    /// servers confirmed: a key not reported removed had vanished (or was removed by a lost
    /// first attempt of a retried UNLINK, which is idempotent), never deleted twice.
    fn unlink(&mut self, groups: Vec<(u16, Vec<Vec<u8>>)>, progress: &Progress) -> Result<()> {
        let mut groups = groups.into_iter().peekable();
        while groups.peek().is_some() {
            let mut cmds: Vec<Routed> = Vec::new();
            let mut firsts: Vec<Option<Vec<u8>>> = Vec::new();
            let mut sent = 0usize;
            while sent < self.pipeline_keys.max(1) {
                let Some((slot, ks)) = groups.next() else { break };
                sent += ks.len();
                firsts.push(ks.first().cloned());
                let mut cmd = redis::cmd("UNLINK");
                cmd.arg(ks);
                cmds.push(Routed { slot, cmd });
            }
            let mut removed = 0u64;
            let replies = self.router.run("UNLINK", &cmds)?;
            for ((reply, routed), first) in replies.into_iter().zip(&cmds).zip(firsts) {
                match reply {
                    Value::Int(n) => removed += n as u64,
                    Value::ServerError(e) => {
                        return Err(Error::Command {
                            addr: self.router.label(routed.slot),
                            op: "UNLINK",
                            key: first,
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
            Progress::add(&progress.vanished, (sent as u64).saturating_sub(removed));
        }
        Ok(())
    }

    /// Takes the buffers of `slots` out, in slot order.
    fn take(&mut self, slots: BTreeSet<u16>) -> Vec<(u16, Vec<Vec<u8>>)> {
        slots
            .into_iter()
            .filter_map(|slot| {
                let b = self.buffers.remove(&slot)?;
                self.buffered -= b.keys.len();
                Some((slot, b.keys))
            })
            .collect()
    }
}

impl Writer for Unlinker {
    fn write(&mut self, keys: Vec<Vec<u8>>, progress: &Progress, _: &Samples) -> Result<()> {
        if !self.cluster {
            return self.unlink(vec![(0, keys)], progress);
        }
        let now = Instant::now();
        let mut full = BTreeSet::new();
        for k in keys {
            let slot = key_slot(&k);
            let b = self.buffers.entry(slot).or_insert_with(|| SlotBuffer { since: now, keys: Vec::new() });
            b.keys.push(k);
            self.buffered += 1;
            if b.keys.len() == SLOT_FLUSH {
                full.insert(slot);
            }
        }
        if self.buffered > BUFFER_CAP {
            // Past the cap: the fullest slots go first, until half the cap is left.
            let mut by_size: Vec<(usize, u16)> =
                self.buffers.iter().filter(|(s, _)| !full.contains(s)).map(|(&s, b)| (b.keys.len(), s)).collect();
            by_size.sort_unstable_by(|a, b| b.cmp(a));
            let mut left = self.buffered - full.iter().map(|s| self.buffers[s].keys.len()).sum::<usize>();
            for (n, slot) in by_size {
                if left <= BUFFER_CAP / 2 {
                    break;
                }
                left -= n;
                full.insert(slot);
            }
        }
        if now.duration_since(self.last_age_check) >= Duration::from_secs(1) {
            self.last_age_check = now;
            let old: Vec<u16> = self
                .buffers
                .iter()
                .filter(|(s, b)| now.duration_since(b.since) >= MAX_AGE && !full.contains(s))
                .map(|(&s, _)| s)
                .collect();
            full.extend(old);
        }
        let groups = self.take(full);
        self.unlink(groups, progress)
    }

    fn finish(&mut self, progress: &Progress, _: &Samples) -> Result<()> {
        let all: BTreeSet<u16> = self.buffers.keys().copied().collect();
        let groups = self.take(all);
        self.unlink(groups, progress)
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
        let mut stream = scan(psor, &opts.prefix, engine, progress.clone())?;
        for batch in stream.by_ref() {
            for key in batch? {
                if sample.len() < opts.sample {
                    sample.push(display_key(&key));
                }
            }
        }
        let mut outcome = Samples::new(0).into_outcome(&progress, base, started, true);
        outcome.read_from = stream.read_from();
        outcome.counts.done = outcome.counts.matched;
        outcome.sample = sample;
        return Ok(outcome);
    }
    run(psor, &opts.prefix, engine, &progress, || {
        Ok(Unlinker {
            router: Router::new(psor)?,
            cluster: psor.is_cluster(),
            buffers: HashMap::new(),
            buffered: 0,
            pipeline_keys: engine.batch_size,
            last_age_check: Instant::now(),
        })
    })
}
