//! `psor status`: which PACs a PSOR holds, at which versions, in which modes, and per store
//! how many keys, how many bytes, of which types, with which TTLs; which keys follow the PAC
//! naming but belong to nothing the catalog knows (orphans); and where the upgrade
//! procedure is at risk (warnings, see [`findings`]).
//!
//! PACs are found from the keys themselves: every key that parses as `<PAC>_<version>:…`
//! (under the catalog's template) is counted against its (PAC, version, store). Keys under
//! a version's prefix that no store of its layout claims (or every key of a version the
//! catalog does not know) are grouped by their first segment (`MyPAC_9.0:tsq:Q1` → `tsq`),
//! at most [`MAX_UNKNOWN_STORES`] names per version, the rest in `(other)`. Memory is
//! therefore bounded by the number of (PAC, version, store) triples, never by the number of
//! keys.
//!
//! With [`StatusOptions::detail`], each `SCAN` page is followed by one pipeline on the same
//! master: `TYPE` and `PTTL` of every key, and `MEMORY USAGE … SAMPLES 0` of one key in
//! [`StatusOptions::sample_every`] (chosen by a hash of the name, as `psor survey` does), so
//! bytes are an *estimate*: measured bytes × keys / measured keys, per store. A store none of
//! whose keys was sampled gets one key measured after the scan. The PAC record, region
//! registry and (with detail) each registered region's version record are then read (on the
//! master). With `--read-from replica` ([`EngineOptions::read_from`]) the scan and the per-key
//! reads of each master go to its caught-up replica; one lost mid-run makes the count start
//! over with that master read, so no key is counted twice.

mod findings;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use redis::Value;
use serde::Serialize;

pub use findings::{findings, Orphan, OrphanKind, Warning, WarningKind};

use super::{key_conn, read_record, Result, StoredRecord};
use crate::connect::{NodeConn, Psor, ReadChoice};
use crate::engine::{EngineOptions, ReadSide};
use crate::keys::{display_key, KeyPrefix};
use crate::layout::{Catalog, Layout, PacMode, PacName, ProductVersion, RegionName};
use crate::progress::Progress;
use crate::survey::{KeyType, TYPE_NAMES};

/// At most this many distinct unknown store names are kept per (PAC, version); further
/// unclaimed keys are counted in `(other)`.
pub const MAX_UNKNOWN_STORES: usize = 16;

/// The longest first segment kept as an unknown store's name (longer ones are cut).
const MAX_SEGMENT: usize = 64;

/// The default of [`StatusOptions::upgrade_warn_ms`]: 24 hours.
pub const DEFAULT_UPGRADE_WARN_MS: u64 = 24 * 3600 * 1000;

/// How much `status` looks at, and the clock and thresholds of its warnings.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// Ask `TYPE` and `PTTL` of every key and read each region's version record. Off: key
    /// counts only (what the PAC lifecycle commands need before they act).
    pub detail: bool,
    /// Measure `MEMORY USAGE` of one key in this many (1: every key; 0: none, no bytes).
    pub sample_every: u64,
    /// Warn about a version in mode `Upgrade` whose record has not changed for this long.
    pub upgrade_warn_ms: u64,
    /// "Now", in milliseconds since the Unix epoch (injectable so tests need no clock).
    pub now_ms: u64,
}

impl Default for StatusOptions {
    /// Everything: types, TTLs, bytes of one key in 10, the 24-hour upgrade warning, now.
    fn default() -> Self {
        StatusOptions {
            detail: true,
            sample_every: 10,
            upgrade_warn_ms: DEFAULT_UPGRADE_WARN_MS,
            now_ms: super::now_ms(),
        }
    }
}

impl StatusOptions {
    /// Key counts, records and regions only: no per-key commands.
    pub fn counts_only() -> Self {
        StatusOptions { detail: false, sample_every: 0, ..StatusOptions::default() }
    }

    fn is_sampled(&self, key: &[u8]) -> bool {
        self.sample_every == 1
            || (self.sample_every > 1 && crate::survey::name_hash(key).is_multiple_of(self.sample_every))
    }
}

/// Keys without and with an expiry, per store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TtlStats {
    /// Keys without an expiry.
    pub none: u64,
    /// Keys with one.
    pub expiring: u64,
    /// The shortest remaining time to live seen, in milliseconds.
    pub soonest_ms: Option<i64>,
}

/// The keys of one store of one (PAC, version).
#[derive(Debug, Clone, Serialize)]
pub struct StoreCount {
    /// The store's name in the version's layout; for keys no store claims, their first
    /// segment after the (PAC, version) prefix (`tsq` for `MyPAC_9.0:tsq:Q1`), `(empty)`
    /// when that segment is empty, or `(other)` beyond [`MAX_UNKNOWN_STORES`] names.
    pub store: String,
    /// Whether the store is in the version's layout (false: an unknown store, an orphan).
    pub known: bool,
    /// The store's sub-prefix (known) or first segment (unknown), escaped; empty for `(other)`.
    pub sub_prefix: String,
    /// The store's key prefix, escaped (empty for `(other)`).
    pub prefix: String,
    /// How many keys it has.
    pub keys: u64,
    /// Estimated bytes (`MEMORY USAGE` of the sampled keys, scaled); `None` when not sampled.
    pub bytes: Option<u64>,
    /// Keys whose bytes were measured.
    pub sampled_keys: u64,
    /// Keys per Redis type (`TYPE`; module types count as `other`); empty without detail.
    pub types: BTreeMap<String, u64>,
    /// Expiry of its keys; `None` without detail.
    pub ttl: Option<TtlStats>,
}

/// A registered region and what its version record says.
#[derive(Debug, Clone, Serialize)]
pub struct RegionVersion {
    /// The region (a field of the region registry).
    pub region: String,
    /// `product_version` of its version record; `None` when there is no record.
    pub product_version: Option<String>,
    /// `os` of its version record.
    pub os: Option<String>,
    /// `bitness` of its version record.
    pub bitness: Option<String>,
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
    /// With detail: each of `regions` with its version record (product version, OS, bitness).
    pub region_versions: Vec<RegionVersion>,
    /// Per store, in layout order, then unknown stores by name, `(other)` last.
    pub stores: Vec<StoreCount>,
    /// All keys under the prefix.
    pub keys: u64,
    /// Estimated bytes of all keys under the prefix (sum of the stores' estimates).
    pub bytes: Option<u64>,
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
    /// Keys that follow the PAC naming but belong to nothing the catalog knows.
    pub orphans: Vec<Orphan>,
    /// Where the upgrade procedure is at risk, each with what to do.
    pub warnings: Vec<Warning>,
    /// Keys in the database(s) when the scan started.
    pub total_keys: u64,
    /// Keys the scan returned (whether or not they were PAC keys).
    pub scanned_keys: u64,
    /// Keys that parsed as PAC keys.
    pub pac_keys: u64,
    /// Whether types and TTLs were asked.
    pub detail: bool,
    /// One key in this many had its bytes measured (0: none).
    pub sample_every: u64,
    /// PAC keys that were gone before `TYPE` (not counted).
    pub vanished: u64,
    /// The age, in hours, beyond which a version in mode `Upgrade` is warned about.
    pub upgrade_warn_hours: f64,
    /// The "now" the warnings were computed against (ms since the Unix epoch).
    pub now_ms: u64,
    /// Wall time.
    pub seconds: f64,
    /// Where each master was scanned and read (`--read-from replica…`), and any fall back to
    /// the master; empty when every read went to the masters by choice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read_from: Vec<ReadChoice>,
}

impl StatusReport {
    /// Whether anything needs a person's attention (warnings or orphans).
    pub fn has_findings(&self) -> bool {
        !self.warnings.is_empty() || !self.orphans.is_empty()
    }
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

/// Pages through every key of every master (or only those under `prefix`) with the engine's
/// SCAN loop (`engine::scan::scan_node_with`), calling `f` with the master's connection and
/// each page of about one SCAN reply, at the pace of [`EngineOptions::pacing`]; counts
/// examined keys in `progress` (`f` counts the PAC keys it keeps as matched).
fn scan_pages(
    psor: &Psor,
    sides: &[Arc<ReadSide>],
    prefix: Option<&KeyPrefix>,
    opts: &EngineOptions,
    progress: &Progress,
    mut f: impl FnMut(&mut NodeConn, Vec<Vec<u8>>) -> Result<()>,
) -> Result<()> {
    let pacer = crate::engine::pacing::Pacer::start(&opts.pacing, psor)?;
    // Pages of about one SCAN reply, as before: one facts pipeline per page. Under a latency
    // bound, COUNT and the keys per facts pipeline come from it (pacing.rs).
    let shaped = crate::engine::pacing::shape(opts);
    let page = crate::engine::pacing::pipeline_keys(&shaped, shaped.scan_count);
    // A key SCAN returns twice (its table shrank under the cursor) is counted once.
    let engine = EngineOptions { batch_size: page, drop_repeats: true, ..shaped };
    let mut scan_all = || -> Result<()> {
        // Each master's read node (`--read-from`): the pages' facts are read on it too.
        for side in sides {
            let mut con = side.connect()?;
            crate::engine::scan_node_with(&mut con, prefix, &engine, progress, None, |con, keys| {
                pacer.admit(keys.len(), progress);
                f(con, keys).map(|()| true)
            })?;
        }
        Ok(())
    };
    let result = scan_all();
    pacer.stop();
    result
}

/// Which store of a (PAC, version) a key counts against. Ordered as reported: layout
/// stores in layout order, unknown stores by name, `(other)` last.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Known(usize),
    Unknown(Vec<u8>),
    Other,
}

/// What is kept per (PAC, version, store): counters only, and one key to measure if none
/// was sampled.
#[derive(Debug, Default)]
struct Acc {
    keys: u64,
    sampled: u64,
    sampled_bytes: u64,
    types: [u64; TYPE_NAMES.len()],
    ttl_none: u64,
    ttl_expiring: u64,
    soonest: Option<i64>,
    probe: Option<Vec<u8>>,
}

type Counts = BTreeMap<(PacName, ProductVersion), BTreeMap<Slot, Acc>>;

/// The store slot of the part of a key after its (PAC, version) prefix.
fn slot_of(
    layout: Option<&Layout>,
    prefix: &crate::layout::PacVersionPrefix,
    rest: &[u8],
    known: &BTreeMap<Slot, Acc>,
) -> Slot {
    if let Some(layout) = layout {
        if let Some((s, _)) = layout.match_store(prefix, rest) {
            let i = layout.stores.iter().position(|x| x.name == s.name).expect("the store is in its layout");
            return Slot::Known(i);
        }
    }
    let end = rest.iter().position(|b| *b == b':').unwrap_or(rest.len());
    let seg = rest[..end.min(MAX_SEGMENT)].to_vec();
    let slot = Slot::Unknown(seg);
    if known.contains_key(&slot) {
        return slot;
    }
    let unknown = known.keys().filter(|s| matches!(s, Slot::Unknown(_))).count();
    if unknown >= MAX_UNKNOWN_STORES {
        Slot::Other
    } else {
        slot
    }
}

/// One pipeline for a page: `TYPE` + `PTTL` per key (with detail) and `MEMORY USAGE` per
/// sampled key. Read-only, so retried whole.
#[derive(Debug, Default, Clone, Copy)]
struct Facts {
    ty: Option<KeyType>,
    pttl: Option<i64>,
    bytes: Option<u64>,
    gone: bool,
}

fn page_facts(con: &mut NodeConn, opts: &StatusOptions, keys: &[&[u8]]) -> Result<Vec<Facts>> {
    let sampled: Vec<bool> = keys.iter().map(|k| opts.is_sampled(k)).collect();
    let mut pipe = redis::pipe();
    for (key, &s) in keys.iter().zip(&sampled) {
        if opts.detail {
            pipe.cmd("TYPE").arg(*key).cmd("PTTL").arg(*key);
        }
        if s {
            pipe.cmd("MEMORY").arg("USAGE").arg(*key).arg("SAMPLES").arg(0);
        }
    }
    if pipe.is_empty() {
        return Ok(vec![Facts::default(); keys.len()]);
    }
    let replies: Vec<Value> = con.retry("TYPE/PTTL/MEMORY USAGE", None, |c| pipe.query(c))?;
    let addr = con.addr().to_string();
    let bad = |detail: String| crate::Error::Protocol { addr: addr.clone(), op: "TYPE/PTTL/MEMORY USAGE", detail };
    let mut it = replies.into_iter();
    let mut out = Vec::with_capacity(keys.len());
    for (key, &s) in keys.iter().zip(&sampled) {
        let mut f = Facts::default();
        if opts.detail {
            let ty = match it.next() {
                Some(Value::SimpleString(t)) => t.into_bytes(),
                Some(Value::BulkString(t)) => t,
                other => return Err(bad(format!("TYPE {} answered {other:?}", display_key(key))).into()),
            };
            let pttl = match it.next() {
                Some(Value::Int(ms)) => ms,
                other => return Err(bad(format!("PTTL {} answered {other:?}", display_key(key))).into()),
            };
            f.ty = KeyType::parse(&ty);
            f.pttl = Some(pttl);
            f.gone = f.ty.is_none() || pttl == -2;
        }
        if s {
            f.bytes = match it.next() {
                Some(Value::Int(b)) => u64::try_from(b).ok(),
                Some(Value::Nil) => None,
                other => return Err(bad(format!("MEMORY USAGE {} answered {other:?}", display_key(key))).into()),
            };
        }
        out.push(f);
    }
    Ok(out)
}

/// Counts keys per (PAC, version, store) only: what the PAC lifecycle commands need before
/// they act. Same as [`status_with`] with [`StatusOptions::counts_only`].
pub fn status(
    psor: &Psor,
    catalog: &Catalog,
    pac: Option<&PacName>,
    opts: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<StatusReport> {
    status_with(psor, catalog, pac, &StatusOptions::counts_only(), opts, progress)
}

/// Finds the PACs in the PSOR (or only `pac`), with versions, modes, registered regions and
/// per store key counts (and with `sopts.detail` types, TTLs and estimated bytes), then the
/// orphans and warnings ([`findings`]). SCAN may return a key twice while the table resizes,
/// so counts are exact on a quiet PSOR and may be a little high on a busy one.
pub fn status_with(
    psor: &Psor,
    catalog: &Catalog,
    pac: Option<&PacName>,
    sopts: &StatusOptions,
    opts: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<StatusReport> {
    let started = std::time::Instant::now();
    let total_keys = psor.dbsize()?;
    progress.total_keys.store(total_keys, Relaxed);
    let prefix = scan_prefix(catalog, pac);
    let template = catalog.key_template();
    let per_key = sopts.detail || sopts.sample_every > 0;
    // Where each master is scanned and its keys' TYPE/PTTL/MEMORY USAGE read (`--read-from`),
    // chosen once (the catch-up wait is here). A replica lost mid-run leaves its master to be
    // read: the count starts over, so no key is counted twice.
    let sides = ReadSide::choose(psor, opts)?;
    let (mut counts, scanned, pac_keys, vanished) = loop {
        let mut counts: Counts = BTreeMap::new();
        let (mut scanned, mut pac_keys, mut vanished) = (0u64, 0u64, 0u64);
        let pass = scan_pages(psor, &sides, prefix.as_ref(), opts, &progress, |con, keys| {
            scanned += keys.len() as u64;
            // (triple, key) of the PAC keys of this page.
            let mut page: Vec<((PacName, ProductVersion), Slot, &[u8])> = Vec::new();
            for key in &keys {
                let Some((kpac, version, rest)) = template.parse_prefix(key) else { continue };
                if pac.is_some_and(|p| p != &kpac) {
                    continue;
                }
                let layout = catalog.layout_for(&version).ok();
                let vprefix = template.prefix(&kpac, &version);
                let stores = counts.entry((kpac, version)).or_default();
                let slot = slot_of(layout, &vprefix, rest, stores);
                stores.entry(slot.clone()).or_default();
                page.push(((vprefix.pac().clone(), vprefix.version().clone()), slot, key.as_slice()));
            }
            let facts = if per_key {
                let ks: Vec<&[u8]> = page.iter().map(|(_, _, k)| *k).collect();
                page_facts(con, sopts, &ks)?
            } else {
                vec![Facts::default(); page.len()]
            };
            for ((triple, slot, key), f) in page.into_iter().zip(facts) {
                if f.gone {
                    vanished += 1;
                    continue;
                }
                pac_keys += 1;
                Progress::add(&progress.matched, 1);
                let acc = counts.get_mut(&triple).and_then(|m| m.get_mut(&slot)).expect("entered above");
                acc.keys += 1;
                if let Some(b) = f.bytes {
                    acc.sampled += 1;
                    acc.sampled_bytes += b;
                    acc.probe = None;
                } else if sopts.sample_every > 0 && acc.sampled == 0 && acc.probe.is_none() {
                    acc.probe = Some(key.to_vec());
                }
                if let Some(t) = f.ty {
                    acc.types[t as usize] += 1;
                }
                match f.pttl {
                    Some(ms) if ms >= 0 => {
                        acc.ttl_expiring += 1;
                        acc.soonest = Some(acc.soonest.map_or(ms, |s| s.min(ms)));
                    }
                    Some(_) => acc.ttl_none += 1,
                    None => {}
                }
            }
            Ok(())
        });
        match pass {
            Err(super::Error::Core(e)) if crate::engine::replica_lost(&sides, &e)? => continue,
            other => other?,
        }
        break (counts, scanned, pac_keys, vanished);
    };
    progress.scan_finished.store(true, Relaxed);

    // Stores with keys but no sample: measure one key each, where its master is read.
    if sopts.sample_every > 0 {
        let usage = |con: &mut NodeConn, key: &[u8]| -> crate::Result<Option<u64>> {
            con.retry("MEMORY USAGE", Some(key), |c| {
                redis::cmd("MEMORY").arg("USAGE").arg(key).arg("SAMPLES").arg(0).query(c)
            })
        };
        for acc in counts.values_mut().flat_map(|m| m.values_mut()) {
            if let (0, Some(key)) = (acc.sampled, acc.probe.take()) {
                let read = match crate::engine::side_for_key(psor, &sides, &key) {
                    Some(side) => side.connect().and_then(|mut con| usage(&mut con, &key)),
                    None => usage(&mut key_conn(psor, &key)?, &key),
                };
                let b = match read {
                    Ok(b) => b,
                    // The replica was lost: its master answers from now on (reported).
                    Err(e) if crate::engine::replica_lost(&sides, &e)? => usage(&mut key_conn(psor, &key)?, &key)?,
                    Err(e) => return Err(e.into()),
                };
                if let Some(b) = b {
                    acc.sampled = 1;
                    acc.sampled_bytes = b;
                }
            }
        }
    }

    let mut pacs: Vec<PacStatus> = Vec::new();
    for ((pac, version), stores) in counts {
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
            region_versions: Vec::new(),
            stores: Vec::new(),
            keys: 0,
            bytes: None,
        };
        for (slot, acc) in stores {
            if acc.keys == 0 {
                continue;
            }
            let (name, known, sub) = match &slot {
                Slot::Known(i) => {
                    let s = &layout.expect("known stores have a layout").stores[*i];
                    (s.name.clone(), true, s.sub_prefix.as_str().as_bytes().to_vec())
                }
                Slot::Unknown(seg) if seg.is_empty() => ("(empty)".to_owned(), false, Vec::new()),
                Slot::Unknown(seg) => (display_key(seg), false, seg.clone()),
                Slot::Other => ("(other)".to_owned(), false, Vec::new()),
            };
            let prefix = match slot {
                Slot::Other => String::new(),
                _ => display_key(&[vprefix.as_bytes(), &sub, b":"].concat()),
            };
            let bytes =
                (acc.sampled > 0).then(|| (acc.sampled_bytes as u128 * acc.keys as u128 / acc.sampled as u128) as u64);
            let types =
                TYPE_NAMES.iter().zip(acc.types).filter(|(_, n)| *n > 0).map(|(t, n)| (t.to_string(), n)).collect();
            st.keys += acc.keys;
            st.stores.push(StoreCount {
                store: name,
                known,
                sub_prefix: display_key(&sub),
                prefix,
                keys: acc.keys,
                bytes,
                sampled_keys: acc.sampled,
                types,
                ttl: sopts.detail.then_some(TtlStats {
                    none: acc.ttl_none,
                    expiring: acc.ttl_expiring,
                    soonest_ms: acc.soonest,
                }),
            });
        }
        if st.keys == 0 {
            continue;
        }
        if sopts.sample_every > 0 {
            st.bytes = Some(st.stores.iter().filter_map(|s| s.bytes).sum());
        }
        if let Some(layout) = layout {
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
                if sopts.detail {
                    st.region_versions = read_region_versions(&mut con, &keys, &st.regions)?;
                }
            }
        }
        match pacs.last_mut() {
            Some(p) if p.pac == pac => p.versions.push(st),
            _ => pacs.push(PacStatus { pac, versions: vec![st] }),
        }
    }
    let (orphans, warnings) = findings(&pacs, catalog, sopts);
    Ok(StatusReport {
        pacs,
        orphans,
        warnings,
        total_keys,
        scanned_keys: scanned,
        pac_keys,
        detail: sopts.detail,
        sample_every: sopts.sample_every,
        vanished,
        upgrade_warn_hours: sopts.upgrade_warn_ms as f64 / 3_600_000.0,
        now_ms: sopts.now_ms,
        seconds: started.elapsed().as_secs_f64(),
        read_from: sides.iter().filter_map(|s| s.choice()).collect(),
    })
}

/// The number of regions in a registry hash, and up to 100 of their names.
pub(crate) fn read_regions(con: &mut NodeConn, key: &[u8]) -> Result<(u64, Vec<String>)> {
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

/// Each region's version record (one pipeline; the records share the version's hash tag,
/// so they live on the node `con` serves).
fn read_region_versions(
    con: &mut NodeConn,
    keys: &crate::layout::PacKeys<'_>,
    regions: &[String],
) -> Result<Vec<RegionVersion>> {
    let vkeys: Vec<Option<Vec<u8>>> =
        regions.iter().map(|r| RegionName::new(r).ok().and_then(|n| keys.region_version_key(&n).ok())).collect();
    let mut pipe = redis::pipe();
    for k in vkeys.iter().flatten() {
        pipe.cmd("HGETALL").arg(k);
    }
    let replies: Vec<Vec<(Vec<u8>, Vec<u8>)>> =
        if pipe.is_empty() { Vec::new() } else { con.retry("HGETALL", None, |c| pipe.query(c))? };
    let mut it = replies.into_iter();
    Ok(regions
        .iter()
        .zip(&vkeys)
        .map(|(region, k)| {
            let fields = if k.is_some() { it.next().unwrap_or_default() } else { Vec::new() };
            let get = |name: &str| {
                fields.iter().find(|(f, _)| f == name.as_bytes()).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            };
            RegionVersion {
                region: region.clone(),
                product_version: get("product_version"),
                os: get("os"),
                bitness: get("bitness"),
            }
        })
        .collect())
}
