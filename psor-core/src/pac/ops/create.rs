//! `create`: a new version's PAC record (begun with a `creating` marker, so a rerun
//! completes it) and the stores it carries over from the current version.

#[allow(clippy::wildcard_imports)]
use super::*;

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

/// One store an upgrade from one version to another carries: what `create` copies and
/// `verify` compares.
#[derive(Clone, Debug)]
pub struct CarryPair {
    /// The store's name at the new version.
    pub store: String,
    /// The store it comes from at the old version (another name for `rename-store`).
    pub from_store: String,
    /// Where its keys are at the old version.
    pub from: KeyPrefix,
    /// Where they are at the new version.
    pub to: KeyPrefix,
}

/// The stores the catalog carries from `from` to `to` for `pac` (stores new at `to`, with
/// nothing to carry from, are left out).
pub fn carried_stores(
    catalog: &Catalog,
    pac: &PacName,
    from: &ProductVersion,
    to: &ProductVersion,
) -> Result<Vec<CarryPair>> {
    let (old, new) = (catalog.layout_for(from)?, catalog.layout_for(to)?);
    let (plan, _) = carry_plan(pac, (old, from), (new, to))?;
    let mut out = Vec::new();
    for (store, from_store, src, dst) in plan {
        if let Some(src) = src {
            out.push(CarryPair { store, from_store, from: KeyPrefix::new(src)?, to: KeyPrefix::new(dst)? });
        }
    }
    Ok(out)
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
        let current = crate::pac::decode_record(key, pairs)?;
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
