//! `set-mode`: one version's mode changed under `WATCH`/`MULTI`, following the allowed
//! transitions.

#[allow(clippy::wildcard_imports)]
use super::*;

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
        let Some(cur) = crate::pac::decode_record(&key, pairs).inspect_err(|_| unwatch(c))? else {
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
