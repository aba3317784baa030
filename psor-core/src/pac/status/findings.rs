//! Orphans and warnings: what in a status report needs a person, decided from the report
//! alone (pure, so each rule is unit-tested without Redis). The definitions are the ones
//! documented in the README's `status` section:
//!
//! Orphans (keys that follow the PAC naming but belong to nothing the catalog knows):
//! * `unknown-version`: a (PAC, version) prefix with keys whose version no `[[version]]`
//!   entry of the catalog maps; all its keys (its stores are not reported separately).
//! * `no-record`: a version the catalog knows, with keys, but no PAC record (a `create` or
//!   `rem-old-pac` that stopped halfway, or keys written by hand): no region uses it.
//! * `unknown-store`: keys under a known version's prefix that no store of its layout claims,
//!   one per first segment (`MyPAC_9.0:tsq:…` → `tsq`).
//!
//! Warnings (the procedure is at risk):
//! * `several-running`: more than one version of a PAC in mode `Running`, one per older one.
//! * `old-version-running`: the `Running` version is not the newest with a record and the
//!   newer one is not in `Upgrade` (old Running + new Upgrade is steps 6–10 of the procedure,
//!   normal; `upgrade-stale` covers it lasting too long).
//! * `upgrade-stale`: a version in mode `Upgrade` whose record's `updated_ms` is older than
//!   [`StatusOptions::upgrade_warn_ms`] before [`StatusOptions::now_ms`].
//! * `queues-in-psor`: a store (known or unknown) whose sub-prefix is one of the catalog's
//!   queue prefixes ([`Catalog::queue_prefixes`]).
//! * `damaged-record`: the version's PAC record cannot be read (not a hash, a mode or
//!   field that does not parse): `set-mode`, `create` and `rem-old-pac` refuse it.
//! * `create-incomplete`: the record still carries `psor_creating` (a `create` that did
//!   not finish): `set-mode running` refuses it until `create` is rerun.
//!
//! Every command an `action` suggests is one that is accepted in the state found (a
//! `create` only where a `Running` version of another epoch, older, can carry it).

use serde::Serialize;

use super::{PacStatus, StatusOptions};
use crate::layout::{Catalog, PacMode, PacName, ProductVersion};

/// What kind of orphan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrphanKind {
    /// A version the catalog does not map.
    UnknownVersion,
    /// A known version with keys but no PAC record.
    NoRecord,
    /// Keys of a known version that no store of its layout claims.
    UnknownStore,
}

/// Keys that follow the PAC naming but belong to nothing the catalog knows.
#[derive(Debug, Clone, Serialize)]
pub struct Orphan {
    /// What kind.
    pub kind: OrphanKind,
    /// The PAC.
    pub pac: PacName,
    /// The version in the key prefix.
    pub version: ProductVersion,
    /// The (PAC, version) prefix, or the unknown store's prefix; escaped.
    pub prefix: String,
    /// The unknown store's name (its first segment), for `unknown-store`.
    pub store: Option<String>,
    /// How many keys.
    pub keys: u64,
    /// What to do.
    pub action: String,
}

/// What kind of warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// More than one version in mode `Running`.
    SeveralRunning,
    /// An older version `Running` while a newer one (not in `Upgrade`) exists.
    OldVersionRunning,
    /// A version in mode `Upgrade` for longer than the threshold.
    UpgradeStale,
    /// TS/TD queues in the PSOR.
    QueuesInPsor,
    /// A PAC record that cannot be read.
    DamagedRecord,
    /// A record left marked `psor_creating` by a `create` that did not finish.
    CreateIncomplete,
}

/// Where the procedure is at risk, and what to do.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    /// What kind.
    pub kind: WarningKind,
    /// The PAC.
    pub pac: PacName,
    /// The version concerned (the one to act on).
    pub version: ProductVersion,
    /// The store concerned, for `queues-in-psor`.
    pub store: Option<String>,
    /// What was found.
    pub message: String,
    /// What to do: the step of the procedure and the psor command.
    pub action: String,
}

/// Would `psor create PAC --product-version V` be accepted for `v`? Only for a version with
/// no record or one in mode `Upgrade`, with another version `Running` that is older and of
/// another epoch (what `create` requires).
fn create_would_work(p: &PacStatus, v: &super::VersionStatus, catalog: &Catalog) -> bool {
    if !matches!(v.mode(), None | Some(PacMode::Upgrade)) {
        return false;
    }
    let Some(running) = p.running().filter(|r| r.version != v.version && r.version < v.version) else {
        return false;
    };
    match (catalog.layout_for(&running.version), catalog.layout_for(&v.version)) {
        (Ok(old), Ok(new)) => old.epoch != new.epoch,
        _ => false,
    }
}

/// The orphans and warnings of the PACs found (see the module documentation).
pub fn findings(pacs: &[PacStatus], catalog: &Catalog, opts: &StatusOptions) -> (Vec<Orphan>, Vec<Warning>) {
    let (mut orphans, mut warnings) = (Vec::new(), Vec::new());
    for p in pacs {
        let pac = &p.pac;
        for v in &p.versions {
            let orphan = |kind, prefix: &str, store: Option<String>, keys, action: String| Orphan {
                kind,
                pac: pac.clone(),
                version: v.version.clone(),
                prefix: prefix.to_owned(),
                store,
                keys,
                action,
            };
            match &v.layout {
                None => orphans.push(orphan(
                    OrphanKind::UnknownVersion,
                    &v.prefix,
                    None,
                    v.keys,
                    format!(
                        "version {} is not in the layout catalog, so psor knows none of its stores: add a [[version]] \
                         entry for it (psor survey --prefix '{}' shows its shape), or, if nothing uses it, remove it \
                         with psor delete --prefix '{}'",
                        v.version, v.prefix, v.prefix
                    ),
                )),
                Some(layout) => {
                    if v.record.is_none() && v.record_error.is_none() {
                        let why = "no PAC record, so no region uses these keys (a create or rem-old-pac that stopped \
                                   halfway, or keys written by hand)";
                        let action = if create_would_work(p, v, catalog) {
                            format!(
                                "{why}: finish with psor create {pac} --product-version {}, or remove them with psor \
                                 delete --prefix '{}'",
                                v.version, v.prefix
                            )
                        } else {
                            // `create` needs an older version Running to carry from: not here.
                            format!("{why}: remove them with psor delete --prefix '{}'", v.prefix)
                        };
                        orphans.push(orphan(OrphanKind::NoRecord, &v.prefix, None, v.keys, action));
                    }
                    for s in v.stores.iter().filter(|s| !s.known) {
                        orphans.push(orphan(
                            OrphanKind::UnknownStore,
                            &s.prefix,
                            Some(s.store.clone()),
                            s.keys,
                            format!(
                                "no store of layout {layout} claims these keys: add the store to your catalog \
                                 (docs/layouts.md; psor survey --prefix '{}' shows its shape) or remove them; \
                                 rem-old-pac and init-pac delete them with the version's prefix",
                                v.prefix
                            ),
                        ));
                    }
                }
            }
            for s in &v.stores {
                if s.sub_prefix.is_empty() || !catalog.is_queue_prefix(&s.sub_prefix) {
                    continue;
                }
                warnings.push(Warning {
                    kind: WarningKind::QueuesInPsor,
                    pac: pac.clone(),
                    version: v.version.clone(),
                    store: Some(s.store.clone()),
                    message: format!("{} keys under {} look like TS/TD queues in the PSOR", s.keys, s.prefix),
                    action: "the procedure requires TS and TD queues in a separate SOR, not the PSOR (they must \
                             survive while the PSOR's stores are replaced; rem-old-pac deletes them with the old \
                             version): give them a SOR of their own (an ES_SCALE_OUT_REPOS_n entry without TMP) \
                             before the upgrade; if these are not queues, set [catalog] queue_prefixes \
                             (docs/layouts.md)"
                        .into(),
                });
            }
            if let Some(e) = &v.record_error {
                warnings.push(Warning {
                    kind: WarningKind::DamagedRecord,
                    pac: pac.clone(),
                    version: v.version.clone(),
                    store: None,
                    message: format!("{pac} {}: the PAC record cannot be read: {e}", v.version),
                    action: format!(
                        "regions and psor (set-mode, create, rem-old-pac) cannot use version {} until its record is \
                         repaired: fix the record hash by hand (fields pac, version, mode = Running|Quiesce|Upgrade, \
                         layout, epoch, created_ms, updated_ms; see docs/layouts.md), or, if nothing uses this \
                         version, remove its keys with psor delete --prefix '{}'",
                        v.version, v.prefix
                    ),
                });
            }
            let creating = v.record.as_ref().is_some_and(|r| r.creating);
            if creating {
                let action = if create_would_work(p, v, catalog) {
                    format!(
                        "step 6: rerun psor create {pac} --product-version {} to finish it (keys already copied count \
                         as unchanged); set-mode running is refused until then",
                        v.version
                    )
                } else {
                    // No older version Running to carry from: suggest making the newest quiesced older
                    // one Running again (Quiesce → Running is allowed), when there is one.
                    let quiesced = p
                        .versions
                        .iter()
                        .rev()
                        .find(|o| o.version < v.version && o.mode() == Some(PacMode::Quiesce))
                        .map(|o| &o.version);
                    let abandon = format!(
                        "if the upgrade is abandoned, remove its keys with psor delete --prefix '{}'",
                        v.prefix
                    );
                    match quiesced.filter(|_| v.mode() == Some(PacMode::Upgrade)) {
                        Some(old) => format!(
                            "create carries the stores from an older Running version and none is Running now: psor \
                             set-mode {pac} running --product-version {old}, then rerun psor create {pac} \
                             --product-version {}; {abandon}",
                            v.version
                        ),
                        None => format!(
                            "create (which finishes this) only carries into a version in mode Upgrade from an older \
                             Running one, and that is not the case here: once you have checked its stores, remove the \
                             psor_creating field from its PAC record by hand; {abandon}"
                        ),
                    }
                };
                warnings.push(Warning {
                    kind: WarningKind::CreateIncomplete,
                    pac: pac.clone(),
                    version: v.version.clone(),
                    store: None,
                    message: format!(
                        "{pac} {}: a create did not finish (the record still has psor_creating): its stores may be \
                         incomplete",
                        v.version
                    ),
                    action,
                });
            }
            if v.mode() == Some(PacMode::Upgrade) && !creating {
                let updated = v.record.as_ref().map_or(0, |r| r.record.updated_ms);
                let age = opts.now_ms.saturating_sub(updated);
                if age > opts.upgrade_warn_ms {
                    warnings.push(Warning {
                        kind: WarningKind::UpgradeStale,
                        pac: pac.clone(),
                        version: v.version.clone(),
                        store: None,
                        message: format!(
                            "{pac} {} has been in mode Upgrade for {:.1} hours (record unchanged since then; \
                             threshold {:.1} hours)",
                            v.version,
                            age as f64 / 3_600_000.0,
                            opts.upgrade_warn_ms as f64 / 3_600_000.0
                        ),
                        action: format!(
                            "step 10: once every region runs the new product, let it take batch work: psor set-mode \
                             {pac} running --product-version {} (caspac -aSetMode=Running); then step 12 quiesces the \
                             old version. If the upgrade was abandoned, stop its regions and remove its stores",
                            v.version
                        ),
                    });
                }
            }
        }
        let running: Vec<&ProductVersion> =
            p.versions.iter().filter(|v| v.mode() == Some(PacMode::Running)).map(|v| &v.version).collect();
        if let Some((newest, older)) = running.split_last() {
            for old in older {
                warnings.push(Warning {
                    kind: WarningKind::SeveralRunning,
                    pac: pac.clone(),
                    version: (*old).clone(),
                    store: None,
                    message: format!("{pac} {old} and {newest} are both in mode Running: both PACs take batch work"),
                    action: format!(
                        "step 12: stop batch work in the old PAC from a region of the old product: psor set-mode {pac} \
                         quiesce --product-version {old} (caspac -aSetMode=Quiesce)"
                    ),
                });
            }
            let newer = p.versions.iter().filter(|v| &v.version > *newest && v.record.is_some());
            for n in newer.filter(|n| n.mode() != Some(PacMode::Upgrade)) {
                let mode = n.mode().map_or("?", |m| m.as_str());
                warnings.push(Warning {
                    kind: WarningKind::OldVersionRunning,
                    pac: pac.clone(),
                    version: (*newest).clone(),
                    store: None,
                    message: format!("{pac} {newest} is Running while the newer {} is {mode}", n.version),
                    action: format!(
                        "to go on with the upgrade: psor set-mode {pac} running --product-version {} (step 10), then \
                         psor set-mode {pac} quiesce --product-version {newest} (step 12); if the upgrade was backed \
                         out, stop {}'s regions and remove its stores (psor rem-old-pac {pac} --force: it keeps only the \
                         Running version, and refuses to remove a newer one without --force)",
                        n.version, n.version
                    ),
                });
            }
        }
    }
    (orphans, warnings)
}
