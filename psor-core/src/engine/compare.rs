//! Is the key already at the target the same as the source? Decides between "a rerun, leave
//! it" (`unchanged`) and "someone else's data, report it" (`conflict`).
//!
//! `DUMP` bytes are compared first (cheap, pipelined by the caller). When they differ the
//! content is compared by type, because a hashtable-encoded set or hash may serialize its
//! members in another order after a `COPY` or `RESTORE`. Collections larger than
//! [`CONTENT_LIMIT`] are not read: they stay conflicts, which is the safe answer.

use redis::Value;

use crate::connect::NodeConn;
use crate::error::Result;

/// Elements above which a collection is not read for comparison.
pub const CONTENT_LIMIT: u64 = 10_000;

/// A key's content in a form where equal content compares equal.
#[derive(Debug, PartialEq)]
pub(crate) enum Content {
    Missing,
    TooLarge,
    Value(String, Vec<Vec<u8>>),
}

/// Reads a key's content (type and elements, unordered collections sorted).
pub(crate) fn read(con: &mut NodeConn, key: &[u8]) -> Result<Content> {
    let kind: String = con.retry("TYPE", Some(key), |c| redis::cmd("TYPE").arg(key).query(c))?;
    let (len_cmd, read_cmd): (&str, &[&str]) = match kind.as_str() {
        "none" => return Ok(Content::Missing),
        "string" => ("STRLEN", &["GET"]),
        "hash" => ("HLEN", &["HGETALL"]),
        "set" => ("SCARD", &["SMEMBERS"]),
        "zset" => ("ZCARD", &["ZRANGE", "0", "-1", "WITHSCORES"]),
        "list" => ("LLEN", &["LRANGE", "0", "-1"]),
        "stream" => ("XLEN", &["XRANGE", "-", "+"]),
        _ => return Ok(Content::TooLarge),
    };
    let len: u64 = con.retry(len_cmd, Some(key), |c| redis::cmd(len_cmd).arg(key).query(c))?;
    if kind != "string" && len > CONTENT_LIMIT {
        return Ok(Content::TooLarge);
    }
    let value: Value = con.retry(read_cmd[0], Some(key), |c| {
        let mut cmd = redis::cmd(read_cmd[0]);
        cmd.arg(key);
        for a in &read_cmd[1..] {
            cmd.arg(*a);
        }
        cmd.query(c)
    })?;
    let mut items = match value {
        // A flat reply of strings: its elements as they are (framing is for nested streams).
        Value::Array(a) if kind != "stream" => a.into_iter().flat_map(flatten).collect(),
        v => flatten(v),
    };
    match kind.as_str() {
        // Unordered: compare as sorted pairs / members.
        "hash" | "zset" => {
            if kind == "zset" {
                // Scores as numbers: Redis 6.2 prints them with %.17g, 7.0+ in the shortest form,
                // so one score reads differently on two servers.
                for score in items.iter_mut().skip(1).step_by(2) {
                    if let Some(d) = std::str::from_utf8(score).ok().and_then(|t| t.parse::<f64>().ok()) {
                        *score = format!("{d:?}").into_bytes();
                    }
                }
            }
            let mut pairs: Vec<Vec<u8>> = items.chunks(2).map(|p| p.concat_with_sep()).collect();
            pairs.sort();
            items = pairs;
        }
        "set" => items.sort(),
        _ => {}
    }
    Ok(Content::Value(kind, items))
}

/// The content a decoded value has, in the form [`read`] gives a key's: to compare a payload
/// too big to restore into a scratch key with what a server holds.
pub(crate) fn content_of(v: &crate::embedded::rdb::Typed) -> Content {
    use crate::embedded::rdb::Typed;
    let score = |d: f64| format!("{d:?}").into_bytes();
    let (kind, mut items): (&str, Vec<Vec<u8>>) = match v {
        Typed::Str(s) => ("string", vec![s.clone()]),
        Typed::List(l) => ("list", l.iter().cloned().collect()),
        Typed::Set(m) => ("set", m.iter().cloned().collect()),
        Typed::Hash(m) => ("hash", m.iter().map(|(f, v)| [f.clone(), v.clone()].concat_with_sep()).collect()),
        Typed::ZSet(m) => ("zset", m.iter().map(|(e, d)| [e.clone(), score(*d)].concat_with_sep()).collect()),
    };
    if kind != "string" && items.len() as u64 > CONTENT_LIMIT {
        return Content::TooLarge;
    }
    if kind != "list" {
        items.sort();
    }
    Content::Value(kind.to_string(), items)
}

trait ConcatWithSep {
    fn concat_with_sep(&self) -> Vec<u8>;
}

impl ConcatWithSep for [Vec<u8>] {
    /// Length-prefixed concatenation, so ("ab","c") and ("a","bc") differ.
    fn concat_with_sep(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in self {
            out.extend_from_slice(&(part.len() as u64).to_le_bytes());
            out.extend_from_slice(part);
        }
        out
    }
}

fn flatten(v: Value) -> Vec<Vec<u8>> {
    match v {
        Value::BulkString(b) => vec![b],
        Value::SimpleString(s) => vec![s.into_bytes()],
        Value::Int(i) => vec![i.to_string().into_bytes()],
        Value::Array(items) | Value::Set(items) => {
            // Nested arrays (stream entries) are framed so structure is part of the content.
            items
                .into_iter()
                .flat_map(|i| {
                    let inner = flatten(i);
                    let mut framed = vec![format!("[{}", inner.len()).into_bytes()];
                    framed.extend(inner);
                    framed
                })
                .collect()
        }
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [flatten(k), flatten(v)].concat()).collect(),
        Value::Nil => vec![],
        other => vec![format!("{other:?}").into_bytes()],
    }
}

impl Content {
    /// True when both are real values (not missing, not too large) and equal.
    pub(crate) fn same_as(&self, other: &Content) -> bool {
        matches!(self, Content::Value(..)) && self == other
    }
}
