//! Reading a batch of keys on one side (type, expiry, size, content) in a few pipelines, and
//! deciding whether a key on one side is the same as its counterpart on the other.
//!
//! Per batch: one pipeline of `TYPE` + `PEXPIRETIME` (`PTTL` before Redis 7.0), one of the
//! size commands (not for strings, unless `--quick`: their size comes with their bytes,
//! [`Reader::string`]), then rounds of content chunks ([`engine::compare::Reader`]): each round
//! sends the next chunk of every key still being read, packed into pipelines whose replies
//! weigh at most [`ROUND_WEIGHT`] (elements, or 64-byte units of string), so memory stays
//! bounded whatever the values' sizes.

use redis::Value;

use super::Kind;
use crate::engine::compare::{len_command, Content, Reader};
use crate::engine::router::{Routed, Router};
use crate::error::Result;

/// Weight of the replies in one content pipeline (about 2 MiB of strings, or 32k elements).
const ROUND_WEIGHT: u64 = 32_768;

/// A key as read on one side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyState {
    /// Type, size and digest (`Missing` when the key does not exist).
    pub content: Content,
    /// Absolute expiry in ms since the epoch, `None` when persistent.
    pub expire_at: Option<i64>,
}

/// Reads `keys` (name, slot) on `router`. `abs_ttl`: the server has `PEXPIRETIME`;
/// `entries_read`: compare consumer groups' entries-read (both sides keep it).
/// A key whose commands fail is returned as `Err(message)`.
pub(crate) fn read_states(
    router: &mut Router,
    keys: &[(&[u8], u16)],
    quick: bool,
    abs_ttl: bool,
    field_expiry: bool,
    entries_read: bool,
) -> Result<Vec<std::result::Result<KeyState, String>>> {
    let ttl_cmd = if abs_ttl { "PEXPIRETIME" } else { "PTTL" };
    let mut cmds = Vec::with_capacity(keys.len() * 2);
    for (k, slot) in keys {
        // Sized once: no buffer growth per argument.
        let mut t = redis::Cmd::with_capacity(2, 24 + k.len());
        t.arg("TYPE").arg(*k);
        let mut e = redis::Cmd::with_capacity(2, 32 + k.len());
        e.arg(ttl_cmd).arg(*k);
        cmds.push(Routed { slot: *slot, cmd: t });
        cmds.push(Routed { slot: *slot, cmd: e });
    }
    let replies = router.run("TYPE", &cmds)?;
    let now = now_ms();
    let mut out: Vec<std::result::Result<KeyState, String>> = Vec::with_capacity(keys.len());
    let mut kinds: Vec<Option<String>> = Vec::with_capacity(keys.len());
    for r in replies.chunks(2) {
        match (&r[0], &r[1]) {
            (Value::ServerError(e), _) | (_, Value::ServerError(e)) => {
                out.push(Err(e.to_string()));
                kinds.push(None);
            }
            (t, Value::Int(x)) => {
                let kind = match t {
                    Value::SimpleString(s) => s.clone(),
                    Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                    other => format!("{other:?}"),
                };
                let expire_at = match *x {
                    -1 | -2 => None,
                    t if abs_ttl => Some(t),
                    t => Some(now + t),
                };
                let content = if kind == "none" { Content::Missing } else { Content::Opaque(kind.clone()) };
                out.push(Ok(KeyState { content, expire_at }));
                kinds.push(Some(kind).filter(|k| k != "none"));
            }
            (a, b) => {
                out.push(Err(format!("unexpected replies {a:?}, {b:?}")));
                kinds.push(None);
            }
        }
    }
    // Sizes.
    let mut sized = Vec::new();
    let mut cmds = Vec::new();
    let mut readers: Vec<(usize, Reader)> = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        match kind.as_deref() {
            // A string's size comes with its bytes (no STRLEN round).
            Some("string") if !quick => readers.push((i, Reader::string(keys[i].0))),
            Some(kind) => {
                if let Some(c) = len_command(kind) {
                    let mut cmd = redis::Cmd::with_capacity(2, 24 + keys[i].0.len());
                    cmd.arg(c).arg(keys[i].0);
                    cmds.push(Routed { slot: keys[i].1, cmd });
                    sized.push(i);
                }
            }
            None => {}
        }
    }
    let replies = if cmds.is_empty() { Vec::new() } else { router.run("size", &cmds)? };
    for (&i, r) in sized.iter().zip(replies) {
        match r {
            Value::Int(n) => {
                let kind = kinds[i].as_deref().unwrap_or_default();
                let r = Reader::new(keys[i].0, kind, n.max(0) as u64, quick);
                readers.push((i, r.with_field_expiry(field_expiry).with_entries_read(entries_read)));
            }
            // The size cannot be read here (a stream in the embedded store): compared by
            // `DUMP` bytes instead; the content stays `Opaque`.
            Value::ServerError(e) if e.code() != "WRONGTYPE" && e.code() != "NOPERM" => {}
            Value::ServerError(e) => out[i] = Err(e.to_string()),
            other => out[i] = Err(format!("unexpected reply {other:?}")),
        }
    }
    // Content, in rounds of bounded pipelines.
    let mut active: Vec<(usize, Reader)> = Vec::new();
    for (i, r) in readers {
        if r.has_next() {
            active.push((i, r));
        } else {
            finish(&mut out[i], r);
        }
    }
    while !active.is_empty() {
        let mut still = Vec::new();
        let mut rest = active.into_iter().peekable();
        while rest.peek().is_some() {
            let mut group = Vec::new();
            let mut weight = 0;
            while let Some((_, r)) = rest.peek() {
                let w = r.weight();
                if !group.is_empty() && weight + w > ROUND_WEIGHT {
                    break;
                }
                weight += w;
                group.extend(rest.next());
            }
            let cmds: Vec<Routed> = group
                .iter()
                .map(|(i, r)| Routed {
                    slot: keys[*i].1,
                    cmd: r.next_command().expect("active readers have a command"),
                })
                .collect();
            let replies = router.run("read", &cmds)?;
            for ((i, mut r), reply) in group.into_iter().zip(replies) {
                if let Value::ServerError(e) = &reply {
                    // WRONGTYPE: the key changed type since TYPE. Any other refusal (a stream in
                    // the embedded store): the content cannot be read by type here, and is
                    // compared by `DUMP` bytes instead (`Content::Opaque`).
                    let kind = r.finish().kind().to_string();
                    if let Ok(state) = &mut out[i] {
                        state.content = match e.code() {
                            "WRONGTYPE" => Content::Unsteady(kind, 0),
                            _ => Content::Opaque(kind),
                        };
                    }
                    continue;
                }
                r.feed(reply)?;
                if r.has_next() {
                    still.push((i, r));
                } else {
                    finish(&mut out[i], r);
                }
            }
        }
        active = still;
    }
    Ok(out)
}

fn finish(slot: &mut std::result::Result<KeyState, String>, r: Reader) {
    if let Ok(s) = slot {
        s.content = r.finish();
    }
}

/// How a key on side A differs from its counterpart on side B (`None`: the same).
pub(crate) fn classify(a: &KeyState, b: &KeyState, tolerance_ms: u64) -> Option<(Kind, String)> {
    match (&a.content, &b.content) {
        (Content::Missing, Content::Missing) => return None,
        (_, Content::Missing) => return Some((Kind::Missing, format!("{}, absent from side B", a.content.kind()))),
        (Content::Missing, _) => return Some((Kind::Extra, format!("{} on side B only", b.content.kind()))),
        _ => {}
    }
    let (ka, kb) = (a.content.kind(), b.content.kind());
    if ka != kb {
        return Some((Kind::Type, format!("{ka} vs {kb}")));
    }
    match (&a.content, &b.content) {
        (Content::Opaque(_), Content::Opaque(_)) => {}
        (
            Content::Value { len: m, digest: d, field_expiry: (fm, sm), .. },
            Content::Value { len: n, digest: e, field_expiry: (fn_, sn), .. },
        ) if m == n && d == e && (fm, sm) != (fn_, sn) => {
            return Some((
                Kind::Expiry,
                format!("hash field expirations differ ({fm} vs {fn_} fields with an expiry)"),
            ));
        }
        (x, y) if !x.same_as(y) => {
            let unit = if ka == "string" { "bytes" } else { "elements" };
            let detail = match (x.len(), y.len()) {
                (Some(m), Some(n)) if m != n => format!("{ka}: {m} vs {n} {unit}"),
                _ if matches!(x, Content::Unsteady(..)) || matches!(y, Content::Unsteady(..)) => {
                    format!("{ka}: could not be read consistently (changing, or a table being rehashed)")
                }
                (Some(n), _) => format!("{ka}: same size ({n} {unit}), other content"),
                _ => format!("{ka}: other content"),
            };
            return Some((Kind::Content, detail));
        }
        _ => {}
    }
    match (a.expire_at, b.expire_at) {
        (None, None) => None,
        (Some(x), Some(y)) if x.abs_diff(y) <= tolerance_ms => None,
        (Some(x), Some(y)) => {
            Some((Kind::Expiry, format!("expires {} vs {} ({} ms apart)", utc(x), utc(y), x.abs_diff(y))))
        }
        (Some(x), None) => Some((Kind::Expiry, format!("expires {} vs persistent", utc(x)))),
        (None, Some(y)) => Some((Kind::Expiry, format!("persistent vs expires {}", utc(y)))),
    }
}

fn utc(ms: i64) -> String {
    crate::snapshot::format_utc_ms(ms)
}

pub(crate) use psor_formats::now_ms;
