//! Faults during a run, on real servers: psor's connections killed, a master restarted, a
//! cluster failover, a slot migrated mid-scan, a Sentinel failover. Each run completes, every
//! key it saw is accounted for, no key under the prefix is left behind or lost, and the keys
//! next to it are untouched. Also: pacing keeps the bounds it was given.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::{self, CopyOptions, DeleteOptions, EngineOptions, Outcome, Pacing};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_tests::{glob_escape, unique_prefix, RedisCluster, RedisSentinel, RedisServer};

fn connect(spec: &str) -> Psor {
    Psor::connect(&PsorSpec::parse(spec).unwrap(), &ConnectOptions::default()).unwrap()
}

/// Small batches at a capped rate, so the run lasts long enough to be interrupted.
fn paced(rate: u64) -> EngineOptions {
    EngineOptions {
        scan_count: 200,
        batch_size: 200,
        writers: 2,
        pacing: Pacing { rate: Some(rate), max_latency: None },
        ..EngineOptions::default()
    }
}

fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::new(s.as_bytes()).unwrap()
}

/// `n` string keys `<prefix><i>` whose value is the key name; every 10th expires in an hour.
fn fill(conn: &mut dyn redis::ConnectionLike, prefix: &str, n: usize) {
    for start in (0..n).step_by(1000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 1000).min(n) {
            let k = format!("{prefix}{i}");
            pipe.cmd("SET").arg(&k).arg(&k).ignore();
            if i % 10 == 0 {
                pipe.cmd("PEXPIRE").arg(&k).arg(3_600_000).ignore();
            }
        }
        pipe.query::<()>(conn).unwrap();
    }
}

fn fill_cluster(cluster: &RedisCluster, prefix: &str, n: usize) {
    let mut conn = cluster.cluster_conn();
    for start in (0..n).step_by(500) {
        let mut pipe = redis::cluster::cluster_pipe();
        for i in start..(start + 500).min(n) {
            let k = format!("{prefix}{i}");
            pipe.cmd("SET").arg(&k).arg(&k).ignore();
        }
        pipe.query::<()>(&mut conn).unwrap();
    }
}

/// How many keys start with `prefix` on one server.
fn count(conn: &mut redis::Connection, prefix: &str) -> usize {
    let pattern = [glob_escape(prefix.as_bytes()), b"*".to_vec()].concat();
    let mut cursor = 0u64;
    let mut n = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query(conn).unwrap();
        n += keys.iter().filter(|k| k.starts_with(prefix.as_bytes())).count();
        if next == 0 {
            return n;
        }
        cursor = next;
    }
}

fn count_cluster(cluster: &RedisCluster, prefix: &str) -> usize {
    cluster.masters().iter().map(|m| count(&mut m.admin_conn(), prefix)).sum()
}

/// Every key the run saw is accounted for: deleted, or found already gone.
fn assert_accounted(out: &Outcome, at_least: u64) {
    let c = out.counts;
    assert!(c.matched >= at_least, "matched {} < {at_least}", c.matched);
    assert_eq!(c.failed, 0);
    assert_eq!(c.done + c.vanished, c.matched, "{c:?}");
}

#[test]
fn psors_connections_killed_mid_run() {
    let server = RedisServer::start();
    let mut admin = server.admin_conn();
    let ns = unique_prefix("kill");
    let (target, neighbour) = (format!("{ns}a:"), format!("{ns}a"));
    fill(&mut admin, &target, 40_000);
    fill(&mut admin, &neighbour, 2_000);
    let psor = connect(&server.url());
    let opts = DeleteOptions { prefix: prefix(&target), dry_run: false, sample: 0 };
    let run = thread::spawn(move || engine::delete(&psor, &opts, &paced(20_000), Arc::new(Progress::new())));
    let me: i64 = redis::cmd("CLIENT").arg("ID").query(&mut admin).unwrap();
    let mut kills = 0;
    for _ in 0..6 {
        thread::sleep(Duration::from_millis(250));
        let list: String = redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("normal").query(&mut admin).unwrap();
        for id in list.lines().filter_map(|l| l.strip_prefix("id=")?.split(' ').next()?.parse::<i64>().ok()) {
            if id != me {
                let n: i64 = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query(&mut admin).unwrap_or(0);
                kills += n;
            }
        }
    }
    let out = run.join().unwrap().unwrap();
    assert!(kills > 0, "the test killed no connection");
    assert_accounted(&out, 40_000);
    assert_eq!(count(&mut admin, &target), 0);
    assert_eq!(count(&mut admin, &neighbour), 2_000);
}

#[test]
fn a_master_restarted_mid_run() {
    let mut server = RedisServer::start();
    let ns = unique_prefix("restart");
    let (target, neighbour) = (format!("{ns}a:"), format!("{ns}b:"));
    {
        let mut admin = server.admin_conn();
        fill(&mut admin, &target, 40_000);
        fill(&mut admin, &neighbour, 2_000);
        // The restart reloads this snapshot: deletes done before it come back.
        let _: () = redis::cmd("SAVE").query(&mut admin).unwrap();
    }
    let psor = connect(&server.url());
    let opts = DeleteOptions { prefix: prefix(&target), dry_run: false, sample: 0 };
    let progress = Arc::new(Progress::new());
    let watch = progress.clone();
    let run = thread::spawn(move || engine::delete(&psor, &opts, &paced(20_000), watch));
    thread::sleep(Duration::from_millis(600));
    let done_before = progress.snapshot().counts.done;
    server.restart();
    let out = run.join().unwrap().unwrap();
    let mut admin = server.admin_conn();
    assert!(done_before > 0 && done_before < 40_000, "the restart did not happen mid-run ({done_before})");
    assert_eq!(count(&mut admin, &target), 0, "keys resurrected by the restart were left behind");
    assert_eq!(count(&mut admin, &neighbour), 2_000);
    // Keys deleted before the restart came back and were deleted again.
    assert!(out.counts.done >= 40_000, "{:?}", out.counts);
    assert_eq!(out.counts.failed, 0);
}

#[test]
fn a_cluster_failover_mid_run() {
    let cluster = RedisCluster::start(3, 1);
    let ns = unique_prefix("failover");
    let (target, neighbour) = (format!("{ns}a:"), format!("{ns}b:"));
    fill_cluster(&cluster, &target, 20_000);
    fill_cluster(&cluster, &neighbour, 1_000);
    let psor = connect(&cluster.url());
    let opts = DeleteOptions { prefix: prefix(&target), dry_run: false, sample: 0 };
    let progress = Arc::new(Progress::new());
    let watch = progress.clone();
    let run = thread::spawn(move || engine::delete(&psor, &opts, &paced(8_000), watch));
    thread::sleep(Duration::from_millis(500));
    let replica = cluster.replicas()[0];
    cluster.failover(replica);
    assert!(progress.snapshot().counts.done < 20_000, "the failover did not happen mid-run");
    let out = run.join().unwrap().unwrap();
    assert_accounted(&out, 20_000);
    assert_eq!(count_cluster(&cluster, &target), 0);
    assert_eq!(count_cluster(&cluster, &neighbour), 1_000);
}

#[test]
fn a_slot_migrated_mid_scan() {
    let cluster = RedisCluster::start(3, 0);
    let ns = unique_prefix("migrate");
    let (from, to) = (format!("{ns}a:"), format!("{ns}b:"));
    fill_cluster(&cluster, &from, 20_000);
    // The slot of a key under the prefix, moved to another master while the copy runs.
    let slot = cluster.slot_of(format!("{from}7").as_bytes());
    let owner = cluster.node_for_slot(slot);
    let other = *cluster.masters().iter().find(|m| m.port() != owner.port()).unwrap();
    let psor = connect(&cluster.url());
    let opts = CopyOptions {
        from: prefix(&from),
        to: prefix(&to),
        replace: false,
        move_keys: false,
        dry_run: false,
        sample: 0,
    };
    let run = thread::spawn(move || engine::copy(&psor, None, &opts, &paced(8_000), Arc::new(Progress::new())));
    thread::sleep(Duration::from_millis(400));
    cluster.migrate_slot(slot, owner, other);
    let out = run.join().unwrap().unwrap();
    assert_eq!(out.counts.failed, 0);
    assert_eq!(out.counts.done, 20_000, "{:?}", out.counts);
    assert_eq!(count_cluster(&cluster, &to), 20_000);
    // Every copy holds its source's value (the source key name).
    let mut conn = cluster.cluster_conn();
    for i in (0..20_000).step_by(97).chain([7]) {
        let v: String = redis::cmd("GET").arg(format!("{to}{i}")).query(&mut conn).unwrap();
        assert_eq!(v, format!("{from}{i}"));
    }
}

#[test]
fn sentinel_finds_the_master_and_follows_a_failover() {
    let master = RedisServer::start();
    let replica = RedisServer::builder().config("replicaof", &format!("127.0.0.1 {}", master.port())).start();
    let sentinel = RedisSentinel::start(&master, "psormaster");
    let ns = unique_prefix("sentinel");
    let (target, neighbour) = (format!("{ns}a:"), format!("{ns}b:"));
    fill(&mut master.admin_conn(), &target, 20_000);
    fill(&mut master.admin_conn(), &neighbour, 1_000);
    // Wait until the replica has everything, so the failover loses nothing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&mut replica.admin_conn(), &target) < 20_000 {
        assert!(Instant::now() < deadline, "the replica did not catch up");
        thread::sleep(Duration::from_millis(50));
    }
    // The caspac node list of sentinels is recognised too.
    let listed = connect(&format!("redis,{0},{0}", sentinel.addr()));
    assert!(!listed.is_cluster());

    let psor = connect(&sentinel.url("psormaster"));
    let opts = DeleteOptions { prefix: prefix(&target), dry_run: false, sample: 0 };
    let run = thread::spawn(move || engine::delete(&psor, &opts, &paced(8_000), Arc::new(Progress::new())));
    thread::sleep(Duration::from_millis(500));
    let _: () = redis::cmd("SENTINEL").arg("FAILOVER").arg("psormaster").query(&mut sentinel.conn()).unwrap();
    let out = run.join().unwrap().unwrap();
    assert_eq!(
        sentinel.master_addr("psormaster"),
        Some(("127.0.0.1".to_string(), replica.port())),
        "no failover happened"
    );
    assert_eq!(out.counts.failed, 0);
    let mut now_master = replica.admin_conn();
    assert_eq!(count(&mut now_master, &target), 0);
    assert_eq!(count(&mut now_master, &neighbour), 1_000);
}

#[test]
fn a_rate_cap_is_kept() {
    let server = RedisServer::start();
    let ns = unique_prefix("rate");
    fill(&mut server.admin_conn(), &ns, 3_000);
    let psor = connect(&server.url());
    let engine = EngineOptions {
        batch_size: 100,
        pacing: Pacing { rate: Some(1_000), max_latency: None },
        ..EngineOptions::default()
    };
    let opts = DeleteOptions { prefix: prefix(&ns), dry_run: false, sample: 0 };
    let out = engine::delete(&psor, &opts, &engine, Arc::new(Progress::new())).unwrap();
    assert_eq!(out.counts.done, 3_000);
    // A burst of a tenth of a second is allowed; after it, 1,000 keys/s at most. Slowness
    // from a busy machine only makes this run longer, never shorter.
    assert!(out.seconds >= 2.8, "3,000 keys at 1,000/s took {:.2}s", out.seconds);
    assert!(out.paused_seconds > 1.0, "{}", out.paused_seconds);
}

#[test]
fn a_latency_bound_the_server_cannot_meet_slows_the_run_but_never_stalls_it() {
    let server = RedisServer::start();
    let ns = unique_prefix("latency");
    fill(&mut server.admin_conn(), &ns, 600);
    let psor = connect(&server.url());
    // No PING answers in under a microsecond: every batch waits the longest wait, then goes.
    let engine = EngineOptions {
        batch_size: 200,
        writers: 1,
        pacing: Pacing { rate: None, max_latency: Some(Duration::from_nanos(1)) },
        ..EngineOptions::default()
    };
    let opts = DeleteOptions { prefix: prefix(&ns), dry_run: false, sample: 0 };
    let out = engine::delete(&psor, &opts, &engine, Arc::new(Progress::new())).unwrap();
    assert_eq!(out.counts.done, 600);
    assert!(out.paused_seconds >= 2.5, "3 batches should each have waited ~1s: {}", out.paused_seconds);
}
