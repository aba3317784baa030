//! Filling a keyspace with every data type and comparing two keyspaces by content.
//!
//! Copy, restore and migrate tests must show that what arrived equals what left. DUMP
//! bytes are the wrong yardstick (encodings differ between versions and with element
//! order inside hashes and sets), so keys are compared by canonical content: sorted where
//! Redis does not define an order, in order where it does, plus the absolute expiry.
//! The helpers take any `redis::ConnectionLike`, so they work on a standalone server, on
//! one cluster master, or (for writing) through a cluster connection.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use redis::{ConnectionLike, Value};

/// One stream entry: its id (`ms-seq`) and its field/value pairs in entry order.
pub type StreamEntry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// A key's content, in a form where equal content compares equal.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CanonicalValue {
    /// String bytes.
    String(Vec<u8>),
    /// Field/value pairs sorted by field.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// Elements in list order.
    List(Vec<Vec<u8>>),
    /// Members sorted.
    Set(Vec<Vec<u8>>),
    /// (member, score) sorted by member.
    ZSet(Vec<(Vec<u8>, f64)>),
    /// `XRANGE - +`: (entry id, field/value pairs in entry order).
    Stream(Vec<StreamEntry>),
    /// A type the digest does not read (module types); only the type name is compared.
    Other,
}

/// One key as seen by [`keyspace_digest`].
///
/// Two states are equal when kind and content are, and the expiries are equal too, or, once
/// this process has read an expiry from a server without `PEXPIRETIME` (Redis 6.2), within
/// [`EXPIRY_TOLERANCE_MS`] of each other (see [`expiry_matches`]).
#[derive(Debug, Clone)]
pub struct KeyState {
    /// The `TYPE` reply: `string`, `hash`, `list`, `set`, `zset`, `stream`, ...
    pub kind: String,
    /// `PEXPIRETIME` in Unix milliseconds (before Redis 7.0: `TIME` + `PTTL`, read in one
    /// transaction), `None` without a TTL.
    pub expire_at_ms: Option<i64>,
    /// The content.
    pub value: CanonicalValue,
}

impl PartialEq for KeyState {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.value == other.value && expiry_matches(self.expire_at_ms, other.expire_at_ms)
    }
}

/// How far apart two absolute expiries may be and still count as the same, once an expiry
/// was computed from `PTTL` (a server before 7.0 has no `PEXPIRETIME`, and psor itself moves
/// TTLs to and from such a server as relative times, so a round trip's latency shows).
pub const EXPIRY_TOLERANCE_MS: i64 = 1_000;

static APPROXIMATE_EXPIRY: AtomicBool = AtomicBool::new(false);

/// Whether two absolute expiries (Unix ms, `None` = no TTL) count as the same: equal, or
/// within [`EXPIRY_TOLERANCE_MS`] once this process has read an expiry through `PTTL`. Exact
/// on every server with `PEXPIRETIME`.
pub fn expiry_matches(a: Option<i64>, b: Option<i64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) if x != y => {
            APPROXIMATE_EXPIRY.load(Ordering::Relaxed) && (x - y).abs() <= EXPIRY_TOLERANCE_MS
        }
        _ => a == b,
    }
}

/// A unique key prefix for one test: `psor-test:<test_name>:<pid>-<n>-<nanos>:`.
///
/// Tests sharing a server (or a cluster) keep to their own prefix so they can run in
/// parallel and check their keys with [`keyspace_digest`].
pub fn unique_prefix(test_name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("psor-test:{test_name}:{}-{}-{nanos}:", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Escapes the glob metacharacters `* ? [ ] \` with a backslash, so the bytes match
/// themselves in `SCAN MATCH` / `KEYS`.
pub fn glob_escape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for &b in raw {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// Every key starting with `prefix` on the server behind `conn`, by content.
///
/// Scans with `SCAN cursor MATCH <escaped prefix>* COUNT 1000` and keeps only keys that
/// really start with `prefix`. A key that vanishes between SCAN and reading it is left
/// out. On a cluster, call it per master (see `keyspace_digest_cluster`).
///
/// # Panics
/// On any Redis error; this is test code.
pub fn keyspace_digest(conn: &mut dyn ConnectionLike, prefix: &[u8]) -> BTreeMap<Vec<u8>, KeyState> {
    let mut pattern = glob_escape(prefix);
    pattern.push(b'*');
    let mut out = BTreeMap::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query(conn).expect("SCAN");
        for key in keys {
            if !key.starts_with(prefix) || out.contains_key(&key) {
                continue;
            }
            if let Some(state) = key_state(conn, &key) {
                out.insert(key, state);
            }
        }
        if next == 0 {
            return out;
        }
        cursor = next;
    }
}

/// Reads one key's [`KeyState`], or `None` if it does not exist.
///
/// # Panics
/// On any Redis error.
pub fn key_state(conn: &mut dyn ConnectionLike, key: &[u8]) -> Option<KeyState> {
    let kind: String = redis::cmd("TYPE").arg(key).query(conn).expect("TYPE");
    let value = match kind.as_str() {
        "none" => return None,
        "string" => {
            let v: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(conn).expect("GET");
            CanonicalValue::String(v?)
        }
        "hash" => {
            let flat: Vec<Vec<u8>> = redis::cmd("HGETALL").arg(key).query(conn).expect("HGETALL");
            let mut pairs = pairs(flat);
            pairs.sort();
            CanonicalValue::Hash(pairs)
        }
        "list" => CanonicalValue::List(redis::cmd("LRANGE").arg(key).arg(0).arg(-1).query(conn).expect("LRANGE")),
        "set" => {
            let mut members: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(key).query(conn).expect("SMEMBERS");
            members.sort();
            CanonicalValue::Set(members)
        }
        "zset" => {
            let flat: Vec<Vec<u8>> =
                redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES").query(conn).expect("ZRANGE");
            let mut members: Vec<(Vec<u8>, f64)> = pairs(flat)
                .into_iter()
                .map(|(m, s)| {
                    let s = String::from_utf8_lossy(&s);
                    let score = s.parse::<f64>().unwrap_or_else(|_| panic!("zset score {s:?}"));
                    (m, score)
                })
                .collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            CanonicalValue::ZSet(members)
        }
        "stream" => {
            let v: Value = redis::cmd("XRANGE").arg(key).arg("-").arg("+").query(conn).expect("XRANGE");
            CanonicalValue::Stream(parse_xrange(v))
        }
        _ => CanonicalValue::Other,
    };
    let pexpiretime = expire_time_ms(conn, key);
    if pexpiretime == -2 {
        return None; // gone (expired or deleted) while we read it
    }
    Some(KeyState { kind, expire_at_ms: (pexpiretime >= 0).then_some(pexpiretime), value })
}

/// `PEXPIRETIME key`, or where the server has none (before Redis 7.0) `TIME` + `PTTL` read
/// in one `MULTI` (one after the other on a connection that cannot pipeline); -1 without a
/// TTL, -2 for a missing key.
pub fn expire_time_ms(conn: &mut dyn ConnectionLike, key: &[u8]) -> i64 {
    // Asked with a fixed name first: the error for an unknown command quotes the arguments,
    // and a key that is not UTF-8 would make the error itself unreadable.
    match redis::cmd("PEXPIRETIME").arg("psor-harness:pexpiretime-probe").query::<i64>(conn) {
        Err(e) if e.to_string().contains("unknown command") => {}
        // Anything else (a cluster node's MOVED for the probe's slot too) says it knows it.
        _ => return redis::cmd("PEXPIRETIME").arg(key).query(conn).expect("PEXPIRETIME"),
    }
    APPROXIMATE_EXPIRY.store(true, Ordering::Relaxed);
    let (pttl, (secs, micros)): (i64, (i64, i64)) = if conn.supports_pipelining() {
        redis::pipe().atomic().cmd("PTTL").arg(key).cmd("TIME").query(conn).expect("MULTI PTTL TIME EXEC")
    } else {
        let pttl = redis::cmd("PTTL").arg(key).query(conn).expect("PTTL");
        (pttl, redis::cmd("TIME").query(conn).expect("TIME"))
    };
    if pttl < 0 {
        return pttl;
    }
    secs * 1000 + micros / 1000 + pttl
}

fn pairs(flat: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    assert!(flat.len().is_multiple_of(2), "odd-length pair reply");
    let mut it = flat.into_iter();
    let mut out = Vec::new();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    out
}

fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.clone().into_bytes(),
        Value::VerbatimString { text, .. } => text.clone().into_bytes(),
        other => panic!("expected a string in XRANGE reply, got {other:?}"),
    }
}

fn parse_xrange(v: Value) -> Vec<StreamEntry> {
    let Value::Array(entries) = v else {
        panic!("XRANGE reply is not an array: {v:?}");
    };
    entries
        .into_iter()
        .map(|entry| {
            let Value::Array(parts) = entry else {
                panic!("XRANGE entry is not an array: {entry:?}");
            };
            let [id, fields] = &parts[..] else {
                panic!("XRANGE entry has {} parts", parts.len());
            };
            let fields = match fields {
                Value::Array(f) => f.iter().map(bytes).collect::<Vec<_>>(),
                Value::Map(m) => m.iter().flat_map(|(k, v)| [bytes(k), bytes(v)]).collect(),
                other => panic!("XRANGE fields: {other:?}"),
            };
            (String::from_utf8_lossy(&bytes(id)).into_owned(), pairs(fields))
        })
        .collect()
}

/// The absolute expiry (2100-01-01T00:00:00Z in Unix ms) [`populate_all_types`] gives its
/// keys with a TTL, plus the key's index.
pub const POPULATE_EXPIRE_AT_MS: i64 = 4_102_444_800_000;

/// The six types [`populate_all_types`] cycles through, in order.
pub const ALL_TYPES: [&str; 6] = ["string", "hash", "list", "set", "zset", "stream"];

/// Awkward key-name suffixes [`populate_all_types`] mixes in: spaces, newlines, NUL,
/// glob metacharacters, invalid UTF-8.
const AWKWARD: [&[u8]; 6] =
    [b"plain", b"with space", b"new\nline\r\n", b"nul\0byte", b"glob*?[]\\x", b"\xff\xfe-not-utf8"];

/// Writes `n` keys under `prefix`, cycling through string, hash, list, set, zset and
/// stream, and returns their names.
///
/// The output is deterministic (stream entry ids and expiry times included), so two
/// servers populated with the same prefix and `n` have equal digests. Every third key
/// gets a TTL (`PEXPIREAT` [`POPULATE_EXPIRE_AT_MS`] + i, far in the future). Key names cycle
/// through suffixes with spaces, newlines, NUL bytes, `* ? [ ] \` and invalid UTF-8 after
/// the prefix; values include binary bytes. Each key is deleted first, so calling it twice
/// with the same prefix gives the same keys. A key's commands go in one pipeline where
/// the connection pipelines, one by one otherwise (a sync cluster connection).
///
/// # Panics
/// On any Redis error.
pub fn populate_all_types(conn: &mut dyn ConnectionLike, prefix: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let mut key = prefix.to_vec();
        key.extend_from_slice(AWKWARD[i % AWKWARD.len()]);
        key.extend_from_slice(format!(":{i}").as_bytes());
        let mut p = redis::pipe();
        p.cmd("DEL").arg(&key).ignore();
        let bin = |j: usize| -> Vec<u8> { vec![b'v', (i % 256) as u8, (j % 256) as u8, 0, 0xff] };
        match i % ALL_TYPES.len() {
            0 => {
                p.cmd("SET").arg(&key).arg(bin(0)).ignore();
            }
            1 => {
                let c = p.cmd("HSET").arg(&key);
                for j in 0..(1 + i % 7) {
                    c.arg(format!("field {j}")).arg(bin(j));
                }
                c.ignore();
            }
            2 => {
                let c = p.cmd("RPUSH").arg(&key);
                for j in 0..(1 + i % 7) {
                    // Repeats on purpose: lists keep duplicates and order.
                    c.arg(bin(j / 2));
                }
                c.ignore();
            }
            3 => {
                let c = p.cmd("SADD").arg(&key);
                for j in 0..(1 + i % 7) {
                    c.arg(bin(j));
                }
                c.ignore();
            }
            4 => {
                let c = p.cmd("ZADD").arg(&key);
                for j in 0..(1 + i % 7) {
                    c.arg(j as f64 * 1.5 - 2.0).arg(bin(j));
                }
                c.ignore();
            }
            _ => {
                for j in 0..(1 + i % 4) {
                    p.cmd("XADD")
                        .arg(&key)
                        .arg(format!("{}-{}", 1 + i, 1 + j))
                        .arg("f")
                        .arg(bin(j))
                        .arg("g")
                        .arg(j)
                        .ignore();
                }
            }
        }
        if i % 3 == 0 {
            p.cmd("PEXPIREAT").arg(&key).arg(POPULATE_EXPIRE_AT_MS + i as i64).ignore();
        }
        let result = if conn.supports_pipelining() {
            p.query::<()>(conn)
        } else {
            // A sync cluster connection cannot pipeline; send the commands one by one.
            p.cmd_iter().try_for_each(|c| c.query::<redis::Value>(conn).map(|_| ()))
        };
        result.unwrap_or_else(|e| panic!("populate key {}: {e}", String::from_utf8_lossy(&key)));
        keys.push(key);
    }
    keys
}
