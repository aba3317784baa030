//! Writes arriving while `export` and `survey` run (issue 13), on a master read directly and
//! on a master read through its replica (`--read-from replica`): keys are created,
//! overwritten, given a TTL and deleted during the run. Every key that existed at the start
//! and was left alone is in the file exactly once, with its exact value and expiry, and is
//! counted exactly once by the survey; a key created during the run may or may not be in the
//! file, but never twice.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec, ReadChoice, ReadFrom};
use psor_core::engine::{EngineOptions, Pacing};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_core::snapshot::{self, ExportOptions, ExportSelection, ImportOptions};
use psor_core::survey::{self, SurveyOptions};
use psor_tests::live::BackgroundWriter;
use psor_tests::{keyspace_digest, populate_all_types, unique_prefix, KeyState, RedisServer};

fn connect(spec: &str) -> Psor {
    Psor::connect(&PsorSpec::parse(spec).unwrap(), &ConnectOptions::default()).unwrap()
}

/// Keys of the start that nothing touches during the run.
const STILL: usize = 2000;
/// Keys of the start that the writer overwrites, gives a TTL, or deletes.
const HOT: u64 = 1000;
/// The run's pace: about a second for the 3000 keys of the start.
const RATE: u64 = 3000;

/// A master (and, with `replica`, a synced replica) holding, under `<ns>A:`, `STILL` keys
/// under `still:` (600 of every type, the rest strings, many with a TTL) and `HOT` strings
/// under `hot:`, plus neighbours outside the prefix (`<ns>A`, `<ns>B:`).
fn setup(ns: &str, replica: bool) -> (RedisServer, Option<RedisServer>) {
    let master = RedisServer::start();
    let mut conn = master.admin_conn();
    let p = format!("{ns}A:");
    populate_all_types(&mut conn, format!("{p}still:").as_bytes(), 600);
    let mut pipe = redis::pipe();
    for i in 0..STILL - 600 {
        let key = format!("{p}still:s:{i}");
        pipe.cmd("SET").arg(&key).arg(format!("value {i}")).ignore();
        if i % 4 == 0 {
            pipe.cmd("PEXPIRE").arg(&key).arg(3_600_000 + i).ignore();
        }
    }
    for i in 0..HOT {
        pipe.cmd("SET").arg(format!("{p}hot:{i}")).arg(i).ignore();
    }
    let () = pipe.query(&mut conn).unwrap();
    for nb in ["A", "B:"] {
        populate_all_types(&mut conn, format!("{ns}{nb}").as_bytes(), 20);
    }
    let replica = replica.then(|| RedisServer::replica_of(&master));
    (master, replica)
}

/// Starts writing under `<ns>A:` about once a millisecond: a new key `new:N` = N, and one
/// `hot:` key deleted, overwritten, or given a TTL, in turn.
fn writes(master: &RedisServer, ns: &str) -> BackgroundWriter {
    let p = format!("{ns}A:");
    BackgroundWriter::start(master.admin_conn(), move |conn, i| {
        let () = redis::cmd("SET").arg(format!("{p}new:{i}")).arg(i).query(conn).unwrap();
        let hot = format!("{p}hot:{}", i % HOT);
        let _: i64 = match i % 3 {
            0 => redis::cmd("DEL").arg(&hot).query(conn).unwrap(),
            1 => redis::cmd("SET").arg(&hot).arg(format!("v{i}")).query::<()>(conn).map(|()| 1).unwrap(),
            _ => redis::cmd("PEXPIRE").arg(&hot).arg(60_000).query(conn).unwrap(),
        };
    })
}

fn only(d: &BTreeMap<Vec<u8>, KeyState>, p: &str) -> BTreeMap<Vec<u8>, KeyState> {
    d.iter().filter(|(k, _)| k.starts_with(p.as_bytes())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// How many records of each key `path` holds.
fn records(path: &Path) -> BTreeMap<Vec<u8>, u64> {
    let mut reader =
        psor_formats::SnapshotReader::open(std::io::BufReader::new(std::fs::File::open(path).unwrap())).unwrap();
    let mut seen = BTreeMap::new();
    reader.for_each_record(|r| *seen.entry(r.key.to_vec()).or_insert(0) += 1).unwrap();
    seen
}

/// What `path` holds under `p`, restored on a fresh server.
fn restored(path: &Path, p: &str) -> BTreeMap<Vec<u8>, KeyState> {
    let fresh = RedisServer::start();
    let opts = ImportOptions { path: path.to_path_buf(), rename: None, replace: false, dry_run: false, sample: 0 };
    snapshot::import(&connect(&fresh.url()), &opts, &EngineOptions::default(), Arc::new(Progress::new())).unwrap();
    keyspace_digest(&mut fresh.admin_conn(), p.as_bytes())
}

fn read_from(mode: ReadFrom) -> EngineOptions {
    EngineOptions {
        scan_count: 50,
        queue_depth: 1,
        pacing: Pacing { rate: Some(RATE), max_latency: None },
        read_from: mode,
        ..EngineOptions::default()
    }
}

fn export_while_writes_arrive(name: &str, with_replica: bool) {
    let ns = unique_prefix(name);
    let (master, replica) = setup(&ns, with_replica);
    let p = format!("{ns}A:");
    let still = only(&keyspace_digest(&mut master.admin_conn(), p.as_bytes()), &format!("{p}still:"));
    assert_eq!(still.len(), STILL);
    let psor = connect(&master.url());
    let dir = tempfile::Builder::new().prefix("lagtests-export-").tempdir().unwrap();
    let path = dir.path().join("live.psnap");
    let opts = ExportOptions {
        selection: ExportSelection::prefix(KeyPrefix::new(p.as_bytes()).unwrap()),
        path: path.clone(),
        overwrite: false,
    };
    let mode = if with_replica { ReadFrom::Replica } else { ReadFrom::Master };
    let writer = writes(&master, &ns);
    let out = snapshot::export(&psor, &opts, &read_from(mode), Arc::new(Progress::new())).unwrap();
    let steps = writer.stop();
    assert!(steps >= 20, "only {steps} writes during the run");
    if let Some(r) = &replica {
        assert_eq!(out.read_from, vec![ReadChoice { master: master.addr(), read_node: r.addr(), fallback: None }]);
    }
    assert_eq!(out.failed, 0, "{:?}", out.failures);

    let seen = records(&path);
    let twice: Vec<String> =
        seen.iter().filter(|(_, n)| **n > 1).map(|(k, _)| String::from_utf8_lossy(k).into()).collect();
    assert!(twice.is_empty(), "keys in the file more than once: {twice:?}");
    assert_eq!(out.keys, seen.len() as u64, "the outcome counts the records");
    for k in seen.keys() {
        let rest = k
            .strip_prefix(p.as_bytes())
            .unwrap_or_else(|| panic!("{} is outside the prefix", String::from_utf8_lossy(k)));
        assert!(
            [&b"still:"[..], b"hot:", b"new:"].iter().any(|s| rest.starts_with(s)),
            "{} was never written",
            String::from_utf8_lossy(k)
        );
    }
    let back = restored(&path, &p);
    assert_eq!(only(&back, &format!("{p}still:")), still, "every untouched key of the start, exactly");
    // A key created during the run, when it is there, holds the value written.
    for (k, v) in only(&back, &format!("{p}new:")) {
        let i = &k[format!("{p}new:").len()..];
        assert_eq!(v.value, psor_tests::CanonicalValue::String(i.to_vec()), "{}", String::from_utf8_lossy(&k));
    }
}

#[test]
fn export_on_a_master_taking_writes_holds_every_untouched_key_of_the_start_once_and_exactly() {
    export_while_writes_arrive("live-export-master", false);
}

#[test]
fn export_through_a_replica_while_the_master_takes_writes_holds_every_untouched_key_of_the_start_once_and_exactly() {
    export_while_writes_arrive("live-export-replica", true);
}

fn survey_while_writes_arrive(name: &str, with_replica: bool) {
    let ns = unique_prefix(name);
    let (master, replica) = setup(&ns, with_replica);
    let p = format!("{ns}A:");
    let still = only(&keyspace_digest(&mut master.admin_conn(), p.as_bytes()), &format!("{p}still:"));
    let mut types: BTreeMap<String, u64> = BTreeMap::new();
    for s in still.values() {
        *types.entry(s.kind.clone()).or_insert(0) += 1;
    }
    let expiring = still.values().filter(|s| s.expire_at_ms.is_some()).count() as u64;
    let psor = connect(&master.url());
    let mode = if with_replica { ReadFrom::Replica } else { ReadFrom::Master };
    let e = read_from(mode);
    let opts = SurveyOptions {
        prefix: p.as_bytes().to_vec(),
        sample_every: 3,
        scan_count: e.scan_count,
        queue_depth: e.queue_depth,
        pacing: e.pacing.clone(),
        read_from: mode,
        ..SurveyOptions::default()
    };
    let writer = writes(&master, &ns);
    let s = survey::survey(&psor, &opts, Arc::new(Progress::new())).unwrap();
    let steps = writer.stop();
    assert!(steps >= 20, "only {steps} writes during the run");
    if let Some(r) = &replica {
        assert_eq!(s.read_from, vec![ReadChoice { master: master.addr(), read_node: r.addr(), fallback: None }]);
    }
    let root = s.root();
    let node = root.child(format!("{p}still:").as_bytes()).unwrap_or_else(|| panic!("no still: node: {root:?}"));
    assert_eq!(node.keys, STILL as u64, "every untouched key of the start once");
    assert_eq!(node.types.as_ref(), Some(&types), "their types");
    let ttl = node.ttl.as_ref().unwrap();
    assert_eq!((ttl.expiring, ttl.none), (expiring, STILL as u64 - expiring), "their TTLs");
    let count = |c: &str| root.child(format!("{p}{c}").as_bytes()).map_or(0, |n| n.keys);
    assert!(count("hot:") <= HOT && count("new:") <= steps, "hot {} new {}", count("hot:"), count("new:"));
    assert_eq!(root.keys, STILL as u64 + count("hot:") + count("new:"), "nothing else under the prefix");
}

#[test]
fn survey_of_a_master_taking_writes_counts_every_untouched_key_of_the_start_once() {
    survey_while_writes_arrive("live-survey-master", false);
}

#[test]
fn survey_through_a_replica_while_the_master_takes_writes_counts_every_untouched_key_of_the_start_once() {
    survey_while_writes_arrive("live-survey-replica", true);
}

/// Starts filling the keyspace with 40,000 keys outside the prefix (`<ns>Z:`) and deleting
/// them again, over and over: the server's table of keys grows and, once its cron sees it
/// under 10% full, shrinks. A `SCAN` across a shrink returns some keys it had returned
/// before (the keys of the buckets of the current cursor's group that it had already
/// visited), so each cycle is a chance for a run to see a key twice.
fn shrinking_table(master: &RedisServer, ns: &str) -> BackgroundWriter {
    let z = format!("{ns}Z:");
    BackgroundWriter::start(master.admin_conn(), move |conn, _| {
        let mut pipe = redis::pipe();
        let mut unlink = redis::cmd("UNLINK");
        for k in 0..40_000 {
            pipe.cmd("SET").arg(format!("{z}{k}")).arg(k).ignore();
            unlink.arg(format!("{z}{k}"));
        }
        let () = pipe.query(conn).unwrap();
        let _: u64 = unlink.query(conn).unwrap();
        // Not a synchronisation: time for the server's cron (10 times a second) to shrink
        // the table before the next cycle grows it again.
        std::thread::sleep(std::time::Duration::from_millis(150));
    })
}

/// Slower than [`read_from`]: the run lasts about three seconds, several grow/shrink cycles.
fn slow() -> EngineOptions {
    EngineOptions { pacing: Pacing { rate: Some(RATE / 3), max_latency: None }, ..read_from(ReadFrom::Master) }
}

#[test]
fn export_while_the_table_of_keys_shrinks_writes_each_key_once() {
    let ns = unique_prefix("live-export-shrink");
    let (master, _) = setup(&ns, false);
    let p = format!("{ns}A:");
    let start = only(&keyspace_digest(&mut master.admin_conn(), p.as_bytes()), &p);
    let psor = connect(&master.url());
    let dir = tempfile::Builder::new().prefix("lagtests-export-").tempdir().unwrap();
    let path = dir.path().join("shrink.psnap");
    let selection = ExportSelection::prefix(KeyPrefix::new(p.as_bytes()).unwrap());
    let opts = ExportOptions { selection, path: path.clone(), overwrite: false };
    let writer = shrinking_table(&master, &ns);
    let out = snapshot::export(&psor, &opts, &slow(), Arc::new(Progress::new())).unwrap();
    let cycles = writer.stop();
    assert!(cycles >= 1, "no grow/shrink cycle during the run");
    let seen = records(&path);
    assert!(seen.values().all(|n| *n == 1), "a key in the file more than once");
    assert_eq!((out.keys, out.failed), (STILL as u64 + HOT, 0), "{} duplicates dropped", out.duplicates);
    assert_eq!(restored(&path, &p), start, "every key of the start, exactly");
}

#[test]
fn survey_while_the_table_of_keys_shrinks_counts_each_key_once() {
    let ns = unique_prefix("live-survey-shrink");
    let (master, _) = setup(&ns, false);
    let p = format!("{ns}A:");
    let psor = connect(&master.url());
    let e = slow();
    let opts = SurveyOptions {
        prefix: p.as_bytes().to_vec(),
        sample_every: 3,
        scan_count: e.scan_count,
        queue_depth: e.queue_depth,
        pacing: e.pacing.clone(),
        ..SurveyOptions::default()
    };
    let writer = shrinking_table(&master, &ns);
    let s = survey::survey(&psor, &opts, Arc::new(Progress::new())).unwrap();
    let cycles = writer.stop();
    assert!(cycles >= 1, "no grow/shrink cycle during the run");
    let root = s.root();
    let count = |c: &str| root.child(format!("{p}{c}").as_bytes()).map_or(0, |n| n.keys);
    assert_eq!((count("still:"), count("hot:")), (STILL as u64, HOT), "every key once");
    assert_eq!(root.keys, STILL as u64 + HOT);
}

#[test]
fn pac_status_while_the_table_of_keys_shrinks_counts_each_key_once() {
    use psor_core::layout::{Catalog, PacMode, PacName, ProductVersion};
    use psor_core::pac::{self, SampleOptions, StatusOptions, StatusReport};
    let master = RedisServer::start();
    let psor = connect(&master.url());
    let cat = Catalog::builtin();
    let (name, version) = (PacName::new("MyPAC").unwrap(), ProductVersion::new("8.0").unwrap());
    let sample = SampleOptions { keys: 3000, regions: 1, mode: PacMode::Running, large_values: 0 };
    pac::sample(&psor, &cat, &name, &version, &sample, Arc::new(Progress::new())).unwrap();
    let status = |engine: &EngineOptions| {
        pac::status_with(&psor, &cat, None, &StatusOptions::default(), engine, Arc::new(Progress::new())).unwrap()
    };
    let stores = |r: &StatusReport| -> Vec<(String, u64)> {
        r.pacs[0].versions[0].stores.iter().map(|s| (s.store.clone(), s.keys)).collect()
    };
    let still = status(&EngineOptions::default());
    let writer = shrinking_table(&master, &unique_prefix("live-status-shrink"));
    let r = status(&EngineOptions { pacing: Pacing { rate: Some(1000), max_latency: None }, ..slow() });
    let cycles = writer.stop();
    assert!(cycles >= 1, "no grow/shrink cycle during the run");
    assert_eq!(r.pac_keys, still.pac_keys, "every key once");
    assert_eq!(stores(&r), stores(&still));
}

#[test]
fn verify_while_the_table_of_keys_shrinks_compares_each_key_once() {
    use psor_core::engine::{copy, CopyOptions};
    use psor_core::verify::{verify, VerifyOptions};
    let ns = unique_prefix("live-verify-shrink");
    let (master, _) = setup(&ns, false);
    // The copy on another server: the source's table holds the 3000 keys only, as the
    // survey's, and shrinks as far.
    let other = RedisServer::start();
    let (a, c) = (format!("{ns}A:"), format!("{ns}C:"));
    let (psor, target) = (connect(&master.url()), connect(&other.url()));
    let prefix = |p: &str| KeyPrefix::new(p.as_bytes()).unwrap();
    let copy_opts =
        CopyOptions { from: prefix(&a), to: prefix(&c), replace: false, move_keys: false, dry_run: false, sample: 0 };
    let copied = copy(&psor, Some(&target), &copy_opts, &EngineOptions::default(), Arc::new(Progress::new())).unwrap();
    assert_eq!(copied.counts.done, STILL as u64 + HOT);
    let writer = shrinking_table(&master, &ns);
    // Redis 6.2 has no PEXPIRETIME: the copy and the verify read expiries with PTTL, a few ms off.
    let ttl_tolerance_ms = if psor_tests::ServerKind::from_env().has_pexpiretime() { 0 } else { 999 };
    let opts = VerifyOptions { ttl_tolerance_ms, ..VerifyOptions::new(prefix(&a), prefix(&c)) };
    // Small batches and one in the queue: the scan keeps pace with the compares (a deeper
    // queue would hold the whole prefix before the first shrink).
    let engine = EngineOptions { batch_size: 50, queue_depth: 1, writers: 1, scan_count: 100, ..slow() };
    let out = verify(&psor, Some(&target), &opts, &engine, Arc::new(Progress::new())).unwrap();
    let cycles = writer.stop();
    assert!(cycles >= 1, "no grow/shrink cycle during the run");
    assert_eq!(out.counts.differences(), 0, "{:?}", out.differences);
    assert_eq!((out.counts.same, out.counts.changed), (STILL as u64 + HOT, 0), "every key compared once");
}
