//! PAC lifecycle operations on a live PSOR: what `caspac` and `casstart /s:u` do around an
//! incompatible upgrade, done carefully.
//!
//! [`crate::layout`] says what a PAC's keys are called (pure data); [`crate::engine`] moves
//! and deletes everything under a prefix. This module joins the two into the steps of the
//! upgrade procedure: [`status`] (which PACs, versions, modes, stores), [`check_compat`],
//! [`create`] (the new version's stores next to the old ones, in mode `Upgrade`),
//! [`set_mode`] (atomic, legal transitions only), [`rem_old_pac`] and [`init_pac`]
//! (deleting exactly the (PAC, version) prefixes asked for, refusing while they are in use),
//! and [`sample`] (a realistic PAC for demos, tests and rehearsals).
//!
//! Nothing here prints: every operation returns a serialisable report, and long work is
//! counted in a [`crate::progress::Progress`] the caller polls. Errors are [`Error`], which
//! wraps [`crate::Error`] for everything the engine and connections can say.
//!
//! Metadata (the PAC record, region registry, version records) lives in *tagged* stores that
//! share the `{<PAC>_<version>}` hash tag, so the read-check-write of a mode change is one
//! `WATCH`/`MULTI` on one node even on a cluster ([`key_conn`] finds that node).

mod backup;
mod ops;
mod placement;
mod rehearse;
mod sample;
mod status;

pub use backup::{backup, Backup};
pub use ops::{
    carried_stores, check_compat, create, init_pac, rem_old_pac, set_mode, Blocker, CarriedStore, CarryPair,
    CompatReport, CreateOptions, CreateOutcome, DeleteReport, InitPacOptions, InitPacOutcome, RemOldPacOptions,
    RemOldPacOutcome, SetModeOptions, SetModeOutcome, VersionSide,
};
pub use placement::{placement_check, placement_server_ids, PlacementKind, PlacementWarning};
pub use rehearse::{rehearse, Observer, Rehearsal, RehearsalSource, RehearseOptions, Step};
pub use sample::{sample, SampleOptions, SampleOutcome};
pub use status::{
    findings, status, status_with, Orphan, OrphanKind, PacStatus, RegionVersion, StatusOptions, StatusReport,
    StoreCount, TtlStats, VersionStatus, Warning, WarningKind, DEFAULT_UPGRADE_WARN_MS, MAX_UNKNOWN_STORES,
};

use crate::connect::{key_slot, NodeConn, Psor, Topology};
use crate::layout::{
    CatalogError, KeyError, PacMode, PacName, PacRecord, PacRecordError, ProductVersion, TransitionError,
};

/// The result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The hash field psor adds to a PAC record while [`create`] has not finished copying.
/// Readers that do not know it ignore it (the record format ignores unknown fields); psor
/// refuses `set-mode … running` while it is there, and a rerun of `create` removes it.
pub const CREATING_FIELD: &str = "psor_creating";

/// What can go wrong in a PAC lifecycle operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A connection, engine or input failure (see [`crate::Error`]).
    #[error(transparent)]
    Core(#[from] crate::Error),
    /// The catalog could not be read, or does not know a product version.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Writing or checking a snapshot (a backup) failed.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::Error),
    /// The catalog's layout lacks a store psor needs (e.g. no `pac-record` store).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// No key of this PAC exists in the PSOR.
    #[error("PAC {pac} is not in this PSOR (no key parses as one of its (PAC, version) prefixes){}",
        if known.is_empty() { String::new() } else { format!("; PACs found: {}", known.join(", ")) })]
    UnknownPac {
        /// The PAC asked for.
        pac: PacName,
        /// The PACs that are there.
        known: Vec<String>,
    },
    /// No version of the PAC has a record compatible with the product version.
    #[error("PAC {pac} has no version compatible with product version {product_version} (versions: {versions})")]
    NoCompatibleVersion {
        /// The PAC.
        pac: PacName,
        /// The product version psor acts for.
        product_version: ProductVersion,
        /// The versions the PAC has, with their modes.
        versions: String,
    },
    /// A PAC record that cannot be decoded.
    #[error("PAC record {key} is damaged: {source}")]
    BadRecord {
        /// The record's key, escaped.
        key: String,
        /// What is wrong.
        source: PacRecordError,
    },
    /// A mode change the transition table does not allow.
    #[error("PAC {pac} version {version}: {source}")]
    Transition {
        /// The PAC.
        pac: PacName,
        /// The PAC version (the record's version).
        version: ProductVersion,
        /// The refused change.
        source: TransitionError,
    },
    /// The PAC's state does not allow the operation (it says why and what to do).
    #[error("PAC {pac}: {reason}")]
    State {
        /// The PAC.
        pac: PacName,
        /// Why, and what to do.
        reason: String,
    },
    /// `create` for a product version compatible with the running one: nothing to create.
    #[error("PAC {pac}: {reason}: use the compatible upgrade process, no new stores are needed")]
    Compatible {
        /// The PAC.
        pac: PacName,
        /// Which versions and layouts share which epoch.
        reason: String,
    },
    /// The stores are in use: an old version is not quiesced, or regions are still
    /// registered. `--force` overrides.
    #[error("PAC {pac} is in use, refusing: {}", blockers.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InUse {
        /// The PAC.
        pac: PacName,
        /// What is in the way.
        blockers: Vec<Blocker>,
    },
    /// A store psor cannot carry (e.g. a tagged store with `upgrade = "carry"`: its hash
    /// tag holds the version, so a re-prefixed copy would land in the wrong slot).
    #[error("{0}")]
    Unsupported(String),
    /// The metadata kept changing under a `WATCH` (another `set-mode` at the same time).
    #[error("PAC record {key} kept changing while psor tried to update it; nothing was changed, try again")]
    Concurrent {
        /// The record's key, escaped.
        key: String,
    },
}

impl Error {
    /// True when the error means "this PAC or product version is not known" (exit code 5).
    pub fn is_unknown(&self) -> bool {
        matches!(self, Error::UnknownPac { .. } | Error::NoCompatibleVersion { .. })
            || matches!(self, Error::Catalog(CatalogError::UnknownVersion { .. }))
    }
}

/// Milliseconds since the Unix epoch, for record timestamps ([`psor_formats::now_ms`], unsigned).
pub fn now_ms() -> u64 {
    u64::try_from(psor_formats::now_ms()).unwrap_or(0)
}

/// A connection to the master that serves `key`: the one server of a standalone PSOR, or
/// the master of the key's slot in a cluster. Tagged metadata keys of one (PAC, version)
/// share a slot, so one connection serves a whole `WATCH`/`MULTI`.
pub fn key_conn(psor: &Psor, key: &[u8]) -> Result<NodeConn> {
    match psor.topology() {
        Topology::Single => Ok(psor.masters()[0].connect()?),
        Topology::Cluster(map) => {
            let hp = map.master_of(key_slot(key)).ok_or_else(|| {
                crate::Error::Refused(format!(
                    "no master of {} serves key {}; is the cluster being reconfigured?",
                    psor.spec().redacted(),
                    crate::keys::display_key(key)
                ))
            })?;
            Ok(psor.node_at(hp).connect()?)
        }
    }
}

/// A PAC record as read from Redis, with psor's own marker.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredRecord {
    /// The decoded record.
    #[serde(flatten)]
    pub record: PacRecord,
    /// True while a [`create`] of this version has not finished ([`CREATING_FIELD`]).
    pub creating: bool,
}

/// Reads and decodes the record at `key`; `None` when it does not exist.
pub(crate) fn read_record(con: &mut NodeConn, key: &[u8]) -> Result<Option<StoredRecord>> {
    let pairs: Vec<(Vec<u8>, Vec<u8>)> =
        con.retry("HGETALL", Some(key), |c| redis::cmd("HGETALL").arg(key).query(c))?;
    decode_record(key, pairs)
}

pub(crate) fn decode_record(key: &[u8], pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Option<StoredRecord>> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let creating = pairs.iter().any(|(k, _)| k == CREATING_FIELD.as_bytes());
    let record = PacRecord::from_hash(pairs)
        .map_err(|source| Error::BadRecord { key: crate::keys::display_key(key), source })?;
    Ok(Some(StoredRecord { record, creating }))
}

/// The modes a caller may ask [`set_mode`] for (`Upgrade` is only ever set by [`create`]).
pub fn settable_mode(mode: PacMode) -> bool {
    mode != PacMode::Upgrade
}
