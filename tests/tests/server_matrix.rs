//! psor against each server build by name, whatever `PSOR_TEST_SERVER` says: it names a Valkey
//! a Valkey (not by its `redis_version:7.2.4`), restores a Valkey 9.1 backup into another Valkey
//! 9.1, finds a Valkey cluster from a caspac node list, and judges the embedded store by what
//! its decoder reads. A test whose build is not installed (`scripts/fetch-servers.sh`) says so
//! and returns.

use std::path::Path;
use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Product, Psor, PsorSpec};
use psor_core::engine::{self, CopyOptions, EngineOptions};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_core::snapshot::{self, ExportOptions, ExportSelection, ImportOptions};
use psor_tests::{keyspace_digest, populate_all_types, unique_prefix, RedisCluster, RedisServer, ServerKind};

fn connect(url: &str) -> Psor {
    Psor::connect(&PsorSpec::parse(url).unwrap(), &ConnectOptions::default()).unwrap()
}

fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::new(s.as_bytes()).unwrap()
}

fn small() -> EngineOptions {
    EngineOptions { scan_count: 50, batch_size: 37, writers: 3, ..EngineOptions::default() }
}

fn missing(kind: ServerKind, test: &str) -> bool {
    !kind.is_installed() && psor_tests::skip(test, &format!("{kind} is not installed (scripts/fetch-servers.sh)"))
}

fn export(psor: &Psor, ns: &str, path: &Path) {
    let opts =
        ExportOptions { selection: ExportSelection::prefix(prefix(ns)), path: path.to_path_buf(), overwrite: false };
    snapshot::export(psor, &opts, &small(), Arc::new(Progress::new())).unwrap();
}

fn import(psor: &Psor, path: &Path) -> snapshot::ImportOutcome {
    let opts = ImportOptions { path: path.to_path_buf(), rename: None, replace: false, dry_run: false, sample: 5 };
    snapshot::import(psor, &opts, &small(), Arc::new(Progress::new())).unwrap()
}

#[test]
fn each_server_is_named_by_its_product_and_version() {
    for kind in ServerKind::ALL.into_iter().filter(|k| k.is_installed()) {
        let server = RedisServer::builder().server(kind).start();
        let info = connect(&server.url()).server();
        assert_eq!(info.to_string(), kind.display_name(), "{kind}");
        assert_eq!(info.product == Product::Valkey, kind.is_valkey(), "{kind}");
        assert_eq!(info.rdb_version(), Some(kind.rdb_version()), "{kind}");
        assert_eq!(info.reads_rdb(kind.rdb_version()), Some(true), "{kind} reads its own payloads");
        assert_eq!(info.has_field_ttls(), kind.has_field_ttls(), "{kind}");
    }
}

#[test]
fn a_valkey_9_backup_restores_into_another_valkey_9_and_copies_between_them() {
    let kind = ServerKind::Valkey91;
    if missing(kind, "a_valkey_9_backup_restores_into_another_valkey_9_and_copies_between_them") {
        return;
    }
    let (a, b) = (RedisServer::builder().server(kind).start(), RedisServer::builder().server(kind).start());
    let ns = unique_prefix("valkey9");
    populate_all_types(&mut a.admin_conn(), ns.as_bytes(), 60);
    let want = keyspace_digest(&mut a.admin_conn(), ns.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v9.psnap");
    export(&connect(&a.url()), &ns, &path);
    let inspected = snapshot::inspect(&snapshot::InspectOptions { path: path.clone(), depth: 1, top: 1 }).unwrap();
    assert_eq!(inspected.server, "Valkey 9.1.2");
    let got = import(&connect(&b.url()), &path);
    assert_eq!((got.counts.done, got.counts.failed, got.source_server_version.as_str()), (60, 0, "Valkey 9.1.2"));
    assert_eq!(keyspace_digest(&mut b.admin_conn(), ns.as_bytes()), want);

    // And a copy from one to the other, under another prefix.
    let to = unique_prefix("valkey9-copy");
    let opts =
        CopyOptions { from: prefix(&ns), to: prefix(&to), replace: false, move_keys: false, dry_run: false, sample: 3 };
    let out =
        engine::copy(&connect(&a.url()), Some(&connect(&b.url())), &opts, &small(), Arc::new(Progress::new())).unwrap();
    assert_eq!((out.counts.done, out.counts.failed), (60, 0));
    assert_eq!(keyspace_digest(&mut b.admin_conn(), to.as_bytes()).len(), 60);
}

#[test]
fn a_caspac_node_list_of_a_valkey_cluster_is_a_cluster() {
    let kind = ServerKind::Valkey91;
    if missing(kind, "a_caspac_node_list_of_a_valkey_cluster_is_a_cluster") {
        return;
    }
    let cluster = RedisCluster::start_on(kind, 3, 0);
    let psor = connect(&format!("redis,{}", cluster.seeds().join(",")));
    assert!(psor.is_cluster());
    assert_eq!(psor.masters().len(), 3);
    assert_eq!(psor.server().to_string(), "Valkey 9.1.2");
}

#[test]
fn a_valkey_8_backup_goes_through_the_embedded_store_and_back() {
    let kind = ServerKind::Valkey81;
    if missing(kind, "a_valkey_8_backup_goes_through_the_embedded_store_and_back") {
        return;
    }
    let (a, b) = (RedisServer::builder().server(kind).start(), RedisServer::builder().server(kind).start());
    let ns = unique_prefix("valkey8-store");
    populate_all_types(&mut a.admin_conn(), ns.as_bytes(), 36);
    let want = keyspace_digest(&mut a.admin_conn(), ns.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let (backup, store, back) =
        (dir.path().join("v8.psnap"), dir.path().join("store.psnap"), dir.path().join("b.psnap"));
    export(&connect(&a.url()), &ns, &backup);
    // The store reads RDB 11 payloads: it is judged by its decoder, not as a "Redis 7.0.0".
    let file = connect(&format!("file:{}", store.display()));
    assert_eq!(file.server().product, Product::Embedded);
    assert_eq!(import(&file, &backup).counts.done, 36);
    file.flush().unwrap();
    export(&connect(&format!("file:{}", store.display())), &ns, &back);
    assert_eq!(import(&connect(&b.url()), &back).counts.done, 36);
    assert_eq!(keyspace_digest(&mut b.admin_conn(), ns.as_bytes()), want);
}
