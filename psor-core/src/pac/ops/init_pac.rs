//! `init-pac`: every version of a PAC deleted, to start it afresh.

use super::removal::{check_expected, delete_versions, planned, regions_blocker};
#[allow(clippy::wildcard_imports)]
use super::*;

/// How to run `init-pac`.
#[derive(Debug, Clone, Default)]
pub struct InitPacOptions {
    /// Report what would be removed; write nothing.
    pub dry_run: bool,
    /// Go ahead even though regions are registered.
    pub force: bool,
    /// The versions the caller confirmed; if the PSOR now has another, refuse.
    pub expect: Option<Vec<ProductVersion>>,
}

/// What `init-pac` found and did.
#[derive(Debug, Clone, Serialize)]
pub struct InitPacOutcome {
    /// The PAC.
    pub pac: PacName,
    /// The version initialised.
    pub version: VersionSide,
    /// The versions whose stores are removed (for a dry run: would be).
    pub remove: Vec<VersionStatus>,
    /// Registered regions (overridden with `force`).
    pub blockers: Vec<Blocker>,
    /// True when blockers were overridden.
    pub forced: bool,
    /// Nothing was written.
    pub dry_run: bool,
    /// Per removed version: what happened to its keys.
    pub deleted: Vec<DeleteReport>,
    /// The fresh record (absent for a dry run and for an interrupted run).
    pub record: Option<PacRecord>,
    /// Stopped before the end (Ctrl-C): `deleted` is exact, no fresh record was written,
    /// and running the same `init-pac` again finishes the job.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// `caspac -aInitPac=PAC`: removes every store of `pac` (all versions, exactly their
/// prefixes) and writes a fresh PAC record for `product` in mode `Running`. A cold start:
/// refuses while regions are registered unless `force`.
pub fn init_pac(
    psor: &Psor,
    catalog: &Catalog,
    pac: &PacName,
    product: &ProductVersion,
    opts: &InitPacOptions,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<InitPacOutcome> {
    let layout = catalog.layout_for(product)?;
    let rkey = layout.keys(pac, product).pac_record_key()?;
    let st = pac_status(psor, catalog, pac, engine, progress.clone())?;
    let blockers: Vec<Blocker> = st.versions.iter().filter_map(regions_blocker).collect();
    let mut out = InitPacOutcome {
        pac: pac.clone(),
        version: side(catalog, product, Some(PacMode::Running))?,
        deleted: planned(&st.versions),
        remove: st.versions,
        blockers,
        forced: false,
        dry_run: opts.dry_run,
        record: None,
        interrupted: false,
    };
    if opts.dry_run {
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
    if out.interrupted {
        // The old record (if its version's keys were not reached) or none is left: the
        // rerun deletes what remains and then writes the fresh record.
        return Ok(out);
    }
    let now = now_ms();
    let record = PacRecord {
        pac: pac.clone(),
        version: product.clone(),
        mode: PacMode::Running,
        layout: layout.name.clone(),
        epoch: layout.epoch.clone(),
        created_ms: now,
        updated_ms: now,
    };
    let mut con = key_conn(psor, &rkey)?;
    con.retry("MULTI/EXEC", Some(&rkey), |c| {
        let mut hset = redis::cmd("HSET");
        hset.arg(&rkey);
        for (f, v) in record.to_hash() {
            hset.arg(f).arg(v);
        }
        redis::pipe().atomic().cmd("DEL").arg(&rkey).ignore().add_command(hset).ignore().query::<()>(c)
    })?;
    out.record = Some(record);
    Ok(out)
}
