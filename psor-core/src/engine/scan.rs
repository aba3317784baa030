//! Paging through the keys under a prefix with `SCAN`.
//!
//! The prefix goes into `MATCH` glob-escaped, and every key that comes back is checked again
//! byte for byte, so nothing outside the prefix is ever handed on. SCAN may return a key
//! twice (while the table shrinks); every consumer is written to tolerate that.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use crossbeam_channel::Receiver;

use super::pacing::Pacer;
use super::EngineOptions;
use crate::connect::{NodeConn, Psor, ReadChoice, ReadFrom, ReadNode};
use crate::error::{Error, Result};
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
        for key in keys {
            if prefix.is_none_or(|p| p.matches(&key)) {
                if let Some(m) = master {
                    Progress::add(&progress.matched, 1);
                    Progress::add(&m.matched, 1);
                }
                batch.push(key);
                if batch.len() == batch_size
                    && !emit(con, std::mem::replace(&mut batch, Vec::with_capacity(batch_size)))?
                {
                    return Ok(());
                }
            }
        }
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
    pub(crate) fn choose(psor: &Psor, opts: &EngineOptions) -> Result<Vec<ReadSide>> {
        let only = opts.read_from == ReadFrom::ReplicaOnly;
        let nodes = psor.read_nodes(opts.read_from, opts.replica_wait)?;
        Ok(nodes.into_iter().map(|read| ReadSide { read: Mutex::new(read), only }).collect())
    }

    /// Reads on the masters, whatever `--read-from` says (a second pass after a failover).
    pub(crate) fn masters(psor: &Psor) -> Vec<ReadSide> {
        psor.masters().iter().map(|m| ReadSide { read: Mutex::new(ReadNode::master_only(m)), only: false }).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReadNode> {
        self.read.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the report says about this master's reads.
    pub(crate) fn choice(&self) -> Option<ReadChoice> {
        self.lock().choice.clone()
    }

    fn on_replica(&self) -> bool {
        self.lock().replica.is_some()
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
    // Under a latency bound, SCAN COUNT and batches come from the bound (pacing.rs).
    let opts = &super::pacing::shape(opts);
    let counters = progress.start_masters(psor.dbsize_per_master()?);
    let pacer = Pacer::start(&opts.pacing, psor)?;
    let (tx, rx) = crossbeam_channel::bounded(opts.queue_depth.max(1));
    let mut threads = Vec::new();
    let reads: Vec<Arc<ReadSide>> = ReadSide::choose(psor, opts)?.into_iter().map(Arc::new).collect();
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
