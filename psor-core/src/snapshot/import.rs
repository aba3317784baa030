//! Import: a `.psnap` file back into a keyspace, checked whole before the first write.
//!
//! First pass: every checksum, every record, the totals (the format's full validation), plus
//! what this module needs to refuse early: keys outside `--rename`'s prefix, and payloads of
//! an RDB version the target server is known not to read. Only then the second pass streams
//! the records (bounded memory: one read-ahead batch of frames and a few record batches) to
//! writer threads that send pipelined `RESTORE key ttl payload ABSTTL [REPLACE]`, each
//! through its own router to the master of the (renamed) key's slot.
//!
//! An existing key is a conflict left alone unless `replace`; one already holding the same
//! `DUMP` body and expiry counts as `unchanged`, so rerunning an interrupted import is safe.
//! A key whose expiry has already passed is not restored; it is counted `expired`.

use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use psor_embedded::rdb;
use psor_formats::{Record, SnapshotReader};
use redis::Value;

use super::{compare, describe_selection, is_fatal_for_run, now_ms, open_router, where_is, Error, Result, Samples};
use crate::connect::{describe_version, key_slot, Psor};
use crate::engine::router::{Routed, Router};
use crate::engine::transcode::{self, Path, Prepared, TargetProfile};
use crate::engine::{pipeline, EngineOptions, KeyFailure};
use crate::keys::{display_key, KeyPrefix};
use crate::progress::{Counts, Progress};

/// `--rename OLD=NEW`: every key must start with `from`; it is restored with `to` instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rename {
    /// The prefix the file's keys have.
    pub from: KeyPrefix,
    /// The prefix they get.
    pub to: KeyPrefix,
}

impl Rename {
    /// Parses `OLD=NEW` (escapes as in prefixes; an `=` inside OLD is written `\x3d`).
    pub fn parse(text: &str) -> crate::Result<Rename> {
        let (from, to) = text
            .split_once('=')
            .ok_or_else(|| crate::Error::Refused(format!("--rename `{text}`: expected OLD=NEW (two key prefixes)")))?;
        Ok(Rename { from: KeyPrefix::parse_escaped(from)?, to: KeyPrefix::parse_escaped(to)? })
    }

    fn apply(&self, key: &[u8]) -> Vec<u8> {
        self.from.rewrite(key, &self.to)
    }
}

/// What to import, and how.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The snapshot file.
    pub path: PathBuf,
    /// Rewrite the key prefix.
    pub rename: Option<Rename>,
    /// Overwrite existing keys.
    pub replace: bool,
    /// Check the file and count what would be restored and what would conflict; write nothing.
    pub dry_run: bool,
    /// How many keys a dry run shows.
    pub sample: usize,
}

/// What an import did (or, dry, would do).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ImportOutcome {
    /// The file.
    pub path: PathBuf,
    /// Nothing was written.
    pub dry_run: bool,
    /// The source server's version, from the file.
    pub source_server_version: String,
    /// The file's selection, as text.
    pub selection: String,
    /// When the file was written (Unix ms).
    pub created_at_ms: i64,
    /// Keys in the file.
    pub keys_in_file: u64,
    /// `matched` = keys in the file; `done` = restored (dry: would be); `unchanged`,
    /// `conflicts`, `expired` (expiry already past: skipped), `failed`.
    #[serde(flatten)]
    pub counts: Counts,
    /// The first conflicting keys (target names), escaped.
    pub conflict_keys: Vec<String>,
    /// The first keys skipped because their expiry had passed (target names), escaped.
    pub expired_keys: Vec<String>,
    /// The first failures.
    pub failures: Vec<KeyFailure>,
    /// Dry run: the first keys that would be restored (target names), escaped.
    pub sample: Vec<String>,
    /// Wall time, including the verification pass.
    pub seconds: f64,
    /// Stopped before the end ([`Progress::cancel`], Ctrl-C): the counts are exactly what
    /// was restored, and importing the same file again finishes the job (what is already
    /// there counts as unchanged).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// How many keys were restored as they were in the file, transcoded for the target, rebuilt.
    pub paths: transcode::Paths,
}

/// Records per batch are bounded by count (`EngineOptions::batch_size`) and by payload bytes.
const BATCH_BYTES: usize = 16 << 20;

/// Imports `opts.path` into `target`. Nothing is written unless the whole file checks out.
pub fn import(
    target: &Psor,
    opts: &ImportOptions,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<ImportOutcome> {
    let started = Instant::now();
    // Under a latency bound, the keys per RESTORE pipeline come from the bound (pacing.rs).
    let engine = &crate::engine::pacing::shape(engine);
    // The run's own counts, whatever earlier runs added to a shared `progress`.
    let base = progress.snapshot().counts;
    let file_err = |source| Error::File { path: opts.path.clone(), source };
    let file = std::fs::File::open(&opts.path).map_err(|source| Error::Open { path: opts.path.clone(), source })?;
    let mut reader = SnapshotReader::open(BufReader::with_capacity(1 << 20, file)).map_err(file_err)?;
    let header = reader.header().clone();
    let keys_in_file = reader.footer().totals.keys;

    // What the target reads: each record's path (as it is, or transcoded) is decided from it.
    let profile = transcode::profile(target, engine.max_payload)?;
    // Pass 1: everything the format checks, and what would make this import refuse.
    let (mut max_rdb, mut outside, mut first_outside) = (0u16, 0u64, None::<Vec<u8>>);
    let (mut field_ttls, mut first_field_ttls) = (0u64, None::<Vec<u8>>);
    let mut first_bad: Option<(Vec<u8>, String)> = None;
    reader
        .for_each_record(|r| {
            if !rdb::known_version(r.rdb_version) {
                max_rdb = max_rdb.max(r.rdb_version);
            } else if !profile.reads_version(r.rdb_version, r.payload.first().copied().unwrap_or(0xff)) {
                match profile.prepare(r.payload, engine.drop_field_ttls) {
                    Ok(_) => {}
                    Err(transcode::Unfit::FieldTtls) => {
                        field_ttls += 1;
                        first_field_ttls.get_or_insert_with(|| r.key.to_vec());
                    }
                    Err(transcode::Unfit::Undecodable(why)) => {
                        first_bad.get_or_insert_with(|| (r.key.to_vec(), why));
                    }
                }
            }
            if let Some(rename) = &opts.rename {
                if !rename.from.matches(r.key) {
                    outside += 1;
                    first_outside.get_or_insert_with(|| r.key.to_vec());
                }
            }
        })
        .map_err(file_err)?;
    if let (Some(rename), Some(first)) = (&opts.rename, first_outside) {
        return Err(Error::Refused(format!(
            "{}: {outside} of {keys_in_file} keys do not start with {} (first: {}); --rename rewrites \
             one prefix and does not mix renamed and unrenamed keys; nothing written",
            opts.path.display(),
            rename.from,
            display_key(&first)
        )));
    }
    let version = target.version();
    let server = target.server();
    if version.major < 5 {
        return Err(crate::Error::ServerTooOld {
            addr: where_is(target),
            version: server.to_string(),
            what: "RESTORE … ABSTTL",
            needed: "5.0",
        }
        .into());
    }
    if max_rdb > 0 {
        return Err(Error::Refused(format!(
            "{}: the snapshot holds DUMP payloads of RDB version {max_rdb} (taken from {}), which psor does not \
             know and {} ({}, redis_version {version}) cannot be sure to read; nothing written",
            opts.path.display(),
            header.source.server_version,
            where_is(target),
            profile.describe(),
        )));
    }
    if let Some((key, why)) = first_bad {
        return Err(Error::Refused(format!(
            "{}: {} is {why}; {} ({}) does not read it as it is; nothing written",
            opts.path.display(),
            display_key(&key),
            where_is(target),
            profile.describe(),
        )));
    }
    if let Some(first) = first_field_ttls {
        return Err(Error::Refused(format!(
            "{}: {field_ttls} keys are hashes with field expirations (first: {}), which {} ({}) cannot hold; \
             nothing written: import with --drop-field-ttls to restore their fields without the fields' expiries",
            opts.path.display(),
            display_key(&first),
            where_is(target),
            profile.describe(),
        )));
    }

    // Pass 2: stream the records to writer threads.
    progress.total_keys.store(keys_in_file, std::sync::atomic::Ordering::Relaxed);
    let writers = (0..engine.writers.max(1))
        .map(|_| {
            open_router(target).map(|router| Restorer {
                router,
                replace: opts.replace,
                dry_run: opts.dry_run,
                abs_expiry: version.has_pexpiretime(),
                version: profile.describe(),
                profile: profile.clone(),
                drop_field_ttls: engine.drop_field_ttls,
                cluster: target.is_cluster(),
                source_version: describe_version(&header.source.server_version),
            })
        })
        .collect::<crate::Result<Vec<_>>>()?;
    let samples = Samples::new(engine.keep_samples);
    let expired = Samples::new(engine.keep_samples);
    let would = Samples::new(opts.sample);
    let batch_size = crate::engine::pacing::pipeline_keys(engine, engine.batch_size);
    let ctx =
        Ctx { progress: &progress, samples: &samples, expired: &expired, would: &would, rename: opts.rename.as_ref() };
    let ctx_ref = &ctx;
    let workers: Vec<Restore> = writers.into_iter().map(|writer| Restore { writer, ctx: ctx_ref }).collect();
    let progress_ref: &Progress = &progress;
    let records = pipeline::Lane::new(workers, |emit| {
        let (mut batch, mut bytes) = (Vec::new(), 0usize);
        for r in reader.records() {
            if progress_ref.is_cancelled() {
                return Ok(());
            }
            // An error: the file changed on disk since pass 1.
            let r = r.map_err(file_err)?;
            Progress::add(&progress_ref.examined, 1);
            Progress::add(&progress_ref.matched, 1);
            bytes += r.payload.len() + r.key.len();
            batch.push(r);
            if batch.len() >= batch_size || bytes >= BATCH_BYTES {
                bytes = 0;
                if !emit(std::mem::take(&mut batch)) {
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() {
            emit(batch);
        }
        Ok(())
    });
    // A dry run writes nothing, but its reads of the target are paced all the same.
    // Interrupted: the batches still queued are left unwritten (and uncounted).
    let pacer = crate::engine::pacing::Pacer::start(&engine.pacing, target)?;
    let run =
        pipeline::Pipeline { progress: &progress, pacer: Some(&pacer), queue_depth: engine.queue_depth, out_depth: 1 }
            .run(vec![records], |()| Ok(()));
    pacer.stop();
    run?;
    let interrupted = progress.is_cancelled();
    progress.scan_finished.store(!interrupted, std::sync::atomic::Ordering::Relaxed);
    let (failures, conflict_keys) = samples.into_parts();
    let (_, expired_keys) = expired.into_parts();
    let (_, sample) = would.into_parts();
    Ok(ImportOutcome {
        path: opts.path.clone(),
        dry_run: opts.dry_run,
        source_server_version: header.source.server_version.clone(),
        selection: describe_selection(&header.source.selection),
        created_at_ms: header.created_at_ms,
        keys_in_file,
        counts: progress.snapshot().counts - base,
        conflict_keys,
        expired_keys,
        failures,
        sample,
        seconds: started.elapsed().as_secs_f64(),
        interrupted,
        paths: progress.paths.snapshot(),
    })
}

/// A [`Restorer`] as a worker of the [`pipeline`]: records in, nothing out.
struct Restore<'a> {
    writer: Restorer,
    ctx: &'a Ctx<'a>,
}

impl pipeline::Stage for Restore<'_> {
    type Item = Record;
    type Out = ();
    type Error = Error;
    fn handle(&mut self, batch: Vec<Record>, _progress: &Progress) -> Result<Option<()>> {
        self.writer.write(batch, self.ctx).map(|()| None)
    }
}

struct Ctx<'a> {
    progress: &'a Progress,
    /// Failures and conflict keys.
    samples: &'a Samples,
    expired: &'a Samples,
    would: &'a Samples,
    rename: Option<&'a Rename>,
}

/// One writer: a router with a connection to each master of the target.
struct Restorer {
    router: Router,
    replace: bool,
    dry_run: bool,
    /// The target has `PEXPIRETIME` (7.0+); before, expiries are compared through `PTTL`. The
    /// same versions keep Redis 7.0's stream counters, compared where the payload has them.
    abs_expiry: bool,
    version: String,
    source_version: String,
    profile: TargetProfile,
    drop_field_ttls: bool,
    cluster: bool,
}

/// A record on its way to the target: target key name and its slot, payload, absolute expiry.
struct Item {
    key: Vec<u8>,
    slot: u16,
    record: Record,
    /// The payload rewritten for the target, when it does not read the record's as it is.
    send: Option<Vec<u8>>,
}

impl Item {
    fn payload(&self) -> &[u8] {
        self.send.as_deref().unwrap_or(&self.record.payload)
    }
}

impl Restorer {
    /// A server error on one key: a systemic one (out of memory, no permission…) stops the
    /// import; any other fails just that key, counted and sampled.
    fn key_error(
        &mut self,
        op: &'static str,
        slot: u16,
        key: &[u8],
        e: &redis::ServerError,
        ctx: &Ctx<'_>,
    ) -> Result<()> {
        if is_fatal_for_run(e) {
            return Err(crate::Error::Command {
                addr: self.router.label(slot),
                op,
                key: Some(key.to_vec()),
                source: e.clone().into(),
            }
            .into());
        }
        Progress::add(&ctx.progress.failed, 1);
        ctx.samples.sample_failure(&self.router.label(slot), key, e);
        Ok(())
    }

    /// A reply psor does not expect from `op`.
    fn unexpected(&mut self, op: &'static str, slot: u16, v: &Value) -> Error {
        crate::Error::Protocol { addr: self.router.label(slot), op, detail: format!("{v:?}") }.into()
    }

    fn write(&mut self, batch: Vec<Record>, ctx: &Ctx<'_>) -> Result<()> {
        let now = now_ms();
        let mut items = Vec::with_capacity(batch.len());
        for record in batch {
            let key = match ctx.rename {
                Some(r) => r.apply(&record.key),
                None => record.key.clone(),
            };
            if record.expire_at_ms.is_some_and(|t| t <= now) {
                Progress::add(&ctx.progress.expired, 1);
                ctx.expired.key(&key);
                continue;
            }
            // Checked in pass 1; a payload that changed since (or whose record lied about its
            // version) is the target refusing it.
            let send = match self.profile.prepare(&record.payload, self.drop_field_ttls) {
                Ok(Prepared::AsIs(_)) => {
                    ctx.progress.paths.add(Path::Restore);
                    None
                }
                Ok(p) => {
                    ctx.progress.paths.add(p.path());
                    if p.dropped_field_ttls() {
                        ctx.progress.paths.dropped_field_ttls();
                    }
                    Some(p.bytes().to_vec())
                }
                Err(why) => {
                    return Err(Error::TargetRefused(format!(
                        "{} ({}) cannot take the DUMP payload of {} (RDB version {}, taken from {}): {why}",
                        self.router.label(key_slot(&key)),
                        self.version,
                        display_key(&key),
                        record.rdb_version,
                        self.source_version
                    )))
                }
            };
            let slot = key_slot(&key);
            let size = send.as_ref().map_or(record.payload.len(), Vec::len) as u64;
            if size > self.profile.max_payload && !self.dry_run {
                // Too big for one RESTORE on this target: rebuilt in chunks, now.
                self.rebuild(&key, slot, &record, send.as_deref(), ctx)?;
                continue;
            }
            items.push(Item { slot, key, record, send });
        }
        if items.is_empty() {
            return Ok(());
        }
        if self.dry_run {
            return self.dry(items, ctx);
        }
        let cmds: Vec<Routed> = items
            .iter()
            .map(|it| {
                let mut cmd = redis::cmd("RESTORE");
                cmd.arg(&it.key).arg(it.record.expire_at_ms.unwrap_or(0)).arg(it.payload());
                if it.record.expire_at_ms.is_some() {
                    cmd.arg("ABSTTL");
                }
                if self.replace {
                    cmd.arg("REPLACE");
                }
                Routed { slot: it.slot, cmd }
            })
            .collect();
        // A retried RESTORE of a key the lost attempt already wrote meets BUSYKEY, finds the
        // same content and counts it unchanged: retrying is safe.
        let replies = self.router.run("RESTORE", &cmds)?;
        let mut busy = Vec::new();
        for (it, reply) in items.into_iter().zip(replies) {
            match reply {
                Value::Okay => Progress::add(&ctx.progress.done, 1),
                Value::ServerError(e) if e.code() == "BUSYKEY" => busy.push(it),
                Value::ServerError(e) if e.details().is_some_and(|d| d.contains("DUMP payload version")) => {
                    return Err(Error::TargetRefused(format!(
                        "{} ({}) refuses the DUMP payload of {} (RDB version {}, taken from {}): \
                         it comes from a newer Redis (or is damaged); import into a server of the same or a newer \
                         version",
                        self.router.label(it.slot),
                        self.version,
                        display_key(&it.key),
                        it.record.rdb_version,
                        self.source_version
                    )));
                }
                Value::ServerError(e) => self.key_error("RESTORE", it.slot, &it.key, &e, ctx)?,
                other => return Err(self.unexpected("RESTORE", it.slot, &other)),
            }
        }
        self.classify_existing(&busy, ctx)
    }

    /// A record whose payload exceeds the target's `proto-max-bulk-len`, rebuilt at `key` in
    /// chunks (see [`transcode::rebuild`]). An existing key with the same content and expiry is
    /// `unchanged`, any other a conflict.
    fn rebuild(&mut self, key: &[u8], slot: u16, record: &Record, send: Option<&[u8]>, ctx: &Ctx<'_>) -> Result<()> {
        let payload = send.unwrap_or(&record.payload);
        let expiry = record.expire_at_ms.map_or(transcode::Expiry::Never, transcode::Expiry::At);
        let (max, drop) = (self.profile.max_payload, self.drop_field_ttls);
        let cluster = self.cluster;
        match transcode::rebuild(&mut self.router, slot, cluster, key, payload, expiry, self.replace, max, drop)? {
            transcode::Rebuilt::Done => {
                ctx.progress.paths.add(Path::Rebuilt);
                Progress::add(&ctx.progress.done, 1);
            }
            transcode::Rebuilt::Exists => {
                let ttl_cmd = if self.abs_expiry { "PEXPIRETIME" } else { "PTTL" };
                let con = self.router.conn_for(slot)?;
                let ttl: i64 = con.retry(ttl_cmd, Some(key), |c| redis::cmd(ttl_cmd).arg(key).query(c))?;
                let same_expiry = match (ttl, record.expire_at_ms) {
                    (-1, None) => true,
                    (t, Some(at)) if self.abs_expiry => t == at,
                    (t, Some(at)) => t >= 0 && (now_ms() + t - at).abs() <= 1000,
                    _ => false,
                };
                // A stream is decoded and digested as it reads live (no scratch key: too big).
                let counters = self.abs_expiry;
                let same = match compare::same_as_stream_payload(con, key, payload, counters)? {
                    Some(same) => same,
                    None => {
                        let theirs = crate::engine::compare::read(con, key)?;
                        let ours = rdb::decode(payload).map(|v| crate::engine::compare::content_of(&v));
                        ours.is_ok_and(|o| o.same_as(&theirs))
                    }
                };
                if same_expiry && same {
                    Progress::add(&ctx.progress.unchanged, 1);
                } else {
                    Progress::add(&ctx.progress.conflicts, 1);
                    ctx.samples.key(key);
                }
            }
            transcode::Rebuilt::Unfit(why) => {
                Progress::add(&ctx.progress.failed, 1);
                ctx.samples.sample_failure(&self.router.label(slot), key, format!("not restored: {why}"));
            }
            transcode::Rebuilt::Failed(e) => self.key_error("RESTORE", slot, key, &e, ctx)?,
        }
        Ok(())
    }

    /// Dry run: existing keys are conflicts (or unchanged); the rest would be restored.
    fn dry(&mut self, items: Vec<Item>, ctx: &Ctx<'_>) -> Result<()> {
        let cmds: Vec<Routed> = items
            .iter()
            .map(|it| {
                let mut cmd = redis::cmd("EXISTS");
                cmd.arg(&it.key);
                Routed { slot: it.slot, cmd }
            })
            .collect();
        let exists = self.router.run("EXISTS", &cmds)?;
        let mut existing = Vec::new();
        for (it, e) in items.into_iter().zip(exists) {
            let e = match e {
                Value::Int(n) => n,
                Value::ServerError(e) => {
                    self.key_error("EXISTS", it.slot, &it.key, &e, ctx)?;
                    continue;
                }
                other => return Err(self.unexpected("EXISTS", it.slot, &other)),
            };
            if e == 1 && !self.replace {
                existing.push(it);
            } else {
                Progress::add(&ctx.progress.done, 1);
                ctx.would.key(&it.key);
            }
        }
        self.classify_existing(&existing, ctx)
    }

    /// Keys that exist on the target: the same content (same `DUMP` body, the payload without
    /// its version and CRC trailer, or else the same content read by type) and the same expiry
    /// is `unchanged`; anything else a conflict.
    fn classify_existing(&mut self, items: &[Item], ctx: &Ctx<'_>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let ttl_cmd = if self.abs_expiry { "PEXPIRETIME" } else { "PTTL" };
        let cmds: Vec<Routed> = items
            .iter()
            .flat_map(|it| {
                let (mut dump, mut ttl) = (redis::cmd("DUMP"), redis::cmd(ttl_cmd));
                dump.arg(&it.key);
                ttl.arg(&it.key);
                [Routed { slot: it.slot, cmd: dump }, Routed { slot: it.slot, cmd: ttl }]
            })
            .collect();
        let replies = self.router.run("DUMP", &cmds)?;
        let now = now_ms();
        for (it, r) in items.iter().zip(replies.chunks(2)) {
            // The reads failing (a missing permission...) is an error, not a conflict.
            if let Some(e) = r.iter().find_map(|v| match v {
                Value::ServerError(e) => Some(e),
                _ => None,
            }) {
                self.key_error("DUMP", it.slot, &it.key, e, ctx)?;
                continue;
            }
            let same_body = match &r[0] {
                Value::BulkString(p) => body(p) == body(&it.record.payload),
                _ => false,
            };
            let exists = matches!(&r[0], Value::BulkString(_));
            let same_expiry = match (&r[1], it.record.expire_at_ms) {
                (Value::Int(-1), None) => true,
                (Value::Int(t), Some(at)) if self.abs_expiry => *t == at,
                // A relative TTL drifts by the round trip: a second's slack.
                (Value::Int(t), Some(at)) => *t >= 0 && (now + t - at).abs() <= 1000,
                _ => false,
            };
            // Bodies differ but content may not (see `compare`). A dry run writes nothing, not
            // even a scratch key, so it counts such keys as conflicts — but streams, which are
            // compared without one.
            let stream = it.record.kind == psor_formats::KeyKind::Stream;
            let counters = self.abs_expiry;
            let same = same_expiry
                && (same_body
                    || (exists
                        && (!self.dry_run || stream)
                        && compare::same_as_payload(self.router.conn_for(it.slot)?, &it.key, it.payload(), counters)?));
            if same {
                Progress::add(&ctx.progress.unchanged, 1);
            } else {
                Progress::add(&ctx.progress.conflicts, 1);
                ctx.samples.key(&it.key);
            }
        }
        Ok(())
    }
}

/// A `DUMP` payload without its 10-byte trailer (RDB version, CRC64), which differs between
/// server versions for the same content.
fn body(payload: &[u8]) -> &[u8] {
    &payload[..payload.len().saturating_sub(10)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_parses_escapes_and_refuses_half_specs() {
        let r = Rename::parse("a\\x3db:=c:").unwrap();
        assert_eq!(r.from.as_bytes(), b"a=b:");
        assert_eq!(r.to.as_bytes(), b"c:");
        assert_eq!(r.apply(b"a=b:k"), b"c:k".to_vec());
        assert!(matches!(Rename::parse("a:"), Err(crate::Error::Refused(_))));
        assert!(matches!(Rename::parse("=b:"), Err(crate::Error::Refused(_))));
        assert!(matches!(Rename::parse("a:="), Err(crate::Error::Refused(_))));
    }
}
