//! Identity by the server, not by the spelling: two specs reach one keyspace when the servers
//! behind them answer with the same `run_id` (and the same database), however they are
//! written — `localhost` or an IP, one cluster seed or another, two spellings of one file.

use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::{self, CopyOptions, EngineOptions};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_tests::{RedisCluster, RedisServer};

fn connect(spec: &str) -> Psor {
    Psor::connect(&PsorSpec::parse(spec).unwrap(), &ConnectOptions::default()).unwrap()
}

fn overlapping_copy(source: &Psor, target: &Psor) -> psor_core::Result<engine::Outcome> {
    let p = |s: &str| KeyPrefix::new(s.as_bytes()).unwrap();
    let opts =
        CopyOptions { from: p("a:"), to: p("a:b:"), replace: false, move_keys: false, dry_run: false, sample: 5 };
    engine::copy(source, Some(target), &opts, &EngineOptions::default(), Arc::new(Progress::new()))
}

#[test]
fn one_server_under_two_names_is_one_keyspace() {
    let server = RedisServer::start();
    let other = RedisServer::start();
    let ip = connect(&format!("redis://127.0.0.1:{}", server.port()));
    let name = connect(&format!("redis://localhost:{}", server.port()));
    let caspac = connect(&format!("redis,localhost:{}", server.port()));
    assert!(ip.same_keyspace(&name) && name.same_keyspace(&ip) && caspac.same_keyspace(&ip));
    assert!(!ip.same_keyspace(&connect(&format!("redis://localhost:{}/1", server.port()))));
    assert!(!ip.same_keyspace(&connect(&other.url())));
    assert!(matches!(overlapping_copy(&ip, &name), Err(psor_core::Error::Refused(_))));
}

#[test]
fn a_cluster_through_another_seed_is_one_keyspace() {
    let cluster = RedisCluster::start(3, 0);
    let ports: Vec<u16> = cluster.masters().iter().map(|m| m.port()).collect();
    let one = connect(&format!("redis+cluster://127.0.0.1:{}", ports[0]));
    let two = connect(&format!("redis+cluster://localhost:{}", ports[1]));
    assert!(one.same_keyspace(&two));
    // One master of the cluster, reached alone, shares its keyspace too.
    let single = connect(&format!("redis://localhost:{}", ports[2]));
    assert!(one.same_keyspace(&single));
    assert!(matches!(overlapping_copy(&one, &two), Err(psor_core::Error::Refused(_))));
}

#[test]
fn one_file_under_two_spellings_is_one_keyspace() {
    let dir = tempfile::tempdir().unwrap();
    let a = connect(&format!("file:{}", dir.path().join("s.psnap").display()));
    // `sub/..` (Path equality would see through a mere `./`).
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let b = connect(&format!("file:{}", dir.path().join("sub").join("..").join("s.psnap").display()));
    let c = connect(&format!("file:{}", dir.path().join("t.psnap").display()));
    assert!(a.same_keyspace(&b));
    assert!(!a.same_keyspace(&c));
}
