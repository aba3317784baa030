//! The engine on a real 3-master Redis Cluster: the standalone guarantees hold (only the
//! prefix, every type, exact expiry, conflicts left alone), across slots and across
//! topologies (cluster → standalone → cluster), and the vendor's node list finds the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec, Topology};
use psor_core::engine::{self, CopyOptions, DeleteOptions, EngineOptions, Outcome};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_tests::{
    keyspace_digest, keyspace_digest_cluster, populate_all_types, unique_prefix, KeyState, RedisCluster, RedisServer,
};

fn connect(spec: &str) -> Psor {
    Psor::connect(&PsorSpec::parse(spec).unwrap(), &ConnectOptions::default()).unwrap()
}

fn small_batches() -> EngineOptions {
    EngineOptions { scan_count: 50, batch_size: 37, writers: 2, ..EngineOptions::default() }
}

fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::new(s.as_bytes()).unwrap()
}

fn copy_opts(from: &str, to: &str) -> CopyOptions {
    CopyOptions { from: prefix(from), to: prefix(to), replace: false, move_keys: false, dry_run: false, sample: 5 }
}

fn copy(source: &Psor, target: Option<&Psor>, opts: &CopyOptions) -> Outcome {
    engine::copy(source, target, opts, &small_batches(), Arc::new(Progress::new())).unwrap()
}

fn delete(psor: &Psor, p: &str, dry_run: bool) -> Outcome {
    let opts = DeleteOptions { prefix: prefix(p), dry_run, sample: 5 };
    engine::delete(psor, &opts, &small_batches(), Arc::new(Progress::new())).unwrap()
}

fn renamed(d: &BTreeMap<Vec<u8>, KeyState>, from: &str, to: &str) -> BTreeMap<Vec<u8>, KeyState> {
    d.iter().map(|(k, v)| ([to.as_bytes(), &k[from.len()..]].concat(), v.clone())).collect()
}

fn outside(cluster: &RedisCluster, ns: &str, excluded: &[&str]) -> BTreeMap<Vec<u8>, KeyState> {
    let mut d = keyspace_digest_cluster(cluster, ns.as_bytes());
    d.retain(|k, _| !excluded.iter().any(|e| k.starts_with(e.as_bytes())));
    d
}

#[test]
fn delete_copy_and_move_across_slots() {
    let cluster = RedisCluster::start(3, 0);
    let mut conn = cluster.cluster_conn();
    let ns = unique_prefix("cluster");
    let (a, b, c) = (format!("{ns}MyPAC_8.0:"), format!("{ns}MyPAC_9.0:"), format!("{ns}MyPAC_9.1:"));
    populate_all_types(&mut conn, a.as_bytes(), 240);
    for nb in ["MyPAC_8.01:", "MyPAC_8.0", "MyPAC2_8.0:"] {
        populate_all_types(&mut conn, format!("{ns}{nb}").as_bytes(), 18);
    }
    let original = keyspace_digest_cluster(&cluster, a.as_bytes());
    assert_eq!(original.len(), 240);
    let psor = connect(&cluster.url());
    assert!(psor.is_cluster());
    assert_eq!(psor.masters().len(), 3);

    // Copy across slots (DUMP/RESTORE routed by the target's slot), then a rerun.
    let before = outside(&cluster, &ns, &[&b]);
    let out = copy(&psor, None, &copy_opts(&a, &b));
    assert_eq!((out.counts.matched, out.counts.done, out.counts.conflicts, out.counts.failed), (240, 240, 0, 0));
    assert_eq!(keyspace_digest_cluster(&cluster, b.as_bytes()), renamed(&original, &a, &b));
    assert_eq!(outside(&cluster, &ns, &[&b]), before, "a key outside the target changed");
    let again = copy(&psor, None, &copy_opts(&a, &b));
    assert_eq!((again.counts.done, again.counts.unchanged, again.counts.conflicts), (0, 240, 0));

    // Move: the sources go once their copies are confirmed.
    let mut mv = copy_opts(&b, &c);
    mv.move_keys = true;
    let out = copy(&psor, None, &mv);
    assert_eq!((out.counts.done, out.counts.failed), (240, 0));
    assert!(keyspace_digest_cluster(&cluster, b.as_bytes()).is_empty());
    assert_eq!(keyspace_digest_cluster(&cluster, c.as_bytes()), renamed(&original, &a, &c));

    // Delete: grouped by slot, nothing next to the prefix touched.
    let before = outside(&cluster, &ns, &[&a]);
    let dry = delete(&psor, &a, true);
    assert_eq!(dry.counts.matched, 240);
    let out = delete(&psor, &a, false);
    assert_eq!((out.counts.matched, out.counts.done, out.counts.failed), (240, 240, 0));
    assert!(keyspace_digest_cluster(&cluster, a.as_bytes()).is_empty());
    assert_eq!(keyspace_digest_cluster(&cluster, ns.as_bytes()), before);
}

#[test]
fn hash_tagged_keys_copy_inside_their_slot() {
    // Keys whose source and target share a hash tag stay in one slot: COPY / RENAMENX.
    let cluster = RedisCluster::start(3, 0);
    let mut conn = cluster.cluster_conn();
    let ns = unique_prefix("tagged");
    let a = format!("{{{ns}}}a:");
    let b = format!("{{{ns}}}b:");
    populate_all_types(&mut conn, a.as_bytes(), 60);
    let original = keyspace_digest_cluster(&cluster, a.as_bytes());
    let psor = connect(&cluster.url());
    let out = copy(&psor, None, &copy_opts(&a, &b));
    assert_eq!((out.counts.done, out.counts.failed), (60, 0));
    assert_eq!(keyspace_digest_cluster(&cluster, b.as_bytes()), renamed(&original, &a, &b));
}

#[test]
fn cluster_to_standalone_and_back() {
    let cluster = RedisCluster::start(3, 0);
    let server = RedisServer::start();
    let ns = unique_prefix("xtopo");
    let (a, b, c) = (format!("{ns}a:"), format!("{ns}b:"), format!("{ns}c:"));
    populate_all_types(&mut cluster.cluster_conn(), a.as_bytes(), 150);
    let original = keyspace_digest_cluster(&cluster, a.as_bytes());
    let (pc, ps) = (connect(&cluster.url()), connect(&server.url()));

    let out = copy(&pc, Some(&ps), &copy_opts(&a, &b));
    assert_eq!((out.counts.done, out.counts.failed), (150, 0));
    assert_eq!(keyspace_digest(&mut server.admin_conn(), b.as_bytes()), renamed(&original, &a, &b));

    let out = copy(&ps, Some(&pc), &copy_opts(&b, &c));
    assert_eq!((out.counts.done, out.counts.failed), (150, 0));
    assert_eq!(keyspace_digest_cluster(&cluster, c.as_bytes()), renamed(&original, &a, &c));
}

#[test]
fn the_caspac_node_list_finds_the_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let seeds = cluster.seeds();
    let psor = connect(&format!("redis,{},{}", seeds[0], seeds[1]));
    assert!(psor.is_cluster());
    assert_eq!(psor.masters().len(), 3);
    // One node alone in the caspac form is a single server.
    let one = connect(&format!("redis,{}", seeds[0]));
    assert!(!one.is_cluster());
}

/// The commands psor needs on a cluster: the standalone list plus discovery, the end-of-run
/// slot sweep, and ASK redirections. The README lists the same.
const CLUSTER_ACL: &str = "on >pw-cluster ~* -@all +info +dbsize +scan +unlink +exists +copy +rename +renamenx +dump \
+restore +pexpiretime +pttl +type +strlen +get +hlen +hgetall +scard +smembers +zcard +zrange +llen +lrange \
+xlen +xrange +cluster|nodes +cluster|countkeysinslot +cluster|getkeysinslot +asking";

#[test]
fn conflicts_and_a_minimal_acl_user_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0);
    for node in cluster.nodes() {
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER").arg("psor");
        // Redis 6.2 has no PEXPIRETIME (psor reads PTTL there) and refuses a rule naming it.
        for rule in CLUSTER_ACL.split_whitespace().filter(|r| node.kind().has_pexpiretime() || *r != "+pexpiretime") {
            cmd.arg(rule);
        }
        let _: () = cmd.query(&mut node.admin_conn()).unwrap();
    }
    let url = format!("redis+cluster://psor:pw-cluster@{}", cluster.seeds().join(","));
    let mut conn = cluster.cluster_conn();
    let ns = unique_prefix("cluster-acl");
    let (a, b) = (format!("{ns}a:"), format!("{ns}b:"));
    populate_all_types(&mut conn, a.as_bytes(), 90);
    let _: () = redis::cmd("SET").arg(format!("{a}clash")).arg("mine").query(&mut conn).unwrap();
    let _: () = redis::cmd("SET").arg(format!("{b}clash")).arg("theirs").query(&mut conn).unwrap();

    let psor = connect(&url);
    let out = copy(&psor, None, &copy_opts(&a, &b));
    assert_eq!((out.counts.matched, out.counts.done, out.counts.conflicts, out.counts.failed), (91, 90, 1, 0));
    let theirs: String = redis::cmd("GET").arg(format!("{b}clash")).query(&mut conn).unwrap();
    assert_eq!(theirs, "theirs");
    let mut replace = copy_opts(&a, &b);
    replace.replace = true;
    let out = copy(&psor, None, &replace);
    assert_eq!((out.counts.conflicts, out.counts.failed), (0, 0));
    let mine: String = redis::cmd("GET").arg(format!("{b}clash")).query(&mut conn).unwrap();
    assert_eq!(mine, "mine");
    let out = delete(&psor, &b, false);
    assert_eq!(out.counts.done, 91);
    assert!(keyspace_digest_cluster(&cluster, b.as_bytes()).is_empty());
}

#[test]
fn progress_shows_each_masters_share() {
    let cluster = RedisCluster::start(3, 0);
    let ns = unique_prefix("cluster-progress");
    populate_all_types(&mut cluster.cluster_conn(), ns.as_bytes(), 300);
    let psor = connect(&cluster.url());
    let progress = Arc::new(Progress::new());
    let opts = DeleteOptions { prefix: prefix(&ns), dry_run: false, sample: 0 };
    let out = engine::delete(&psor, &opts, &small_batches(), progress.clone()).unwrap();
    let masters = progress.masters();
    assert_eq!(masters.len(), 3);
    // Every master had keys under the prefix; the shares add up to the whole.
    assert!(masters.iter().all(|m| m.matched > 0 && m.total_keys > 0), "{masters:?}");
    assert_eq!(masters.iter().map(|m| m.matched).sum::<u64>(), out.counts.matched);
    assert_eq!(masters.iter().map(|m| m.total_keys).sum::<u64>(), progress.snapshot().total_keys);
    assert_eq!(progress.snapshot().total_keys, 300);
}

/// `cmdstat_unlink:calls` summed over every master.
fn unlink_calls(cluster: &RedisCluster) -> u64 {
    cluster
        .masters()
        .iter()
        .map(|m| {
            let info: String = redis::cmd("INFO").arg("commandstats").query(&mut m.admin_conn()).unwrap();
            info.lines()
                .find_map(|l| l.strip_prefix("cmdstat_unlink:calls="))
                .map(|rest| rest.split(',').next().unwrap().parse::<u64>().unwrap())
                .unwrap_or(0)
        })
        .sum()
}

/// `n` keys under `p`, spread over `tags` hash tags (so slots hold many keys each, as in a
/// large PSOR), written one `MSET` per tag.
fn populate_tagged(cluster: &RedisCluster, p: &str, n: usize, tags: usize) -> Vec<u16> {
    let mut conn = cluster.cluster_conn();
    let mut slots = Vec::new();
    for t in 0..tags {
        let mut cmd = redis::cmd("MSET");
        for i in (t..n).step_by(tags) {
            cmd.arg(format!("{p}{{t{t}}}:{i}")).arg(i);
        }
        let () = cmd.query(&mut conn).unwrap();
        slots.push(psor_core::connect::key_slot(format!("t{t}").as_bytes()));
    }
    slots
}

/// A big delete on a cluster sends one `UNLINK` per slot's worth of keys, not one per key
/// per batch: buffers per slot survive across batches and are flushed at the end.
#[test]
fn cluster_delete_groups_keys_per_slot_across_batches() {
    let cluster = RedisCluster::start(3, 0);
    let ns = unique_prefix("perslot");
    let (p, sibling) = (format!("{ns}a:"), format!("{ns}a"));
    let keys = 50_000;
    let slots = populate_tagged(&cluster, &p, keys, 128);
    populate_tagged(&cluster, &sibling, 1_000, 64);
    populate_tagged(&cluster, &format!("{ns}b:"), 1_000, 64);
    let psor = connect(&cluster.url());
    let Topology::Cluster(map) = psor.topology() else { panic!("not a cluster") };
    let masters: BTreeSet<String> = slots.iter().filter_map(|&s| map.master_of(s)).map(ToString::to_string).collect();
    assert_eq!(masters.len(), 3, "the keys must live on every master");
    let before = outside(&cluster, &ns, &[&p]);
    assert_eq!(before.len(), 2_000);
    for m in cluster.masters() {
        let () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut m.admin_conn()).unwrap();
    }
    let opts = DeleteOptions { prefix: prefix(&p), dry_run: false, sample: 5 };
    let outcome = engine::delete(&psor, &opts, &EngineOptions::default(), Arc::new(Progress::new())).unwrap();
    assert_eq!((outcome.counts.matched, outcome.counts.done, outcome.counts.vanished), (keys as u64, keys as u64, 0));
    assert!(keyspace_digest_cluster(&cluster, p.as_bytes()).is_empty());
    assert_eq!(outside(&cluster, &ns, &[&p]), before, "a key outside the prefix changed");
    let calls = unlink_calls(&cluster);
    assert!(calls <= keys as u64 / 50, "{calls} UNLINK calls for {keys} keys");
}

/// An interrupted cluster delete sends what its slot buffers hold before it stops: the count
/// is exactly what is gone, nothing outside the prefix is touched, and a second run finishes.
#[test]
fn interrupted_cluster_delete_flushes_its_slot_buffers() {
    let cluster = RedisCluster::start(3, 0);
    let ns = unique_prefix("perslot_int");
    let p = format!("{ns}a:");
    let keys = 50_000;
    populate_tagged(&cluster, &p, keys, 128);
    populate_tagged(&cluster, &format!("{ns}a"), 1_000, 64);
    let before = outside(&cluster, &ns, &[&p]);
    let psor = connect(&cluster.url());
    let opts = DeleteOptions { prefix: prefix(&p), dry_run: false, sample: 5 };
    let paced = EngineOptions {
        pacing: engine::Pacing { rate: Some(10_000), ..engine::Pacing::default() },
        ..EngineOptions::default()
    };
    let progress = Arc::new(Progress::new());
    let canceller = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(1500));
            progress.cancel();
        })
    };
    let outcome = engine::delete(&psor, &opts, &paced, progress).unwrap();
    canceller.join().unwrap();
    assert!(outcome.interrupted);
    let left = keyspace_digest_cluster(&cluster, p.as_bytes()).len() as u64;
    assert!(left > 0 && left < keys as u64, "{left} keys left");
    assert_eq!(outcome.counts.done, keys as u64 - left, "the count is what the servers confirmed");
    assert_eq!(outcome.counts.vanished, 0);
    assert_eq!(outside(&cluster, &ns, &[&p]), before, "a key outside the prefix changed");
    let again = engine::delete(&psor, &opts, &EngineOptions::default(), Arc::new(Progress::new())).unwrap();
    assert_eq!(again.counts.done, left);
    assert!(keyspace_digest_cluster(&cluster, p.as_bytes()).is_empty());
}

/// Keys spread over every slot (no hash tags): the delete is exact, and the run sends at
/// most one `UNLINK` per slot it saw, however many writers it has (a slot under the flush
/// size cannot do better, since a command may not span two slots; the buffers are the run's,
/// not a writer's, so two writers of a master do not split a slot's keys); grouping only
/// within a batch sent about one per key, buffers per writer up to one per slot and writer.
#[test]
fn cluster_delete_over_every_slot_sends_at_most_one_unlink_per_slot() {
    let cluster = RedisCluster::start(3, 0);
    let ns = unique_prefix("allslots");
    let p = format!("{ns}a:");
    let keys = 50_000u64;
    let psor = connect(&cluster.url());
    let Topology::Cluster(map) = psor.topology() else { panic!("not a cluster") };
    let masters = cluster.masters();
    let mut pipes: BTreeMap<String, redis::Pipeline> = BTreeMap::new();
    let mut slots = BTreeSet::new();
    for i in 0..keys + 2_000 {
        let key = if i < keys { format!("{p}{i}") } else { format!("{ns}b:{i}") };
        let slot = psor_core::connect::key_slot(key.as_bytes());
        if i < keys {
            slots.insert(slot);
        }
        let owner = map.master_of(slot).unwrap().to_string();
        pipes.entry(owner).or_insert_with(redis::pipe).cmd("SET").arg(key).arg(i).ignore();
    }
    for m in &masters {
        let pipe = pipes.get(&m.addr()).expect("every master owns slots");
        let () = pipe.query(&mut m.admin_conn()).unwrap();
        let () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut m.admin_conn()).unwrap();
    }
    let before = outside(&cluster, &ns, &[&p]);
    assert_eq!(before.len(), 2_000);
    let opts = DeleteOptions { prefix: prefix(&p), dry_run: false, sample: 5 };
    let engine = EngineOptions::default();
    let outcome = engine::delete(&psor, &opts, &engine, Arc::new(Progress::new())).unwrap();
    assert_eq!((outcome.counts.done, outcome.counts.vanished), (keys, 0));
    assert!(keyspace_digest_cluster(&cluster, p.as_bytes()).is_empty());
    assert_eq!(outside(&cluster, &ns, &[&p]), before, "a key outside the prefix changed");
    let calls = unlink_calls(&cluster);
    assert!(engine.writers > 1, "the point is several writers per master");
    let bound = slots.len() as u64;
    assert!(calls <= bound, "{calls} UNLINK calls, more than one per slot ({bound}) for {keys} keys");
}

/// `cmdstat_unlink:rejected_calls` (redirections: MOVED, ASK, TRYAGAIN) summed over every
/// master.
fn unlink_rejected(cluster: &RedisCluster) -> u64 {
    cluster
        .masters()
        .iter()
        .map(|m| {
            let info: String = redis::cmd("INFO").arg("commandstats").query(&mut m.admin_conn()).unwrap();
            info.lines()
                .find_map(|l| l.strip_prefix("cmdstat_unlink:"))
                .and_then(|rest| rest.split(',').find_map(|f| f.strip_prefix("rejected_calls=")))
                .map(|n| n.parse::<u64>().unwrap())
                .unwrap_or(0)
        })
        .sum()
}

/// A slot migrated while the slot buffers hold its keys: the buffered `UNLINK` meets the
/// redirection (MOVED, or ASK/TRYAGAIN mid-migration) and is resent to the new owner, keys the
/// old owner's scan missed are swept at the end; the count is exact and nothing outside the
/// prefix is touched.
#[test]
fn cluster_delete_with_a_slot_migrated_while_its_keys_are_buffered() {
    let cluster = RedisCluster::start(3, 0);
    let ns = unique_prefix("perslot_mig");
    let p = format!("{ns}a:");
    // Most keys in one slot (fewer than a slot's flush size ever sits in its buffer at
    // once), the rest spread over every slot, so the paced scan meets the slot's keys
    // throughout the run.
    let tagged = 3_000usize;
    let mut conn = cluster.cluster_conn();
    let mut cmd = redis::cmd("MSET");
    for i in 0..tagged {
        cmd.arg(format!("{p}{{mig}}:{i}")).arg(i);
    }
    let () = cmd.query(&mut conn).unwrap();
    let spread = 3_000usize;
    for i in 0..spread {
        let () = redis::cmd("SET").arg(format!("{p}{i}")).arg(i).query(&mut conn).unwrap();
    }
    populate_tagged(&cluster, &format!("{ns}a"), 500, 16);
    let mut outside_mig = redis::cmd("MSET");
    for i in 0..200 {
        outside_mig.arg(format!("{ns}b:{{mig}}:{i}")).arg(i);
    }
    let () = outside_mig.query(&mut conn).unwrap();
    let before = outside(&cluster, &ns, &[&p]);
    assert_eq!(before.len(), 700);
    let slot = cluster.slot_of(format!("{p}{{mig}}:0").as_bytes());
    let owner = cluster.node_for_slot(slot);
    let other = *cluster.masters().iter().find(|m| m.port() != owner.port()).unwrap();
    for m in cluster.masters() {
        let () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut m.admin_conn()).unwrap();
    }
    let psor = connect(&cluster.url());
    let opts = DeleteOptions { prefix: prefix(&p), dry_run: false, sample: 5 };
    let paced = EngineOptions {
        pacing: engine::Pacing { rate: Some(2_000), ..engine::Pacing::default() },
        batch_size: 100,
        scan_count: 100,
        ..EngineOptions::default()
    };
    let run = std::thread::spawn(move || engine::delete(&psor, &opts, &paced, Arc::new(Progress::new())));
    std::thread::sleep(std::time::Duration::from_millis(1000));
    cluster.migrate_slot(slot, owner, other);
    let outcome = run.join().unwrap().unwrap();
    let all = (tagged + spread) as u64;
    assert!(!outcome.interrupted);
    assert_eq!((outcome.counts.done, outcome.counts.failed), (all, 0), "{:?}", outcome.counts);
    assert!(keyspace_digest_cluster(&cluster, p.as_bytes()).is_empty());
    assert_eq!(outside(&cluster, &ns, &[&p]), before, "a key outside the prefix changed");
    assert!(unlink_rejected(&cluster) > 0, "no UNLINK met the migration: the test did not test it");
}

/// `n` keys under `p` with no hash tag (spread over every slot), one pipeline per master.
fn populate_spread(cluster: &RedisCluster, psor: &Psor, p: &str, n: u64) {
    let Topology::Cluster(map) = psor.topology() else { panic!("not a cluster") };
    let mut pipes: BTreeMap<String, redis::Pipeline> = BTreeMap::new();
    for i in 0..n {
        let key = format!("{p}{i}");
        let owner = map.master_of(psor_core::connect::key_slot(key.as_bytes())).unwrap().to_string();
        pipes.entry(owner).or_insert_with(redis::pipe).cmd("SET").arg(key).arg(i).ignore();
    }
    for m in cluster.masters() {
        let () = pipes.get(&m.addr()).expect("every master owns slots").query(&mut m.admin_conn()).unwrap();
    }
}

/// An unpaced cluster copy (RESTOREs to every master, queued jobs written together)
/// interrupted midway: every key the target stage was handed is written and counted, the count
/// is exactly what the target holds, the sources are untouched, and a rerun finishes.
#[test]
fn interrupted_cluster_copy_counts_exactly_what_the_target_holds() {
    let cluster = RedisCluster::start(3, 0);
    let ns = unique_prefix("copy_int");
    let (from, to) = (format!("{ns}a:"), format!("{ns}b:"));
    let psor = connect(&cluster.url());
    let keys = 60_000u64;
    populate_spread(&cluster, &psor, &from, keys);
    let sources = keyspace_digest_cluster(&cluster, from.as_bytes());
    assert_eq!(sources.len() as u64, keys);
    let opts = copy_opts(&from, &to);
    let progress = Arc::new(Progress::new());
    let canceller = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while progress.snapshot().counts.done < 5_000 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            progress.cancel();
        })
    };
    let out = engine::copy(&psor, None, &opts, &EngineOptions::default(), progress).unwrap();
    canceller.join().unwrap();
    assert!(out.interrupted);
    let copied = keyspace_digest_cluster(&cluster, to.as_bytes());
    let n = copied.len() as u64;
    assert!(n >= 5_000 && n < keys, "{n} keys copied");
    assert_eq!(out.counts.done, n, "the count is what the target holds");
    assert_eq!(out.counts.failed, 0);
    assert_eq!(keyspace_digest_cluster(&cluster, from.as_bytes()), sources, "a source changed");
    let again = copy(&psor, None, &opts);
    assert_eq!((again.counts.done, again.counts.unchanged), (keys - n, n), "{:?}", again.counts);
    assert_eq!(keyspace_digest_cluster(&cluster, to.as_bytes()), renamed(&sources, &from, &to));
}
