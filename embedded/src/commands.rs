//! The commands the embedded store answers: the union of what psor sends, with Redis 7.0's
//! replies (RESP2 shapes, the same error texts where psor or its users look at them).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Bound;

use psor_formats::KeyKind;
use redis::Value;

use super::rdb::{self, Typed};
use super::store::{now_ms, Entry, Store, Val, EMBEDDED_VERSION};
use super::{glob, EmbeddedConnection};

type Reply = std::result::Result<Value, Value>;

/// At most this many SCAN cursors are remembered; the oldest are forgotten first.
const MAX_CURSORS: usize = 10_000;

fn err(text: &str) -> Value {
    match redis::parse_redis_value(format!("-{}\r\n", text.replace(['\r', '\n'], " ")).as_bytes()) {
        Ok(v) => v,
        Err(_) => Value::SimpleString(format!("ERR {text}")),
    }
}

fn wrongtype() -> Value {
    err("WRONGTYPE Operation against a key holding the wrong kind of value")
}

fn syntax() -> Value {
    err("ERR syntax error")
}

fn not_int() -> Value {
    err("ERR value is not an integer or out of range")
}

fn bulk(b: impl Into<Vec<u8>>) -> Value {
    Value::BulkString(b.into())
}

fn array(items: impl IntoIterator<Item = Vec<u8>>) -> Value {
    Value::Array(items.into_iter().map(Value::BulkString).collect())
}

fn int_arg(a: &[u8]) -> std::result::Result<i64, Value> {
    std::str::from_utf8(a).ok().and_then(|s| s.parse::<i64>().ok()).ok_or_else(not_int)
}

fn float_arg(a: &[u8]) -> std::result::Result<f64, Value> {
    let s = std::str::from_utf8(a).map_err(|_| err("ERR value is not a valid float"))?;
    let v = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => s.parse::<f64>().map_err(|_| err("ERR value is not a valid float"))?,
    };
    if v.is_nan() {
        return Err(err("ERR value is not a valid float"));
    }
    Ok(v)
}

fn upper(a: &[u8]) -> String {
    String::from_utf8_lossy(a).to_ascii_uppercase()
}

/// The value of `key` decoded, if it exists and is of `kind`.
fn read<'s>(store: &'s mut Store, key: &[u8], kind: KeyKind) -> std::result::Result<Option<Cow<'s, Typed>>, Value> {
    match store.get(key) {
        None => Ok(None),
        Some(e) if e.val.kind() != kind => Err(wrongtype()),
        Some(e) => e.val.decoded().map(Some).map_err(|e| err(&format!("ERR {e}"))),
    }
}

/// The value of `key` for changing it: decoded in place if it was a payload, created empty
/// (by `make`) if missing. The key is marked changed.
fn write<'s>(
    store: &'s mut Store,
    key: &[u8],
    kind: KeyKind,
    make: impl FnOnce() -> Typed,
) -> std::result::Result<&'s mut Typed, Value> {
    match store.get(key) {
        Some(e) if e.val.kind() != kind => return Err(wrongtype()),
        Some(Entry { val: Val::Payload { bytes, .. }, .. }) => {
            // A change turns the payload into a plain value: fields past their own expiry go
            // now; the others lose their expiry (the store's own values have none).
            let typed = rdb::decode_at(bytes, now_ms()).map_err(|e| err(&format!("ERR {e}")))?;
            store.get_mut(key).expect("present").val = Val::Typed(typed);
        }
        Some(_) => {}
        None => store.insert(key.to_vec(), Entry { val: Val::Typed(make()), expire_at_ms: None }),
    }
    store.touch(key);
    match &mut store.get_mut(key).expect("present").val {
        Val::Typed(t) => Ok(t),
        Val::Payload { .. } => unreachable!("decoded above"),
    }
}

/// Removes `key` if its collection became empty (Redis never keeps empty collections).
fn drop_if_empty(store: &mut Store, key: &[u8]) {
    let empty = match store.keys.get(key).map(|e| &e.val) {
        Some(Val::Typed(Typed::Hash(m))) => m.is_empty(),
        Some(Val::Typed(Typed::Set(s))) => s.is_empty(),
        Some(Val::Typed(Typed::List(l))) => l.is_empty(),
        Some(Val::Typed(Typed::ZSet(z))) => z.is_empty(),
        _ => false,
    };
    if empty {
        store.remove(key);
    }
}

/// Runs one command (or queues it inside MULTI).
pub(super) fn dispatch(con: &mut EmbeddedConnection, store: &mut Store, args: Vec<Vec<u8>>) -> Value {
    let Some(name) = args.first().map(|a| upper(a)) else {
        return err("ERR empty command");
    };
    if con.multi.is_some() {
        match name.as_str() {
            "EXEC" => return exec(con, store),
            "DISCARD" => {
                con.multi = None;
                con.multi_failed = false;
                con.unwatch_all(store);
                return Value::Okay;
            }
            "MULTI" => return err("ERR MULTI calls can not be nested"),
            "WATCH" => return err("ERR WATCH inside MULTI is not allowed"),
            _ => {
                if let Some(e) = check_arity(&name, args.len()) {
                    con.multi_failed = true;
                    return e;
                }
                con.multi.as_mut().expect("in MULTI").push(args);
                return Value::SimpleString("QUEUED".into());
            }
        }
    }
    if let Some(e) = check_arity(&name, args.len()) {
        return e;
    }
    match name.as_str() {
        "MULTI" => {
            con.multi = Some(Vec::new());
            con.multi_failed = false;
            Value::Okay
        }
        "EXEC" => err("ERR EXEC without MULTI"),
        "DISCARD" => err("ERR DISCARD without MULTI"),
        "WATCH" => {
            for key in &args[1..] {
                store.expire_if_due(key, now_ms());
                let w = store.watched.entry(key.clone()).or_insert((0, 0));
                w.0 += 1;
                con.watches.push((key.clone(), w.1));
            }
            Value::Okay
        }
        "UNWATCH" => {
            con.unwatch_all(store);
            Value::Okay
        }
        _ => run(con, store, &name, &args).unwrap_or_else(|e| e),
    }
}

fn exec(con: &mut EmbeddedConnection, store: &mut Store) -> Value {
    let queued = con.multi.take().unwrap_or_default();
    if std::mem::take(&mut con.multi_failed) {
        con.unwatch_all(store);
        return err("EXECABORT Transaction discarded because of previous errors.");
    }
    let now = now_ms();
    // A watched key that expired since WATCH counts as changed (as in Redis 7.0).
    for (key, _) in &con.watches {
        store.expire_if_due(key, now);
    }
    let changed = con.watches.iter().any(|(key, seen)| store.watched.get(key).map(|w| w.1) != Some(*seen));
    con.unwatch_all(store);
    if changed {
        return Value::Nil;
    }
    Value::Array(
        queued
            .into_iter()
            .map(|args| {
                let name = upper(&args[0]);
                run(con, store, &name, &args).unwrap_or_else(|e| e)
            })
            .collect(),
    )
}

/// The fewest arguments (command name included) each command takes; `None` for unknown.
fn min_args(name: &str) -> Option<usize> {
    Some(match name {
        "PING" | "INFO" | "DBSIZE" | "TIME" | "MULTI" | "EXEC" | "DISCARD" | "UNWATCH" => 1,
        "ECHO" | "EXISTS" | "TYPE" | "UNLINK" | "DEL" | "DUMP" | "PEXPIRETIME" | "PTTL" | "TTL" | "EXPIRETIME"
        | "GET" | "STRLEN" | "HGETALL" | "HLEN" | "SMEMBERS" | "SCARD" | "LLEN" | "ZCARD" | "XLEN" | "WATCH"
        | "SCAN" | "SELECT" | "CLIENT" | "PERSIST" | "HKEYS" | "HVALS" => 2,
        "MEMORY" | "PEXPIRE" | "PEXPIREAT" | "EXPIRE" | "EXPIREAT" | "COPY" | "RENAME" | "RENAMENX" | "SET"
        | "HGET" | "HSCAN" | "SADD" | "RPUSH" | "LPUSH" | "HDEL" | "SREM" | "SISMEMBER" | "ZSCORE" | "ZREM"
        | "HEXISTS" | "SSCAN" => 3,
        "RESTORE" | "HSET" | "HMSET" | "HSETNX" | "LRANGE" | "ZADD" | "ZRANGE" | "XRANGE" | "HINCRBY" | "GETRANGE" => 4,
        "CLUSTER" => 2,
        _ => return None,
    })
}

fn check_arity(name: &str, n: usize) -> Option<Value> {
    match min_args(name) {
        None => Some(err(&format!("ERR unknown command '{name}', with args beginning with: "))),
        Some(min) if n < min => {
            Some(err(&format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase())))
        }
        Some(_) => match name {
            "HSET" | "HMSET" if !n.is_multiple_of(2) => {
                Some(err(&format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase())))
            }
            _ => None,
        },
    }
}

fn run(con: &mut EmbeddedConnection, store: &mut Store, name: &str, args: &[Vec<u8>]) -> Reply {
    let now = now_ms();
    let a = &args[1..];
    Ok(match name {
        "PING" => match a.first() {
            Some(m) => bulk(m.clone()),
            None => Value::SimpleString("PONG".into()),
        },
        "ECHO" => bulk(a[0].clone()),
        "INFO" => bulk(format!(
            "# Server\r\nredis_version:{EMBEDDED_VERSION}\r\nredis_mode:standalone\r\nos:psor embedded store\r\nrun_id:{}\r\n",
            con.shared.run_id
        )),
        "SELECT" => match int_arg(&a[0])? {
            0 => Value::Okay,
            _ => return Err(err("ERR DB index is out of range")),
        },
        "CLIENT" => match upper(&a[0]).as_str() {
            "SETINFO" | "SETNAME" => Value::Okay,
            "GETNAME" => Value::Nil,
            _ => return Err(err("ERR unknown subcommand for 'client'")),
        },
        "CLUSTER" => return Err(err("ERR This instance has cluster support disabled")),
        "TIME" => {
            let us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
            array([(us / 1_000_000).to_string().into_bytes(), (us % 1_000_000).to_string().into_bytes()])
        }
        "DBSIZE" => Value::Int(store.keys.values().filter(|e| e.expire_at_ms.is_none_or(|t| t > now)).count() as i64),
        "SCAN" => scan(store, a, now)?,
        "EXISTS" => Value::Int(a.iter().filter(|k| store.get(k).is_some()).count() as i64),
        "TYPE" => Value::SimpleString(store.get(&a[0]).map_or("none", |e| e.val.kind().as_str()).into()),
        "UNLINK" | "DEL" => Value::Int(a.iter().filter(|k| store.remove(k)).count() as i64),
        "DUMP" => store.get(&a[0]).map_or(Value::Nil, |e| bulk(e.val.dump())),
        "MEMORY" if upper(&a[0]) == "USAGE" => {
            // Approximate: the payload's length (Redis counts its allocations).
            store.get(&a[1]).map_or(Value::Nil, |e| Value::Int(e.val.dump().len() as i64 + a[1].len() as i64))
        }
        "MEMORY" => return Err(err("ERR unknown subcommand for 'memory'")),
        "RESTORE" => restore(store, a, now)?,
        "PEXPIRETIME" | "EXPIRETIME" | "PTTL" | "TTL" => match store.get(&a[0]) {
            None => Value::Int(-2),
            Some(Entry { expire_at_ms: None, .. }) => Value::Int(-1),
            Some(Entry { expire_at_ms: Some(t), .. }) => Value::Int(match name {
                "PEXPIRETIME" => *t,
                "EXPIRETIME" => *t / 1000,
                "PTTL" => (*t - now).max(0),
                _ => ((*t - now).max(0) + 500) / 1000,
            }),
        },
        "PEXPIRE" | "PEXPIREAT" | "EXPIRE" | "EXPIREAT" => {
            let n = int_arg(&a[1])?;
            let at = match name {
                "PEXPIRE" => now.saturating_add(n),
                "PEXPIREAT" => n,
                "EXPIRE" => now.saturating_add(n.saturating_mul(1000)),
                _ => n.saturating_mul(1000),
            };
            if store.get(&a[0]).is_none() {
                Value::Int(0)
            } else if at <= now {
                store.remove(&a[0]);
                Value::Int(1)
            } else {
                store.get_mut(&a[0]).expect("present").expire_at_ms = Some(at);
                store.touch(&a[0]);
                Value::Int(1)
            }
        }
        "PERSIST" => match store.get_mut(&a[0]) {
            Some(e) if e.expire_at_ms.is_some() => {
                e.expire_at_ms = None;
                store.touch(&a[0]);
                Value::Int(1)
            }
            _ => Value::Int(0),
        },
        "COPY" => {
            let mut replace = false;
            let mut i = 2;
            while i < a.len() {
                match upper(&a[i]).as_str() {
                    "REPLACE" => replace = true,
                    "DB" if i + 1 < a.len() => {
                        if int_arg(&a[i + 1])? != 0 {
                            return Err(err("ERR DB index is out of range"));
                        }
                        i += 1;
                    }
                    _ => return Err(syntax()),
                }
                i += 1;
            }
            if a[0] == a[1] {
                return Err(err("ERR source and destination objects are the same"));
            }
            let Some(src) = store.get(&a[0]).cloned() else { return Ok(Value::Int(0)) };
            if store.get(&a[1]).is_some() && !replace {
                return Ok(Value::Int(0));
            }
            store.insert(a[1].clone(), src);
            Value::Int(1)
        }
        "RENAME" | "RENAMENX" => {
            let Some(src) = store.get(&a[0]).cloned() else { return Err(err("ERR no such key")) };
            let nx = name == "RENAMENX";
            if a[0] == a[1] {
                return Ok(if nx { Value::Int(0) } else { Value::Okay });
            }
            if nx && store.get(&a[1]).is_some() {
                return Ok(Value::Int(0));
            }
            store.remove(&a[0]);
            store.insert(a[1].clone(), src);
            if nx {
                Value::Int(1)
            } else {
                Value::Okay
            }
        }
        "GET" => match read(store, &a[0], KeyKind::String)? {
            None => Value::Nil,
            Some(t) => match t.as_ref() {
                Typed::Str(s) => bulk(s.clone()),
                _ => return Err(wrongtype()),
            },
        },
        "GETRANGE" => match read(store, &a[0], KeyKind::String)? {
            None => bulk(Vec::new()),
            Some(t) => match t.as_ref() {
                Typed::Str(s) => {
                    let (from, to) = range(int_arg(&a[1])?, int_arg(&a[2])?, s.len());
                    bulk(s.get(from..to.max(from)).unwrap_or_default().to_vec())
                }
                _ => return Err(wrongtype()),
            },
        },
        "STRLEN" => match read(store, &a[0], KeyKind::String)? {
            Some(t) => match t.as_ref() {
                Typed::Str(s) => Value::Int(s.len() as i64),
                _ => return Err(wrongtype()),
            },
            None => Value::Int(0),
        },
        "SET" => set(store, a, now)?,
        "HSET" | "HMSET" | "HSETNX" => {
            let nx = name == "HSETNX";
            let Typed::Hash(h) = write(store, &a[0], KeyKind::Hash, || Typed::Hash(BTreeMap::new()))? else {
                return Err(wrongtype());
            };
            let mut added = 0;
            for pair in a[1..].chunks(2) {
                if nx && h.contains_key(&pair[0]) {
                    continue;
                }
                if h.insert(pair[0].clone(), pair[1].clone()).is_none() {
                    added += 1;
                }
            }
            drop_if_empty(store, &a[0]);
            if name == "HMSET" {
                Value::Okay
            } else {
                Value::Int(added)
            }
        }
        "HINCRBY" => {
            let by = int_arg(&a[2])?;
            let Typed::Hash(h) = write(store, &a[0], KeyKind::Hash, || Typed::Hash(BTreeMap::new()))? else {
                return Err(wrongtype());
            };
            let old = match h.get(&a[1]) {
                Some(v) => std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()).ok_or_else(|| err("ERR hash value is not an integer"))?,
                None => 0,
            };
            let new = old.checked_add(by).ok_or_else(|| err("ERR increment or decrement would overflow"))?;
            h.insert(a[1].clone(), new.to_string().into_bytes());
            Value::Int(new)
        }
        "HDEL" => {
            if store.get(&a[0]).is_none() {
                return Ok(Value::Int(0));
            }
            let Typed::Hash(h) = write(store, &a[0], KeyKind::Hash, || Typed::Hash(BTreeMap::new()))? else {
                return Err(wrongtype());
            };
            let n = a[1..].iter().filter(|f| h.remove(*f).is_some()).count();
            drop_if_empty(store, &a[0]);
            Value::Int(n as i64)
        }
        "HGET" | "HEXISTS" => {
            let v = match read(store, &a[0], KeyKind::Hash)? {
                Some(t) => match t.as_ref() {
                    Typed::Hash(h) => h.get(&a[1]).cloned(),
                    _ => return Err(wrongtype()),
                },
                None => None,
            };
            match (name, v) {
                ("HGET", Some(v)) => bulk(v),
                ("HGET", None) => Value::Nil,
                (_, v) => Value::Int(i64::from(v.is_some())),
            }
        }
        "HGETALL" | "HKEYS" | "HVALS" | "HLEN" | "HSCAN" => {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = match read(store, &a[0], KeyKind::Hash)? {
                Some(t) => match t.as_ref() {
                    Typed::Hash(h) => h.iter().map(|(f, v)| (f.clone(), v.clone())).collect(),
                    _ => return Err(wrongtype()),
                },
                None => Vec::new(),
            };
            match name {
                "HLEN" => Value::Int(pairs.len() as i64),
                "HKEYS" => array(pairs.into_iter().map(|p| p.0)),
                "HVALS" => array(pairs.into_iter().map(|p| p.1)),
                "HGETALL" => array(pairs.into_iter().flat_map(|(f, v)| [f, v])),
                _ => {
                    // Everything in one page with cursor 0, as Redis does for small hashes.
                    let pat = match_option(&a[2..])?;
                    let items = pairs.into_iter().filter(|(f, _)| pat.as_ref().is_none_or(|p| glob::matches(p, f)));
                    Value::Array(vec![bulk("0"), array(items.flat_map(|(f, v)| [f, v]))])
                }
            }
        }
        "SADD" => {
            let Typed::Set(s) = write(store, &a[0], KeyKind::Set, || Typed::Set(Default::default()))? else {
                return Err(wrongtype());
            };
            Value::Int(a[1..].iter().filter(|m| s.insert((*m).clone())).count() as i64)
        }
        "SREM" => {
            if store.get(&a[0]).is_none() {
                return Ok(Value::Int(0));
            }
            let Typed::Set(s) = write(store, &a[0], KeyKind::Set, || Typed::Set(Default::default()))? else {
                return Err(wrongtype());
            };
            let n = a[1..].iter().filter(|m| s.remove(*m)).count();
            drop_if_empty(store, &a[0]);
            Value::Int(n as i64)
        }
        "SMEMBERS" | "SCARD" | "SISMEMBER" | "SSCAN" => {
            let members: Vec<Vec<u8>> = match read(store, &a[0], KeyKind::Set)? {
                Some(t) => match t.as_ref() {
                    Typed::Set(s) => s.iter().cloned().collect(),
                    _ => return Err(wrongtype()),
                },
                None => Vec::new(),
            };
            match name {
                "SCARD" => Value::Int(members.len() as i64),
                "SISMEMBER" => Value::Int(i64::from(members.contains(&a[1]))),
                "SSCAN" => {
                    let pat = match_option(&a[2..])?;
                    let items = members.into_iter().filter(|m| pat.as_ref().is_none_or(|p| glob::matches(p, m)));
                    Value::Array(vec![bulk("0"), array(items)])
                }
                _ => array(members),
            }
        }
        "RPUSH" | "LPUSH" => {
            let Typed::List(l) = write(store, &a[0], KeyKind::List, || Typed::List(Default::default()))? else {
                return Err(wrongtype());
            };
            for v in &a[1..] {
                if name == "RPUSH" {
                    l.push_back(v.clone());
                } else {
                    l.push_front(v.clone());
                }
            }
            Value::Int(l.len() as i64)
        }
        "LLEN" | "LRANGE" => {
            let items: Vec<Vec<u8>> = match read(store, &a[0], KeyKind::List)? {
                Some(t) => match t.as_ref() {
                    Typed::List(l) => l.iter().cloned().collect(),
                    _ => return Err(wrongtype()),
                },
                None => Vec::new(),
            };
            if name == "LLEN" {
                Value::Int(items.len() as i64)
            } else {
                let (s, e) = range(int_arg(&a[1])?, int_arg(&a[2])?, items.len());
                array(items.into_iter().skip(s).take(e.saturating_sub(s)))
            }
        }
        "ZADD" => zadd(store, a)?,
        "ZREM" => {
            if store.get(&a[0]).is_none() {
                return Ok(Value::Int(0));
            }
            let Typed::ZSet(z) = write(store, &a[0], KeyKind::ZSet, || Typed::ZSet(BTreeMap::new()))? else {
                return Err(wrongtype());
            };
            let n = a[1..].iter().filter(|m| z.remove(*m).is_some()).count();
            drop_if_empty(store, &a[0]);
            Value::Int(n as i64)
        }
        "ZCARD" | "ZRANGE" | "ZSCORE" => {
            let mut items: Vec<(Vec<u8>, f64)> = match read(store, &a[0], KeyKind::ZSet)? {
                Some(t) => match t.as_ref() {
                    Typed::ZSet(z) => z.iter().map(|(m, s)| (m.clone(), *s)).collect(),
                    _ => return Err(wrongtype()),
                },
                None => Vec::new(),
            };
            match name {
                "ZCARD" => Value::Int(items.len() as i64),
                "ZSCORE" => items.iter().find(|(m, _)| *m == a[1]).map_or(Value::Nil, |(_, s)| bulk(rdb::format_score(*s))),
                _ => {
                    let mut withscores = false;
                    for opt in &a[3..] {
                        match upper(opt).as_str() {
                            "WITHSCORES" => withscores = true,
                            _ => return Err(err("ERR the embedded store supports only ZRANGE key start stop [WITHSCORES]")),
                        }
                    }
                    items.sort_by(|x, y| x.1.total_cmp(&y.1).then_with(|| x.0.cmp(&y.0)));
                    let (s, e) = range(int_arg(&a[1])?, int_arg(&a[2])?, items.len());
                    let page = items.into_iter().skip(s).take(e.saturating_sub(s));
                    if withscores {
                        array(page.flat_map(|(m, sc)| [m, rdb::format_score(sc).into_bytes()]))
                    } else {
                        array(page.map(|(m, _)| m))
                    }
                }
            }
        }
        "XLEN" | "XRANGE" => match store.get(&a[0]) {
            None if name == "XLEN" => Value::Int(0),
            None => Value::Array(Vec::new()),
            Some(e) if e.val.kind() != KeyKind::Stream => return Err(wrongtype()),
            Some(_) => return Err(err("ERR the embedded store carries streams as DUMP payloads and cannot read their entries")),
        },
        _ => return Err(err(&format!("ERR unknown command '{name}', with args beginning with: "))),
    })
}

/// Redis's index range rule (negative from the end, clamped): `[start, end)`.
fn range(start: i64, stop: i64, len: usize) -> (usize, usize) {
    let len = len as i64;
    let s = if start < 0 { (len + start).max(0) } else { start };
    let e = if stop < 0 { len + stop } else { stop.min(len - 1) };
    if s > e || s >= len {
        return (0, 0);
    }
    (s as usize, (e + 1) as usize)
}

fn match_option(opts: &[Vec<u8>]) -> std::result::Result<Option<Vec<u8>>, Value> {
    let mut pat = None;
    let mut i = 0;
    while i < opts.len() {
        match upper(&opts[i]).as_str() {
            "MATCH" if i + 1 < opts.len() => pat = Some(opts[i + 1].clone()),
            "COUNT" if i + 1 < opts.len() => {
                int_arg(&opts[i + 1])?;
            }
            _ => return Err(syntax()),
        }
        i += 2;
    }
    Ok(pat.filter(|p| p != b"*"))
}

fn scan(store: &mut Store, a: &[Vec<u8>], now: i64) -> Reply {
    let cursor: u64 =
        std::str::from_utf8(&a[0]).ok().and_then(|s| s.parse().ok()).ok_or_else(|| err("ERR invalid cursor"))?;
    let (mut pattern, mut count, mut kind) = (None, 10usize, None);
    let mut i = 1;
    while i < a.len() {
        let value = a.get(i + 1).ok_or_else(syntax)?;
        match upper(&a[i]).as_str() {
            "MATCH" => pattern = Some(value.clone()).filter(|p| p != b"*"),
            "COUNT" => {
                count = usize::try_from(int_arg(value)?).ok().filter(|&c| c >= 1).ok_or_else(syntax)?;
            }
            "TYPE" => kind = Some(String::from_utf8_lossy(value).to_ascii_lowercase()),
            _ => return Err(syntax()),
        }
        i += 2;
    }
    let start = match cursor {
        0 => Bound::Unbounded,
        // A cursor is the key to go on from, so keys deleted or added meanwhile never make a
        // scan miss a key that was there throughout (Redis's guarantee).
        c => Bound::Included(store.cursors.get(&c).cloned().ok_or_else(|| err("ERR invalid cursor"))?),
    };
    let mut found = Vec::new();
    let mut next_key = None;
    for (n, (key, e)) in store.keys.range::<Vec<u8>, _>((start, Bound::Unbounded)).enumerate() {
        if n == count {
            next_key = Some(key.clone());
            break;
        }
        if e.expire_at_ms.is_some_and(|t| t <= now) {
            continue;
        }
        if pattern.as_ref().is_some_and(|p| !glob::matches(p, key)) {
            continue;
        }
        if kind.as_deref().is_some_and(|k| k != e.val.kind().as_str()) {
            continue;
        }
        found.push(key.clone());
    }
    let next = match next_key {
        None => 0,
        Some(k) => {
            store.next_cursor += 1;
            let c = store.next_cursor;
            store.cursors.insert(c, k);
            while store.cursors.len() > MAX_CURSORS {
                store.cursors.pop_first();
            }
            c
        }
    };
    Ok(Value::Array(vec![bulk(next.to_string()), array(found)]))
}

fn restore(store: &mut Store, a: &[Vec<u8>], now: i64) -> Reply {
    let ttl = int_arg(&a[1])?;
    if ttl < 0 {
        return Err(err("ERR Invalid TTL value, must be >= 0"));
    }
    let (mut replace, mut absttl) = (false, false);
    let mut i = 3;
    while i < a.len() {
        match upper(&a[i]).as_str() {
            "REPLACE" => replace = true,
            "ABSTTL" => absttl = true,
            "IDLETIME" | "FREQ" if i + 1 < a.len() => {
                int_arg(&a[i + 1])?;
                i += 1;
            }
            _ => return Err(syntax()),
        }
        i += 1;
    }
    if !replace && store.get(&a[0]).is_some() {
        return Err(err("BUSYKEY Target key name already exists."));
    }
    let payload = &a[2];
    rdb::check_footer(payload).map_err(|_| err("ERR DUMP payload version or checksum are wrong"))?;
    let kind = rdb::payload_kind(payload).map_err(|_| err("ERR Bad data format"))?;
    let expire_at_ms = match (ttl, absttl) {
        (0, _) => None,
        (t, true) => Some(t),
        (t, false) => Some(now.saturating_add(t)),
    };
    if expire_at_ms.is_some_and(|t| t <= now) {
        // Already expired: Redis answers OK and leaves the key absent.
        store.remove(&a[0]);
        return Ok(Value::Okay);
    }
    store.insert(a[0].clone(), Entry { val: Val::Payload { kind, bytes: payload.clone() }, expire_at_ms });
    Ok(Value::Okay)
}

fn set(store: &mut Store, a: &[Vec<u8>], now: i64) -> Reply {
    let (mut nx, mut xx, mut keepttl, mut get) = (false, false, false, false);
    let mut expire = None;
    let mut i = 2;
    while i < a.len() {
        let opt = upper(&a[i]);
        match opt.as_str() {
            "NX" => nx = true,
            "XX" => xx = true,
            "KEEPTTL" => keepttl = true,
            "GET" => get = true,
            "PX" | "EX" | "PXAT" | "EXAT" if i + 1 < a.len() => {
                let n = int_arg(&a[i + 1])?;
                if n <= 0 {
                    return Err(err("ERR invalid expire time in 'set' command"));
                }
                expire = Some(match opt.as_str() {
                    "PX" => now.saturating_add(n),
                    "EX" => now.saturating_add(n.saturating_mul(1000)),
                    "PXAT" => n,
                    _ => n.saturating_mul(1000),
                });
                i += 1;
            }
            _ => return Err(syntax()),
        }
        i += 1;
    }
    if nx && xx || keepttl && expire.is_some() {
        return Err(syntax());
    }
    let old = store.get(&a[0]).cloned();
    let old_value = match (&old, get) {
        (Some(e), true) => match e.val.decoded() {
            Ok(t) => match t.as_ref() {
                Typed::Str(s) => bulk(s.clone()),
                _ => return Err(wrongtype()),
            },
            Err(_) => return Err(wrongtype()),
        },
        _ => Value::Nil,
    };
    if (nx && old.is_some()) || (xx && old.is_none()) {
        return Ok(if get { old_value } else { Value::Nil });
    }
    let expire_at_ms = if keepttl { old.and_then(|e| e.expire_at_ms) } else { expire };
    store.insert(a[0].clone(), Entry { val: Val::Typed(Typed::Str(a[1].clone())), expire_at_ms });
    Ok(if get { old_value } else { Value::Okay })
}

fn zadd(store: &mut Store, a: &[Vec<u8>]) -> Reply {
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut i = 1;
    while i < a.len() {
        match upper(&a[i]).as_str() {
            "NX" => nx = true,
            "XX" => xx = true,
            "CH" => ch = true,
            "GT" | "LT" | "INCR" => {
                return Err(err("ERR the embedded store supports ZADD key [NX|XX] [CH] score member ..."))
            }
            _ => break,
        }
        i += 1;
    }
    let rest = &a[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(syntax());
    }
    let pairs = rest
        .chunks(2)
        .map(|p| Ok((float_arg(&p[0])?, p[1].clone())))
        .collect::<std::result::Result<Vec<_>, Value>>()?;
    if xx && store.get(&a[0]).is_none() {
        return Ok(Value::Int(0));
    }
    let Typed::ZSet(z) = write(store, &a[0], KeyKind::ZSet, || Typed::ZSet(BTreeMap::new()))? else {
        return Err(wrongtype());
    };
    let (mut added, mut changed) = (0, 0);
    for (score, member) in pairs {
        match z.get(&member) {
            Some(_) if nx => {}
            Some(old) => {
                if *old != score {
                    changed += 1;
                    z.insert(member, score);
                }
            }
            None if xx => {}
            None => {
                added += 1;
                z.insert(member, score);
            }
        }
    }
    drop_if_empty(store, &a[0]);
    Ok(Value::Int(if ch { added + changed } else { added }))
}
