//! Snapshots: keys taken out of a PSOR into a `.psnap` file, and put back.
//!
//! A PAC upgrade or a removal of an old PAC is safer with a copy of its keys on disk. This
//! module turns a live keyspace into a file ([`export`]), a file back into a keyspace
//! ([`import`]), and a file into a report without any server ([`inspect`]). The file format
//! itself (checksums, framing, versions) is `psor-formats`; this module adds Redis: SCAN,
//! `DUMP`, expiry, `RESTORE … ABSTTL`, conflicts.
//!
//! **Consistency of an export.** Each key is read atomically (`TYPE`, `DUMP` and its expiry
//! in one `MULTI`/`EXEC`), so a record is always one real state of that key: never the value
//! of one moment with the type or expiry of another. Keys that exist for the whole export are
//! in the file (SCAN's guarantee); a key deleted between SCAN and its read is counted
//! `vanished`, not written; a key created or changed during the export may be in the file in
//! its old state, its new state, or (if created after SCAN passed its slot) not at all. The
//! file is not a point-in-time image across keys: stop the writers first when that matters.
//! SCAN may return a key twice; the export writes each key once.
//!
//! **Clusters.** Every command goes through the engine's `Router`: a key's `MULTI`/`EXEC`
//! read and its `RESTORE` go to the master serving its hash slot (a transaction on one key
//! is single-slot, so it is legal there), redirections are followed, and on a standalone
//! server everything goes down the one connection as before.

mod compare;
mod export;
mod import;
mod inspect;
mod output;
mod spill;

pub use export::{export, ExportOptions, ExportOutcome, ExportSelection};
pub use import::{import, ImportOptions, ImportOutcome, Rename};
pub use inspect::{
    group_of, inspect, lookup, InspectOptions, Inspection, KeyLookup, KeyRecord, PrefixStats, SelectionInfo, MAX_GROUPS,
};
pub use output::{check_output_path, same_file};

use std::path::PathBuf;

use psor_formats::KeyKind;

use crate::keys::display_key;

/// What can go wrong exporting, importing or inspecting a snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The snapshot file is not one this build can use: not a snapshot, damaged, truncated,
    /// or written by a newer format version. The source names the offset.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the format reader found.
        source: psor_formats::Error,
    },
    /// A file could not be opened for reading.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing the snapshot file failed (disk full, permissions...). The partial file was
    /// removed; the target path was not touched.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The I/O or format error.
        source: std::io::Error,
    },
    /// The request is not acceptable (an existing output file, keys outside `--rename`,
    /// payloads the target server is too old for...). Nothing was written.
    #[error("{0}")]
    Refused(String),
    /// The target server refused a payload during an import (from a newer Redis, or damaged).
    /// Records before it may have been restored.
    #[error("{0}")]
    TargetRefused(String),
    /// A failure while talking to Redis (or a refused connection spec).
    #[error(transparent)]
    Core(#[from] crate::Error),
}

impl Error {
    /// True when the error is the user's input (a bad or foreign file, a refused request),
    /// as opposed to a failure while working: nothing was written.
    pub fn is_usage(&self) -> bool {
        match self {
            Error::File { .. } | Error::Open { .. } | Error::Refused(_) => true,
            Error::Write { .. } | Error::TargetRefused(_) => false,
            Error::Core(e) => e.is_usage(),
        }
    }
}

/// Result alias for snapshot work.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Keys and payload bytes of one Redis type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KindStats {
    /// Keys of this type.
    pub keys: u64,
    /// Their `DUMP` payload bytes.
    pub payload_bytes: u64,
}

/// Per-type statistics keyed by the `TYPE` name (`string`, `hash`, ...), every type present.
pub type PerKind = std::collections::BTreeMap<&'static str, KindStats>;

fn per_kind(totals: &psor_formats::Totals) -> PerKind {
    KeyKind::ALL
        .iter()
        .map(|&k| {
            let t = totals.kind(k);
            (k.as_str(), KindStats { keys: t.count, payload_bytes: t.payload_bytes })
        })
        .collect()
}

/// How a file's selection reads in reports: `prefix "a:b"` or `pac P version V`.
pub fn describe_selection(s: &psor_formats::Selection) -> String {
    match s {
        psor_formats::Selection::Prefix(p) if p.is_empty() => "every key".into(),
        psor_formats::Selection::Prefix(p) => format!("prefix {}", display_key(p)),
        psor_formats::Selection::PacVersion { pac, version } => format!("PAC {pac} version {version}"),
    }
}

pub(crate) use crate::engine::Samples;

/// The pipeline stops on a snapshot error; an interrupt is the run being cancelled.
impl crate::engine::pipeline::StageError for Error {
    fn is_interrupted(&self) -> bool {
        matches!(self, Error::Core(crate::Error::Interrupted))
    }
}

pub(crate) use crate::engine::is_fatal_for_run;

/// A router over `psor` with a connection to every master already open, so that a bad
/// password or an unreachable master stops the work before anything is written.
pub(crate) fn open_router(psor: &crate::connect::Psor) -> crate::Result<crate::engine::router::Router> {
    let mut router = crate::engine::router::Router::new(psor)?;
    if let crate::connect::Topology::Cluster(map) = psor.topology() {
        for hp in &map.masters {
            if let Some(&slot) = map.slots_of(hp).first() {
                router.conn_for(slot)?;
            }
        }
    }
    Ok(router)
}

/// Where a PSOR is, for messages: the server's address, or the cluster's spec.
pub(crate) fn where_is(psor: &crate::connect::Psor) -> String {
    match psor.masters() {
        [one] if !psor.is_cluster() => one.addr().to_string(),
        _ => psor.spec().redacted(),
    }
}

pub(crate) use psor_formats::now_ms;

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), without a date crate.
pub fn format_utc_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z", rem / 3600, (rem / 60) % 60, rem % 60)
}

/// The newest `DUMP` payload (RDB) version a server is known to accept, or `None` for
/// versions newer than psor's table (then the server itself decides). See
/// [`crate::connect::ServerInfo::reads_rdb`] for the versions below it a server may still refuse.
pub fn max_rdb_version(server: &crate::connect::ServerInfo) -> Option<u16> {
    server.max_rdb_version()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_utc_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_utc_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn rdb_versions_by_server() {
        use crate::connect::ServerInfo;
        let v = |major, minor| crate::connect::ServerVersion { major, minor, patch: 0 };
        assert_eq!(max_rdb_version(&ServerInfo::redis(v(7, 0))), Some(10));
        assert_eq!(max_rdb_version(&ServerInfo::redis(v(6, 2))), Some(9));
        assert_eq!(max_rdb_version(&ServerInfo::valkey(v(9, 1))), Some(80));
        assert_eq!(max_rdb_version(&ServerInfo::redis(v(9, 0))), None);
    }
}
