//! Deleting every key under a prefix: `UNLINK` in pipelined batches, overlapped with the scan.
//!
//! `UNLINK` frees big values in the background, so a large PPT entry never blocks the server
//! the way `DEL` would. On one server a batch is one multi-key `UNLINK`. On a cluster a
//! command may not span two slots, and SCAN returns a master's keys spread over its ~5461
//! slots (Redis before 7.4 walks one hash table, not slot by slot), so the run keeps one
//! buffer per slot, shared by every writer of every master ([`SlotBuffers`]), across
//! batches: a slot's keys go out as one `UNLINK` when the slot holds [`SLOT_FLUSH`] of them
//! (fewer under a latency bound: the shaped batch size); when all buffers together take
//! [`BUFFER_BYTES`] of memory the fullest slots are sent until [`BUFFER_LOW`] is left; a
//! slot whose keys waited [`MAX_AGE`] goes with the next batch; and what is left is sent
//! when the last writer finishes (its queue closed, or the run was interrupted). The run's
//! memory is thus bounded by the cap, not the keyspace, and only what a server confirmed
//! is counted as deleted. A dry run scans and counts, keeps a sample, and writes nothing.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Value;

use super::router::{Routed, Router};
use super::{pacing, run, scan, EngineOptions, Outcome, Samples, Writer};
use crate::connect::{key_slot, Psor, SLOTS};
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

/// A slot's buffer is sent as one `UNLINK` once it holds this many keys (or the run's batch
/// size, if smaller: under `--max-latency` one command carries no more than a write may).
/// Removing 1000 short keys is a few hundred microseconds of server time, as one batch is.
const SLOT_FLUSH: usize = 1000;
/// The memory every slot buffer of a run may take together (key bytes plus 4 bytes per key,
/// counted by allocated capacity). 16 MiB hold ~500,000 PSOR-length keys, ~30 per slot:
/// the run's peak RSS stays far under the 64 MiB every command keeps to.
const BUFFER_BYTES: usize = 16 << 20;
/// Past [`BUFFER_BYTES`], the fullest slots are sent until the buffers take this much.
const BUFFER_LOW: usize = BUFFER_BYTES / 4 * 3;
/// A slot's keys held back this long are sent with the next batch a writer gets, so a slow
/// (paced) run still makes progress a user can see (what is left goes out at the end anyway).
/// Long enough that a full-speed run's slots fill first: at 200,000 keys/s over 16,384 slots
/// a slot gains ~12 keys a second.
const MAX_AGE: Duration = Duration::from_secs(10);
/// How often the buffers' ages are looked at.
const AGE_CHECK: Duration = Duration::from_secs(1);

/// Keys of one slot held back until the slot has enough of them for one `UNLINK`: the key
/// bytes end to end and where each key ends, so a held key costs no allocation of its own.
#[derive(Default)]
struct SlotBuffer {
    since: Option<Instant>,
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl SlotBuffer {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Allocated bytes (what the cap counts).
    fn mem(&self) -> usize {
        self.bytes.capacity() + 4 * self.ends.capacity()
    }

    fn keys(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0usize;
        self.ends.iter().map(move |&end| {
            let key = &self.bytes[start..end as usize];
            start = end as usize;
            key
        })
    }
}

/// Every slot's buffer of one run, shared by all its writers (a slot's keys come to any
/// writer of its master's lane; one buffer per writer would split them).
pub(crate) struct SlotBuffers {
    slots: Vec<SlotBuffer>,
    /// Allocated bytes over all slots.
    mem: usize,
    /// Writers that have not finished yet: the last one to finish sends what is left.
    active: usize,
    last_age_check: Instant,
    /// Keys that make a slot full.
    slot_flush: usize,
}

impl SlotBuffers {
    fn new(slot_flush: usize) -> SlotBuffers {
        SlotBuffers {
            slots: (0..SLOTS).map(|_| SlotBuffer::default()).collect(),
            mem: 0,
            active: 0,
            last_age_check: Instant::now(),
            slot_flush: slot_flush.clamp(1, SLOT_FLUSH),
        }
    }

    /// Takes the buffers of `slots` out, in slot order (their commands are built one
    /// pipeline at a time, so the keys are not held twice).
    fn take(&mut self, slots: BTreeSet<u16>) -> Vec<(u16, SlotBuffer)> {
        let mut taken = Vec::with_capacity(slots.len());
        for slot in slots {
            let b = std::mem::take(&mut self.slots[slot as usize]);
            if b.len() == 0 {
                continue;
            }
            self.mem -= b.mem();
            taken.push((slot, b));
        }
        taken
    }

    /// Adds a batch's keys and takes out what is due: full slots, the fullest past the
    /// memory cap, and (once a second) slots whose keys waited [`MAX_AGE`].
    fn add(&mut self, keys: Vec<Vec<u8>>) -> Vec<(u16, SlotBuffer)> {
        let now = Instant::now();
        let mut full = BTreeSet::new();
        for k in keys {
            let slot = key_slot(&k);
            let b = &mut self.slots[slot as usize];
            let before = b.mem();
            b.since.get_or_insert(now);
            b.bytes.extend_from_slice(&k);
            // A key is at most 512 MiB and a buffer is sent long before 4 GiB.
            b.ends.push(b.bytes.len() as u32);
            self.mem = self.mem + b.mem() - before;
            if b.len() == self.slot_flush {
                full.insert(slot);
            }
        }
        let mut due = self.take(full);
        if self.mem > BUFFER_BYTES {
            // Past the cap: the fullest slots go first, until the low mark is left.
            let mut by_size: Vec<(usize, u16)> =
                self.slots.iter().enumerate().filter(|(_, b)| b.len() > 0).map(|(s, b)| (b.len(), s as u16)).collect();
            by_size.sort_unstable_by(|a, b| b.cmp(a));
            let mut left = self.mem;
            let mut fullest = BTreeSet::new();
            for (_, slot) in by_size {
                if left <= BUFFER_LOW {
                    break;
                }
                left -= self.slots[slot as usize].mem();
                fullest.insert(slot);
            }
            due.extend(self.take(fullest));
        }
        if now.duration_since(self.last_age_check) >= AGE_CHECK {
            self.last_age_check = now;
            let old: BTreeSet<u16> = (0..SLOTS as u16)
                .filter(|&s| self.slots[s as usize].since.is_some_and(|t| now.duration_since(t) >= MAX_AGE))
                .collect();
            due.extend(self.take(old));
        }
        due
    }

    /// Everything still held, when the last writer finishes.
    fn finish(&mut self) -> Vec<(u16, SlotBuffer)> {
        self.active = self.active.saturating_sub(1);
        if self.active > 0 {
            return Vec::new();
        }
        let all: BTreeSet<u16> = (0..SLOTS as u16).filter(|&s| self.slots[s as usize].len() > 0).collect();
        self.take(all)
    }
}

/// One `UNLINK` to send: its slot, the command, its first key (for messages) and key count.
struct Group {
    slot: u16,
    cmd: redis::Cmd,
    first: Option<Vec<u8>>,
    keys: usize,
}

impl Group {
    fn from_buffer(slot: u16, b: &SlotBuffer) -> Group {
        let mut cmd = redis::cmd("UNLINK");
        for k in b.keys() {
            cmd.arg(k);
        }
        Group { slot, cmd, first: b.keys().next().map(<[u8]>::to_vec), keys: b.len() }
    }
}

struct Unlinker {
    router: Router,
    /// Cluster only: the run's slot buffers.
    buffers: Option<Arc<Mutex<SlotBuffers>>>,
    /// Keys per pipeline when buffers are sent (the engine's batch size).
    pipeline_keys: usize,
}

impl Unlinker {
    /// Sends the groups, `pipeline_keys` keys per pipeline, and counts what the servers
    /// confirmed: a key not reported removed had vanished (or was removed by a lost first
    /// attempt of a retried UNLINK, which is idempotent), never deleted twice.
    fn unlink(&mut self, groups: Vec<Group>, progress: &Progress) -> Result<()> {
        let mut groups = groups.into_iter().peekable();
        while groups.peek().is_some() {
            let mut cmds: Vec<Routed> = Vec::new();
            let mut firsts: Vec<Option<Vec<u8>>> = Vec::new();
            let mut sent = 0usize;
            while sent < self.pipeline_keys.max(1) {
                let Some(g) = groups.next() else { break };
                sent += g.keys;
                firsts.push(g.first);
                cmds.push(Routed { slot: g.slot, cmd: g.cmd });
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

    /// Sends slot buffers, building each pipeline's commands only when it goes out.
    fn unlink_buffers(&mut self, due: Vec<(u16, SlotBuffer)>, progress: &Progress) -> Result<()> {
        let mut groups = Vec::new();
        let mut keys = 0usize;
        for (slot, b) in due {
            keys += b.len();
            groups.push(Group::from_buffer(slot, &b));
            if keys >= self.pipeline_keys.max(1) {
                self.unlink(std::mem::take(&mut groups), progress)?;
                keys = 0;
            }
        }
        self.unlink(groups, progress)
    }

    fn buffers(&self) -> Option<std::sync::MutexGuard<'_, SlotBuffers>> {
        self.buffers.as_ref().map(|b| b.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Writer for Unlinker {
    fn write(&mut self, keys: Vec<Vec<u8>>, progress: &Progress, _: &Samples) -> Result<()> {
        // The lock is held while keys are filed, never while a command is in flight.
        if self.buffers.is_none() {
            if keys.is_empty() {
                return Ok(());
            }
            let (n, first) = (keys.len(), keys.first().cloned());
            let mut cmd = redis::cmd("UNLINK");
            cmd.arg(keys);
            return self.unlink(vec![Group { slot: 0, cmd, first, keys: n }], progress);
        }
        let due = self.buffers().map(|mut b| b.add(keys)).unwrap_or_default();
        self.unlink_buffers(due, progress)
    }

    fn finish(&mut self, progress: &Progress, _: &Samples) -> Result<()> {
        let due = self.buffers().map(|mut b| b.finish()).unwrap_or_default();
        self.unlink_buffers(due, progress)
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
    // Writes are as large as the run's (shaped) batches, slot buffers' commands included.
    let batch = pacing::shape(engine).batch_size;
    let buffers = psor.is_cluster().then(|| Arc::new(Mutex::new(SlotBuffers::new(batch))));
    run(psor, &opts.prefix, engine, &progress, || {
        let router = Router::new(psor)?;
        if let Some(b) = &buffers {
            b.lock().unwrap_or_else(|p| p.into_inner()).active += 1;
        }
        Ok(Unlinker { router, buffers: buffers.clone(), pipeline_keys: batch })
    })
}
