//! Snapshots on a real 3-master Redis Cluster (issue 5): file ↔ standalone ↔ cluster round
//! trips keep every type, binary key names and the exact expiry; `--rename` into a cluster
//! lands each key on its new slot's master; a rerun finds everything `unchanged` (through the
//! scratch-key content comparison, whose scratch key must share the target's slot) and leaves
//! no scratch key behind; a slot moved after connecting is still exported whole.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use psor_core::connect::{key_slot, ConnectOptions, Psor, PsorSpec};
use psor_core::engine::EngineOptions;
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_core::snapshot::{self, ExportOptions, ExportOutcome, ExportSelection, ImportOptions, ImportOutcome, Rename};
use psor_tests::{
    keyspace_digest, keyspace_digest_cluster, populate_all_types, unique_prefix, KeyState, RedisCluster, RedisServer,
};

fn connect(spec: &str) -> Psor {
    Psor::connect(&PsorSpec::parse(spec).unwrap(), &ConnectOptions::default()).unwrap()
}

/// Small batches: many pipelines, several threads, every master in each.
fn small() -> EngineOptions {
    EngineOptions { scan_count: 50, batch_size: 37, writers: 3, ..EngineOptions::default() }
}

fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::new(s.as_bytes()).unwrap()
}

fn export(psor: &Psor, p: &str, path: &Path) -> ExportOutcome {
    let opts =
        ExportOptions { selection: ExportSelection::prefix(prefix(p)), path: path.to_path_buf(), overwrite: false };
    snapshot::export(psor, &opts, &small(), Arc::new(Progress::new())).unwrap()
}

fn import_opts(path: &Path) -> ImportOptions {
    ImportOptions { path: path.to_path_buf(), rename: None, replace: false, dry_run: false, sample: 5 }
}

fn import(psor: &Psor, opts: &ImportOptions) -> ImportOutcome {
    snapshot::import(psor, opts, &small(), Arc::new(Progress::new())).unwrap()
}

fn renamed(d: &BTreeMap<Vec<u8>, KeyState>, from: &str, to: &str) -> BTreeMap<Vec<u8>, KeyState> {
    d.iter().map(|(k, v)| ([to.as_bytes(), &k[from.len()..]].concat(), v.clone())).collect()
}

/// 120 keys of every type under `<ns>a:` (binary names, a third with expiries), plus
/// neighbours sharing the prefix's bytes that must not travel.
fn populate(conn: &mut dyn redis::ConnectionLike, ns: &str) -> String {
    let p = format!("{ns}a:");
    populate_all_types(conn, p.as_bytes(), 120);
    for nb in ["a", "a;", "ab:"] {
        populate_all_types(conn, format!("{ns}{nb}").as_bytes(), 7);
    }
    p
}

/// Keys over every master of the cluster.
fn cluster_keys(cluster: &RedisCluster) -> u64 {
    cluster.masters().iter().map(|m| redis::cmd("DBSIZE").query::<u64>(&mut m.admin_conn()).unwrap()).sum()
}

fn assert_no_scratch_keys(cluster: &RedisCluster) {
    assert!(keyspace_digest_cluster(cluster, b"psor:import-compare:").is_empty(), "a scratch key was left");
}

/// The keys spread over every master: the round trip really crossed the cluster.
fn assert_on_every_master(cluster: &RedisCluster, p: &str) {
    for m in cluster.masters() {
        assert!(!keyspace_digest(&mut m.admin_conn(), p.as_bytes()).is_empty(), "no key under {p} on {}", m.addr());
    }
}

#[test]
fn standalone_to_file_to_cluster_and_a_rerun_is_unchanged() {
    let ns = unique_prefix("snap-s2c");
    let source = RedisServer::start();
    let p = populate(&mut source.admin_conn(), &ns);
    let want = keyspace_digest(&mut source.admin_conn(), p.as_bytes());
    assert_eq!(want.len(), 120);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.psnap");
    let out = export(&connect(&source.url()), &p, &path);
    assert_eq!((out.keys, out.with_ttl, out.failed), (120, 40, 0));

    let cluster = RedisCluster::start(3, 0);
    let target = connect(&cluster.url());
    let got = import(&target, &import_opts(&path));
    assert_eq!((got.counts.done, got.counts.conflicts, got.counts.failed), (120, 0, 0));
    assert_eq!(keyspace_digest_cluster(&cluster, p.as_bytes()), want);
    assert_on_every_master(&cluster, &p);
    assert_eq!(cluster_keys(&cluster), 120, "only the prefix travelled");

    // Rerun: every key unchanged. Hashtable sets reorder on RESTORE, so some go through the
    // scratch-key comparison, which only works if the scratch key shares the key's slot.
    let again = import(&target, &import_opts(&path));
    assert_eq!(
        (again.counts.done, again.counts.unchanged, again.counts.conflicts, again.counts.failed),
        (0, 120, 0, 0)
    );
    assert_no_scratch_keys(&cluster);
    // A dry run on the cluster sees every key existing; nothing is written.
    let dry = import(&target, &ImportOptions { dry_run: true, ..import_opts(&path) });
    assert_eq!((dry.counts.done, dry.counts.unchanged + dry.counts.conflicts), (0, 120));
    assert_eq!(cluster_keys(&cluster), 120);
}

#[test]
fn cluster_to_file_to_standalone() {
    let cluster = RedisCluster::start(3, 0);
    let ns = unique_prefix("snap-c2s");
    let p = populate(&mut cluster.cluster_conn(), &ns);
    let want = keyspace_digest_cluster(&cluster, p.as_bytes());
    assert_eq!(want.len(), 120);
    assert_on_every_master(&cluster, &p);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.psnap");
    let out = export(&connect(&cluster.url()), &p, &path);
    assert_eq!((out.keys, out.with_ttl, out.failed, out.vanished, out.duplicates), (120, 40, 0, 0, 0));
    for kind in ["string", "hash", "list", "set", "zset", "stream"] {
        assert_eq!(out.per_type[kind].keys, 20, "{kind}");
    }

    let target = RedisServer::start();
    let got = import(&connect(&target.url()), &import_opts(&path));
    assert_eq!((got.counts.done, got.counts.conflicts), (120, 0));
    assert_eq!(keyspace_digest(&mut target.admin_conn(), p.as_bytes()), want);
    assert_eq!(redis::cmd("DBSIZE").query::<u64>(&mut target.admin_conn()).unwrap(), 120);
}

#[test]
fn cluster_to_file_to_cluster_with_rename_and_a_rerun_is_unchanged() {
    let cluster = RedisCluster::start(3, 0);
    let ns = unique_prefix("snap-c2c");
    let p = populate(&mut cluster.cluster_conn(), &ns);
    let want = keyspace_digest_cluster(&cluster, p.as_bytes());
    let before = cluster_keys(&cluster);
    let psor = connect(&cluster.url());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.psnap");
    assert_eq!(export(&psor, &p, &path).keys, 120);

    // Into the same cluster under another prefix: every key changes slot (and mostly master).
    let to = format!("{ns}b:");
    let opts = ImportOptions { rename: Some(Rename { from: prefix(&p), to: prefix(&to) }), ..import_opts(&path) };
    let got = import(&psor, &opts);
    assert_eq!((got.counts.done, got.counts.conflicts, got.counts.failed), (120, 0, 0));
    assert_eq!(keyspace_digest_cluster(&cluster, to.as_bytes()), renamed(&want, &p, &to));
    assert_eq!(keyspace_digest_cluster(&cluster, p.as_bytes()), want, "the source keys are untouched");
    assert_on_every_master(&cluster, &to);
    assert_eq!(cluster_keys(&cluster), before + 120);

    let again = import(&psor, &opts);
    assert_eq!(
        (again.counts.done, again.counts.unchanged, again.counts.conflicts, again.counts.failed),
        (0, 120, 0, 0)
    );
    assert_no_scratch_keys(&cluster);

    // Someone else's value under the new prefix is a conflict left alone, on whichever master.
    let victim = renamed(&want, &p, &to).into_keys().next().unwrap();
    let mut conn = cluster.cluster_conn();
    redis::cmd("SET").arg(&victim).arg("someone else's").query::<()>(&mut conn).unwrap();
    let third = import(&psor, &opts);
    assert_eq!((third.counts.unchanged, third.counts.conflicts), (119, 1));
    let v: Vec<u8> = redis::cmd("GET").arg(&victim).query(&mut conn).unwrap();
    assert_eq!(v, b"someone else's");
    let replaced = import(&psor, &ImportOptions { replace: true, ..opts.clone() });
    assert_eq!((replaced.counts.done, replaced.counts.conflicts), (120, 0));
    assert_eq!(keyspace_digest_cluster(&cluster, to.as_bytes()), renamed(&want, &p, &to));
}

#[test]
fn a_slot_moved_after_connecting_is_exported_whole() {
    let cluster = RedisCluster::start(3, 0);
    let ns = unique_prefix("snap-moved");
    let p = populate(&mut cluster.cluster_conn(), &ns);
    let want = keyspace_digest_cluster(&cluster, p.as_bytes());
    // psor learns the slot map now; then one slot holding some of the keys moves.
    let psor = connect(&cluster.url());
    let slot = key_slot(want.keys().next().unwrap());
    let moved = want.keys().filter(|k| key_slot(k) == slot).count() as u64;
    let from = cluster.node_for_slot(slot);
    let to = cluster.masters().into_iter().find(|m| m.port() != from.port()).unwrap();
    cluster.migrate_slot(slot, from, to);

    // Reads of that slot meet MOVED inside their MULTI (EXEC aborts) and are read again
    // whole; the end-of-export sweep finds the slot's keys again (dropped as duplicates).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.psnap");
    let out = export(&psor, &p, &path);
    assert_eq!((out.keys, out.failed, out.vanished, out.duplicates), (120, 0, 0, moved));

    let target = RedisServer::start();
    let got = import(&connect(&target.url()), &import_opts(&path));
    assert_eq!(got.counts.done, 120);
    assert_eq!(keyspace_digest(&mut target.admin_conn(), p.as_bytes()), want);
}
