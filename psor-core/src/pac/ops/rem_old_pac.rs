//! `rem-old-pac`: every version but the `Running` one deleted, once each is quiesced and
//! has no region registered.

use super::removal::{check_expected, delete_versions, planned, regions_blocker};
#[allow(clippy::wildcard_imports)]
use super::*;

/// How to run `rem-old-pac`.
#[derive(Debug, Clone, Default)]
pub struct RemOldPacOptions {
    /// Report the stores and key counts; delete nothing.
    pub dry_run: bool,
    /// Delete even though old versions are not quiesced or have regions registered.
    pub force: bool,
    /// The versions the caller confirmed; if the PSOR now has another old version, refuse.
    pub expect: Option<Vec<ProductVersion>>,
}

/// What `rem-old-pac` found and did.
#[derive(Debug, Clone, Serialize)]
pub struct RemOldPacOutcome {
    /// The PAC.
    pub pac: PacName,
    /// The version kept (the one in mode `Running`).
    pub keep: VersionStatus,
    /// The versions removed (for a dry run: to remove), with their stores and key counts.
    pub remove: Vec<VersionStatus>,
    /// What makes removing them unsafe (overridden with `force`).
    pub blockers: Vec<Blocker>,
    /// True when blockers were overridden.
    pub forced: bool,
    /// Nothing was written.
    pub dry_run: bool,
    /// Per removed version: what happened to its keys.
    pub deleted: Vec<DeleteReport>,
    /// Stopped before the end (Ctrl-C): `deleted` is exact, and running the same
    /// `rem-old-pac` again removes what is left.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// `caspac -aRemOldPAC=PAC`: deletes the stores of every version of `pac` other than the
/// one in mode `Running`, exactly their `<PAC>_<version>:` prefixes. Refuses
/// ([`Error::InUse`]) while one of them is not `Quiesce` or has regions registered, unless
/// `force`.
pub fn rem_old_pac(
    psor: &Psor,
    catalog: &Catalog,
    pac: &PacName,
    opts: &RemOldPacOptions,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<RemOldPacOutcome> {
    let st = require_pac(pac_status(psor, catalog, pac, engine, progress.clone())?)?;
    let keep = st.running().cloned().ok_or_else(|| Error::State {
        pac: pac.clone(),
        reason: format!(
            "no version is in mode Running (versions: {}); rem-old-pac keeps the Running version and removes the others",
            st.describe_versions()
        ),
    })?;
    let remove: Vec<VersionStatus> = st.versions.iter().filter(|v| v.version != keep.version).cloned().collect();
    let mut blockers = Vec::new();
    for v in &remove {
        if v.version > keep.version {
            blockers.push(Blocker::NewerThanRunning {
                pac: pac.clone(),
                version: v.version.clone(),
                running: keep.version.clone(),
            });
        }
        let unreadable = v.record.is_none() && v.record_error.is_some();
        match v.mode() {
            Some(PacMode::Quiesce) => {}
            Some(m) => blockers.push(Blocker::NotQuiesced { version: v.version.clone(), mode: Some(m) }),
            None if unreadable => blockers.push(Blocker::NotQuiesced { version: v.version.clone(), mode: None }),
            None => {}
        }
        blockers.extend(regions_blocker(v));
    }
    let mut out = RemOldPacOutcome {
        pac: pac.clone(),
        keep,
        deleted: planned(&remove),
        remove,
        forced: false,
        dry_run: opts.dry_run,
        blockers,
        interrupted: false,
    };
    if opts.dry_run || out.remove.is_empty() {
        return Ok(out);
    }
    if !out.blockers.is_empty() {
        if !opts.force {
            return Err(Error::InUse { pac: pac.clone(), blockers: out.blockers });
        }
        out.forced = true;
    }
    check_expected(pac, &out.remove, opts.expect.as_deref())?;
    (out.deleted, out.interrupted) = delete_versions(psor, catalog, pac, &out.remove, engine, &progress)?;
    Ok(out)
}
