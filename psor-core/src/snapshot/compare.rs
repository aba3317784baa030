//! Does an existing key already hold what the snapshot has for it? Decides between `unchanged`
//! (a rerun: leave it) and `conflict` (someone else's data: report it) during an import.
//!
//! The `DUMP` bodies are compared first, by the caller. When they differ the content may still
//! be the same: a hashtable-encoded set or hash serializes its members in table order, which a
//! `RESTORE` reshuffles. Then the file's payload is restored into a scratch key beside the
//! target (with a one-minute expiry, in case psor dies before removing it) and both keys are
//! read by type and compared canonically. Collections above `engine::compare::CONTENT_LIMIT` elements are not
//! read: they stay conflicts, the safe answer.
//!
//! Reading and comparing content is the engine's (`engine::compare`); this module only adds
//! the scratch key that turns a file's payload into something readable.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use redis::Value;

use crate::connect::NodeConn;
use crate::engine::compare::read;
use crate::error::Result;

/// Scratch keys live this long if psor dies before removing them.
const SCRATCH_TTL_MS: u64 = 60_000;

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
        Ok(want.same_as(&have))
    })();
    let _ = con.retry("UNLINK", Some(&scratch), |c| redis::cmd("UNLINK").arg(&scratch).query::<u64>(c));
    result
}
