//! What `rem-old-pac` and `init-pac` share: what blocks deleting a version's stores, and
//! the per-version deletion with its reports.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Something that makes deleting a version's stores unsafe.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Blocker {
    /// The version is not in mode `Quiesce` (it may still take work).
    NotQuiesced {
        /// The version.
        version: ProductVersion,
        /// Its mode (`None`: its record is unreadable).
        mode: Option<PacMode>,
    },
    /// The version is newer than the `Running` one (an upgrade not finished, or backed
    /// out): removing it would throw the new version away.
    NewerThanRunning {
        /// The PAC.
        pac: PacName,
        /// The newer version.
        version: ProductVersion,
        /// The `Running` version rem-old-pac would keep.
        running: ProductVersion,
    },
    /// Regions are still registered in the version's region registry.
    RegionsRegistered {
        /// The version.
        version: ProductVersion,
        /// How many.
        count: u64,
        /// Some of their names.
        regions: Vec<String>,
    },
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocker::NotQuiesced { version, mode: Some(m) } => {
                write!(f, "version {version} is in mode {m}, not Quiesce (run `psor set-mode … quiesce` from it)")
            }
            Blocker::NotQuiesced { version, mode: None } => write!(f, "version {version} has an unreadable PAC record"),
            Blocker::NewerThanRunning { pac, version, running } => write!(
                f,
                "version {version} is newer than the Running version {running}: rem-old-pac removes every version \
                 but the Running one, so it would remove {version}; finish the upgrade first \
                 (`psor set-mode {pac} running --product-version {version}`), or --force to remove {version}"
            ),
            Blocker::RegionsRegistered { version, count, regions } => write!(
                f,
                "version {version} still has {count} region(s) registered ({}); stop them first",
                regions.join(", ")
            ),
        }
    }
}

pub(super) fn regions_blocker(v: &VersionStatus) -> Option<Blocker> {
    (v.region_count > 0).then(|| Blocker::RegionsRegistered {
        version: v.version.clone(),
        count: v.region_count,
        regions: v.regions.clone(),
    })
}

/// What one version's deletion did.
#[derive(Debug, Clone, Serialize)]
pub struct DeleteReport {
    /// The version.
    pub version: ProductVersion,
    /// Its prefix, escaped.
    pub prefix: String,
    /// What happened to its keys (for a dry run: the keys found).
    pub counts: Counts,
    /// The first failed keys.
    pub failures: Vec<KeyFailure>,
}

/// Deletes each version's keys in turn; the flag is true when the run was interrupted (the
/// reports then cover exactly what was deleted, and the versions not reached are absent).
pub(super) fn delete_versions(
    psor: &Psor,
    catalog: &Catalog,
    pac: &PacName,
    versions: &[VersionStatus],
    engine: &EngineOptions,
    progress: &Arc<Progress>,
) -> Result<(Vec<DeleteReport>, bool)> {
    let template = catalog.key_template();
    let mut out = Vec::new();
    for v in versions {
        if progress.is_cancelled() {
            return Ok((out, true));
        }
        let prefix = template.prefix(pac, &v.version);
        let opts = DeleteOptions { prefix: KeyPrefix::new(prefix.as_bytes())?, dry_run: false, sample: 0 };
        let o = engine::delete(psor, &opts, engine, progress.clone())?;
        out.push(DeleteReport {
            version: v.version.clone(),
            prefix: prefix.to_string(),
            counts: o.counts,
            failures: o.failures,
        });
        if o.interrupted {
            return Ok((out, true));
        }
    }
    Ok((out, false))
}

pub(super) fn planned(versions: &[VersionStatus]) -> Vec<DeleteReport> {
    versions
        .iter()
        .map(|v| DeleteReport {
            version: v.version.clone(),
            prefix: v.prefix.clone(),
            counts: Counts { matched: v.keys, done: v.keys, ..Counts::default() },
            failures: Vec::new(),
        })
        .collect()
}

pub(super) fn check_expected(pac: &PacName, remove: &[VersionStatus], expect: Option<&[ProductVersion]>) -> Result<()> {
    if let Some(expect) = expect {
        if let Some(v) = remove.iter().find(|v| !expect.contains(&v.version)) {
            return Err(Error::State {
                pac: pac.clone(),
                reason: format!(
                    "version {} appeared since the plan was confirmed; nothing was deleted, look again",
                    v.version
                ),
            });
        }
    }
    Ok(())
}
