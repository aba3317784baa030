//! Copying (or moving) every key under prefix A to prefix B: on one server, within a
//! cluster, or to another server or cluster.
//!
//! Where source and target key live in the same keyspace and the same slot, `COPY`
//! duplicates the value with its expiry inside Redis (`RENAMENX` for a move: atomic,
//! nothing in flight can be lost). Otherwise each key travels as `DUMP` + `PEXPIRETIME` and
//! arrives with `RESTORE … ABSTTL` on the master of the target key's slot, so its expiry is
//! the same instant, not a drifted relative TTL (servers before 7.0 fall back to `PTTL`).
//!
//! An existing target key is a conflict left alone unless `replace` — except when it already
//! holds identical content and expiry: that is a rerun (or SCAN returning a key twice) and is
//! counted as `unchanged`. A move deletes a source key only once its target is confirmed.
//!
//! With `--read-from replica` the source values (`DUMP` + `PEXPIRETIME`) are read where the
//! scan read ([`super::ValueReads`]): each key as the master held it at some moment since the
//! run started. A move reads them on the master instead: it unlinks the source there once
//! the target is confirmed, so what it copied must be what the master holds, never an older
//! value a lagging replica still showed. `COPY`/`RENAMENX` and the comparison of an existing
//! target with its source run on the master.
//!
//! A `DUMP`/`RESTORE` writer works in two stages: it reads a chunk from the source and hands
//! it to its target stage (a thread with its own connections), then reads the next chunk while
//! that one is restored, so neither server waits on the other. Only what the target confirmed
//! is counted, when the writer next looks (each batch, and at `finish`, which drains the stage
//! at the end of a run and on Ctrl-C).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use psor_embedded::rdb;
use psor_formats::now_ms;
use redis::Value;

use super::compare;
use super::router::{PackedCmds, Routed, Router};
use super::transcode::{self, Expiry, Path, Prepared, Rebuilt, TargetProfile};
use super::{is_fatal_for_run, run_reading, scan, EngineOptions, Outcome, Samples, ValueReads, Writer};
use crate::connect::{key_slot, Psor};
use crate::error::{Error, Result};
use crate::keys::{display_key, KeyPrefix};
use crate::progress::Progress;

/// What to copy, and how.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Copy every key starting with these bytes…
    pub from: KeyPrefix,
    /// …to the same key with this prefix instead.
    pub to: KeyPrefix,
    /// Overwrite target keys that exist.
    pub replace: bool,
    /// Delete each source key once its copy is confirmed.
    pub move_keys: bool,
    /// Count what would be copied and what would conflict; write nothing.
    pub dry_run: bool,
    /// How many keys a dry run shows.
    pub sample: usize,
}

/// Copies (or moves) every key under `opts.from` to `opts.to`, on `source` or, when given
/// and different, on `target`.
pub fn copy(
    source: &Psor,
    target: Option<&Psor>,
    opts: &CopyOptions,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<Outcome> {
    let target = target.filter(|t| !source.same_keyspace(t));
    if target.is_none() && opts.from.overlaps(&opts.to) {
        return Err(Error::Refused(format!(
            "prefixes {} and {} overlap on the same server: a copied key could be copied again; \
             choose prefixes where neither starts with the other",
            opts.from, opts.to
        )));
    }
    // What the target reads, once, from its product and version: each key's path is chosen
    // from it and the payload's own type and version, never by trying. (A dry run is refused
    // as the copy would be.)
    let profile = target.map(|t| transcode::profile(t, engine.max_payload)).transpose()?;
    if let Some(p) = &profile {
        transcode::refuse_undecodable(source, p, &opts.from, engine)?;
        refuse_field_ttls(source, p, &opts.from, engine)?;
    }
    if opts.dry_run {
        return dry_run(source, target.unwrap_or(source), opts, engine, progress);
    }
    let dst = target.unwrap_or(source);
    let same_keyspace_copy = target.is_none() && source.version().has_copy();
    // Keys go by DUMP/RESTORE to another server, within a cluster (across slots), or on a
    // server without COPY; only then does a writer need a target stage.
    let restores = target.is_some() || source.is_cluster() || !same_keyspace_copy;
    // The source values (`DUMP` + `PEXPIRETIME`) are read where the scan reads (`--read-from`)
    // — except for a move: it deletes each source key on the master once its copy is
    // confirmed, so it must copy the value the master holds, never an older one a replica
    // still showed (a value changed on the master during the run would be lost).
    run_reading(source, &opts.from, engine, &progress, |sides| {
        let reads = if opts.move_keys { ValueReads::masters() } else { ValueReads::new(source, sides) };
        let stage = match restores {
            false => Target::None,
            true => Target::Idle(Box::new(TargetSide {
                dst: Router::new(dst)?,
                src: Router::new(source)?,
                replace: opts.replace,
                move_keys: opts.move_keys,
                src_abs_ttl: source.version().has_pexpiretime(),
                dst_version: profile.as_ref().map_or_else(|| dst.server().to_string(), |p| p.describe()),
                max_payload: profile.as_ref().map_or(u64::MAX, |p| p.max_payload),
                drop_field_ttls: engine.drop_field_ttls,
                dst_is_cluster: dst.is_cluster(),
            })),
        };
        Ok(Copier {
            src: Router::new(source)?,
            reads,
            opts: opts.clone(),
            src_slots: source.is_cluster(),
            dst_slots: dst.is_cluster(),
            src_abs_ttl: source.version().has_pexpiretime(),
            same_keyspace_copy,
            profile: profile.clone(),
            drop_field_ttls: engine.drop_field_ttls,
            target: stage,
        })
    })
}

/// A copy to a target without hash field expirations, of a source that has hashes with them
/// (Valkey 9 counts them in `INFO keyspace` as `keys_with_volatile_items`, Redis 7.4+ as
/// `subexpiry`), is refused before anything is written — unless `--drop-field-ttls` — naming
/// how many and the first.
fn refuse_field_ttls(source: &Psor, target: &TargetProfile, from: &KeyPrefix, engine: &EngineOptions) -> Result<()> {
    let holds_them = target.product == transcode::Product::Embedded || rdb::keeps_field_ttls(target.rdb_version);
    if engine.drop_field_ttls || holds_them {
        return Ok(());
    }
    let mut any = false;
    for node in source.masters() {
        let mut con = node.connect()?;
        let info: String = con.retry("INFO keyspace", None, |c| redis::cmd("INFO").arg("keyspace").query(c))?;
        // Redis 7.4+ says `subexpiry=`.
        let mut counts =
            info.lines().flat_map(|l| l.split_once("keys_with_volatile_items=").or(l.split_once("subexpiry=")));
        any |= counts.any(|(_, n)| {
            n.split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) > 0
        });
    }
    if !any {
        return Ok(());
    }
    let (mut count, mut first) = (0u64, None::<Vec<u8>>);
    let mut router = Router::new(source)?;
    let cluster = source.is_cluster();
    for batch in scan(source, from, engine, Arc::new(Progress::new()))? {
        let keys = batch?;
        let cmds: Vec<Routed> = keys
            .iter()
            .map(|k| {
                let mut cmd = redis::cmd("TYPE");
                cmd.arg(k);
                Routed { slot: if cluster { key_slot(k) } else { 0 }, cmd }
            })
            .collect();
        let types = router.run("TYPE", &cmds)?;
        let hashes: Vec<&Vec<u8>> = keys
            .iter()
            .zip(types)
            .filter(|(_, t)| matches!(t, Value::SimpleString(s) if s == "hash"))
            .map(|(k, _)| k)
            .collect();
        let cmds: Vec<Routed> = hashes
            .iter()
            .map(|k| {
                let mut cmd = redis::cmd("DUMP");
                cmd.arg(k.as_slice());
                Routed { slot: if cluster { key_slot(k) } else { 0 }, cmd }
            })
            .collect();
        for (k, dump) in hashes.iter().zip(router.run("DUMP", &cmds)?) {
            if let Value::BulkString(p) = dump {
                if transcode::has_field_ttls(&p) {
                    count += 1;
                    first.get_or_insert_with(|| k.to_vec());
                }
            }
        }
    }
    match first {
        None => Ok(()),
        Some(first) => Err(Error::Refused(format!(
            "{count} keys are hashes with field expirations (first: {}), which the target ({}) cannot hold; \
             nothing written: copy with --drop-field-ttls to copy their fields without the fields' expiries",
            display_key(&first),
            target.describe()
        ))),
    }
}

/// One writer: a router to the source for its reads (and `COPY`), and — when keys travel as
/// `DUMP`/`RESTORE` — a target stage on its own thread, so the source is read for batch N+1
/// while batch N is restored (see [`Target`]).
struct Copier {
    src: Router,
    /// Where the source values are read (`DUMP` + `PEXPIRETIME`): a replica or the master.
    reads: ValueReads,
    opts: CopyOptions,
    /// Source key slots matter (the source is a cluster)…
    src_slots: bool,
    /// …target key slots matter (the target, or the source for a copy inside it, is one).
    dst_slots: bool,
    src_abs_ttl: bool,
    /// Source and target are one keyspace that knows `COPY`.
    same_keyspace_copy: bool,
    /// What the target reads; `None` for a copy inside one keyspace (payloads go as they are).
    profile: Option<TargetProfile>,
    drop_field_ttls: bool,
    target: Target,
}

/// Keys read per DUMP pipeline: bounds the payload bytes held at once per writer.
const DUMP_CHUNK: usize = 256;

/// Prepared `DUMP` chunks a writer may have handed to its target stage and not yet seen
/// confirmed: the source is read this far ahead of the target. With [`DUMP_CHUNK`] keys each,
/// it bounds the payloads in flight per writer.
const TARGET_DEPTH: usize = 3;

/// A key on its way: source name and slot, target name and slot.
struct Pair {
    src: Vec<u8>,
    src_slot: u16,
    dst: Vec<u8>,
    dst_slot: u16,
}

/// A key read from the source, ready for the target: the payload to write there and the ttl
/// argument of `RESTORE` (0: none; absolute when the source knows `PEXPIRETIME`).
struct Item {
    pair: Pair,
    payload: Vec<u8>,
    ttl: i64,
}

/// One chunk for the target stage: keys that fit one `RESTORE`, and keys too big for one,
/// to be rebuilt in chunks.
struct Job {
    restore: Vec<Item>,
    rebuild: Vec<Item>,
}

impl Job {
    fn len(&self) -> usize {
        self.restore.len() + self.rebuild.len()
    }

    /// Takes another job's keys in (the target stage writes queued jobs together).
    fn absorb(&mut self, other: Job) {
        self.restore.extend(other.restore);
        self.rebuild.extend(other.rebuild);
    }
}

/// Keys a cluster target's stage writes at once, from the jobs queued for it (at most
/// [`TARGET_DEPTH`] of them: what was already held in memory): with 3 masters, ~256
/// `RESTORE`s per master and round trip instead of ~85.
const TARGET_MERGE: usize = TARGET_DEPTH * DUMP_CHUNK;

/// What the target stage confirmed for one [`Job`], counted by the writer when it gets it
/// (a run's `Samples` belong to the writer's thread).
#[derive(Default)]
struct Tally {
    done: u64,
    unchanged: u64,
    rebuilt: u64,
    /// (node, key, error)
    failures: Vec<(String, Vec<u8>, String)>,
    conflicts: Vec<Vec<u8>>,
}

impl Tally {
    fn count(self, progress: &Progress, samples: &Samples) {
        Progress::add(&progress.done, self.done);
        Progress::add(&progress.unchanged, self.unchanged);
        for _ in 0..self.rebuilt {
            progress.paths.add(Path::Rebuilt);
        }
        for (node, key, error) in self.failures {
            samples.failure(progress, &node, &key, error);
        }
        for key in self.conflicts {
            samples.conflict(progress, &key);
        }
    }
}

/// The writing side of a `DUMP`/`RESTORE` copy: its own routers to the target and to the
/// source (to compare an existing target key with its source, and for a move to unlink the
/// sources once their targets are confirmed).
struct TargetSide {
    dst: Router,
    src: Router,
    replace: bool,
    move_keys: bool,
    src_abs_ttl: bool,
    dst_version: String,
    max_payload: u64,
    drop_field_ttls: bool,
    dst_is_cluster: bool,
}

/// The target stage of a writer. Idle, it holds its [`TargetSide`]; running, a thread owns it
/// and takes [`Job`]s from a channel [`TARGET_DEPTH`] deep, answering each with its
/// [`Tally`] (or the error that stopped it). `finish` drains it and takes the side back, so
/// the writer can be used again (the sweep after a run) and its unstable slots read.
enum Target {
    /// Every key goes by `COPY`/`RENAMENX`: no target stage.
    None,
    Idle(Box<TargetSide>),
    Running(Stage),
    /// The stage's thread failed or panicked; its error was (or will be) reported.
    Gone,
}

struct Stage {
    jobs: Option<crossbeam_channel::Sender<Job>>,
    tallies: crossbeam_channel::Receiver<Result<Tally>>,
    /// Set when the writer is dropped without `finish` (the run failed): jobs still queued
    /// are dropped unwritten.
    abandon: Arc<AtomicBool>,
    thread: Option<JoinHandle<Box<TargetSide>>>,
}

impl Stage {
    fn start(mut side: Box<TargetSide>) -> Stage {
        let (jobs, job_rx) = crossbeam_channel::bounded::<Job>(TARGET_DEPTH - 1);
        let (tally_tx, tallies) = crossbeam_channel::unbounded();
        let abandon = Arc::new(AtomicBool::new(false));
        let stop = abandon.clone();
        let thread = std::thread::spawn(move || {
            for mut job in job_rx.iter() {
                if stop.load(Relaxed) {
                    break;
                }
                // A cluster target splits a job's RESTOREs over its masters, a few dozen
                // each: the jobs already queued join this one (never waiting for more), so
                // each master gets one full pipeline per round trip, all in flight at once.
                while side.dst_is_cluster && job.len() < TARGET_MERGE {
                    match job_rx.try_recv() {
                        Ok(more) => job.absorb(more),
                        Err(_) => break,
                    }
                }
                let result = side.restore(job);
                let failed = result.is_err();
                if tally_tx.send(result).is_err() || failed {
                    break;
                }
            }
            side
        });
        Stage { jobs: Some(jobs), tallies, abandon, thread: Some(thread) }
    }

    /// Counts every tally that arrived; the first error the stage sent.
    fn collect(&self, progress: &Progress, samples: &Samples) -> Result<()> {
        while let Ok(t) = self.tallies.try_recv() {
            t?.count(progress, samples);
        }
        Ok(())
    }

    /// Waits for every job handed over, counts them, and takes the side back.
    fn drain(mut self, progress: &Progress, samples: &Samples) -> Result<Box<TargetSide>> {
        drop(self.jobs.take());
        let mut first = None;
        for t in self.tallies.iter() {
            match t {
                Ok(t) => t.count(progress, samples),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        let side = self.thread.take().expect("joined once").join();
        match (first, side) {
            (Some(e), _) => Err(e),
            (None, Ok(side)) => Ok(side),
            (None, Err(_)) => Err(Error::Protocol {
                addr: "psor".into(),
                op: "RESTORE",
                detail: "the target writer thread panicked".into(),
            }),
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.abandon.store(true, Relaxed);
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Writer for Copier {
    fn write(&mut self, keys: Vec<Vec<u8>>, progress: &Progress, samples: &Samples) -> Result<()> {
        let slot = |on: bool, k: &[u8]| if on { key_slot(k) } else { 0 };
        let (mut local, mut remote) = (Vec::new(), Vec::new());
        for src in keys {
            let dst = self.opts.from.rewrite(&src, &self.opts.to);
            let pair = Pair { src_slot: slot(self.src_slots, &src), dst_slot: slot(self.dst_slots, &dst), src, dst };
            // COPY and RENAMENX work only inside one slot of one keyspace.
            if self.same_keyspace_copy && pair.src_slot == pair.dst_slot {
                local.push(pair);
            } else {
                remote.push(pair);
            }
        }
        if !local.is_empty() {
            self.copy_in_place(&local, progress, samples)?;
        }
        let mut remote = remote.into_iter().peekable();
        while remote.peek().is_some() {
            let chunk: Vec<Pair> = remote.by_ref().take(DUMP_CHUNK).collect();
            let job = self.dump(chunk, progress, samples)?;
            if !job.restore.is_empty() || !job.rebuild.is_empty() {
                self.hand_over(job, progress, samples)?;
            }
        }
        Ok(())
    }

    /// Waits until the target stage confirmed (and counted) every job handed to it.
    fn finish(&mut self, progress: &Progress, samples: &Samples) -> Result<()> {
        if let Target::Running(_) = self.target {
            let Target::Running(stage) = std::mem::replace(&mut self.target, Target::Gone) else { unreachable!() };
            self.target = Target::Idle(stage.drain(progress, samples)?);
        }
        Ok(())
    }

    fn unstable(&self) -> BTreeSet<u16> {
        let mut all = self.src.unstable.clone();
        if let Target::Idle(side) = &self.target {
            all.extend(side.dst.unstable.iter().copied());
            all.extend(side.src.unstable.iter().copied());
        }
        all
    }
}

impl Copier {
    /// Gives a chunk to the target stage (starting it if idle), after counting what it
    /// confirmed so far. Blocks while [`TARGET_DEPTH`] chunks are unconfirmed. The stage's
    /// first error comes back from here (or from `finish`).
    fn hand_over(&mut self, job: Job, progress: &Progress, samples: &Samples) -> Result<()> {
        if let Target::Idle(_) = self.target {
            let Target::Idle(side) = std::mem::replace(&mut self.target, Target::Gone) else { unreachable!() };
            self.target = Target::Running(Stage::start(side));
        }
        let Target::Running(stage) = &mut self.target else {
            return Err(Error::Protocol {
                addr: "psor".into(),
                op: "RESTORE",
                detail: "the target writer stopped".into(),
            });
        };
        stage.collect(progress, samples)?;
        let sent = stage.jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if !sent {
            // The stage stopped on an error: that error is the answer.
            let Target::Running(stage) = std::mem::replace(&mut self.target, Target::Gone) else { unreachable!() };
            stage.drain(progress, samples)?;
            return Err(Error::Protocol {
                addr: "psor".into(),
                op: "RESTORE",
                detail: "the target writer stopped".into(),
            });
        }
        Ok(())
    }

    /// `COPY` (or `RENAMENX` / `RENAME` for a move) where source and target share a slot.
    fn copy_in_place(&mut self, pairs: &[Pair], progress: &Progress, samples: &Samples) -> Result<()> {
        let name: &[u8] = match (self.opts.move_keys, self.opts.replace) {
            (false, _) => b"COPY",
            (true, false) => b"RENAMENX",
            (true, true) => b"RENAME",
        };
        let replace = self.opts.replace && !self.opts.move_keys;
        let mut cmds =
            PackedCmds::with_capacity(pairs.len(), pairs.iter().map(|p| 48 + p.src.len() + p.dst.len()).sum());
        for p in pairs {
            if replace {
                cmds.push(p.src_slot, &[name, &p.src, &p.dst, b"REPLACE"]);
            } else {
                cmds.push(p.src_slot, &[name, &p.src, &p.dst]);
            }
        }
        let op = if self.opts.move_keys { "RENAMENX" } else { "COPY" };
        let replies = self.src.run_packed(op, &cmds)?;
        drop(cmds);
        let mut existing = Vec::new();
        for (p, reply) in pairs.iter().zip(replies) {
            match reply {
                Value::Int(1) | Value::Okay => Progress::add(&progress.done, 1),
                Value::Int(0) => existing.push(p),
                Value::ServerError(e) if e.details().is_some_and(|d| d.contains("no such key")) => {
                    Progress::add(&progress.vanished, 1)
                }
                Value::ServerError(e) if is_fatal_for_run(&e) => {
                    return Err(command_error(&mut self.src, p.src_slot, op, &p.src, e))
                }
                Value::ServerError(e) => samples.failure(progress, &self.src.label(p.src_slot), &p.src, e),
                other => return Err(protocol(op, &other)),
            }
        }
        if existing.is_empty() {
            return Ok(());
        }
        // Target exists: identical content and expiry means a rerun, anything else a conflict.
        // Before Redis 7.0 (no PEXPIRETIME) the two PTTLs, read back to back, may be a tick apart.
        let (ttl_cmd, tick) = if self.src_abs_ttl { ("PEXPIRETIME", 0) } else { ("PTTL", 2) };
        let same_ttl = |a: &Value, b: &Value| match (a, b) {
            (Value::Int(x), Value::Int(y)) if *x >= 0 && *y >= 0 => (x - y).abs() <= tick,
            _ => a == b,
        };
        let mut cmds = Vec::new();
        for p in &existing {
            for (c, k) in [("DUMP", &p.src), ("DUMP", &p.dst), (ttl_cmd, &p.src), (ttl_cmd, &p.dst)] {
                let mut cmd = redis::cmd(c);
                cmd.arg(k);
                cmds.push(Routed { slot: p.src_slot, cmd });
            }
        }
        let replies = self.src.run("DUMP", &cmds)?;
        let mut identical = Vec::new();
        for (p, r) in existing.iter().zip(replies.chunks(4)) {
            let same = matches!(&r[0], Value::BulkString(_))
                && same_ttl(&r[2], &r[3])
                && (r[0] == r[1] || {
                    let con = self.src.conn_for(p.src_slot)?;
                    compare::read(con, &p.src)?.same_as(&compare::read(con, &p.dst)?)
                });
            if same {
                Progress::add(&progress.unchanged, 1);
                identical.push(*p);
            } else if matches!(r[0], Value::Nil) {
                Progress::add(&progress.vanished, 1);
            } else {
                samples.conflict(progress, &p.src);
            }
        }
        if self.opts.move_keys && !identical.is_empty() {
            // The target already holds this exact value: the move is complete once the source goes.
            unlink_sources(&mut self.src, &identical)?;
        }
        Ok(())
    }

    /// `DUMP` + `PEXPIRETIME` of a chunk from the source; what each key's target gets (as it
    /// is, rewritten for the target, or — too big for one `RESTORE` there — to be rebuilt).
    /// Keys that vanished, expired or cannot travel are counted here.
    fn dump(&mut self, pairs: Vec<Pair>, progress: &Progress, samples: &Samples) -> Result<Job> {
        let ttl_cmd: &[u8] = if self.src_abs_ttl { b"PEXPIRETIME" } else { b"PTTL" };
        let mut cmds = PackedCmds::with_capacity(pairs.len() * 2, pairs.iter().map(|p| 48 + 2 * p.src.len()).sum());
        for p in &pairs {
            cmds.push(p.src_slot, &[b"DUMP", &p.src]);
            cmds.push(p.src_slot, &[ttl_cmd, &p.src]);
        }
        let replies = self.reads.run_packed(&mut self.src, "DUMP", &cmds)?;
        drop(cmds);
        let now = now_ms();
        let mut job = Job { restore: Vec::with_capacity(pairs.len()), rebuild: Vec::new() };
        // Payloads are moved out of the replies, never copied: they may be large.
        let mut replies = replies.into_iter();
        for pair in pairs {
            let (Some(dump), Some(ttl)) = (replies.next(), replies.next()) else {
                return Err(protocol("DUMP", &Value::Nil));
            };
            let (payload, ttl) = match (dump, ttl) {
                (Value::BulkString(payload), Value::Int(t)) if t != -2 => (payload, t),
                (Value::Nil, _) | (_, Value::Int(-2)) => {
                    Progress::add(&progress.vanished, 1);
                    continue;
                }
                (Value::ServerError(e), _) | (_, Value::ServerError(e)) => {
                    samples.failure(progress, &self.src.label(pair.src_slot), &pair.src, e);
                    continue;
                }
                (other, _) => return Err(protocol("DUMP", &other)),
            };
            let ttl = match ttl {
                -1 => 0,
                t if self.src_abs_ttl && t <= now => {
                    Progress::add(&progress.expired, 1);
                    continue;
                }
                t => t,
            };
            let Some(profile) = &self.profile else {
                job.restore.push(Item { pair, payload, ttl });
                continue;
            };
            let (payload, path) = match profile.prepare(&payload, self.drop_field_ttls) {
                Ok(Prepared::AsIs(_)) => (payload, Path::Restore),
                Ok(prepared) => {
                    if prepared.dropped_field_ttls() {
                        progress.paths.dropped_field_ttls();
                    }
                    (prepared.bytes().to_vec(), prepared.path())
                }
                Err(why) => {
                    let label = self.src.label(pair.src_slot);
                    samples.failure(progress, &label, &pair.src, format!("not copied: {why}"));
                    continue;
                }
            };
            if payload.len() as u64 <= profile.max_payload {
                progress.paths.add(path);
                job.restore.push(Item { pair, payload, ttl });
            } else {
                job.rebuild.push(Item { pair, payload, ttl });
            }
        }
        Ok(job)
    }
}

impl TargetSide {
    /// Writes one chunk: rebuilds the keys too big for one `RESTORE`, sends one `RESTORE …
    /// ABSTTL` pipeline for the others, compares the targets that existed with their
    /// sources, then (for a move) `UNLINK`s the sources whose target is confirmed.
    fn restore(&mut self, job: Job) -> Result<Tally> {
        let mut tally = Tally::default();
        let ttl_cmd = if self.src_abs_ttl { "PEXPIRETIME" } else { "PTTL" };
        // Sources whose target now holds their value, for a move.
        let mut restored: Vec<&Pair> = Vec::new();
        // Existing targets: of a RESTORE (BUSYKEY), or of a rebuild (RENAMENX found one).
        let mut busy: Vec<&Item> = Vec::new();
        for item in &job.rebuild {
            let p = &item.pair;
            match self.rebuild(item)? {
                Rebuilt::Done => {
                    tally.rebuilt += 1;
                    tally.done += 1;
                    restored.push(p);
                }
                Rebuilt::Exists => busy.push(item),
                Rebuilt::Unfit(why) => {
                    tally.failures.push((self.src.label(p.src_slot), p.src.clone(), format!("not copied: {why}")))
                }
                Rebuilt::Failed(e) if is_fatal_for_run(&e) => {
                    return Err(command_error(&mut self.dst, p.dst_slot, "RESTORE", &p.dst, e))
                }
                Rebuilt::Failed(e) => tally.failures.push((self.dst.label(p.dst_slot), p.dst.clone(), e.to_string())),
            }
        }
        let (abs, replace) = (self.src_abs_ttl, self.replace);
        // Sized once: each payload is copied in once, not grown into.
        let bytes = job.restore.iter().map(|i| 96 + i.pair.dst.len() + i.payload.len()).sum();
        let mut cmds = PackedCmds::with_capacity(job.restore.len(), bytes);
        let mut n = itoa::Buffer::new();
        for Item { pair: p, payload, ttl } in &job.restore {
            let mut args: [&[u8]; 6] = [b"RESTORE", &p.dst, n.format(*ttl).as_bytes(), payload, b"", b""];
            let mut len = 4;
            if abs && *ttl > 0 {
                args[len] = b"ABSTTL";
                len += 1;
            }
            if replace {
                args[len] = b"REPLACE";
                len += 1;
            }
            cmds.push(p.dst_slot, &args[..len]);
        }
        let replies = if cmds.is_empty() { Vec::new() } else { self.dst.run_packed("RESTORE", &cmds)? };
        drop(cmds);
        for (item, reply) in job.restore.iter().zip(replies) {
            match reply {
                Value::Okay => {
                    tally.done += 1;
                    restored.push(&item.pair);
                }
                Value::ServerError(e) if e.code() == "BUSYKEY" => busy.push(item),
                Value::ServerError(e) if is_fatal_for_run(&e) => {
                    if e.details().is_some_and(|d| d.contains("DUMP payload version")) {
                        return Err(Error::Refused(format!(
                            "the target ({}) refuses the source's DUMP payloads (damaged, or of a server psor \
                             does not know); nothing more written",
                            self.dst_version
                        )));
                    }
                    let p = &item.pair;
                    return Err(command_error(&mut self.dst, p.dst_slot, "RESTORE", &p.dst, e));
                }
                Value::ServerError(e) => {
                    let p = &item.pair;
                    tally.failures.push((self.dst.label(p.dst_slot), p.dst.clone(), e.to_string()))
                }
                other => return Err(protocol("RESTORE", &other)),
            }
        }
        if !busy.is_empty() {
            let cmds: Vec<Routed> = busy
                .iter()
                .flat_map(|Item { pair: p, .. }| {
                    let mut dump = redis::cmd("DUMP");
                    dump.arg(&p.dst);
                    let mut ttl = redis::cmd(ttl_cmd);
                    ttl.arg(&p.dst);
                    [Routed { slot: p.dst_slot, cmd: dump }, Routed { slot: p.dst_slot, cmd: ttl }]
                })
                .collect();
            let replies = self.dst.run("DUMP", &cmds)?;
            for (Item { pair: p, payload, ttl }, r) in busy.iter().zip(replies.chunks(2)) {
                let same_ttl = match (&r[1], self.src_abs_ttl) {
                    (Value::Int(-1), _) => *ttl == 0,
                    (Value::Int(t), true) => t == ttl,
                    // Relative TTLs drift by the round trip: a second's slack.
                    (Value::Int(t), false) => *ttl > 0 && (t - ttl).abs() <= 1000,
                    _ => false,
                };
                let same = same_ttl
                    && match &r[0] {
                        Value::BulkString(b) if b == payload => true,
                        Value::BulkString(_) => {
                            let theirs = compare::read(self.dst.conn_for(p.dst_slot)?, &p.dst)?;
                            compare::read(self.src.conn_for(p.src_slot)?, &p.src)?.same_as(&theirs)
                        }
                        _ => false,
                    };
                if same {
                    tally.unchanged += 1;
                    restored.push(p);
                } else {
                    tally.conflicts.push(p.src.clone());
                }
            }
        }
        if self.move_keys && !restored.is_empty() {
            unlink_sources(&mut self.src, &restored)?;
        }
        Ok(tally)
    }

    /// A value too big for one `RESTORE`, rebuilt at its target key in chunks.
    fn rebuild(&mut self, item: &Item) -> Result<Rebuilt> {
        let Item { pair: p, payload, ttl } = item;
        let expiry = match (*ttl, self.src_abs_ttl) {
            (0, _) => Expiry::Never,
            (t, true) => Expiry::At(t),
            (t, false) => Expiry::In(t),
        };
        let (replace, drop, cluster, max) = (self.replace, self.drop_field_ttls, self.dst_is_cluster, self.max_payload);
        transcode::rebuild(&mut self.dst, p.dst_slot, cluster, &p.dst, payload, expiry, replace, max, drop)
    }
}

fn unlink_sources(src: &mut Router, pairs: &[&Pair]) -> Result<()> {
    let mut cmds = PackedCmds::with_capacity(pairs.len(), pairs.iter().map(|p| 32 + p.src.len()).sum());
    for p in pairs {
        cmds.push(p.src_slot, &[b"UNLINK", &p.src]);
    }
    src.run_packed("UNLINK", &cmds)?;
    Ok(())
}

/// Counts what the real run would do, writing nothing: a target key that exists is compared
/// the way the real run compares it (same expiry, and the same `DUMP` bytes or the same content
/// read by type), so identical targets are `unchanged` and only the others are conflicts.
fn dry_run(
    source: &Psor,
    target: &Psor,
    opts: &CopyOptions,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<Outcome> {
    let started = Instant::now();
    let base = progress.snapshot().counts;
    let samples = Samples::new(engine.keep_samples);
    let mut dst = Router::new(target)?;
    let mut src = Router::new(source)?;
    let (src_cluster, dst_cluster) = (source.is_cluster(), target.is_cluster());
    // Absolute expiry when both sides know it (as the real run compares); else PTTL with slack.
    let abs = source.version().has_pexpiretime() && target.version().has_pexpiretime();
    let ttl_cmd = if abs { "PEXPIRETIME" } else { "PTTL" };
    let mut sample = Vec::new();
    let mut stream = scan(source, &opts.from, engine, progress.clone())?;
    for batch in stream.by_ref() {
        let keys = batch?;
        let targets: Vec<(Vec<u8>, u16)> = keys
            .iter()
            .map(|k| {
                let t = opts.from.rewrite(k, &opts.to);
                let slot = if dst_cluster { key_slot(&t) } else { 0 };
                (t, slot)
            })
            .collect();
        let cmds: Vec<Routed> = targets
            .iter()
            .map(|(t, slot)| {
                let mut cmd = redis::cmd("EXISTS");
                cmd.arg(t);
                Routed { slot: *slot, cmd }
            })
            .collect();
        let exists = dst.run("EXISTS", &cmds)?;
        let mut existing = Vec::new();
        for ((key, t), e) in keys.iter().zip(&targets).zip(exists) {
            if e == Value::Int(1) && !opts.replace {
                existing.push((key, t));
            } else {
                Progress::add(&progress.done, 1);
                if sample.len() < opts.sample {
                    sample.push(display_key(key));
                }
            }
        }
        for chunk in existing.chunks(DUMP_CHUNK) {
            let read = |keys: &mut dyn Iterator<Item = (&Vec<u8>, u16)>| -> Vec<Routed> {
                keys.flat_map(|(k, slot)| {
                    [("DUMP", k), (ttl_cmd, k)].map(|(c, k)| {
                        let mut cmd = redis::cmd(c);
                        cmd.arg(k);
                        Routed { slot, cmd }
                    })
                })
                .collect()
            };
            let src_slot = |k: &[u8]| if src_cluster { key_slot(k) } else { 0 };
            let ours = src.run("DUMP", &read(&mut chunk.iter().map(|(k, _)| (*k, src_slot(k)))))?;
            let theirs = dst.run("DUMP", &read(&mut chunk.iter().map(|(_, (t, slot))| (t, *slot))))?;
            for (((key, (t, slot)), a), b) in chunk.iter().zip(ours.chunks(2)).zip(theirs.chunks(2)) {
                if matches!(a[0], Value::Nil) || a[1] == Value::Int(-2) {
                    Progress::add(&progress.vanished, 1);
                    continue;
                }
                let same_ttl = match (&a[1], &b[1]) {
                    (Value::Int(x), Value::Int(y)) if abs => x == y,
                    (Value::Int(-1), Value::Int(y)) => *y == -1,
                    (Value::Int(x), Value::Int(y)) => *x > 0 && *y > 0 && (x - y).abs() <= 1000,
                    _ => false,
                };
                let same = same_ttl
                    && matches!(&a[0], Value::BulkString(_))
                    && (a[0] == b[0] || {
                        let theirs = compare::read(dst.conn_for(*slot)?, t)?;
                        compare::read(src.conn_for(src_slot(key))?, key)?.same_as(&theirs)
                    });
                if same {
                    Progress::add(&progress.unchanged, 1);
                } else {
                    samples.conflict(&progress, key);
                }
            }
        }
    }
    let mut outcome = samples.into_outcome(&progress, base, started, true);
    outcome.sample = sample;
    outcome.read_from = stream.read_from();
    Ok(outcome)
}

fn command_error(router: &mut Router, slot: u16, op: &'static str, key: &[u8], e: redis::ServerError) -> Error {
    Error::Command { addr: router.label(slot), op, key: Some(key.to_vec()), source: e.into() }
}

fn protocol(op: &'static str, v: &Value) -> Error {
    Error::Protocol { addr: "psor".into(), op, detail: format!("{v:?}") }
}
