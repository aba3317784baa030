//! `--read-from replica` on a Redis Cluster with a replica per master (issue 13): a lagging
//! replica of one master is waited for (and, past `replica_wait`, left for its master, or
//! the run refused under `replica-only`); a replica killed mid delete or mid copy leaves its
//! master's reads to the master and the result is exact; writes arriving under the prefix
//! and outside it while a delete or a copy runs never hide a key of the start, and nothing
//! outside the prefix is touched.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec, ReadChoice, ReadFrom};
use psor_core::engine::{self, CopyOptions, DeleteOptions, EngineOptions, Outcome, Pacing};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_core::Error;
use psor_tests::live::{
    command_calls, exists_on, pause_replication, replica_following, reset_stats, resume_replication, tag_on,
    BackgroundWriter,
};
use psor_tests::{keyspace_digest_cluster, populate_all_types, unique_prefix, KeyState, RedisCluster};

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

fn without(d: &BTreeMap<Vec<u8>, KeyState>, excluded: &[&str]) -> BTreeMap<Vec<u8>, KeyState> {
    let mut d = d.clone();
    d.retain(|k, _| !excluded.iter().any(|e| k.starts_with(e.as_bytes())));
    d
}

fn only(d: &BTreeMap<Vec<u8>, KeyState>, p: &str) -> BTreeMap<Vec<u8>, KeyState> {
    let mut d = d.clone();
    d.retain(|k, _| k.starts_with(p.as_bytes()));
    d
}

fn renamed(d: &BTreeMap<Vec<u8>, KeyState>, from: &str, to: &str) -> BTreeMap<Vec<u8>, KeyState> {
    d.iter().map(|(k, v)| ([to.as_bytes(), &k[from.len()..]].concat(), v.clone())).collect()
}

/// `typed` keys of every type under `<ns>A:`, `plain` strings `<ns>A:s:N` (spread over every
/// master), and 20 keys of every type under each neighbour (`<ns>A`, `<ns>A;`, `<ns>B:`).
fn populate(cluster: &RedisCluster, ns: &str, typed: usize, plain: usize) {
    let mut conn = cluster.cluster_conn();
    populate_all_types(&mut conn, format!("{ns}A:").as_bytes(), typed);
    for i in 0..plain {
        let () = redis::cmd("SET").arg(format!("{ns}A:s:{i}")).arg(i).query(&mut conn).unwrap();
    }
    for nb in ["A", "A;", "B:"] {
        populate_all_types(&mut conn, format!("{ns}{nb}").as_bytes(), 20);
    }
}

/// Checks that every master but `master` was read on one of `replicas` without a fall back,
/// and returns `master`'s choice.
fn choice_of<'a>(choices: &'a [ReadChoice], master: &str, replicas: &[String]) -> &'a ReadChoice {
    assert_eq!(choices.len(), 3, "{choices:?}");
    for c in choices.iter().filter(|c| c.master != master) {
        assert!(c.fallback.is_none() && replicas.contains(&c.read_node), "{c:?}");
    }
    choices.iter().find(|c| c.master == master).unwrap_or_else(|| panic!("no choice for {master}: {choices:?}"))
}

#[test]
fn on_a_cluster_a_lagging_replica_is_waited_for_then_left_for_its_master_or_refused() {
    let cluster = RedisCluster::start(3, 1);
    let ns = unique_prefix("cluster-lag");
    let (p, c) = (format!("{ns}A:"), format!("{ns}C:"));
    populate(&cluster, &ns, 120, 300);
    let m0 = cluster.masters()[0];
    let r0 = replica_following(&cluster, m0);
    let replicas: Vec<String> = cluster.replicas().iter().map(|r| r.addr()).collect();
    let tag = tag_on(&cluster, m0);
    let mut conn = cluster.cluster_conn();
    // `late` keys of m0's slots that r0 does not have: it lags for `ms`.
    let mut lag = |late: &str, ms: u64| {
        pause_replication(r0, ms);
        for i in 0..100 {
            let key = format!("{p}{late}:{tag}:{i}");
            let () = redis::cmd("SET").arg(&key).arg(i).query(&mut conn).unwrap();
            assert!(!exists_on(r0, key.as_bytes()), "{} already has {key}: it does not lag", r0.addr());
        }
    };

    // Past the wait: refused under replica-only, m0 read on the master otherwise.
    lag("late", 20_000);
    let before = keyspace_digest_cluster(&cluster, ns.as_bytes());
    let psor = connect(&cluster.url());
    let wait = |mode| EngineOptions { replica_wait: Duration::from_millis(500), ..on_replica(mode) };
    match engine::delete(&psor, &delete_opts(&p), &wait(ReadFrom::ReplicaOnly), Arc::new(Progress::new())) {
        Err(Error::ReplicaUnavailable { master, reason }) => {
            assert_eq!(master, m0.addr());
            assert!(reason.contains("behind"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(keyspace_digest_cluster(&cluster, ns.as_bytes()), before, "nothing deleted");
    let out = engine::copy(&psor, None, &copy_opts(&p, &c), &wait(ReadFrom::Replica), Arc::new(Progress::new()));
    let out = out.unwrap();
    let m0_choice = choice_of(&out.read_from, &m0.addr(), &replicas);
    assert_eq!(m0_choice.read_node, m0.addr());
    assert!(m0_choice.fallback.as_deref().is_some_and(|f| f.contains("behind")), "{m0_choice:?}");
    let source = only(&before, &p);
    assert_eq!((out.counts.done, out.counts.failed, out.counts.conflicts), (source.len() as u64, 0, 0));
    let mut want = before.clone();
    want.extend(renamed(&source, &p, &c));
    assert_eq!(keyspace_digest_cluster(&cluster, ns.as_bytes()), want, "the copy, the late keys too, and nothing else");
    resume_replication(r0);

    // A lag shorter than the wait: waited for, and every master read on its replica.
    lag("late2", 1500);
    let before = keyspace_digest_cluster(&cluster, ns.as_bytes());
    for n in cluster.nodes() {
        reset_stats(n);
    }
    let out = engine::delete(&psor, &delete_opts(&p), &on_replica(ReadFrom::Replica), Arc::new(Progress::new()));
    let out = out.unwrap();
    for m in cluster.masters() {
        assert_eq!(command_calls(m, "scan"), 0, "master {} served SCAN", m.addr());
    }
    let m0_choice = choice_of(&out.read_from, &m0.addr(), &replicas);
    assert_eq!((m0_choice.read_node.as_str(), m0_choice.fallback.as_deref()), (r0.addr().as_str(), None));
    assert_eq!((out.counts.done, out.counts.failed), (only(&before, &p).len() as u64, 0));
    assert_eq!(keyspace_digest_cluster(&cluster, ns.as_bytes()), without(&before, &[&p]), "exactly the prefix went");
}

/// Runs `run` (given the namespace) on 3000 keys under `<ns>A:` paced at 1000 keys/s,
/// reading every master's replica; the replica of the first master is shut down once
/// `started` says the run has begun. Returns the cluster, the namespace, the digest of the
/// namespace before the run, the victim's address and the outcome.
fn run_while_a_replica_dies(
    name: &str,
    started: fn(&Progress) -> bool,
    run: impl FnOnce(&Psor, &str, &EngineOptions, Arc<Progress>) -> Result<Outcome, Error>,
) -> (RedisCluster, String, BTreeMap<Vec<u8>, KeyState>, String, Outcome) {
    let cluster = RedisCluster::start(3, 1);
    let ns = unique_prefix(name);
    populate(&cluster, &ns, 120, 2880);
    let before = keyspace_digest_cluster(&cluster, ns.as_bytes());
    assert_eq!(only(&before, &format!("{ns}A:")).len(), 3000);
    let victim = replica_following(&cluster, cluster.masters()[0]);
    let (victim_addr, victim_port) = (victim.addr(), victim.port());
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
            while !started(&progress) {
                std::thread::sleep(Duration::from_millis(10));
            }
            // The replica goes away (the harness's handle on it stays with the cluster).
            let client = redis::Client::open(format!("redis://127.0.0.1:{victim_port}")).unwrap();
            let mut con = client.get_connection().unwrap();
            let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut con);
        })
    };
    let out = run(&psor, &ns, &engine, progress.clone());
    assert!(started(&progress), "the run ended before the replica was killed");
    killer.join().unwrap();
    (cluster, ns, before, victim_addr, out.unwrap())
}

/// The first master's reads fell back when its replica `victim` went; the others stayed on
/// their replicas.
fn lost_mid_run(cluster: &RedisCluster, victim: &str, choices: &[ReadChoice]) {
    let replicas: Vec<String> = cluster.replicas().iter().map(|r| r.addr()).collect();
    assert!(!replicas.iter().any(|r| r == victim), "{victim} still answers");
    let lost: Vec<&ReadChoice> = choices.iter().filter(|c| c.fallback.is_some()).collect();
    assert_eq!(lost.len(), 1, "{choices:?}");
    assert_eq!(lost[0].read_node, lost[0].master, "{lost:?}");
    assert!(lost[0].fallback.as_deref().unwrap().contains(victim), "{lost:?}");
    choice_of(choices, &lost[0].master, &replicas);
}

#[test]
fn on_a_cluster_a_replica_killed_mid_delete_leaves_its_masters_reads_to_the_master_and_the_delete_is_exact() {
    let (cluster, ns, before, victim, out) = run_while_a_replica_dies(
        "cluster-kill-delete",
        |p| p.snapshot().counts.matched >= 300,
        |psor, ns, engine, progress| engine::delete(psor, &delete_opts(&format!("{ns}A:")), engine, progress),
    );
    let p = format!("{ns}A:");
    lost_mid_run(&cluster, &victim, &out.read_from);
    assert_eq!(keyspace_digest_cluster(&cluster, ns.as_bytes()), without(&before, &[&p]), "exactly the prefix went");
    assert_eq!((out.counts.done, out.counts.failed), (3000, 0), "{:?}", out.counts);
}

#[test]
fn on_a_cluster_a_replica_killed_mid_copy_leaves_its_masters_reads_to_the_master_and_the_copy_is_exact() {
    let (cluster, ns, before, victim, out) = run_while_a_replica_dies(
        "cluster-kill-copy",
        |p| p.snapshot().counts.done >= 300,
        |psor, ns, engine, progress| {
            engine::copy(psor, None, &copy_opts(&format!("{ns}A:"), &format!("{ns}C:")), engine, progress)
        },
    );
    let (p, c) = (format!("{ns}A:"), format!("{ns}C:"));
    lost_mid_run(&cluster, &victim, &out.read_from);
    assert_eq!((out.counts.failed, out.counts.conflicts), (0, 0), "{:?}", out.counts);
    // Keys copied before the kill are found identical when the master's scan sees them again.
    assert!(out.counts.done + out.counts.unchanged >= 3000 && out.counts.done <= 3000, "{:?}", out.counts);
    let mut want = before.clone();
    want.extend(renamed(&only(&before, &p), &p, &c));
    assert_eq!(keyspace_digest_cluster(&cluster, ns.as_bytes()), want, "the copy and nothing else");
}

/// The string values of every key under `p` on the cluster, by name.
fn strings(cluster: &RedisCluster, p: &str) -> BTreeMap<String, String> {
    keyspace_digest_cluster(cluster, p.as_bytes())
        .into_iter()
        .map(|(k, v)| {
            let psor_tests::CanonicalValue::String(s) = v.value else { panic!("{v:?} is not a string") };
            (String::from_utf8(k).unwrap(), String::from_utf8(s).unwrap())
        })
        .collect()
}

/// 3000 strings `<ns>A:start:N` = N, and neighbours of every type.
fn start_keys(cluster: &RedisCluster, ns: &str) {
    let mut conn = cluster.cluster_conn();
    for i in 0..3000 {
        let () = redis::cmd("SET").arg(format!("{ns}A:start:{i}")).arg(i).query(&mut conn).unwrap();
    }
    for nb in ["A", "A;", "B:"] {
        populate_all_types(&mut conn, format!("{ns}{nb}").as_bytes(), 20);
    }
}

#[test]
fn on_a_cluster_writes_during_a_delete_or_a_copy_hide_no_key_of_the_start_and_touch_nothing_outside() {
    let cluster = RedisCluster::start(3, 1);
    let replicas: Vec<String> = cluster.replicas().iter().map(|r| r.addr()).collect();
    let psor = connect(&cluster.url());
    let engine =
        EngineOptions { pacing: Pacing { rate: Some(5000), max_latency: None }, ..on_replica(ReadFrom::Replica) };
    let on_replicas = |choices: &[ReadChoice]| {
        assert_eq!(choices.len(), 3, "{choices:?}");
        assert!(choices.iter().all(|c| c.fallback.is_none() && replicas.contains(&c.read_node)), "{choices:?}");
    };

    // A delete, while new keys arrive under the prefix and outside it.
    let ns = unique_prefix("cluster-live-delete");
    start_keys(&cluster, &ns);
    let p = format!("{ns}A:");
    let before = keyspace_digest_cluster(&cluster, ns.as_bytes());
    let writer = {
        let ns = ns.clone();
        BackgroundWriter::start(cluster.cluster_conn(), move |conn, i| {
            let () = redis::cmd("SET").arg(format!("{ns}A:live:{i}")).arg(i).query(conn).unwrap();
            let () = redis::cmd("SET").arg(format!("{ns}B:live:{i}")).arg(i).query(conn).unwrap();
        })
    };
    let out = engine::delete(&psor, &delete_opts(&p), &engine, Arc::new(Progress::new())).unwrap();
    let steps = writer.stop();
    assert!(steps >= 20, "only {steps} writes during the run");
    on_replicas(&out.read_from);
    assert_eq!(strings(&cluster, &format!("{ns}A:start:")), BTreeMap::new(), "keys of the start were missed");
    let live_left = strings(&cluster, &format!("{ns}A:live:")).len() as u64;
    assert_eq!((out.counts.done, out.counts.failed), (3000 + steps - live_left, 0), "the count is what went");
    let outside_live: BTreeMap<String, String> =
        (0..steps).map(|i| (format!("{ns}B:live:{i}"), i.to_string())).collect();
    assert_eq!(strings(&cluster, &format!("{ns}B:live:")), outside_live, "a write outside the prefix was lost");
    let after = keyspace_digest_cluster(&cluster, ns.as_bytes());
    assert_eq!(without(&after, &[&p, &format!("{ns}B:live:")]), without(&before, &[&p]), "a key outside changed");

    // A copy, while keys of the start get new values and new keys arrive inside and outside.
    let ns = unique_prefix("cluster-live-copy");
    start_keys(&cluster, &ns);
    let (p, c) = (format!("{ns}A:"), format!("{ns}C:"));
    let before = keyspace_digest_cluster(&cluster, ns.as_bytes());
    let writer = {
        let ns = ns.clone();
        BackgroundWriter::start(cluster.cluster_conn(), move |conn, i| {
            let () = redis::cmd("SET").arg(format!("{ns}A:live:{i}")).arg(i).query(conn).unwrap();
            let () = redis::cmd("SET").arg(format!("{ns}A:start:{}", i % 3000)).arg("new").query(conn).unwrap();
            let () = redis::cmd("SET").arg(format!("{ns}B:live:{i}")).arg(i).query(conn).unwrap();
        })
    };
    let out = engine::copy(&psor, None, &copy_opts(&p, &c), &engine, Arc::new(Progress::new())).unwrap();
    let steps = writer.stop();
    assert!(steps >= 20, "only {steps} writes during the run");
    on_replicas(&out.read_from);
    assert_eq!((out.counts.failed, out.counts.conflicts), (0, 0), "{:?}", out.counts);
    // Every key of the start, with its value at the start or a later one: never another.
    let either = |got: &BTreeMap<String, String>, under: &str| {
        for i in 0..3000u64 {
            let v = got.get(&format!("{under}start:{i}"));
            assert!(v == Some(&i.to_string()) || v.map(String::as_str) == Some("new"), "{under}start:{i}: {v:?}");
        }
    };
    let copied = strings(&cluster, &c);
    either(&copied, &c);
    either(&strings(&cluster, &p), &p);
    for (k, v) in &copied {
        // A copied new key holds the value written.
        if let Some(i) = k.strip_prefix(&format!("{c}live:")) {
            assert_eq!(v, i, "{k}");
        } else {
            assert!(k.starts_with(&format!("{c}start:")), "{k} was never under the prefix");
        }
    }
    assert_eq!(out.counts.done, copied.len() as u64, "the count is what was copied");
    let outside_live: BTreeMap<String, String> =
        (0..steps).map(|i| (format!("{ns}B:live:{i}"), i.to_string())).collect();
    assert_eq!(strings(&cluster, &format!("{ns}B:live:")), outside_live, "a write outside the prefix was lost");
    let after = keyspace_digest_cluster(&cluster, ns.as_bytes());
    assert_eq!(without(&after, &[&p, &c, &format!("{ns}B:live:")]), without(&before, &[&p]), "a key outside changed");
}
