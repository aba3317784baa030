//! `--read-from replica` behind Sentinel (issue 13): a replica that lags at the start is
//! waited for (and, past `replica_wait`, left for the master, or the run refused under
//! `replica-only`); a replica killed mid delete or mid copy leaves the rest of the reads to
//! the master, and the result is exact, inside the prefix and outside it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec, ReadChoice, ReadFrom};
use psor_core::engine::{self, CopyOptions, DeleteOptions, EngineOptions, Outcome, Pacing};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_core::Error;
use psor_tests::live::{command_calls, exists_on, pause_replication, reset_stats, resume_replication};
use psor_tests::{keyspace_digest, populate_all_types, unique_prefix, KeyState, RedisSentinel, RedisServer};

const NAME: &str = "psormaster";

/// How a run names a master it found through Sentinel.
fn named(master: &RedisServer) -> String {
    format!("{} ({NAME})", master.addr())
}

fn connect(spec: &str) -> Psor {
    Psor::connect(&PsorSpec::parse(spec).unwrap(), &ConnectOptions::default()).unwrap()
}

fn on_replica(mode: ReadFrom) -> EngineOptions {
    EngineOptions { scan_count: 50, batch_size: 37, writers: 2, read_from: mode, ..EngineOptions::default() }
}

fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::new(s.as_bytes()).unwrap()
}

fn delete_opts(p: &str) -> DeleteOptions {
    DeleteOptions { prefix: prefix(p), dry_run: false, sample: 5 }
}

fn copy_opts(from: &str, to: &str) -> CopyOptions {
    CopyOptions { from: prefix(from), to: prefix(to), replace: false, move_keys: false, dry_run: false, sample: 5 }
}

fn without(d: &BTreeMap<Vec<u8>, KeyState>, excluded: &str) -> BTreeMap<Vec<u8>, KeyState> {
    d.iter().filter(|(k, _)| !k.starts_with(excluded.as_bytes())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn only(d: &BTreeMap<Vec<u8>, KeyState>, p: &str) -> BTreeMap<Vec<u8>, KeyState> {
    d.iter().filter(|(k, _)| k.starts_with(p.as_bytes())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn renamed(d: &BTreeMap<Vec<u8>, KeyState>, from: &str, to: &str) -> BTreeMap<Vec<u8>, KeyState> {
    d.iter().map(|(k, v)| ([to.as_bytes(), &k[from.len()..]].concat(), v.clone())).collect()
}

/// A master with `typed` keys of every type under `<ns>A:`, `plain` more strings there, 20
/// keys of every type under each neighbour (`<ns>A`, `<ns>A;`, `<ns>B:`), a synced replica,
/// and a Sentinel watching the master.
fn sentinel_setup(ns: &str, typed: usize, plain: usize) -> (RedisServer, RedisServer, RedisSentinel) {
    let master = RedisServer::start();
    let mut conn = master.admin_conn();
    populate_all_types(&mut conn, format!("{ns}A:").as_bytes(), typed);
    let mut pipe = redis::pipe();
    for i in 0..plain {
        pipe.cmd("SET").arg(format!("{ns}A:s:{i}")).arg(i).ignore();
    }
    if plain > 0 {
        let () = pipe.query(&mut conn).unwrap();
    }
    for nb in ["A", "A;", "B:"] {
        populate_all_types(&mut conn, format!("{ns}{nb}").as_bytes(), 20);
    }
    let replica = RedisServer::replica_of(&master);
    let sentinel = RedisSentinel::start(&master, NAME);
    (master, replica, sentinel)
}

/// Holds back the replica's replication for `ms`, then writes 30 keys of every type under
/// `<ns>A:late:` on the master; checks they are not on the replica.
fn lag_then_write_late_keys(master: &RedisServer, replica: &RedisServer, ns: &str, ms: u64) {
    pause_replication(replica, ms);
    let late = populate_all_types(&mut master.admin_conn(), format!("{ns}A:late:").as_bytes(), 30);
    assert!(late.iter().all(|k| !exists_on(replica, k)), "the replica already has late keys: it does not lag");
}

#[test]
fn behind_sentinel_a_lagging_replica_is_waited_for_and_the_late_keys_are_deleted_too() {
    let ns = unique_prefix("sentinel-lag-wait");
    let (master, replica, sentinel) = sentinel_setup(&ns, 120, 0);
    // The replica lags for 1.5 s: a run that did not wait would scan it without the late keys.
    lag_then_write_late_keys(&master, &replica, &ns, 1500);
    let before = keyspace_digest(&mut master.admin_conn(), ns.as_bytes());
    let p = format!("{ns}A:");
    let under = only(&before, &p).len() as u64;
    reset_stats(&master);
    let psor = connect(&sentinel.url(NAME));
    let out = engine::delete(&psor, &delete_opts(&p), &on_replica(ReadFrom::Replica), Arc::new(Progress::new()));
    let out = out.unwrap();
    assert_eq!(command_calls(&master, "scan"), 0, "the master served no SCAN");
    assert_eq!(out.read_from, vec![ReadChoice { master: named(&master), read_node: replica.addr(), fallback: None }]);
    assert_eq!((out.counts.done, out.counts.failed), (under, 0));
    assert_eq!(
        keyspace_digest(&mut master.admin_conn(), ns.as_bytes()),
        without(&before, &p),
        "exactly the prefix went"
    );
}

#[test]
fn behind_sentinel_a_replica_lagging_past_the_wait_is_left_for_the_master_or_refused() {
    let ns = unique_prefix("sentinel-lag-past");
    let (master, replica, sentinel) = sentinel_setup(&ns, 120, 0);
    lag_then_write_late_keys(&master, &replica, &ns, 20_000);
    let before = keyspace_digest(&mut master.admin_conn(), ns.as_bytes());
    let (p, c) = (format!("{ns}A:"), format!("{ns}C:"));
    let psor = connect(&sentinel.url(NAME));
    let wait = |mode| EngineOptions { replica_wait: Duration::from_millis(500), ..on_replica(mode) };
    let behind = |choice: &ReadChoice| {
        assert_eq!((&choice.master, &choice.read_node), (&named(&master), &named(&master)), "{choice:?}");
        assert!(choice.fallback.as_deref().is_some_and(|f| f.contains("behind")), "{choice:?}");
    };
    // replica-only: refused before anything is written.
    let refused = engine::delete(&psor, &delete_opts(&p), &wait(ReadFrom::ReplicaOnly), Arc::new(Progress::new()));
    match &refused {
        Err(Error::ReplicaUnavailable { master: m, reason }) => {
            assert_eq!(m, &named(&master));
            assert!(reason.contains("behind"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let refused =
        engine::copy(&psor, None, &copy_opts(&p, &c), &wait(ReadFrom::ReplicaOnly), Arc::new(Progress::new()));
    assert!(matches!(refused, Err(Error::ReplicaUnavailable { .. })), "{refused:?}");
    assert_eq!(keyspace_digest(&mut master.admin_conn(), ns.as_bytes()), before, "nothing written");
    // replica: the master is read, and the copy holds the late keys too.
    let out = engine::copy(&psor, None, &copy_opts(&p, &c), &wait(ReadFrom::Replica), Arc::new(Progress::new()));
    let out = out.unwrap();
    behind(&out.read_from[0]);
    let source = only(&before, &p);
    assert_eq!((out.counts.done, out.counts.failed), (source.len() as u64, 0));
    let mut want = before.clone();
    want.extend(renamed(&source, &p, &c));
    assert_eq!(keyspace_digest(&mut master.admin_conn(), ns.as_bytes()), want, "the copy and nothing else");
    let out = engine::delete(&psor, &delete_opts(&p), &wait(ReadFrom::Replica), Arc::new(Progress::new()));
    let out = out.unwrap();
    behind(&out.read_from[0]);
    assert_eq!(out.counts.done, source.len() as u64);
    assert_eq!(keyspace_digest(&mut master.admin_conn(), ns.as_bytes()), without(&want, &p), "exactly the prefix went");
    resume_replication(&replica);
}

/// Runs `run` (given the namespace) on a 3000-key prefix `<ns>A:` behind Sentinel, paced
/// at 1000 keys/s, reading the replica, which is killed once `started` says the run has
/// begun. Returns the master, the namespace, its digest before the run, and the result.
fn run_while_the_replica_dies(
    name: &str,
    started: fn(&Progress) -> bool,
    run: impl FnOnce(&Psor, &str, &EngineOptions, Arc<Progress>) -> Result<Outcome, Error>,
) -> (RedisServer, String, BTreeMap<Vec<u8>, KeyState>, Outcome) {
    let ns = unique_prefix(name);
    let (master, mut replica, sentinel) = sentinel_setup(&ns, 300, 2700);
    let before = keyspace_digest(&mut master.admin_conn(), ns.as_bytes());
    let psor = connect(&sentinel.url(NAME));
    let engine = EngineOptions {
        queue_depth: 1,
        pacing: Pacing { rate: Some(1000), max_latency: None },
        ..on_replica(ReadFrom::Replica)
    };
    let progress = Arc::new(Progress::new());
    let killer = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            // Once the run has begun (a few hundred keys in, of 3000 at 1000 keys/s).
            while !started(&progress) {
                std::thread::sleep(Duration::from_millis(10));
            }
            replica.stop();
            replica
        })
    };
    let out = run(&psor, &ns, &engine, progress.clone());
    // Had the run ended before the kill, the killer would wait forever: fail instead.
    assert!(started(&progress), "the run ended before the replica was killed");
    drop(killer.join().unwrap());
    (master, ns, before, out.unwrap())
}

fn lost_mid_run(master: &RedisServer, choices: &[ReadChoice]) {
    assert_eq!(choices.len(), 1, "{choices:?}");
    assert_eq!((&choices[0].master, &choices[0].read_node), (&named(master), &named(master)), "{choices:?}");
    assert!(choices[0].fallback.as_deref().is_some_and(|f| f.contains("lost during the run")), "{choices:?}");
}

#[test]
fn behind_sentinel_a_replica_killed_mid_delete_leaves_the_rest_to_the_master_and_the_delete_is_exact() {
    let (master, ns, before, out) = run_while_the_replica_dies(
        "sentinel-kill-delete",
        |p| p.snapshot().counts.matched >= 300,
        |psor, ns, engine, progress| engine::delete(psor, &delete_opts(&format!("{ns}A:")), engine, progress),
    );
    let p = format!("{ns}A:");
    lost_mid_run(&master, &out.read_from);
    let left: Vec<String> = keyspace_digest(&mut master.admin_conn(), p.as_bytes())
        .keys()
        .map(|k| String::from_utf8_lossy(k).into())
        .collect();
    assert!(left.is_empty(), "{} keys left: {left:?}", left.len());
    assert_eq!(
        keyspace_digest(&mut master.admin_conn(), ns.as_bytes()),
        without(&before, &p),
        "exactly the prefix went"
    );
    assert_eq!(before.keys().filter(|k| k.starts_with(p.as_bytes())).count(), 3000);
    assert_eq!((out.counts.done, out.counts.failed), (3000, 0), "{:?}", out.counts);
}

#[test]
fn behind_sentinel_a_replica_killed_mid_copy_leaves_the_rest_to_the_master_and_the_copy_is_exact() {
    let (master, ns, before, out) = run_while_the_replica_dies(
        "sentinel-kill-copy",
        |p| p.snapshot().counts.done >= 300,
        |psor, ns, engine, progress| {
            engine::copy(psor, None, &copy_opts(&format!("{ns}A:"), &format!("{ns}C:")), engine, progress)
        },
    );
    let (p, c) = (format!("{ns}A:"), format!("{ns}C:"));
    lost_mid_run(&master, &out.read_from);
    // Keys copied before the kill are found identical when the master's scan sees them again.
    assert_eq!((out.counts.failed, out.counts.conflicts), (0, 0), "{:?}", out.counts);
    assert!(out.counts.done + out.counts.unchanged >= 3000 && out.counts.done <= 3000, "{:?}", out.counts);
    let mut want = before.clone();
    want.extend(renamed(&only(&before, &p), &p, &c));
    assert_eq!(keyspace_digest(&mut master.admin_conn(), ns.as_bytes()), want, "the copy and nothing else");
}
