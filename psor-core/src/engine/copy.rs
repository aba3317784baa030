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

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use psor_formats::now_ms;
use redis::Value;

use super::compare;
use super::router::{Routed, Router};
use super::transcode::{self, Expiry, Path, Prepared, Rebuilt, TargetProfile};
use super::{is_fatal_for_run, run, scan, EngineOptions, Outcome, Samples, Writer};
use crate::connect::{key_slot, Psor};
use crate::embedded::rdb;
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
    run(source, &opts.from, engine, &progress, || {
        Ok(Copier {
            src: Router::new(source)?,
            dst: target.map(Router::new).transpose()?,
            opts: opts.clone(),
            src_cluster: source.is_cluster(),
            src_abs_ttl: source.version().has_pexpiretime(),
            same_keyspace_copy: target.is_none() && source.version().has_copy(),
            dst_version: profile.as_ref().map_or_else(|| dst.server().to_string(), |p| p.describe()),
            profile: profile.clone(),
            drop_field_ttls: engine.drop_field_ttls,
            dst_is_cluster: dst.is_cluster(),
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

/// One writer: routers to the source and (when it is another keyspace) the target.
struct Copier {
    src: Router,
    dst: Option<Router>,
    opts: CopyOptions,
    src_cluster: bool,
    src_abs_ttl: bool,
    /// Source and target are one keyspace that knows `COPY`.
    same_keyspace_copy: bool,
    dst_version: String,
    /// What the target reads; `None` for a copy inside one keyspace (payloads go as they are).
    profile: Option<TargetProfile>,
    drop_field_ttls: bool,
    dst_is_cluster: bool,
}

/// Keys read per DUMP pipeline: bounds the payload bytes held at once per writer.
const DUMP_CHUNK: usize = 256;

/// A key on its way: source name and slot, target name and slot.
struct Pair {
    src: Vec<u8>,
    src_slot: u16,
    dst: Vec<u8>,
    dst_slot: u16,
}

impl Writer for Copier {
    fn write(&mut self, keys: Vec<Vec<u8>>, progress: &Progress, samples: &Samples) -> Result<()> {
        let cluster = self.src_cluster || self.dst.is_some();
        let slot = |k: &[u8]| if cluster { key_slot(k) } else { 0 };
        let (mut local, mut remote) = (Vec::new(), Vec::new());
        for src in keys {
            let dst = self.opts.from.rewrite(&src, &self.opts.to);
            let pair = Pair { src_slot: slot(&src), dst_slot: slot(&dst), src, dst };
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
        for chunk in remote.chunks(DUMP_CHUNK) {
            self.dump_restore(chunk, progress, samples)?;
        }
        Ok(())
    }

    fn unstable(&self) -> BTreeSet<u16> {
        let mut all = self.src.unstable.clone();
        if let Some(d) = &self.dst {
            all.extend(d.unstable.iter().copied());
        }
        all
    }
}

impl Copier {
    fn dst_router(&mut self) -> &mut Router {
        self.dst.as_mut().unwrap_or(&mut self.src)
    }

    /// `COPY` (or `RENAMENX` / `RENAME` for a move) where source and target share a slot.
    fn copy_in_place(&mut self, pairs: &[Pair], progress: &Progress, samples: &Samples) -> Result<()> {
        let cmds: Vec<Routed> = pairs
            .iter()
            .map(|p| {
                let mut cmd = match (self.opts.move_keys, self.opts.replace) {
                    (false, _) => redis::cmd("COPY"),
                    (true, false) => redis::cmd("RENAMENX"),
                    (true, true) => redis::cmd("RENAME"),
                };
                cmd.arg(&p.src).arg(&p.dst);
                if self.opts.replace && !self.opts.move_keys {
                    cmd.arg("REPLACE");
                }
                Routed { slot: p.src_slot, cmd }
            })
            .collect();
        let op = if self.opts.move_keys { "RENAMENX" } else { "COPY" };
        let replies = self.src.run(op, &cmds)?;
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
            self.unlink_sources(&identical)?;
        }
        Ok(())
    }

    /// `DUMP` + `PEXPIRETIME` from the source, `RESTORE … ABSTTL` on the target key's master,
    /// then (for a move) `UNLINK` of the sources whose target is confirmed.
    fn dump_restore(&mut self, pairs: &[Pair], progress: &Progress, samples: &Samples) -> Result<()> {
        let ttl_cmd = if self.src_abs_ttl { "PEXPIRETIME" } else { "PTTL" };
        let mut cmds = Vec::with_capacity(pairs.len() * 2);
        for p in pairs {
            let mut dump = redis::cmd("DUMP");
            dump.arg(&p.src);
            let mut ttl = redis::cmd(ttl_cmd);
            ttl.arg(&p.src);
            cmds.push(Routed { slot: p.src_slot, cmd: dump });
            cmds.push(Routed { slot: p.src_slot, cmd: ttl });
        }
        let replies = self.src.run("DUMP", &cmds)?;
        let now = now_ms();
        // (pair, payload, ttl argument for RESTORE); payloads are moved out of the replies,
        // never copied: they may be large.
        let mut items = Vec::with_capacity(pairs.len());
        let mut replies = replies.into_iter();
        for p in pairs {
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
                    samples.failure(progress, &self.src.label(p.src_slot), &p.src, e);
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
            items.push((p, payload, ttl));
        }
        // The payload each target key gets: as it is, rewritten for the target, or (too big for
        // one RESTORE there) rebuilt in chunks, one key at a time.
        let mut rebuilt_busy = Vec::new();
        if let Some(profile) = self.profile.clone() {
            let mut fit = Vec::with_capacity(items.len());
            for (p, payload, ttl) in items {
                let (payload, path) = match profile.prepare(&payload, self.drop_field_ttls) {
                    Ok(Prepared::AsIs(_)) => (payload, Path::Restore),
                    Ok(prepared) => {
                        if prepared.dropped_field_ttls() {
                            progress.paths.dropped_field_ttls();
                        }
                        (prepared.bytes().to_vec(), prepared.path())
                    }
                    Err(why) => {
                        let label = self.src.label(p.src_slot);
                        samples.failure(progress, &label, &p.src, format!("not copied: {why}"));
                        continue;
                    }
                };
                if payload.len() as u64 <= profile.max_payload {
                    progress.paths.add(path);
                    fit.push((p, payload, ttl));
                    continue;
                }
                let item = (p, payload, ttl);
                match self.rebuild(&item, profile.max_payload)? {
                    Rebuilt::Done => {
                        progress.paths.add(Path::Rebuilt);
                        Progress::add(&progress.done, 1);
                        if self.opts.move_keys {
                            self.unlink_sources(&[p])?;
                        }
                    }
                    Rebuilt::Exists => rebuilt_busy.push(item),
                    Rebuilt::Unfit(why) => {
                        let label = self.src.label(p.src_slot);
                        samples.failure(progress, &label, &p.src, format!("not copied: {why}"));
                    }
                    Rebuilt::Failed(e) if is_fatal_for_run(&e) => {
                        let router = self.dst.as_mut().unwrap_or(&mut self.src);
                        return Err(command_error(router, p.dst_slot, "RESTORE", &p.dst, e));
                    }
                    Rebuilt::Failed(e) => {
                        let label = self.dst_router().label(p.dst_slot);
                        samples.failure(progress, &label, &p.dst, e)
                    }
                }
            }
            items = fit;
        }
        if items.is_empty() && rebuilt_busy.is_empty() {
            return Ok(());
        }
        let (abs, replace) = (self.src_abs_ttl, self.opts.replace);
        let cmds: Vec<Routed> = items
            .iter()
            .map(|(p, payload, ttl)| {
                let mut cmd = redis::cmd("RESTORE");
                cmd.arg(&p.dst).arg(*ttl).arg(payload);
                if abs && *ttl > 0 {
                    cmd.arg("ABSTTL");
                }
                if replace {
                    cmd.arg("REPLACE");
                }
                Routed { slot: p.dst_slot, cmd }
            })
            .collect();
        let replies = if cmds.is_empty() { Vec::new() } else { self.dst_router().run("RESTORE", &cmds)? };
        let mut restored: Vec<&Pair> = Vec::new();
        // Existing targets: of a RESTORE (BUSYKEY), or of a rebuild (RENAMENX found one).
        let mut busy: Vec<&(&Pair, Vec<u8>, i64)> = rebuilt_busy.iter().collect();
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
                            "the target ({}) refuses the source's DUMP payloads (damaged, or of a server psor \
                             does not know); nothing more written",
                            self.dst_version
                        )));
                    }
                    let slot = item.0.dst_slot;
                    let dst = &item.0.dst;
                    let router = self.dst.as_mut().unwrap_or(&mut self.src);
                    return Err(command_error(router, slot, "RESTORE", dst, e));
                }
                Value::ServerError(e) => {
                    let label = self.dst_router().label(item.0.dst_slot);
                    samples.failure(progress, &label, &item.0.dst, e)
                }
                other => return Err(protocol("RESTORE", &other)),
            }
        }
        if !busy.is_empty() {
            let cmds: Vec<Routed> = busy
                .iter()
                .flat_map(|(p, _, _)| {
                    let mut dump = redis::cmd("DUMP");
                    dump.arg(&p.dst);
                    let mut ttl = redis::cmd(ttl_cmd);
                    ttl.arg(&p.dst);
                    [Routed { slot: p.dst_slot, cmd: dump }, Routed { slot: p.dst_slot, cmd: ttl }]
                })
                .collect();
            let replies = self.dst_router().run("DUMP", &cmds)?;
            for ((p, payload, ttl), r) in busy.iter().zip(replies.chunks(2)) {
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
                            let theirs = compare::read(self.dst_router().conn_for(p.dst_slot)?, &p.dst)?;
                            compare::read(self.src.conn_for(p.src_slot)?, &p.src)?.same_as(&theirs)
                        }
                        _ => false,
                    };
                if same {
                    Progress::add(&progress.unchanged, 1);
                    restored.push(p);
                } else {
                    samples.conflict(progress, &p.src);
                }
            }
        }
        if self.opts.move_keys && !restored.is_empty() {
            self.unlink_sources(&restored)?;
        }
        Ok(())
    }

    /// A value too big for one `RESTORE`, rebuilt at its target key in chunks.
    fn rebuild(&mut self, item: &(&Pair, Vec<u8>, i64), max: u64) -> Result<Rebuilt> {
        let (p, payload, ttl) = item;
        let expiry = match (*ttl, self.src_abs_ttl) {
            (0, _) => Expiry::Never,
            (t, true) => Expiry::At(t),
            (t, false) => Expiry::In(t),
        };
        let (replace, drop, cluster) = (self.opts.replace, self.drop_field_ttls, self.dst_is_cluster);
        transcode::rebuild(self.dst_router(), p.dst_slot, cluster, &p.dst, payload, expiry, replace, max, drop)
    }

    fn unlink_sources(&mut self, pairs: &[&Pair]) -> Result<()> {
        let cmds: Vec<Routed> = pairs
            .iter()
            .map(|p| {
                let mut cmd = redis::cmd("UNLINK");
                cmd.arg(&p.src);
                Routed { slot: p.src_slot, cmd }
            })
            .collect();
        self.src.run("UNLINK", &cmds)?;
        Ok(())
    }
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
    for batch in scan(source, &opts.from, engine, progress.clone())? {
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
    Ok(outcome)
}

fn command_error(router: &mut Router, slot: u16, op: &'static str, key: &[u8], e: redis::ServerError) -> Error {
    Error::Command { addr: router.label(slot), op, key: Some(key.to_vec()), source: e.into() }
}

fn protocol(op: &'static str, v: &Value) -> Error {
    Error::Protocol { addr: "psor".into(), op, detail: format!("{v:?}") }
}
