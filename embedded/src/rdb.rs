//! The Redis `DUMP` payload codec of the embedded store.
//!
//! A payload is `type byte | object | RDB version (u16 LE) | CRC-64/Redis (u64 LE)` over
//! everything before the CRC. The embedded store keeps payloads it was handed (`RESTORE`, a
//! snapshot file) as they are, and decodes one only when a typed command needs to read it; it
//! encodes only values it built itself, in the plain (non-compact) RDB types every Redis from
//! 2.x on loads.
//!
//! Decoded (what Redis 6.2 – 7.x emit for the types psor reads):
//!
//! | type | byte | encodings |
//! |---|---|---|
//! | string | 0 | raw, int 8/16/32, LZF |
//! | list | 1, 10, 14, 18 | plain, ziplist, quicklist of ziplists, quicklist 2 (listpack / plain nodes) |
//! | set | 2, 11, 20 | plain, intset, listpack |
//! | zset | 3, 5, 12, 17 | plain (text / binary scores), ziplist, listpack |
//! | hash | 4, 13, 16 | plain, ziplist, listpack |
//!
//! Streams (15, 19, 21) are not [`Typed`] values: the store keeps them opaque (their type is
//! known from the type byte), [`downgrade_stream`] rewrites one for an older server, and
//! [`decode_stream`] reads one whole for a rebuild with typed commands. Module values (6, 7)
//! are never decoded.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use psor_formats::KeyKind;

/// The RDB version written into payloads the store encodes: Redis 7.0's, so Redis 7.0 and
/// every newer server accepts them.
pub const RDB_VERSION: u16 = 10;
/// The newest Redis RDB version whose payloads the store accepts in `RESTORE` (Redis 7.4).
pub const MAX_RDB_VERSION: u16 = 12;
/// The RDB version Valkey 9 writes into every payload. Valkey left a gap after Redis's
/// numbers (12–79 are "foreign": Redis 7.4 and later, which Valkey refuses) and continues at 80.
pub const VALKEY_9_RDB_VERSION: u16 = 80;

/// True for the RDB versions whose payloads this codec reads: every Redis one up to
/// [`MAX_RDB_VERSION`], and Valkey 9's [`VALKEY_9_RDB_VERSION`].
pub fn known_version(version: u16) -> bool {
    version <= MAX_RDB_VERSION || version == VALKEY_9_RDB_VERSION
}

const CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// RDB object type bytes.
mod ty {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
    /// Valkey 9: a hash whose fields may carry their own expiry (`HSETEX`, `HEXPIRE`).
    pub const HASH_2: u8 = 22;
    /// Redis 7.4+: a hash with field expirations, as a hashtable: the smallest expiry (8 bytes
    /// LE), a count, then per field its expiry relative to that (length-encoded; 0: none, else
    /// `expiry - min + 1`), its name and its value.
    pub const HASH_METADATA: u8 = 24;
    /// Redis 7.4+: a hash with field expirations, as a listpack: the smallest expiry (8 bytes
    /// LE, 0: none), then a listpack of field, value, absolute expiry (Unix ms, 0: none).
    pub const HASH_LISTPACK_EX: u8 = 25;
}

/// The oldest RDB version that knows the object type `t` (what a target must read before it
/// can load a payload of this type), or `None` for a type this codec does not know.
pub fn type_since(t: u8) -> Option<u16> {
    Some(match t {
        ty::STRING | ty::LIST | ty::SET | ty::ZSET | ty::HASH => 1,
        ty::ZSET_2 => 8,
        ty::MODULE | ty::MODULE_2 => 8,
        ty::HASH_ZIPMAP..=ty::HASH_ZIPLIST => 2,
        ty::LIST_QUICKLIST => 7,
        ty::STREAM_LISTPACKS => 9,
        ty::HASH_LISTPACK | ty::ZSET_LISTPACK | ty::LIST_QUICKLIST_2 | ty::STREAM_LISTPACKS_2 => 10,
        ty::SET_LISTPACK | ty::STREAM_LISTPACKS_3 => 11,
        ty::HASH_METADATA | ty::HASH_LISTPACK_EX => 12,
        ty::HASH_2 => VALKEY_9_RDB_VERSION,
        _ => return None,
    })
}

/// True when a server writing (and reading up to) RDB `version` loads objects of type `t`.
/// Valkey 9 (80) reads every Redis type up to RDB 11 plus its own, not Redis 7.4's (12).
pub fn version_reads_type(version: u16, t: u8) -> bool {
    match type_since(t) {
        None => false,
        Some(since) if version == VALKEY_9_RDB_VERSION => since <= 11 || since == VALKEY_9_RDB_VERSION,
        Some(since) => since <= version && since != VALKEY_9_RDB_VERSION,
    }
}

/// True when a server of RDB `version` accepts a payload whose footer says `payload_version`
/// (`RESTORE` checks only that number; the type is checked when loading).
pub fn version_reads_footer(version: u16, payload_version: u16) -> bool {
    if version == VALKEY_9_RDB_VERSION {
        payload_version <= 11 || payload_version == VALKEY_9_RDB_VERSION
    } else {
        payload_version <= version
    }
}

/// A decoded value.
#[derive(Clone, Debug, PartialEq)]
pub enum Typed {
    /// A string.
    Str(Vec<u8>),
    /// A list, head first.
    List(VecDeque<Vec<u8>>),
    /// A set.
    Set(BTreeSet<Vec<u8>>),
    /// A sorted set: member → score.
    ZSet(BTreeMap<Vec<u8>, f64>),
    /// A hash: field → value.
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
}

impl Typed {
    /// The kind `TYPE` reports.
    pub fn kind(&self) -> KeyKind {
        match self {
            Typed::Str(_) => KeyKind::String,
            Typed::List(_) => KeyKind::List,
            Typed::Set(_) => KeyKind::Set,
            Typed::ZSet(_) => KeyKind::ZSet,
            Typed::Hash(_) => KeyKind::Hash,
        }
    }
}

/// Why a payload could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RdbError {
    /// Shorter than a footer, a newer RDB version, or a wrong CRC (what Redis calls
    /// "DUMP payload version or checksum are wrong").
    BadFooter,
    /// A type the store carries but does not decode (streams, modules).
    Opaque(u8),
    /// A type byte no Redis up to 7.4 writes.
    UnknownType(u8),
    /// The object bytes do not parse.
    Corrupt(&'static str),
}

impl std::fmt::Display for RdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RdbError::BadFooter => f.write_str("DUMP payload version or checksum are wrong"),
            RdbError::Opaque(t) => write!(f, "the embedded store does not decode values of RDB type {t}"),
            RdbError::UnknownType(t) => write!(f, "unknown RDB type {t}"),
            RdbError::Corrupt(what) => write!(f, "corrupt DUMP payload: {what}"),
        }
    }
}

type R<T> = std::result::Result<T, RdbError>;
/// Hash fields → values.
type FieldMap = BTreeMap<Vec<u8>, Vec<u8>>;

/// Checks a payload's footer (length, RDB version, CRC) and returns the object bytes
/// (type byte first).
pub fn check_footer(payload: &[u8]) -> R<&[u8]> {
    let body_len = payload.len().checked_sub(10).filter(|&n| n >= 1).ok_or(RdbError::BadFooter)?;
    let version = u16::from_le_bytes([payload[body_len], payload[body_len + 1]]);
    if !known_version(version) {
        return Err(RdbError::BadFooter);
    }
    let crc = u64::from_le_bytes(payload[body_len + 2..].try_into().map_err(|_| RdbError::BadFooter)?);
    if CRC.checksum(&payload[..body_len + 2]) != crc {
        return Err(RdbError::BadFooter);
    }
    Ok(&payload[..body_len])
}

/// The kind of a payload's value, from its type byte alone (what `TYPE` answers).
pub fn payload_kind(payload: &[u8]) -> R<KeyKind> {
    let t = *payload.first().ok_or(RdbError::BadFooter)?;
    Ok(match t {
        ty::STRING => KeyKind::String,
        ty::LIST | ty::LIST_ZIPLIST | ty::LIST_QUICKLIST | ty::LIST_QUICKLIST_2 => KeyKind::List,
        ty::SET | ty::SET_INTSET | ty::SET_LISTPACK => KeyKind::Set,
        ty::ZSET | ty::ZSET_2 | ty::ZSET_ZIPLIST | ty::ZSET_LISTPACK => KeyKind::ZSet,
        ty::HASH
        | ty::HASH_ZIPMAP
        | ty::HASH_ZIPLIST
        | ty::HASH_LISTPACK
        | ty::HASH_2
        | ty::HASH_METADATA
        | ty::HASH_LISTPACK_EX => KeyKind::Hash,
        ty::STREAM_LISTPACKS | ty::STREAM_LISTPACKS_2 | ty::STREAM_LISTPACKS_3 => KeyKind::Stream,
        ty::MODULE | ty::MODULE_2 => KeyKind::Other,
        t => return Err(RdbError::UnknownType(t)),
    })
}

/// Decodes a whole payload (footer checked).
pub fn decode(payload: &[u8]) -> R<Typed> {
    let body = check_footer(payload)?;
    let mut r = Reader { b: body, pos: 1 };
    let v = r.object(body[0])?;
    if r.pos != body.len() {
        return Err(RdbError::Corrupt("bytes left after the value"));
    }
    Ok(v)
}

/// A decoded value with what [`Typed`] does not hold: each hash field's own absolute expiry
/// (Unix ms), for the hashes with field expirations of Valkey 9 (type 22).
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The value.
    pub value: Typed,
    /// Hash fields that have an expiry: field → absolute expiry (Unix ms). Empty for other types.
    pub field_expiry: BTreeMap<Vec<u8>, i64>,
}

/// Decodes a whole payload (footer checked), keeping the fields' expiries of a hash with
/// field expirations.
pub fn decode_full(payload: &[u8]) -> R<Decoded> {
    let body = check_footer(payload)?;
    let mut r = Reader { b: body, pos: 1 };
    let d = if matches!(body[0], ty::HASH_2 | ty::HASH_METADATA | ty::HASH_LISTPACK_EX) {
        let (value, field_expiry) = r.hash_with_ttls(body[0])?;
        Decoded { value: Typed::Hash(value), field_expiry }
    } else {
        Decoded { value: r.object(body[0])?, field_expiry: BTreeMap::new() }
    };
    if r.pos != body.len() {
        return Err(RdbError::Corrupt("bytes left after the value"));
    }
    Ok(d)
}

/// Decodes a payload as a server would show it at `now_ms` (Unix ms): the fields of a hash
/// with field expirations whose expiry has passed are gone.
pub fn decode_at(payload: &[u8], now_ms: i64) -> R<Typed> {
    let Decoded { mut value, field_expiry } = decode_full(payload)?;
    if let Typed::Hash(h) = &mut value {
        h.retain(|f, _| field_expiry.get(f).is_none_or(|&at| at > now_ms));
    }
    Ok(value)
}

/// The RDB version in a payload's footer (not checked), or `None` when it is too short.
pub fn footer_version(payload: &[u8]) -> Option<u16> {
    let n = payload.len().checked_sub(10).filter(|&n| n >= 1)?;
    Some(u16::from_le_bytes([payload[n], payload[n + 1]]))
}

/// The object type byte of a payload.
pub fn payload_type(payload: &[u8]) -> Option<u8> {
    payload.first().copied()
}

/// The same object with another RDB version in its footer (and the CRC recomputed): for a
/// target that knows the object's type but refuses the source's newer version number.
pub fn refooter(payload: &[u8], version: u16) -> R<Vec<u8>> {
    let body = check_footer(payload)?;
    Ok(with_version(body.to_vec(), version))
}

/// [`refooter`], once the object is checked to parse, in one pass less: the footer's CRC is
/// checked once, the object parsed where it lies (a string without copying its value), and
/// the result built in one allocation. What a transcoded copy does for every key whose type
/// the target knows (Valkey 9's RDB 80 to Redis 7.0's 10: every string).
pub fn refooter_checked(payload: &[u8], version: u16) -> R<Vec<u8>> {
    let body = check_footer(payload)?;
    let mut r = Reader { b: body, pos: 1 };
    if body[0] == ty::STRING {
        r.skip_string()?;
    } else {
        r.object(body[0])?;
    }
    if r.pos != body.len() {
        return Err(RdbError::Corrupt("bytes left after the value"));
    }
    let mut out = Vec::with_capacity(body.len() + 10);
    out.extend_from_slice(body);
    Ok(with_version(out, version))
}

fn with_version(mut out: Vec<u8>, version: u16) -> Vec<u8> {
    out.extend_from_slice(&version.to_le_bytes());
    let crc = CRC.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Encodes a value as a payload (plain RDB types, RDB version [`RDB_VERSION`]).
pub fn encode(v: &Typed) -> Vec<u8> {
    encode_for(v, RDB_VERSION)
}

/// Encodes a value in the plain RDB types (0–4, and the binary-score zset 5 from RDB 8 on),
/// which every server loads, with `version` in the footer: what a target of that RDB version
/// reads whatever encoding the source used.
pub fn encode_for(v: &Typed, version: u16) -> Vec<u8> {
    let mut out = Vec::new();
    match v {
        Typed::Str(s) => {
            out.push(ty::STRING);
            put_string(&mut out, s);
        }
        Typed::List(items) => {
            // Plain lists (type 1) are still loaded by Redis 7.x (checked in the cross-check
            // test against a real server).
            out.push(ty::LIST);
            put_len(&mut out, items.len() as u64);
            items.iter().for_each(|i| put_string(&mut out, i));
        }
        Typed::Set(items) => {
            out.push(ty::SET);
            put_len(&mut out, items.len() as u64);
            items.iter().for_each(|i| put_string(&mut out, i));
        }
        Typed::ZSet(items) => {
            if version >= 8 {
                out.push(ty::ZSET_2);
                put_len(&mut out, items.len() as u64);
                for (m, s) in items {
                    put_string(&mut out, m);
                    out.extend_from_slice(&s.to_le_bytes());
                }
            } else {
                out.push(ty::ZSET);
                put_len(&mut out, items.len() as u64);
                for (m, s) in items {
                    put_string(&mut out, m);
                    put_text_double(&mut out, *s);
                }
            }
        }
        Typed::Hash(items) => {
            out.push(ty::HASH);
            put_len(&mut out, items.len() as u64);
            for (f, v) in items {
                put_string(&mut out, f);
                put_string(&mut out, v);
            }
        }
    }
    with_version(out, version)
}

/// The largest field expiry Redis accepts (`EB_EXPIRE_TIME_MAX`, 2^48 - 1 ms).
const MAX_FIELD_EXPIRY_MS: i64 = (1 << 48) - 1;

/// True when a server of RDB `version` keeps hash fields' own expiries (Valkey 9's type 22,
/// Redis 7.4+'s types 24 and 25).
pub fn keeps_field_ttls(version: u16) -> bool {
    version >= 12
}

/// Encodes a hash whose fields in `expiry` have their own absolute expiry (Unix ms) for a
/// server of RDB `version` that keeps them ([`keeps_field_ttls`]): Valkey 9's type 22 for
/// [`VALKEY_9_RDB_VERSION`], Redis 7.4+'s type 24 otherwise; `None` for older servers.
pub fn encode_hash_with_ttls(values: &FieldMap, expiry: &BTreeMap<Vec<u8>, i64>, version: u16) -> Option<Vec<u8>> {
    if !keeps_field_ttls(version) {
        return None;
    }
    let mut out = Vec::new();
    if version == VALKEY_9_RDB_VERSION {
        out.push(ty::HASH_2);
        put_len(&mut out, values.len() as u64);
        for (f, v) in values {
            put_string(&mut out, f);
            put_string(&mut out, v);
            out.extend_from_slice(&expiry.get(f).copied().unwrap_or(-1).to_le_bytes());
        }
    } else {
        out.push(ty::HASH_METADATA);
        let min = expiry.values().copied().min().unwrap_or(0).max(1);
        out.extend_from_slice(&(min as u64).to_le_bytes());
        put_len(&mut out, values.len() as u64);
        for (f, v) in values {
            put_len(&mut out, expiry.get(f).map_or(0, |&at| (at - min) as u64 + 1));
            put_string(&mut out, f);
            put_string(&mut out, v);
        }
    }
    Some(with_version(out, version))
}

fn put_text_double(out: &mut Vec<u8>, d: f64) {
    if d.is_nan() {
        out.push(253);
    } else if d == f64::INFINITY {
        out.push(254);
    } else if d == f64::NEG_INFINITY {
        out.push(255);
    } else {
        let s = format_score(d);
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
}

/// Rewrites a stream payload (types 15, 19, 21) as the stream type `to` (15, 19 or 21 — never
/// newer than the source), with `version` in the footer. The entries (listpacks), the length,
/// the last id, every consumer group with its last-delivered id, pending entries and consumers
/// travel unchanged; dropped are only what the older type has no place for: 21 → 19 drops each
/// consumer's active time; 19 → 15 drops the first id, the max deleted id, the entries-added
/// counter and each group's entries-read counter (Redis 6.2 has none of them).
pub fn downgrade_stream(payload: &[u8], to: u8, version: u16) -> R<Vec<u8>> {
    let body = check_footer(payload)?;
    let from = body[0];
    let rank = |t: u8| match t {
        ty::STREAM_LISTPACKS => Some(0),
        ty::STREAM_LISTPACKS_2 => Some(1),
        ty::STREAM_LISTPACKS_3 => Some(2),
        _ => None,
    };
    let (Some(rf), Some(rt)) = (rank(from), rank(to)) else {
        return Err(RdbError::Opaque(from));
    };
    if rt > rf {
        return Err(RdbError::Corrupt("stream type newer than the source's"));
    }
    let mut r = Reader { b: body, pos: 1 };
    let mut out = vec![to];
    let copy_len = |r: &mut Reader<'_>, out: &mut Vec<u8>| -> R<u64> {
        let n = r.raw_len()?;
        put_len(out, n);
        Ok(n)
    };
    let copy_str = |r: &mut Reader<'_>, out: &mut Vec<u8>| -> R<()> {
        let s = r.string()?;
        put_string(out, &s);
        Ok(())
    };
    let nodes = r.len()?;
    put_len(&mut out, nodes as u64);
    for _ in 0..nodes {
        copy_str(&mut r, &mut out)?; // master entry id (16 bytes)
        copy_str(&mut r, &mut out)?; // the entries' listpack
    }
    copy_len(&mut r, &mut out)?; // length
    copy_len(&mut r, &mut out)?; // last id ms
    copy_len(&mut r, &mut out)?; // last id seq
    if rf >= 1 {
        // first id (2), max deleted id (2), entries added (1)
        for _ in 0..5 {
            let n = r.raw_len()?;
            if rt >= 1 {
                put_len(&mut out, n);
            }
        }
    }
    let groups = r.len()?;
    put_len(&mut out, groups as u64);
    for _ in 0..groups {
        copy_str(&mut r, &mut out)?; // name
        copy_len(&mut r, &mut out)?; // last delivered id ms
        copy_len(&mut r, &mut out)?; // last delivered id seq
        if rf >= 1 {
            let entries_read = r.raw_len()?;
            if rt >= 1 {
                put_len(&mut out, entries_read);
            }
        }
        // The group's pending entries: raw 16-byte id, delivery time (8 bytes), delivery count.
        let pel = r.len()?;
        put_len(&mut out, pel as u64);
        for _ in 0..pel {
            out.extend_from_slice(r.take(16 + 8)?);
            copy_len(&mut r, &mut out)?;
        }
        let consumers = r.len()?;
        put_len(&mut out, consumers as u64);
        for _ in 0..consumers {
            copy_str(&mut r, &mut out)?; // name
            out.extend_from_slice(r.take(8)?); // seen time
            if rf >= 2 {
                let active = r.take(8)?;
                if rt >= 2 {
                    out.extend_from_slice(active);
                }
            }
            let owned = r.len()?;
            put_len(&mut out, owned as u64);
            out.extend_from_slice(r.take(owned.checked_mul(16).ok_or(RdbError::Corrupt("consumer PEL"))?)?);
        }
    }
    if r.pos != body.len() {
        return Err(RdbError::Corrupt("bytes left after the stream"));
    }
    Ok(with_version(out, version))
}

/// A stream entry id: milliseconds and sequence number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId {
    /// The milliseconds part.
    pub ms: u64,
    /// The sequence part.
    pub seq: u64,
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One stream entry: its id, and its fields and values in order.
pub type StreamEntry = (StreamId, Vec<(Vec<u8>, Vec<u8>)>);

/// A stream decoded from its payload (types 15, 19, 21): what typed commands need to build the
/// same stream elsewhere (`XADD`, `XSETID`, `XGROUP CREATE`, `XCLAIM … FORCE`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    /// The entries that exist (not deleted), in id order, each with its fields and values in order.
    pub entries: Vec<StreamEntry>,
    /// The last id the stream generated (may be past the last entry's).
    pub last_id: StreamId,
    /// Types 19 and 21 (Redis 7.0+): the largest id ever deleted, and how many entries were
    /// ever added. `None` for type 15 (Redis 6.2 keeps neither).
    pub counters: Option<(StreamId, u64)>,
    /// The consumer groups.
    pub groups: Vec<StreamGroup>,
}

/// A consumer group of a decoded [`Stream`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamGroup {
    /// Its name.
    pub name: Vec<u8>,
    /// The last id delivered to it.
    pub last_delivered: StreamId,
    /// How many entries it read (`-1`: unknown), for types 19 and 21; `None` for type 15.
    pub entries_read: Option<i64>,
    /// Its pending entries in id order: id, owning consumer, last delivery time (Unix ms),
    /// delivery count.
    pub pending: Vec<(StreamId, Vec<u8>, i64, u64)>,
    /// Its consumers' names (with or without pending entries).
    pub consumers: Vec<Vec<u8>>,
}

const STREAM_ITEM_DELETED: i64 = 1;
const STREAM_ITEM_SAMEFIELDS: i64 = 2;

fn stream_id(raw: &[u8]) -> R<StreamId> {
    // A node key or PEL id: 16 bytes, ms and seq big-endian.
    if raw.len() != 16 {
        return Err(RdbError::Corrupt("stream id"));
    }
    Ok(StreamId {
        ms: u64::from_be_bytes(raw[..8].try_into().expect("8")),
        seq: u64::from_be_bytes(raw[8..].try_into().expect("8")),
    })
}

/// The entries of one stream listpack node whose master id is `master` (see `t_stream.c`): a
/// master entry `count | deleted | n | field… | 0`, then per entry `flags | ms-diff | seq-diff |
/// (values of the master fields, when flags has SAMEFIELDS | n | field value…) | lp-count`.
fn stream_node(master: StreamId, lp: &[u8], out: &mut dyn FnMut(StreamEntry)) -> R<()> {
    let mut it = listpack(lp)?.into_iter();
    let int = |it: &mut std::vec::IntoIter<Vec<u8>>| -> R<i64> {
        let b = it.next().ok_or(RdbError::Corrupt("stream node truncated"))?;
        std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok()).ok_or(RdbError::Corrupt("stream node number"))
    };
    let count = int(&mut it)?;
    let deleted = int(&mut it)?;
    let nfields = usize::try_from(int(&mut it)?).map_err(|_| RdbError::Corrupt("stream master fields"))?;
    let master_fields: Vec<Vec<u8>> =
        (0..nfields).map(|_| it.next()).collect::<Option<_>>().ok_or(RdbError::Corrupt("stream master fields"))?;
    if int(&mut it)? != 0 {
        return Err(RdbError::Corrupt("stream master entry terminator"));
    }
    let total = count.checked_add(deleted).filter(|&n| n >= 0).ok_or(RdbError::Corrupt("stream node counts"))?;
    let mut live = 0;
    for _ in 0..total {
        let flags = int(&mut it)?;
        let id = StreamId {
            ms: master.ms.wrapping_add(int(&mut it)? as u64),
            seq: master.seq.wrapping_add(int(&mut it)? as u64),
        };
        let mut pairs = Vec::new();
        if flags & STREAM_ITEM_SAMEFIELDS != 0 {
            for f in &master_fields {
                pairs.push((f.clone(), it.next().ok_or(RdbError::Corrupt("stream entry values"))?));
            }
        } else {
            let n = int(&mut it)?;
            for _ in 0..n {
                let f = it.next().ok_or(RdbError::Corrupt("stream entry fields"))?;
                pairs.push((f, it.next().ok_or(RdbError::Corrupt("stream entry values"))?));
            }
        }
        int(&mut it)?; // lp-count, for iterating backwards
        if flags & STREAM_ITEM_DELETED == 0 {
            live += 1;
            out((id, pairs));
        }
    }
    if live != count || it.next().is_some() {
        return Err(RdbError::Corrupt("stream node counts"));
    }
    Ok(())
}

/// Decodes a stream payload (types 15, 19, 21; footer checked): entries, last id, counters and
/// consumer groups with their pending entries and consumers. What is left out is what no command
/// can set: consumers' seen and active times.
pub fn decode_stream(payload: &[u8]) -> R<Stream> {
    let mut entries = Vec::new();
    let mut s = decode_stream_with(payload, |e| entries.push(e))?;
    s.entries = entries;
    Ok(s)
}

/// [`decode_stream`], handing each entry to `entry` in id order instead of keeping it: what
/// is held at once is one stream node (a listpack), not the stream. The [`Stream`] returned
/// has no entries; its other fields are as [`decode_stream`]'s.
pub fn decode_stream_with(payload: &[u8], mut entry: impl FnMut(StreamEntry)) -> R<Stream> {
    let body = check_footer(payload)?;
    let t = body[0];
    let rank = match t {
        ty::STREAM_LISTPACKS => 0,
        ty::STREAM_LISTPACKS_2 => 1,
        ty::STREAM_LISTPACKS_3 => 2,
        _ => return Err(RdbError::Opaque(t)),
    };
    let mut r = Reader { b: body, pos: 1 };
    let mut s = Stream::default();
    let nodes = r.len()?;
    let (mut count, mut last, mut ordered) = (0u64, None::<StreamId>, true);
    let mut each = |e: StreamEntry| {
        ordered &= last.is_none_or(|l| l < e.0);
        last = Some(e.0);
        count += 1;
        entry(e);
    };
    for _ in 0..nodes {
        let master = stream_id(&r.string()?)?;
        let lp = r.string()?;
        stream_node(master, &lp, &mut each)?;
    }
    if !ordered {
        return Err(RdbError::Corrupt("stream ids out of order"));
    }
    let length = r.raw_len()?;
    if length != count {
        return Err(RdbError::Corrupt("stream length"));
    }
    s.last_id = StreamId { ms: r.raw_len()?, seq: r.raw_len()? };
    if rank >= 1 {
        let _first = StreamId { ms: r.raw_len()?, seq: r.raw_len()? };
        let max_deleted = StreamId { ms: r.raw_len()?, seq: r.raw_len()? };
        s.counters = Some((max_deleted, r.raw_len()?));
    }
    let groups = r.len()?;
    for _ in 0..groups {
        let mut g = StreamGroup {
            name: r.string()?,
            last_delivered: StreamId { ms: r.raw_len()?, seq: r.raw_len()? },
            ..StreamGroup::default()
        };
        if rank >= 1 {
            // Saved as an unsigned length: -1 (unknown) arrives as u64::MAX.
            g.entries_read = Some(r.raw_len()? as i64);
        }
        let pel = r.len()?;
        let mut nacks = BTreeMap::new();
        for _ in 0..pel {
            let id = stream_id(r.take(16)?)?;
            let at = i64::from_le_bytes(r.take(8)?.try_into().expect("8"));
            nacks.insert(id, (at, r.raw_len()?));
        }
        let consumers = r.len()?;
        let mut owner = BTreeMap::new();
        for _ in 0..consumers {
            let name = r.string()?;
            r.take(if rank >= 2 { 16 } else { 8 })?; // seen time (and active time)
            let owned = r.len()?;
            for _ in 0..owned {
                let id = stream_id(r.take(16)?)?;
                if !nacks.contains_key(&id) || owner.insert(id, name.clone()).is_some() {
                    return Err(RdbError::Corrupt("consumer PEL"));
                }
            }
            g.consumers.push(name);
        }
        for (id, (at, count)) in nacks {
            let who = owner.remove(&id).ok_or(RdbError::Corrupt("a pending entry without a consumer"))?;
            g.pending.push((id, who, at, count));
        }
        s.groups.push(g);
    }
    if r.pos != body.len() {
        return Err(RdbError::Corrupt("bytes left after the stream"));
    }
    Ok(s)
}

fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A length, or one of the special string encodings.
enum Len {
    Plain(u64),
    Int8,
    Int16,
    Int32,
    Lzf,
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len()).ok_or(RdbError::Corrupt("truncated"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn len_or_enc(&mut self) -> R<Len> {
        let first = self.byte()?;
        Ok(match first >> 6 {
            0 => Len::Plain(u64::from(first & 0x3f)),
            1 => Len::Plain((u64::from(first & 0x3f) << 8) | u64::from(self.byte()?)),
            2 => match first {
                0x80 => Len::Plain(u64::from(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))),
                0x81 => Len::Plain(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"))),
                _ => return Err(RdbError::Corrupt("bad length byte")),
            },
            _ => match first & 0x3f {
                0 => Len::Int8,
                1 => Len::Int16,
                2 => Len::Int32,
                3 => Len::Lzf,
                _ => return Err(RdbError::Corrupt("bad string encoding")),
            },
        })
    }

    /// A length-encoded number that is not a count (an id, a counter): any 64-bit value.
    fn raw_len(&mut self) -> R<u64> {
        match self.len_or_enc()? {
            Len::Plain(n) => Ok(n),
            _ => Err(RdbError::Corrupt("string encoding where a number belongs")),
        }
    }

    /// Valkey 9's hash with field expirations (type 22): a count, then per field its name,
    /// its value and its absolute expiry in Unix ms (8 bytes LE, -1 for none).
    fn hash_with_ttls(&mut self, t: u8) -> R<(FieldMap, BTreeMap<Vec<u8>, i64>)> {
        match t {
            ty::HASH_2 => self.hash_2(),
            ty::HASH_METADATA => self.hash_metadata(),
            _ => self.hash_listpack_ex(),
        }
    }

    /// Redis 7.4+'s hashtable with field expirations (type 24, see `ty::HASH_METADATA`).
    fn hash_metadata(&mut self) -> R<(FieldMap, BTreeMap<Vec<u8>, i64>)> {
        let min = u64::from_le_bytes(self.take(8)?.try_into().expect("8"));
        let n = self.len()?;
        let (mut values, mut expiry) = (BTreeMap::new(), BTreeMap::new());
        for _ in 0..n {
            let rel = self.raw_len()?;
            let f = self.string()?;
            let v = self.string()?;
            if rel != 0 {
                let at = (min > 0)
                    .then(|| rel.checked_add(min - 1))
                    .flatten()
                    .and_then(|at| i64::try_from(at).ok())
                    .filter(|&at| at <= MAX_FIELD_EXPIRY_MS)
                    .ok_or(RdbError::Corrupt("field expiry"))?;
                expiry.insert(f.clone(), at);
            }
            if values.insert(f, v).is_some() {
                return Err(RdbError::Corrupt("duplicate hash field"));
            }
        }
        Ok((values, expiry))
    }

    /// Redis 7.4+'s listpack with field expirations (type 25, see `ty::HASH_LISTPACK_EX`).
    fn hash_listpack_ex(&mut self) -> R<(FieldMap, BTreeMap<Vec<u8>, i64>)> {
        self.take(8)?; // the smallest expiry: derived, not needed
        let items = listpack(&self.string()?)?;
        if !items.len().is_multiple_of(3) {
            return Err(RdbError::Corrupt("hash listpack-ex element count"));
        }
        let (mut values, mut expiry) = (BTreeMap::new(), BTreeMap::new());
        let mut it = items.into_iter();
        while let (Some(f), Some(v), Some(at)) = (it.next(), it.next(), it.next()) {
            let at: i64 = std::str::from_utf8(&at)
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|&at| (0..=MAX_FIELD_EXPIRY_MS).contains(&at))
                .ok_or(RdbError::Corrupt("field expiry"))?;
            if at != 0 {
                expiry.insert(f.clone(), at);
            }
            if values.insert(f, v).is_some() {
                return Err(RdbError::Corrupt("duplicate hash field"));
            }
        }
        Ok((values, expiry))
    }

    fn hash_2(&mut self) -> R<(FieldMap, BTreeMap<Vec<u8>, i64>)> {
        let n = self.len()?;
        let (mut values, mut expiry) = (BTreeMap::new(), BTreeMap::new());
        for _ in 0..n {
            let f = self.string()?;
            let v = self.string()?;
            let at = i64::from_le_bytes(self.take(8)?.try_into().expect("8"));
            if at != -1 {
                if at < 0 {
                    return Err(RdbError::Corrupt("field expiry"));
                }
                expiry.insert(f.clone(), at);
            }
            values.insert(f, v);
        }
        Ok((values, expiry))
    }

    fn len(&mut self) -> R<usize> {
        match self.len_or_enc()? {
            // Every element takes at least one byte, so a count beyond the bytes left is corrupt
            // (and never makes us allocate more than the payload's size).
            Len::Plain(n) if n <= (self.b.len() - self.pos) as u64 => Ok(n as usize),
            Len::Plain(_) => Err(RdbError::Corrupt("count beyond the payload")),
            _ => Err(RdbError::Corrupt("string encoding where a length belongs")),
        }
    }

    /// Steps over a string, checking it as [`Reader::string`] does, without copying it (an LZF
    /// one is still decompressed: that is the check).
    fn skip_string(&mut self) -> R<()> {
        match self.len_or_enc()? {
            Len::Plain(n) => {
                self.take(usize::try_from(n).map_err(|_| RdbError::Corrupt("length"))?)?;
            }
            Len::Int8 => {
                self.take(1)?;
            }
            Len::Int16 => {
                self.take(2)?;
            }
            Len::Int32 => {
                self.take(4)?;
            }
            Len::Lzf => {
                self.pos -= 1;
                self.string()?;
            }
        }
        Ok(())
    }

    fn string(&mut self) -> R<Vec<u8>> {
        Ok(match self.len_or_enc()? {
            Len::Plain(n) => self.take(usize::try_from(n).map_err(|_| RdbError::Corrupt("length"))?)?.to_vec(),
            Len::Int8 => (self.byte()? as i8).to_string().into_bytes(),
            Len::Int16 => i16::from_le_bytes(self.take(2)?.try_into().expect("2")).to_string().into_bytes(),
            Len::Int32 => i32::from_le_bytes(self.take(4)?.try_into().expect("4")).to_string().into_bytes(),
            Len::Lzf => {
                let clen = self.len()?;
                let len = match self.len_or_enc()? {
                    // Bounded: an LZF back reference of at most 3 bytes expands to at most 264,
                    // so refuse anything claiming more than 132x: a hostile length cannot make
                    // us allocate gigabytes.
                    Len::Plain(n) if n <= (clen as u64).saturating_mul(132).max(64) => n as usize,
                    _ => return Err(RdbError::Corrupt("LZF length")),
                };
                let data = self.take(clen)?;
                let out = lzf::decompress(data, len).map_err(|_| RdbError::Corrupt("LZF data"))?;
                if out.len() != len {
                    return Err(RdbError::Corrupt("LZF length"));
                }
                out
            }
        })
    }

    fn object(&mut self, t: u8) -> R<Typed> {
        Ok(match t {
            ty::STRING => Typed::Str(self.string()?),
            ty::LIST => {
                let n = self.len()?;
                Typed::List((0..n).map(|_| self.string()).collect::<R<_>>()?)
            }
            ty::SET => {
                let n = self.len()?;
                Typed::Set((0..n).map(|_| self.string()).collect::<R<_>>()?)
            }
            ty::ZSET | ty::ZSET_2 => {
                let n = self.len()?;
                let mut m = BTreeMap::new();
                for _ in 0..n {
                    let member = self.string()?;
                    let score = if t == ty::ZSET_2 {
                        f64::from_le_bytes(self.take(8)?.try_into().expect("8"))
                    } else {
                        self.text_double()?
                    };
                    m.insert(member, score);
                }
                Typed::ZSet(m)
            }
            ty::HASH => {
                let n = self.len()?;
                let mut m = BTreeMap::new();
                for _ in 0..n {
                    let f = self.string()?;
                    m.insert(f, self.string()?);
                }
                Typed::Hash(m)
            }
            ty::LIST_ZIPLIST => Typed::List(ziplist(&self.string()?)?.into()),
            ty::SET_INTSET => Typed::Set(intset(&self.string()?)?),
            ty::SET_LISTPACK => Typed::Set(listpack(&self.string()?)?.into_iter().collect()),
            ty::ZSET_ZIPLIST => Typed::ZSet(zset_pairs(ziplist(&self.string()?)?)?),
            ty::ZSET_LISTPACK => Typed::ZSet(zset_pairs(listpack(&self.string()?)?)?),
            ty::HASH_ZIPLIST => Typed::Hash(hash_pairs(ziplist(&self.string()?)?)?),
            ty::HASH_LISTPACK => Typed::Hash(hash_pairs(listpack(&self.string()?)?)?),
            ty::LIST_QUICKLIST => {
                let n = self.len()?;
                let mut items = VecDeque::new();
                for _ in 0..n {
                    items.extend(ziplist(&self.string()?)?);
                }
                Typed::List(items)
            }
            ty::LIST_QUICKLIST_2 => {
                let n = self.len()?;
                let mut items = VecDeque::new();
                for _ in 0..n {
                    match self.len()? {
                        // QUICKLIST_NODE_CONTAINER_PLAIN: one large element as is.
                        1 => items.push_back(self.string()?),
                        // QUICKLIST_NODE_CONTAINER_PACKED: a listpack.
                        2 => items.extend(listpack(&self.string()?)?),
                        _ => return Err(RdbError::Corrupt("quicklist node container")),
                    }
                }
                Typed::List(items)
            }
            ty::HASH_2 | ty::HASH_METADATA | ty::HASH_LISTPACK_EX => Typed::Hash(self.hash_with_ttls(t)?.0),
            ty::MODULE
            | ty::MODULE_2
            | ty::STREAM_LISTPACKS
            | ty::STREAM_LISTPACKS_2
            | ty::STREAM_LISTPACKS_3
            | ty::HASH_ZIPMAP => return Err(RdbError::Opaque(t)),
            t => return Err(RdbError::UnknownType(t)),
        })
    }

    /// A score of the old text-score zset (type 3): a length byte, 253 = NaN, 254 = +inf,
    /// 255 = -inf, else that many ASCII bytes.
    fn text_double(&mut self) -> R<f64> {
        Ok(match self.byte()? {
            253 => f64::NAN,
            254 => f64::INFINITY,
            255 => f64::NEG_INFINITY,
            n => parse_score(self.take(usize::from(n))?)?,
        })
    }
}

fn parse_score(b: &[u8]) -> R<f64> {
    std::str::from_utf8(b).ok().and_then(|s| s.parse::<f64>().ok()).ok_or(RdbError::Corrupt("score"))
}

fn zset_pairs(items: Vec<Vec<u8>>) -> R<BTreeMap<Vec<u8>, f64>> {
    if !items.len().is_multiple_of(2) {
        return Err(RdbError::Corrupt("odd zset element count"));
    }
    let mut m = BTreeMap::new();
    let mut it = items.into_iter();
    while let (Some(member), Some(score)) = (it.next(), it.next()) {
        m.insert(member, parse_score(&score)?);
    }
    Ok(m)
}

fn hash_pairs(items: Vec<Vec<u8>>) -> R<BTreeMap<Vec<u8>, Vec<u8>>> {
    if !items.len().is_multiple_of(2) {
        return Err(RdbError::Corrupt("odd hash element count"));
    }
    let mut m = BTreeMap::new();
    let mut it = items.into_iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        m.insert(f, v);
    }
    Ok(m)
}

fn le_int(b: &[u8]) -> i64 {
    // Sign-extend a little-endian two's complement integer of 1..=8 bytes.
    let mut v: u64 = 0;
    for (i, byte) in b.iter().enumerate() {
        v |= u64::from(*byte) << (8 * i);
    }
    let shift = 64 - 8 * b.len() as u32;
    ((v << shift) as i64) >> shift
}

/// The elements of an intset: `encoding u32 LE (2, 4, 8) | count u32 LE | ints LE`.
fn intset(b: &[u8]) -> R<BTreeSet<Vec<u8>>> {
    let mut r = Reader { b, pos: 0 };
    let width = u32::from_le_bytes(r.take(4)?.try_into().expect("4")) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(RdbError::Corrupt("intset encoding"));
    }
    let n = u32::from_le_bytes(r.take(4)?.try_into().expect("4")) as usize;
    if n.checked_mul(width) != Some(b.len() - 8) {
        return Err(RdbError::Corrupt("intset length"));
    }
    Ok((0..n).map(|i| le_int(&b[8 + i * width..8 + (i + 1) * width]).to_string().into_bytes()).collect())
}

/// The entries of a ziplist (Redis ≤ 6.2): `zlbytes u32 | zltail u32 | zllen u16 | entries | 0xFF`.
fn ziplist(b: &[u8]) -> R<Vec<Vec<u8>>> {
    if b.len() < 11 || u32::from_le_bytes(b[0..4].try_into().expect("4")) as usize != b.len() {
        return Err(RdbError::Corrupt("ziplist header"));
    }
    let mut r = Reader { b, pos: 10 };
    let mut out = Vec::new();
    loop {
        let prev = r.byte()?;
        if prev == 0xff {
            break;
        }
        if prev == 0xfe {
            r.take(4)?;
        }
        let enc = r.byte()?;
        let item = match enc >> 6 {
            0 => r.take(usize::from(enc & 0x3f))?.to_vec(),
            1 => {
                let n = (usize::from(enc & 0x3f) << 8) | usize::from(r.byte()?);
                r.take(n)?.to_vec()
            }
            2 => {
                let n = u32::from_be_bytes(r.take(4)?.try_into().expect("4")) as usize;
                r.take(n)?.to_vec()
            }
            _ => {
                let v = match enc {
                    0xc0 => le_int(r.take(2)?),
                    0xd0 => le_int(r.take(4)?),
                    0xe0 => le_int(r.take(8)?),
                    0xf0 => le_int(r.take(3)?),
                    0xfe => le_int(r.take(1)?),
                    0xf1..=0xfd => i64::from(enc & 0x0f) - 1,
                    _ => return Err(RdbError::Corrupt("ziplist entry encoding")),
                };
                v.to_string().into_bytes()
            }
        };
        out.push(item);
    }
    if r.pos != b.len() {
        return Err(RdbError::Corrupt("ziplist end"));
    }
    Ok(out)
}

/// The entries of a listpack (Redis 7): `total u32 | count u16 | entries | 0xFF`, each entry
/// `encoding+data | backlen`.
fn listpack(b: &[u8]) -> R<Vec<Vec<u8>>> {
    if b.len() < 7 || u32::from_le_bytes(b[0..4].try_into().expect("4")) as usize != b.len() {
        return Err(RdbError::Corrupt("listpack header"));
    }
    let mut r = Reader { b, pos: 6 };
    let mut out = Vec::new();
    loop {
        let start = r.pos;
        let enc = r.byte()?;
        if enc == 0xff {
            break;
        }
        let item = if enc & 0x80 == 0 {
            i64::from(enc).to_string().into_bytes()
        } else if enc & 0xc0 == 0x80 {
            r.take(usize::from(enc & 0x3f))?.to_vec()
        } else if enc & 0xe0 == 0xc0 {
            let uv = (u16::from(enc & 0x1f) << 8) | u16::from(r.byte()?);
            let v = if uv >= 1 << 12 { i64::from(uv) - (1 << 13) } else { i64::from(uv) };
            v.to_string().into_bytes()
        } else if enc & 0xf0 == 0xe0 {
            let n = (usize::from(enc & 0x0f) << 8) | usize::from(r.byte()?);
            r.take(n)?.to_vec()
        } else {
            match enc {
                0xf0 => {
                    let n = u32::from_le_bytes(r.take(4)?.try_into().expect("4")) as usize;
                    r.take(n)?.to_vec()
                }
                0xf1 => le_int(r.take(2)?).to_string().into_bytes(),
                0xf2 => le_int(r.take(3)?).to_string().into_bytes(),
                0xf3 => le_int(r.take(4)?).to_string().into_bytes(),
                0xf4 => le_int(r.take(8)?).to_string().into_bytes(),
                _ => return Err(RdbError::Corrupt("listpack entry encoding")),
            }
        };
        let entry_len = r.pos - start;
        let backlen = match entry_len {
            0..=127 => 1,
            128..=16383 => 2,
            16384..=2097151 => 3,
            2097152..=268435455 => 4,
            _ => 5,
        };
        r.take(backlen)?;
        out.push(item);
    }
    if r.pos != b.len() {
        return Err(RdbError::Corrupt("listpack end"));
    }
    Ok(out)
}

/// Formats a score as Redis 7.0 replies it (`%.17g`).
pub fn format_score(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    const P: i32 = 17;
    let sci = format!("{:.*e}", (P - 1) as usize, d);
    let (mantissa, exp) = sci.split_once('e').expect("e format");
    let exp: i32 = exp.parse().expect("exponent");
    let strip = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if !(-4..P).contains(&exp) {
        let m = strip(mantissa.to_string());
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        strip(format!("{:.*}", (P - 1 - exp) as usize, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_footer(body: &[u8], version: u16) -> Vec<u8> {
        let mut out = body.to_vec();
        out.extend_from_slice(&version.to_le_bytes());
        let crc = CRC.checksum(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn crc_is_redis_jones() {
        // The check value of CRC-64/Jones as Redis's crc64.c self-test states it.
        assert_eq!(CRC.checksum(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn known_string_payload_from_redis() {
        // `SET k hello` then `DUMP k` on Redis 7.0.15.
        let p = b"\x00\x05hello\x0a\x00cr\xdfve4 \x0a";
        let mine = encode(&Typed::Str(b"hello".to_vec()));
        assert_eq!(check_footer(&mine).unwrap(), b"\x00\x05hello");
        // Our own encoding of the same value must be what Redis sends.
        assert_eq!(mine, p.to_vec(), "{mine:x?}");
        assert_eq!(decode(p).unwrap(), Typed::Str(b"hello".to_vec()));
    }

    #[test]
    fn roundtrip_every_type() {
        let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let values = [
            Typed::Str(b"".to_vec()),
            Typed::Str(big.clone()),
            Typed::List(vec![b"a".to_vec(), big.clone(), b"".to_vec()].into()),
            Typed::Set([b"x".to_vec(), b"\x00\xff".to_vec()].into_iter().collect()),
            Typed::ZSet(
                [(b"m".to_vec(), 1.5), (b"n".to_vec(), -0.1), (b"i".to_vec(), f64::INFINITY)].into_iter().collect(),
            ),
            Typed::Hash((0..100).map(|i| (format!("f{i}").into_bytes(), format!("v{i}").into_bytes())).collect()),
        ];
        for v in values {
            let p = encode(&v);
            assert_eq!(decode(&p).unwrap(), v);
            assert_eq!(payload_kind(&p).unwrap(), v.kind());
        }
    }

    #[test]
    fn corrupt_footer_is_refused() {
        let mut p = encode(&Typed::Str(b"x".to_vec()));
        let n = p.len();
        p[n - 1] ^= 1;
        assert_eq!(decode(&p), Err(RdbError::BadFooter));
        assert_eq!(check_footer(b"short"), Err(RdbError::BadFooter));
        let newer = with_footer(b"\x00\x01x", MAX_RDB_VERSION + 1);
        assert_eq!(check_footer(&newer), Err(RdbError::BadFooter));
    }

    #[test]
    fn int_and_lzf_strings() {
        assert_eq!(decode(&with_footer(b"\x00\xc0\xfb", 10)).unwrap(), Typed::Str(b"-5".to_vec()));
        assert_eq!(decode(&with_footer(b"\x00\xc1\x39\x30", 10)).unwrap(), Typed::Str(b"12345".to_vec()));
        assert_eq!(decode(&with_footer(b"\x00\xc2\x15\xcd\x5b\x07", 10)).unwrap(), Typed::Str(b"123456789".to_vec()));
        let plain = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabc".to_vec();
        let c = lzf::compress(&plain).unwrap();
        let mut body = vec![0u8, 0xc3];
        put_len(&mut body, c.len() as u64);
        put_len(&mut body, plain.len() as u64);
        body.extend_from_slice(&c);
        assert_eq!(decode(&with_footer(&body, 10)).unwrap(), Typed::Str(plain.clone()));
        // Re-footered after the check in place: the same object, the new version, every
        // string encoding; a damaged one refused.
        for body in [&b"\x00\xc0\xfb"[..], b"\x00\xc1\x39\x30", b"\x00\x05hello", &body] {
            let p = refooter_checked(&with_footer(body, 80), 10).unwrap();
            assert_eq!((check_footer(&p).unwrap(), footer_version(&p)), (body, Some(10)));
            assert_eq!(p, refooter(&with_footer(body, 80), 10).unwrap());
        }
        assert!(matches!(refooter_checked(&with_footer(b"\x00\x06hello", 80), 10), Err(RdbError::Corrupt(_))));
        assert!(matches!(refooter_checked(&with_footer(b"\x00\x05hello!", 80), 10), Err(RdbError::Corrupt(_))));
        assert!(matches!(refooter_checked(&with_footer(b"\x0b\x01\x00", 80), 10), Err(RdbError::Corrupt(_))));
    }

    fn lp(entries: &[&[u8]]) -> Vec<u8> {
        // A listpack of raw (already encoded) entries, each followed by its backlen.
        let mut b = vec![0u8; 6];
        for e in entries {
            b.extend_from_slice(e);
            assert!(e.len() < 128);
            b.push(e.len() as u8);
        }
        b.push(0xff);
        let total = b.len() as u32;
        b[0..4].copy_from_slice(&total.to_le_bytes());
        b[4..6].copy_from_slice(&(entries.len() as u16).to_le_bytes());
        b
    }

    #[test]
    fn listpack_encodings() {
        let b = lp(&[
            b"\x05",
            b"\x83abc",
            b"\xdf\xff",
            b"\xc0\x64",
            b"\xf1\x00\x80",
            b"\xf2\xff\xff\xff",
            b"\xf3\x01\x00\x00\x00",
            b"\xe0\x03xyz",
        ]);
        assert_eq!(
            listpack(&b).unwrap(),
            vec![
                b"5".to_vec(),
                b"abc".to_vec(),
                b"-1".to_vec(),
                b"100".to_vec(),
                b"-32768".to_vec(),
                b"-1".to_vec(),
                b"1".to_vec(),
                b"xyz".to_vec()
            ]
        );
        let mut body = vec![ty::HASH_LISTPACK];
        let hb = lp(&[b"\x81f", b"\x07"]);
        put_string(&mut body, &hb);
        assert_eq!(
            decode(&with_footer(&body, 10)).unwrap(),
            Typed::Hash([(b"f".to_vec(), b"7".to_vec())].into_iter().collect())
        );
    }

    #[test]
    fn ziplist_and_intset_encodings() {
        // zlbytes, zltail, zllen, entries (prevlen, enc, data), end
        let mut z = vec![0u8; 10];
        z.extend_from_slice(b"\x00\x02hi"); // string
        z.extend_from_slice(b"\x04\xf3"); // immediate 2
        z.extend_from_slice(b"\x02\xfe\x9c"); // int8 -100
        z.extend_from_slice(b"\x03\xc0\x10\x27"); // int16 10000
        z.extend_from_slice(b"\x04\xf0\xff\xff\x7f"); // int24 max
        z.push(0xff);
        let n = z.len() as u32;
        z[0..4].copy_from_slice(&n.to_le_bytes());
        assert_eq!(
            ziplist(&z).unwrap(),
            vec![b"hi".to_vec(), b"2".to_vec(), b"-100".to_vec(), b"10000".to_vec(), b"8388607".to_vec()]
        );
        let mut is = vec![2, 0, 0, 0, 2, 0, 0, 0];
        is.extend_from_slice(&(-3i16).to_le_bytes());
        is.extend_from_slice(&7i16.to_le_bytes());
        assert_eq!(intset(&is).unwrap(), [b"-3".to_vec(), b"7".to_vec()].into_iter().collect());
    }

    #[test]
    fn opaque_and_unknown_types() {
        assert_eq!(decode(&with_footer(b"\x13\x00", 10)), Err(RdbError::Opaque(19)));
        assert_eq!(payload_kind(&with_footer(b"\x13\x00", 10)).unwrap(), KeyKind::Stream);
        assert_eq!(decode(&with_footer(b"\x63\x00", 10)), Err(RdbError::UnknownType(0x63)));
        // A count far beyond the payload is corrupt, not an allocation.
        assert!(matches!(decode(&with_footer(b"\x01\x80\xff\xff\xff\xff", 10)), Err(RdbError::Corrupt(_))));
    }

    #[test]
    fn scores_format_like_redis_7_0() {
        assert_eq!(format_score(1.5), "1.5");
        assert_eq!(format_score(0.1), "0.10000000000000001");
        assert_eq!(format_score(3.0), "3");
        assert_eq!(format_score(-2.0), "-2");
        assert_eq!(format_score(1e20), "1e+20");
        assert_eq!(format_score(1.0e-5), "1.0000000000000001e-05");
        assert_eq!(format_score(123456789.0), "123456789");
        assert_eq!(format_score(f64::INFINITY), "inf");
    }
    // `RPUSH l a b 1`, `SADD si 1 2`, `SADD ss a b`, `ZADD z 1 a 2.5 b`, `HSET h f v`,
    // `XADD x 1-1 f v` + `XGROUP CREATE x g 0` + `XREADGROUP GROUP g c STREAMS x >`, then `DUMP`
    // of each, on Redis 7.0.15 (R70), Redis 6.2.14 (R62), Valkey 8.1.8 (V81), Valkey 9.1.2 (V91).
    const R70_L: &[u8] =
        b"\x12\x01\x02\x0f\x0f\x00\x00\x00\x03\x00\x81a\x02\x81b\x02\x01\x01\xff\x0a\x00\xe0\x1b\xabJG\xceY\x22";
    const R70_SI: &[u8] = b"\x0b\x0c\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x02\x00\x0a\x00oy8\xb14\xeb .";
    const R70_SS: &[u8] = b"\x02\x02\x01b\x01a\x0a\x00u\xd9\x9d\x83^\xf8_e";
    const R70_Z: &[u8] =
        b"\x11\x14\x14\x00\x00\x00\x04\x00\x81a\x02\x01\x01\x81b\x02\x832.5\x04\xff\x0a\x00\xd4Ln\xa4\xf6D\xd9\xd7";
    const R70_H: &[u8] = b"\x10\x0d\x0d\x00\x00\x00\x02\x00\x81f\x02\x81v\x02\xff\x0a\x00 \xf1=D#T\x08\x9d";
    const R70_X: &[u8] = b"\x13\x01\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x1d\x1d\x00\x00\x00\x0a\x00\x01\x01\x00\x01\x01\x01\x81f\x02\x00\x01\x02\x01\x00\x01\x00\x01\x81v\x02\x04\x01\xff\x01\x01\x01\x01\x01\x00\x00\x01\x01\x01g\x01\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01$N\x973\xa2\x01\x00\x00\x01\x01\x01c$N\x973\xa2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x0a\x00\x1a\x19\x8d\x08\xf3uPJ";
    const R62_L: &[u8] =
        b"\x0e\x01\x13\x13\x00\x00\x00\x10\x00\x00\x00\x03\x00\x00\x01a\x03\x01b\x03\xf2\xff\x09\x00s\x0cIU\xacg'\xbb";
    const R62_SI: &[u8] = b"\x0b\x0c\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x02\x00\x09\x00\xbf\x8bi}`mC\x9f";
    const R62_SS: &[u8] = b"\x02\x02\x01a\x01b\x09\x00.\x96p\xe9\xbf\x85^\xbc";
    const R62_Z: &[u8] = b"\x0c\x18\x18\x00\x00\x00\x12\x00\x00\x00\x04\x00\x00\x01a\x03\xf2\x02\x01b\x03\x032.5\xff\x09\x00\x8c\xa5LQ\xc0\xe9\xcd\x06";
    const R62_H: &[u8] =
        b"\x0d\x11\x11\x00\x00\x00\x0d\x00\x00\x00\x02\x00\x00\x01f\x03\x01v\xff\x09\x00\xd0\xe7\xc3\x8c\xbb\x02+x";
    const R62_X: &[u8] = b"\x0f\x01\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x1d\x1d\x00\x00\x00\x0a\x00\x01\x01\x00\x01\x01\x01\x81f\x02\x00\x01\x02\x01\x00\x01\x00\x01\x81v\x02\x04\x01\xff\x01\x01\x01\x01\x01g\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01)N\x973\xa2\x01\x00\x00\x01\x01\x01c)N\x973\xa2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x09\x00s\x90\x8c\xd8\xd4\xbf\xac\xc8";
    const V81_L: &[u8] =
        b"\x12\x01\x02\x0f\x0f\x00\x00\x00\x03\x00\x81a\x02\x81b\x02\x01\x01\xff\x0b\x00\x89\xc4\x169\xbaQ\xb0\xab";
    const V81_SI: &[u8] =
        b"\x0b\x0c\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x02\x00\x0b\x00\x06\xa6\x85\xc2\xc9t\xc9\xa7";
    const V81_SS: &[u8] = b"\x14\x0d\x0d\x00\x00\x00\x02\x00\x81a\x02\x81b\x02\xff\x0b\x00\x0a\xec\x0a\xb4I\xa3\xd6T";
    const V81_Z: &[u8] =
        b"\x11\x14\x14\x00\x00\x00\x04\x00\x81a\x02\x01\x01\x81b\x02\x832.5\x04\xff\x0b\x00\xbd\x93\xd3\xd7\x0b\xdb0^";
    const V81_H: &[u8] = b"\x10\x0d\x0d\x00\x00\x00\x02\x00\x81f\x02\x81v\x02\xff\x0b\x00I.\x807\xde\xcb\xe1\x14";
    const V81_X: &[u8] = b"\x15\x01\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x1d\x1d\x00\x00\x00\x0a\x00\x01\x01\x00\x01\x01\x01\x81f\x02\x00\x01\x02\x01\x00\x01\x00\x01\x81v\x02\x04\x01\xff\x01\x01\x01\x01\x01\x00\x00\x01\x01\x01g\x01\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x012N\x973\xa2\x01\x00\x00\x01\x01\x01c2N\x973\xa2\x01\x00\x002N\x973\xa2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x0b\x009\x98\x0d\xf1L\x8f\xb0\x03";
    const V91_L: &[u8] =
        b"\x12\x01\x02\x0f\x0f\x00\x00\x00\x03\x00\x81a\x02\x81b\x02\x01\x01\xffP\x00/1b\xdb\xd9\x9c>\xd6";
    const V91_SI: &[u8] = b"\x0b\x0c\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x02\x00P\x00\xa0S\xf1 \xaa\xb9G\xda";
    const V91_SS: &[u8] = b"\x14\x0d\x0d\x00\x00\x00\x02\x00\x81a\x02\x81b\x02\xffP\x00\xac\x19~V*nX)";
    const V91_Z: &[u8] =
        b"\x11\x14\x14\x00\x00\x00\x04\x00\x81a\x02\x01\x01\x81b\x02\x832.5\x04\xffP\x00\x1bf\xa75h\x16\xbe#";
    const V91_H: &[u8] = b"\x10\x0d\x0d\x00\x00\x00\x02\x00\x81f\x02\x81v\x02\xffP\x00\xef\xdb\xf4\xd5\xbd\x06oi";
    const V91_X: &[u8] = b"\x15\x01\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x1d\x1d\x00\x00\x00\x0a\x00\x01\x01\x00\x01\x01\x01\x81f\x02\x00\x01\x02\x01\x00\x01\x00\x01\x81v\x02\x04\x01\xff\x01\x01\x01\x01\x01\x00\x00\x01\x01\x01g\x01\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x019N\x973\xa2\x01\x00\x00\x01\x01\x01c9N\x973\xa2\x01\x00\x009N\x973\xa2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01P\x00\x91\xbdt\xbd/\xb8\x8d\xf5";

    #[test]
    fn payloads_of_all_four_servers_decode_to_the_same_values() {
        let list = Typed::List(vec![b"a".to_vec(), b"b".to_vec(), b"1".to_vec()].into());
        let ints = Typed::Set([b"1".to_vec(), b"2".to_vec()].into_iter().collect());
        let strs = Typed::Set([b"a".to_vec(), b"b".to_vec()].into_iter().collect());
        let zset = Typed::ZSet([(b"a".to_vec(), 1.0), (b"b".to_vec(), 2.5)].into_iter().collect());
        let hash = Typed::Hash([(b"f".to_vec(), b"v".to_vec())].into_iter().collect());
        for (server, version, payloads) in [
            ("redis 6.2", 9, [R62_L, R62_SI, R62_SS, R62_Z, R62_H, R62_X]),
            ("redis 7.0", 10, [R70_L, R70_SI, R70_SS, R70_Z, R70_H, R70_X]),
            ("valkey 8.1", 11, [V81_L, V81_SI, V81_SS, V81_Z, V81_H, V81_X]),
            ("valkey 9.1", 80, [V91_L, V91_SI, V91_SS, V91_Z, V91_H, V91_X]),
        ] {
            let [l, si, ss, z, h, x] = payloads;
            for (p, want) in [(l, &list), (si, &ints), (ss, &strs), (z, &zset), (h, &hash)] {
                assert_eq!(&decode(p).unwrap(), want, "{server}");
                assert_eq!(footer_version(p), Some(version), "{server}");
                // Re-encoded in the plain types for the oldest server, it decodes the same.
                assert_eq!(&decode(&encode_for(want, 9)).unwrap(), want, "{server}");
            }
            assert_eq!(payload_kind(x).unwrap(), KeyKind::Stream, "{server}");
        }
    }

    #[test]
    fn streams_downgrade_to_older_stream_types() {
        // 21 → 19 drops the consumer's active time (8 bytes); 19 → 15 drops first id, max deleted
        // id, entries added (5 one-byte numbers here) and the group's entries read (1).
        for (p, from_len) in [(V91_X, 21u8), (V81_X, 21)] {
            assert_eq!(p[0], from_len);
            let s19 = downgrade_stream(p, 19, 10).unwrap();
            assert_eq!((s19[0], s19.len(), footer_version(&s19)), (19, p.len() - 8, Some(10)));
            let s15 = downgrade_stream(p, 15, 9).unwrap();
            assert_eq!((s15[0], s15.len()), (15, p.len() - 8 - 6));
            assert_eq!(downgrade_stream(&s19, 15, 9).unwrap(), s15);
            // The result parses again as what it says it is.
            assert_eq!(downgrade_stream(&s15, 15, 9).unwrap(), s15);
        }
        // Redis 6.2's own and Redis 7.0's own go through unchanged but for the footer.
        assert_eq!(check_footer(&downgrade_stream(R62_X, 15, 9).unwrap()).unwrap(), check_footer(R62_X).unwrap());
        assert_eq!(check_footer(&downgrade_stream(R70_X, 19, 10).unwrap()).unwrap(), check_footer(R70_X).unwrap());
        assert!(matches!(downgrade_stream(R62_X, 19, 10), Err(RdbError::Corrupt(_))));
        assert!(matches!(downgrade_stream(V91_H, 15, 9), Err(RdbError::Opaque(16))));
        let mut cut = check_footer(V91_X).unwrap().to_vec();
        cut.truncate(cut.len() - 3);
        assert!(matches!(downgrade_stream(&with_footer(&cut, 80), 15, 9), Err(RdbError::Corrupt(_))));
    }

    #[test]
    fn streams_decode_with_groups_pending_entries_and_consumers() {
        let one = StreamId { ms: 1, seq: 1 };
        for (server, p) in [("redis 6.2", R62_X), ("redis 7.0", R70_X), ("valkey 8.1", V81_X), ("valkey 9.1", V91_X)] {
            let s = decode_stream(p).unwrap();
            assert_eq!(s.entries, vec![(one, vec![(b"f".to_vec(), b"v".to_vec())])], "{server}");
            assert_eq!(s.last_id, one, "{server}");
            assert_eq!(s.counters, (server != "redis 6.2").then_some((StreamId::default(), 1)), "{server}");
            let [g] = &s.groups[..] else { panic!("{server}: {:?}", s.groups) };
            assert_eq!((&g.name[..], g.last_delivered, &g.consumers[..]), (&b"g"[..], one, &[b"c".to_vec()][..]));
            assert_eq!(g.entries_read, (server != "redis 6.2").then_some(1), "{server}");
            assert!(
                matches!(&g.pending[..], [(id, c, at, 1)] if *id == one && c == b"c" && *at > 1_600_000_000_000),
                "{server}: {:?}",
                g.pending
            );
            // The older stream types carry the same entries, groups and pending entries.
            let s15 = decode_stream(&downgrade_stream(p, 15, 9).unwrap()).unwrap();
            assert_eq!(
                (&s15.entries, s15.last_id, s15.groups[0].pending.clone()),
                (&s.entries, one, g.pending.clone())
            );
        }
        assert!(matches!(decode_stream(V91_H), Err(RdbError::Opaque(16))));
        let mut cut = check_footer(V91_X).unwrap().to_vec();
        cut.truncate(cut.len() - 3);
        assert!(matches!(decode_stream(&with_footer(&cut, 80)), Err(RdbError::Corrupt(_))));
    }

    #[test]
    fn stream_nodes_skip_deleted_entries_and_read_their_own_fields() {
        // Master id 5-0, master field "a"; 5-1 deleted (same fields), 5-2 with fields b, c.
        let node = lp(&[
            b"\x01", b"\x01", b"\x01", b"\x81a", b"\x00", b"\x03", b"\x00", b"\x01", b"\x81x", b"\x04", b"\x00",
            b"\x00", b"\x02", b"\x02", b"\x81b", b"\x81p", b"\x81c", b"\x81q", b"\x08",
        ]);
        let mut body = vec![ty::STREAM_LISTPACKS, 1, 16];
        body.extend_from_slice(&5u64.to_be_bytes());
        body.extend_from_slice(&0u64.to_be_bytes());
        put_string(&mut body, &node);
        body.extend_from_slice(&[1, 9, 9, 0]); // length 1, last id 9-9, no groups
        let s = decode_stream(&with_footer(&body, 9)).unwrap();
        let want = vec![(b"b".to_vec(), b"p".to_vec()), (b"c".to_vec(), b"q".to_vec())];
        assert_eq!(s.entries, vec![(StreamId { ms: 5, seq: 2 }, want)]);
        assert_eq!((s.last_id.to_string(), s.counters, s.groups.len()), ("9-9".to_string(), None, 0));
        // A length that disagrees with the live entries is corrupt.
        let at = body.len() - 4;
        body[at] = 2;
        assert!(matches!(decode_stream(&with_footer(&body, 9)), Err(RdbError::Corrupt(_))));
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s = s.trim();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Redis 8.0.2's own payloads (made once by scripts/make-rdb-fixtures.sh), against what that
    /// server replied for each key (the JSON beside it).
    #[test]
    fn redis_8_payloads_decode_to_what_redis_8_replied() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/rdb/redis-8.0.2");
        let mut types = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "hex") {
                continue;
            }
            let p = unhex(&std::fs::read_to_string(&path).unwrap());
            let want: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path.with_extension("json")).unwrap()).unwrap();
            let name = want["key"].as_str().unwrap();
            let s = |v: &serde_json::Value| v.as_str().unwrap().as_bytes().to_vec();
            assert_eq!(footer_version(&p), Some(12), "{name}");
            types.insert(p[0]);
            match want["type"].as_str().unwrap() {
                "stream" => {
                    let got = decode_stream(&p).unwrap();
                    let entries: Vec<_> = want["value"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| {
                            let fv = e[1].as_array().unwrap();
                            (e[0].as_str().unwrap().to_string(), fv.chunks(2).map(|c| (s(&c[0]), s(&c[1]))).collect())
                        })
                        .collect();
                    let got: Vec<_> = got.entries.into_iter().map(|(id, fv)| (id.to_string(), fv)).collect();
                    assert_eq!(got, entries, "{name}");
                }
                "hash" => {
                    let d = decode_full(&p).unwrap();
                    let fields = want["value"].as_object().unwrap().iter().map(|(k, v)| (k.as_bytes().to_vec(), s(v)));
                    assert_eq!(d.value, Typed::Hash(fields.collect()), "{name}");
                    let expiry: BTreeMap<Vec<u8>, i64> = want["field_expiry_ms"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_i64().unwrap()))
                        .collect();
                    assert_eq!(d.field_expiry, expiry, "{name}");
                    assert_eq!(has_ttls(&p), !expiry.is_empty(), "{name}");
                    // Re-encoded for Valkey 9 (type 22) and for Redis 7.4+ (type 24): the same
                    // fields, values and absolute expiries.
                    let Typed::Hash(values) = &d.value else { unreachable!() };
                    for (version, t) in [(VALKEY_9_RDB_VERSION, ty::HASH_2), (12, ty::HASH_METADATA)] {
                        let again = encode_hash_with_ttls(values, &d.field_expiry, version).unwrap();
                        assert_eq!((again[0], footer_version(&again)), (t, Some(version)));
                        assert_eq!(decode_full(&again).unwrap(), d, "{name} as type {t}");
                    }
                    assert_eq!(encode_hash_with_ttls(values, &d.field_expiry, 11), None);
                }
                "string" => assert_eq!(decode(&p).unwrap(), Typed::Str(s(&want["value"])), "{name}"),
                "list" => {
                    let items = want["value"].as_array().unwrap().iter().map(s).collect();
                    assert_eq!(decode(&p).unwrap(), Typed::List(items), "{name}");
                }
                "set" => {
                    let items = want["value"].as_array().unwrap().iter().map(s).collect();
                    assert_eq!(decode(&p).unwrap(), Typed::Set(items), "{name}");
                }
                "zset" => {
                    let m = want["value"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_f64().unwrap()));
                    assert_eq!(decode(&p).unwrap(), Typed::ZSet(m.collect()), "{name}");
                }
                other => panic!("{other}"),
            }
            // One byte flipped in the object: refused, never a wrong value.
            let mut bad = p.clone();
            bad[3] ^= 0x20;
            assert!(decode_full(&bad).is_err() && decode_stream(&bad).is_err(), "{name}");
        }
        // Both layouts of a hash with field expirations are among them.
        assert!(types.contains(&ty::HASH_METADATA) && types.contains(&ty::HASH_LISTPACK_EX), "{types:?}");
        assert_eq!(types.len(), 9, "{types:?}");
    }

    fn has_ttls(p: &[u8]) -> bool {
        decode_full(p).is_ok_and(|d| !d.field_expiry.is_empty())
    }

    #[test]
    fn hash_field_expiries_that_do_not_add_up_are_corrupt() {
        // Type 24 with a relative expiry but no smallest expiry; type 25 with a negative one.
        let mut body = vec![ty::HASH_METADATA];
        body.extend_from_slice(&0u64.to_le_bytes());
        body.extend_from_slice(&[1, 5, 1, b'f', 1, b'v']);
        assert!(matches!(decode_full(&with_footer(&body, 12)), Err(RdbError::Corrupt(_))));
        let mut body = vec![ty::HASH_LISTPACK_EX];
        body.extend_from_slice(&0u64.to_le_bytes());
        put_string(&mut body, &lp(&[b"\x81f", b"\x81v", b"\x82-1"]));
        assert!(matches!(decode_full(&with_footer(&body, 12)), Err(RdbError::Corrupt(_))));
    }

    #[test]
    fn valkey_9_hash_with_field_expirations() {
        // `HSET hx a 1 b 2 c 3`, `HPEXPIREAT hx 4102444800000 FIELDS 1 a`, `HEXPIRE hx 3600
        // FIELDS 1 b`, `DUMP hx` on Valkey 9.1.2.
        let p = b"\x16\x03\x01a\xc0\x01\x00\xd8\xc3,\xbb\x03\x00\x00\x01b\xc0\x02\xc1\x97\xc13\xa2\x01\x00\x00\x01c\xc0\x03\xff\xff\xff\xff\xff\xff\xff\xffP\x00\xa3\xc18\x12\xec\xe9p9";
        let d = decode_full(p).unwrap();
        assert_eq!(payload_kind(p).unwrap(), KeyKind::Hash);
        let Typed::Hash(h) = &d.value else { panic!("not a hash") };
        assert_eq!(h.get(&b"c"[..]), Some(&b"3".to_vec()));
        assert_eq!(d.field_expiry.get(&b"a"[..]), Some(&4_102_444_800_000));
        assert_eq!(d.field_expiry.len(), 2);
        assert!(version_reads_type(80, 22) && !version_reads_type(12, 22) && !version_reads_type(11, 22));
        // Read once a's expiry (in 2100; b's is an hour after the capture) has passed: only c.
        let Typed::Hash(later) = decode_at(p, 4_102_444_800_000).unwrap() else { panic!("not a hash") };
        assert_eq!(later.keys().map(|k| k.as_slice()).collect::<Vec<_>>(), vec![&b"c"[..]]);
        let Typed::Hash(before) = decode_at(p, 0).unwrap() else { panic!("not a hash") };
        assert_eq!(before.len(), 3);
        assert!(version_reads_footer(80, 11) && !version_reads_footer(80, 12) && !version_reads_footer(11, 80));
    }
}
