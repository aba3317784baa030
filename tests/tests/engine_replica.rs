//! `--read-from replica` (issue 13): the scan reads a caught-up replica, the writes go to
//! the master, and the result is exactly the master-only result — on a standalone master
//! with a replica, behind Sentinel, and on a cluster with replicas; a replica lost mid-run
//! leaves the rest of the scan to the master (or stops the run with `replica-only`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec, ReadChoice, ReadFrom};
use psor_core::engine::{self, CopyOptions, DeleteOptions, EngineOptions, Outcome, Pacing};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_core::Error;
use psor_tests::{
    keyspace_digest, keyspace_digest_cluster, populate_all_types, unique_prefix, KeyState, RedisCluster, RedisSentinel,
    RedisServer,
};

fn connect(spec: &str) -> Psor {
    Psor::connect(&PsorSpec::parse(spec).unwrap(), &ConnectOptions::default()).unwrap()
}

fn on_replica(mode: ReadFrom) -> EngineOptions {
    EngineOptions { scan_count: 50, batch_size: 37, writers: 2, read_from: mode, ..EngineOptions::default() }
}

fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::new(s.as_bytes()).unwrap()
}

fn delete(psor: &Psor, p: &str, engine: &EngineOptions) -> Result<Outcome, Error> {
    let opts = DeleteOptions { prefix: prefix(p), dry_run: false, sample: 5 };
    engine::delete(psor, &opts, engine, Arc::new(Progress::new()))
}

fn copy(psor: &Psor, from: &str, to: &str, move_keys: bool, engine: &EngineOptions) -> Outcome {
    let opts = CopyOptions { from: prefix(from), to: prefix(to), replace: false, move_keys, dry_run: false, sample: 5 };
    engine::copy(psor, None, &opts, engine, Arc::new(Progress::new())).unwrap()
}

/// How many `SCAN` calls `server` has served since its stats were last reset.
fn scan_calls(server: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut server.admin_conn()).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_scan:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

fn reset_stats(server: &RedisServer) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut server.admin_conn()).unwrap();
}

/// A master with `n` keys of every type under `<ns>A:` and neighbours, and a synced replica.
fn master_with_replica(ns: &str, n: usize) -> (RedisServer, RedisServer) {
    let master = RedisServer::start();
    let mut conn = master.admin_conn();
    populate_all_types(&mut conn, format!("{ns}A:").as_bytes(), n);
    for nb in ["A", "A;", "B:", "a:"] {
        populate_all_types(&mut conn, format!("{ns}{nb}").as_bytes(), 20);
    }
    let replica = RedisServer::replica_of(&master);
    // The replica has applied everything the test wrote before the run starts, and the stats
    // count only the run.
    reset_stats(&master);
    reset_stats(&replica);
    (master, replica)
}

fn outside(d: &BTreeMap<Vec<u8>, KeyState>, excluded: &str) -> BTreeMap<Vec<u8>, KeyState> {
    d.iter().filter(|(k, _)| !k.starts_with(excluded.as_bytes())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[test]
fn delete_scans_the_replica_and_deletes_exactly_the_prefix_on_the_master() {
    let ns = unique_prefix("replica-delete");
    let (master, replica) = master_with_replica(&ns, 400);
    let before = keyspace_digest(&mut master.admin_conn(), ns.as_bytes());
    let under = before.keys().filter(|k| k.starts_with(format!("{ns}A:").as_bytes())).count() as u64;
    let psor = connect(&master.url());
    reset_stats(&master);
    let out = delete(&psor, &format!("{ns}A:"), &on_replica(ReadFrom::Replica)).unwrap();
    // Before the checks below, which SCAN the master themselves.
    assert_eq!(scan_calls(&master), 0, "the master served no SCAN");
    assert!(scan_calls(&replica) > 0, "the replica served the scan");
    assert_eq!(out.counts.done, under);
    assert_eq!(out.counts.failed, 0);
    let after = keyspace_digest(&mut master.admin_conn(), ns.as_bytes());
    assert_eq!(after, outside(&before, &format!("{ns}A:")), "only the prefix's keys went");
    assert_eq!(out.read_from, vec![ReadChoice { master: master.addr(), read_node: replica.addr(), fallback: None }]);
}

#[test]
fn copy_and_move_scan_the_replica_and_copy_exactly_the_prefix() {
    let ns = unique_prefix("replica-copy");
    let (master, replica) = master_with_replica(&ns, 300);
    let psor = connect(&master.url());
    let src = format!("{ns}A:");
    let source = keyspace_digest(&mut master.admin_conn(), src.as_bytes());
    reset_stats(&master);
    let out = copy(&psor, &src, &format!("{ns}C:"), false, &on_replica(ReadFrom::Replica));
    assert_eq!(scan_calls(&master), 0, "the master served no SCAN");
    assert_eq!((out.counts.done, out.counts.failed, out.counts.conflicts), (source.len() as u64, 0, 0));
    let renamed = |d: &BTreeMap<Vec<u8>, KeyState>, to: &str| -> BTreeMap<Vec<u8>, KeyState> {
        d.iter()
            .map(|(k, v)| {
                let mut nk = to.as_bytes().to_vec();
                nk.extend_from_slice(&k[src.len()..]);
                (nk, v.clone())
            })
            .collect()
    };
    assert_eq!(
        keyspace_digest(&mut master.admin_conn(), format!("{ns}C:").as_bytes()),
        renamed(&source, &format!("{ns}C:"))
    );
    assert_eq!(out.read_from[0].read_node, replica.addr());
    // A move deletes on the master only what it copied.
    reset_stats(&master);
    reset_stats(&replica);
    let out = copy(&psor, &src, &format!("{ns}M:"), true, &on_replica(ReadFrom::Replica));
    assert_eq!(scan_calls(&master), 0);
    assert!(scan_calls(&replica) > 0);
    assert_eq!(out.counts.done, source.len() as u64);
    assert!(keyspace_digest(&mut master.admin_conn(), src.as_bytes()).is_empty());
    assert_eq!(
        keyspace_digest(&mut master.admin_conn(), format!("{ns}M:").as_bytes()),
        renamed(&source, &format!("{ns}M:"))
    );
}

#[test]
fn keys_written_during_the_run_do_not_hide_keys_from_the_start() {
    let ns = unique_prefix("replica-live");
    let (master, _replica) = master_with_replica(&ns, 0);
    let p = format!("{ns}A:");
    // Written just before the run, without waiting for the replica: the catch-up does.
    let mut conn = master.admin_conn();
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SET").arg(format!("{p}start:{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut conn).unwrap();
    let psor = connect(&master.url());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, mut conn, p) = (stop.clone(), master.admin_conn(), p.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _: () = redis::cmd("SET").arg(format!("{p}live:{i}")).arg(i).query(&mut conn).unwrap();
                i += 1;
                // About a thousand writes a second: the run outpaces them and ends.
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let engine =
        EngineOptions { pacing: Pacing { rate: Some(5000), max_latency: None }, ..on_replica(ReadFrom::Replica) };
    let out = delete(&psor, &p, &engine).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(out.read_from[0].fallback.is_none(), "{:?}", out.read_from);
    let left: Vec<Vec<u8>> = redis::cmd("KEYS").arg(format!("{p}start:*")).query(&mut conn).unwrap();
    assert!(left.is_empty(), "{} keys that existed at the start were missed", left.len());
}

/// Deletes 3000 keys slowly (paced), reading a replica that is stopped once the scan has begun.
fn delete_while_the_replica_dies(mode: ReadFrom) -> (RedisServer, String, Result<Outcome, Error>) {
    let ns = unique_prefix("replica-kill");
    let master = RedisServer::start();
    let p = format!("{ns}A:");
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SET").arg(format!("{p}{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut master.admin_conn()).unwrap();
    let mut replica = RedisServer::replica_of(&master);
    let psor = connect(&master.url());
    let engine =
        EngineOptions { queue_depth: 1, pacing: Pacing { rate: Some(1000), max_latency: None }, ..on_replica(mode) };
    let progress = Arc::new(Progress::new());
    let killer = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            // Once the scan has begun (a few hundred keys in, of 3000 at 1000 keys/s).
            while progress.snapshot().counts.matched < 300 {
                std::thread::sleep(Duration::from_millis(10));
            }
            replica.stop();
            replica
        })
    };
    let opts = DeleteOptions { prefix: prefix(&p), dry_run: false, sample: 5 };
    let out = engine::delete(&psor, &opts, &engine, progress);
    drop(killer.join().unwrap());
    (master, p, out)
}

#[test]
fn a_replica_lost_mid_run_leaves_the_scan_to_the_master() {
    let (master, p, out) = delete_while_the_replica_dies(ReadFrom::Replica);
    let out = out.unwrap();
    let left: Vec<Vec<u8>> = redis::cmd("KEYS").arg(format!("{p}*")).query(&mut master.admin_conn()).unwrap();
    assert!(left.is_empty(), "{} keys left", left.len());
    assert_eq!(out.counts.done, 3000);
    let choice = &out.read_from[0];
    assert_eq!(choice.read_node, master.addr());
    assert!(choice.fallback.as_deref().is_some_and(|f| f.contains("lost during the run")), "{choice:?}");
}

#[test]
fn replica_only_stops_when_the_replica_is_lost() {
    let (master, p, out) = delete_while_the_replica_dies(ReadFrom::ReplicaOnly);
    assert!(matches!(out, Err(Error::ReplicaUnavailable { .. })), "{out:?}");
    let left: Vec<Vec<u8>> = redis::cmd("KEYS").arg(format!("{p}*")).query(&mut master.admin_conn()).unwrap();
    assert!(!left.is_empty(), "the run stopped before the end");
}

#[test]
fn without_a_replica_replica_falls_back_and_replica_only_refuses() {
    let master = RedisServer::start();
    let ns = unique_prefix("replica-none");
    populate_all_types(&mut master.admin_conn(), format!("{ns}A:").as_bytes(), 50);
    let psor = connect(&master.url());
    let refused = delete(&psor, &format!("{ns}A:"), &on_replica(ReadFrom::ReplicaOnly));
    assert!(matches!(refused, Err(Error::ReplicaUnavailable { .. })), "{refused:?}");
    assert_eq!(keyspace_digest(&mut master.admin_conn(), format!("{ns}A:").as_bytes()).len(), 50, "nothing deleted");
    let out = delete(&psor, &format!("{ns}A:"), &on_replica(ReadFrom::Replica)).unwrap();
    assert_eq!(out.counts.done, 50);
    assert!(
        out.read_from[0].fallback.as_deref().is_some_and(|f| f.contains("no online replica")),
        "{:?}",
        out.read_from
    );
}

#[test]
fn behind_sentinel_the_scan_reads_the_masters_replica() {
    let ns = unique_prefix("replica-sentinel");
    let (master, replica) = master_with_replica(&ns, 200);
    let sentinel = RedisSentinel::start(&master, "psormaster");
    let before = keyspace_digest(&mut master.admin_conn(), ns.as_bytes());
    let psor = connect(&sentinel.url("psormaster"));
    reset_stats(&master);
    let out = delete(&psor, &format!("{ns}A:"), &on_replica(ReadFrom::Replica)).unwrap();
    assert_eq!(scan_calls(&master), 0);
    assert_eq!(out.read_from[0].read_node, replica.addr(), "{:?}", out.read_from);
    assert_eq!(keyspace_digest(&mut master.admin_conn(), ns.as_bytes()), outside(&before, &format!("{ns}A:")));
}

#[test]
fn on_a_cluster_each_master_is_scanned_on_its_replica() {
    let cluster = RedisCluster::start(3, 1);
    let ns = unique_prefix("replica-cluster");
    let mut conn = cluster.cluster_conn();
    populate_all_types(&mut conn, format!("{ns}A:").as_bytes(), 300);
    populate_all_types(&mut conn, format!("{ns}A;").as_bytes(), 30);
    populate_all_types(&mut conn, format!("{ns}B:").as_bytes(), 30);
    let before = keyspace_digest_cluster(&cluster, ns.as_bytes());
    let replicas: Vec<String> = cluster.replicas().iter().map(|r| r.addr()).collect();
    for r in cluster.replicas() {
        r.wait_synced();
    }
    for n in cluster.nodes() {
        reset_stats(n);
    }
    let psor = connect(&cluster.url());
    let out = delete(&psor, &format!("{ns}A:"), &on_replica(ReadFrom::Replica)).unwrap();
    for m in cluster.masters() {
        assert_eq!(scan_calls(m), 0, "master {} served SCAN", m.addr());
    }
    assert_eq!(out.read_from.len(), 3);
    for c in &out.read_from {
        assert!(c.fallback.is_none() && replicas.contains(&c.read_node), "{c:?}");
    }
    assert_eq!(keyspace_digest_cluster(&cluster, ns.as_bytes()), outside(&before, &format!("{ns}A:")));
}
