//! `pac::status_with` against real redis-servers: exact key counts, types, TTLs, bytes and
//! regions' product versions per store; each orphan kind and each warning on one server, and
//! the orphans plus warnings on a 3-master cluster; a neighbour PAC is never an orphan of
//! another, and look-alike or unrelated keys are nobody's.

use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::EngineOptions;
use psor_core::layout::{Catalog, PacMode, PacName, ProductVersion};
use psor_core::pac::{self, OrphanKind, SampleOptions, StatusOptions, StatusReport, WarningKind};
use psor_core::progress::Progress;
use psor_tests::{populate_all_types, RedisCluster, RedisServer};

fn p() -> Arc<Progress> {
    Arc::new(Progress::new())
}
fn pac(s: &str) -> PacName {
    PacName::new(s).unwrap()
}
fn v(s: &str) -> ProductVersion {
    ProductVersion::new(s).unwrap()
}
fn engine() -> EngineOptions {
    EngineOptions { scan_count: 100, ..EngineOptions::default() }
}
fn sample(keys: usize, mode: PacMode) -> SampleOptions {
    SampleOptions { keys, regions: 2, mode, large_values: 1 }
}
fn status(psor: &Psor, cat: &Catalog, only: Option<&str>, o: &StatusOptions) -> StatusReport {
    pac::status_with(psor, cat, only.map(pac).as_ref(), o, &engine(), p()).unwrap()
}
fn set(con: &mut dyn redis::ConnectionLike, keys: &[String]) {
    for k in keys {
        redis::cmd("SET").arg(k).arg("x").query::<()>(con).unwrap();
    }
}
fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// (kind, pac, version, store, keys) of every orphan, sorted.
fn orphans(r: &StatusReport) -> Vec<(OrphanKind, String, String, Option<String>, u64)> {
    let mut o: Vec<_> =
        r.orphans.iter().map(|o| (o.kind, o.pac.to_string(), o.version.to_string(), o.store.clone(), o.keys)).collect();
    o.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    o
}

/// (kind, pac, version, store) of every warning, sorted.
fn warnings(r: &StatusReport) -> Vec<(WarningKind, String, String, Option<String>)> {
    let mut w: Vec<_> =
        r.warnings.iter().map(|w| (w.kind, w.pac.to_string(), w.version.to_string(), w.store.clone())).collect();
    w.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    w
}

/// Exact key counts per known store equal what `sample` wrote.
fn assert_counts(r: &StatusReport, p: &str, ver: &str, expected: &std::collections::BTreeMap<String, u64>) {
    let pst = r.pacs.iter().find(|x| x.pac.as_str() == p).unwrap_or_else(|| panic!("{p} not found"));
    let vs = pst.version(&v(ver)).unwrap();
    let got: std::collections::BTreeMap<String, u64> =
        vs.stores.iter().filter(|s| s.known).map(|s| (s.store.clone(), s.keys)).collect();
    assert_eq!(&got, expected, "{p} {ver}");
}

#[test]
fn counts_bytes_types_ttls_and_regions_with_neighbours() {
    let server = RedisServer::start();
    let psor = Psor::connect(&PsorSpec::parse(&server.url()).unwrap(), &ConnectOptions::default()).unwrap();
    let cat = Catalog::builtin();
    let s = pac::sample(&psor, &cat, &pac("MyPAC"), &v("8.0"), &sample(250, PacMode::Running), p()).unwrap();
    let s2 = pac::sample(&psor, &cat, &pac("MyPAC2"), &v("8.0"), &sample(40, PacMode::Running), p()).unwrap();
    let mut con = server.admin_conn();
    set(&mut con, &["MyPAC_8.01:pct:X", "MyPAC_8.0", "MyPAC", "myPAC_8.0:pct:Z", "xMyPAC_8.0:pct:W"].map(String::from));
    populate_all_types(&mut con, b"unrelated:", 20);

    let r = status(&psor, &cat, None, &StatusOptions { sample_every: 1, ..StatusOptions::default() });
    // PAC names are case-sensitive: `myPAC_8.0:` and `xMyPAC_8.0:` are PACs of their own
    // (with no record), never keys or orphans of MyPAC.
    assert_eq!(r.pacs.iter().map(|p| p.pac.to_string()).collect::<Vec<_>>(), ["MyPAC", "MyPAC2", "myPAC", "xMyPAC"]);
    assert_counts(&r, "MyPAC", "8.0", &s.stores);
    assert_counts(&r, "MyPAC2", "8.0", &s2.stores);
    assert_eq!(
        orphans(&r),
        vec![
            (OrphanKind::NoRecord, "myPAC".into(), "8.0".into(), None, 1),
            (OrphanKind::NoRecord, "xMyPAC".into(), "8.0".into(), None, 1),
        ]
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let mine = status(&psor, &cat, Some("MyPAC"), &StatusOptions { sample_every: 1, ..StatusOptions::default() });
    assert!(!mine.has_findings(), "{:?} {:?}", mine.orphans, mine.warnings);
    let v8 = &r.pacs[0].versions[0];
    assert_eq!(v8.keys, s.keys);
    assert!(v8.stores.iter().all(|st| st.known));
    // Every key is a hash in the reference layout; each was measured (sample_every 1).
    for st in &v8.stores {
        assert_eq!(st.types.get("hash"), Some(&st.keys), "{}", st.store);
        assert_eq!(st.sampled_keys, st.keys, "{}", st.store);
        assert!(st.bytes.unwrap() >= 40 * st.keys, "{} {:?}", st.store, st.bytes);
        let t = st.ttl.as_ref().unwrap();
        assert_eq!(t.none + t.expiring, st.keys);
    }
    let expiring: u64 = v8.stores.iter().map(|st| st.ttl.as_ref().unwrap().expiring).sum();
    assert_eq!(expiring, s.with_ttl);
    let soonest = v8.stores.iter().filter_map(|st| st.ttl.as_ref().unwrap().soonest_ms).min().unwrap();
    assert!(soonest > 0);
    // The PPT binaries dominate the bytes.
    let ppt = v8.stores.iter().find(|st| st.store == "PPT").unwrap().bytes.unwrap();
    assert!(ppt > 256 * 1024, "{ppt}");
    assert_eq!(v8.bytes, Some(v8.stores.iter().map(|st| st.bytes.unwrap()).sum()));
    let rv: Vec<(String, Option<String>)> =
        v8.region_versions.iter().map(|r| (r.region.clone(), r.product_version.clone())).collect();
    assert_eq!(rv, [("REGION1".into(), Some("8.0".into())), ("REGION2".into(), Some("8.0".into()))]);

    // Sampled one key in 10: same counts, bytes still present for every store (estimates).
    let r10 = status(&psor, &cat, Some("MyPAC"), &StatusOptions::default());
    assert_eq!(r10.pacs.len(), 1);
    assert_counts(&r10, "MyPAC", "8.0", &s.stores);
    let v8b = &r10.pacs[0].versions[0];
    assert!(v8b.stores.iter().all(|st| st.bytes.is_some() && st.sampled_keys >= 1));
    assert!(v8b.stores.iter().map(|st| st.sampled_keys).sum::<u64>() < v8b.keys);
    // Counts only (what the lifecycle commands use): no per-key facts.
    let rc = pac::status(&psor, &cat, Some(&pac("MyPAC")), &engine(), p()).unwrap();
    assert_counts(&rc, "MyPAC", "8.0", &s.stores);
    assert!(rc.pacs[0].versions[0]
        .stores
        .iter()
        .all(|st| st.bytes.is_none() && st.types.is_empty() && st.ttl.is_none()));
}

#[test]
fn each_orphan_kind_on_one_server() {
    let server = RedisServer::start();
    let psor = Psor::connect(&PsorSpec::parse(&server.url()).unwrap(), &ConnectOptions::default()).unwrap();
    let cat = Catalog::builtin();
    let s = pac::sample(&psor, &cat, &pac("MyPAC"), &v("9.0"), &sample(120, PacMode::Running), p()).unwrap();
    pac::sample(&psor, &cat, &pac("MyPAC2"), &v("8.0"), &sample(30, PacMode::Running), p()).unwrap();
    let mut con = server.admin_conn();
    set(&mut con, &names("MyPAC_7.5:pct:", 3)); // unknown version
    set(&mut con, &names("MyPAC_8.0:pct:", 4)); // known version, no record
    set(&mut con, &names("MyPAC_9.0:weird:", 5)); // unknown store of a known version
    set(&mut con, &["MyPAC_9.0:junk".into(), "MyPAC_8.01:pct:X".into(), "MyPAC2".into()]);
    populate_all_types(&mut con, b"unrelated:", 10);

    let r = status(&psor, &cat, None, &StatusOptions::default());
    assert_eq!(
        orphans(&r),
        vec![
            (OrphanKind::NoRecord, "MyPAC".into(), "8.0".into(), None, 4),
            (OrphanKind::UnknownStore, "MyPAC".into(), "9.0".into(), Some("junk".into()), 1),
            (OrphanKind::UnknownStore, "MyPAC".into(), "9.0".into(), Some("weird".into()), 5),
            (OrphanKind::UnknownVersion, "MyPAC".into(), "7.5".into(), None, 3),
        ]
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(r.has_findings());
    // The known stores still count exactly; the neighbour PAC is nobody's orphan.
    assert_counts(&r, "MyPAC", "9.0", &s.stores);
    assert!(r.orphans.iter().all(|o| o.pac.as_str() == "MyPAC"));
    let weird = r.orphans.iter().find(|o| o.store.as_deref() == Some("weird")).unwrap();
    assert_eq!(weird.prefix, "MyPAC_9.0:weird:");
    assert!(weird.action.contains("catalog"), "{}", weird.action);
    // Asking for the neighbour alone: no findings.
    let r2 = status(&psor, &cat, Some("MyPAC2"), &StatusOptions::default());
    assert_eq!(r2.pacs.len(), 1);
    assert!(!r2.has_findings(), "{:?} {:?}", r2.orphans, r2.warnings);

    // Unknown stores are capped per version; the rest are counted in (other), none lost.
    pac::sample(&psor, &cat, &pac("CapPAC"), &v("9.0"), &sample(10, PacMode::Running), p()).unwrap();
    let many: Vec<String> = (0..20).map(|i| format!("CapPAC_9.0:u{i}:k")).collect();
    set(&mut con, &many);
    let r3 = status(&psor, &cat, Some("CapPAC"), &StatusOptions::default());
    let unknown: Vec<_> = r3.pacs[0].versions[0].stores.iter().filter(|s| !s.known).collect();
    assert_eq!(unknown.len(), pac::MAX_UNKNOWN_STORES + 1);
    assert_eq!(unknown.last().unwrap().store, "(other)");
    assert_eq!(unknown.iter().map(|s| s.keys).sum::<u64>(), 20);
}

#[test]
fn each_warning_on_one_server() {
    let server = RedisServer::start();
    let psor = Psor::connect(&PsorSpec::parse(&server.url()).unwrap(), &ConnectOptions::default()).unwrap();
    let cat = Catalog::builtin();
    let smp = |name: &str, ver: &str, mode| {
        pac::sample(&psor, &cat, &pac(name), &v(ver), &sample(20, mode), p()).unwrap();
    };
    smp("Two", "8.0", PacMode::Running);
    smp("Two", "9.0", PacMode::Running);
    smp("Back", "8.0", PacMode::Running);
    smp("Back", "9.0", PacMode::Quiesce);
    smp("Normal", "8.0", PacMode::Running);
    smp("Normal", "9.0", PacMode::Upgrade);
    smp("Q", "9.0", PacMode::Running);
    let mut con = server.admin_conn();
    set(&mut con, &names("Q_9.0:tsq:", 3));
    set(&mut con, &names("Q_9.0:TDQ:", 2));
    set(&mut con, &names("Q_9.0:myqueues:", 2));

    let r = status(&psor, &cat, None, &StatusOptions::default());
    let updated = r.pacs.iter().find(|p| p.pac.as_str() == "Normal").unwrap().version(&v("9.0")).unwrap();
    let updated = updated.record.as_ref().unwrap().record.updated_ms;
    assert_eq!(
        warnings(&r),
        vec![
            (WarningKind::OldVersionRunning, "Back".into(), "8.0".into(), None),
            (WarningKind::QueuesInPsor, "Q".into(), "9.0".into(), Some("TDQ".into())),
            (WarningKind::QueuesInPsor, "Q".into(), "9.0".into(), Some("tsq".into())),
            (WarningKind::SeveralRunning, "Two".into(), "8.0".into(), None),
        ],
        "old Running + new Upgrade (Normal) is the procedure in progress, not a warning"
    );
    let several = r.warnings.iter().find(|w| w.kind == WarningKind::SeveralRunning).unwrap();
    assert!(several.action.contains("set-mode Two quiesce --product-version 8.0"), "{}", several.action);

    // Upgrade mode for longer than the threshold (clock injected).
    let h = 3_600_000;
    let at = |now_ms| StatusOptions { now_ms, ..StatusOptions::default() };
    let stale = status(&psor, &cat, Some("Normal"), &at(updated + 25 * h));
    assert_eq!(warnings(&stale), vec![(WarningKind::UpgradeStale, "Normal".into(), "9.0".into(), None)]);
    assert!(stale.warnings[0].action.contains("set-mode Normal running --product-version 9.0"));
    assert!(status(&psor, &cat, Some("Normal"), &at(updated + 23 * h)).warnings.is_empty());
    let longer = StatusOptions { upgrade_warn_ms: 48 * h, ..at(updated + 25 * h) };
    assert!(status(&psor, &cat, Some("Normal"), &longer).warnings.is_empty());

    // A site names its own queue prefixes: then only those warn.
    let site =
        Catalog::from_toml_str("[catalog]\nname = \"site\"\nqueue_prefixes = [\"myqueues\"]\n", "site.toml").unwrap();
    let q = status(&psor, &site, Some("Q"), &StatusOptions::default());
    assert_eq!(warnings(&q), vec![(WarningKind::QueuesInPsor, "Q".into(), "9.0".into(), Some("myqueues".into()))]);
    let off = Catalog::from_toml_str("[catalog]\nqueue_prefixes = []\n", "off.toml").unwrap();
    assert!(status(&psor, &off, Some("Q"), &StatusOptions::default()).warnings.is_empty());
    assert!(Catalog::from_toml_str("[catalog]\nqueue_prefixes = [\"a:b\"]\n", "bad.toml").is_err());
}

#[test]
fn orphans_and_warnings_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let psor = Psor::connect(&PsorSpec::parse(&cluster.url()).unwrap(), &ConnectOptions::default()).unwrap();
    let cat = Catalog::builtin();
    let s = pac::sample(&psor, &cat, &pac("MyPAC"), &v("8.0"), &sample(300, PacMode::Running), p()).unwrap();
    pac::sample(&psor, &cat, &pac("MyPAC"), &v("9.0"), &sample(30, PacMode::Running), p()).unwrap();
    let s2 = pac::sample(&psor, &cat, &pac("MyPAC2"), &v("8.0"), &sample(40, PacMode::Running), p()).unwrap();
    let mut con = cluster.cluster_conn();
    set(&mut con, &names("MyPAC_7.5:pct:", 30));
    set(&mut con, &names("MyPAC_7.0:pct:", 20));
    set(&mut con, &names("MyPAC_8.0:weird:", 25));
    set(&mut con, &names("MyPAC_8.0:tsq:", 15));
    set(&mut con, &["MyPAC_8.01:pct:X".into(), "myPAC_8.0:pct:Z".into()]);
    populate_all_types(&mut con, b"unrelated:", 12);

    let r = status(&psor, &cat, None, &StatusOptions::default());
    assert_counts(&r, "MyPAC", "8.0", &s.stores);
    assert_counts(&r, "MyPAC2", "8.0", &s2.stores);
    assert_eq!(
        orphans(&r),
        vec![
            (OrphanKind::NoRecord, "MyPAC".into(), "7.0".into(), None, 20),
            (OrphanKind::NoRecord, "myPAC".into(), "8.0".into(), None, 1),
            (OrphanKind::UnknownStore, "MyPAC".into(), "8.0".into(), Some("tsq".into()), 15),
            (OrphanKind::UnknownStore, "MyPAC".into(), "8.0".into(), Some("weird".into()), 25),
            (OrphanKind::UnknownVersion, "MyPAC".into(), "7.5".into(), None, 30),
        ]
    );
    assert_eq!(
        warnings(&r),
        vec![
            (WarningKind::QueuesInPsor, "MyPAC".into(), "8.0".into(), Some("tsq".into())),
            (WarningKind::SeveralRunning, "MyPAC".into(), "8.0".into(), None),
        ]
    );
    // Bytes were estimated for every store although its keys are spread over three masters.
    let v8 = r.pacs[0].version(&v("8.0")).unwrap();
    assert!(v8.stores.iter().all(|st| st.bytes.is_some_and(|b| b > 0)));
    assert_eq!(v8.region_versions.iter().filter(|r| r.product_version.as_deref() == Some("8.0")).count(), 2);
}
