//! The lifecycle operations of the incompatible upgrade: check-compat, create, set-mode,
//! rem-old-pac and init-pac.
//!
//! Each one reads the PAC's state with [`super::status`], decides from the catalog, and only
//! then writes: metadata with `WATCH`/`MULTI` on the tagged record key, stores with the
//! engine under exact (PAC, version) prefixes. Destructive operations have a dry run that
//! returns the same report without writing, and take the list of versions the caller
//! confirmed, so a PSOR that changed between the prompt and the work is refused.

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

// ---- check-compat ----------------------------------------------------------------------

/// What `check-compat` found.
#[derive(Debug, Clone, Serialize)]
pub struct CompatReport {
    /// The PAC.
    pub pac: PacName,
    /// The PAC's current version (the `Running` one, else the highest with a record).
    pub current: VersionSide,
    /// The product version psor acts for.
    pub product: VersionSide,
    /// True when both layouts share an epoch.
    pub compatible: bool,
    /// `compatible` or `incompatible`: which upgrade process applies.
    pub process: &'static str,
    /// The catalog's answer, naming both layouts and epochs.
    pub verdict: Compat,
}

/// `caspac -aCheckCompat=PAC`: is `product` compatible with the PAC's current version?
/// Unknown PAC or version is an error ([`Error::is_unknown`]); incompatible is an answer.
pub fn check_compat(
    psor: &Psor,
    catalog: &Catalog,
    pac: &PacName,
    product: &ProductVersion,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<CompatReport> {
    // The product version first: an unknown version is an answer without a scan.
    let product_side = side(catalog, product, None)?;
    let st = require_pac(pac_status(psor, catalog, pac, engine, progress)?)?;
    let cur = current(&st).ok_or_else(|| Error::State {
        pac: pac.clone(),
        reason: format!("no version has a PAC record (versions: {}); run `psor init-pac`", st.describe_versions()),
    })?;
    let current_side = side(catalog, &cur.version, cur.mode())?;
    let verdict = catalog.compatibility(&cur.version, product)?;
    let compatible = verdict.is_compatible();
    Ok(CompatReport {
        pac: pac.clone(),
        current: current_side,
        product: product_side,
        compatible,
        process: if compatible { "compatible" } else { "incompatible" },
        verdict,
    })
}

// ---- create ----------------------------------------------------------------------------

/// How to run `create`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Count what would be copied; write nothing.
    pub dry_run: bool,
    /// Create a version older than the `Running` one (otherwise refused: a downgrade).
    pub allow_downgrade: bool,
}

/// One store `create` carried (copied) from the old version.
#[derive(Debug, Clone, Serialize)]
pub struct CarriedStore {
    /// The new version's store.
    pub store: String,
    /// The old version's store it comes from.
    pub from_store: String,
    /// The old store's prefix, escaped.
    pub from_prefix: String,
    /// The new store's prefix, escaped.
    pub to_prefix: String,
    /// What happened to its keys (for a dry run: what would).
    pub counts: Counts,
    /// Why nothing was copied, when nothing could be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What `create` did.
#[derive(Debug, Clone, Serialize)]
pub struct CreateOutcome {
    /// The PAC.
    pub pac: PacName,
    /// The running version the stores were carried from.
    pub from: VersionSide,
    /// The new version.
    pub to: VersionSide,
    /// True when a record of the new version already existed (a rerun).
    pub resumed: bool,
    /// True when the version already existed, in mode `Upgrade`, with its create complete:
    /// nothing was done or written.
    pub already_complete: bool,
    /// Nothing was written.
    pub dry_run: bool,
    /// True once every carried key is in place and the record no longer says "creating".
    pub complete: bool,
    /// The carried stores.
    pub carried: Vec<CarriedStore>,
    /// Stores created empty (`upgrade = "fresh"`).
    pub fresh: Vec<String>,
    /// The new version's record after the run (absent for a dry run of a first create).
    pub record: Option<PacRecord>,
    /// The sum over the carried stores.
    pub counts: Counts,
    /// The first failed keys.
    pub failures: Vec<KeyFailure>,
    /// The first conflicting keys (a target existing with other content, left alone).
    pub conflict_keys: Vec<String>,
    /// Wall time.
    pub seconds: f64,
    /// Stopped before the end (Ctrl-C): the counts are exact, the record still says
    /// "creating", and running the same `create` again finishes the job.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// The stores `create` carries: (new store, old store name, old store prefix, new prefix).
type CarryPlan = Vec<(String, String, Option<Vec<u8>>, Vec<u8>)>;

fn carry_plan(
    pac: &PacName,
    from: (&Layout, &ProductVersion),
    to: (&Layout, &ProductVersion),
) -> Result<(CarryPlan, Vec<String>)> {
    let (old_keys, new_keys) = (from.0.keys(pac, from.1), to.0.keys(pac, to.1));
    let (mut carry, mut fresh) = (Vec::new(), Vec::new());
    for s in &to.0.stores {
        match &s.upgrade {
            Upgrade::Fresh => fresh.push(s.name.clone()),
            Upgrade::Carry { transform, from_store } => {
                if s.placement == Placement::Tagged {
                    return Err(Error::Unsupported(format!(
                        "layout {} store {}: carrying a tagged store is not supported (its hash tag names the version, \
                         so a re-prefixed copy would be mis-tagged); make it `upgrade = \"fresh\"` or spread",
                        to.0.name, s.name
                    )));
                }
                let src_name = match transform.as_str() {
                    "identity" => s.name.clone(),
                    "rename-store" => from_store.clone().unwrap_or_else(|| s.name.clone()),
                    other => return Err(Error::Unsupported(format!("transform {other:?} is not implemented"))),
                };
                let src = from.0.store(&src_name);
                if let Some(src) = src {
                    if src.placement == Placement::Tagged {
                        return Err(Error::Unsupported(format!(
                            "layout {} store {} carries from tagged store {} of layout {}: not supported",
                            to.0.name, s.name, src_name, from.0.name
                        )));
                    }
                }
                let src_prefix = src.map(|_| old_keys.store_prefix(&src_name)).transpose()?;
                carry.push((s.name.clone(), src_name, src_prefix, new_keys.store_prefix(&s.name)?));
            }
        }
    }
    Ok((carry, fresh))
}

/// What `casstart /s:u` does to the PSOR: creates `product`'s stores next to the running
/// version's, with a PAC record in mode `Upgrade`; `carry` stores are copied with the engine
/// (existing identical keys count as unchanged, so a rerun after an interruption finishes
/// the job with no duplicates and no loss). Until the copy is complete the record carries
/// [`CREATING_FIELD`], and [`set_mode`] refuses to make the version `Running`.
pub fn create(
    psor: &Psor,
    catalog: &Catalog,
    pac: &PacName,
    product: &ProductVersion,
    opts: &CreateOptions,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<CreateOutcome> {
    let started = Instant::now();
    let new_layout = catalog.layout_for(product)?;
    let st = require_pac(pac_status(psor, catalog, pac, engine, progress.clone())?)?;
    let existing = st.version(product).and_then(|v| v.record.clone());
    if let Some(r) = &existing {
        if r.record.mode != PacMode::Upgrade {
            return Err(Error::State {
                pac: pac.clone(),
                reason: format!(
                    "version {product} already exists in mode {}; create only makes a new version (in mode Upgrade)",
                    r.record.mode
                ),
            });
        }
    }
    let source =
        st.versions.iter().rev().find(|v| v.mode() == Some(PacMode::Running) && &v.version != product).ok_or_else(
            || Error::State {
                pac: pac.clone(),
                reason: format!(
                    "no other version is in mode Running to create {product} from (versions: {})",
                    st.describe_versions()
                ),
            },
        )?;
    if product < &source.version && !opts.allow_downgrade {
        return Err(Error::State {
            pac: pac.clone(),
            reason: format!(
                "product version {product} is older than the Running version {}: that is a downgrade, not an upgrade; \
                 give --allow-downgrade if you really mean to create it",
                source.version
            ),
        });
    }
    let old_layout = catalog.layout_for(&source.version)?;
    if old_layout.epoch == new_layout.epoch {
        return Err(Error::Compatible {
            pac: pac.clone(),
            reason: format!(
                "product version {product} (layout {}) is compatible with the running version {} (layout {}): both are epoch {}",
                new_layout.name, source.version, old_layout.name, new_layout.epoch
            ),
        });
    }
    let (plan, fresh) = carry_plan(pac, (old_layout, &source.version), (new_layout, product))?;
    let new_keys = new_layout.keys(pac, product);
    let rkey = new_keys.pac_record_key()?;
    let mut out = CreateOutcome {
        pac: pac.clone(),
        from: side(catalog, &source.version, source.mode())?,
        to: side(catalog, product, Some(PacMode::Upgrade))?,
        resumed: existing.is_some(),
        already_complete: false,
        dry_run: opts.dry_run,
        complete: false,
        carried: Vec::new(),
        fresh,
        record: existing.as_ref().map(|r| r.record.clone()),
        counts: Counts::default(),
        failures: Vec::new(),
        conflict_keys: Vec::new(),
        seconds: 0.0,
        interrupted: false,
    };
    if existing.as_ref().is_some_and(|r| !r.creating) {
        // A finished create: the version is there, complete. Rerunning it does nothing (no
        // copy, no "creating" marker, no new updated_ms).
        out.resumed = false;
        out.already_complete = true;
        out.complete = true;
        out.seconds = started.elapsed().as_secs_f64();
        return Ok(out);
    }

    let mut con = key_conn(psor, &rkey)?;
    if !opts.dry_run {
        let now = now_ms();
        let record = PacRecord {
            pac: pac.clone(),
            version: product.clone(),
            mode: PacMode::Upgrade,
            layout: new_layout.name.clone(),
            epoch: new_layout.epoch.clone(),
            created_ms: now,
            updated_ms: now,
        };
        out.record = Some(begin_create(&mut con, &rkey, record, &source.version)?.record);
    }

    for (store, from_store, src_prefix, dst_prefix) in plan {
        if progress.is_cancelled() {
            out.interrupted = true;
            break;
        }
        let mut carried = CarriedStore {
            store,
            from_store: from_store.clone(),
            from_prefix: src_prefix.as_deref().map(display_key).unwrap_or_default(),
            to_prefix: display_key(&dst_prefix),
            counts: Counts::default(),
            note: None,
        };
        let Some(src_prefix) = src_prefix else {
            carried.note = Some(format!("layout {} has no store {from_store}: created empty", old_layout.name));
            out.carried.push(carried);
            continue;
        };
        let copy = CopyOptions {
            from: KeyPrefix::new(src_prefix)?,
            to: KeyPrefix::new(dst_prefix)?,
            replace: false,
            move_keys: false,
            dry_run: opts.dry_run,
            sample: 0,
        };
        let o = engine::copy(psor, None, &copy, engine, progress.clone())?;
        carried.counts = o.counts;
        out.counts += o.counts;
        out.failures.extend(o.failures);
        out.conflict_keys.extend(o.conflict_keys);
        out.carried.push(carried);
        if o.interrupted {
            // The record keeps its "creating" marker: the rerun copies what is missing.
            out.interrupted = true;
            break;
        }
    }

    if !opts.dry_run && !out.interrupted && out.counts.failed == 0 && out.counts.conflicts == 0 {
        let now = now_ms();
        con.retry("HDEL", Some(&rkey), |c| {
            redis::pipe()
                .atomic()
                .cmd("HDEL")
                .arg(&rkey)
                .arg(CREATING_FIELD)
                .ignore()
                .cmd("HSET")
                .arg(&rkey)
                .arg("updated_ms")
                .arg(now.to_string())
                .ignore()
                .query::<()>(c)
        })?;
        out.complete = true;
        out.record = read_record(&mut con, &rkey)?.map(|r| r.record);
    }
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// Writes the new version's record with the "creating" marker, or (on a rerun) puts the
/// marker back on the record that is there; returns the record now stored.
fn begin_create(con: &mut NodeConn, key: &[u8], record: PacRecord, from: &ProductVersion) -> Result<StoredRecord> {
    for round in 0..TXN_ROUNDS {
        txn_step!(con, key, "WATCH", round, redis::cmd("WATCH").arg(key).query::<()>(con.raw()));
        let pairs: Vec<(Vec<u8>, Vec<u8>)> =
            txn_step!(con, key, "HGETALL", round, redis::cmd("HGETALL").arg(key).query(con.raw()));
        let current = super::decode_record(key, pairs)?;
        let c = con.raw();
        let mut pipe = redis::pipe();
        pipe.atomic();
        match &current {
            Some(r) if r.record.mode != PacMode::Upgrade => {
                let _ = redis::cmd("UNWATCH").query::<()>(c);
                return Err(Error::State {
                    pac: record.pac.clone(),
                    reason: format!("version {} changed to mode {} while create ran", record.version, r.record.mode),
                });
            }
            Some(_) => {
                pipe.cmd("HSET").arg(key).arg(CREATING_FIELD).arg(from.as_str()).ignore();
            }
            None => {
                let mut cmd = redis::cmd("HSET");
                cmd.arg(key);
                for (f, v) in record.to_hash() {
                    cmd.arg(f).arg(v);
                }
                cmd.arg(CREATING_FIELD).arg(from.as_str());
                pipe.add_command(cmd).ignore();
            }
        }
        let done: Option<()> = txn_step!(con, key, "MULTI/EXEC", round, pipe.query(con.raw()));
        if done.is_some() {
            return Ok(match current {
                Some(r) => StoredRecord { creating: true, ..r },
                None => StoredRecord { record, creating: true },
            });
        }
    }
    Err(Error::Concurrent { key: display_key(key) })
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


// ---- set-mode --------------------------------------------------------------------------

/// What `set-mode` did.
#[derive(Debug, Clone, Serialize)]
pub struct SetModeOutcome {
    /// The PAC.
    pub pac: PacName,
    /// The product version psor acted for.
    pub product_version: ProductVersion,
    /// The PAC version changed (the record compatible with the product version).
    pub version: ProductVersion,
    /// The record's key, escaped.
    pub key: String,
    /// The record before.
    pub before: PacRecord,
    /// The record after (for a dry run: what it would be).
    pub after: PacRecord,
    /// False when the PAC already had that mode (a no-op).
    pub changed: bool,
    /// Nothing was written.
    pub dry_run: bool,
}

/// What `set-mode` is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct SetModeOptions {
    /// The mode wanted: `Running` or `Quiesce`.
    pub mode: PacMode,
    /// Check the change and report it; write nothing.
    pub dry_run: bool,
}

/// `caspac -aSetMode=Running|Quiesce` from a region of product version `product`: changes
/// the mode of the PAC version whose layout is compatible with `product` (the exact version
/// if it has a record, else the highest compatible one), atomically (`WATCH`/`MULTI` on the
/// record key) and only along [`crate::layout::TRANSITIONS`].
pub fn set_mode(
    psor: &Psor,
    catalog: &Catalog,
    pac: &PacName,
    product: &ProductVersion,
    opts: SetModeOptions,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<SetModeOutcome> {
    let SetModeOptions { mode: to, dry_run } = opts;
    if to == PacMode::Upgrade {
        return Err(crate::Error::Refused(
            "mode Upgrade is set only by `psor create`; set-mode takes running or quiesce".into(),
        )
        .into());
    }
    let product_layout = catalog.layout_for(product)?;
    // The exact version first (one HGETALL); otherwise find the PAC's compatible version.
    let exact = product_layout.keys(pac, product).pac_record_key()?;
    let mut con = key_conn(psor, &exact)?;
    let (version, key) = if read_record(&mut con, &exact)?.is_some() {
        (product.clone(), exact)
    } else {
        let st = require_pac(pac_status(psor, catalog, pac, engine, progress)?)?;
        let v = st
            .versions
            .iter()
            .rev()
            .filter(|v| v.record.is_some())
            .find(|v| catalog.layout_for(&v.version).is_ok_and(|l| l.epoch == product_layout.epoch))
            .ok_or_else(|| Error::NoCompatibleVersion {
                pac: pac.clone(),
                product_version: product.clone(),
                versions: st.describe_versions(),
            })?;
        let key = catalog.layout_for(&v.version)?.keys(pac, &v.version).pac_record_key()?;
        con = key_conn(psor, &key)?;
        (v.version.clone(), key)
    };

    for round in 0..TXN_ROUNDS {
        txn_step!(&mut con, &key, "WATCH", round, redis::cmd("WATCH").arg(&key).query::<()>(con.raw()));
        let pairs: Vec<(Vec<u8>, Vec<u8>)> =
            txn_step!(&mut con, &key, "HGETALL", round, redis::cmd("HGETALL").arg(&key).query(con.raw()));
        let c = con.raw();
        let unwatch = |c: &mut dyn redis::ConnectionLike| {
            let _ = redis::cmd("UNWATCH").query::<()>(c);
        };
        let Some(cur) = super::decode_record(&key, pairs).inspect_err(|_| unwatch(c))? else {
            unwatch(c);
            return Err(Error::State { pac: pac.clone(), reason: format!("the record of version {version} vanished") });
        };
        let after = match cur.record.with_mode(to, now_ms()) {
            Ok(a) => a,
            Err(source) => {
                unwatch(c);
                return Err(Error::Transition { pac: pac.clone(), version, source });
            }
        };
        if to == PacMode::Running && cur.creating && cur.record.mode != PacMode::Running {
            unwatch(c);
            return Err(Error::State {
                pac: pac.clone(),
                reason: format!(
                    "version {version} is still being created (an interrupted `psor create`); rerun \
                     `psor create {pac} --product-version {version}` first"
                ),
            });
        }
        let changed = cur.record.mode != to;
        if dry_run || !changed {
            unwatch(c);
            let after = if changed { after } else { cur.record.clone() };
            return Ok(SetModeOutcome {
                pac: pac.clone(),
                product_version: product.clone(),
                version,
                key: display_key(&key),
                before: cur.record,
                after,
                changed,
                dry_run,
            });
        }
        let exec = redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg(&key)
            .arg("mode")
            .arg(after.mode.as_str())
            .arg("updated_ms")
            .arg(after.updated_ms.to_string())
            .ignore()
            .query(c);
        let done: Option<()> = txn_step!(&mut con, &key, "MULTI/EXEC", round, exec);
        if done.is_some() {
            return Ok(SetModeOutcome {
                pac: pac.clone(),
                product_version: product.clone(),
                version,
                key: display_key(&key),
                before: cur.record,
                after,
                changed,
                dry_run,
            });
        }
    }
    Err(Error::Concurrent { key: display_key(&key) })
}

// ---- rem-old-pac and init-pac ----------------------------------------------------------

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

fn regions_blocker(v: &VersionStatus) -> Option<Blocker> {
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
fn delete_versions(
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

fn planned(versions: &[VersionStatus]) -> Vec<DeleteReport> {
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

fn check_expected(pac: &PacName, remove: &[VersionStatus], expect: Option<&[ProductVersion]>) -> Result<()> {
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
