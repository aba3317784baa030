//! `verify`: proof that what a copy, an import or an upgrade carried over is really there,
//! and that a backup really holds what is about to be deleted. It only reads.
//!
//! Two sides: keys under prefix A on one PSOR, and the same keys renamed to prefix B on
//! another (or the same) PSOR, or in a `.psnap` file. Every key is one of: the same,
//! **missing** on side B, **extra** on side B (no counterpart on side A), another **type**,
//! other **content** (compared by type, in bounded chunks: `engine::compare`), or another
//! **expiry** (beyond a tolerance). Each key is counted under the first kind that applies.
//!
//! Live against live, both directions stream with bounded memory and nothing collected:
//! pass 1 runs the engine over A (scanner per master → bounded channel → workers with their
//! own connections) and reads each key on both sides; pass 2 runs it over B and only checks
//! that each key's A name exists. Against a snapshot, pass 1 streams the file's records (each
//! restored into a private in-memory store to be read by type) against the live keys, and
//! pass 2 scans the live keys and looks each one up in an index of the file's key names — a
//! sorted `Vec<u64>` of 64-bit name hashes, **8 bytes per key in the file** (80 MB at 10M
//! keys); two names whose hashes collide (odds about n²/2⁶⁵) would hide one missing key.
//!
//! Identical payloads first: per batch, each key's expiry and `MEMORY USAGE`, then the `DUMP`
//! of those of at most 64 KiB, on both sides at once (`compare::probe_dumps`). Byte-identical
//! payloads (RDB version and CRC included) mean the same type and content, hash field
//! expirations included, so only the expiry is compared; every other key (other bytes, missing,
//! bigger, a refusal) is read by type as above. Not with `--quick`, where type, expiry and size
//! are cheaper than the payloads. Against a snapshot, a record whose payload equals its live
//! key's `DUMP` is settled the same way, without being decoded.
//!
//! A live PSOR keeps changing: a key that differs is read again on both sides after a short
//! pause ([`VerifyOptions::recheck_delay`]) before it is reported; one that matches then, or
//! that has gone from side A, is counted `changed`, not as a difference.
//!
//! Under `--read-from replica…` ([`EngineOptions::read_from`]) each side reads on the nodes
//! chosen for it at the start (`engine::ReadSide`: a caught-up replica per master, waited for
//! once, before pass 1): the scans of both passes, and every per-key read of the first look
//! (`MEMORY USAGE`, `DUMP`, `TYPE`, `PEXPIRETIME`/`PTTL`, the typed reads, `EXISTS`) go to
//! that replica (`engine::ValueReads`), so both sides are compared as their replicas held them,
//! a consistent-enough past. **The re-read of a key that differed goes to the masters**, the
//! truth: a difference the replicas' lag made (a write the replica of one side had not yet
//! applied) is settled there and counted `changed`, never reported; a difference that is
//! really there is reported as the masters hold it. Only the keys that differed at first
//! reach the masters. Against a snapshot the live side reads the same way (the file has no
//! replica), and pass 2's look-up of a live key the file lacks, made after the pause, is a
//! re-read too: on the master. A replica lost mid-run leaves its master's reads to the master
//! for the rest of the run, reported in [`VerifyOutcome::read_from`]; lost while its master
//! was being scanned, it starts the verify over (against a snapshot: pass 2), that master now
//! read on the master, so no key is compared or counted twice. With `replica-only` the run
//! stops with [`Error::ReplicaUnavailable`] instead. When side B is another keyspace it has read
//! sides of its own ([`VerifyOutcome::target_read_from`]); on the same keyspace both sides
//! share them.

mod compare;
mod snapshot;

pub use snapshot::{common_prefix, verify_snapshot, verify_snapshot_report};

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Value;

use crate::connect::{key_slot, Psor, ReadChoice};
use crate::engine::compare::Content;
use crate::engine::router::{Routed, Router};
use crate::engine::{run_reading_on, EngineOptions, KeyFailure, ReadSide, Samples, ValueReads, Writer};
use crate::error::{Error, Result};
use crate::keys::{display_key, KeyPrefix};
use crate::progress::Progress;
use compare::{classify, classify_expiry, probe_dumps, read_states, DumpDigest, KeyState, Probe};

/// What to compare, and how.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Side A: every key starting with these bytes…
    pub from: KeyPrefix,
    /// …against the same key with this prefix instead on side B.
    pub to: KeyPrefix,
    /// Type, expiry and size only (`STRLEN`/`HLEN`/…), no content.
    pub quick: bool,
    /// Expiry instants this far apart (ms) still count as the same.
    pub ttl_tolerance_ms: u64,
    /// How many differing keys of each kind the outcome names.
    pub show: usize,
    /// How long to wait before a differing key is read again.
    pub recheck_delay: Duration,
}

impl VerifyOptions {
    /// Options comparing `from` on one side with `to` on the other, full content, no tolerance.
    pub fn new(from: KeyPrefix, to: KeyPrefix) -> Self {
        VerifyOptions {
            from,
            to,
            quick: false,
            ttl_tolerance_ms: 0,
            show: 10,
            recheck_delay: Duration::from_millis(50),
        }
    }
}

/// The kind of a difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// On side A, not on side B.
    Missing,
    /// On side B, not on side A.
    Extra,
    /// Another type.
    Type,
    /// Same type, other content (or size).
    Content,
    /// Same content, expiry further apart than the tolerance (or one side persistent).
    Expiry,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 5] = [Kind::Missing, Kind::Extra, Kind::Type, Kind::Content, Kind::Expiry];

    fn index(self) -> usize {
        self as usize
    }

    /// The name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Extra => "extra",
            Kind::Type => "type",
            Kind::Content => "content",
            Kind::Expiry => "expiry",
        }
    }
}

/// One differing key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyDiff {
    /// What differs.
    pub kind: Kind,
    /// The key's name on side A, escaped for display.
    pub key: String,
    /// Its name on side B, escaped for display.
    pub other: String,
    /// What differs, for people ("hash: 12 vs 13 elements").
    pub detail: String,
}

/// How many keys fell into each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyCounts {
    /// Keys the same on both sides.
    pub same: u64,
    /// On side A only.
    pub missing: u64,
    /// On side B only.
    pub extra: u64,
    /// Another type.
    #[serde(rename = "type")]
    pub type_: u64,
    /// Other content.
    pub content: u64,
    /// Other expiry.
    pub expiry: u64,
    /// Keys that differed at first and matched when read again (or went away): changed under
    /// the run, not reported as differences.
    pub changed: u64,
    /// Keys that could not be read (the outcome lists the first ones).
    pub failed: u64,
}

impl VerifyCounts {
    /// Keys that differ, all kinds together.
    pub fn differences(&self) -> u64 {
        self.missing + self.extra + self.type_ + self.content + self.expiry
    }

    /// Adds another run's counts (one store of a PAC, say).
    pub fn add(&mut self, o: &VerifyCounts) {
        self.same += o.same;
        self.missing += o.missing;
        self.extra += o.extra;
        self.type_ += o.type_;
        self.content += o.content;
        self.expiry += o.expiry;
        self.changed += o.changed;
        self.failed += o.failed;
    }
}

/// What a verify found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VerifyOutcome {
    /// The counts per kind.
    #[serde(flatten)]
    pub counts: VerifyCounts,
    /// Only type, expiry and size were compared.
    pub quick: bool,
    /// Of the keys `same`, those settled by byte-identical `DUMP` payloads (only their expiry
    /// compared); the rest were read by type.
    pub same_by_payload: u64,
    /// The first differing keys of each kind (up to `show` per kind).
    pub differences: Vec<KeyDiff>,
    /// The first keys that could not be read.
    pub failures: Vec<KeyFailure>,
    /// Wall time.
    pub seconds: f64,
    /// Time spent paused for `--rate` / `--max-latency`.
    pub paused_seconds: f64,
    /// Stopped (Ctrl-C, [`Progress::cancel`]) before the end ([`verify_report`] and
    /// [`verify_snapshot_report`] only): the counts are exact for the keys compared, and the
    /// keys not reached prove nothing either way.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// Where side A's keys were read (`--read-from replica…`: per master, the replica, or the
    /// master and why); empty when every read went to the masters by choice. Re-reads of keys
    /// that differed always go to the masters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read_from: Vec<ReadChoice>,
    /// The same for side B when it is another keyspace (`--target`); empty on the same
    /// keyspace (both sides read where [`VerifyOutcome::read_from`] says) and for a snapshot.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_read_from: Vec<ReadChoice>,
}

impl VerifyOutcome {
    /// True when the run compared everything, nothing differs and nothing failed.
    pub fn is_same(&self) -> bool {
        !self.interrupted && self.counts.differences() == 0 && self.counts.failed == 0
    }
}

/// Counters and samples shared by every worker of one verify.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    same: AtomicU64,
    by_payload: AtomicU64,
    kinds: [AtomicU64; 5],
    changed: AtomicU64,
    show: usize,
    diffs: Mutex<Vec<KeyDiff>>,
}

impl Tally {
    pub(crate) fn new(show: usize) -> Self {
        Tally { show, ..Tally::default() }
    }

    pub(crate) fn same(&self, n: u64) {
        self.same.fetch_add(n, Relaxed);
    }

    /// `n` of the keys counted [`Tally::same`] were settled by identical payloads.
    pub(crate) fn by_payload(&self, n: u64) {
        self.by_payload.fetch_add(n, Relaxed);
    }

    pub(crate) fn changed(&self, n: u64) {
        self.changed.fetch_add(n, Relaxed);
    }

    pub(crate) fn differs(&self, kind: Kind, a: &[u8], b: &[u8], detail: String) {
        let before = self.kinds[kind.index()].fetch_add(1, Relaxed);
        if (before as usize) < self.show {
            let mut d = self.diffs.lock().unwrap_or_else(|p| p.into_inner());
            d.push(KeyDiff { kind, key: display_key(a), other: display_key(b), detail });
        }
    }

    /// Adds what `other` counted (a pass counted on its own, then kept), its differing keys
    /// within this tally's `show` per kind.
    pub(crate) fn absorb(&self, other: &Tally) {
        self.same(other.same.load(Relaxed));
        self.by_payload(other.by_payload.load(Relaxed));
        self.changed(other.changed.load(Relaxed));
        let theirs = other.diffs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (i, n) in other.kinds.iter().enumerate() {
            let n = n.load(Relaxed);
            let before = self.kinds[i].fetch_add(n, Relaxed) as usize;
            let room = self.show.saturating_sub(before);
            let mut d = self.diffs.lock().unwrap_or_else(|p| p.into_inner());
            d.extend(theirs.iter().filter(|x| x.kind.index() == i).take(room).cloned());
        }
    }

    pub(crate) fn outcome(
        &self,
        quick: bool,
        failed: u64,
        failures: Vec<KeyFailure>,
        started: Instant,
    ) -> VerifyOutcome {
        let k = |kind: Kind| self.kinds[kind.index()].load(Relaxed);
        let mut differences = self.diffs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        differences.sort_by(|x, y| (x.kind as usize, &x.key).cmp(&(y.kind as usize, &y.key)));
        VerifyOutcome {
            counts: VerifyCounts {
                same: self.same.load(Relaxed),
                missing: k(Kind::Missing),
                extra: k(Kind::Extra),
                type_: k(Kind::Type),
                content: k(Kind::Content),
                expiry: k(Kind::Expiry),
                changed: self.changed.load(Relaxed),
                failed,
            },
            quick,
            same_by_payload: self.by_payload.load(Relaxed),
            differences,
            failures,
            seconds: started.elapsed().as_secs_f64(),
            paused_seconds: 0.0,
            interrupted: false,
            read_from: Vec::new(),
            target_read_from: Vec::new(),
        }
    }
}

/// Compares every key under `opts.from` on `a` with the key renamed to `opts.to` on `b`
/// (`None`: on `a` itself), both directions. Reads only. An interrupted run is
/// [`Error::Interrupted`]: never an outcome that could read as "the same".
pub fn verify(
    a: &Psor,
    b: Option<&Psor>,
    opts: &VerifyOptions,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<VerifyOutcome> {
    let out = verify_report(a, b, opts, engine, progress)?;
    if out.interrupted {
        return Err(Error::Interrupted);
    }
    Ok(out)
}

/// [`verify`], but an interrupted run returns what it compared so far, marked
/// [`VerifyOutcome::interrupted`] (for a report to people; [`VerifyOutcome::is_same`] is
/// false). Interrupted in pass 1, pass 2 (keys on side B only) is not run.
pub fn verify_report(
    a: &Psor,
    b: Option<&Psor>,
    opts: &VerifyOptions,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<VerifyOutcome> {
    let b = b.unwrap_or(a);
    if a.same_keyspace(b) && (opts.from.overlaps(&opts.to) || opts.from.as_bytes() == opts.to.as_bytes()) {
        return Err(Error::Refused(format!(
            "prefixes {} and {} overlap on the same server: a key would be compared with itself or counted on both \
             sides; choose prefixes where neither starts with the other, or give --target",
            opts.from, opts.to
        )));
    }
    let started = Instant::now();
    // A key SCAN returns twice (its table shrank under the cursor) is compared and counted once.
    let engine = &EngineOptions { drop_repeats: true, ..engine.clone() };
    // Each side's read nodes, chosen (and waited for) once, before pass 1.
    let shared = std::ptr::eq(a, b) || a.same_keyspace(b);
    let reads_a = ReadSide::choose(a, engine)?;
    let reads_b = if shared { reads_a.clone() } else { ReadSide::choose(b, engine)? };
    let with_choices = |mut out: VerifyOutcome| {
        // Final: any fall back to a master during the run is in them.
        out.read_from = reads_a.iter().filter_map(|s| s.choice()).collect();
        out.target_read_from = if shared { Vec::new() } else { reads_b.iter().filter_map(|s| s.choice()).collect() };
        out
    };
    let on_replicas = |sides: &[Arc<ReadSide>]| sides.iter().filter(|s| s.on_replica()).count();
    // A replica lost while its master was being scanned leaves the scan to the master, from
    // the start: the keys scanned before would be compared (and counted) twice. The verify
    // starts over instead, on the same read sides (that master read on the master now, the
    // others still on their replicas), as `survey` and `status` do: at most once per master.
    let mut paused = 0.0;
    loop {
        let tally = Arc::new(Tally::new(opts.show));
        let scanned_a = on_replicas(&reads_a);
        let pass1 = run_reading_on(a, reads_a.clone(), &opts.from, engine, &progress, |pass_a| {
            // A second pass after a failover reads side A's masters (`pass_a`); on one keyspace
            // side B follows it.
            let (mut sa, mut sb) = (Side::new(a, pass_a)?, Side::new(b, if shared { pass_a } else { &reads_b })?);
            // Servers that write other RDB versions never have byte-identical payloads: every key
            // would be probed for nothing, then read by type.
            if sa.rdb.is_some_and(|x| sb.rdb.is_some_and(|y| x != y)) {
                sa.dump_first = false;
                sb.dump_first = false;
            }
            Ok(Verifier {
                a: sa,
                b: sb,
                opts: opts.clone(),
                tally: tally.clone(),
                extra_pass: false,
                digest: DumpDigest::default(),
            })
        })?;
        paused += pass1.paused_seconds;
        // An interrupted pass proves nothing: the outcome says so (and `verify` makes it an error).
        if pass1.interrupted {
            let mut out = tally.outcome(opts.quick, pass1.counts.failed, pass1.failures, started);
            out.paused_seconds = paused;
            out.interrupted = true;
            return Ok(with_choices(out));
        }
        if on_replicas(&reads_a) < scanned_a {
            continue;
        }
        let scanned_b = on_replicas(&reads_b);
        let pass2 = run_reading_on(b, reads_b.clone(), &opts.to, engine, &progress, |pass_b| {
            Ok(Verifier {
                a: Side::new(a, if shared { pass_b } else { &reads_a })?,
                b: Side::new(b, pass_b)?,
                opts: opts.clone(),
                tally: tally.clone(),
                extra_pass: true,
                digest: DumpDigest::default(),
            })
        })?;
        paused += pass2.paused_seconds;
        if !pass2.interrupted && on_replicas(&reads_b) < scanned_b {
            continue;
        }
        let failures: Vec<KeyFailure> = pass1.failures.into_iter().chain(pass2.failures).collect();
        // Each pass's counts are its own (the engine subtracts what the `Progress` had before).
        let failed = pass1.counts.failed + pass2.counts.failed;
        let mut out = tally.outcome(opts.quick, failed, failures, started);
        out.paused_seconds = paused;
        out.interrupted = pass2.interrupted;
        return Ok(with_choices(out));
    }
}

/// Where one side's reads go: the read node of each key's master (`--read-from`:
/// [`ValueReads`]), or the masters themselves for the re-read of a key that differed.
pub(crate) struct Reads {
    router: Router,
    values: ValueReads,
    masters: bool,
}

impl Reads {
    /// Sends `cmds` as [`Router::run`] does, each to its read node.
    pub(crate) fn run(&mut self, op: &'static str, cmds: &[Routed]) -> Result<Vec<Value>> {
        if self.masters {
            self.router.run(op, cmds)
        } else {
            self.values.run(&mut self.router, op, cmds)
        }
    }
}

/// One side's reads and what it needs to know about its server.
pub(crate) struct Side {
    reads: Reads,
    cluster: bool,
    abs_ttl: bool,
    /// The server knows hash field expirations (`HPEXPIRETIME`: Redis 7.4+, Valkey 9).
    field_expiry: bool,
    /// The server keeps consumer groups' entries-read (Redis 7.0+, Valkey).
    pub(crate) entries_read: bool,
    /// Keys are compared by `DUMP` payload first; off once the server refused `MEMORY USAGE`
    /// or `DUMP` to this user.
    dump_first: bool,
    /// The RDB version of the server's `DUMP` payloads, where known.
    rdb: Option<u16>,
}

impl Side {
    /// A side reading `psor` where `sides` say (one per master, [`ReadSide::choose`]).
    pub(crate) fn new(psor: &Psor, sides: &[Arc<ReadSide>]) -> Result<Side> {
        // Valkey reports redis_version 7.2.4 whatever it knows: ask for the command itself.
        let field_expiry = psor.masters()[0]
            .connect()?
            .retry("COMMAND INFO", None, |c| {
                redis::cmd("COMMAND").arg("INFO").arg("HPEXPIRETIME").query::<Vec<Value>>(c)
            })
            .is_ok_and(|v| matches!(v.first(), Some(Value::Array(_))));
        Ok(Side {
            reads: Reads { router: Router::new(psor)?, values: ValueReads::new(psor, sides), masters: false },
            cluster: psor.is_cluster(),
            abs_ttl: psor.version().has_pexpiretime(),
            field_expiry,
            entries_read: psor.version().major >= 7,
            dump_first: true,
            rdb: psor.server().rdb_version(),
        })
    }

    /// `true`: every read from now on goes to the masters (the re-read of keys that
    /// differed: the truth, whatever a replica's lag showed); `false`: to the read nodes.
    pub(crate) fn on_masters(&mut self, masters: bool) {
        self.reads.masters = masters;
    }

    fn slot(&self, key: &[u8]) -> u16 {
        if self.cluster {
            key_slot(key)
        } else {
            0
        }
    }

    /// Reads the keys' states. `entries_read`: compare consumer groups' entries-read (both
    /// sides' servers keep it).
    pub(crate) fn read(&mut self, keys: &[&[u8]], quick: bool, entries_read: bool) -> Result<States> {
        let routed: Vec<(&[u8], u16)> = keys.iter().map(|k| (*k, self.slot(k))).collect();
        read_states(&mut self.reads, &routed, quick, self.abs_ttl, self.field_expiry, entries_read)
    }

    /// Each key's expiry and the digest of its `DUMP` payload ([`probe_dumps`]); `None` when
    /// this side does not probe (the server refused it before): every key is read by type.
    pub(crate) fn probe(&mut self, keys: &[&[u8]], digest: &DumpDigest) -> Result<Option<Vec<Probe>>> {
        if !self.dump_first {
            return Ok(None);
        }
        let routed: Vec<(&[u8], u16)> = keys.iter().map(|k| (*k, self.slot(k))).collect();
        let probed = probe_dumps(&mut self.reads, &routed, self.abs_ttl, digest)?;
        if probed.refused {
            // This user may not run `MEMORY USAGE` or `DUMP` here: read by type from now on.
            self.dump_first = false;
        }
        Ok(Some(probed.probes))
    }

    /// Which of the keys exist. On one server, first one `EXISTS k1 k2 …` for the batch: when
    /// it counts them all (the usual case) that is the answer, in one reply instead of one per
    /// key; otherwise each key is asked on its own. (A cluster would refuse keys of several slots.)
    pub(crate) fn exists(&mut self, keys: &[&[u8]]) -> Result<Vec<std::result::Result<bool, String>>> {
        if !self.cluster && keys.len() > 1 {
            let mut cmd = redis::Cmd::with_capacity(keys.len() + 1, keys.iter().map(|k| k.len() + 16).sum());
            cmd.arg("EXISTS");
            for k in keys {
                cmd.arg(*k);
            }
            if let Some(Value::Int(n)) = self.reads.run("EXISTS", &[Routed { slot: 0, cmd }])?.pop() {
                if usize::try_from(n).is_ok_and(|n| n == keys.len()) {
                    return Ok(vec![Ok(true); keys.len()]);
                }
            }
        }
        let cmds: Vec<Routed> = keys
            .iter()
            .map(|k| {
                let mut cmd = redis::cmd("EXISTS");
                cmd.arg(*k);
                Routed { slot: self.slot(k), cmd }
            })
            .collect();
        Ok(self
            .reads
            .run("EXISTS", &cmds)?
            .into_iter()
            .map(|v| match v {
                Value::Int(n) => Ok(n > 0),
                Value::ServerError(e) => Err(e.to_string()),
                other => Err(format!("unexpected reply {other:?}")),
            })
            .collect())
    }

    /// The key's `DUMP` payload (`None`: no such key).
    pub(crate) fn dump(&mut self, key: &[u8]) -> std::result::Result<Option<Vec<u8>>, String> {
        let mut cmd = redis::cmd("DUMP");
        cmd.arg(key);
        let slot = self.slot(key);
        match self.reads.run("DUMP", &[Routed { slot, cmd }]).map_err(|e| e.to_string())?.pop() {
            Some(Value::BulkString(b)) => Ok(Some(b)),
            Some(Value::Nil) => Ok(None),
            other => Err(format!("unexpected DUMP reply {other:?}")),
        }
    }

    pub(crate) fn label(&mut self, key: &[u8]) -> String {
        let slot = self.slot(key);
        self.reads.router.label(slot)
    }
}

/// Reads the keys on both sides at once: side B on a second thread (its own router and
/// connections), side A on this one, so a worker waits for the slower side, not for the sum
/// of both. The thread lives for one batch (a few microseconds against a batch's round trips).
fn read_both(
    a: &mut Side,
    b: &mut Side,
    a_keys: &[Vec<u8>],
    b_keys: &[Vec<u8>],
    quick: bool,
) -> Result<(States, States)> {
    let a_refs: Vec<&[u8]> = a_keys.iter().map(Vec::as_slice).collect();
    let b_refs: Vec<&[u8]> = b_keys.iter().map(Vec::as_slice).collect();
    let entries_read = a.entries_read && b.entries_read;
    std::thread::scope(|s| {
        let on_b = s.spawn(|| b.read(&b_refs, quick, entries_read));
        let sa = a.read(&a_refs, quick, entries_read);
        let sb = on_b.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok((sa?, sb?))
    })
}

/// Each key's state on one side, or why it could not be read.
pub(crate) type States = Vec<std::result::Result<KeyState, String>>;

/// A worker of either pass: for pass 1 it compares each A key with its B key; for pass 2
/// (`extra_pass`) it only checks that each B key's A name exists.
struct Verifier {
    a: Side,
    b: Side,
    opts: VerifyOptions,
    tally: Arc<Tally>,
    extra_pass: bool,
    /// The keyed hash both sides' `DUMP` payloads are reduced with.
    digest: DumpDigest,
}

impl Writer for Verifier {
    fn write(&mut self, keys: Vec<Vec<u8>>, progress: &Progress, samples: &Samples) -> Result<()> {
        let n = keys.len() as u64;
        if self.extra_pass {
            self.extra(keys, progress, samples)?;
        } else {
            self.compare(keys, progress, samples)?;
        }
        Progress::add(&progress.done, n);
        Ok(())
    }

    fn unstable(&self) -> std::collections::BTreeSet<u16> {
        let mut all = self.a.reads.router.unstable.clone();
        all.extend(self.b.reads.router.unstable.iter().copied());
        all
    }
}

impl Verifier {
    fn compare(&mut self, a_keys: Vec<Vec<u8>>, progress: &Progress, samples: &Samples) -> Result<()> {
        let b_keys: Vec<Vec<u8>> = a_keys.iter().map(|k| self.opts.from.rewrite(k, &self.opts.to)).collect();
        let (suspects, same) = self.round(&a_keys, &b_keys, progress, samples, false)?;
        self.tally.same(same);
        if suspects.is_empty() {
            return Ok(());
        }
        std::thread::sleep(self.opts.recheck_delay);
        let a2: Vec<Vec<u8>> = suspects.iter().map(|&i| a_keys[i].clone()).collect();
        let b2: Vec<Vec<u8>> = suspects.iter().map(|&i| b_keys[i].clone()).collect();
        self.round(&a2, &b2, progress, samples, true)?;
        Ok(())
    }

    /// Reads both sides and classifies. First round: returns the indexes that differ (to be
    /// read again) and the number that are the same. Second round (`last`): reports.
    fn round(
        &mut self,
        a_keys: &[Vec<u8>],
        b_keys: &[Vec<u8>],
        progress: &Progress,
        samples: &Samples,
        last: bool,
    ) -> Result<(Vec<usize>, u64)> {
        let quick = self.opts.quick;
        // The first look reads the read nodes; the re-read of what differed, the masters.
        self.a.on_masters(last);
        self.b.on_masters(last);
        let mut suspects = Vec::new();
        let mut same = 0;
        // DUMP-equality first (not with --quick: type, expiry and size are cheaper than the
        // payloads): byte-identical payloads (RDB version and CRC included) are the same type
        // and content, hash field expirations included; only the key's expiry is left to compare.
        // Every other key (other bytes, missing on a side, too big to pull whole, a refusal)
        // goes down the typed path below, unchanged.
        let typed: Vec<usize> = match if quick { None } else { self.probe_both(a_keys, b_keys)? } {
            None => (0..a_keys.len()).collect(),
            Some((pa, pb)) => {
                let mut typed = Vec::new();
                for (i, (x, y)) in pa.iter().zip(&pb).enumerate() {
                    if x.dump.is_none() || x.dump != y.dump {
                        typed.push(i);
                        continue;
                    }
                    match (classify_expiry(x.expire_at, y.expire_at, self.opts.ttl_tolerance_ms), last) {
                        (None, false) => same += 1,
                        (None, true) => self.tally.changed(1),
                        (Some(_), false) => suspects.push(i),
                        (Some((kind, detail)), true) => self.tally.differs(kind, &a_keys[i], &b_keys[i], detail),
                    }
                }
                // Every key counted same so far was settled by its payload.
                self.tally.by_payload(same);
                typed
            }
        };
        if typed.is_empty() {
            return Ok((suspects, same));
        }
        let (sa, sb) = if typed.len() == a_keys.len() {
            read_both(&mut self.a, &mut self.b, a_keys, b_keys, quick)?
        } else {
            let a2: Vec<Vec<u8>> = typed.iter().map(|&i| a_keys[i].clone()).collect();
            let b2: Vec<Vec<u8>> = typed.iter().map(|&i| b_keys[i].clone()).collect();
            read_both(&mut self.a, &mut self.b, &a2, &b2, quick)?
        };
        for (i, (x, y)) in typed.iter().copied().zip(sa.into_iter().zip(sb)) {
            let (x, y) = match (x, y) {
                (Err(e), _) => {
                    let label = self.a.label(&a_keys[i]);
                    samples.failure(progress, &label, &a_keys[i], e);
                    continue;
                }
                (_, Err(e)) => {
                    let label = self.b.label(&b_keys[i]);
                    samples.failure(progress, &label, &b_keys[i], e);
                    continue;
                }
                (Ok(x), Ok(y)) => (x, y),
            };
            // Gone from side A since the scan: it changed under the run.
            let gone = matches!(x.content, Content::Missing);
            let verdict = match self.settle_opaque(&x, &y, &a_keys[i], &b_keys[i]) {
                Ok(v) => v,
                Err(e) => {
                    let label = self.a.label(&a_keys[i]);
                    samples.failure(progress, &label, &a_keys[i], e);
                    continue;
                }
            };
            match (verdict, last) {
                (None, false) if !gone => same += 1,
                (None, true) if !gone => self.tally.changed(1),
                (_, false) => suspects.push(i),
                (_, true) if gone => self.tally.changed(1),
                (Some((kind, detail)), true) => self.tally.differs(kind, &a_keys[i], &b_keys[i], detail),
                (None, _) => self.tally.changed(1),
            }
        }
        Ok((suspects, same))
    }

    /// [`Side::probe`] on both sides at once (side B on a second thread, as [`read_both`]);
    /// `None` when either side does not probe.
    fn probe_both(&mut self, a_keys: &[Vec<u8>], b_keys: &[Vec<u8>]) -> Result<Option<(Vec<Probe>, Vec<Probe>)>> {
        if !(self.a.dump_first && self.b.dump_first) {
            return Ok(None);
        }
        let a_refs: Vec<&[u8]> = a_keys.iter().map(Vec::as_slice).collect();
        let b_refs: Vec<&[u8]> = b_keys.iter().map(Vec::as_slice).collect();
        let (a, b, digest) = (&mut self.a, &mut self.b, &self.digest);
        std::thread::scope(|s| {
            let on_b = s.spawn(|| b.probe(&b_refs, digest));
            let pa = a.probe(&a_refs, digest);
            let pb = on_b.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            Ok(pa?.zip(pb?))
        })
    }

    /// How the two differ, comparing by `DUMP` bytes where either side's content could not
    /// be read by type (a module type; a stream in the embedded store). With `--quick`,
    /// such content counts as the same (type, expiry and size only).
    fn settle_opaque(
        &mut self,
        x: &KeyState,
        y: &KeyState,
        a_key: &[u8],
        b_key: &[u8],
    ) -> std::result::Result<Option<(Kind, String)>, String> {
        let tol = self.opts.ttl_tolerance_ms;
        let opaque = |s: &KeyState| matches!(s.content, Content::Opaque(_));
        if !(opaque(x) || opaque(y)) || x.content.kind() != y.content.kind() {
            return Ok(classify(x, y, tol));
        }
        let kind = x.content.kind().to_string();
        if !self.opts.quick && self.a.dump(a_key)? != self.b.dump(b_key)? {
            return Ok(Some((Kind::Content, format!("{kind}: other DUMP bytes (its elements are not read here)"))));
        }
        let as_opaque = |s: &KeyState| KeyState { content: Content::Opaque(kind.clone()), expire_at: s.expire_at };
        Ok(classify(&as_opaque(x), &as_opaque(y), tol))
    }

    fn extra(&mut self, b_keys: Vec<Vec<u8>>, progress: &Progress, samples: &Samples) -> Result<()> {
        let a_keys: Vec<Vec<u8>> = b_keys.iter().map(|k| self.opts.to.rewrite(k, &self.opts.from)).collect();
        self.a.on_masters(false);
        self.b.on_masters(false);
        let mut suspects = Vec::new();
        for (i, e) in self.a.exists(&a_keys.iter().map(Vec::as_slice).collect::<Vec<_>>())?.into_iter().enumerate() {
            match e {
                Ok(true) => {}
                Ok(false) => suspects.push(i),
                Err(e) => {
                    let label = self.a.label(&a_keys[i]);
                    samples.failure(progress, &label, &a_keys[i], e)
                }
            }
        }
        if suspects.is_empty() {
            return Ok(());
        }
        std::thread::sleep(self.opts.recheck_delay);
        // Read again on the masters (the replica's lag is not a difference).
        self.a.on_masters(true);
        self.b.on_masters(true);
        let a2: Vec<&[u8]> = suspects.iter().map(|&i| a_keys[i].as_slice()).collect();
        let b2: Vec<&[u8]> = suspects.iter().map(|&i| b_keys[i].as_slice()).collect();
        let ea = self.a.exists(&a2)?;
        let eb = self.b.exists(&b2)?;
        for ((&i, x), y) in suspects.iter().zip(ea).zip(eb) {
            match (x, y) {
                (Ok(false), Ok(true)) => {
                    let detail = "on side B only".to_string();
                    self.tally.differs(Kind::Extra, &a_keys[i], &b_keys[i], detail)
                }
                (Ok(_), Ok(_)) => self.tally.changed(1),
                (Err(e), _) | (_, Err(e)) => {
                    let label = self.b.label(&b_keys[i]);
                    samples.failure(progress, &label, &b_keys[i], e)
                }
            }
        }
        Ok(())
    }
}
