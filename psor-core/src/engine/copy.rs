//! Copying (or moving) every key under prefix A to prefix B, on one server or to another.
//!
//! On one server `COPY` duplicates a value with its expiry inside Redis (`RENAMENX` for a
//! move: atomic, nothing in flight can be lost). To another server each key travels as
//! `DUMP` + `PEXPIRETIME` and arrives with `RESTORE … ABSTTL`, so its expiry is the same
//! instant, not a drifted relative TTL (servers before 7.0 fall back to `PTTL`).
//!
//! An existing target key is a conflict left alone unless `replace` — except when it already
//! holds identical content and expiry: that is a rerun (or SCAN returning a key twice) and is
//! counted as `unchanged`. A move deletes a source key only once its target is confirmed.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use redis::Value;

use super::{compare, is_fatal_for_run, run, scan, EngineOptions, Outcome, Samples, Writer};
use crate::connect::{NodeConn, Psor};
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
    if opts.dry_run {
        return dry_run(source, target.unwrap_or(source), opts, engine, progress);
    }
    let use_dump = target.is_some() || !source.version().has_copy();
    let dst = target.unwrap_or(source);
    if dst.masters().len() != 1 {
        return Err(Error::Refused("copying into a Redis Cluster is not supported by this build yet".into()));
    }
    let dst_node = &dst.masters()[0];
    run(source, &opts.from, engine, &progress, |node| {
        let src = node.connect()?;
        if use_dump {
            Ok(Copier::Dump(DumpRestore {
                src,
                dst: dst_node.connect()?,
                opts: opts.clone(),
                src_abs_ttl: source.version().has_pexpiretime(),
                dst_version: dst.version().to_string(),
            }))
        } else {
            Ok(Copier::Same(SameServer { con: src, opts: opts.clone() }))
        }
    })
}

enum Copier {
    Same(SameServer),
    Dump(DumpRestore),
}

impl Writer for Copier {
    fn write(&mut self, keys: Vec<Vec<u8>>, progress: &Progress, samples: &Samples) -> Result<()> {
        match self {
            Copier::Same(w) => w.write(keys, progress, samples),
            Copier::Dump(w) => w.write(keys, progress, samples),
        }
    }
}

/// Copy within one server with `COPY` (or move with `RENAMENX` / `RENAME`).
struct SameServer {
    con: NodeConn,
    opts: CopyOptions,
}

impl SameServer {
    fn write(&mut self, keys: Vec<Vec<u8>>, progress: &Progress, samples: &Samples) -> Result<()> {
        let targets: Vec<Vec<u8>> = keys.iter().map(|k| self.opts.from.rewrite(k, &self.opts.to)).collect();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for (src, dst) in keys.iter().zip(&targets) {
            match (self.opts.move_keys, self.opts.replace) {
                (false, false) => pipe.cmd("COPY").arg(src).arg(dst),
                (false, true) => pipe.cmd("COPY").arg(src).arg(dst).arg("REPLACE"),
                (true, false) => pipe.cmd("RENAMENX").arg(src).arg(dst),
                (true, true) => pipe.cmd("RENAME").arg(src).arg(dst),
            };
        }
        let op = if self.opts.move_keys { "RENAMENX" } else { "COPY" };
        let replies: Vec<Value> = self.con.retry(op, keys.first().map(Vec::as_slice), |c| pipe.query(c))?;
        let mut existing = Vec::new();
        for ((src, dst), reply) in keys.iter().zip(&targets).zip(replies) {
            match reply {
                Value::Int(1) | Value::Okay => Progress::add(&progress.done, 1),
                Value::Int(0) => existing.push((src.clone(), dst.clone())),
                Value::ServerError(e) if e.details().is_some_and(|d| d.contains("no such key")) => {
                    Progress::add(&progress.vanished, 1)
                }
                Value::ServerError(e) if is_fatal_for_run(&e) => return Err(command_error(&self.con, op, src, e)),
                Value::ServerError(e) => samples.failure(progress, self.con.addr(), src, e),
                other => return Err(protocol(&self.con, op, &other)),
            }
        }
        if existing.is_empty() {
            return Ok(());
        }
        // Target exists: identical content and expiry means a rerun, anything else a conflict.
        let mut pipe = redis::pipe();
        for (src, dst) in &existing {
            pipe.cmd("DUMP").arg(src).cmd("DUMP").arg(dst);
            pipe.cmd("PEXPIRETIME").arg(src).cmd("PEXPIRETIME").arg(dst);
        }
        let replies: Vec<Value> = self.con.retry("DUMP", None, |c| pipe.query(c))?;
        let mut identical_sources = Vec::new();
        for ((src, dst), r) in existing.iter().zip(replies.chunks(4)) {
            let same = matches!(&r[0], Value::BulkString(_))
                && r[2] == r[3]
                && (r[0] == r[1] || compare::same_content(&mut self.con, src, None, dst)?);
            if same {
                Progress::add(&progress.unchanged, 1);
                identical_sources.push(src);
            } else if matches!(r[0], Value::Nil) {
                Progress::add(&progress.vanished, 1);
            } else {
                samples.conflict(progress, src);
            }
        }
        if self.opts.move_keys && !identical_sources.is_empty() {
            // The target already holds this exact value: the move is complete once the source goes.
            self.con.retry("UNLINK", None, |c| redis::cmd("UNLINK").arg(&identical_sources).query::<u64>(c))?;
        }
        Ok(())
    }
}

/// Copy to another server: `DUMP` + `PEXPIRETIME` on the source, `RESTORE … ABSTTL` on the
/// target, then (for a move) `UNLINK` of the sources whose restore succeeded.
struct DumpRestore {
    src: NodeConn,
    dst: NodeConn,
    opts: CopyOptions,
    src_abs_ttl: bool,
    dst_version: String,
}

/// Keys read per DUMP pipeline: bounds the payload bytes held at once per writer.
const DUMP_CHUNK: usize = 256;

impl DumpRestore {
    fn write(&mut self, keys: Vec<Vec<u8>>, progress: &Progress, samples: &Samples) -> Result<()> {
        for chunk in keys.chunks(DUMP_CHUNK) {
            self.write_chunk(chunk, progress, samples)?;
        }
        Ok(())
    }

    fn write_chunk(&mut self, keys: &[Vec<u8>], progress: &Progress, samples: &Samples) -> Result<()> {
        let ttl_cmd = if self.src_abs_ttl { "PEXPIRETIME" } else { "PTTL" };
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("DUMP").arg(k).cmd(ttl_cmd).arg(k);
        }
        let replies: Vec<Value> = self.src.retry("DUMP", keys.first().map(Vec::as_slice), |c| pipe.query(c))?;
        let now = now_ms();
        // (source key, target key, payload, ttl argument for RESTORE)
        let mut items = Vec::with_capacity(keys.len());
        for (key, r) in keys.iter().zip(replies.chunks(2)) {
            let (payload, ttl) = match (&r[0], &r[1]) {
                (Value::BulkString(p), Value::Int(t)) => (p, *t),
                (Value::Nil, _) | (_, Value::Int(-2)) => {
                    Progress::add(&progress.vanished, 1);
                    continue;
                }
                (Value::ServerError(e), _) | (_, Value::ServerError(e)) => {
                    samples.failure(progress, self.src.addr(), key, e);
                    continue;
                }
                (other, _) => return Err(protocol(&self.src, "DUMP", other)),
            };
            let ttl = match ttl {
                -1 => 0,
                t if self.src_abs_ttl && t <= now => {
                    Progress::add(&progress.expired, 1);
                    continue;
                }
                t => t,
            };
            items.push((key, self.opts.from.rewrite(key, &self.opts.to), payload.clone(), ttl));
        }
        if items.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for (_, dst, payload, ttl) in &items {
            pipe.cmd("RESTORE").arg(dst).arg(*ttl).arg(payload);
            if self.src_abs_ttl && *ttl > 0 {
                pipe.arg("ABSTTL");
            }
            if self.opts.replace {
                pipe.arg("REPLACE");
            }
        }
        let replies: Vec<Value> = self.dst.retry("RESTORE", None, |c| pipe.query(c))?;
        let mut restored: Vec<&Vec<u8>> = Vec::new();
        let mut busy = Vec::new();
        for (item, reply) in items.iter().zip(replies) {
            match reply {
                Value::Okay => {
                    Progress::add(&progress.done, 1);
                    restored.push(item.0);
                }
                Value::ServerError(e) if e.code() == "BUSYKEY" => busy.push(item),
                Value::ServerError(e) if is_fatal_for_run(&e) => {
                    if e.details().is_some_and(|d| d.contains("DUMP payload version")) {
                        return Err(Error::Refused(format!(
                            "{} (Redis {}) refuses the source's DUMP payloads: they come from a newer Redis; \
                             copy to a server of the same or a newer version",
                            self.dst.addr(),
                            self.dst_version
                        )));
                    }
                    return Err(command_error(&self.dst, "RESTORE", &item.1, e));
                }
                Value::ServerError(e) => samples.failure(progress, self.dst.addr(), &item.1, e),
                other => return Err(protocol(&self.dst, "RESTORE", &other)),
            }
        }
        if !busy.is_empty() {
            let mut pipe = redis::pipe();
            for (_, dst, _, _) in &busy {
                pipe.cmd("DUMP").arg(dst).cmd(ttl_cmd).arg(dst);
            }
            let replies: Vec<Value> = self.dst.retry("DUMP", None, |c| pipe.query(c))?;
            for ((src, dst, payload, ttl), r) in busy.iter().zip(replies.chunks(2)) {
                let same_payload = match &r[0] {
                    Value::BulkString(p) if p == payload => true,
                    Value::BulkString(_) => compare::same_content(&mut self.src, src, Some(&mut self.dst), dst)?,
                    _ => false,
                };
                let same_ttl = match (&r[1], self.src_abs_ttl) {
                    (Value::Int(-1), _) => *ttl == 0,
                    (Value::Int(t), true) => t == ttl,
                    // Relative TTLs drift by the round trip: a second's slack.
                    (Value::Int(t), false) => *ttl > 0 && (t - ttl).abs() <= 1000,
                    _ => false,
                };
                if same_payload && same_ttl {
                    Progress::add(&progress.unchanged, 1);
                    restored.push(src);
                } else {
                    samples.conflict(progress, src);
                }
            }
        }
        if self.opts.move_keys && !restored.is_empty() {
            self.src.retry("UNLINK", None, |c| redis::cmd("UNLINK").arg(&restored).query::<u64>(c))?;
        }
        Ok(())
    }
}

fn dry_run(
    source: &Psor,
    target: &Psor,
    opts: &CopyOptions,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<Outcome> {
    let started = Instant::now();
    let samples = Samples::new(engine.keep_samples);
    let mut dst = target.masters().first().ok_or_else(|| Error::Refused("the target has no master".into()))?.connect()?;
    let mut sample = Vec::new();
    for batch in scan(source, &opts.from, engine, progress.clone())? {
        let keys = batch?;
        let targets: Vec<Vec<u8>> = keys.iter().map(|k| opts.from.rewrite(k, &opts.to)).collect();
        let mut pipe = redis::pipe();
        for t in &targets {
            pipe.cmd("EXISTS").arg(t);
        }
        let exists: Vec<u8> = dst.retry("EXISTS", None, |c| pipe.query(c))?;
        for (key, e) in keys.iter().zip(exists) {
            if e == 1 && !opts.replace {
                samples.conflict(&progress, key);
            } else {
                Progress::add(&progress.done, 1);
                if sample.len() < opts.sample {
                    sample.push(display_key(key));
                }
            }
        }
    }
    let mut outcome = samples.into_outcome(&progress, started, true);
    outcome.sample = sample;
    Ok(outcome)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn command_error(con: &NodeConn, op: &'static str, key: &[u8], e: redis::ServerError) -> Error {
    Error::Command { addr: con.addr().to_string(), op, key: Some(key.to_vec()), source: e.into() }
}

fn protocol(con: &NodeConn, op: &'static str, v: &Value) -> Error {
    Error::Protocol { addr: con.addr().to_string(), op, detail: format!("{v:?}") }
}
