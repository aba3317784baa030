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
use psor_core::snapshot::{self, ExportOptions, ExportOutcome, ExportSelection, ImportOptions};
use psor_core::survey::{self, Survey, SurveyOptions};
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

// ---- Reads, not just the scan, on the replica: copy's DUMP stage, export, survey ----

/// How many calls of `command` (lower case, `memory|usage` for a subcommand) `server` has
/// served since its stats were last reset.
fn calls(server: &RedisServer, command: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut server.admin_conn()).unwrap();
    let head = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(head.as_str()))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Every value read a run does on a source: the scan and the per-key reads (Redis before 7.0
/// counts `MEMORY USAGE` as `memory`).
const READS: [&str; 8] = ["scan", "dump", "pexpiretime", "pttl", "type", "memory|usage", "memory", "exec"];

fn value_reads(server: &RedisServer) -> Vec<(&'static str, u64)> {
    READS.iter().map(|c| (*c, calls(server, c))).filter(|(_, n)| *n > 0).collect()
}

fn renamed(d: &BTreeMap<Vec<u8>, KeyState>, from: &str, to: &str) -> BTreeMap<Vec<u8>, KeyState> {
    d.iter()
        .map(|(k, v)| {
            let mut nk = to.as_bytes().to_vec();
            nk.extend_from_slice(&k[from.len()..]);
            (nk, v.clone())
        })
        .collect()
}

fn copy_to(source: &Psor, target: &Psor, from: &str, to: &str, move_keys: bool, engine: &EngineOptions) -> Outcome {
    let opts = CopyOptions { from: prefix(from), to: prefix(to), replace: false, move_keys, dry_run: false, sample: 5 };
    engine::copy(source, Some(target), &opts, engine, Arc::new(Progress::new())).unwrap()
}

#[test]
fn a_copy_to_another_server_reads_every_value_on_the_replica() {
    let ns = unique_prefix("replica-xcopy");
    let (master, replica) = master_with_replica(&ns, 300);
    let target = RedisServer::start();
    let src = format!("{ns}A:");
    let source = keyspace_digest(&mut master.admin_conn(), src.as_bytes());
    let (psor, dst) = (connect(&master.url()), connect(&target.url()));
    reset_stats(&master);
    reset_stats(&replica);
    let out = copy_to(&psor, &dst, &src, &format!("{ns}T:"), false, &on_replica(ReadFrom::Replica));
    // Before the digests below, which read the master themselves.
    assert_eq!(value_reads(&master), vec![], "the master served no read");
    assert!(
        calls(&replica, "scan") > 0 && calls(&replica, "dump") >= source.len() as u64,
        "{:?}",
        value_reads(&replica)
    );
    assert_eq!((out.counts.done, out.counts.failed, out.counts.conflicts), (source.len() as u64, 0, 0));
    assert_eq!(out.read_from, vec![ReadChoice { master: master.addr(), read_node: replica.addr(), fallback: None }]);
    assert_eq!(
        keyspace_digest(&mut target.admin_conn(), format!("{ns}T:").as_bytes()),
        renamed(&source, &src, &format!("{ns}T:")),
        "every key, its content and its expiry"
    );
    // A rerun finds every target identical (its comparison reads the master: a few DUMPs).
    let again = copy_to(&psor, &dst, &src, &format!("{ns}T:"), false, &on_replica(ReadFrom::Replica));
    assert_eq!((again.counts.unchanged, again.counts.conflicts, again.counts.done), (source.len() as u64, 0, 0));
}

#[test]
fn a_move_to_another_server_reads_the_values_it_deletes_on_the_master() {
    let ns = unique_prefix("replica-xmove");
    let (master, replica) = master_with_replica(&ns, 200);
    let target = RedisServer::start();
    let src = format!("{ns}A:");
    let source = keyspace_digest(&mut master.admin_conn(), src.as_bytes());
    let (psor, dst) = (connect(&master.url()), connect(&target.url()));
    // The replica holds an older value of one key than the master: the move must carry the
    // master's (it deletes the master's key afterwards).
    let key = source.keys().next().unwrap().clone();
    let _: () =
        redis::cmd("CONFIG").arg("SET").arg("replica-read-only").arg("no").query(&mut replica.admin_conn()).unwrap();
    let _: () = redis::cmd("SET").arg(&key).arg("stale on the replica").query(&mut replica.admin_conn()).unwrap();
    reset_stats(&master);
    reset_stats(&replica);
    let out = copy_to(&psor, &dst, &src, &format!("{ns}T:"), true, &on_replica(ReadFrom::Replica));
    assert_eq!(calls(&master, "scan"), 0, "the scan is on the replica");
    assert!(calls(&master, "dump") >= source.len() as u64, "the values are read on the master");
    assert_eq!(calls(&replica, "dump"), 0);
    assert_eq!((out.counts.done, out.counts.failed), (source.len() as u64, 0));
    assert!(keyspace_digest(&mut master.admin_conn(), src.as_bytes()).is_empty());
    assert_eq!(
        keyspace_digest(&mut target.admin_conn(), format!("{ns}T:").as_bytes()),
        renamed(&source, &src, &format!("{ns}T:")),
        "the master's values, not the replica's"
    );
}

#[test]
fn a_copy_reads_a_consistent_past_while_writes_arrive_and_misses_no_key_of_the_start() {
    let ns = unique_prefix("replica-xlive");
    let (master, replica) = master_with_replica(&ns, 0);
    let target = RedisServer::start();
    let p = format!("{ns}A:");
    let mut conn = master.admin_conn();
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SET").arg(format!("{p}start:{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut conn).unwrap();
    let (psor, dst) = (connect(&master.url()), connect(&target.url()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, mut conn, p) = (stop.clone(), master.admin_conn(), p.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // New keys, and new values of keys of the start.
                let _: () = redis::cmd("SET").arg(format!("{p}live:{i}")).arg(i).query(&mut conn).unwrap();
                let _: () =
                    redis::cmd("SET").arg(format!("{p}start:{}", i % 3000)).arg("new").query(&mut conn).unwrap();
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let engine =
        EngineOptions { pacing: Pacing { rate: Some(5000), max_latency: None }, ..on_replica(ReadFrom::Replica) };
    let out = copy_to(&psor, &dst, &p, &format!("{ns}T:"), false, &engine);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(out.read_from[0].fallback.is_none(), "{:?}", out.read_from);
    assert!(calls(&replica, "dump") > 0);
    assert_eq!((out.counts.failed, out.counts.conflicts), (0, 0));
    let mut t = target.admin_conn();
    for i in 0..3000 {
        // Every key of the start, with its value at the start or a later one: never another.
        let v: Option<String> = redis::cmd("GET").arg(format!("{ns}T:start:{i}")).query(&mut t).unwrap();
        assert!(v.as_deref() == Some(&i.to_string()) || v.as_deref() == Some("new"), "key {i}: {v:?}");
    }
}

/// Copies 3000 keys to another server slowly (paced), reading a replica that is stopped
/// once the run has begun.
fn copy_while_the_replica_dies(mode: ReadFrom) -> (RedisServer, RedisServer, String, Result<Outcome, Error>) {
    let ns = unique_prefix("replica-xkill");
    let master = RedisServer::start();
    let target = RedisServer::start();
    let p = format!("{ns}A:");
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SET").arg(format!("{p}{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut master.admin_conn()).unwrap();
    let mut replica = RedisServer::replica_of(&master);
    let (psor, dst) = (connect(&master.url()), connect(&target.url()));
    let engine =
        EngineOptions { queue_depth: 1, pacing: Pacing { rate: Some(1000), max_latency: None }, ..on_replica(mode) };
    let progress = Arc::new(Progress::new());
    let killer = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            while progress.snapshot().counts.done < 300 {
                std::thread::sleep(Duration::from_millis(10));
            }
            replica.stop();
            replica
        })
    };
    let opts = CopyOptions {
        from: prefix(&p),
        to: prefix(&format!("{ns}T:")),
        replace: false,
        move_keys: false,
        dry_run: false,
        sample: 5,
    };
    let out = engine::copy(&psor, Some(&dst), &opts, &engine, progress);
    drop(killer.join().unwrap());
    (master, target, format!("{ns}T:"), out)
}

#[test]
fn a_replica_lost_mid_copy_leaves_the_reads_to_the_master_and_everything_is_copied() {
    let (_master, target, t, out) = copy_while_the_replica_dies(ReadFrom::Replica);
    let out = out.unwrap();
    let copied = keyspace_digest(&mut target.admin_conn(), t.as_bytes());
    assert_eq!(copied.len(), 3000);
    for i in 0..3000 {
        assert!(copied.contains_key(format!("{t}{i}").as_bytes()), "{t}{i} missing");
    }
    assert_eq!(out.counts.failed, 0);
    assert!(out.counts.done + out.counts.unchanged >= 3000, "{:?}", out.counts);
    let choice = &out.read_from[0];
    assert!(choice.fallback.as_deref().is_some_and(|f| f.contains("lost during the run")), "{choice:?}");
}

#[test]
fn replica_only_stops_a_copy_when_the_replica_is_lost() {
    let (_master, target, t, out) = copy_while_the_replica_dies(ReadFrom::ReplicaOnly);
    assert!(matches!(out, Err(Error::ReplicaUnavailable { .. })), "{out:?}");
    assert!(keyspace_digest(&mut target.admin_conn(), t.as_bytes()).len() < 3000, "stopped before the end");
}

#[test]
fn a_lagging_replica_is_waited_for_then_left_for_the_master_or_refused() {
    let ns = unique_prefix("replica-lag");
    let (master, replica) = master_with_replica(&ns, 50);
    let target = RedisServer::start();
    // The replica stops applying its master's stream (CLIENT PAUSE WRITE pauses replication
    // traffic too), then the master takes writes the replica does not have.
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(20_000).arg("WRITE").query(&mut replica.admin_conn()).unwrap();
    populate_all_types(&mut master.admin_conn(), format!("{ns}A:late:").as_bytes(), 30);
    let src = format!("{ns}A:");
    let source = keyspace_digest(&mut master.admin_conn(), src.as_bytes());
    let (psor, dst) = (connect(&master.url()), connect(&target.url()));
    let wait = |mode| EngineOptions { replica_wait: Duration::from_millis(500), ..on_replica(mode) };
    let opts = CopyOptions {
        from: prefix(&src),
        to: prefix(&format!("{ns}T:")),
        replace: false,
        move_keys: false,
        dry_run: false,
        sample: 5,
    };
    let refused = engine::copy(&psor, Some(&dst), &opts, &wait(ReadFrom::ReplicaOnly), Arc::new(Progress::new()));
    match &refused {
        Err(Error::ReplicaUnavailable { master: m, reason }) => {
            assert_eq!(m, &master.addr());
            assert!(reason.contains("behind"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(keyspace_digest(&mut target.admin_conn(), ns.as_bytes()).is_empty(), "nothing written");
    let out = copy_to(&psor, &dst, &src, &format!("{ns}T:"), false, &wait(ReadFrom::Replica));
    let choice = &out.read_from[0];
    assert_eq!(choice.read_node, master.addr());
    assert!(choice.fallback.as_deref().is_some_and(|f| f.contains("behind")), "{choice:?}");
    assert_eq!(
        keyspace_digest(&mut target.admin_conn(), format!("{ns}T:").as_bytes()),
        renamed(&source, &src, &format!("{ns}T:")),
        "every key, the late ones too"
    );
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut replica.admin_conn()).unwrap();
}

fn export_to(psor: &Psor, p: &str, path: &std::path::Path, engine: &EngineOptions) -> ExportOutcome {
    let opts =
        ExportOptions { selection: ExportSelection::prefix(prefix(p)), path: path.to_path_buf(), overwrite: true };
    snapshot::export(psor, &opts, engine, Arc::new(Progress::new())).unwrap()
}

/// What `path` holds, restored on a fresh server.
fn restored(path: &std::path::Path, p: &str) -> BTreeMap<Vec<u8>, KeyState> {
    let fresh = RedisServer::start();
    let opts = ImportOptions { path: path.to_path_buf(), rename: None, replace: false, dry_run: false, sample: 0 };
    let out = snapshot::import(&connect(&fresh.url()), &opts, &EngineOptions::default(), Arc::new(Progress::new()));
    out.unwrap();
    keyspace_digest(&mut fresh.admin_conn(), p.as_bytes())
}

fn snapshot_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("psor-replica2-export-").tempdir().unwrap()
}

#[test]
fn export_reads_every_key_on_the_replica_exactly() {
    let ns = unique_prefix("replica-export");
    let (master, replica) = master_with_replica(&ns, 300);
    let src = format!("{ns}A:");
    let source = keyspace_digest(&mut master.admin_conn(), src.as_bytes());
    let psor = connect(&master.url());
    let dir = snapshot_dir();
    let path = dir.path().join("a.psnap");
    reset_stats(&master);
    let out = export_to(&psor, &src, &path, &on_replica(ReadFrom::Replica));
    assert_eq!(value_reads(&master), vec![], "the master served no read");
    assert!(calls(&replica, "dump") >= source.len() as u64, "{:?}", value_reads(&replica));
    assert_eq!((out.keys, out.failed), (source.len() as u64, 0));
    assert_eq!(out.read_from, vec![ReadChoice { master: master.addr(), read_node: replica.addr(), fallback: None }]);
    assert_eq!(restored(&path, &src), source);
}

#[test]
fn a_replica_lost_mid_export_leaves_the_reads_to_the_master_and_the_file_is_exact() {
    let ns = unique_prefix("replica-export-kill");
    let master = RedisServer::start();
    let p = format!("{ns}A:");
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SET").arg(format!("{p}{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut master.admin_conn()).unwrap();
    let mut replica = RedisServer::replica_of(&master);
    let source = keyspace_digest(&mut master.admin_conn(), p.as_bytes());
    let psor = connect(&master.url());
    let engine = EngineOptions {
        queue_depth: 1,
        pacing: Pacing { rate: Some(1000), max_latency: None },
        ..on_replica(ReadFrom::Replica)
    };
    let progress = Arc::new(Progress::new());
    let killer = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            while progress.snapshot().counts.done < 300 {
                std::thread::sleep(Duration::from_millis(10));
            }
            replica.stop();
            replica
        })
    };
    let dir = snapshot_dir();
    let path = dir.path().join("k.psnap");
    let opts = ExportOptions { selection: ExportSelection::prefix(prefix(&p)), path: path.clone(), overwrite: false };
    let out = snapshot::export(&psor, &opts, &engine, progress).unwrap();
    drop(killer.join().unwrap());
    assert_eq!((out.keys, out.failed), (3000, 0));
    assert!(
        out.read_from[0].fallback.as_deref().is_some_and(|f| f.contains("lost during the run")),
        "{:?}",
        out.read_from
    );
    assert_eq!(restored(&path, &p), source);
}

/// Per prefix of a survey's tree: its keys, direct keys, types and TTL counts.
fn shape_of(v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    for node in v.as_array().unwrap() {
        let f = |k: &str| node[k].to_string();
        let ttl = (node["ttl"]["expiring"].to_string(), node["ttl"]["none"].to_string());
        out.insert(f("prefix"), format!("{} {} {} {ttl:?}", f("keys"), f("direct_keys"), f("types")));
        shape_of(&node["children"], out);
    }
}

fn survey_of(psor: &Psor, p: &str, mode: ReadFrom) -> Survey {
    let opts =
        SurveyOptions { prefix: p.as_bytes().to_vec(), sample_every: 3, read_from: mode, ..SurveyOptions::default() };
    survey::survey(psor, &opts, Arc::new(Progress::new())).unwrap()
}

#[test]
fn survey_reads_types_ttls_and_sizes_on_the_replica() {
    let ns = unique_prefix("replica-survey");
    let (master, replica) = master_with_replica(&ns, 300);
    let psor = connect(&master.url());
    let on_master = survey_of(&psor, &ns, ReadFrom::Master);
    reset_stats(&master);
    reset_stats(&replica);
    let on_replica = survey_of(&psor, &ns, ReadFrom::Replica);
    assert_eq!(value_reads(&master), vec![], "the master served no read");
    let r = value_reads(&replica);
    for c in ["scan", "type", "pttl", "memory"] {
        assert!(r.iter().any(|(n, _)| n.split('|').next() == Some(c)), "{c} not on the replica: {r:?}");
    }
    assert_eq!(
        on_replica.read_from,
        vec![ReadChoice { master: master.addr(), read_node: replica.addr(), fallback: None }]
    );
    assert_eq!(on_replica.keys, on_master.keys);
    // The same prefixes with the same keys, types and TTL counts. Not the sizes (nor the
    // order of children, by size): a replica's copy of a value may take other memory than
    // the master's (a stream built by XADD keeps spare room its RDB copy does not).
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    shape_of(&serde_json::to_value(&on_replica.nodes).unwrap(), &mut a);
    shape_of(&serde_json::to_value(&on_master.nodes).unwrap(), &mut b);
    assert!(a.len() > 10, "{a:?}");
    assert_eq!(a, b);
}

#[test]
fn behind_sentinel_copy_export_and_survey_read_the_masters_replica() {
    let ns = unique_prefix("replica-sentinel-reads");
    let (master, replica) = master_with_replica(&ns, 200);
    let sentinel = RedisSentinel::start(&master, "psormaster");
    let target = RedisServer::start();
    let src = format!("{ns}A:");
    let source = keyspace_digest(&mut master.admin_conn(), src.as_bytes());
    let psor = connect(&sentinel.url("psormaster"));
    reset_stats(&master);
    let out = copy_to(&psor, &connect(&target.url()), &src, &format!("{ns}T:"), false, &on_replica(ReadFrom::Replica));
    let dir = snapshot_dir();
    let path = dir.path().join("s.psnap");
    let exported = export_to(&psor, &src, &path, &on_replica(ReadFrom::Replica));
    let surveyed = survey_of(&psor, &src, ReadFrom::Replica);
    assert_eq!(value_reads(&master), vec![], "the master served no read");
    assert_eq!(out.read_from[0].read_node, replica.addr(), "{:?}", out.read_from);
    assert_eq!(exported.read_from[0].read_node, replica.addr());
    assert_eq!(surveyed.read_from[0].read_node, replica.addr());
    assert_eq!(
        keyspace_digest(&mut target.admin_conn(), format!("{ns}T:").as_bytes()),
        renamed(&source, &src, &format!("{ns}T:"))
    );
    assert_eq!(restored(&path, &src), source);
    assert_eq!(surveyed.keys, source.len() as u64);
}

#[test]
fn on_a_cluster_copy_export_and_survey_read_each_masters_replica() {
    let cluster = RedisCluster::start(3, 1);
    let ns = unique_prefix("replica-cluster-reads");
    let mut conn = cluster.cluster_conn();
    let src = format!("{ns}A:");
    populate_all_types(&mut conn, src.as_bytes(), 300);
    populate_all_types(&mut conn, format!("{ns}B:").as_bytes(), 30);
    let source = keyspace_digest_cluster(&cluster, src.as_bytes());
    let replicas: Vec<String> = cluster.replicas().iter().map(|r| r.addr()).collect();
    for r in cluster.replicas() {
        r.wait_synced();
    }
    for n in cluster.nodes() {
        reset_stats(n);
    }
    let psor = connect(&cluster.url());
    // Within the cluster, across slots: DUMP on the replicas, RESTORE on the masters.
    let out = copy(&psor, &src, &format!("{ns}C:"), false, &on_replica(ReadFrom::Replica));
    let dir = snapshot_dir();
    let path = dir.path().join("c.psnap");
    let exported = export_to(&psor, &src, &path, &on_replica(ReadFrom::Replica));
    let surveyed = survey_of(&psor, &src, ReadFrom::Replica);
    for m in cluster.masters() {
        assert_eq!(value_reads(m), vec![], "master {} served reads", m.addr());
    }
    assert!(cluster.replicas().iter().map(|r| calls(r, "dump")).sum::<u64>() >= 2 * source.len() as u64);
    for choices in [&out.read_from, &exported.read_from, &surveyed.read_from] {
        assert_eq!(choices.len(), 3);
        for c in choices {
            assert!(c.fallback.is_none() && replicas.contains(&c.read_node), "{c:?}");
        }
    }
    assert_eq!((out.counts.done, out.counts.failed), (source.len() as u64, 0));
    assert_eq!(
        keyspace_digest_cluster(&cluster, format!("{ns}C:").as_bytes()),
        renamed(&source, &src, &format!("{ns}C:"))
    );
    assert_eq!(restored(&path, &src), source);
    assert_eq!(surveyed.keys, source.len() as u64);
}

#[test]
fn a_replica_lost_mid_survey_starts_the_survey_over_on_the_master_and_counts_each_key_once() {
    let ns = unique_prefix("replica-survey-kill");
    let master = RedisServer::start();
    let p = format!("{ns}A:");
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SET").arg(format!("{p}{}:{i}", i % 7)).arg(i).ignore();
    }
    let _: () = pipe.query(&mut master.admin_conn()).unwrap();
    let mut replica = RedisServer::replica_of(&master);
    let psor = connect(&master.url());
    let progress = Arc::new(Progress::new());
    let killer = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            while progress.snapshot().counts.done < 300 {
                std::thread::sleep(Duration::from_millis(10));
            }
            replica.stop();
            replica
        })
    };
    let opts = SurveyOptions {
        prefix: p.as_bytes().to_vec(),
        scan_count: 50,
        queue_depth: 1,
        pacing: Pacing { rate: Some(1000), max_latency: None },
        read_from: ReadFrom::Replica,
        ..SurveyOptions::default()
    };
    let s = survey::survey(&psor, &opts, progress).unwrap();
    drop(killer.join().unwrap());
    assert_eq!(s.keys, 3000, "every key once");
    let choice = &s.read_from[0];
    assert_eq!(choice.read_node, master.addr());
    assert!(choice.fallback.as_deref().is_some_and(|f| f.contains("lost during the run")), "{choice:?}");
}

#[test]
fn a_replica_lost_mid_status_starts_the_count_over_on_the_master_and_counts_each_key_once() {
    use psor_core::layout::{Catalog, PacMode, PacName, ProductVersion};
    use psor_core::pac::{self, SampleOptions, StatusOptions};
    let master = RedisServer::start();
    let psor = connect(&master.url());
    let cat = Catalog::builtin();
    let (name, version) = (PacName::new("MyPAC").unwrap(), ProductVersion::new("8.0").unwrap());
    let sample = SampleOptions { keys: 2000, regions: 1, mode: PacMode::Running, large_values: 0 };
    pac::sample(&psor, &cat, &name, &version, &sample, Arc::new(Progress::new())).unwrap();
    let on_master = pac::status_with(
        &psor,
        &cat,
        None,
        &StatusOptions::default(),
        &EngineOptions::default(),
        Arc::new(Progress::new()),
    )
    .unwrap();
    let mut replica = RedisServer::replica_of(&master);
    let progress = Arc::new(Progress::new());
    let killer = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            while progress.snapshot().counts.matched < 300 {
                std::thread::sleep(Duration::from_millis(10));
            }
            replica.stop();
            replica
        })
    };
    let engine = EngineOptions {
        scan_count: 50,
        pacing: Pacing { rate: Some(1000), max_latency: None },
        ..on_replica(ReadFrom::Replica)
    };
    let r = pac::status_with(&psor, &cat, None, &StatusOptions::default(), &engine, progress).unwrap();
    drop(killer.join().unwrap());
    assert_eq!(r.pac_keys, on_master.pac_keys, "every key once");
    let stores = |r: &pac::StatusReport| -> Vec<(String, u64)> {
        r.pacs[0].versions[0].stores.iter().map(|s| (s.store.clone(), s.keys)).collect()
    };
    assert_eq!(stores(&r), stores(&on_master));
    let choice = &r.read_from[0];
    assert_eq!(choice.read_node, master.addr());
    assert!(choice.fallback.as_deref().is_some_and(|f| f.contains("lost during the run")), "{choice:?}");
}

#[test]
fn on_a_cluster_a_replica_lost_mid_copy_leaves_its_masters_reads_to_the_master_and_everything_is_copied() {
    let cluster = RedisCluster::start(3, 1);
    let ns = unique_prefix("replica-cluster-kill");
    let mut conn = cluster.cluster_conn();
    let src = format!("{ns}A:");
    for i in 0..3000 {
        let _: () = redis::cmd("SET").arg(format!("{src}{i}")).arg(i).query(&mut conn).unwrap();
    }
    let source = keyspace_digest_cluster(&cluster, src.as_bytes());
    for r in cluster.replicas() {
        r.wait_synced();
    }
    let victim = cluster.replicas()[0].addr();
    let victim_port: u16 = victim.rsplit(':').next().unwrap().parse().unwrap();
    let psor = connect(&cluster.url());
    let engine = EngineOptions {
        queue_depth: 1,
        pacing: Pacing { rate: Some(1000), max_latency: None },
        ..on_replica(ReadFrom::Replica)
    };
    let progress = Arc::new(Progress::new());
    let killer = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            while progress.snapshot().counts.done < 300 {
                std::thread::sleep(Duration::from_millis(10));
            }
            // The replica goes away (the harness's handle on it stays with the cluster).
            let client = redis::Client::open(format!("redis://127.0.0.1:{victim_port}")).unwrap();
            let mut con = client.get_connection().unwrap();
            let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut con);
        })
    };
    let opts = CopyOptions {
        from: prefix(&src),
        to: prefix(&format!("{ns}C:")),
        replace: false,
        move_keys: false,
        dry_run: false,
        sample: 5,
    };
    let out = engine::copy(&psor, None, &opts, &engine, progress).unwrap();
    killer.join().unwrap();
    assert_eq!(out.counts.failed, 0);
    assert_eq!(
        keyspace_digest_cluster(&cluster, format!("{ns}C:").as_bytes()),
        renamed(&source, &src, &format!("{ns}C:"))
    );
    let lost: Vec<&ReadChoice> = out.read_from.iter().filter(|c| c.fallback.is_some()).collect();
    assert_eq!(lost.len(), 1, "{:?}", out.read_from);
    assert!(lost[0].fallback.as_deref().unwrap().contains(&victim), "{lost:?}");
    assert_eq!(out.read_from.iter().filter(|c| c.read_node != c.master).count(), 2, "{:?}", out.read_from);
}

#[test]
fn a_replica_whose_link_goes_down_mid_export_stops_serving_and_the_master_is_read() {
    let ns = unique_prefix("replica-stale");
    let master = RedisServer::start();
    let p = format!("{ns}A:");
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SET").arg(format!("{p}{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut master.admin_conn()).unwrap();
    let replica = RedisServer::replica_of(&master);
    let source = keyspace_digest(&mut master.admin_conn(), p.as_bytes());
    let psor = connect(&master.url());
    let engine = EngineOptions {
        queue_depth: 1,
        pacing: Pacing { rate: Some(1000), max_latency: None },
        ..on_replica(ReadFrom::Replica)
    };
    let progress = Arc::new(Progress::new());
    let breaker = {
        let (progress, mut con) = (progress.clone(), replica.admin_conn());
        std::thread::spawn(move || {
            while progress.snapshot().counts.done < 300 {
                std::thread::sleep(Duration::from_millis(10));
            }
            // The replica refuses stale reads (MASTERDOWN) once its link to a master is down;
            // the link goes down: it now follows a master that is not there.
            let _: () =
                redis::cmd("CONFIG").arg("SET").arg("replica-serve-stale-data").arg("no").query(&mut con).unwrap();
            let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(1).query(&mut con).unwrap();
        })
    };
    let dir = snapshot_dir();
    let path = dir.path().join("stale.psnap");
    let opts = ExportOptions { selection: ExportSelection::prefix(prefix(&p)), path: path.clone(), overwrite: false };
    let out = snapshot::export(&psor, &opts, &engine, progress).unwrap();
    breaker.join().unwrap();
    assert_eq!((out.keys, out.failed), (3000, 0));
    let choice = &out.read_from[0];
    assert_eq!(choice.read_node, master.addr());
    assert!(choice.fallback.as_deref().is_some_and(|f| f.to_lowercase().contains("masterdown")), "{choice:?}");
    assert_eq!(restored(&path, &p), source);
}
