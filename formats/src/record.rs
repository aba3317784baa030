//! The in-memory [`Record`] and [`KeyKind`], and the postcard codec of one record inside a frame.
//!
//! A record is one Redis key exactly as `DUMP` gives it back, plus what `RESTORE` needs and what
//! `psor inspect` wants to show without parsing RDB. The on-disk form ([`RecordV1`]) is a
//! separate borrowed struct so that the in-memory type can grow without changing the bytes, and
//! so that decoding can borrow key and payload straight out of the decompressed frame.

use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Error, Result};

/// The Redis type of a key, as `TYPE` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// `string`
    String,
    /// `hash`
    Hash,
    /// `list`
    List,
    /// `set`
    Set,
    /// `zset`
    ZSet,
    /// `stream`
    Stream,
    /// Any other type (module types such as `ReJSON-RL`): restored from its DUMP payload as-is.
    Other,
}

impl KeyKind {
    /// Every kind, in tag order (tag = index).
    pub const ALL: [KeyKind; 7] =
        [KeyKind::String, KeyKind::Hash, KeyKind::List, KeyKind::Set, KeyKind::ZSet, KeyKind::Stream, KeyKind::Other];

    /// Number of kinds in format v1 (length of the per-kind table in the footer).
    pub const COUNT: usize = 7;

    /// The name Redis's `TYPE` uses (`"other"` for [`KeyKind::Other`]).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::String => "string",
            KeyKind::Hash => "hash",
            KeyKind::List => "list",
            KeyKind::Set => "set",
            KeyKind::ZSet => "zset",
            KeyKind::Stream => "stream",
            KeyKind::Other => "other",
        }
    }

    /// Map a `TYPE` reply to a kind. Unknown names (modules) map to [`KeyKind::Other`];
    /// `"none"` (the key vanished) gives `None`.
    pub fn from_type_reply(reply: &str) -> Option<KeyKind> {
        Some(match reply {
            "string" => KeyKind::String,
            "hash" => KeyKind::Hash,
            "list" => KeyKind::List,
            "set" => KeyKind::Set,
            "zset" => KeyKind::ZSet,
            "stream" => KeyKind::Stream,
            "none" => return None,
            _ => KeyKind::Other,
        })
    }

    /// The on-disk tag byte.
    pub fn tag(self) -> u8 {
        match self {
            KeyKind::String => 0,
            KeyKind::Hash => 1,
            KeyKind::List => 2,
            KeyKind::Set => 3,
            KeyKind::ZSet => 4,
            KeyKind::Stream => 5,
            KeyKind::Other => 6,
        }
    }

    /// The kind for an on-disk tag byte, if v1 defines it.
    pub fn from_tag(tag: u8) -> Option<KeyKind> {
        KeyKind::ALL.get(usize::from(tag)).copied()
    }

    /// Index into per-kind tables (same as the tag).
    pub fn index(self) -> usize {
        usize::from(self.tag())
    }
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Redis key, exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// Key name, arbitrary bytes.
    pub key: Vec<u8>,
    /// Redis type.
    pub kind: KeyKind,
    /// Absolute expiry, Unix milliseconds (`PEXPIRETIME`), or `None` for a persistent key.
    pub expire_at_ms: Option<i64>,
    /// RDB version of the payload (also in the payload's last 10 bytes; kept for inspection).
    pub rdb_version: u16,
    /// The server's `DUMP` payload, opaque.
    pub payload: Vec<u8>,
}

/// A record borrowed from a decoded frame, for callers that only look (e.g. per-prefix stats)
/// and don't want to copy every payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Key name.
    pub key: &'a [u8],
    /// Redis type.
    pub kind: KeyKind,
    /// Absolute expiry, Unix ms.
    pub expire_at_ms: Option<i64>,
    /// RDB version of the payload.
    pub rdb_version: u16,
    /// `DUMP` payload.
    pub payload: &'a [u8],
}

impl RecordRef<'_> {
    /// Copy into an owned [`Record`].
    pub fn to_owned(&self) -> Record {
        Record {
            key: self.key.to_vec(),
            kind: self.kind,
            expire_at_ms: self.expire_at_ms,
            rdb_version: self.rdb_version,
            payload: self.payload.to_vec(),
        }
    }
}

impl Record {
    /// Borrow as a [`RecordRef`].
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            key: &self.key,
            kind: self.kind,
            expire_at_ms: self.expire_at_ms,
            rdb_version: self.rdb_version,
            payload: &self.payload,
        }
    }
}

/// The RDB version stored in a `DUMP` payload's footer (2 bytes LE before the 8-byte CRC64), if
/// the payload is long enough to have one.
pub fn dump_rdb_version(payload: &[u8]) -> Option<u16> {
    let n = payload.len();
    let start = n.checked_sub(10)?;
    let b = payload.get(start..start + 2)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// On-disk form of a record in format v1 (postcard; see FORMAT.md "Record encoding").
#[derive(Serialize, Deserialize)]
pub(crate) struct RecordV1<'a> {
    #[serde(serialize_with = "ser_bytes", borrow)]
    key: &'a [u8],
    kind: u8,
    expire_at_ms: Option<i64>,
    rdb_version: u16,
    #[serde(serialize_with = "ser_bytes", borrow)]
    payload: &'a [u8],
}

fn ser_bytes<S: Serializer>(b: &&[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_bytes(b)
}

impl<'a> RecordV1<'a> {
    fn from_ref(r: RecordRef<'a>) -> Self {
        RecordV1 {
            key: r.key,
            kind: r.kind.tag(),
            expire_at_ms: r.expire_at_ms,
            rdb_version: r.rdb_version,
            payload: r.payload,
        }
    }
}

/// Length of a postcard unsigned varint (LEB128) for `n`.
fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Exact encoded size of a record, without encoding it.
pub fn encoded_len(r: RecordRef<'_>) -> usize {
    let zigzag = |v: i64| ((v << 1) ^ (v >> 63)).cast_unsigned();
    varint_len(crate::bytes::u64_of(r.key.len()))
        + r.key.len()
        + 1
        + match r.expire_at_ms {
            None => 1,
            Some(t) => 1 + varint_len(zigzag(t)),
        }
        + varint_len(u64::from(r.rdb_version))
        + varint_len(crate::bytes::u64_of(r.payload.len()))
        + r.payload.len()
}

/// Append the v1 encoding of `r` to `out`.
pub fn encode_record(r: RecordRef<'_>, out: &mut Vec<u8>) -> Result<()> {
    out.reserve(encoded_len(r));
    postcard::to_io(&RecordV1::from_ref(r), &mut *out).map_err(|e| Error::Corrupt {
        offset: 0,
        frame: None,
        detail: format!("cannot encode record: {e}"),
    })?;
    Ok(())
}

/// Decode one v1 record from the front of `buf`, returning it and the rest. `offset`/`frame`
/// locate the frame for errors.
pub fn decode_record(buf: &[u8], offset: u64, frame: Option<u32>) -> Result<(RecordRef<'_>, &[u8])> {
    let (raw, rest): (RecordV1<'_>, &[u8]) = postcard::take_from_bytes(buf).map_err(|e| Error::Corrupt {
        offset,
        frame,
        detail: format!("undecodable record: {e}"),
    })?;
    let kind =
        KeyKind::from_tag(raw.kind).ok_or(Error::UnknownTag { what: "key kind", tag: raw.kind, offset, frame })?;
    Ok((
        RecordRef {
            key: raw.key,
            kind,
            expire_at_ms: raw.expire_at_ms,
            rdb_version: raw.rdb_version,
            payload: raw.payload,
        },
        rest,
    ))
}
