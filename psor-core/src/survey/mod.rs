//! `survey`: what is in a PSOR, as a prefix tree, so a site can learn its real key layout
//! (which the vendor does not publish) and write its own layout catalog.
//!
//! Every master is scanned in parallel (one scanner thread per master, paging through
//! `SCAN` on its own connection, with no `MATCH` for the whole keyspace or the
//! glob-escaped prefix otherwise). Each page is handed to a few worker threads per master
//! that ask, in one pipeline per page, `TYPE` and `PTTL` of every key (unless types are
//! off) and `MEMORY USAGE key SAMPLES 0` of the *sampled* keys: those whose name hashes to
//! 0 modulo `sample_every` (deterministic, so reruns sample the same keys, and unrelated
//! to the key's size). The calling thread folds the results into a [`Tree`], whose memory
//! does not grow with the number of keys (see [`tree`]). After the scan, one key of every
//! node that got no sample is measured, so every node has a byte estimate.
//!
//! With `--read-from replica` ([`SurveyOptions::read_from`]) the scan and the per-key reads
//! of each master go to its caught-up replica; one lost mid-run makes the survey start over
//! with that master read (the tree would otherwise count some keys twice).
//!
//! Nothing here prints; progress goes through [`Progress`] (`matched`: keys found,
//! `done`: keys typed and counted).

pub mod suggest;
pub mod tree;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use redis::Value;
use serde::Serialize;

pub use suggest::{suggest_layout, SuggestedCatalog};
pub use tree::{BigKey, KeyFacts, KeyType, SurveyNode, Tree, TreeOptions, TreeSummary, TtlSpread, TYPE_NAMES};

use crate::connect::{NodeConn, Psor, ReadChoice};
use crate::engine::{pipeline, EngineOptions};
use crate::error::{Error, Result};
use crate::keys::{display_key, KeyPrefix};
use crate::progress::{MasterCounters, Progress};

/// What to survey and how.
#[derive(Clone, Debug)]
pub struct SurveyOptions {
    /// Survey only keys with this prefix; empty: the whole keyspace.
    pub prefix: Vec<u8>,
    /// The bytes that end one level of a key name (`:`). Never empty.
    pub delimiter: Vec<u8>,
    /// Levels below the prefix to report (1 or more).
    pub depth: usize,
    /// The biggest sampled keys kept per node.
    pub top: usize,
    /// Ask `TYPE` and `PTTL` of every key (two commands per key: most of the survey's cost
    /// on the server). Off: only counts and bytes.
    pub types: bool,
    /// Measure `MEMORY USAGE` of one key in this many (chosen by a hash of the name);
    /// 1: every key (exact bytes and biggest keys); 0: none (no bytes).
    pub sample_every: u64,
    /// At most this many named children per node; the rest fold into `(other)`.
    pub max_children: usize,
    /// At most this many nodes in the tree.
    pub max_nodes: usize,
    /// `SCAN ... COUNT`.
    pub scan_count: usize,
    /// Pipeline worker threads (each with its own connection) per master.
    pub workers: usize,
    /// Pages buffered between a master's scanner and its workers.
    pub queue_depth: usize,
    /// Staying gentle on a live PSOR: a keys/s cap and a latency bound, as for every bulk run.
    pub pacing: crate::engine::Pacing,
    /// Where the scan and the `TYPE`/`PTTL`/`MEMORY USAGE` reads go (`--read-from`).
    pub read_from: crate::connect::ReadFrom,
    /// How long a replica may take to catch up with its master at the start.
    pub replica_wait: std::time::Duration,
}

impl Default for SurveyOptions {
    fn default() -> Self {
        SurveyOptions {
            prefix: Vec::new(),
            delimiter: b":".to_vec(),
            depth: 3,
            top: 5,
            types: true,
            sample_every: 10,
            max_children: 100,
            max_nodes: 10_000,
            scan_count: 1000,
            workers: 2,
            queue_depth: 4,
            pacing: crate::engine::Pacing::default(),
            read_from: crate::connect::ReadFrom::Master,
            replica_wait: crate::connect::DEFAULT_REPLICA_WAIT,
        }
    }
}

impl SurveyOptions {
    /// Refuses options that make no sense (an empty delimiter, depth 0, no room for nodes).
    pub fn check(&self) -> Result<()> {
        if self.delimiter.is_empty() {
            return Err(Error::Refused("the delimiter must not be empty".into()));
        }
        if self.depth == 0 {
            return Err(Error::Refused("--depth must be at least 1".into()));
        }
        if self.max_children == 0 || self.max_nodes < 2 {
            return Err(Error::Refused("the tree needs room for at least one child".into()));
        }
        Ok(())
    }

    /// True when `key` is one of the keys whose bytes are measured.
    pub fn is_sampled(&self, key: &[u8]) -> bool {
        self.sample_every == 1 || (self.sample_every > 1 && name_hash(key).is_multiple_of(self.sample_every))
    }
}

/// FNV-1a with a splitmix64 finaliser: cheap, and its low bits are well mixed even for
/// names that differ only in their last digit.
pub(crate) fn name_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The result of a survey (its JSON form is documented in `docs/survey.md`).
#[derive(Clone, Debug, Serialize)]
pub struct Survey {
    /// The surveyed prefix, escaped (`""`: the whole keyspace).
    pub prefix: String,
    /// The delimiter, escaped.
    pub delimiter: String,
    /// Levels reported below the prefix.
    pub depth: usize,
    /// Biggest keys kept per node.
    pub top: usize,
    /// Whether `TYPE`/`PTTL` were asked (types and TTLs are absent otherwise).
    pub types: bool,
    /// One key in this many had its bytes measured (0: none, 1: all).
    pub sample_every: u64,
    /// Masters scanned (in parallel).
    pub masters: usize,
    /// Keys surveyed (the root's `keys`).
    pub keys: u64,
    /// Keys whose `MEMORY USAGE` was measured; `bytes` are estimated from them.
    pub sampled_keys: u64,
    /// Keys `SCAN` returned that were gone before they could be typed (not counted).
    pub vanished: u64,
    /// Keys counted in `(other)` nodes because the tree was full.
    pub folded_keys: u64,
    /// `(other)` nodes in the tree.
    pub folded_nodes: u64,
    /// Nodes in the tree.
    pub tree_nodes: usize,
    /// The per-node cap on named children.
    pub max_children: usize,
    /// The cap on nodes.
    pub max_nodes: usize,
    /// Wall time.
    pub seconds: f64,
    /// Where each master was scanned and read (`--read-from replica…`), and any fall back to
    /// the master; empty when every read went to the masters by choice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read_from: Vec<ReadChoice>,
    /// The tree's roots: one node, the surveyed prefix, with its `children`.
    pub nodes: Vec<SurveyNode>,
}

impl Survey {
    /// The root node (the surveyed prefix).
    pub fn root(&self) -> &SurveyNode {
        &self.nodes[0]
    }
}

/// A page of keys and what was learnt about them, from one master.
struct Facts {
    master: usize,
    keys: Vec<Vec<u8>>,
    facts: Vec<Option<KeyFacts>>,
}

/// Surveys `psor` (every master in parallel). `progress` counts keys found (`matched`) and
/// keys typed and counted (`done`); [`Progress::cancel`] stops the survey with
/// [`Error::Interrupted`].
pub fn survey(psor: &Psor, opts: &SurveyOptions, progress: Arc<Progress>) -> Result<Survey> {
    opts.check()?;
    let started = Instant::now();
    progress.total_keys.store(psor.dbsize()?, Relaxed);
    // Where each master is scanned and read (`--read-from`), chosen once (the catch-up wait
    // is here). A replica lost mid-run leaves its master to be read: the survey starts
    // over, so no key is counted twice.
    let engine =
        EngineOptions { read_from: opts.read_from, replica_wait: opts.replica_wait, ..EngineOptions::default() };
    let sides = crate::engine::ReadSide::choose(psor, &engine)?;
    let mut survey = loop {
        match survey_pass(psor, opts, &sides, &progress) {
            Err(e) if crate::engine::replica_lost(&sides, &e)? => {
                // The pipeline cancelled the pass on that error, not the user.
                progress.resume();
                continue;
            }
            other => break other?,
        }
    };
    survey.seconds = started.elapsed().as_secs_f64();
    survey.read_from = sides.iter().filter_map(|s| s.choice()).collect();
    Ok(survey)
}

/// One survey of every master, on the nodes `sides` read.
fn survey_pass(
    psor: &Psor,
    opts: &SurveyOptions,
    sides: &[Arc<crate::engine::ReadSide>],
    progress: &Arc<Progress>,
) -> Result<Survey> {
    let masters = psor.masters();
    // Open every connection first, so an unreachable server or a bad password stops the
    // survey before it has started.
    let mut plans = Vec::new();
    for side in sides {
        let scanner = side.connect()?;
        let workers = (0..opts.workers.max(1)).map(|_| side.connect()).collect::<Result<Vec<_>>>()?;
        plans.push((scanner, workers));
    }
    let mut tree = Tree::new(TreeOptions {
        root: opts.prefix.clone(),
        delimiter: opts.delimiter.clone(),
        depth: opts.depth,
        top: opts.top,
        max_children: opts.max_children,
        max_nodes: opts.max_nodes,
    });
    let progress_ref: &Progress = progress;
    let lanes = plans
        .into_iter()
        .enumerate()
        .map(|(master, (mut scanner, workers))| {
            let workers = workers.into_iter().map(|con| FactsOf { con, master, opts }).collect();
            pipeline::Lane::new(workers, move |emit| scan_master(&mut scanner, opts, progress_ref, emit))
        })
        .collect();
    let pacer = crate::engine::pacing::Pacer::start(&opts.pacing, psor)?;
    let out_depth = opts.queue_depth.max(1) * masters.len().max(1);
    let pipeline =
        pipeline::Pipeline { progress: progress_ref, pacer: Some(&pacer), queue_depth: opts.queue_depth, out_depth };
    // This thread folds the pages into the tree.
    let run = pipeline.run(lanes, |page| {
        let n = page.keys.len() as u64;
        for (key, facts) in page.keys.iter().zip(page.facts) {
            match facts {
                Some(f) => {
                    tree.add(page.master, key, f);
                }
                None => tree.add_vanished(),
            }
        }
        Progress::add(&progress_ref.done, n);
        Ok(())
    });
    pacer.stop();
    progress.scan_finished.store(true, Relaxed);
    run?;
    if progress.is_cancelled() {
        return Err(Error::Interrupted);
    }
    if opts.sample_every > 0 {
        sample_late(sides, &mut tree)?;
    }
    let summary = tree.finish();
    Ok(Survey {
        prefix: display_key(&opts.prefix),
        delimiter: display_key(&opts.delimiter),
        depth: opts.depth,
        top: opts.top,
        types: opts.types,
        sample_every: opts.sample_every,
        masters: masters.len(),
        keys: summary.root.keys,
        sampled_keys: summary.root.sampled_keys,
        vanished: summary.vanished,
        folded_keys: summary.folded_keys,
        folded_nodes: summary.folded_nodes,
        tree_nodes: summary.nodes,
        max_children: opts.max_children,
        max_nodes: opts.max_nodes,
        seconds: 0.0,
        read_from: Vec::new(),
        nodes: vec![summary.root],
    })
}

/// A master's connection as a worker of the [`pipeline`]: a page of keys in, their facts out
/// to the tree.
struct FactsOf<'a> {
    con: NodeConn,
    master: usize,
    opts: &'a SurveyOptions,
}

impl pipeline::Stage for FactsOf<'_> {
    type Item = Vec<u8>;
    type Out = Facts;
    type Error = Error;
    fn handle(&mut self, keys: Vec<Vec<u8>>, _progress: &Progress) -> Result<Option<Facts>> {
        let facts = facts_of(&mut self.con, self.opts, &keys)?;
        Ok(Some(Facts { master: self.master, keys, facts }))
    }
}

/// Pages through one master with the engine's SCAN loop (`engine::scan::scan_node`: a
/// server that restarts mid-scan is scanned again from the start), handing on pages of the
/// keys that really start with the prefix. Stops early (with `Ok`) when `emit` returns false.
fn scan_master(
    con: &mut NodeConn,
    opts: &SurveyOptions,
    progress: &Progress,
    emit: impl FnMut(Vec<Vec<u8>>) -> bool,
) -> Result<()> {
    let prefix = (!opts.prefix.is_empty()).then(|| KeyPrefix::new(opts.prefix.clone())).transpose()?;
    // Pages of about one SCAN reply, as before: the workers type and count a page at a time.
    // Under a latency bound, COUNT and the keys per facts pipeline come from it (pacing.rs).
    let engine = EngineOptions {
        scan_count: opts.scan_count,
        writers: opts.workers,
        pacing: opts.pacing.clone(),
        ..EngineOptions::default()
    };
    let engine = crate::engine::pacing::shape(&engine);
    let page = crate::engine::pacing::pipeline_keys(&engine, engine.scan_count);
    // SCAN may return a key again (its table shrank under the cursor): the tree would count
    // it twice. Such a repeat is a key of the cursor's last few pages; those are dropped.
    let engine = EngineOptions { batch_size: page, drop_repeats: true, ..engine };
    crate::engine::scan_node(con, prefix.as_ref(), &engine, progress, &MasterCounters::default(), emit)
}

/// One pipeline per page: `TYPE` + `PTTL` per key (if asked) and `MEMORY USAGE` per sampled
/// key. `None` for a key that is gone. Read-only, so the whole pipeline is retried on a
/// retryable failure.
fn facts_of(con: &mut NodeConn, opts: &SurveyOptions, keys: &[Vec<u8>]) -> Result<Vec<Option<KeyFacts>>> {
    let sampled: Vec<bool> = keys.iter().map(|k| opts.is_sampled(k)).collect();
    let mut pipe = redis::pipe();
    for (key, &s) in keys.iter().zip(&sampled) {
        if opts.types {
            pipe.cmd("TYPE").arg(key).cmd("PTTL").arg(key);
        }
        if s {
            pipe.cmd("MEMORY").arg("USAGE").arg(key).arg("SAMPLES").arg(0);
        }
    }
    let replies: Vec<Value> =
        if pipe.is_empty() { Vec::new() } else { con.retry("TYPE/PTTL/MEMORY USAGE", None, |c| pipe.query(c))? };
    let addr = con.addr().to_string();
    let bad = |detail: String| Error::Protocol { addr: addr.clone(), op: "TYPE/PTTL/MEMORY USAGE", detail };
    let mut it = replies.into_iter();
    let mut out = Vec::with_capacity(keys.len());
    for (key, &s) in keys.iter().zip(&sampled) {
        let mut facts = KeyFacts::default();
        let mut gone = false;
        if opts.types {
            let ty = match it.next() {
                Some(Value::SimpleString(t)) => t.into_bytes(),
                Some(Value::BulkString(t)) => t,
                other => return Err(bad(format!("TYPE {} answered {other:?}", display_key(key)))),
            };
            let pttl = match it.next() {
                Some(Value::Int(ms)) => ms,
                other => return Err(bad(format!("PTTL {} answered {other:?}", display_key(key)))),
            };
            facts.ty = KeyType::parse(&ty);
            facts.pttl_ms = Some(pttl);
            // TYPE `none`, or gone by PTTL (expired in between): the key no longer exists.
            gone = facts.ty.is_none() || pttl == -2;
        }
        if s {
            facts.bytes = match it.next() {
                Some(Value::Int(b)) => u64::try_from(b).ok(),
                Some(Value::Nil) => None,
                other => return Err(bad(format!("MEMORY USAGE {} answered {other:?}", display_key(key)))),
            };
        }
        out.push((!gone).then_some(facts));
    }
    Ok(out)
}

/// Measures one key of each node that has direct keys but no sample yet.
fn sample_late(sides: &[Arc<crate::engine::ReadSide>], tree: &mut Tree) -> Result<()> {
    let candidates = tree.unsampled_candidates();
    for (master, node) in sides.iter().enumerate() {
        let keys: Vec<&Vec<u8>> = candidates.iter().filter(|(m, _)| *m == master).map(|(_, k)| k).collect();
        if keys.is_empty() {
            continue;
        }
        let mut con = node.connect()?;
        for chunk in keys.chunks(1000) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("MEMORY").arg("USAGE").arg(key.as_slice()).arg("SAMPLES").arg(0);
            }
            let replies: Vec<Option<u64>> = con.retry("MEMORY USAGE", None, |c| pipe.query(c))?;
            for (key, bytes) in chunk.iter().zip(replies) {
                tree.add_late_sample(key, bytes);
            }
        }
    }
    Ok(())
}
