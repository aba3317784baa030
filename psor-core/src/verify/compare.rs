//! Reading a batch of keys on one side (type, expiry, size, content) in a few pipelines, and
//! deciding whether a key on one side is the same as its counterpart on the other.
//!
//! Per batch: one pipeline of `TYPE` + `PEXPIRETIME` (`PTTL` before Redis 7.0), one of the
//! size commands (not for strings, unless `--quick`: their size comes with their bytes,
//! [`Reader::string`]), then rounds of content chunks ([`engine::compare::Reader`]): each round
//! sends the next chunk of every key still being read, packed into pipelines whose replies
//! weigh at most [`ROUND_WEIGHT`] (elements, or 64-byte units of string), so memory stays
//! bounded whatever the values' sizes.
//!
//! Before that, [`probe_dumps`] reads each key's expiry and `DUMP` digest (for keys of at most
//! [`DUMP_LIMIT`] bytes), so that keys with byte-identical payloads on both sides need none of
//! the above: two integers and one payload per key and side, instead of a type, a size and
//! the elements.

use redis::Value;

use super::Kind;
use super::Reads;
use crate::engine::compare::{len_command, Content, Reader};
use crate::engine::router::Routed;
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

/// Reads `keys` (name, slot) through `router` (the side's read nodes). `abs_ttl`: the server has `PEXPIRETIME`;
/// `entries_read`: compare consumer groups' entries-read (both sides keep it).
/// A key whose commands fail is returned as `Err(message)`.
pub(crate) fn read_states(
    router: &mut Reads,
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
    classify_expiry(a.expire_at, b.expire_at, tolerance_ms)
}

fn utc(ms: i64) -> String {
    crate::snapshot::format_utc_ms(ms)
}

pub(crate) use psor_formats::now_ms;

/// Keys whose `MEMORY USAGE` is at most this many bytes are compared by `DUMP` payload first;
/// larger ones are read by type in bounded chunks straight away.
pub(crate) const DUMP_LIMIT: u64 = 64 * 1024;
/// Bytes (by `MEMORY USAGE`) of the `DUMP` replies in one pipeline.
const DUMP_ROUND_BYTES: u64 = 2 << 20;

/// The keyed hash both sides of one comparison reduce `DUMP` payloads with: SipHash under two
/// random keys drawn once per run, so two different payloads collide only by chance (2⁻¹²⁸),
/// never by construction.
#[derive(Clone, Debug, Default)]
pub(crate) struct DumpDigest(std::hash::RandomState, std::hash::RandomState);

impl DumpDigest {
    /// The digest of one payload.
    pub(crate) fn of(&self, payload: &[u8]) -> u128 {
        use std::hash::BuildHasher;
        let (mut a, mut b) = (self.0.build_hasher(), self.1.build_hasher());
        std::hash::Hasher::write(&mut a, payload);
        std::hash::Hasher::write(&mut b, payload);
        u128::from(std::hash::Hasher::finish(&a)) << 64 | u128::from(std::hash::Hasher::finish(&b))
    }
}

/// A key as the `DUMP` probe saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Probe {
    /// Absolute expiry in ms since the epoch, `None` when persistent (or missing).
    pub expire_at: Option<i64>,
    /// The digest of its `DUMP` payload; `None` when it was not asked (missing, too big, a
    /// refusal): such a key is read by type.
    pub dump: Option<u128>,
}

/// What [`probe_dumps`] found, and whether the server refused the probe's commands (`MEMORY
/// USAGE` or `DUMP` not allowed to this user, or unknown): then the caller stops probing.
pub(crate) struct Probed {
    /// One per key.
    pub probes: Vec<Probe>,
    /// A refusal that will repeat for every key.
    pub refused: bool,
}

/// Reads each key's expiry (`PEXPIRETIME`, `PTTL` before Redis 7.0) and size (`MEMORY USAGE`)
/// in one pipeline, then the `DUMP` payloads of those at most [`DUMP_LIMIT`] bytes, in
/// pipelines of at most [`DUMP_ROUND_BYTES`], each reduced to its digest as it arrives (memory
/// stays bounded whatever the batch holds). `MEMORY USAGE` is exact for strings and compact
/// encodings and samples big collections, the same trade the typed path's element-counted
/// chunks make. Errors are not reported here: a key the probe could not read goes down the
/// typed path, which reports them.
pub(crate) fn probe_dumps(
    router: &mut Reads,
    keys: &[(&[u8], u16)],
    abs_ttl: bool,
    digest: &DumpDigest,
) -> Result<Probed> {
    let ttl_cmd = if abs_ttl { "PEXPIRETIME" } else { "PTTL" };
    let mut cmds = Vec::with_capacity(keys.len() * 2);
    for (k, slot) in keys {
        let mut e = redis::Cmd::with_capacity(2, 32 + k.len());
        e.arg(ttl_cmd).arg(*k);
        let mut m = redis::Cmd::with_capacity(3, 40 + k.len());
        m.arg("MEMORY").arg("USAGE").arg(*k);
        cmds.push(Routed { slot: *slot, cmd: e });
        cmds.push(Routed { slot: *slot, cmd: m });
    }
    let replies = router.run("MEMORY USAGE", &cmds)?;
    let now = now_ms();
    let mut refused = false;
    let mut probes = Vec::with_capacity(keys.len());
    let mut sizes = Vec::with_capacity(keys.len());
    for r in replies.chunks(2) {
        let expire_at = match r[0] {
            Value::Int(-1 | -2) => None,
            Value::Int(t) if abs_ttl => Some(t),
            Value::Int(t) => Some(now + t),
            _ => None,
        };
        let size = match &r[1] {
            Value::Int(n) => u64::try_from(*n).ok().filter(|&n| n <= DUMP_LIMIT),
            Value::ServerError(e) => {
                refused |= is_refusal(e);
                None
            }
            _ => None,
        };
        // The expiry could not be read: the typed path decides (and reports why).
        let size = size.filter(|_| matches!(r[0], Value::Int(_)));
        probes.push(Probe { expire_at, dump: None });
        sizes.push(size);
    }
    let mut wanted = sizes.iter().enumerate().filter_map(|(i, s)| s.map(|s| (i, s))).peekable();
    while wanted.peek().is_some() {
        let (mut group, mut weight) = (Vec::new(), 0);
        while let Some(&(i, w)) = wanted.peek() {
            if !group.is_empty() && weight + w > DUMP_ROUND_BYTES {
                break;
            }
            weight += w;
            group.push(i);
            wanted.next();
        }
        let cmds: Vec<Routed> = group
            .iter()
            .map(|&i| {
                let mut cmd = redis::Cmd::with_capacity(2, 24 + keys[i].0.len());
                cmd.arg("DUMP").arg(keys[i].0);
                Routed { slot: keys[i].1, cmd }
            })
            .collect();
        for (i, reply) in group.into_iter().zip(router.run("DUMP", &cmds)?) {
            match reply {
                Value::BulkString(b) => probes[i].dump = Some(digest.of(&b)),
                Value::ServerError(e) => refused |= is_refusal(&e),
                _ => {}
            }
        }
    }
    Ok(Probed { probes, refused })
}

/// A refusal that every key would get: the command is not allowed to this user, or unknown.
fn is_refusal(e: &redis::ServerError) -> bool {
    let text = e.details().unwrap_or_default().to_ascii_lowercase();
    e.code() == "NOPERM" && text.contains("command") || e.code() == "ERR" && text.contains("unknown")
}

/// How two expiry instants differ (`None`: within the tolerance).
pub(crate) fn classify_expiry(a: Option<i64>, b: Option<i64>, tolerance_ms: u64) -> Option<(Kind, String)> {
    match (a, b) {
        (None, None) => None,
        (Some(x), Some(y)) if x.abs_diff(y) <= tolerance_ms => None,
        (Some(x), Some(y)) => {
            Some((Kind::Expiry, format!("expires {} vs {} ({} ms apart)", utc(x), utc(y), x.abs_diff(y))))
        }
        (Some(x), None) => Some((Kind::Expiry, format!("expires {} vs persistent", utc(x)))),
        (None, Some(y)) => Some((Kind::Expiry, format!("persistent vs expires {}", utc(y)))),
    }
}
