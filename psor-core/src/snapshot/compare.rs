//! Does an existing key already hold what the snapshot has for it? Decides between `unchanged`
//! (a rerun: leave it) and `conflict` (someone else's data: report it) during an import.
//!
//! The `DUMP` bodies are compared first, by the caller. When they differ the content may still
//! be the same: a hashtable-encoded set or hash serializes its members in table order, which a
//! `RESTORE` reshuffles. Then the file's payload is restored into a scratch key beside the
//! target (with a one-minute expiry, in case psor dies before removing it) and both keys are
//! read by type and compared canonically. Collections above [`CONTENT_LIMIT`] elements are not
//! read: they stay conflicts, the safe answer.
//!
//! The engine's `compare.rs` does the same between two live keys; this copy exists so that
//! snapshots depend only on the engine's public API while Cluster support reshapes it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use redis::Value;

use crate::connect::NodeConn;
use crate::error::Result;

/// Elements above which a collection is not read for comparison.
pub const CONTENT_LIMIT: u64 = 10_000;

/// Scratch keys live this long if psor dies before removing them.
const SCRATCH_TTL_MS: u64 = 60_000;

#[derive(Debug, PartialEq)]
enum Content {
    Missing,
    Unreadable,
    Value(String, Vec<Vec<u8>>),
}

fn read(con: &mut NodeConn, key: &[u8]) -> Result<Content> {
    let kind: String = con.retry("TYPE", Some(key), |c| redis::cmd("TYPE").arg(key).query(c))?;
    let (len_cmd, read_cmd): (&str, &[&str]) = match kind.as_str() {
        "none" => return Ok(Content::Missing),
        "string" => ("STRLEN", &["GET"]),
        "hash" => ("HLEN", &["HGETALL"]),
        "set" => ("SCARD", &["SMEMBERS"]),
        "zset" => ("ZCARD", &["ZRANGE", "0", "-1", "WITHSCORES"]),
        "list" => ("LLEN", &["LRANGE", "0", "-1"]),
        "stream" => ("XLEN", &["XRANGE", "-", "+"]),
        _ => return Ok(Content::Unreadable),
    };
    let len: u64 = con.retry(len_cmd, Some(key), |c| redis::cmd(len_cmd).arg(key).query(c))?;
    if kind != "string" && len > CONTENT_LIMIT {
        return Ok(Content::Unreadable);
    }
    let value: Value = con.retry(read_cmd[0], Some(key), |c| {
        let mut cmd = redis::cmd(read_cmd[0]);
        cmd.arg(key);
        for a in &read_cmd[1..] {
            cmd.arg(*a);
        }
        cmd.query(c)
    })?;
    let mut items = flatten(value);
    match kind.as_str() {
        "hash" | "zset" => {
            let mut pairs: Vec<Vec<u8>> = items.chunks(2).map(framed).collect();
            pairs.sort();
            items = pairs;
        }
        "set" => items.sort(),
        _ => {}
    }
    Ok(Content::Value(kind, items))
}

/// Length-prefixed concatenation, so ("ab","c") and ("a","bc") differ.
fn framed(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

fn flatten(v: Value) -> Vec<Vec<u8>> {
    match v {
        Value::BulkString(b) => vec![b],
        Value::SimpleString(s) => vec![s.into_bytes()],
        Value::Int(i) => vec![i.to_string().into_bytes()],
        Value::Array(items) | Value::Set(items) => items
            .into_iter()
            .flat_map(|i| {
                let inner = flatten(i);
                let mut out = vec![format!("[{}", inner.len()).into_bytes()];
                out.extend(inner);
                out
            })
            .collect(),
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [flatten(k), flatten(v)].concat()).collect(),
        Value::Nil => vec![],
        other => vec![format!("{other:?}").into_bytes()],
    }
}

/// True when `key` on `con` holds the content of the `DUMP` `payload` (expiry aside).
pub(crate) fn same_as_payload(con: &mut NodeConn, key: &[u8], payload: &[u8]) -> Result<bool> {
    static N: AtomicU64 = AtomicU64::new(0);
    let scratch = format!("psor:import-compare:{}:{}", std::process::id(), N.fetch_add(1, Relaxed)).into_bytes();
    let restored: Value = con.retry("RESTORE", Some(key), |c| {
        redis::cmd("RESTORE").arg(&scratch).arg(SCRATCH_TTL_MS).arg(payload).arg("REPLACE").query(c)
    })?;
    if !matches!(restored, Value::Okay) {
        return Ok(false);
    }
    let result = (|| {
        let want = read(con, &scratch)?;
        let have = read(con, key)?;
        Ok(matches!(want, Content::Value(..)) && want == have)
    })();
    let _ = con.retry("UNLINK", Some(&scratch), |c| redis::cmd("UNLINK").arg(&scratch).query::<u64>(c));
    result
}
