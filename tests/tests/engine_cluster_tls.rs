//! The engine on a TLS-only Redis Cluster (`port 0`, `tls-port`, `tls-cluster yes`): psor
//! discovers the masters through `CLUSTER NODES` over TLS, connects to the TLS ports it
//! reports, and copies across slots and deletes with the same exact counts and contents as
//! on a plain cluster. Without the private CA it fails to connect instead of doing anything.

use std::collections::BTreeMap;
use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec, Topology};
use psor_core::engine::{self, CopyOptions, DeleteOptions, EngineOptions, Outcome};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_core::Error;
use psor_tests::{keyspace_digest_cluster, populate_all_types, unique_prefix, KeyState, RedisCluster};

fn tls_opts(cluster: &RedisCluster) -> ConnectOptions {
    let (ca, cert, key) = cluster.tls_files();
    ConnectOptions { tls_ca: Some(ca), tls_cert: Some(cert), tls_key: Some(key), ..Default::default() }
}

fn small_batches() -> EngineOptions {
    EngineOptions { scan_count: 50, batch_size: 37, writers: 2, ..EngineOptions::default() }
}

fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::new(s.as_bytes()).unwrap()
}

fn copy_opts(from: &str, to: &str) -> CopyOptions {
    CopyOptions { from: prefix(from), to: prefix(to), replace: false, move_keys: false, dry_run: false, sample: 5 }
}

fn copy(psor: &Psor, opts: &CopyOptions) -> Outcome {
    engine::copy(psor, None, opts, &small_batches(), Arc::new(Progress::new())).unwrap()
}

fn delete(psor: &Psor, p: &str, dry_run: bool) -> Outcome {
    let opts = DeleteOptions { prefix: prefix(p), dry_run, sample: 5 };
    engine::delete(psor, &opts, &small_batches(), Arc::new(Progress::new())).unwrap()
}

fn renamed(d: &BTreeMap<Vec<u8>, KeyState>, from: &str, to: &str) -> BTreeMap<Vec<u8>, KeyState> {
    d.iter().map(|(k, v)| ([to.as_bytes(), &k[from.len()..]].concat(), v.clone())).collect()
}

fn outside(cluster: &RedisCluster, ns: &str, excluded: &str) -> BTreeMap<Vec<u8>, KeyState> {
    let mut d = keyspace_digest_cluster(cluster, ns.as_bytes());
    d.retain(|k, _| !k.starts_with(excluded.as_bytes()));
    d
}

/// The port each master reports for itself in `CLUSTER NODES` (the `myself` line).
fn reported_port(node: &psor_tests::RedisServer) -> u16 {
    let text: String = redis::cmd("CLUSTER").arg("NODES").query(&mut node.admin_conn()).unwrap();
    let line = text.lines().find(|l| l.contains("myself")).unwrap();
    let addr = line.split_whitespace().nth(1).unwrap().split('@').next().unwrap();
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[test]
fn copy_and_delete_on_a_tls_cluster() {
    if psor_tests::skip_without_tls("copy_and_delete_on_a_tls_cluster") {
        return;
    }
    let cluster = RedisCluster::start_tls(3, 0);
    assert!(cluster.url().starts_with("rediss+cluster://"), "{}", cluster.url());
    let mut conn = cluster.cluster_conn();
    let ns = unique_prefix("tlscluster");
    let (a, b) = (format!("{ns}MyPAC_8.0:"), format!("{ns}MyPAC_9.0:"));
    populate_all_types(&mut conn, a.as_bytes(), 240);
    for nb in ["MyPAC_8.01:", "MyPAC_8.0", "MyPAC2_8.0:"] {
        populate_all_types(&mut conn, format!("{ns}{nb}").as_bytes(), 18);
    }
    let original = keyspace_digest_cluster(&cluster, a.as_bytes());
    assert_eq!(original.len(), 240);
    // The keys really are spread over the masters, so "across slots" means across nodes.
    let slots: std::collections::BTreeSet<u16> = original.keys().map(|k| cluster.slot_of(k)).collect();
    assert!(slots.len() > 100, "{} slots", slots.len());

    let psor = Psor::connect(&PsorSpec::parse(&cluster.url()).unwrap(), &tls_opts(&cluster)).unwrap();
    assert!(psor.is_cluster());

    // psor's masters are exactly the cluster's masters at their TLS ports: the ports the
    // nodes report in CLUSTER NODES (plain `port` is 0, so nothing else could answer).
    let mut want: Vec<u16> = cluster.masters().iter().map(|m| m.port()).collect();
    want.sort_unstable();
    for m in cluster.masters() {
        assert_eq!(reported_port(m), m.port(), "CLUSTER NODES reports a port other than tls-port");
    }
    let mut got: Vec<u16> = psor.masters().iter().map(|n| n.host_port().expect("fixed address").port).collect();
    got.sort_unstable();
    assert_eq!(got, want);
    let Topology::Cluster(map) = psor.topology() else { panic!("not a cluster topology") };
    let mut mapped: Vec<u16> = map.masters.iter().map(|hp| hp.port).collect();
    mapped.sort_unstable();
    assert_eq!(mapped, want);
    assert_eq!(psor.dbsize().unwrap(), 240 + 3 * 18);

    // Copy across slots, then a rerun that finds everything already there.
    let before = outside(&cluster, &ns, &b);
    let out = copy(&psor, &copy_opts(&a, &b));
    assert_eq!((out.counts.matched, out.counts.done, out.counts.conflicts, out.counts.failed), (240, 240, 0, 0));
    assert_eq!(keyspace_digest_cluster(&cluster, b.as_bytes()), renamed(&original, &a, &b));
    assert_eq!(outside(&cluster, &ns, &b), before, "a key outside the target changed");
    let again = copy(&psor, &copy_opts(&a, &b));
    assert_eq!((again.counts.done, again.counts.unchanged, again.counts.conflicts), (0, 240, 0));

    // Delete the source prefix: exactly its keys go, the neighbours and the copy stay.
    let before = outside(&cluster, &ns, &a);
    let dry = delete(&psor, &a, true);
    assert_eq!((dry.counts.matched, dry.counts.failed), (240, 0));
    assert_eq!(keyspace_digest_cluster(&cluster, a.as_bytes()), original, "the dry run deleted something");
    let out = delete(&psor, &a, false);
    assert_eq!((out.counts.matched, out.counts.done, out.counts.failed), (240, 240, 0));
    assert!(keyspace_digest_cluster(&cluster, a.as_bytes()).is_empty());
    assert_eq!(keyspace_digest_cluster(&cluster, ns.as_bytes()), before);
}

#[test]
fn a_tls_cluster_without_its_ca_or_without_tls_is_a_connect_error() {
    if psor_tests::skip_without_tls("a_tls_cluster_without_its_ca_or_without_tls_is_a_connect_error") {
        return;
    }
    let cluster = RedisCluster::start_tls(3, 0);
    // TLS, but the system roots do not know the private CA.
    let err = Psor::connect(&PsorSpec::parse(&cluster.url()).unwrap(), &ConnectOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    // Plain text to TLS ports.
    let plain = cluster.url().replacen("rediss+cluster", "redis+cluster", 1);
    let two = std::time::Duration::from_secs(2);
    let opts = ConnectOptions { connect_timeout: two, read_timeout: two, retries: 0, ..Default::default() };
    let err = Psor::connect(&PsorSpec::parse(&plain).unwrap(), &opts).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}
