//! Moving a `DUMP` payload to a server of another product or version.
//!
//! `RESTORE` accepts a payload only when its footer's RDB version is one the target knows
//! (Redis: up to its own; Valkey 9: up to 11, and its own 80), and loads it only when the
//! target knows the object type. psor decides, per key and before writing, from the two
//! servers' versions and the payload's type byte — never by trying a production key:
//!
//! | path | when | what is sent |
//! |---|---|---|
//! | `restore` | the target reads the payload as it is | the payload |
//! | `transcoded` | it does not | the same object with the target's RDB version (when the target knows the type), else the value re-encoded in the plain RDB types every server loads; a stream rewritten as the older stream type |
//! | `rebuilt` | the payload to send exceeds the target's `proto-max-bulk-len` | typed commands a few MiB each into a temporary key in the target key's slot, then `RENAME` into place (`rebuild`); a stream as `XADD` with its exact ids, `XGROUP CREATE`, `XCLAIM … FORCE` per pending entry and `XSETID` |
//!
//! What a transcoded stream does not carry is only what the older type has no place for (see
//! [`rdb::downgrade_stream`]); entries, last id, consumer groups with their last-delivered ids,
//! pending entries and consumers all arrive. A hash with field expirations (Valkey 9's type 22,
//! Redis 7.4+'s 24 and 25) goes as it is to a target that reads it, re-encoded in the target's
//! own type to a target that keeps field expiries under another type (each field's absolute
//! expiry kept); to any other it is refused unless the caller allows dropping the fields'
//! expiries (`--drop-field-ttls`). A payload psor cannot decode (a
//! module value, an unknown type or encoding) is refused with the key and what it is.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use psor_embedded::rdb::{self, RdbError};

use crate::connect::{Endpoint, Psor, ServerVersion};
use crate::error::{Error, Result};

/// What `--max-payload` defaults to when the target's `proto-max-bulk-len` cannot be read.
pub const DEFAULT_MAX_PAYLOAD: u64 = 256 << 20;

pub use crate::connect::Product;

/// What a target server reads, from its product and version.
#[derive(Clone, Debug)]
pub struct TargetProfile {
    /// The product.
    pub product: Product,
    /// The product's own version (`valkey_version` on Valkey).
    pub version: ServerVersion,
    /// The RDB version the server writes in its own payloads (and the newest it reads).
    pub rdb_version: u16,
    /// The biggest payload one `RESTORE` may carry (`proto-max-bulk-len`, or `--max-payload`).
    pub max_payload: u64,
}

/// Reads what `psor` reads, from the product and version it reported when psor connected
/// ([`Psor::server`]; the masters of one cluster run one build), and its `proto-max-bulk-len`
/// where `CONFIG GET` is allowed (else `max_payload`, else [`DEFAULT_MAX_PAYLOAD`]).
pub fn profile(psor: &Psor, max_payload: Option<u64>) -> Result<TargetProfile> {
    let server = psor.server();
    if server.product == Product::Embedded || matches!(psor.spec().endpoint, Endpoint::File(_)) {
        return Ok(TargetProfile {
            product: Product::Embedded,
            version: server.version,
            rdb_version: rdb::MAX_RDB_VERSION,
            max_payload: max_payload.unwrap_or(u64::MAX),
        });
    }
    // A version newer than the table: the newest this codec knows for the product.
    let rdb_version = server.rdb_version().unwrap_or(match server.product {
        Product::Valkey => rdb::VALKEY_9_RDB_VERSION,
        _ => rdb::MAX_RDB_VERSION,
    });
    let node = psor.masters().first().ok_or_else(|| Error::Refused("no master".into()))?;
    let mut con = node.connect()?;
    // CONFIG may be renamed or denied by an ACL: then the documented default.
    let bulk: Option<u64> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("proto-max-bulk-len")
        .query::<Vec<String>>(con.raw())
        .ok()
        .and_then(|v| v.get(1).and_then(|s| s.parse().ok()));
    let max_payload = match (max_payload, bulk) {
        (Some(m), Some(b)) => m.min(b),
        (Some(m), None) => m,
        (None, Some(b)) => b,
        (None, None) => DEFAULT_MAX_PAYLOAD,
    };
    Ok(TargetProfile { product: server.product, version: server.version, rdb_version, max_payload })
}

// How a key travels, and the counters of it, live with the other counters of a run (the
// progress module, a floor below the engine, which counts them); here is where they are decided.
pub use crate::progress::{Path, PathCounters, Paths};

/// Why a payload cannot go to the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unfit {
    /// A hash with field expirations, to a target without them.
    FieldTtls,
    /// psor cannot decode it (module value, unknown type or encoding, damage).
    Undecodable(String),
}

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unfit::FieldTtls => f.write_str("a hash with field expirations, which the target cannot hold"),
            Unfit::Undecodable(why) => f.write_str(why),
        }
    }
}

/// What to send for one payload.
pub enum Prepared<'a> {
    /// The payload as it is.
    AsIs(&'a [u8]),
    /// A rewritten payload; `true` when a hash lost its fields' expiries on the way.
    New(Vec<u8>, bool),
}

impl Prepared<'_> {
    /// The bytes to `RESTORE`.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Prepared::AsIs(b) => b,
            Prepared::New(b, _) => b,
        }
    }
    /// The path this payload takes.
    pub fn path(&self) -> Path {
        match self {
            Prepared::AsIs(_) => Path::Restore,
            Prepared::New(..) => Path::Transcoded,
        }
    }
    /// True when a hash lost its fields' expiries on the way.
    pub fn dropped_field_ttls(&self) -> bool {
        matches!(self, Prepared::New(_, true))
    }
}

fn describe(t: u8, e: &RdbError) -> String {
    match t {
        6 | 7 => "a module value (RDB type 6/7), which psor cannot decode".into(),
        _ => format!("a payload psor cannot decode: {e}"),
    }
}

impl TargetProfile {
    /// True when the target reads `payload` as it is.
    pub fn reads(&self, payload: &[u8]) -> bool {
        if self.product == Product::Embedded {
            return rdb::check_footer(payload).is_ok() && rdb::payload_kind(payload).is_ok();
        }
        match (rdb::footer_version(payload), rdb::payload_type(payload)) {
            (Some(v), Some(t)) => {
                rdb::version_reads_footer(self.rdb_version, v) && rdb::version_reads_type(self.rdb_version, t)
            }
            _ => false,
        }
    }

    /// True when the target reads a payload of type `t` whose footer says RDB `version`
    /// (a snapshot record states its payload's version; the payload is checked again when sent).
    pub fn reads_version(&self, version: u16, t: u8) -> bool {
        if self.product == Product::Embedded {
            return rdb::known_version(version) && rdb::type_since(t).is_some();
        }
        rdb::version_reads_footer(self.rdb_version, version) && rdb::version_reads_type(self.rdb_version, t)
    }

    /// The payload to send for `payload`, chosen from its type and RDB version and the target's.
    pub fn prepare<'a>(&self, payload: &'a [u8], drop_field_ttls: bool) -> std::result::Result<Prepared<'a>, Unfit> {
        if self.reads(payload) {
            return Ok(Prepared::AsIs(payload));
        }
        let t = rdb::payload_type(payload).ok_or_else(|| Unfit::Undecodable("an empty payload".into()))?;
        let undecodable = |e: RdbError| Unfit::Undecodable(describe(t, &e));
        // The RDB version to write: the target's own.
        let out_version = self.rdb_version;
        if matches!(t, 6 | 7) {
            // A module's value is the module's own format: psor cannot vouch for it elsewhere.
            return Err(undecodable(RdbError::Opaque(t)));
        }
        if rdb::version_reads_type(self.rdb_version, t) {
            // Same object, a footer the target accepts — once psor has checked it decodes (the
            // target would refuse a damaged one only after the keys before it were written).
            let p = if matches!(t, 15 | 19 | 21) {
                rdb::refooter(payload, out_version)
            } else {
                rdb::refooter_checked(payload, out_version)
            };
            return p.map(|p| Prepared::New(p, false)).map_err(undecodable);
        }
        if matches!(t, 15 | 19 | 21) {
            let to = [21u8, 19, 15]
                .into_iter()
                .find(|&s| s <= t && rdb::version_reads_type(self.rdb_version, s))
                .ok_or_else(|| Unfit::Undecodable("a stream, which the target does not know".into()))?;
            return rdb::downgrade_stream(payload, to, out_version)
                .map(|p| Prepared::New(p, false))
                .map_err(undecodable);
        }
        let decoded = rdb::decode_full(payload).map_err(undecodable)?;
        let with_ttls = !decoded.field_expiry.is_empty();
        if let (true, rdb::Typed::Hash(values)) = (with_ttls, &decoded.value) {
            // Redis 7.4+'s types 24/25 and Valkey 9's 22 are each other's strangers, but both
            // keep every field's absolute expiry: re-encoded in the target's own type.
            if let Some(p) = rdb::encode_hash_with_ttls(values, &decoded.field_expiry, out_version) {
                return Ok(Prepared::New(p, false));
            }
        }
        if with_ttls && !drop_field_ttls {
            return Err(Unfit::FieldTtls);
        }
        Ok(Prepared::New(rdb::encode_for(&decoded.value, out_version), with_ttls))
    }

    /// "Valkey 9.1.2" / "Redis 7.0.15".
    pub fn describe(&self) -> String {
        format!("{} {}", self.product.name(), self.version)
    }
}

/// What a copy must check before it writes, from the two servers alone (see
/// [`refuse_undecodable`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SourceCheck {
    /// The target reads the source's payloads as they are, or psor decodes every one: nothing.
    None,
    /// The source writes an RDB version newer than psor decodes, which the target does not read:
    /// refuse at once.
    Refuse(u16),
    /// The source's RDB version is not known (a product version newer than psor's table): read
    /// it from the first key's payload.
    Sample,
    /// Payloads will be transcoded: when modules are loaded, look for module-typed keys.
    Modules,
}

/// What a copy from a server writing RDB `source_rdb` (`None`: unknown) to `target` must check
/// before it writes.
pub(crate) fn source_check(source_rdb: Option<u16>, target: &TargetProfile) -> SourceCheck {
    let target_reads = |v: u16| {
        if target.product == Product::Embedded {
            rdb::known_version(v)
        } else {
            rdb::version_reads_footer(target.rdb_version, v)
        }
    };
    match source_rdb {
        Some(v) if target_reads(v) => SourceCheck::None,
        Some(v) if !rdb::known_version(v) => SourceCheck::Refuse(v),
        Some(_) => SourceCheck::Modules,
        None => SourceCheck::Sample,
    }
}

fn newer_rdb(v: u16, source: &str, target: &TargetProfile) -> Error {
    Error::Refused(format!(
        "the source ({source}) writes DUMP payloads of RDB version {v}, newer than psor decodes (up to {} and \
         Valkey's {}), and the target ({}) does not read them; nothing written",
        rdb::MAX_RDB_VERSION,
        rdb::VALKEY_9_RDB_VERSION,
        target.describe()
    ))
}

/// Modules a server lists in `MODULE LIST` that define no key type: Valkey 9's Lua engine.
const KEYLESS_MODULES: [&str; 1] = ["lua"];

/// The `name` of one `MODULE LIST` entry (a flat name/value array, or a RESP3 map).
fn module_name(m: &redis::Value) -> Option<String> {
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match m {
        redis::Value::Array(a) => {
            a.chunks(2).find(|c| text(&c[0]).as_deref() == Some("name")).and_then(|c| c.get(1)).and_then(text)
        }
        redis::Value::Map(m) => m.iter().find(|(k, _)| text(k).as_deref() == Some("name")).and_then(|(_, v)| text(v)),
        _ => None,
    }
}

/// The type names `TYPE` answers for the types psor decodes; any other is a module's.
const CORE_TYPES: [&str; 6] = ["string", "list", "set", "zset", "hash", "stream"];

/// Refuses, before anything is written, a copy whose keys would have to be transcoded but that
/// psor cannot decode, as far as that can be known without reading every value: a source whose
/// RDB version is newer than psor decodes (from its version, or from the first key's payload
/// when its version is newer than psor's table), and — when the source has modules loaded
/// (`MODULE LIST`) — module-typed keys under the prefix (a `TYPE` pre-pass through the one
/// SCAN loop), named with their count. An unknown encoding inside a known RDB version can only
/// be found key by key: that key then fails, and nothing of it is written.
pub(crate) fn refuse_undecodable(
    source: &Psor,
    target: &TargetProfile,
    from: &crate::keys::KeyPrefix,
    engine: &super::EngineOptions,
) -> Result<()> {
    use super::router::{Routed, Router};
    let server = source.server();
    if server.product == Product::Embedded {
        // The embedded store holds only payloads psor decodes.
        return Ok(());
    }
    let check = source_check(server.rdb_version(), target);
    let modules = match check {
        SourceCheck::None => return Ok(()),
        SourceCheck::Refuse(v) => return Err(newer_rdb(v, &server.to_string(), target)),
        SourceCheck::Sample => true,
        SourceCheck::Modules => {
            let node = source.masters().first().ok_or_else(|| Error::Refused("no master".into()))?;
            let mut con = node.connect()?;
            // MODULE may be renamed or denied by an ACL: then no pre-pass (each key is still
            // checked before it is written).
            let list: Vec<redis::Value> = redis::cmd("MODULE").arg("LIST").query(con.raw()).unwrap_or_default();
            list.iter().any(|m| !module_name(m).is_some_and(|n| KEYLESS_MODULES.contains(&n.as_str())))
        }
    };
    if !modules {
        return Ok(());
    }
    let mut router = Router::new(source)?;
    let slot = |k: &[u8]| if source.is_cluster() { crate::connect::key_slot(k) } else { 0 };
    let (mut count, mut first) = (0u64, None::<(Vec<u8>, String)>);
    let mut sampled = check != SourceCheck::Sample;
    for batch in super::scan(source, from, engine, std::sync::Arc::new(crate::progress::Progress::new()))? {
        let keys = batch?;
        if !sampled {
            if let Some(k) = keys.first() {
                let mut dump = redis::cmd("DUMP");
                dump.arg(k.as_slice());
                if let Some(redis::Value::BulkString(p)) =
                    router.run("DUMP", &[Routed { slot: slot(k), cmd: dump }])?.first()
                {
                    match rdb::footer_version(p) {
                        Some(v) if source_check(Some(v), target) == SourceCheck::Refuse(v) => {
                            return Err(newer_rdb(v, &server.to_string(), target))
                        }
                        _ => {}
                    }
                }
                sampled = true;
            }
        }
        let cmds: Vec<Routed> = keys
            .iter()
            .map(|k| {
                let mut cmd = redis::cmd("TYPE");
                cmd.arg(k.as_slice());
                Routed { slot: slot(k), cmd }
            })
            .collect();
        for (k, t) in keys.iter().zip(router.run("TYPE", &cmds)?) {
            if let redis::Value::SimpleString(t) = t {
                if t != "none" && !CORE_TYPES.contains(&t.as_str()) {
                    count += 1;
                    first.get_or_insert_with(|| (k.clone(), t));
                }
            }
        }
    }
    match first {
        None => Ok(()),
        Some((k, t)) => Err(Error::Refused(format!(
            "{count} keys hold module values (first: {}, of type {t}), which psor cannot transcode for the target \
             ({}); nothing written: copy them between servers that load the same module and read the source's \
             payloads, or leave them out with another prefix",
            crate::keys::display_key(&k),
            target.describe()
        ))),
    }
}

/// True when `payload` is a hash with field expirations that has at least one such field.
pub fn has_field_ttls(payload: &[u8]) -> bool {
    matches!(rdb::payload_type(payload), Some(22 | 24 | 25))
        && rdb::decode_full(payload).map(|d| !d.field_expiry.is_empty()).unwrap_or(false)
}

/// Bytes of elements sent per command when a value is rebuilt in chunks.
const CHUNK_BYTES: u64 = 4 << 20;

/// The expiry a rebuilt key gets.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expiry {
    /// None.
    Never,
    /// At this Unix ms instant.
    At(i64),
    /// In this many ms (sources before 7.0 have no `PEXPIRETIME`).
    In(i64),
}

/// What [`rebuild`] did.
#[derive(Debug)]
pub(crate) enum Rebuilt {
    /// The key is in place.
    Done,
    /// The target key exists (and `replace` was not asked): nothing changed there.
    Exists,
    /// Cannot be rebuilt this way; the key is not written. Why.
    Unfit(String),
    /// The target refused a command; the key is not written. Its error.
    Failed(redis::ServerError),
}

/// A key name in `slot` (its hash tag makes it so) that no PSOR key uses: where a value too big
/// for one `RESTORE` is built before it is renamed into place.
fn temp_key(slot: u16, cluster: bool, n: u64) -> Vec<u8> {
    let tag = if cluster {
        (0u32..)
            .map(|i| format!("psor-tmp-{i}"))
            .find(|t| crate::connect::key_slot(t.as_bytes()) == slot)
            .expect("every slot has a tag")
    } else {
        "psor-tmp".to_string()
    };
    format!("{{{tag}}}:chunked:{}:{n}", std::process::id()).into_bytes()
}

/// Rebuilds `payload`'s value at `dst` with typed commands, a few MiB per command: built in a
/// temporary key in `dst`'s slot (which expires within the hour should psor stop half-way),
/// given its expiry, then `RENAME`d (`RENAMENX` unless `replace`) into place, so nothing ever
/// sees a half-built `dst`. For values whose payload exceeds the target's `proto-max-bulk-len`;
/// an element that is itself bigger than that cannot travel at all and is refused.
// The arguments are the key's own facts (where, what, when) and the run's options; a struct
// for them would only be built to be taken apart here.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rebuild(
    router: &mut super::router::Router,
    slot: u16,
    cluster: bool,
    dst: &[u8],
    payload: &[u8],
    expiry: Expiry,
    replace: bool,
    max_payload: u64,
    drop_field_ttls: bool,
) -> Result<Rebuilt> {
    use super::router::Routed;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let t = rdb::payload_type(payload).unwrap_or(0xff);
    if matches!(t, 15 | 19 | 21) {
        let stream = match rdb::decode_stream(payload) {
            Ok(s) => s,
            Err(e) => return Ok(Rebuilt::Unfit(describe(t, &e))),
        };
        let tmp = temp_key(slot, cluster, SEQ.fetch_add(1, Relaxed));
        return rebuild_stream(router, slot, &tmp, dst, &stream, expiry, replace, max_payload);
    }
    let decoded = match rdb::decode_full(payload) {
        Ok(d) => d,
        Err(e) => return Ok(Rebuilt::Unfit(describe(t, &e))),
    };
    if !decoded.field_expiry.is_empty() && !drop_field_ttls {
        return Ok(Rebuilt::Unfit(Unfit::FieldTtls.to_string()));
    }
    if let rdb::Typed::Str(v) = &decoded.value {
        // APPEND and SETRANGE refuse to grow a string past proto-max-bulk-len: the target
        // cannot hold this string by any command.
        return Ok(Rebuilt::Unfit(format!(
            "a string of {} bytes, longer than the target's proto-max-bulk-len ({max_payload} bytes), which no \
             command can build there; raise proto-max-bulk-len on the target",
            v.len()
        )));
    }
    let tmp = temp_key(slot, cluster, SEQ.fetch_add(1, Relaxed));
    let limit = CHUNK_BYTES.min(max_payload / 2).max(1);
    // Each command: (name, fixed args after the key, elements).
    let (name, items): (&str, Vec<Vec<Vec<u8>>>) = match decoded.value {
        rdb::Typed::Str(s) => ("APPEND", s.chunks(limit as usize).map(|c| vec![c.to_vec()]).collect()),
        rdb::Typed::List(l) => ("RPUSH", l.into_iter().map(|e| vec![e]).collect()),
        rdb::Typed::Set(m) => ("SADD", m.into_iter().map(|e| vec![e]).collect()),
        rdb::Typed::ZSet(m) => {
            ("ZADD", m.into_iter().map(|(e, sc)| vec![rdb::format_score(sc).into_bytes(), e]).collect())
        }
        rdb::Typed::Hash(m) => ("HSET", m.into_iter().map(|(f, v)| vec![f, v]).collect()),
    };
    if let Some(big) = items.iter().flatten().find(|e| e.len() as u64 > max_payload) {
        return Ok(Rebuilt::Unfit(format!(
            "holds an element of {} bytes, more than the target's proto-max-bulk-len ({max_payload} bytes)",
            big.len()
        )));
    }
    let send = |router: &mut super::router::Router, cmd: redis::Cmd| -> Result<Option<redis::ServerError>> {
        let reply = router.run("RESTORE", &[Routed { slot, cmd }])?;
        Ok(match reply.into_iter().next() {
            Some(redis::Value::ServerError(e)) => Some(e),
            _ => None,
        })
    };
    let cleanup = |router: &mut super::router::Router| -> Result<()> {
        let mut del = redis::cmd("UNLINK");
        del.arg(&tmp);
        send(router, del).map(|_| ())
    };
    let mut del = redis::cmd("UNLINK");
    del.arg(&tmp);
    if let Some(e) = send(router, del)? {
        return Ok(Rebuilt::Failed(e));
    }
    let mut i = 0;
    let mut first = true;
    while i < items.len() {
        let mut cmd = redis::cmd(name);
        cmd.arg(&tmp);
        let mut bytes = 0u64;
        while i < items.len() && (bytes == 0 || bytes + items[i].iter().map(|e| e.len() as u64).sum::<u64>() <= limit) {
            bytes += items[i].iter().map(|e| e.len() as u64 + 16).sum::<u64>();
            items[i].iter().for_each(|e| {
                cmd.arg(e.as_slice());
            });
            i += 1;
        }
        if let Some(e) = send(router, cmd)? {
            cleanup(router)?;
            return Ok(Rebuilt::Failed(e));
        }
        if first {
            // Should psor stop half-way, the temporary key goes by itself.
            let mut exp = redis::cmd("PEXPIRE");
            exp.arg(&tmp).arg(3_600_000);
            send(router, exp)?;
            first = false;
        }
    }
    if items.is_empty() {
        // An empty value does not exist in Redis; nothing to build (never reached: DUMP of a
        // missing key is nil).
        return Ok(Rebuilt::Unfit("an empty value".into()));
    }
    finish(router, slot, &tmp, dst, expiry, replace)
}

/// The first server error among `replies`.
fn first_error(replies: Vec<redis::Value>) -> Option<redis::ServerError> {
    replies.into_iter().find_map(|v| match v {
        redis::Value::ServerError(e) => Some(e),
        _ => None,
    })
}

/// Sends `cmds` (each with the bytes it carries) to `slot`'s master, pipelined a few MiB
/// (`limit`) at a time; stops at the first command the server refuses and returns its error.
fn send_chunked(
    router: &mut super::router::Router,
    slot: u16,
    op: &'static str,
    cmds: Vec<(redis::Cmd, u64)>,
    limit: u64,
) -> Result<Option<redis::ServerError>> {
    use super::router::Routed;
    let mut batch = Vec::new();
    let mut bytes = 0u64;
    let mut it = cmds.into_iter().peekable();
    while let Some((cmd, n)) = it.next() {
        bytes += n;
        batch.push(Routed { slot, cmd });
        if it.peek().is_none_or(|(_, m)| bytes + m > limit) {
            if let Some(e) = first_error(router.run(op, &batch)?) {
                return Ok(Some(e));
            }
            batch.clear();
            bytes = 0;
        }
    }
    Ok(None)
}

/// Gives the built temporary key `tmp` its expiry and renames it to `dst` (`RENAMENX` unless
/// `replace`); on any refusal the temporary key is removed.
fn finish(
    router: &mut super::router::Router,
    slot: u16,
    tmp: &[u8],
    dst: &[u8],
    expiry: Expiry,
    replace: bool,
) -> Result<Rebuilt> {
    use super::router::Routed;
    let mut del = redis::cmd("UNLINK");
    del.arg(tmp);
    let cleanup = |router: &mut super::router::Router| router.run("UNLINK", &[Routed { slot, cmd: del.clone() }]);
    let mut exp = match expiry {
        Expiry::Never => redis::cmd("PERSIST"),
        Expiry::At(_) => redis::cmd("PEXPIREAT"),
        Expiry::In(_) => redis::cmd("PEXPIRE"),
    };
    exp.arg(tmp);
    if let Expiry::At(ms) | Expiry::In(ms) = expiry {
        exp.arg(ms);
    }
    if let Some(e) = first_error(router.run("RESTORE", &[Routed { slot, cmd: exp }])?) {
        cleanup(router)?;
        return Ok(Rebuilt::Failed(e));
    }
    let mut ren = redis::cmd(if replace { "RENAME" } else { "RENAMENX" });
    ren.arg(tmp).arg(dst);
    let reply = router.run("RENAME", &[Routed { slot, cmd: ren }])?;
    match reply.into_iter().next() {
        Some(redis::Value::Int(0)) => {
            cleanup(router)?;
            Ok(Rebuilt::Exists)
        }
        Some(redis::Value::ServerError(e)) => {
            cleanup(router)?;
            Ok(Rebuilt::Failed(e))
        }
        _ => Ok(Rebuilt::Done),
    }
}

/// True when `XINFO STREAM` of `key` reports `entries-added`: the target keeps Redis 7.0's
/// stream counters (and takes `XSETID … ENTRIESADDED … MAXDELETEDID` and `XGROUP CREATE …
/// ENTRIESREAD`); Redis 6.2 has neither. Asked of the server itself, not guessed from its
/// version.
fn keeps_stream_counters(router: &mut super::router::Router, slot: u16, key: &[u8]) -> Result<bool> {
    use super::router::Routed;
    let mut info = redis::cmd("XINFO");
    info.arg("STREAM").arg(key);
    let reply = router.run("XINFO", &[Routed { slot, cmd: info }])?;
    let is_name = |v: &redis::Value| {
        matches!(v, redis::Value::BulkString(b) if b == b"entries-added")
            || matches!(v, redis::Value::SimpleString(s) if s == "entries-added")
    };
    Ok(match reply.first() {
        Some(redis::Value::Array(a)) => a.iter().any(is_name),
        Some(redis::Value::Map(m)) => m.iter().any(|(k, _)| is_name(k)),
        _ => false,
    })
}

/// The field a placeholder entry carries: an entry that is pending in a group but no longer in
/// the stream (deleted or trimmed after delivery) is added for `XCLAIM … FORCE` (which, from
/// Redis 7.0 on, claims only entries that exist) and deleted again right after.
const PLACEHOLDER_FIELD: &str = "psor-placeholder";

/// Rebuilds a stream at `dst` through the temporary key `tmp`: `XADD` of every entry with its
/// exact id (a few MiB per pipeline), the consumer groups (`XGROUP CREATE` at their
/// last-delivered ids, with their entries-read counters where the target keeps them), their
/// consumers (`XGROUP CREATECONSUMER`) and pending entries (`XCLAIM … TIME … RETRYCOUNT …
/// FORCE JUSTID`: owner, last delivery time and delivery count), then `XSETID` with the last
/// id (and, where the target keeps them, the entries-added counter and the max deleted id).
/// Consumers' seen and active times cannot be set by any command: they start at the rebuild.
// The same arguments as `rebuild`, which has already decoded the stream.
#[allow(clippy::too_many_arguments)]
fn rebuild_stream(
    router: &mut super::router::Router,
    slot: u16,
    tmp: &[u8],
    dst: &[u8],
    s: &rdb::Stream,
    expiry: Expiry,
    replace: bool,
    max_payload: u64,
) -> Result<Rebuilt> {
    use super::router::Routed;
    let limit = CHUNK_BYTES.min(max_payload / 2).max(1);
    let biggest = s.entries.iter().flat_map(|(_, fv)| fv).map(|(f, v)| f.len().max(v.len())).max().unwrap_or(0);
    if biggest as u64 > max_payload {
        return Ok(Rebuilt::Unfit(format!(
            "a stream that holds a field or value of {biggest} bytes, more than the target's proto-max-bulk-len \
             ({max_payload} bytes)"
        )));
    }
    let cmd = |name: &str| {
        let mut c = redis::cmd(name);
        c.arg(tmp);
        c
    };
    let del = cmd("UNLINK");
    if let Some(e) = first_error(router.run("UNLINK", &[Routed { slot, cmd: del.clone() }])?) {
        return Ok(Rebuilt::Failed(e));
    }
    let failed = |router: &mut super::router::Router, e: redis::ServerError| -> Result<Rebuilt> {
        router.run("UNLINK", &[Routed { slot, cmd: del.clone() }])?;
        Ok(Rebuilt::Failed(e))
    };
    // Entries and placeholders, in id order.
    let live: std::collections::BTreeSet<rdb::StreamId> = s.entries.iter().map(|(id, _)| *id).collect();
    let placeholders: std::collections::BTreeSet<rdb::StreamId> =
        s.groups.iter().flat_map(|g| g.pending.iter().map(|p| p.0)).filter(|id| !live.contains(id)).collect();
    // (id, fields and values; `None` for a placeholder)
    let mut adds: Vec<_> = s.entries.iter().map(|(id, fv)| (*id, Some(fv.as_slice()))).collect();
    adds.extend(placeholders.iter().map(|id| (*id, None)));
    adds.sort_by_key(|a| a.0);
    let mut cmds: Vec<(redis::Cmd, u64)> = Vec::with_capacity(adds.len() + 1);
    for (id, fv) in &adds {
        let mut c = cmd("XADD");
        c.arg(id.to_string());
        let mut bytes = 32;
        match fv {
            Some(fv) => fv.iter().for_each(|(f, v)| {
                c.arg(f.as_slice()).arg(v.as_slice());
                bytes += f.len() as u64 + v.len() as u64 + 16;
            }),
            None => {
                c.arg(PLACEHOLDER_FIELD).arg("");
            }
        }
        cmds.push((c, bytes));
        if cmds.len() == 1 {
            // Should psor stop half-way, the temporary key goes by itself.
            let mut exp = cmd("PEXPIRE");
            exp.arg(3_600_000);
            cmds.push((exp, 32));
        }
    }
    if adds.is_empty() {
        // No entry to add: the stream is made by a group that goes again at once.
        let mut c = redis::cmd("XGROUP");
        c.arg("CREATE").arg(tmp).arg(PLACEHOLDER_FIELD).arg("0").arg("MKSTREAM");
        let mut d = redis::cmd("XGROUP");
        d.arg("DESTROY").arg(tmp).arg(PLACEHOLDER_FIELD);
        let mut exp = cmd("PEXPIRE");
        exp.arg(3_600_000);
        cmds.extend([(c, 64), (d, 64), (exp, 32)]);
    }
    if let Some(e) = send_chunked(router, slot, "XADD", cmds, limit)? {
        return failed(router, e);
    }
    let counters = keeps_stream_counters(router, slot, tmp)?;
    let mut cmds: Vec<(redis::Cmd, u64)> = Vec::new();
    for g in &s.groups {
        let mut c = redis::cmd("XGROUP");
        c.arg("CREATE").arg(tmp).arg(g.name.as_slice()).arg(g.last_delivered.to_string());
        if let (true, Some(n)) = (counters, g.entries_read) {
            c.arg("ENTRIESREAD").arg(n);
        }
        cmds.push((c, 64 + g.name.len() as u64));
        for c in &g.consumers {
            let mut x = redis::cmd("XGROUP");
            x.arg("CREATECONSUMER").arg(tmp).arg(g.name.as_slice()).arg(c.as_slice());
            cmds.push((x, 64 + g.name.len() as u64 + c.len() as u64));
        }
        for (id, who, at, count) in &g.pending {
            let mut x = cmd("XCLAIM");
            x.arg(g.name.as_slice()).arg(who.as_slice()).arg(0).arg(id.to_string());
            x.arg("TIME").arg(*at).arg("RETRYCOUNT").arg(*count).arg("FORCE").arg("JUSTID");
            cmds.push((x, 96 + g.name.len() as u64 + who.len() as u64));
        }
    }
    if !placeholders.is_empty() {
        let mut x = cmd("XDEL");
        placeholders.iter().for_each(|id| {
            x.arg(id.to_string());
        });
        cmds.push((x, 48 * placeholders.len() as u64));
    }
    let mut x = cmd("XSETID");
    x.arg(s.last_id.to_string());
    if let (true, Some((max_deleted, added))) = (counters, s.counters) {
        x.arg("ENTRIESADDED").arg(added).arg("MAXDELETEDID").arg(max_deleted.to_string());
    }
    cmds.push((x, 96));
    if let Some(e) = send_chunked(router, slot, "XGROUP", cmds, limit)? {
        return failed(router, e);
    }
    finish(router, slot, tmp, dst, expiry, replace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prof(product: Product, major: u32, minor: u32) -> TargetProfile {
        let version = ServerVersion { major, minor, patch: 0 };
        let rdb_version = match (product, major, minor) {
            (Product::Redis, 6, _) => 9,
            (Product::Redis, 7, 0) => 10,
            (Product::Valkey, 8, _) => 11,
            (Product::Valkey, 9, _) => 80,
            other => panic!("{other:?}"),
        };
        TargetProfile { product, version, rdb_version, max_payload: 1 << 29 }
    }

    #[test]
    fn paths_by_versions() {
        // `SET s hello` then `DUMP s` on Valkey 9.1.2 (RDB 80).
        let v91 = b"\x00\x05helloP\x00\xacX\x16\xe7\xfbfG\xfe";
        let r70 = prof(Product::Redis, 7, 0);
        let p = r70.prepare(v91, false).unwrap();
        assert_eq!(p.path(), Path::Transcoded);
        assert_eq!(rdb::footer_version(p.bytes()), Some(10));
        assert_eq!(rdb::decode(p.bytes()).unwrap(), rdb::Typed::Str(b"hello".to_vec()));
        let v9 = prof(Product::Valkey, 9, 1);
        assert_eq!(v9.prepare(v91, false).unwrap().path(), Path::Restore);
        // A Redis 7.0 payload goes as it is to Valkey 9, not to Redis 6.2.
        let r70_payload = b"\x00\x05hello\x0a\x00cr\xdfve4 \x0a";
        assert_eq!(v9.prepare(r70_payload, false).unwrap().path(), Path::Restore);
        let r62 = prof(Product::Redis, 6, 2);
        assert_eq!(r62.prepare(r70_payload, false).unwrap().path(), Path::Transcoded);
    }

    #[test]
    fn field_ttls_refused_unless_dropped() {
        // `HSET hx a 1 b 2 c 3`, field expiries on a and b, `DUMP hx` on Valkey 9.1.2.
        let p = b"\x16\x03\x01a\xc0\x01\x00\xd8\xc3,\xbb\x03\x00\x00\x01b\xc0\x02\xc1\x97\xc13\xa2\x01\x00\x00\x01c\xc0\x03\xff\xff\xff\xff\xff\xff\xff\xffP\x00\xa3\xc18\x12\xec\xe9p9";
        assert!(has_field_ttls(p));
        let v81 = prof(Product::Valkey, 8, 1);
        assert!(matches!(v81.prepare(p, false), Err(Unfit::FieldTtls)));
        let ok = v81.prepare(p, true).unwrap();
        assert!(ok.dropped_field_ttls());
        let rdb::Typed::Hash(h) = rdb::decode(ok.bytes()).unwrap() else { panic!("not a hash") };
        assert_eq!(h.len(), 3);
        assert_eq!(prof(Product::Valkey, 9, 1).prepare(p, false).unwrap().path(), Path::Restore);
    }

    #[test]
    fn what_a_copy_checks_before_writing() {
        let r70 = prof(Product::Redis, 7, 0);
        // Redis 6.2's payloads go as they are: nothing to check.
        assert_eq!(source_check(Some(9), &r70), SourceCheck::None);
        // Valkey 9's are transcoded: module keys are looked for.
        assert_eq!(source_check(Some(80), &r70), SourceCheck::Modules);
        assert_eq!(source_check(Some(80), &prof(Product::Valkey, 9, 1)), SourceCheck::None);
        // A version psor does not decode, which the target does not read: refused at once.
        assert_eq!(source_check(Some(99), &r70), SourceCheck::Refuse(99));
        assert_eq!(source_check(Some(13), &prof(Product::Valkey, 9, 1)), SourceCheck::Refuse(13));
        // A server newer than psor's table: its first payload tells.
        assert_eq!(source_check(None, &r70), SourceCheck::Sample);
        let e = newer_rdb(99, "Redis 9.0.0", &r70).to_string();
        assert!(e.contains("RDB version 99") && e.contains("Redis 7.0") && e.contains("nothing written"), "{e}");
    }

    #[test]
    fn module_values_are_refused_by_name() {
        let mut body = vec![7u8, 0x01, 0x02];
        body.extend_from_slice(&rdb::VALKEY_9_RDB_VERSION.to_le_bytes());
        let crc = crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        let r = prof(Product::Redis, 7, 0).prepare(&body, false);
        assert!(matches!(&r, Err(Unfit::Undecodable(w)) if w.contains("module")), "{:?}", r.err());
    }
}
