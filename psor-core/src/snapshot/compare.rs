//! Does an existing key already hold what the snapshot has for it? Decides between `unchanged`
//! (a rerun: leave it) and `conflict` (someone else's data: report it) during an import.
//!
//! The `DUMP` bodies are compared first, by the caller. When they differ the content may still
//! be the same: a hashtable-encoded set or hash serializes its members in table order, which a
//! `RESTORE` reshuffles. Then the file's payload is restored into a scratch key beside the
//! target (with a one-minute expiry, in case psor dies before removing it) and both keys are
//! read by type (in bounded chunks, whatever their size) and compared canonically.
//!
//! Reading and comparing content is the engine's (`engine::compare`); this module only adds
//! the scratch key that turns a file's payload into something readable. A stream needs no
//! scratch key: its payload is decoded and digested as its live reading is
//! (`engine::compare::payload_stream_content`), so a stream psor rebuilt or transcoded (other `DUMP`
//! bytes, the same stream) is `unchanged`, and a dry run compares streams too.
//!
//! On a Redis Cluster both keys must live on the same master, so the scratch key is named
//! `psor:import-compare:{TAG}:<pid>:<n>` with a hash tag `TAG` chosen to hash to the target
//! key's slot (a table of one short tag per slot, built once). On a single server the tag is
//! there too, and harmless.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use redis::Value;

use crate::connect::{key_slot, NodeConn, SLOTS};
use crate::engine::compare::{payload_keeps_stream_counters, payload_stream_content, read, read_counting};
use crate::error::Result;

/// Scratch keys live this long if psor dies before removing them.
const SCRATCH_TTL_MS: u64 = 60_000;

/// A hash tag for every slot: `tags()[s]` is the first of `t0`, `t1`, … whose slot is `s`.
fn tags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags: Vec<Option<String>> = vec![None; SLOTS];
        let mut missing = SLOTS;
        // About 170,000 tries (coupon collector over 16,384 slots): milliseconds, once.
        for i in 0u64.. {
            let tag = format!("t{i}");
            let slot = &mut tags[usize::from(key_slot(tag.as_bytes()))];
            if slot.is_none() {
                *slot = Some(tag);
                missing -= 1;
                if missing == 0 {
                    break;
                }
            }
        }
        tags.into_iter().map(|t| t.expect("every slot got a tag")).collect()
    })
}

/// A fresh scratch key name in the same hash slot as `key`.
fn scratch_for(key: &[u8]) -> Vec<u8> {
    static N: AtomicU64 = AtomicU64::new(0);
    let tag = &tags()[usize::from(key_slot(key))];
    format!("psor:import-compare:{{{tag}}}:{}:{}", std::process::id(), N.fetch_add(1, Relaxed)).into_bytes()
}

/// True when `key` on `con` (the master serving its slot) holds the content of the `DUMP`
/// `payload` (expiry aside).
/// `stream_counters`: the server keeps Redis 7.0's stream counters (7.0+, Valkey); they are
/// compared when the payload has them too.
pub(crate) fn same_as_payload(con: &mut NodeConn, key: &[u8], payload: &[u8], stream_counters: bool) -> Result<bool> {
    if let Some(same) = same_as_stream_payload(con, key, payload, stream_counters)? {
        return Ok(same);
    }
    let scratch = scratch_for(key);
    let restored: Value = con.retry("RESTORE", Some(key), |c| {
        redis::cmd("RESTORE").arg(&scratch).arg(SCRATCH_TTL_MS).arg(payload).arg("REPLACE").query(c)
    })?;
    if !matches!(restored, Value::Okay) {
        return Ok(false);
    }
    let result = (|| {
        let want = read(con, &scratch)?;
        let have = read(con, key)?;
        Ok(want.same_as(&have))
    })();
    let _ = con.retry("UNLINK", Some(&scratch), |c| redis::cmd("UNLINK").arg(&scratch).query::<u64>(c));
    result
}

/// For a stream payload (`None` for anything else): true when `key` holds that stream. Writes
/// nothing. A stream payload psor cannot decode is never the same.
pub(crate) fn same_as_stream_payload(
    con: &mut NodeConn,
    key: &[u8],
    payload: &[u8],
    stream_counters: bool,
) -> Result<Option<bool>> {
    if psor_embedded::rdb::payload_kind(payload).ok() != Some(psor_formats::KeyKind::Stream) {
        return Ok(None);
    }
    let counters = stream_counters && payload_keeps_stream_counters(payload);
    let Some(want) = payload_stream_content(payload, counters) else {
        return Ok(Some(false));
    };
    Ok(Some(want.same_as(&read_counting(con, key, counters)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_keys_share_the_target_slot() {
        for key in [&b"foo"[..], b"{user1000}.following", b"MyPAC_9.0:pac:{MyPAC_9.0}", b"\x00\xff", b"", b"a{}b"] {
            let scratch = scratch_for(key);
            assert!(scratch.starts_with(b"psor:import-compare:{t"));
            assert_eq!(key_slot(&scratch), key_slot(key), "{}", String::from_utf8_lossy(key));
        }
        assert_eq!(tags().len(), SLOTS);
        assert!(tags().iter().enumerate().all(|(s, t)| usize::from(key_slot(t.as_bytes())) == s));
        assert_ne!(scratch_for(b"k"), scratch_for(b"k"), "each scratch key is new");
    }
}
