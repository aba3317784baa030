//! `psor rehearse`: the incompatible upgrade procedure, step by step, on an embedded store.
//!
//! With no PSOR at all it builds a realistic PAC at an old version (`sample`) in a `file:`
//! store and runs every psor-relevant step of the procedure on it, named as the procedure
//! names them, with timings. With a live source it first copies the PAC's stores from the
//! source into the store (reads only: nothing is ever written to the source) and rehearses
//! there, so a site sees what the real run would do and how long each step takes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::{backup, check_compat, create, key_conn, rem_old_pac, sample, set_mode, status};
use super::{CreateOptions, Error, RemOldPacOptions, Result, SampleOptions, SetModeOptions, StatusReport};
use crate::connect::Psor;
use crate::engine::{self, CopyOptions, EngineOptions};
use crate::keys::{display_key, KeyPrefix};
use crate::layout::{Catalog, PacMode, PacName, ProductVersion};
use crate::progress::Progress;

/// Where the rehearsal's PAC comes from.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per rehearsal, moved once; a Box would only make callers write Box::new"
)]
pub enum RehearsalSource {
    /// A sample PAC at this version with about this many resource-table keys.
    Sample {
        /// The old version.
        version: ProductVersion,
        /// Resource-table keys.
        keys: usize,
    },
    /// The PAC as it is in a live PSOR (read only).
    Live(Psor),
}

/// What to rehearse.
#[derive(Clone, Debug)]
pub struct RehearseOptions {
    /// The embedded store to rehearse in (connected as `file:PATH`); it must not hold the PAC yet.
    pub store: Psor,
    /// The PAC.
    pub pac: PacName,
    /// The product version to upgrade to.
    pub to: ProductVersion,
    /// Where the PAC comes from.
    pub source: RehearsalSource,
    /// Where the backup of the old PAC's stores is written (and verified) before they go.
    pub backup: PathBuf,
    /// Replace an existing (older-or-equal psor snapshot) file at `backup`; without it, an
    /// existing file is refused before the rehearsal starts.
    pub overwrite_backup: bool,
}

/// One step of the procedure as rehearsed.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// The step's number in the vendor's procedure (`5`, `6`, `10`, …), or `setup`.
    pub procedure_step: &'static str,
    /// What the step is, in the procedure's words.
    pub name: String,
    /// The psor command a real run uses for it (its caspac form where there is one).
    pub command: String,
    /// What it did.
    pub summary: String,
    /// Keys written or removed by the step.
    pub keys: u64,
    /// Wall time.
    pub seconds: f64,
    /// True for a step psor only imitates (regions stopping): the real run has no command for it.
    pub simulated: bool,
}

/// The whole rehearsal.
#[derive(Clone, Debug, Serialize)]
pub struct Rehearsal {
    /// The PAC.
    pub pac: PacName,
    /// The old version (the one Running before the upgrade).
    pub from: ProductVersion,
    /// The new version.
    pub to: ProductVersion,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The PSOR (the store) at the end.
    pub final_status: StatusReport,
    /// Where the old PAC's backup is.
    pub backup: PathBuf,
    /// Wall time of everything.
    pub seconds: f64,
}

/// Sees the rehearsal as it goes: a progress counter for each step, and each finished step.
pub trait Observer {
    /// A step starts; the returned counters are handed to the step's work.
    fn start(&mut self, procedure_step: &'static str, name: &str) -> Arc<Progress>;
    /// A step finished.
    fn done(&mut self, step: &Step);
}

struct Runner<'a> {
    observer: &'a mut dyn Observer,
    steps: Vec<Step>,
}

impl Runner<'_> {
    /// Runs one step; `work` returns (summary, keys).
    fn step(
        &mut self,
        procedure_step: &'static str,
        name: &str,
        command: String,
        simulated: bool,
        work: impl FnOnce(Arc<Progress>) -> Result<(String, u64)>,
    ) -> Result<()> {
        let progress = self.observer.start(procedure_step, name);
        let started = Instant::now();
        let (summary, keys) = work(progress)?;
        let step = Step {
            procedure_step,
            name: name.to_string(),
            command,
            summary,
            keys,
            seconds: started.elapsed().as_secs_f64(),
            simulated,
        };
        self.observer.done(&step);
        self.steps.push(step);
        Ok(())
    }
}

/// Rehearses the incompatible upgrade of `opts.pac` to `opts.to` in `opts.store`.
pub fn rehearse(
    opts: &RehearseOptions,
    catalog: &Catalog,
    engine: &EngineOptions,
    observer: &mut dyn Observer,
) -> Result<Rehearsal> {
    let started = Instant::now();
    let (store, pac, to) = (&opts.store, &opts.pac, &opts.to);
    let mut run = Runner { observer, steps: Vec::new() };
    // The backup's file is checked before anything is written, so a refused one costs nothing.
    let mut in_use: Vec<PathBuf> = store.store_path().into_iter().collect();
    if let RehearsalSource::Live(src) = &opts.source {
        in_use.extend(src.store_path());
    }
    crate::snapshot::check_output_path(&opts.backup, opts.overwrite_backup, &in_use)?;
    if status(store, catalog, Some(pac), engine, Arc::new(Progress::new()))?.pacs.iter().any(|p| !p.versions.is_empty())
    {
        return Err(Error::State {
            pac: pac.clone(),
            reason: "the rehearsal store already holds this PAC; use a fresh store".into(),
        });
    }

    // Setup: the PAC as it is before the upgrade.
    let from = match &opts.source {
        RehearsalSource::Sample { version, keys } => {
            let so = SampleOptions { keys: *keys, regions: 2, mode: PacMode::Running, large_values: 3 };
            let mut from = version.clone();
            run.step(
                "setup",
                "Build a sample PSOR: the PAC at its old version",
                format!("psor sample {pac} --product-version {version}"),
                false,
                |p| {
                    let s = sample(store, catalog, pac, version, &so, p)?;
                    from = s.version.clone();
                    Ok((
                        format!(
                            "{} keys in {} stores, {} regions registered, {} with an expiry, {} large PPT values",
                            s.keys,
                            s.stores.len(),
                            s.regions.len(),
                            s.with_ttl,
                            s.large_values
                        ),
                        s.keys,
                    ))
                },
            )?;
            from
        }
        RehearsalSource::Live(source) => {
            let st = status(source, catalog, Some(pac), engine, Arc::new(Progress::new()))?;
            let found = st
                .pacs
                .into_iter()
                .find(|p| &p.pac == pac)
                .ok_or_else(|| Error::UnknownPac { pac: pac.clone(), known: Vec::new() })?;
            let from = found.running().map(|v| v.version.clone()).ok_or_else(|| Error::State {
                pac: pac.clone(),
                reason: "no version is Running in the source PSOR".into(),
            })?;
            let template = catalog.key_template();
            let prefixes: Vec<KeyPrefix> = found
                .versions
                .iter()
                .map(|v| KeyPrefix::new(template.prefix(pac, &v.version).as_bytes().to_vec()))
                .collect::<crate::Result<_>>()?;
            run.step(
                "setup",
                "Copy the PAC from the live PSOR into the rehearsal store (read only on the source)",
                "psor copy --prefix <each version's prefix> --target file:…".to_string(),
                false,
                |p| {
                    let mut keys = 0;
                    for prefix in &prefixes {
                        let co = CopyOptions {
                            from: prefix.clone(),
                            to: prefix.clone(),
                            replace: false,
                            move_keys: false,
                            dry_run: false,
                            sample: 0,
                        };
                        let o = engine::copy(source, Some(store), &co, engine, p.clone())?;
                        if o.interrupted {
                            // A rehearsal is throwaway: stopping it is the whole answer.
                            return Err(crate::Error::Interrupted.into());
                        }
                        keys += o.counts.done;
                    }
                    let names: Vec<String> = prefixes.iter().map(ToString::to_string).collect();
                    Ok((format!("{keys} keys of {} copied from {}", names.join(", "), source.spec().redacted()), keys))
                },
            )?;
            from
        }
    };

    // Step 5: check compatibility.
    let mut compatible = false;
    run.step(
        "5",
        "Check the compatibility of the updated product against the PSOR",
        format!("psor check-compat {pac} --product-version {to}  (caspac -aCheckCompat={pac})"),
        false,
        |p| {
            let c = check_compat(store, catalog, pac, to, engine, p)?;
            compatible = c.compatible;
            Ok((
                format!(
                    "{} (layout {}, epoch {}) → {} (layout {}, epoch {}): {} upgrade process",
                    c.current.version,
                    c.current.layout,
                    c.current.epoch,
                    c.product.version,
                    c.product.layout,
                    c.product.epoch,
                    c.process
                ),
                0,
            ))
        },
    )?;
    if compatible {
        return Err(Error::Compatible {
            pac: pac.clone(),
            reason: format!("{from} and {to} are compatible: there is no incompatible upgrade to rehearse"),
        });
    }

    // Step 6: the first updated region starts in upgrade mode and creates the new stores.
    run.step(
        "6",
        "Start the first region in upgrade mode: create the new PAC's stores",
        format!("psor create {pac} --product-version {to}  (casstart /s:u)"),
        false,
        |p| {
            let o = create(store, catalog, pac, to, &CreateOptions::default(), engine, p)?;
            Ok((
                format!(
                    "{} keys carried into {} stores, {} fresh stores, new PAC in mode Upgrade",
                    o.counts.done,
                    o.carried.len(),
                    o.fresh.len()
                ),
                o.counts.done,
            ))
        },
    )?;

    // Still step 6: prove the carried stores hold what the old ones hold, before anything
    // relies on them.
    run.step(
        "6",
        "Verify the new PAC's carried stores against the old PAC's",
        format!("psor verify {pac} --from-version {from} --to-version {to}"),
        false,
        |p| {
            let mut total = crate::verify::VerifyCounts::default();
            let stores = super::carried_stores(catalog, pac, &from, to)?;
            for s in &stores {
                let opts = crate::verify::VerifyOptions::new(s.from.clone(), s.to.clone());
                total.add(&crate::verify::verify(store, None, &opts, engine, p.clone())?.counts);
            }
            if total.differences() + total.failed > 0 {
                return Err(Error::State {
                    pac: pac.clone(),
                    reason: format!(
                        "verify after create: {} keys differ and {} could not be read ({total:?})",
                        total.differences(),
                        total.failed
                    ),
                });
            }
            Ok((format!("{} keys the same in {} carried stores, no difference", total.same, stores.len()), 0))
        },
    )?;

    // Step 10: the new PAC takes batch work.
    run.step(
        "10",
        "Enable the new PAC to accept batch work",
        format!("psor set-mode {pac} running --product-version {to}  (caspac -aSetMode=Running)"),
        false,
        |p| {
            let m = set_mode(
                store,
                catalog,
                pac,
                to,
                SetModeOptions { mode: PacMode::Running, dry_run: false },
                engine,
                p,
            )?;
            Ok((format!("{} {:?} → {:?}", m.version, m.before.mode, m.after.mode), 0))
        },
    )?;

    // Step 12: the old PAC stops taking batch work.
    run.step(
        "12",
        "Stop batch work in the old PAC",
        format!("psor set-mode {pac} quiesce --product-version {from}  (caspac -aSetMode=Quiesce)"),
        false,
        |p| {
            let m = set_mode(
                store,
                catalog,
                pac,
                &from,
                SetModeOptions { mode: PacMode::Quiesce, dry_run: false },
                engine,
                p,
            )?;
            Ok((format!("{} {:?} → {:?}", m.version, m.before.mode, m.after.mode), 0))
        },
    )?;

    // Step 13: the old PAC's regions stop (and leave the registry). Only imitated here.
    run.step(
        "13",
        "Shut down the remaining regions of the old PAC",
        "casstop -r<region> on each old region (not a psor command)".into(),
        true,
        |_| {
            let layout = catalog.layout_for(&from)?;
            let key = layout.keys(pac, &from).region_registry_key()?;
            let mut con = key_conn(store, &key)?;
            let n: u64 = con.retry("UNLINK", Some(&key), |c| redis::cmd("UNLINK").arg(&key).query(c))?;
            Ok((format!("regions left the registry {} (as stopping regions do)", display_key(&key)), n))
        },
    )?;

    // Step 14: back up what will go, verify the backup, then remove the old PAC's stores.
    run.step(
        "14",
        "Back up the old PAC's stores, and verify the backup",
        format!("psor rem-old-pac {pac} --backup FILE"),
        false,
        |p| {
            let b = backup(
                store,
                catalog,
                pac,
                std::slice::from_ref(&from),
                &opts.backup,
                opts.overwrite_backup,
                engine,
                p.clone(),
            )?;
            // The backup against the live keys, content and all (what rem-old-pac --backup does).
            let prefix = KeyPrefix::new(catalog.key_template().prefix(pac, &from).as_bytes().to_vec())?;
            let vo = crate::verify::VerifyOptions::new(prefix.clone(), prefix);
            let checked = crate::verify::verify_snapshot(store, &opts.backup, &vo, engine, p)?;
            if !checked.is_same() {
                return Err(Error::State {
                    pac: pac.clone(),
                    reason: format!(
                        "the backup differs from the live keys ({:?}); nothing was removed",
                        checked.counts
                    ),
                });
            }
            Ok((
                format!(
                    "{} keys, {} bytes on disk, every frame's checksum verified, {} keys the same as the live ones: {}",
                    b.keys,
                    b.file_bytes,
                    checked.counts.same,
                    b.path.display()
                ),
                b.keys,
            ))
        },
    )?;
    run.step(
        "14",
        "Remove the old PAC's stores",
        format!("psor rem-old-pac {pac}  (caspac -aRemOldPAC={pac})"),
        false,
        |p| {
            let r = rem_old_pac(store, catalog, pac, &RemOldPacOptions::default(), engine, p)?;
            let removed: u64 = r.deleted.iter().map(|d| d.counts.done).sum();
            let versions: Vec<String> = r.deleted.iter().map(|d| d.version.to_string()).collect();
            Ok((format!("{removed} keys of version {} removed; {} kept", versions.join(", "), r.keep.version), removed))
        },
    )?;

    store.flush()?;
    let final_status = status(store, catalog, Some(pac), engine, Arc::new(Progress::new()))?;
    Ok(Rehearsal {
        pac: pac.clone(),
        from,
        to: to.clone(),
        steps: run.steps,
        final_status,
        backup: opts.backup.clone(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
