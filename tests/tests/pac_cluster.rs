//! The incompatible upgrade procedure end to end on a real 3-master Redis Cluster: the PAC's
//! resource tables spread over every master, its metadata shares one hash tag (one slot),
//! and a neighbour PAC and unrelated keys are byte-identical before and after.

use std::collections::BTreeMap;
use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::EngineOptions;
use psor_core::layout::{Catalog, PacMode, PacName, ProductVersion};
use psor_core::pac::{self, CreateOptions, RemOldPacOptions, SampleOptions, SetModeOptions};
use psor_core::progress::Progress;
use psor_tests::{keyspace_digest_cluster, populate_all_types, KeyState, RedisCluster};

type Digest = BTreeMap<Vec<u8>, KeyState>;

fn p() -> Arc<Progress> {
    Arc::new(Progress::new())
}

fn without(d: &Digest, prefixes: &[&str]) -> Digest {
    d.iter()
        .filter(|(k, _)| !prefixes.iter().any(|p| k.starts_with(p.as_bytes())))
        .map(|(k, s)| (k.clone(), s.clone()))
        .collect()
}

fn renamed(d: &Digest, from: &str, to: &str) -> Digest {
    d.iter()
        .filter(|(k, _)| k.starts_with(from.as_bytes()))
        .map(|(k, s)| ([to.as_bytes(), &k[from.len()..]].concat(), s.clone()))
        .collect()
}

#[test]
fn the_incompatible_upgrade_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let psor = Psor::connect(&PsorSpec::parse(&cluster.url()).unwrap(), &ConnectOptions::default()).unwrap();
    let engine = EngineOptions { scan_count: 100, batch_size: 50, ..EngineOptions::default() };
    let cat = Catalog::builtin();
    let (my, v8, v9) =
        (PacName::new("MyPAC").unwrap(), ProductVersion::new("8.0").unwrap(), ProductVersion::new("9.0").unwrap());
    let sample = SampleOptions { keys: 300, regions: 2, mode: PacMode::Running, large_values: 2 };
    pac::sample(&psor, &cat, &my, &v8, &sample, p()).unwrap();
    pac::sample(&psor, &cat, &PacName::new("MyPAC2").unwrap(), &v8, &SampleOptions { keys: 40, ..sample.clone() }, p())
        .unwrap();
    let mut con = cluster.cluster_conn();
    populate_all_types(&mut con, b"unrelated:", 24);
    for k in ["MyPAC_8.01:pct:X", "MyPAC_8.0", "myPAC_8.0:pct:Z"] {
        redis::cmd("SET").arg(k).arg("neighbour").query::<()>(&mut con).unwrap();
    }
    let before = keyspace_digest_cluster(&cluster, b"");
    let neighbours = without(&before, &["MyPAC_8.0:", "MyPAC_9.0:"]);
    // The sample really spread over the cluster.
    for m in cluster.masters() {
        let n: u64 = redis::cmd("DBSIZE").query(&mut m.admin_conn()).unwrap();
        assert!(n > 50, "master {} holds only {n} keys", m.addr());
    }

    let c = pac::check_compat(&psor, &cat, &my, &v9, &engine, p()).unwrap();
    assert!(!c.compatible);
    let o = pac::create(&psor, &cat, &my, &v9, &CreateOptions::default(), &engine, p()).unwrap();
    assert_eq!((o.counts.done, o.counts.conflicts, o.counts.failed), (300, 0, 0));
    let mid = keyspace_digest_cluster(&cluster, b"");
    for store in ["pct", "fct", "ppt", "dct", "tst", "enqmodel"] {
        let old = renamed(&mid, &format!("MyPAC_8.0:{store}:"), &format!("MyPAC_9.0:{store}:"));
        assert!(!old.is_empty(), "store {store} is empty");
        assert_eq!(old, renamed(&mid, &format!("MyPAC_9.0:{store}:"), &format!("MyPAC_9.0:{store}:")), "store {store}");
    }

    let running = SetModeOptions { mode: PacMode::Running, dry_run: false };
    let m = pac::set_mode(&psor, &cat, &my, &ProductVersion::new("9.0.2").unwrap(), running, &engine, p()).unwrap();
    assert_eq!((m.before.mode, m.after.mode), (PacMode::Upgrade, PacMode::Running));
    let quiesce = SetModeOptions { mode: PacMode::Quiesce, dry_run: false };
    assert_eq!(pac::set_mode(&psor, &cat, &my, &v8, quiesce, &engine, p()).unwrap().after.mode, PacMode::Quiesce);
    // Old regions still registered: refused. Once they leave, the old PAC goes.
    assert!(matches!(
        pac::rem_old_pac(&psor, &cat, &my, &RemOldPacOptions::default(), &engine, p()),
        Err(pac::Error::InUse { .. })
    ));
    let n: i64 = redis::cmd("DEL").arg("MyPAC_8.0:regions:{MyPAC_8.0}").query(&mut con).unwrap();
    assert_eq!(n, 1);
    let r = pac::rem_old_pac(&psor, &cat, &my, &RemOldPacOptions::default(), &engine, p()).unwrap();
    assert_eq!(r.deleted.len(), 1);

    let after = keyspace_digest_cluster(&cluster, b"");
    assert!(after.keys().all(|k| !k.starts_with(b"MyPAC_8.0:")));
    assert_eq!(without(&after, &["MyPAC_9.0:"]), neighbours, "neighbours are byte-identical");
    let st = pac::status(&psor, &cat, Some(&my), &engine, p()).unwrap();
    assert_eq!((st.pacs.len(), st.pacs[0].versions.len()), (1, 1));
    assert_eq!(st.pacs[0].versions[0].mode(), Some(PacMode::Running));
}
