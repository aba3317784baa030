//! A dry run says what the run will do: the engine's dry-run copy compares an existing
//! target the way the real run does (same expiry, same `DUMP` bytes or the same content read
//! by type), on one server, across slots of a 3-master cluster, and to another server, so
//! identical targets are `unchanged` in both and only the others are conflicts.

use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::{self, CopyOptions, EngineOptions};
use psor_core::keys::KeyPrefix;
use psor_core::progress::{Counts, Progress};
use psor_tests::{populate_all_types, unique_prefix, RedisCluster, RedisServer};

fn connect(spec: &str) -> Psor {
    Psor::connect(&PsorSpec::parse(spec).unwrap(), &ConnectOptions::default()).unwrap()
}

fn copy(source: &Psor, target: Option<&Psor>, from: &str, to: &str, dry_run: bool) -> Counts {
    let opts = CopyOptions {
        from: KeyPrefix::new(from.as_bytes()).unwrap(),
        to: KeyPrefix::new(to.as_bytes()).unwrap(),
        replace: false,
        move_keys: false,
        dry_run,
        sample: 5,
    };
    let engine = EngineOptions { scan_count: 50, batch_size: 37, ..EngineOptions::default() };
    engine::copy(source, target, &opts, &engine, Arc::new(Progress::new())).unwrap().counts
}

/// Copies `a` to `b` once, then adds one new source key; a dry rerun and the real rerun
/// must then count the same (all unchanged but the new one).
fn rerun_matches_dry_run(source: &Psor, target: Option<&Psor>, conn: &mut dyn redis::ConnectionLike, ns: &str) {
    let (a, b) = (format!("{ns}a:"), format!("{ns}b:"));
    populate_all_types(conn, a.as_bytes(), 60);
    let first = copy(source, target, &a, &b, false);
    assert_eq!((first.conflicts, first.failed), (0, 0), "{first:?}");
    redis::cmd("SET").arg(format!("{a}new")).arg("v").query::<()>(conn).unwrap();
    let dry = copy(source, target, &a, &b, true);
    assert_eq!(dry.conflicts, 0, "an identical target is not a conflict: {dry:?}");
    assert_eq!(dry.unchanged, first.done, "{dry:?}");
    assert_eq!(dry.done, 1, "{dry:?}");
    let real = copy(source, target, &a, &b, false);
    assert_eq!((dry.done, dry.unchanged, dry.conflicts), (real.done, real.unchanged, real.conflicts));
}

#[test]
fn dry_run_equals_the_rerun_on_one_server_and_to_another() {
    let server = RedisServer::start();
    let psor = connect(&server.url());
    rerun_matches_dry_run(&psor, None, &mut server.admin_conn(), &unique_prefix("dry-one"));

    let other = RedisServer::start();
    let target = connect(&other.url());
    rerun_matches_dry_run(&psor, Some(&target), &mut server.admin_conn(), &unique_prefix("dry-two"));
}

#[test]
fn dry_run_equals_the_rerun_across_cluster_slots() {
    let cluster = RedisCluster::start(3, 0);
    let psor = connect(&cluster.url());
    rerun_matches_dry_run(&psor, None, &mut cluster.cluster_conn(), &unique_prefix("dry-cluster"));
}
