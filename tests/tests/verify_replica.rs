//! `verify --read-from replica` (issue 13): both sides' keys are scanned and read on the
//! replicas `--read-from` chose (live ↔ live, live ↔ snapshot; standalone, Sentinel,
//! cluster), with the result of a master-only verify; a key that differs is read again on
//! the masters, so a difference only a replica shows is never reported; a replica lost
//! mid-run leaves the reads to its master (reported), and `replica-only` stops the run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec, ReadFrom};
use psor_core::engine::{self, CopyOptions, EngineOptions, Pacing};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_core::snapshot::{self, ExportOptions, ExportSelection};
use psor_core::verify::{self, Kind, VerifyOptions, VerifyOutcome};
use psor_core::Error;
use psor_tests::{populate_all_types, unique_prefix, RedisCluster, RedisSentinel, RedisServer, ServerKind};

fn connect(spec: &str) -> Psor {
    Psor::connect(&PsorSpec::parse(spec).unwrap(), &ConnectOptions::default()).unwrap()
}

fn engine_on(mode: ReadFrom) -> EngineOptions {
    EngineOptions { scan_count: 50, batch_size: 37, writers: 2, read_from: mode, ..EngineOptions::default() }
}

fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::new(s.as_bytes()).unwrap()
}

/// Redis 6.2 has no PEXPIRETIME: expiries are read with PTTL there, a few ms off per read.
fn tolerance() -> u64 {
    if ServerKind::from_env().has_pexpiretime() {
        0
    } else {
        999
    }
}

fn opts(from: &str, to: &str) -> VerifyOptions {
    VerifyOptions {
        show: 100,
        ttl_tolerance_ms: tolerance(),
        recheck_delay: Duration::from_millis(20),
        ..VerifyOptions::new(prefix(from), prefix(to))
    }
}

fn run(a: &Psor, b: Option<&Psor>, o: &VerifyOptions, mode: ReadFrom) -> VerifyOutcome {
    verify::verify(a, b, o, &engine_on(mode), Arc::new(Progress::new())).unwrap()
}

/// Copies `from` to `to` (reading the masters), exactly.
fn copy(source: &Psor, target: Option<&Psor>, from: &str, to: &str) {
    let o =
        CopyOptions { from: prefix(from), to: prefix(to), replace: false, move_keys: false, dry_run: false, sample: 0 };
    let out = engine::copy(source, target, &o, &engine_on(ReadFrom::Master), Arc::new(Progress::new())).unwrap();
    assert_eq!((out.counts.failed, out.counts.conflicts), (0, 0));
}

fn reset_stats(server: &RedisServer) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut server.admin_conn()).unwrap();
}

/// Waits until `replicas` replicas of `master` have acknowledged everything it had sent when
/// called (`WAIT` would only wait for the writes of its own connection).
fn replicated(master: &RedisServer, replicas: usize) {
    let mut con = master.admin_conn();
    let info = |con: &mut redis::Connection| -> String { redis::cmd("INFO").arg("replication").query(con).unwrap() };
    let field = |info: &str, name: &str| -> Option<u64> {
        info.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok())
    };
    let target = field(&info(&mut con), "master_repl_offset:").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = info(&mut con);
        let acked = now
            .lines()
            .filter(|l| l.starts_with("slave") && l.contains("state=online"))
            .filter_map(|l| l.split(',').find_map(|f| f.strip_prefix("offset=")).and_then(|v| v.parse::<u64>().ok()))
            .filter(|&o| o >= target)
            .count();
        if acked >= replicas {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "replicas of {} did not catch up:\n{now}", master.addr());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Commands that read no key: connection set-up, topology, replication, stats.
/// Connection and replication admin, and what a Sentinel sends a master it watches (`publish`
/// and `subscribe` of its `__sentinel__:hello` messages).
const NOT_KEY_READS: [&str; 19] = [
    "info",
    "config",
    "ping",
    "client",
    "command",
    "readonly",
    "hello",
    "select",
    "auth",
    "role",
    "replconf",
    "psync",
    "cluster",
    "wait",
    "dbsize",
    "time",
    "lastsave",
    "publish",
    "subscribe",
];

/// Every command `server` served since its stats were reset that reads keys (`SCAN`, `DUMP`,
/// `TYPE`, `PEXPIRETIME`, `MEMORY USAGE`, `EXISTS`, the typed reads…), with its calls.
fn key_reads(server: &RedisServer) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut server.admin_conn()).unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(":calls=")?;
            let calls: u64 = rest.split(',').next()?.parse().ok()?;
            let base = name.split('|').next().unwrap_or(name);
            (!NOT_KEY_READS.contains(&base) && calls > 0).then(|| (name.to_string(), calls))
        })
        .collect()
}

fn total(reads: &BTreeMap<String, u64>) -> u64 {
    reads.values().sum()
}

/// A master with `n` keys of every type under `<ns>A:` and neighbours, and a replica that has
/// applied all of it; stats reset.
fn master_with_replica(ns: &str, n: usize) -> (RedisServer, RedisServer) {
    let master = RedisServer::start();
    let mut conn = master.admin_conn();
    populate_all_types(&mut conn, format!("{ns}A:").as_bytes(), n);
    for nb in ["A", "A;", "a:"] {
        populate_all_types(&mut conn, format!("{ns}{nb}").as_bytes(), 10);
    }
    let replica = RedisServer::replica_of(&master);
    (master, replica)
}

/// Plants one difference of every kind under `p` (a copy of `<ns>A:`) on `con`: returns
/// the names (display form, side A) expected per kind.
fn plant(con: &mut redis::Connection, ns: &str, p: &str) -> BTreeMap<&'static str, Vec<String>> {
    // populate_all_types: key i is `<prefix><awkward name>:<i>`; pick them by their suffix.
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg(format!("{p}*")).query(con).unwrap();
    let find = |suffix: &str| keys.iter().find(|k| k.ends_with(suffix.as_bytes())).unwrap().clone();
    let a_name = |k: &[u8]| psor_core::keys::display_key(&[format!("{ns}A:").as_bytes(), &k[p.len()..]].concat());
    let (missing, content, type_, expiry) = (find(":0"), find(":1"), find(":2"), find(":3"));
    let _: () = redis::cmd("DEL").arg(&missing).query(con).unwrap();
    // Key 1 is a hash: one more field.
    let _: () = redis::cmd("HSET").arg(&content).arg("planted").arg("x").query(con).unwrap();
    let _: () = redis::cmd("DEL").arg(&type_).query(con).unwrap();
    let _: () = redis::cmd("SET").arg(&type_).arg("now a string").query(con).unwrap();
    let _: () = redis::cmd("PEXPIRE").arg(&expiry).arg(3_600_000).query(con).unwrap();
    let extra = format!("{p}planted-extra");
    let _: () = redis::cmd("SET").arg(&extra).arg("x").query(con).unwrap();
    BTreeMap::from([
        (Kind::Missing.as_str(), vec![a_name(&missing)]),
        (Kind::Extra.as_str(), vec![a_name(extra.as_bytes())]),
        (Kind::Type.as_str(), vec![a_name(&type_)]),
        (Kind::Content.as_str(), vec![a_name(&content)]),
        (Kind::Expiry.as_str(), vec![a_name(&expiry)]),
    ])
}

fn named(o: &VerifyOutcome) -> BTreeMap<&'static str, Vec<String>> {
    let mut m: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for d in &o.differences {
        m.entry(d.kind.as_str()).or_default().push(d.key.clone());
    }
    m
}

#[test]
fn live_verify_reads_both_sides_on_their_replicas_and_finds_what_a_master_verify_finds() {
    let ns = unique_prefix("verifyrep-live");
    let (src, src_replica) = master_with_replica(&ns, 120);
    let tgt = RedisServer::start();
    let tgt_replica = RedisServer::replica_of(&tgt);
    let (a, b) = (connect(&src.url()), connect(&tgt.url()));
    let pa = format!("{ns}A:");
    copy(&a, Some(&b), &pa, &pa);
    replicated(&tgt, 1);
    for s in [&src, &src_replica, &tgt, &tgt_replica] {
        reset_stats(s);
    }

    // The same on both sides: every key read on the replicas, none on the masters.
    let on_replicas = run(&a, Some(&b), &opts(&pa, &pa), ReadFrom::Replica);
    assert!(on_replicas.is_same(), "{on_replicas:?}");
    assert_eq!(on_replicas.counts.same, 120);
    assert_eq!(key_reads(&src), BTreeMap::new(), "the source master served no read");
    assert_eq!(key_reads(&tgt), BTreeMap::new(), "the target master served no read");
    let (rs, rt) = (key_reads(&src_replica), key_reads(&tgt_replica));
    for (side, r) in [("source", &rs), ("target", &rt)] {
        assert!(r.get("dump").copied().unwrap_or(0) >= 120, "{side} replica: {r:?}");
        assert!(r.contains_key("scan"), "{side} replica scanned: {r:?}");
    }
    assert!(rs.contains_key("exists"), "pass 2 looked the target's keys up on the source replica: {rs:?}");
    assert_eq!(on_replicas.read_from.len(), 1);
    assert_eq!(on_replicas.read_from[0].read_node, src_replica.addr());
    assert_eq!(on_replicas.read_from[0].master, src.addr());
    assert_eq!(on_replicas.target_read_from.len(), 1);
    assert_eq!(on_replicas.target_read_from[0].read_node, tgt_replica.addr());
    assert!(on_replicas.read_from[0].fallback.is_none() && on_replicas.target_read_from[0].fallback.is_none());

    // Planted differences: found as a master-only verify finds them, named alike.
    let expected = plant(&mut tgt.admin_conn(), &ns, &pa);
    replicated(&tgt, 1);
    for s in [&src, &tgt] {
        reset_stats(s);
    }
    let found = run(&a, Some(&b), &opts(&pa, &pa), ReadFrom::Replica);
    // Only the planted keys were read again on the masters (a handful of commands each).
    let master_reads = total(&key_reads(&src)) + total(&key_reads(&tgt));
    assert!(master_reads > 0 && master_reads <= 5 * 12, "{:?} {:?}", key_reads(&src), key_reads(&tgt));
    assert_eq!(key_reads(&src).get("scan"), None, "the masters are not scanned");
    let on_masters = run(&a, Some(&b), &opts(&pa, &pa), ReadFrom::Master);
    assert_eq!(found.counts, on_masters.counts);
    // Named alike, with the same details (but an instant read with PTTL, before Redis 7.0).
    let shown = |o: &VerifyOutcome| -> Vec<(Kind, String, String, String)> {
        let detail =
            |d: &psor_core::verify::KeyDiff| if d.kind == Kind::Expiry { String::new() } else { d.detail.clone() };
        o.differences.iter().map(|d| (d.kind, d.key.clone(), d.other.clone(), detail(d))).collect()
    };
    assert_eq!(shown(&found), shown(&on_masters));
    assert_eq!(named(&found), expected);
    assert_eq!((found.counts.same, found.counts.changed, found.counts.failed), (116, 0, 0));
    assert!(on_masters.read_from.is_empty() && on_masters.target_read_from.is_empty());
}

#[test]
fn a_difference_only_the_replica_shows_is_settled_on_the_master_and_not_reported() {
    let ns = unique_prefix("verifyrep-stale");
    let (master, replica) = master_with_replica(&ns, 60);
    let psor = connect(&master.url());
    let (pa, pb) = (format!("{ns}A:"), format!("{ns}B:"));
    copy(&psor, None, &pa, &pb);
    replicated(&master, 1);
    // The replica shows what a lagging replica would: a state the master no longer has (a
    // value, a key, and one key not yet deleted there), with its replication offset caught
    // up, so it is chosen. Only a re-read on the master tells.
    let mut r = replica.admin_conn();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("replica-read-only").arg("no").query(&mut r).unwrap();
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg(format!("{pb}*")).query(&mut r).unwrap();
    let find = |suffix: &str| {
        keys.iter().find(|k| k.ends_with(suffix.as_bytes())).unwrap_or_else(|| panic!("{suffix} in {keys:?}")).clone()
    };
    let _: () = redis::cmd("SET").arg(find(":0")).arg("an older value").query(&mut r).unwrap();
    let _: () = redis::cmd("DEL").arg(find(":5")).query(&mut r).unwrap();
    let _: () = redis::cmd("SET").arg(format!("{pb}not-yet-deleted")).arg("x").query(&mut r).unwrap();
    reset_stats(&master);

    let out = run(&psor, None, &opts(&pa, &pb), ReadFrom::Replica);
    assert_eq!(out.read_from[0].read_node, replica.addr(), "{:?}", out.read_from);
    assert!(out.differences.is_empty(), "{:?}", out.differences);
    assert!(out.is_same(), "{out:?}");
    // The three were seen differing on the replica, and settled on the master.
    assert_eq!((out.counts.same, out.counts.changed), (58, 3), "{:?}", out.counts);
    let reads = key_reads(&master);
    assert!(reads.contains_key("exists") && !reads.contains_key("scan"), "{reads:?}");
}

#[test]
fn a_replica_that_stops_applying_mid_run_shows_old_differences_the_master_settles() {
    let ns = unique_prefix("verifyrep-lag");
    let master = RedisServer::start();
    let (pa, pb) = (format!("{ns}A:"), format!("{ns}B:"));
    let mut pipe = redis::pipe();
    for i in 0..600 {
        pipe.cmd("SET").arg(format!("{pa}{i}")).arg(i).ignore();
        // Six keys differ at the start; they are fixed on the master during the run.
        let v = if i % 100 == 7 { "old".to_string() } else { i.to_string() };
        pipe.cmd("SET").arg(format!("{pb}{i}")).arg(v).ignore();
    }
    let _: () = pipe.query(&mut master.admin_conn()).unwrap();
    let replica = RedisServer::replica_of(&master);
    replicated(&master, 1);
    let psor = connect(&master.url());
    let engine =
        EngineOptions { pacing: Pacing { rate: Some(1500), max_latency: None }, ..engine_on(ReadFrom::Replica) };
    let o = VerifyOptions { recheck_delay: Duration::from_millis(300), ..opts(&pa, &pb) };
    let progress = Arc::new(Progress::new());
    let fixer = {
        let (progress, pb) = (progress.clone(), pb.clone());
        let (mut r, mut m) = (replica.admin_conn(), master.admin_conn());
        std::thread::spawn(move || {
            // The replica was chosen caught up and the scan has begun: from now on it applies
            // nothing (CLIENT PAUSE WRITE holds its master's stream too) and the master fixes
            // the six keys, well before any key read so far is read again.
            while progress.snapshot().counts.matched == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(10_000).arg("WRITE").query(&mut r).unwrap();
            for i in (7..600).step_by(100) {
                let _: () = redis::cmd("SET").arg(format!("{pb}{i}")).arg(i).query(&mut m).unwrap();
            }
            r
        })
    };
    let out = verify::verify(&psor, None, &o, &engine, progress).unwrap();
    let mut r = fixer.join().unwrap();
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut r).unwrap();
    assert_eq!(out.read_from[0].read_node, replica.addr(), "{:?}", out.read_from);
    assert!(out.read_from[0].fallback.is_none());
    // Each of the six differed where it was first read (the replica, or the master before its
    // fix) and was settled on the master: never reported.
    assert!(out.differences.is_empty(), "{:?}", out.differences);
    assert_eq!((out.counts.same, out.counts.changed, out.counts.failed), (594, 6, 0), "{:?}", out.counts);
}

/// A verify of 3000 keys (paced) on a master whose replica is stopped once 300 are done.
fn verify_while_the_replica_dies(mode: ReadFrom) -> (RedisServer, Result<VerifyOutcome, Error>) {
    let ns = unique_prefix("verifyrep-kill");
    let master = RedisServer::start();
    let (pa, pb) = (format!("{ns}A:"), format!("{ns}B:"));
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SET").arg(format!("{pa}{i}")).arg(i).ignore();
        pipe.cmd("SET").arg(format!("{pb}{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut master.admin_conn()).unwrap();
    let mut replica = RedisServer::replica_of(&master);
    let psor = connect(&master.url());
    let engine =
        EngineOptions { queue_depth: 1, pacing: Pacing { rate: Some(3000), max_latency: None }, ..engine_on(mode) };
    let progress = Arc::new(Progress::new());
    let killer = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            while progress.snapshot().counts.done < 300 {
                std::thread::sleep(Duration::from_millis(5));
            }
            replica.stop();
            replica
        })
    };
    let out = verify::verify(&psor, None, &opts(&pa, &pb), &engine, progress);
    drop(killer.join().unwrap());
    (master, out)
}

#[test]
fn a_replica_lost_mid_verify_leaves_the_reads_to_the_master_and_the_result_is_exact() {
    let (master, out) = verify_while_the_replica_dies(ReadFrom::Replica);
    let out = out.unwrap();
    assert!(out.is_same(), "{out:?}");
    assert_eq!((out.counts.same, out.counts.failed, out.counts.changed), (3000, 0, 0));
    let choice = &out.read_from[0];
    assert_eq!(choice.read_node, master.addr());
    assert!(choice.fallback.as_deref().is_some_and(|f| f.contains("during the run")), "{choice:?}");
}

#[test]
fn replica_only_stops_a_verify_when_the_replica_is_lost() {
    let (_master, out) = verify_while_the_replica_dies(ReadFrom::ReplicaOnly);
    assert!(matches!(out, Err(Error::ReplicaUnavailable { .. })), "{out:?}");
}

#[test]
fn behind_sentinel_verify_reads_the_masters_replica() {
    let ns = unique_prefix("verifyrep-sentinel");
    let (master, replica) = master_with_replica(&ns, 100);
    let sentinel = RedisSentinel::start(&master, "psormaster");
    let psor = connect(&sentinel.url("psormaster"));
    let (pa, pb) = (format!("{ns}A:"), format!("{ns}B:"));
    copy(&psor, None, &pa, &pb);
    replicated(&master, 1);
    reset_stats(&master);
    let out = run(&psor, None, &opts(&pa, &pb), ReadFrom::Replica);
    assert_eq!(key_reads(&master), BTreeMap::new(), "the master served no read");
    assert!(out.is_same() && out.counts.same == 100, "{out:?}");
    assert_eq!(out.read_from.len(), 1);
    assert_eq!(out.read_from[0].read_node, replica.addr(), "{:?}", out.read_from);
    assert!(out.target_read_from.is_empty(), "one keyspace: one list");
}

#[test]
fn on_a_cluster_verify_reads_each_masters_replica() {
    let cluster = RedisCluster::start(3, 1);
    let ns = unique_prefix("verifyrep-cluster");
    let (pa, pb) = (format!("{ns}A:"), format!("{ns}B:"));
    populate_all_types(&mut cluster.cluster_conn(), pa.as_bytes(), 200);
    let psor = connect(&cluster.url());
    copy(&psor, None, &pa, &pb);
    let replicas: Vec<String> = cluster.replicas().iter().map(|r| r.addr()).collect();
    for m in cluster.masters() {
        replicated(m, 1);
    }
    for n in cluster.nodes() {
        reset_stats(n);
    }
    let out = run(&psor, None, &opts(&pa, &pb), ReadFrom::Replica);
    for m in cluster.masters() {
        assert_eq!(key_reads(m), BTreeMap::new(), "master {} served reads", m.addr());
    }
    assert!(cluster.replicas().iter().map(|r| key_reads(r).get("dump").copied().unwrap_or(0)).sum::<u64>() >= 400);
    assert!(out.is_same() && out.counts.same == 200, "{out:?}");
    assert_eq!(out.read_from.len(), 3);
    for c in &out.read_from {
        assert!(c.fallback.is_none() && replicas.contains(&c.read_node), "{c:?}");
    }
}

#[test]
fn verify_against_a_snapshot_reads_the_live_side_on_the_replica() {
    let ns = unique_prefix("verifyrep-snap");
    let (master, replica) = master_with_replica(&ns, 90);
    let psor = connect(&master.url());
    let pa = format!("{ns}A:");
    let dir = tempfile::Builder::new().prefix("verifyrep-snap-").tempdir().unwrap();
    let path = dir.path().join("a.psnap");
    let eo = ExportOptions { selection: ExportSelection::prefix(prefix(&pa)), path: path.clone(), overwrite: true };
    snapshot::export(&psor, &eo, &engine_on(ReadFrom::Master), Arc::new(Progress::new())).unwrap();
    // One live key the file does not have: reported missing (looked up on the master).
    let _: () = redis::cmd("SET").arg(format!("{pa}after-export")).arg("x").query(&mut master.admin_conn()).unwrap();
    replicated(&master, 1);
    reset_stats(&master);
    let out = verify::verify_snapshot(
        &psor,
        &path,
        &opts(&pa, &pa),
        &engine_on(ReadFrom::Replica),
        Arc::new(Progress::new()),
    )
    .unwrap();
    assert_eq!((out.counts.same, out.counts.missing, out.counts.differences()), (90, 1, 1), "{out:?}");
    assert_eq!(out.read_from.len(), 1);
    assert_eq!(out.read_from[0].read_node, replica.addr());
    // Pass 1 read every live key on the replica; the master answered only the look-up of
    // the one key the file lacks.
    let reads = key_reads(&master);
    assert_eq!(reads, BTreeMap::from([("exists".to_string(), 1)]), "{reads:?}");
    assert!(key_reads(&replica).get("dump").copied().unwrap_or(0) >= 90);
}

#[test]
fn a_replica_lost_while_the_live_side_is_scanned_against_a_snapshot_counts_each_missing_key_once() {
    let ns = unique_prefix("verifyrep-snapkill");
    let master = RedisServer::start();
    let pa = format!("{ns}A:");
    let mut pipe = redis::pipe();
    for i in 0..1500 {
        pipe.cmd("SET").arg(format!("{pa}{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut master.admin_conn()).unwrap();
    let psor = connect(&master.url());
    let dir = tempfile::Builder::new().prefix("verifyrep-snapkill-").tempdir().unwrap();
    let path = dir.path().join("a.psnap");
    let eo = ExportOptions { selection: ExportSelection::prefix(prefix(&pa)), path: path.clone(), overwrite: true };
    snapshot::export(&psor, &eo, &engine_on(ReadFrom::Master), Arc::new(Progress::new())).unwrap();
    // 50 live keys the file does not have.
    let mut pipe = redis::pipe();
    for i in 0..50 {
        pipe.cmd("SET").arg(format!("{pa}late:{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut master.admin_conn()).unwrap();
    let mut replica = RedisServer::replica_of(&master);
    replicated(&master, 1);
    let engine = EngineOptions {
        queue_depth: 1,
        pacing: Pacing { rate: Some(3000), max_latency: None },
        ..engine_on(ReadFrom::Replica)
    };
    let progress = Arc::new(Progress::new());
    let killer = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            // Pass 1 matched the file's 1500 records; pass 2's scan of the replica has begun.
            while progress.snapshot().counts.matched < 1650 {
                std::thread::sleep(Duration::from_millis(2));
            }
            replica.stop();
            replica
        })
    };
    let out = verify::verify_snapshot(&psor, &path, &opts(&pa, &pa), &engine, progress).unwrap();
    drop(killer.join().unwrap());
    assert_eq!((out.counts.same, out.counts.missing, out.counts.changed, out.counts.failed), (1500, 50, 0, 0));
    assert_eq!(out.differences.len(), 50, "each named once");
    let choice = &out.read_from[0];
    assert_eq!(choice.read_node, master.addr());
    assert!(choice.fallback.as_deref().is_some_and(|f| f.contains("during the run")), "{choice:?}");
}
