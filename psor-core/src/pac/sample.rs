//! `psor sample`: a realistic PAC at one version, written into any PSOR, so that demos,
//! tests and rehearsals of the upgrade procedure have something that looks like the real
//! thing: a PAC record, registered regions with version records, and resource tables with
//! plausible entries of each store's declared Redis type, some TTLs, a few large PPT values
//! (program binaries) and one entry name that is not printable ASCII.
//!
//! The content is deterministic for a given (PAC, version, options), from a small PRNG, so
//! two runs give byte-identical keyspaces (apart from the record's timestamps).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::{key_conn, now_ms, Error, Result};
use crate::connect::Psor;
use crate::engine::router::{Routed, Router};
use crate::keys::display_key;
use crate::layout::{
    Catalog, PacMode, PacName, PacRecord, ProductVersion, RedisType, RegionName, ResourceTable, StoreRole,
};
use crate::progress::Progress;

/// What to write.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// Resource-table entries to write (spread over the layout's resource and `other` stores).
    pub keys: usize,
    /// Regions to register (`REGION1`…), each with a version record.
    pub regions: usize,
    /// The mode of the PAC record.
    pub mode: PacMode,
    /// How many PPT entries get a large (256 KiB) binary.
    pub large_values: usize,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions { keys: 1000, regions: 2, mode: PacMode::Running, large_values: 3 }
    }
}

/// What `sample` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct SampleOutcome {
    /// The PAC.
    pub pac: PacName,
    /// The version.
    pub version: ProductVersion,
    /// Its layout.
    pub layout: String,
    /// The (PAC, version) prefix.
    pub prefix: String,
    /// The record written.
    pub record: PacRecord,
    /// The regions registered.
    pub regions: Vec<String>,
    /// Keys written per store.
    pub stores: BTreeMap<String, u64>,
    /// All keys written.
    pub keys: u64,
    /// Keys given a TTL.
    pub with_ttl: u64,
    /// Large PPT values written.
    pub large_values: u64,
    /// Wall time.
    pub seconds: f64,
}

/// xorshift64*: small, deterministic, good enough for plausible data.
struct Rng(u64);

impl Rng {
    fn new(seed: &str) -> Rng {
        // FNV-1a of the seed text, never zero.
        let h = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        Rng(h | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

fn weight(role: StoreRole) -> u64 {
    match role {
        StoreRole::Resource(ResourceTable::Pct) => 30,
        StoreRole::Resource(ResourceTable::Fct) => 15,
        StoreRole::Resource(ResourceTable::Ppt) => 25,
        StoreRole::Resource(ResourceTable::Dct) => 10,
        StoreRole::Resource(ResourceTable::Tst) => 10,
        StoreRole::Resource(ResourceTable::Enqmodel) => 5,
        StoreRole::Other => 5,
        _ => 0,
    }
}

/// The entry name and hash fields of the `i`-th entry of a resource table.
fn resource_fields(role: StoreRole, i: usize, rng: &mut Rng, large: bool) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let f = |k: &str, v: String| (k.to_owned(), v.into_bytes());
    match role {
        StoreRole::Resource(ResourceTable::Pct) => {
            // One entry name that is not printable ASCII, so binary safety is exercised.
            let name = if i == 1 { b"TX\xff\x00 N".to_vec() } else { format!("T{i:03X}").into_bytes() };
            (
                name,
                vec![
                    f("program", format!("PROG{:04}", rng.below(500))),
                    f("status", rng.pick(&["ENABLED", "ENABLED", "ENABLED", "DISABLED"]).into()),
                    f("priority", rng.below(256).to_string()),
                    f("twasize", (rng.below(32) * 128).to_string()),
                    f("group", rng.pick(&["ACCT", "PAYR", "INVT", "CUST"]).into()),
                ],
            )
        }
        StoreRole::Resource(ResourceTable::Fct) => (
            format!("FILE{i:04}").into_bytes(),
            vec![
                f("dsname", format!("PROD.{}.DAT{i:04}", rng.pick(&["ACCT", "PAYR", "INVT"]))),
                f("status", rng.pick(&["OPEN", "CLOSED"]).into()),
                f("enabled", rng.pick(&["ENABLED", "DISABLED"]).into()),
                f("recordsize", (80 + rng.below(4000)).to_string()),
                f("keylen", (4 + rng.below(60)).to_string()),
            ],
        ),
        StoreRole::Resource(ResourceTable::Ppt) => {
            let size = if large { 256 * 1024 } else { 512 + rng.below(4096) as usize };
            (
                format!("PROG{i:04}").into_bytes(),
                vec![
                    f("language", rng.pick(&["COBOL", "COBOL", "PL/I", "ASSEMBLER", "C"]).into()),
                    f("status", rng.pick(&["ENABLED", "DISABLED"]).into()),
                    f("usecount", rng.below(100_000).to_string()),
                    ("binary".to_owned(), rng.bytes(size)),
                ],
            )
        }
        StoreRole::Resource(ResourceTable::Dct) => (
            format!("Q{i:03}").into_bytes(),
            vec![
                f("type", rng.pick(&["intrapartition", "extrapartition", "indirect"]).into()),
                f("trigger", rng.below(100).to_string()),
                f("transid", format!("T{:03X}", rng.below(4096))),
            ],
        ),
        StoreRole::Resource(ResourceTable::Tst) => (
            format!("TSMODEL{i:04}").into_bytes(),
            vec![
                f("prefix", format!("TS{:04}", rng.below(10_000))),
                f("location", rng.pick(&["auxiliary", "main"]).into()),
                f("recovery", rng.pick(&["yes", "no"]).into()),
            ],
        ),
        StoreRole::Resource(ResourceTable::Enqmodel) => (
            format!("ENQ{i:04}").into_bytes(),
            vec![
                f("enqname", format!("RES.{}.*", rng.pick(&["ACCT", "PAYR", "INVT"]))),
                f("scope", rng.pick(&["local", "PAC"]).into()),
            ],
        ),
        _ => (format!("ENTRY{i:04}").into_bytes(), vec![f("value", format!("{}", rng.next()))]),
    }
}

/// Adds the commands that write one value of type `ty` at `key` to `pipe`.
fn write_value(pipe: &mut redis::Pipeline, key: &[u8], ty: RedisType, fields: &[(String, Vec<u8>)], rng: &mut Rng) {
    pipe.cmd("DEL").arg(key).ignore();
    match ty {
        RedisType::Hash => {
            let mut c = redis::cmd("HSET");
            c.arg(key);
            for (k, v) in fields {
                c.arg(k).arg(v);
            }
            pipe.add_command(c).ignore();
        }
        RedisType::String => {
            let text: Vec<u8> =
                fields.iter().flat_map(|(k, v)| [k.as_bytes(), b"=", v.as_slice(), b";"].concat()).collect();
            pipe.cmd("SET").arg(key).arg(text).ignore();
        }
        RedisType::List => {
            let mut c = redis::cmd("RPUSH");
            c.arg(key);
            for (_, v) in fields {
                c.arg(v);
            }
            pipe.add_command(c).ignore();
        }
        RedisType::Set => {
            let mut c = redis::cmd("SADD");
            c.arg(key);
            for (k, _) in fields {
                c.arg(k);
            }
            pipe.add_command(c).ignore();
        }
        RedisType::Zset => {
            let mut c = redis::cmd("ZADD");
            c.arg(key);
            for (k, _) in fields {
                c.arg(rng.below(10_000)).arg(k);
            }
            pipe.add_command(c).ignore();
        }
        RedisType::Stream => {
            for (n, (k, v)) in fields.iter().enumerate() {
                pipe.cmd("XADD")
                    .arg(key)
                    .arg(format!("{}-{}", 1_700_000_000_000u64 + n as u64, 0))
                    .arg(k)
                    .arg(v)
                    .ignore();
            }
        }
    }
}

/// Writes a realistic PAC `pac` at `version` (see the module documentation). Refuses when
/// that version already has a PAC record, so a sample never overwrites a real PAC.
pub fn sample(
    psor: &Psor,
    catalog: &Catalog,
    pac: &PacName,
    version: &ProductVersion,
    opts: &SampleOptions,
    progress: Arc<Progress>,
) -> Result<SampleOutcome> {
    let started = Instant::now();
    let layout = catalog.layout_for(version)?;
    let keys = layout.keys(pac, version);
    let rkey = keys.pac_record_key()?;
    let mut con = key_conn(psor, &rkey)?;
    // Entries spread over every master of a cluster: each write goes to its key's master.
    let mut router = Router::new(psor)?;
    let cluster = psor.is_cluster();
    let exists: bool = con.retry("EXISTS", Some(&rkey), |c| redis::cmd("EXISTS").arg(&rkey).query(c))?;
    if exists {
        return Err(Error::State {
            pac: pac.clone(),
            reason: format!(
                "version {version} already has a PAC record ({}); sample writes only new versions",
                display_key(&rkey)
            ),
        });
    }
    let total_keys = opts.keys as u64 + 2 + opts.regions as u64;
    progress.total_keys.store(total_keys, std::sync::atomic::Ordering::Relaxed);
    let mut rng = Rng::new(&format!("{pac}_{version}"));
    let now = now_ms();
    let mut stores: BTreeMap<String, u64> = BTreeMap::new();
    let (mut with_ttl, mut large_written) = (0u64, 0u64);
    let mut pipe = redis::pipe();
    let mut queued = 0usize;
    let mut flush = |pipe: &mut redis::Pipeline, queued: &mut usize, force: bool| -> Result<()> {
        if *queued == 0 || (!force && *queued < 200) {
            return Ok(());
        }
        let p = std::mem::take(pipe);
        let routed: Vec<Routed> = p.cmd_iter().map(|c| Routed::by_key(c, cluster)).collect();
        for reply in router.run("sample write", &routed)? {
            if let redis::Value::ServerError(e) = reply {
                return Err(crate::Error::Command {
                    addr: psor.spec().redacted(),
                    op: "sample write",
                    key: None,
                    source: e.into(),
                }
                .into());
            }
        }
        Progress::add(&progress.done, *queued as u64);
        Progress::add(&progress.matched, *queued as u64);
        Progress::add(&progress.examined, *queued as u64);
        *queued = 0;
        Ok(())
    };

    // Regions and their version records.
    let mut regions = Vec::new();
    if let Ok(reg) = keys.region_registry_key() {
        for r in 1..=opts.regions {
            let name = RegionName::new(&format!("REGION{r}")).expect("valid region name");
            let host = format!("host{r}");
            let mut c = redis::cmd("HSET");
            c.arg(&reg).arg(name.as_str()).arg(format!("{host}:86{r:02} started_ms={now}"));
            pipe.add_command(c).ignore();
            if let Ok(vkey) = keys.region_version_key(&name) {
                pipe.cmd("DEL").arg(&vkey).ignore();
                pipe.cmd("HSET")
                    .arg(&vkey)
                    .arg("product_version")
                    .arg(version.as_str())
                    .arg("os")
                    .arg(rng.pick(&["Linux 5.14 x86_64", "Windows Server 2022", "AIX 7.3"]))
                    .arg("bitness")
                    .arg("64")
                    .arg("host")
                    .arg(&host)
                    .ignore();
                *stores
                    .entry(
                        layout.store_with_role(StoreRole::VersionRecords).map(|s| s.name.clone()).unwrap_or_default(),
                    )
                    .or_default() += 1;
                queued += 1;
            }
            regions.push(name.to_string());
        }
        if opts.regions > 0 {
            *stores
                .entry(layout.store_with_role(StoreRole::RegionRegistry).map(|s| s.name.clone()).unwrap_or_default())
                .or_default() += 1;
            queued += 1;
        }
    }

    // Resource tables (and `other` stores), by weight.
    let targets: Vec<_> = layout.stores.iter().filter(|s| weight(s.role) > 0).collect();
    let total_weight: u64 = targets.iter().map(|s| weight(s.role)).sum();
    let mut remaining = opts.keys as u64;
    for (n, s) in targets.iter().enumerate() {
        let count = if n + 1 == targets.len() {
            remaining
        } else {
            (opts.keys as u64 * weight(s.role) / total_weight.max(1)).min(remaining)
        };
        remaining -= count;
        for i in 0..count as usize {
            if progress.is_cancelled() {
                return Err(crate::Error::Interrupted.into());
            }
            let large =
                s.role == StoreRole::Resource(ResourceTable::Ppt) && (large_written as usize) < opts.large_values;
            let (entry, fields) = resource_fields(s.role, i, &mut rng, large);
            let key = keys.entry_key(&s.name, &entry)?;
            write_value(&mut pipe, &key, s.redis_type, &fields, &mut rng);
            large_written += large as u64;
            let ttl_role = matches!(
                s.role,
                StoreRole::Resource(ResourceTable::Tst | ResourceTable::Enqmodel | ResourceTable::Dct)
                    | StoreRole::Other
            );
            if ttl_role && i % 10 == 3 {
                // An absolute expiry a day or more ahead, so copies can be compared exactly.
                pipe.cmd("PEXPIREAT").arg(&key).arg(now + 86_400_000 + rng.below(86_400_000)).ignore();
                with_ttl += 1;
            }
            *stores.entry(s.name.clone()).or_default() += 1;
            queued += 1;
            flush(&mut pipe, &mut queued, false)?;
        }
    }

    // The record last: a sample interrupted midway has no record, so it can be rerun.
    let record = PacRecord {
        pac: pac.clone(),
        version: version.clone(),
        mode: opts.mode,
        layout: layout.name.clone(),
        epoch: layout.epoch.clone(),
        created_ms: now,
        updated_ms: now,
    };
    let mut c = redis::cmd("HSET");
    c.arg(&rkey);
    for (f, v) in record.to_hash() {
        c.arg(f).arg(v);
    }
    pipe.add_command(c).ignore();
    *stores
        .entry(layout.store_with_role(StoreRole::PacRecord).map(|s| s.name.clone()).unwrap_or_default())
        .or_default() += 1;
    queued += 1;
    flush(&mut pipe, &mut queued, true)?;
    progress.scan_finished.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(SampleOutcome {
        pac: pac.clone(),
        version: version.clone(),
        layout: layout.name.clone(),
        prefix: keys.prefix().to_string(),
        record,
        regions,
        keys: stores.values().sum(),
        stores,
        with_ttl,
        large_values: large_written,
        seconds: started.elapsed().as_secs_f64(),
    })
}
