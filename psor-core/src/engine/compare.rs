//! Is a key on one side the same as a key on the other? Used by copy's and import's
//! "unchanged" check (a rerun, leave it, or someone else's data, a conflict) and by `verify`.
//!
//! `DUMP` bytes are not a fair test: a hashtable-encoded set or hash serializes its members in
//! table order, which a `COPY` or `RESTORE` reshuffles. So content is read by type and reduced
//! to a [`Content`]: the type, the size (`STRLEN`/`HLEN`/`SCARD`/`ZCARD`/`LLEN`/`XLEN`) and a
//! 128-bit digest of the elements — in order for strings, lists, sorted sets (by score, then
//! member) and streams, order-free (a sum of per-element hashes) for hashes and sets. A
//! stream's digest covers what "the same stream" means, which is also exactly what psor's
//! rebuilds (a transcoded payload, or typed commands in chunks) preserve: its entries in id
//! order with their fields and values in order (`XRANGE`, by 1,000), its last generated id
//! (`XINFO STREAM`, not `FULL`: constant cost), Redis 7.0's counters where both sides keep them
//! (entries-added, max-deleted-id, each group's entries-read; Redis 6.2 and stream payloads of
//! type 15 have none), its consumer groups (`XINFO GROUPS`: name, last-delivered id), each
//! group's consumers (`XINFO CONSUMERS`: names) and its pending entries (`XPENDING`, by 1,000:
//! id, consumer, delivery count). Delivery times and consumers' seen and active times are
//! clocks, not content, and are not compared; the first entry, lag and the radix tree's shape
//! are derived. A decoded stream payload gets the same digest ([`payload_stream_content`]), so a
//! snapshot's stream compares with a live one whatever DUMP bytes each server writes.
//!
//! Reading is done in bounded chunks, so a value of any size is compared with bounded memory:
//! `GETRANGE` (256 KiB), `LRANGE`/`ZRANGE` by index and `XRANGE` from the last id (1,000
//! elements); hashes and sets up to [`WHOLE_LIMIT`] elements in one `HGETALL`/`SMEMBERS`, larger
//! ones with `HSCAN`/`SSCAN`. A `SCAN` may return an element twice (a table being rehashed):
//! when the elements seen do not add up to the size, the content is [`Content::Unsteady`] and
//! never counts as equal. [`Reader`] is the state machine; [`read`] drives it on one connection,
//! and `verify` drives many of them in pipelines.
//!
//! The digest is SipHash (std's `DefaultHasher`, fixed keys) over length-framed elements; it is
//! computed within one process run and never stored, so its stability across Rust releases does
//! not matter.

use std::hash::{DefaultHasher, Hasher};

use redis::Value;

use crate::connect::NodeConn;
use crate::error::{Error, Result};

/// Hash and set sizes up to which the whole value is read with one `HGETALL` / `SMEMBERS`.
pub const WHOLE_LIMIT: u64 = 10_000;
/// Elements per `LRANGE` / `ZRANGE` / `XRANGE` / `HSCAN` / `SSCAN` chunk.
pub const CHUNK_ELEMENTS: u64 = 1_000;
/// Bytes per `GETRANGE` chunk; strings up to this size are read with one `GET`.
pub const CHUNK_BYTES: u64 = 256 * 1024;
/// First `GETRANGE` of a string whose size is not asked first ([`Reader::string`]): most
/// strings fit, and a pipeline of them stays small.
pub const FIRST_BYTES: u64 = 4096;

/// A key's content in a form where equal content compares equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Content {
    /// No such key.
    Missing,
    /// A type psor does not read (a module type), or one the store cannot read.
    Opaque(String),
    /// Read, but the elements seen did not add up to the size (a rehashing table, or a key
    /// that changed while it was read): never equal to anything.
    Unsteady(String, u64),
    /// Type, size (bytes for a string, elements otherwise) and digest (0 when only the size
    /// was read).
    Value {
        /// `TYPE`'s name.
        kind: String,
        /// `STRLEN`, `HLEN`, ….
        len: u64,
        /// Digest of the elements.
        digest: u128,
        /// Hash field expirations (Redis 7.4+, Valkey 9), when read: how many fields have
        /// one, and an order-free digest of (field, instant).
        field_expiry: (u64, u128),
    },
}

impl Content {
    /// True when both are readable values and equal.
    pub(crate) fn same_as(&self, other: &Content) -> bool {
        matches!(self, Content::Value { .. }) && self == other
    }

    /// `TYPE`'s name, `none` when missing.
    pub(crate) fn kind(&self) -> &str {
        match self {
            Content::Missing => "none",
            Content::Opaque(k) | Content::Unsteady(k, _) | Content::Value { kind: k, .. } => k,
        }
    }

    /// The size, when known.
    pub(crate) fn len(&self) -> Option<u64> {
        match self {
            Content::Unsteady(_, n) | Content::Value { len: n, .. } => Some(*n),
            _ => None,
        }
    }
}

/// The size command for a type, `None` for a type psor does not read.
pub(crate) fn len_command(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "string" => "STRLEN",
        "hash" => "HLEN",
        "set" => "SCARD",
        "zset" => "ZCARD",
        "list" => "LLEN",
        "stream" => "XLEN",
        _ => return None,
    })
}

/// Where a [`Reader`] is in the value.
#[derive(Debug)]
enum Cursor {
    /// Next byte offset (strings) or index (lists, sorted sets).
    Offset(u64),
    /// `HSCAN` / `SSCAN` cursor; `None` before the first page.
    Scan(Option<Vec<u8>>),
    /// `XRANGE` start: after this id (`None`: from the start).
    After(Option<Vec<u8>>),
    /// Whole read (`HGETALL` / `SMEMBERS`) not sent yet.
    Whole,
    /// A stream's entries are read: `XINFO STREAM` (last id and counters) next.
    Info,
    /// `XINFO GROUPS` next.
    Groups,
    /// `XINFO CONSUMERS` of the first group in the queue next.
    Consumers(std::collections::VecDeque<Vec<u8>>),
    /// `XPENDING` of the first group in the queue next, after this id (`None`: from the start).
    Pending(std::collections::VecDeque<Vec<u8>>, Option<Vec<u8>>),
    Done,
}

/// Reads one key's content chunk by chunk: [`Reader::next_command`] gives the next command to
/// send, [`Reader::feed`] takes its reply, [`Reader::finish`] gives the [`Content`].
#[derive(Debug)]
pub(crate) struct Reader {
    key: Vec<u8>,
    kind: String,
    len: u64,
    cursor: Cursor,
    seen: u64,
    ordered: (DefaultHasher, DefaultHasher),
    sum: u128,
    unsteady: bool,
    quick: bool,
    /// Read hash field expirations (`HPEXPIRETIME`) after each chunk of fields.
    field_expiry: bool,
    /// Fields of the last chunk whose expirations are still to be read.
    pending_fields: Vec<Vec<u8>>,
    expiring: (u64, u128),
    /// Count consumer groups' entries-read (both sides' servers keep it: Redis 7.0+, Valkey).
    entries_read: bool,
    /// A string read without its size: `len` is what was read, and a chunk shorter than
    /// asked is the end.
    size_unknown: bool,
}

impl Reader {
    /// A reader for `key` of type `kind` and size `len` (from `TYPE` and [`len_command`]).
    /// With `quick`, nothing is read: the content is the type and size only.
    pub(crate) fn new(key: &[u8], kind: &str, len: u64, quick: bool) -> Reader {
        let cursor = match kind {
            _ if quick || len == 0 => Cursor::Done,
            "string" => Cursor::Offset(0),
            "list" | "zset" => Cursor::Offset(0),
            "hash" | "set" if len <= WHOLE_LIMIT => Cursor::Whole,
            "hash" | "set" => Cursor::Scan(None),
            "stream" => Cursor::After(None),
            _ => Cursor::Done,
        };
        // An empty stream may still have consumer groups (`XGROUP CREATE … MKSTREAM`).
        let cursor = match kind {
            "stream" if !quick && len == 0 => Cursor::Info,
            _ => cursor,
        };
        let mut second = DefaultHasher::new();
        second.write_u64(0x9e37_79b9_7f4a_7c15);
        Reader {
            key: key.to_vec(),
            kind: kind.to_string(),
            len,
            cursor,
            seen: 0,
            ordered: (DefaultHasher::new(), second),
            sum: 0,
            unsteady: false,
            quick,
            field_expiry: false,
            pending_fields: Vec::new(),
            expiring: (0, 0),
            size_unknown: false,
            entries_read: false,
        }
    }

    /// Also compares Redis 7.0's stream counters — the stream's entries-added and max-deleted-id,
    /// each consumer group's entries-read — only where both sides keep them (Redis 7.0+, Valkey,
    /// and a payload of stream type 19 or 21: see [`payload_keeps_stream_counters`]); a copy to
    /// Redis 6.2 loses them, and that is not a difference.
    pub(crate) fn with_entries_read(mut self, on: bool) -> Reader {
        self.entries_read = on;
        self
    }

    /// A reader for a string whose size is not known (no `STRLEN` first: one command and one
    /// round trip fewer per key). It reads [`FIRST_BYTES`], then [`CHUNK_BYTES`] at a time
    /// until a chunk comes back shorter than asked; the digest is the one [`Reader::new`]
    /// gives for the same bytes (the hash is streamed, whatever the chunks).
    pub(crate) fn string(key: &[u8]) -> Reader {
        Reader { size_unknown: true, cursor: Cursor::Offset(0), ..Reader::new(key, "string", 0, false) }
    }

    /// The bytes the next `GETRANGE` of an unsized string asks for.
    fn unsized_chunk(&self, offset: u64) -> u64 {
        if offset == 0 {
            FIRST_BYTES
        } else {
            CHUNK_BYTES
        }
    }

    /// Also reads each hash field's expiry (the server knows `HPEXPIRETIME`).
    pub(crate) fn with_field_expiry(mut self, on: bool) -> Reader {
        self.field_expiry = on && self.kind == "hash";
        self
    }

    /// How much the next reply may weigh (elements, or bytes / 64), to bound a pipeline.
    pub(crate) fn weight(&self) -> u64 {
        if !self.pending_fields.is_empty() {
            return self.pending_fields.len() as u64;
        }
        match (&self.cursor, self.kind.as_str()) {
            (Cursor::Done, _) => 0,
            (Cursor::Offset(o), "string") if self.size_unknown => self.unsized_chunk(*o) / 64 + 1,
            (Cursor::Offset(o), "string") => self.len.saturating_sub(*o).min(CHUNK_BYTES) / 64 + 1,
            (Cursor::Whole, _) => self.len,
            _ => CHUNK_ELEMENTS,
        }
    }

    /// True while there is a command to send ([`Reader::next_command`] without building it).
    pub(crate) fn has_next(&self) -> bool {
        !self.pending_fields.is_empty() || !matches!(self.cursor, Cursor::Done)
    }

    /// The next command to send, or `None` when the value has been read.
    pub(crate) fn next_command(&self) -> Option<redis::Cmd> {
        let key = &self.key[..];
        let mut cmd;
        if !self.pending_fields.is_empty() {
            cmd = redis::cmd("HPEXPIRETIME");
            cmd.arg(key).arg("FIELDS").arg(self.pending_fields.len());
            for f in &self.pending_fields {
                cmd.arg(&f[..]);
            }
            return Some(cmd);
        }
        match (&self.cursor, self.kind.as_str()) {
            (Cursor::Done, _) => return None,
            (Cursor::Offset(o), "string") if self.size_unknown => {
                let n = self.unsized_chunk(*o);
                cmd = redis::Cmd::with_capacity(4, 40 + key.len());
                cmd.arg("GETRANGE").arg(key).arg(*o).arg(o + n - 1);
            }
            (Cursor::Offset(0), "string") if self.len <= CHUNK_BYTES => {
                cmd = redis::cmd("GET");
                cmd.arg(key);
            }
            (Cursor::Offset(o), "string") => {
                cmd = redis::cmd("GETRANGE");
                cmd.arg(key).arg(*o).arg(o + CHUNK_BYTES - 1);
            }
            (Cursor::Offset(o), "list") => {
                cmd = redis::cmd("LRANGE");
                cmd.arg(key).arg(*o).arg(o + CHUNK_ELEMENTS - 1);
            }
            (Cursor::Offset(o), _) => {
                cmd = redis::cmd("ZRANGE");
                cmd.arg(key).arg(*o).arg(o + CHUNK_ELEMENTS - 1).arg("WITHSCORES");
            }
            (Cursor::Whole, "hash") => {
                cmd = redis::cmd("HGETALL");
                cmd.arg(key);
            }
            (Cursor::Whole, _) => {
                cmd = redis::cmd("SMEMBERS");
                cmd.arg(key);
            }
            (Cursor::Scan(c), kind) => {
                cmd = redis::cmd(if kind == "hash" { "HSCAN" } else { "SSCAN" });
                cmd.arg(key).arg(c.as_deref().unwrap_or(b"0")).arg("COUNT").arg(CHUNK_ELEMENTS);
            }
            (Cursor::After(after), _) => {
                cmd = redis::cmd("XRANGE");
                match after {
                    Some(id) => cmd.arg(key).arg([&b"("[..], id].concat()),
                    None => cmd.arg(key).arg("-"),
                };
                cmd.arg("+").arg("COUNT").arg(CHUNK_ELEMENTS);
            }
            (Cursor::Info, _) => {
                // Not `FULL`: that one replies with entries and every PEL (read here in chunks).
                cmd = redis::cmd("XINFO");
                cmd.arg("STREAM").arg(key);
            }
            (Cursor::Groups, _) => {
                cmd = redis::cmd("XINFO");
                cmd.arg("GROUPS").arg(key);
            }
            (Cursor::Consumers(groups), _) => {
                cmd = redis::cmd("XINFO");
                cmd.arg("CONSUMERS").arg(key).arg(&groups[0][..]);
            }
            (Cursor::Pending(groups, after), _) => {
                // The extended form: (id, consumer, idle ms, delivery count) per pending entry.
                cmd = redis::cmd("XPENDING");
                cmd.arg(key).arg(&groups[0][..]);
                match after {
                    Some(id) => cmd.arg([&b"("[..], id].concat()),
                    None => cmd.arg("-"),
                };
                cmd.arg("+").arg(CHUNK_ELEMENTS);
            }
        }
        Some(cmd)
    }

    /// Takes the reply to [`Reader::next_command`].
    pub(crate) fn feed(&mut self, reply: Value) -> Result<()> {
        if let Value::ServerError(e) = reply {
            return Err(Error::Command {
                addr: String::new(),
                op: "read",
                key: Some(self.key.clone()),
                source: e.into(),
            });
        }
        if !self.pending_fields.is_empty() {
            let fields = std::mem::take(&mut self.pending_fields);
            let instants = items_of(reply);
            if instants.len() != fields.len() {
                self.unsteady = true;
            }
            for (f, t) in fields.iter().zip(instants) {
                if let Value::Int(t) = t {
                    if t >= 0 {
                        let (mut a, mut b) = (DefaultHasher::new(), DefaultHasher::new());
                        b.write_u64(0x9e37_79b9_7f4a_7c15);
                        for h in [&mut a, &mut b] {
                            h.write_u64(f.len() as u64);
                            h.write(f);
                            h.write_i64(t);
                        }
                        self.expiring.0 += 1;
                        self.expiring.1 =
                            self.expiring.1.wrapping_add(u128::from(a.finish()) << 64 | u128::from(b.finish()));
                    }
                }
            }
            return Ok(());
        }
        match std::mem::replace(&mut self.cursor, Cursor::Done) {
            Cursor::Done => {}
            Cursor::Offset(o) if self.kind == "string" => {
                let bytes = bytes_of(reply);
                let n = bytes.len() as u64;
                self.ordered.0.write(&bytes);
                self.ordered.1.write(&bytes);
                self.seen += n;
                if self.size_unknown {
                    self.len = self.seen;
                    if n == self.unsized_chunk(o) {
                        self.cursor = Cursor::Offset(o + n);
                    }
                } else if n > 0 && o + n < self.len {
                    self.cursor = Cursor::Offset(o + n);
                }
            }
            Cursor::Offset(o) => {
                let items = items_of(reply);
                let step = if self.kind == "zset" { 2 } else { 1 };
                let n = (items.len() / step) as u64;
                for el in items.chunks(step) {
                    match el {
                        [m, score] => {
                            // Scores are compared as numbers: servers may spell them differently.
                            let s = flat_bytes(score);
                            let f = std::str::from_utf8(&s).ok().and_then(|s| s.parse::<f64>().ok());
                            let bits = f.map(f64::to_bits).unwrap_or(u64::MAX).to_le_bytes();
                            self.ordered_element(&[&flat_bytes(m), &bits]);
                        }
                        [v] => self.ordered_element(&[&flat_bytes(v)]),
                        _ => self.unsteady = true,
                    }
                }
                self.seen += n;
                if n == CHUNK_ELEMENTS && o + n < self.len {
                    self.cursor = Cursor::Offset(o + n);
                }
            }
            Cursor::Whole => {
                let items = items_of(reply);
                self.unordered(items);
            }
            Cursor::Scan(_) => {
                let mut page = items_of(reply).into_iter();
                let (Some(next), Some(elements)) = (page.next(), page.next()) else {
                    self.unsteady = true;
                    return Ok(());
                };
                self.unordered(items_of(elements));
                let next = flat_bytes(&next);
                if next != b"0" {
                    self.cursor = Cursor::Scan(Some(next));
                }
            }
            Cursor::After(_) => {
                let entries = items_of(reply);
                let n = entries.len() as u64;
                let mut last = None;
                for entry in entries {
                    let mut parts = items_of(entry).into_iter();
                    let id = parts.next().map(|v| flat_bytes(&v)).unwrap_or_default();
                    let fields: Vec<Vec<u8>> = parts.flat_map(items_of).map(|v| flat_bytes(&v)).collect();
                    self.stream_entry(&id, fields.iter().map(Vec::as_slice));
                    last = Some(id);
                }
                self.seen += n;
                self.cursor = if n == CHUNK_ELEMENTS { Cursor::After(last) } else { Cursor::Info };
            }
            Cursor::Info => {
                // The last generated id (past the last entry after an `XDEL` or `XSETID`) and,
                // when asked, entries-added and max-deleted-id (absent on Redis 6.2). Not the
                // first entry, the radix tree's shape or the recorded first id: derived, or an
                // encoding.
                let info = fields_of(reply);
                let get = |name: &str| info.get(name).map(flat_bytes).unwrap_or_default();
                let (max_deleted, added) = if self.entries_read {
                    (get("max-deleted-entry-id"), get("entries-added"))
                } else {
                    (Vec::new(), Vec::new())
                };
                self.stream_info(&get("last-generated-id"), &max_deleted, &added);
                self.cursor = Cursor::Groups;
            }
            Cursor::Groups => {
                // In the server's order (by name); for each: name, last-delivered id and,
                // when asked ([`Reader::with_entries_read`]), entries-read. `lag` and
                // `pending` follow from those and the PEL.
                let mut names = std::collections::VecDeque::new();
                for group in items_of(reply) {
                    let info = fields_of(group);
                    let name = info.get("name").map(flat_bytes).unwrap_or_default();
                    let last = info.get("last-delivered-id").map(flat_bytes).unwrap_or_default();
                    let read = match info.get("entries-read") {
                        Some(Value::Int(n)) => Some(*n),
                        _ => None,
                    };
                    self.stream_group(&name, &last, read);
                    names.push_back(name);
                }
                if !names.is_empty() {
                    self.cursor = Cursor::Consumers(names);
                }
            }
            Cursor::Consumers(groups) => {
                // Names only: `pending` follows from the PEL; idle and active times are clocks.
                for consumer in items_of(reply) {
                    let name = fields_of(consumer).get("name").map(flat_bytes).unwrap_or_default();
                    self.stream_consumer(&groups[0], &name);
                }
                self.cursor = Cursor::Pending(groups, None);
            }
            Cursor::Pending(mut groups, _) => {
                // Id, consumer and delivery count; not the delivery time (its idle time is a
                // clock that moves between the two sides' reads).
                let entries = items_of(reply);
                let n = entries.len() as u64;
                let mut last = None;
                for entry in entries {
                    let parts: Vec<Vec<u8>> = items_of(entry).iter().map(flat_bytes).collect();
                    let [id, consumer, _idle, count] = &parts[..] else {
                        self.unsteady = true;
                        continue;
                    };
                    self.stream_pending(&groups[0], id, consumer, count);
                    last = Some(id.clone());
                }
                self.cursor = if n == CHUNK_ELEMENTS {
                    Cursor::Pending(groups, last)
                } else {
                    groups.pop_front();
                    if groups.is_empty() {
                        Cursor::Done
                    } else {
                        Cursor::Consumers(groups)
                    }
                };
            }
        }
        Ok(())
    }

    // A stream's elements, in the order the reader meets them: entries (id order), the stream's
    // info, the groups (name order), then per group its consumers (name order) and pending
    // entries (id order). Live replies and decoded payloads ([`payload_stream_content`]) both go through
    // these, so the two digests agree by construction.

    fn stream_entry<'a>(&mut self, id: &'a [u8], fields: impl Iterator<Item = &'a [u8]>) {
        let mut el: Vec<&[u8]> = vec![id];
        el.extend(fields);
        self.ordered_element(&el);
    }

    fn stream_info(&mut self, last_id: &[u8], max_deleted: &[u8], added: &[u8]) {
        self.ordered_element(&[b"\0stream", last_id, max_deleted, added]);
    }

    /// `read`: entries-read, `None` when the server does not know it (nil).
    fn stream_group(&mut self, name: &[u8], last_delivered: &[u8], read: Option<i64>) {
        let read = match read {
            Some(n) if self.entries_read => n.to_le_bytes().to_vec(),
            _ => Vec::new(),
        };
        self.ordered_element(&[b"\0group", name, last_delivered, &read]);
    }

    fn stream_consumer(&mut self, group: &[u8], name: &[u8]) {
        self.ordered_element(&[b"\0consumer", group, name]);
    }

    /// `count`: the delivery count in decimal, as `XPENDING` replies it.
    fn stream_pending(&mut self, group: &[u8], id: &[u8], consumer: &[u8], count: &[u8]) {
        self.ordered_element(&[b"\0pending", group, id, consumer, count]);
    }

    fn ordered_element(&mut self, parts: &[&[u8]]) {
        for h in [&mut self.ordered.0, &mut self.ordered.1] {
            h.write_u64(parts.len() as u64);
            for p in parts {
                h.write_u64(p.len() as u64);
                h.write(p);
            }
        }
    }

    /// Hash pairs or set members, in any order.
    fn unordered(&mut self, items: Vec<Value>) {
        let step = if self.kind == "hash" { 2 } else { 1 };
        if self.field_expiry {
            self.pending_fields = items.chunks(2).map(|p| flat_bytes(&p[0])).collect();
        }
        for el in items.chunks(step) {
            let (mut a, mut b) = (DefaultHasher::new(), DefaultHasher::new());
            b.write_u64(0x9e37_79b9_7f4a_7c15);
            for h in [&mut a, &mut b] {
                for p in el {
                    let p = flat_bytes(p);
                    h.write_u64(p.len() as u64);
                    h.write(&p);
                }
            }
            self.sum = self.sum.wrapping_add(u128::from(a.finish()) << 64 | u128::from(b.finish()));
            self.seen += 1;
        }
    }

    /// The content read.
    pub(crate) fn finish(self) -> Content {
        if len_command(&self.kind).is_none() {
            return Content::Opaque(self.kind);
        }
        let read_all = matches!(self.cursor, Cursor::Done) && self.pending_fields.is_empty();
        if self.unsteady || !read_all || (!self.quick && self.seen != self.len) {
            return Content::Unsteady(self.kind, self.len);
        }
        let digest = if self.quick {
            0
        } else {
            (u128::from(self.ordered.0.finish()) << 64 | u128::from(self.ordered.1.finish())).wrapping_add(self.sum)
        };
        Content::Value { kind: self.kind, len: self.len, digest, field_expiry: self.expiring }
    }
}

fn bytes_of(v: Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.into_bytes(),
        Value::Nil => Vec::new(),
        other => flat_bytes(&other),
    }
}

fn flat_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.clone().into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Double(d) => psor_embedded::rdb::format_score(*d).into_bytes(),
        other => format!("{other:?}").into_bytes(),
    }
}

/// A RESP2 `[k, v, k, v…]` or RESP3 map reply (`XINFO`'s) by field name.
fn fields_of(v: Value) -> std::collections::HashMap<String, Value> {
    let items = items_of(v);
    let mut out = std::collections::HashMap::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.insert(String::from_utf8_lossy(&flat_bytes(&k)).into_owned(), v);
    }
    out
}

/// The elements of an array reply; a RESP3 map or array of pairs is flattened one level.
fn items_of(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) | Value::Set(items) => {
            if items.iter().all(|i| matches!(i, Value::Array(p) if p.len() == 2 && !matches!(p[1], Value::Array(_)))) {
                items.into_iter().flat_map(items_of).collect()
            } else {
                items
            }
        }
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        Value::Nil => Vec::new(),
        other => vec![other],
    }
}

/// Reads a key's content on one connection, chunk by chunk.
pub(crate) fn read(con: &mut NodeConn, key: &[u8]) -> Result<Content> {
    read_counting(con, key, false)
}

/// [`read`], with a stream's Redis 7.0 counters when `entries_read` (see
/// [`Reader::with_entries_read`]).
pub(crate) fn read_counting(con: &mut NodeConn, key: &[u8], entries_read: bool) -> Result<Content> {
    let kind: String = con.retry("TYPE", Some(key), |c| redis::cmd("TYPE").arg(key).query(c))?;
    if kind == "none" {
        return Ok(Content::Missing);
    }
    let Some(len_cmd) = len_command(&kind) else {
        return Ok(Content::Opaque(kind));
    };
    let len: u64 = con.retry(len_cmd, Some(key), |c| redis::cmd(len_cmd).arg(key).query(c))?;
    read_sized(con, key, &kind, len, entries_read)
}

/// Reads a key whose type and size are known.
pub(crate) fn read_with(con: &mut NodeConn, key: &[u8], kind: &str, len: u64) -> Result<Content> {
    read_sized(con, key, kind, len, false)
}

fn read_sized(con: &mut NodeConn, key: &[u8], kind: &str, len: u64, entries_read: bool) -> Result<Content> {
    let mut reader = Reader::new(key, kind, len, false).with_entries_read(entries_read);
    while let Some(cmd) = reader.next_command() {
        let reply: Value = con.retry("read", Some(key), |c| cmd.query(c))?;
        if matches!(reply, Value::ServerError(_)) {
            return Ok(Content::Opaque(kind.to_string()));
        }
        reader.feed(reply)?;
    }
    Ok(reader.finish())
}

/// True when a stream payload keeps Redis 7.0's stream counters (stream types 19 and 21:
/// entries-added, max-deleted-id, groups' entries-read); type 15 (Redis 6.2) has none. False
/// for anything that is not a stream payload.
pub(crate) fn payload_keeps_stream_counters(payload: &[u8]) -> bool {
    matches!(payload.first(), Some(19 | 21))
}

/// The content a decoded stream has, in the form [`read`] (with [`Reader::with_entries_read`]
/// set to `entries_read`) gives a live stream's: elements fed to the same [`Reader`] helpers a
/// live key's replies go through.
#[cfg(test)]
pub(crate) fn stream_content(s: &psor_embedded::rdb::Stream, entries_read: bool) -> Content {
    let mut r = Reader::new(b"", "stream", s.entries.len() as u64, false).with_entries_read(entries_read);
    for e in &s.entries {
        stream_entry_of(&mut r, e);
    }
    stream_rest(r, s)
}

/// The content of a stream `DUMP` payload, in the form [`read`] (with
/// [`Reader::with_entries_read`] set to `entries_read`) gives a live stream's: its elements go
/// through the same [`Reader`] helpers a live key's replies do. Decoded entry by entry: only
/// the digest is kept, never a copy of the entries (what is held at once is one stream node).
/// `None` when the payload is not a stream psor decodes.
pub(crate) fn payload_stream_content(payload: &[u8], entries_read: bool) -> Option<Content> {
    let mut r = Reader::new(b"", "stream", 0, false).with_entries_read(entries_read);
    let s = psor_embedded::rdb::decode_stream_with(payload, |e| stream_entry_of(&mut r, &e)).ok()?;
    r.len = r.seen;
    Some(stream_rest(r, &s))
}

fn stream_entry_of(r: &mut Reader, (id, fv): &psor_embedded::rdb::StreamEntry) {
    r.stream_entry(id.to_string().as_bytes(), fv.iter().flat_map(|(f, v)| [f.as_slice(), v.as_slice()]));
    r.seen += 1;
}

/// The rest of a decoded stream after its entries: its info, groups, consumers and PEL.
fn stream_rest(mut r: Reader, s: &psor_embedded::rdb::Stream) -> Content {
    let (max_deleted, added) = match s.counters {
        Some((max_deleted, added)) if r.entries_read => (max_deleted.to_string(), added.to_string()),
        _ => (String::new(), String::new()),
    };
    r.stream_info(s.last_id.to_string().as_bytes(), max_deleted.as_bytes(), added.as_bytes());
    // The server's order: groups and consumers by name (rax order), pending entries by id.
    let mut groups: Vec<&psor_embedded::rdb::StreamGroup> = s.groups.iter().collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    for g in &groups {
        // -1: the server does not know it (`XINFO GROUPS` replies nil).
        r.stream_group(&g.name, g.last_delivered.to_string().as_bytes(), g.entries_read.filter(|&n| n != -1));
    }
    for g in &groups {
        let mut consumers: Vec<&Vec<u8>> = g.consumers.iter().collect();
        consumers.sort();
        for c in consumers {
            r.stream_consumer(&g.name, c);
        }
        let mut pending: Vec<_> = g.pending.iter().collect();
        pending.sort_by_key(|p| p.0);
        for (id, who, _delivered_at, count) in pending {
            r.stream_pending(&g.name, id.to_string().as_bytes(), who, count.to_string().as_bytes());
        }
    }
    r.cursor = Cursor::Done;
    r.finish()
}

/// The content a decoded value has, in the form [`read`] gives a key's: to compare a payload
/// too big to restore into a scratch key with what a server holds. The value is fed to the
/// same [`Reader`] a live key goes through, as the replies a server would send, so the two
/// digests agree by construction.
pub(crate) fn content_of(v: &psor_embedded::rdb::Typed) -> Content {
    use psor_embedded::rdb::{format_score, Typed};
    let bulk = |b: &[u8]| Value::BulkString(b.to_vec());
    let (kind, len) = match v {
        Typed::Str(s) => ("string", s.len() as u64),
        Typed::List(l) => ("list", l.len() as u64),
        Typed::Set(m) => ("set", m.len() as u64),
        Typed::ZSet(m) => ("zset", m.len() as u64),
        Typed::Hash(m) => ("hash", m.len() as u64),
    };
    let mut reader = Reader::new(b"", kind, len, false);
    let mut fed = 0u64;
    while let Some(cmd) = reader.next_command() {
        let name = cmd.args_iter().next().and_then(|a| match a {
            redis::Arg::Simple(b) => Some(b.to_vec()),
            _ => None,
        });
        let num = |i: usize| -> u64 {
            match cmd.args_iter().nth(i) {
                Some(redis::Arg::Simple(b)) => std::str::from_utf8(b).ok().and_then(|t| t.parse().ok()).unwrap_or(0),
                _ => 0,
            }
        };
        let reply = match (name.as_deref(), v) {
            (Some(b"GET"), Typed::Str(s)) => bulk(s),
            (Some(b"GETRANGE"), Typed::Str(s)) => {
                let (a, b) = (num(2) as usize, num(3) as usize);
                bulk(&s[a.min(s.len())..(b + 1).min(s.len())])
            }
            (Some(b"LRANGE"), Typed::List(l)) => {
                let (a, b) = (num(2) as usize, num(3) as usize);
                Value::Array(l.iter().skip(a).take(b + 1 - a).map(|e| bulk(e)).collect())
            }
            (Some(b"ZRANGE"), Typed::ZSet(m)) => {
                // Server order: by score, then member.
                let mut pairs: Vec<(&Vec<u8>, f64)> = m.iter().map(|(e, d)| (e, *d)).collect();
                pairs.sort_by(|x, y| x.1.total_cmp(&y.1).then_with(|| x.0.cmp(y.0)));
                let (a, b) = (num(2) as usize, num(3) as usize);
                Value::Array(
                    pairs
                        .into_iter()
                        .skip(a)
                        .take(b + 1 - a)
                        .flat_map(|(e, d)| [bulk(e), bulk(format_score(d).as_bytes())])
                        .collect(),
                )
            }
            (Some(b"HGETALL"), Typed::Hash(m)) => {
                Value::Array(m.iter().flat_map(|(f, x)| [bulk(f), bulk(x)]).collect())
            }
            (Some(b"SMEMBERS"), Typed::Set(m)) => Value::Array(m.iter().map(|e| bulk(e)).collect()),
            // One page holding every element, then cursor 0: the digest is order-free.
            (Some(b"HSCAN"), Typed::Hash(m)) => {
                Value::Array(vec![bulk(b"0"), Value::Array(m.iter().flat_map(|(f, x)| [bulk(f), bulk(x)]).collect())])
            }
            (Some(b"SSCAN"), Typed::Set(m)) => {
                Value::Array(vec![bulk(b"0"), Value::Array(m.iter().map(|e| bulk(e)).collect())])
            }
            _ => return Content::Opaque(kind.to_string()),
        };
        fed += 1;
        if reader.feed(reply).is_err() || fed > len + 2 {
            return Content::Opaque(kind.to_string());
        }
    }
    reader.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    fn array(items: Vec<Value>) -> Value {
        Value::Array(items)
    }

    /// Feeds replies until the reader asks for nothing more.
    fn drive(mut r: Reader, mut replies: Vec<Value>) -> Content {
        replies.reverse();
        while r.next_command().is_some() {
            r.feed(replies.pop().expect("a reply for every command")).unwrap();
        }
        assert!(replies.is_empty(), "replies left over");
        r.finish()
    }

    #[test]
    fn hash_order_does_not_matter_but_pairing_does() {
        let whole = |pairs: &[(&[u8], &[u8])]| {
            let items = pairs.iter().flat_map(|(f, v)| [bulk(f), bulk(v)]).collect();
            drive(Reader::new(b"k", "hash", pairs.len() as u64, false), vec![array(items)])
        };
        let a = whole(&[(b"f1", b"v1"), (b"f2", b"v2")]);
        assert!(a.same_as(&whole(&[(b"f2", b"v2"), (b"f1", b"v1")])));
        assert!(!a.same_as(&whole(&[(b"f1", b"v2"), (b"f2", b"v1")])));
        assert!(!a.same_as(&whole(&[(b"f1v", b"1"), (b"f2", b"v2")])), "framing keeps (f1v,1) apart from (f1,v1)");
    }

    #[test]
    fn a_string_read_in_chunks_equals_one_read_whole() {
        let n = CHUNK_BYTES as usize * 2 + 5;
        let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<Value> = data.chunks(CHUNK_BYTES as usize).map(bulk).collect();
        let chunked = drive(Reader::new(b"k", "string", n as u64, false), chunks);
        let mut small = Reader::new(b"k", "string", 3, false);
        assert!(small.next_command().is_some());
        small.feed(bulk(b"abc")).unwrap();
        assert!(matches!(small.finish(), Content::Value { len: 3, .. }));
        assert!(matches!(chunked, Content::Value { len, .. } if len == n as u64));
        // Read again: the same digest; one byte changed in the last chunk: another.
        let again: Vec<Value> = data.chunks(CHUNK_BYTES as usize).map(bulk).collect();
        assert!(chunked.same_as(&drive(Reader::new(b"k", "string", n as u64, false), again)));
        let mut changed = data.clone();
        changed[n - 1] ^= 1;
        let changed: Vec<Value> = changed.chunks(CHUNK_BYTES as usize).map(bulk).collect();
        assert!(!chunked.same_as(&drive(Reader::new(b"k", "string", n as u64, false), changed)));
    }

    #[test]
    fn a_string_read_without_its_size_has_the_digest_of_one_read_with_it() {
        let first = FIRST_BYTES as usize;
        for n in [0, 3, first - 1, first, first + 1, first + CHUNK_BYTES as usize, first + CHUNK_BYTES as usize + 7] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            let sized: Vec<Value> = data.chunks(CHUNK_BYTES as usize).map(bulk).collect();
            let sized = drive(Reader::new(b"k", "string", n as u64, false), sized);
            // What GETRANGE returns: FIRST_BYTES, then CHUNK_BYTES at a time, until short.
            let mut replies = vec![bulk(&data[..n.min(first)])];
            let mut at = first;
            while replies.last().is_some_and(
                |r| matches!(r, Value::BulkString(b) if b.len() as u64 == FIRST_BYTES || b.len() as u64 == CHUNK_BYTES),
            ) {
                let end = (at + CHUNK_BYTES as usize).min(n);
                replies.push(bulk(&data[at.min(n)..end]));
                at = end;
            }
            let streamed = drive(Reader::string(b"k"), replies);
            assert!(matches!(streamed, Content::Value { len, .. } if len == n as u64), "{n}: {streamed:?}");
            assert!(streamed.same_as(&sized), "{n} bytes: {streamed:?} vs {sized:?}");
        }
    }

    #[test]
    fn a_scan_that_returns_a_member_twice_is_unsteady() {
        let len = WHOLE_LIMIT + 2;
        let members: Vec<Value> = (0..len).map(|i| bulk(format!("m{i}").as_bytes())).collect();
        let page = |cursor: &[u8], items: Vec<Value>| array(vec![bulk(cursor), array(items)]);
        let (first, rest) = members.split_at(5);
        let ok =
            drive(Reader::new(b"k", "set", len, false), vec![page(b"17", first.to_vec()), page(b"0", rest.to_vec())]);
        assert!(matches!(ok, Content::Value { .. }), "{ok:?}");
        let mut twice = rest.to_vec();
        twice.push(first[0].clone());
        let dup = drive(Reader::new(b"k", "set", len, false), vec![page(b"17", first.to_vec()), page(b"0", twice)]);
        assert!(matches!(dup, Content::Unsteady(..)), "{dup:?}");
        assert!(!dup.same_as(&dup.clone()));
    }

    /// A stream as a server replies it (RESP2) and as its payload decodes: the same content.
    #[test]
    fn a_decoded_stream_digests_as_the_live_one_reads() {
        use psor_embedded::rdb::{Stream, StreamGroup, StreamId};
        let id = |ms, seq| StreamId { ms, seq };
        let stream = |last_delivered: StreamId, count: u64| Stream {
            entries: vec![
                (id(1, 1), vec![(b"f".to_vec(), b"v".to_vec())]),
                (id(1, 2), vec![(b"f".to_vec(), b"w".to_vec()), (b"g".to_vec(), b"x".to_vec())]),
            ],
            last_id: id(5, 0),
            counters: Some((id(1, 3), 4)),
            groups: vec![
                StreamGroup {
                    name: b"g2".to_vec(),
                    last_delivered: id(0, 0),
                    entries_read: Some(-1),
                    pending: vec![],
                    consumers: vec![b"carol".to_vec()],
                },
                StreamGroup {
                    name: b"g1".to_vec(),
                    last_delivered,
                    entries_read: Some(2),
                    pending: vec![(id(1, 1), b"alice".to_vec(), 1_700_000_000_000, count)],
                    consumers: vec![b"bob".to_vec(), b"alice".to_vec()],
                },
            ],
        };
        let info = |pairs: &[(&str, Value)]| {
            array(pairs.iter().flat_map(|(k, v)| [bulk(k.as_bytes()), v.clone()]).collect::<Vec<_>>())
        };
        let live = |counters: bool| {
            let replies = vec![
                array(vec![
                    array(vec![bulk(b"1-1"), array(vec![bulk(b"f"), bulk(b"v")])]),
                    array(vec![bulk(b"1-2"), array(vec![bulk(b"f"), bulk(b"w"), bulk(b"g"), bulk(b"x")])]),
                ]),
                info(&[
                    ("length", Value::Int(2)),
                    ("last-generated-id", bulk(b"5-0")),
                    ("max-deleted-entry-id", bulk(b"1-3")),
                    ("entries-added", Value::Int(4)),
                    ("first-entry", Value::Nil),
                ]),
                array(vec![
                    info(&[
                        ("name", bulk(b"g1")),
                        ("consumers", Value::Int(2)),
                        ("last-delivered-id", bulk(b"1-1")),
                        ("entries-read", Value::Int(2)),
                    ]),
                    info(&[("name", bulk(b"g2")), ("last-delivered-id", bulk(b"0-0")), ("entries-read", Value::Nil)]),
                ]),
                array(vec![
                    info(&[("name", bulk(b"alice")), ("idle", Value::Int(7))]),
                    info(&[("name", bulk(b"bob")), ("pending", Value::Int(0))]),
                ]),
                array(vec![array(vec![bulk(b"1-1"), bulk(b"alice"), Value::Int(12_345), Value::Int(1)])]),
                array(vec![info(&[("name", bulk(b"carol")), ("pending", Value::Int(0))])]),
                array(vec![]),
            ];
            drive(Reader::new(b"k", "stream", 2, false).with_entries_read(counters), replies)
        };
        for counters in [true, false] {
            let want = stream_content(&stream(id(1, 1), 1), counters);
            assert!(matches!(want, Content::Value { len: 2, .. }), "{want:?}");
            assert!(want.same_as(&live(counters)), "counters {counters}: {want:?} vs {:?}", live(counters));
        }
        // A group's last-delivered id, a delivery count, the counters: each makes another stream.
        assert!(!stream_content(&stream(id(1, 2), 1), true).same_as(&live(true)));
        assert!(!stream_content(&stream(id(1, 1), 2), true).same_as(&live(true)));
        let mut other = stream(id(1, 1), 1);
        other.counters = Some((id(1, 3), 5));
        assert!(!stream_content(&other, true).same_as(&live(true)));
        assert!(stream_content(&other, false).same_as(&live(false)), "counters not compared");
        other.last_id = id(6, 0);
        assert!(!stream_content(&other, false).same_as(&live(false)), "the last id is");
    }

    #[test]
    fn sorted_set_scores_compare_as_numbers() {
        let z = |score: &[u8]| drive(Reader::new(b"k", "zset", 1, false), vec![array(vec![bulk(b"m"), bulk(score)])]);
        assert!(z(b"1.5").same_as(&z(b"1.50")));
        assert!(!z(b"1.5").same_as(&z(b"2")));
    }
}
