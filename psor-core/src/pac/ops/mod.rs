//! The lifecycle operations of the incompatible upgrade: check-compat, create, set-mode,
//! rem-old-pac and init-pac.
//!
//! Each one reads the PAC's state with [`super::status`], decides from the catalog, and only
//! then writes: metadata with `WATCH`/`MULTI` on the tagged record key, stores with the
//! engine under exact (PAC, version) prefixes. Destructive operations have a dry run that
//! returns the same report without writing, and take the list of versions the caller
//! confirmed, so a PSOR that changed between the prompt and the work is refused.
//!
//! One file per operation (`compat.rs`, `create.rs`, `set_mode.rs`, `rem_old_pac.rs`,
//! `init_pac.rs`); `removal.rs` holds what rem-old-pac and init-pac share (blockers, the
//! per-version deletion); this file the PAC state reads and the `WATCH`/`MULTI` round rule
//! every record transaction goes through.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::status::{status, PacStatus, VersionStatus};
use super::{key_conn, now_ms, read_record, Error, Result, StoredRecord, CREATING_FIELD};
use crate::connect::{NodeConn, Psor};
use crate::engine::{self, CopyOptions, DeleteOptions, EngineOptions, KeyFailure};
use crate::keys::{display_key, KeyPrefix};
use crate::layout::{Catalog, Compat, Layout, PacMode, PacName, PacRecord, Placement, ProductVersion, Upgrade};
use crate::progress::{Counts, Progress};

/// `expr?` for a step of a `WATCH`/`MULTI` round: a transient failure starts the next round.
macro_rules! txn_step {
    ($con:expr, $key:expr, $op:expr, $round:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => {
                txn_failure($con, $key, $op, e, $round)?;
                continue;
            }
        }
    };
}

mod compat;
mod create;
mod init_pac;
mod rem_old_pac;
mod removal;
mod set_mode;

pub use compat::{check_compat, CompatReport};
pub use create::{carried_stores, create, CarriedStore, CarryPair, CreateOptions, CreateOutcome};
pub use init_pac::{init_pac, InitPacOptions, InitPacOutcome};
pub use rem_old_pac::{rem_old_pac, RemOldPacOptions, RemOldPacOutcome};
pub use removal::{Blocker, DeleteReport};
pub use set_mode::{set_mode, SetModeOptions, SetModeOutcome};

/// One side of a compatibility question: a version with its layout and epoch.
#[derive(Debug, Clone, Serialize)]
pub struct VersionSide {
    /// The version.
    pub version: ProductVersion,
    /// Its catalog layout.
    pub layout: String,
    /// That layout's epoch.
    pub epoch: String,
    /// The mode of the PAC version, when this side is one of the PAC's versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<PacMode>,
}

fn side(catalog: &Catalog, version: &ProductVersion, mode: Option<PacMode>) -> Result<VersionSide> {
    let l = catalog.layout_for(version)?;
    Ok(VersionSide { version: version.clone(), layout: l.name.clone(), epoch: l.epoch.to_string(), mode })
}

fn pac_status(
    psor: &Psor,
    catalog: &Catalog,
    pac: &PacName,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<PacStatus> {
    let report = status(psor, catalog, Some(pac), engine, progress)?;
    Ok(report.pacs.into_iter().next().unwrap_or(PacStatus { pac: pac.clone(), versions: Vec::new() }))
}

fn require_pac(st: PacStatus) -> Result<PacStatus> {
    if st.versions.is_empty() {
        return Err(Error::UnknownPac { pac: st.pac, known: Vec::new() });
    }
    Ok(st)
}

/// The PAC's current version: the one in mode `Running`, else the highest with a record.
fn current(st: &PacStatus) -> Option<&VersionStatus> {
    st.running().or_else(|| st.versions.iter().rev().find(|v| v.record.is_some()))
}

fn cmd_err(addr: &str, key: &[u8], op: &'static str, e: redis::RedisError) -> Error {
    crate::Error::Command { addr: addr.to_owned(), op, key: Some(key.to_vec()), source: e }.into()
}

/// Rounds of a `WATCH`/`MULTI` loop: a concurrent writer or a transient failure costs one.
const TXN_ROUNDS: u32 = 20;

/// A Redis error inside a `WATCH`/`MULTI` round. What [`crate::error::classify`] calls
/// transient (a dropped connection, LOADING, a failover's READONLY…) costs the round: wait,
/// reconnect, and the loop starts over from `WATCH` — every round re-reads the record, so a
/// transaction that did land before the connection dropped is seen as done. Anything else
/// ends the loop with the error.
fn txn_failure(con: &mut NodeConn, key: &[u8], op: &'static str, e: redis::RedisError, round: u32) -> Result<()> {
    if crate::error::classify(&e).is_transient() && round + 1 < TXN_ROUNDS {
        std::thread::sleep(std::time::Duration::from_millis(25u64 << round.min(6)));
        let _ = con.reconnect();
        return Ok(());
    }
    Err(cmd_err(con.addr(), key, op, e))
}
