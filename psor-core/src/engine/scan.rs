//! Paging through the keys under a prefix with `SCAN`.
//!
//! The prefix goes into `MATCH` glob-escaped, and every key that comes back is checked again
//! byte for byte, so nothing outside the prefix is ever handed on. SCAN may return a key
//! twice (while the table shrinks); every consumer is written to tolerate that.
//!
//! Under `--read-from replica` the scan of each master, and the per-key reads of the runs
//! that read values (copy's `DUMP` stage, export, survey, status), go to the node chosen for
//! it at the start: [`ReadSide`] (the scan's node and its fall back to the master) and
//! [`ValueReads`] (a worker's per-key reads on that same node).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use crossbeam_channel::Receiver;
use redis::Value;

use super::pacing::Pacer;
use super::router::{is_node_gone, CmdList, PackedCmds, Routed, Router, Subset};
use super::EngineOptions;
use crate::connect::{HostPort, Node, NodeConn, Psor, ReadChoice, ReadFrom, ReadNode};
use crate::error::{classify_server, Error, ErrorClass, Result};
use crate::keys::KeyPrefix;
use crate::progress::{MasterCounters, Progress};

/// Scans one node, calling `emit` with batches of at most `opts.batch_size` keys that really
/// start with `prefix` (every key when `None`: a survey of the whole keyspace). Stops early
/// (with `Ok`) when `emit` returns false, with [`Error::Interrupted`] once `progress` is
/// cancelled. The one SCAN loop the engine, its key streams, the survey and `status` share.
pub(crate) fn scan_node(
    con: &mut NodeConn,
    prefix: Option<&KeyPrefix>,
    opts: &EngineOptions,
    progress: &Progress,
    master: &MasterCounters,
    mut emit: impl FnMut(Vec<Vec<u8>>) -> bool,
) -> Result<()> {
    scan_node_with(con, prefix, opts, progress, Some(master), |_, batch| Ok(emit(batch)))
}

/// [`scan_node`] for a consumer that works on the scanned node itself: `emit` also gets the
/// node's connection (between two `SCAN` pages) and may fail, which ends the scan with its
/// error. With `master` `None` the keys are not counted as matched (the caller counts what
/// it keeps, as `status` counts PAC keys).
pub(crate) fn scan_node_with<E: From<Error>>(
    con: &mut NodeConn,
    prefix: Option<&KeyPrefix>,
    opts: &EngineOptions,
    progress: &Progress,
    master: Option<&MasterCounters>,
    mut emit: impl FnMut(&mut NodeConn, Vec<Vec<u8>>) -> std::result::Result<bool, E>,
) -> std::result::Result<(), E> {
    let pattern = prefix.map(KeyPrefix::match_pattern);
    let batch_size = opts.batch_size.max(1);
    let mut cursor: u64 = 0;
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(batch_size);
    let mut restarts = con.restarts();
    let mut recent = opts.drop_repeats.then(RecentKeys::default);
    loop {
        if progress.is_cancelled() {
            return Err(Error::Interrupted.into());
        }
        if con.restarts() != restarts {
            // The server restarted (or Sentinel failed over to another one) while we paged:
            // the cursor means nothing there. Start over; duplicates are fine, misses are not.
            restarts = con.restarts();
            cursor = 0;
        }
        // Re-sending the same cursor after a dropped connection is safe: SCAN is stateless.
        let (next, keys): (u64, Vec<Vec<u8>>) = con.retry("SCAN", None, |c| {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor);
            if let Some(p) = &pattern {
                cmd.arg("MATCH").arg(p);
            }
            cmd.arg("COUNT").arg(opts.scan_count).query(c)
        })?;
        Progress::add(&progress.examined, opts.scan_count as u64);
        if let Some(m) = master {
            Progress::add(&m.examined, opts.scan_count as u64);
        }
        // Matches are counted once per batch and page, not per key: the counters are shared
        // with every worker, and an atomic add per key was a visible share of a scan's CPU.
        let mut matched = 0u64;
        let count = |n: &mut u64| {
            if let Some(m) = master {
                Progress::add(&progress.matched, *n);
                Progress::add(&m.matched, *n);
            }
            *n = 0;
        };
        for key in keys {
            if prefix.is_none_or(|p| p.matches(&key)) && recent.as_mut().is_none_or(|r| r.first_time(&key)) {
                matched += 1;
                batch.push(key);
                if batch.len() == batch_size {
                    count(&mut matched);
                    if !emit(con, std::mem::replace(&mut batch, Vec::with_capacity(batch_size)))? {
                        return Ok(());
                    }
                }
            }
        }
        count(&mut matched);
        if con.restarts() != restarts {
            continue;
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    if !batch.is_empty() {
        emit(con, batch)?;
    }
    Ok(())
}

/// One master's reads during a run (`--read-from`): the node chosen at the start
/// ([`Psor::read_nodes`]), and the fall back to the master when that replica is lost.
pub(crate) struct ReadSide {
    read: Mutex<ReadNode>,
    only: bool,
}

impl ReadSide {
    /// Every master's read side for `opts.read_from`, chosen now (the catch-up wait happens
    /// here, before anything is scanned or written).
    pub(crate) fn choose(psor: &Psor, opts: &EngineOptions) -> Result<Vec<Arc<ReadSide>>> {
        let only = opts.read_from == ReadFrom::ReplicaOnly;
        let nodes = psor.read_nodes(opts.read_from, opts.replica_wait)?;
        Ok(nodes.into_iter().map(|read| Arc::new(ReadSide { read: Mutex::new(read), only })).collect())
    }

    /// Reads on the masters, whatever `--read-from` says (a second pass after a failover).
    pub(crate) fn masters(psor: &Psor) -> Vec<Arc<ReadSide>> {
        psor.masters()
            .iter()
            .map(|m| Arc::new(ReadSide { read: Mutex::new(ReadNode::master_only(m)), only: false }))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReadNode> {
        self.read.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the report says about this master's reads.
    pub(crate) fn choice(&self) -> Option<ReadChoice> {
        self.lock().choice.clone()
    }

    pub(crate) fn on_replica(&self) -> bool {
        self.lock().replica.is_some()
    }

    /// The replica to read while it is chosen.
    fn replica(&self) -> Option<Node> {
        self.lock().replica.clone()
    }

    /// The master's fixed address (`None` behind Sentinel or in process).
    fn master_hp(&self) -> Option<HostPort> {
        self.lock().master.host_port().cloned()
    }

    /// Stops reading the replica: the master from now on, or the run stops (`replica-only`).
    fn fall_back(&self, why: String) -> Result<()> {
        let mut read = self.lock();
        if self.only {
            return Err(Error::ReplicaUnavailable { master: read.master.addr().to_string(), reason: why });
        }
        read.replica = None;
        let master = read.master.addr().to_string();
        if let Some(c) = read.choice.as_mut() {
            c.read_node = master;
            c.fallback = Some(why);
        }
        Ok(())
    }

    /// A connection to the node to read: the replica while it is chosen and reachable, else
    /// the master.
    pub(crate) fn connect(&self) -> Result<NodeConn> {
        let replica = self.lock().replica.clone();
        if let Some(node) = replica {
            match node.connect() {
                Ok(con) => return Ok(con),
                Err(e) => self.fall_back(format!("replica {} unreachable: {e}", node.addr()))?,
            }
        }
        let master = self.lock().master.clone();
        master.connect()
    }

    /// [`scan_node`] on this side's read node, `con` (from [`ReadSide::connect`]). A replica
    /// lost mid-scan ([`super::router::is_node_gone`]) is left for the master, scanned from
    /// the start: keys seen twice are fine, every key that existed at the start is seen.
    pub(crate) fn scan(
        &self,
        mut con: NodeConn,
        prefix: Option<&KeyPrefix>,
        opts: &EngineOptions,
        progress: &Progress,
        master: &MasterCounters,
        mut emit: impl FnMut(Vec<Vec<u8>>) -> bool,
    ) -> Result<()> {
        loop {
            let was_replica = self.on_replica();
            match scan_node(&mut con, prefix, opts, progress, master, &mut emit) {
                Err(e) if was_replica && super::router::is_node_gone(&e) => {
                    self.fall_back(format!("replica {} lost during the run: {e}", con.addr()))?;
                    con = self.connect()?;
                }
                other => return other,
            }
        }
    }
}

/// After a pass of a whole-keyspace report (`survey`, `status`) failed with `e`: when `e` says
/// the replica one of `sides` reads was lost (unreachable, or no longer serving), that side
/// falls back to its master (reported), or the run stops with `replica-only`
/// ([`Error::ReplicaUnavailable`]). `true`: run the pass again from the start (its counts
/// would otherwise hold some keys twice); `false`: `e` is the run's own error.
pub(crate) fn replica_lost(sides: &[Arc<ReadSide>], e: &Error) -> Result<bool> {
    let addr = match e {
        Error::Connect { addr, .. } | Error::Command { addr, .. } if is_node_gone(e) => addr,
        Error::Command { addr, source, .. } if matches!(source.code(), Some("MASTERDOWN" | "LOADING")) => addr,
        _ => return Ok(false),
    };
    for side in sides {
        if side.replica().is_some_and(|r| r.addr() == addr) {
            side.fall_back(format!("replica {addr} lost during the run: {e}"))?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// The side of `sides` (in the order of [`Psor::masters`]) that reads `key`'s master.
pub(crate) fn side_for_key<'a>(psor: &Psor, sides: &'a [Arc<ReadSide>], key: &[u8]) -> Option<&'a Arc<ReadSide>> {
    let map = match psor.topology() {
        crate::connect::Topology::Cluster(map) => Some(map),
        crate::connect::Topology::Single => None,
    };
    side_index(map, sides, crate::connect::key_slot(key)).map(|i| &sides[i])
}

/// The index in `sides` of the side reading `slot`'s master: by the cluster's slot map, or
/// the one side of a single master.
fn side_index(map: Option<&crate::connect::SlotMap>, sides: &[Arc<ReadSide>], slot: u16) -> Option<usize> {
    match map {
        None => (sides.len() == 1).then_some(0),
        Some(map) => {
            let hp = map.master_of(slot)?;
            sides.iter().position(|s| s.master_hp().as_ref() == Some(hp))
        }
    }
}

/// The value reads of one worker thread (`DUMP`, `PEXPIRETIME`/`PTTL`, `TYPE`, `MEMORY
/// USAGE`…) sent to each master's read node: the caught-up replica its [`ReadSide`] chose,
/// or the master through the worker's [`Router`]. Shared with the scan, so the keys a scan of
/// a replica found are read on that same replica: one consistent past state of each key (a
/// key written on the master during the run may be read as the replica still held it; one
/// the replica has not yet received is not in its scan either).
///
/// A replica lost mid-run (unreachable, or no longer serving: `MASTERDOWN`, `LOADING`)
/// makes its side fall back to the master for the rest of the run, reported (or stops the
/// run: `replica-only`), and the reads in hand are sent to the master. A reply that
/// redirects (a slot that moved during the run: `MOVED`, `ASK`) sends that master's commands
/// of the pipeline to the router, which follows it. Commands of one key's transaction
/// (`MULTI … EXEC`) share a slot, so they always go to one node together.
pub(crate) struct ValueReads {
    sides: Vec<Arc<ReadSide>>,
    /// The slot map at the start of the run (on a cluster): which side serves a slot.
    map: Option<crate::connect::SlotMap>,
    /// Per side, its replica's connection once opened.
    conns: Vec<Option<NodeConn>>,
}

impl ValueReads {
    /// Reads routed by `sides` (those of the run's scan, [`ReadSide::choose`]).
    pub(crate) fn new(psor: &Psor, sides: &[Arc<ReadSide>]) -> ValueReads {
        let map = match psor.topology() {
            crate::connect::Topology::Cluster(map) => Some(map.clone()),
            crate::connect::Topology::Single => None,
        };
        ValueReads { sides: sides.to_vec(), map, conns: sides.iter().map(|_| None).collect() }
    }

    /// Every read on the masters (a `--move`, or a run that reads the masters by choice).
    pub(crate) fn masters() -> ValueReads {
        ValueReads { sides: Vec::new(), map: None, conns: Vec::new() }
    }

    /// The index of the side serving `slot`.
    fn side_of(&self, slot: u16) -> Option<usize> {
        side_index(self.map.as_ref(), &self.sides, slot)
    }

    /// Sends every command to the read node of its slot's master and returns the replies in
    /// order, server errors as `Value::ServerError` (as [`Router::run`] does).
    pub(crate) fn run(&mut self, router: &mut Router, op: &'static str, cmds: &[Routed]) -> Result<Vec<Value>> {
        self.run_list(router, op, cmds)
    }

    /// [`ValueReads::run`] for commands packed as they were built ([`PackedCmds`]).
    pub(crate) fn run_packed(
        &mut self,
        router: &mut Router,
        op: &'static str,
        cmds: &PackedCmds,
    ) -> Result<Vec<Value>> {
        self.run_list(router, op, cmds)
    }

    fn run_list<C: CmdList + ?Sized>(&mut self, router: &mut Router, op: &'static str, cmds: &C) -> Result<Vec<Value>> {
        if !self.sides.iter().any(|s| s.on_replica()) {
            return router.run_list(op, cmds);
        }
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); self.sides.len()];
        let mut to_master = Vec::new();
        for i in 0..cmds.count() {
            match self.side_of(cmds.slot(i)) {
                Some(s) if self.sides[s].on_replica() => groups[s].push(i),
                _ => to_master.push(i),
            }
        }
        let mut replies: Vec<Option<Value>> = vec![None; cmds.count()];
        for (s, group) in groups.into_iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            match self.on_replica(s, op, cmds, &group)? {
                Some(values) => {
                    for (i, v) in group.into_iter().zip(values) {
                        replies[i] = Some(v);
                    }
                }
                None => to_master.extend(group),
            }
        }
        if !to_master.is_empty() {
            to_master.sort_unstable();
            let values = router.run_list(op, &Subset { cmds, idx: &to_master })?;
            for (i, v) in to_master.into_iter().zip(values) {
                replies[i] = Some(v);
            }
        }
        Ok(replies.into_iter().map(|v| v.expect("every command got a reply")).collect())
    }

    /// Sends `group` of `cmds` as one pipeline to side `s`'s replica. `None`: send them to
    /// the master instead (the replica was lost, or a reply redirected).
    fn on_replica<C: CmdList + ?Sized>(
        &mut self,
        s: usize,
        op: &'static str,
        cmds: &C,
        group: &[usize],
    ) -> Result<Option<Vec<Value>>> {
        let side = self.sides[s].clone();
        if self.conns[s].is_none() {
            let Some(node) = side.replica() else { return Ok(None) };
            match node.connect() {
                Ok(con) => self.conns[s] = Some(con),
                Err(e) => {
                    side.fall_back(format!("replica {} unreachable: {e}", node.addr()))?;
                    return Ok(None);
                }
            }
        }
        let con = self.conns[s].as_mut().expect("opened above");
        let mut bytes = Vec::with_capacity(group.iter().map(|&i| cmds.size(i)).sum());
        for &i in group {
            cmds.write(i, &mut bytes);
        }
        let n = group.len();
        let values = match con.retry(op, None, |c| c.req_packed_commands(&bytes, 0, n)) {
            Ok(v) if v.len() == n => v,
            Ok(v) => {
                return Err(Error::Protocol {
                    addr: con.addr().to_string(),
                    op,
                    detail: format!("{} replies to a pipeline of {n} commands", v.len()),
                })
            }
            Err(e) if is_node_gone(&e) => {
                let addr = con.addr().to_string();
                self.conns[s] = None;
                side.fall_back(format!("replica {addr} lost during the run: {e}"))?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut redirected = false;
        for v in &values {
            let Value::ServerError(e) = v else { continue };
            match e.code() {
                // The slot moved during the run: its new master answers (the router follows).
                "MOVED" | "ASK" | "TRYAGAIN" => redirected = true,
                // A replica that stopped serving (its link to the master is down and it
                // refuses stale reads, or it is loading a new copy): left for the master.
                _ if classify_server(e) == ErrorClass::Wait => {
                    let addr = con.addr().to_string();
                    self.conns[s] = None;
                    side.fall_back(format!("replica {addr} stopped serving during the run: {e}"))?;
                    return Ok(None);
                }
                _ => {}
            }
        }
        Ok((!redirected).then_some(values))
    }
}

/// Batches of keys under a prefix, from every master, produced by background scanner
/// threads one page ahead of the consumer, handed out at the pace of
/// [`EngineOptions::pacing`] (a listing, a dry run and an export are paced like a delete).
/// Dropping the stream stops the scanners.
pub struct KeyStream {
    rx: Option<Receiver<Result<Vec<Vec<u8>>>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pacer: Pacer,
    progress: std::sync::Arc<Progress>,
    reads: Vec<Arc<ReadSide>>,
}

impl KeyStream {
    /// Where each master's keys were read (`--read-from`; empty when all from the masters
    /// by choice). Final once the stream is exhausted.
    pub fn read_from(&self) -> Vec<ReadChoice> {
        self.reads.iter().filter_map(|r| r.choice()).collect()
    }
}

impl Iterator for KeyStream {
    type Item = Result<Vec<Vec<u8>>>;
    fn next(&mut self) -> Option<Self::Item> {
        let item = self.rx.as_ref()?.recv().ok()?;
        if let Ok(batch) = &item {
            self.pacer.admit(batch.len(), &self.progress);
        }
        Some(item)
    }
}

impl Drop for KeyStream {
    fn drop(&mut self) {
        self.rx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.pacer.stop();
    }
}

/// Streams the keys under `prefix`. `progress` (shared with the caller, who may poll it)
/// counts the keys examined and matched.
pub fn scan(
    psor: &Psor,
    prefix: &KeyPrefix,
    opts: &EngineOptions,
    progress: std::sync::Arc<Progress>,
) -> Result<KeyStream> {
    let reads = ReadSide::choose(psor, opts)?;
    scan_on(psor, prefix, opts, progress, reads)
}

/// [`scan`] on read sides chosen by the caller (who reads the values on the same nodes:
/// [`ValueReads`]).
pub(crate) fn scan_on(
    psor: &Psor,
    prefix: &KeyPrefix,
    opts: &EngineOptions,
    progress: std::sync::Arc<Progress>,
    reads: Vec<Arc<ReadSide>>,
) -> Result<KeyStream> {
    // Under a latency bound, SCAN COUNT and batches come from the bound (pacing.rs).
    let opts = &super::pacing::shape(opts);
    let counters = progress.start_masters(psor.dbsize_per_master()?);
    let pacer = Pacer::start(&opts.pacing, psor)?;
    let (tx, rx) = crossbeam_channel::bounded(opts.queue_depth.max(1));
    let mut threads = Vec::new();
    let mut conns = reads.iter().map(|r| r.connect()).collect::<Result<Vec<_>>>()?;
    let live = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(conns.len()));
    for ((con, master), read) in conns.drain(..).zip(counters).zip(reads.clone()) {
        let (tx, prefix, opts, progress, live) =
            (tx.clone(), prefix.clone(), opts.clone(), progress.clone(), live.clone());
        threads.push(std::thread::spawn(move || {
            let result = read.scan(con, Some(&prefix), &opts, &progress, &master, |batch| tx.send(Ok(batch)).is_ok());
            if let Err(e) = result {
                let _ = tx.send(Err(e));
            }
            if live.fetch_sub(1, Relaxed) == 1 {
                progress.scan_finished.store(true, Relaxed);
            }
        }));
    }
    Ok(KeyStream { rx: Some(rx), threads, pacer, progress, reads })
}

/// The keys one master's scan returned most recently, so a key `SCAN` returns twice is
/// counted once ([`EngineOptions::drop_repeats`]: survey, status and verify; delete, copy and
/// export need no such help). A
/// table that shrinks from 2^a to 2^b buckets under the cursor makes SCAN return again the
/// keys of the up to 2^(a-b) buckets it visited last (those that share the cursor's low b
/// bits); at most [`RECENT_KEYS`] keys back are remembered, so a count's
/// memory stays bounded (a shrink by more than ~16,000 times between two server cron runs,
/// 100 ms, would be needed to go past it).
pub(crate) struct RecentKeys {
    /// The window: each key's hash and its bytes, `next` the oldest once it is full. A slot's
    /// buffer is reused for the key that replaces it, so a long scan allocates nothing here.
    ring: Vec<(u64, Vec<u8>)>,
    next: usize,
    /// A key's hash → its slot in `ring`. A key is dropped only when the slot holds exactly
    /// its bytes, so a hash collision can never drop a key that was not seen: at worst (two
    /// keys of one 64-bit hash in the window) the older one is counted again if SCAN repeats it.
    index: HashMap<u64, usize, BuildHasherDefault<PreHashed>>,
    /// Hashes each key once (SipHash, keys drawn per run).
    hasher: RandomState,
}

impl Default for RecentKeys {
    fn default() -> RecentKeys {
        RecentKeys { ring: Vec::new(), next: 0, index: HashMap::default(), hasher: RandomState::new() }
    }
}

/// How many keys [`RecentKeys`] remembers: about 2 MB of PSOR key names.
const RECENT_KEYS: usize = 16_384;

impl RecentKeys {
    /// True unless `key` is among the last [`RECENT_KEYS`] keys seen; remembers it.
    pub(crate) fn first_time(&mut self, key: &[u8]) -> bool {
        let hash = self.hasher.hash_one(key);
        if let Some(&slot) = self.index.get(&hash) {
            if self.ring[slot].1 == key {
                return false;
            }
        }
        let slot = self.next;
        if self.ring.len() < RECENT_KEYS {
            self.ring.push((hash, key.to_vec()));
        } else {
            let (old, buf) = &mut self.ring[slot];
            if self.index.get(old) == Some(&slot) {
                self.index.remove(old);
            }
            *old = hash;
            buf.clear();
            buf.extend_from_slice(key);
        }
        self.next = (slot + 1) % RECENT_KEYS;
        self.index.insert(hash, slot);
        true
    }
}

/// The hasher of a map whose keys are already hashes: passes the `u64` through.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; this keeps any other input well defined.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod recent_keys_tests {
    use super::*;

    #[test]
    fn a_key_seen_again_within_the_window_is_dropped_and_the_window_is_bounded() {
        let mut r = RecentKeys::default();
        assert!(r.first_time(b"a"));
        assert!(!r.first_time(b"a"));
        for i in 0..RECENT_KEYS {
            assert!(r.first_time(format!("k{i}").as_bytes()));
        }
        assert_eq!((r.ring.len(), r.index.len()), (RECENT_KEYS, RECENT_KEYS));
        // "a" has left the window.
        assert!(r.first_time(b"a"));
    }
}
