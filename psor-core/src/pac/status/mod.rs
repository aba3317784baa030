//! `psor status`: which PACs a PSOR holds, at which versions, in which modes, with how many
//! keys per store.
//!
//! PACs are found from the keys themselves: every key that parses as `<PAC>_<version>:…`
//! (under the catalog's template) is counted against its (PAC, version, store). Memory is
//! bounded by the number of distinct (PAC, version, store) triples, never by the number of
//! keys. The PAC record and region registry of each version found are then read.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use serde::Serialize;

use super::{key_conn, read_record, Result, StoredRecord};
use crate::connect::Psor;
use crate::engine::EngineOptions;
use crate::keys::{display_key, KeyPrefix};
use crate::layout::{Catalog, PacMode, PacName, ProductVersion};
use crate::progress::Progress;

/// The keys of one store of one (PAC, version).
#[derive(Debug, Clone, Serialize)]
pub struct StoreCount {
    /// The store's name in the version's layout, or `(unmatched)` for keys under the
    /// (PAC, version) prefix that no store of the layout claims (or every key when the
    /// version is not in the catalog).
    pub store: String,
    /// The store's key prefix, escaped (empty for `(unmatched)`).
    pub prefix: String,
    /// How many keys it has.
    pub keys: u64,
}

/// One version of a PAC as found in the PSOR.
#[derive(Debug, Clone, Serialize)]
pub struct VersionStatus {
    /// The version in the key prefix (the version that created these stores).
    pub version: ProductVersion,
    /// The (PAC, version) prefix, e.g. `MyPAC_9.0:`.
    pub prefix: String,
    /// The catalog layout of this version, if the catalog knows it.
    pub layout: Option<String>,
    /// The PAC record, if there is one.
    pub record: Option<StoredRecord>,
    /// Why the record could not be read, if it could not.
    pub record_error: Option<String>,
    /// The registered regions (up to 100 names).
    pub regions: Vec<String>,
    /// How many regions are registered.
    pub region_count: u64,
    /// Key counts per store, in layout order, `(unmatched)` last.
    pub stores: Vec<StoreCount>,
    /// All keys under the prefix.
    pub keys: u64,
}

impl VersionStatus {
    /// The record's mode, if there is a readable record.
    pub fn mode(&self) -> Option<PacMode> {
        self.record.as_ref().map(|r| r.record.mode)
    }
}

/// One PAC with its versions, lowest version first.
#[derive(Debug, Clone, Serialize)]
pub struct PacStatus {
    /// The PAC.
    pub pac: PacName,
    /// Its versions.
    pub versions: Vec<VersionStatus>,
}

impl PacStatus {
    /// The version in mode `Running` (the highest, if several are).
    pub fn running(&self) -> Option<&VersionStatus> {
        self.versions.iter().rev().find(|v| v.mode() == Some(PacMode::Running))
    }

    /// The version with this exact prefix version.
    pub fn version(&self, v: &ProductVersion) -> Option<&VersionStatus> {
        self.versions.iter().find(|s| &s.version == v)
    }

    /// `8.0 (Quiesce), 9.0 (Running)`, for messages.
    pub fn describe_versions(&self) -> String {
        let v: Vec<String> = self
            .versions
            .iter()
            .map(|s| format!("{} ({})", s.version, s.mode().map(|m| m.as_str()).unwrap_or("no record")))
            .collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    }
}

/// What `status` found.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The PACs, by name.
    pub pacs: Vec<PacStatus>,
    /// Keys in the database(s) when the scan started.
    pub total_keys: u64,
    /// Keys the scan returned (whether or not they were PAC keys).
    pub scanned_keys: u64,
    /// Keys that parsed as PAC keys.
    pub pac_keys: u64,
    /// Wall time.
    pub seconds: f64,
}

/// The bytes every key of `pac` starts with under the catalog's template, or `None` when
/// the template puts something variable first (then every key is examined).
fn scan_prefix(catalog: &Catalog, pac: Option<&PacName>) -> Option<KeyPrefix> {
    let t = catalog.key_template();
    let text = t.as_str();
    let (p, v) = (text.find("{pac}")?, text.find("{version}")?);
    let fixed = match pac {
        Some(pac) if p < v => text[..v].replace("{pac}", pac.as_str()),
        _ => text[..p.min(v)].to_owned(),
    };
    KeyPrefix::new(fixed.into_bytes()).ok()
}

/// Pages through every key of every master (or only those under `prefix`), calling `f` for
/// each key; counts examined keys in `progress`.
fn scan_all(
    psor: &Psor,
    prefix: Option<&KeyPrefix>,
    opts: &EngineOptions,
    progress: &Progress,
    mut f: impl FnMut(&[u8]),
) -> Result<()> {
    for node in psor.masters() {
        let mut con = node.connect()?;
        let mut cursor: u64 = 0;
        loop {
            if progress.is_cancelled() {
                return Err(crate::Error::Interrupted.into());
            }
            let (next, keys): (u64, Vec<Vec<u8>>) = con.retry("SCAN", None, |c| {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor);
                if let Some(p) = prefix {
                    cmd.arg("MATCH").arg(p.match_pattern());
                }
                cmd.arg("COUNT").arg(opts.scan_count).query(c)
            })?;
            Progress::add(&progress.examined, opts.scan_count as u64);
            for key in keys {
                if prefix.is_none_or(|p| p.matches(&key)) {
                    f(&key);
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    Ok(())
}

/// Finds the PACs in the PSOR (or only `pac`), with versions, modes, registered regions and
/// key counts per store. SCAN may return a key twice while the table resizes, so counts are
/// exact on a quiet PSOR and may be a little high on a busy one.
pub fn status(
    psor: &Psor,
    catalog: &Catalog,
    pac: Option<&PacName>,
    opts: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<StatusReport> {
    let started = std::time::Instant::now();
    let total_keys = psor.dbsize()?;
    progress.total_keys.store(total_keys, Relaxed);
    let prefix = scan_prefix(catalog, pac);
    // (pac, version) → store name (None = unmatched) → count
    let mut counts: BTreeMap<(String, ProductVersion), BTreeMap<Option<String>, u64>> = BTreeMap::new();
    let (mut scanned, mut pac_keys) = (0u64, 0u64);
    scan_all(psor, prefix.as_ref(), opts, &progress, |key| {
        scanned += 1;
        let Some(parsed) = catalog.parse_key(key) else { return };
        if pac.is_some_and(|p| p != &parsed.pac) {
            return;
        }
        pac_keys += 1;
        Progress::add(&progress.matched, 1);
        *counts
            .entry((parsed.pac.to_string(), parsed.version))
            .or_default()
            .entry(parsed.store)
            .or_default() += 1;
    })?;
    progress.scan_finished.store(true, Relaxed);

    let template = catalog.key_template();
    let mut pacs: Vec<PacStatus> = Vec::new();
    for ((pac_name, version), stores) in counts {
        let pac = PacName::new(&pac_name).expect("parsed from a key, so valid");
        let vprefix = template.prefix(&pac, &version);
        let layout = catalog.layout_for(&version).ok();
        let mut st = VersionStatus {
            version: version.clone(),
            prefix: vprefix.to_string(),
            layout: layout.map(|l| l.name.clone()),
            record: None,
            record_error: None,
            regions: Vec::new(),
            region_count: 0,
            stores: Vec::new(),
            keys: stores.values().sum(),
        };
        if let Some(layout) = layout {
            for s in &layout.stores {
                if let Some(n) = stores.get(&Some(s.name.clone())) {
                    st.stores.push(StoreCount {
                        store: s.name.clone(),
                        prefix: display_key(&vprefix.store_prefix(&s.sub_prefix)),
                        keys: *n,
                    });
                }
            }
            let keys = layout.keys(&pac, &version);
            if let Ok(rkey) = keys.pac_record_key() {
                let mut con = key_conn(psor, &rkey)?;
                match read_record(&mut con, &rkey) {
                    Ok(r) => st.record = r,
                    Err(e) => st.record_error = Some(e.to_string()),
                }
                if let Ok(reg) = keys.region_registry_key() {
                    let (n, names) = read_regions(&mut con, &reg)?;
                    st.region_count = n;
                    st.regions = names;
                }
            }
        }
        if let Some(n) = stores.get(&None) {
            st.stores.push(StoreCount { store: "(unmatched)".into(), prefix: String::new(), keys: *n });
        }
        match pacs.last_mut() {
            Some(p) if p.pac == pac => p.versions.push(st),
            _ => pacs.push(PacStatus { pac, versions: vec![st] }),
        }
    }
    Ok(StatusReport { pacs, total_keys, scanned_keys: scanned, pac_keys, seconds: started.elapsed().as_secs_f64() })
}

/// The number of regions in a registry hash, and up to 100 of their names.
pub(crate) fn read_regions(con: &mut crate::connect::NodeConn, key: &[u8]) -> Result<(u64, Vec<String>)> {
    let n: u64 = con.retry("HLEN", Some(key), |c| redis::cmd("HLEN").arg(key).query(c))?;
    if n == 0 {
        return Ok((0, Vec::new()));
    }
    // Field/value pairs (HSCAN … NOVALUES needs Redis 7.4); one page is enough for names.
    let (_, pairs): (u64, Vec<Vec<u8>>) =
        con.retry("HSCAN", Some(key), |c| redis::cmd("HSCAN").arg(key).arg(0).arg("COUNT").arg(100).query(c))?;
    let fields: Vec<Vec<u8>> = pairs.into_iter().step_by(2).collect();
    let mut names: Vec<String> = fields.iter().take(100).map(|f| display_key(f)).collect();
    names.sort();
    names.dedup();
    Ok((n, names))
}
