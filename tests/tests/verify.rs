//! `verify` against real servers: identical keyspaces give no difference; every kind of
//! difference planted is counted exactly and named, on one server, across two servers,
//! cluster ↔ standalone and server ↔ snapshot, with binary key names and renames; values far
//! larger than one chunk are compared; a key fixed during the run counts as `changed`; and a
//! hashtable set restored elsewhere (other DUMP bytes, same content) is not a difference.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::{self, CopyOptions, EngineOptions};
use psor_core::keys::{display_key, KeyPrefix};
use psor_core::progress::Progress;
use psor_core::snapshot::{self, ExportOptions, ExportSelection};
use psor_core::verify::{self, Kind, VerifyCounts, VerifyOptions, VerifyOutcome};
use psor_tests::{expire_time_ms, populate_all_types, unique_prefix, RedisCluster, RedisServer, ServerKind};
use redis::ConnectionLike;

fn connect(spec: &str) -> Psor {
    Psor::connect(&PsorSpec::parse(spec).unwrap(), &ConnectOptions::default()).unwrap()
}

fn small() -> EngineOptions {
    EngineOptions { scan_count: 50, batch_size: 37, writers: 2, ..EngineOptions::default() }
}

fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::new(s.as_bytes()).unwrap()
}

/// Redis 6.2 has no PEXPIRETIME: psor reads PTTL there, an instant a few ms off on each
/// read, so runs on it compare with a tolerance just under this unit, and the expiry
/// differences planted are this many times larger.
fn ms_unit() -> i64 {
    if ServerKind::from_env().has_pexpiretime() {
        1
    } else {
        1000
    }
}

fn opts(from: &str, to: &str) -> VerifyOptions {
    VerifyOptions {
        show: 100,
        ttl_tolerance_ms: (ms_unit() - 1) as u64,
        recheck_delay: Duration::from_millis(20),
        ..VerifyOptions::new(prefix(from), prefix(to))
    }
}

fn copy(source: &Psor, target: Option<&Psor>, from: &str, to: &str) {
    let o =
        CopyOptions { from: prefix(from), to: prefix(to), replace: false, move_keys: false, dry_run: false, sample: 0 };
    let out = engine::copy(source, target, &o, &small(), Arc::new(Progress::new())).unwrap();
    assert_eq!((out.counts.failed, out.counts.conflicts), (0, 0));
}

fn run(a: &Psor, b: Option<&Psor>, o: &VerifyOptions) -> VerifyOutcome {
    verify::verify(a, b, o, &small(), Arc::new(Progress::new())).unwrap()
}

fn run_file(a: &Psor, path: &Path, o: &VerifyOptions) -> VerifyOutcome {
    verify::verify_snapshot(a, path, o, &small(), Arc::new(Progress::new())).unwrap()
}

fn counts(same: u64, missing: u64, extra: u64, type_: u64, content: u64, expiry: u64) -> VerifyCounts {
    VerifyCounts { same, missing, extra, type_, content, expiry, changed: 0, failed: 0 }
}

/// The keys named for `kind`, on side A.
fn named(o: &VerifyOutcome, kind: Kind) -> Vec<String> {
    let mut v: Vec<String> = o.differences.iter().filter(|d| d.kind == kind).map(|d| d.key.clone()).collect();
    v.sort();
    v
}

fn renamed(key: &[u8], from: &str, to: &str) -> Vec<u8> {
    [to.as_bytes(), &key[from.len()..]].concat()
}

fn q(con: &mut dyn ConnectionLike, cmd: &mut redis::Cmd) {
    cmd.query::<redis::Value>(con).unwrap();
}

/// Plants one difference of each kind on side B (keys of `populate_all_types` under `a`,
/// copied to `b`), and returns what verify must report with tolerance 0 (A-side names):
/// missing, extra, type, content, expiry.
fn plant(con: &mut dyn ConnectionLike, keys: &[Vec<u8>], a: &str, b: &str) -> [Vec<String>; 5] {
    let bk = |i: usize| renamed(&keys[i], a, b);
    // keys[0]: string with expiry → missing.
    q(con, redis::cmd("DEL").arg(bk(0)));
    // keys[1]: hash → one more field: content (size).
    q(con, redis::cmd("HSET").arg(bk(1)).arg("planted").arg("x"));
    // keys[2]: list → a string: type.
    q(con, redis::cmd("DEL").arg(bk(2)));
    q(con, redis::cmd("SET").arg(bk(2)).arg("x"));
    // keys[3]: set with expiry → expiry 5 ms later (5 s on Redis 6.2).
    let at = expire_time_ms(con, &bk(3));
    q(con, redis::cmd("PEXPIREAT").arg(bk(3)).arg(at + 5 * ms_unit()));
    // keys[4]: zset without expiry → expires: expiry.
    q(con, redis::cmd("PEXPIREAT").arg(bk(4)).arg(4_102_444_800_000i64));
    // keys[7]: hash → one value changed, same size: content.
    q(con, redis::cmd("HSET").arg(bk(7)).arg("field 0").arg(b"v\x07\x00\x00\xfe".to_vec()));
    // A key on B only: extra.
    let extra = [b.as_bytes(), b"extra \x00\xff"].concat();
    q(con, redis::cmd("SET").arg(&extra).arg("x"));
    let d = |i: usize| display_key(&keys[i]);
    [
        vec![d(0)],
        vec![display_key(&renamed(&extra, b, a))],
        vec![d(2)],
        {
            let mut v = vec![d(1), d(7)];
            v.sort();
            v
        },
        {
            let mut v = vec![d(3), d(4)];
            v.sort();
            v
        },
    ]
}

fn check_planted(o: &VerifyOutcome, want: &[Vec<String>; 5], n: u64) {
    assert_eq!(o.counts, counts(n - 6, 1, 1, 1, 2, 2), "{:#?}", o.differences);
    for (kind, keys) in Kind::ALL.iter().zip(want) {
        assert_eq!(&named(o, *kind), keys, "{kind:?}");
    }
}

#[test]
fn one_server_identical_then_each_kind_planted() {
    let server = RedisServer::start();
    let ns = unique_prefix("verify-one");
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    let keys = populate_all_types(&mut server.admin_conn(), a.as_bytes(), 60);
    // A neighbour that must not be counted.
    q(&mut server.admin_conn(), redis::cmd("SET").arg(format!("{ns}A;x")).arg("1"));
    let psor = connect(&server.url());
    copy(&psor, None, &a, &b);
    let o = run(&psor, None, &opts(&a, &b));
    assert_eq!(o.counts, counts(60, 0, 0, 0, 0, 0));
    assert!(o.is_same() && o.differences.is_empty());

    let want = plant(&mut server.admin_conn(), &keys, &a, &b);
    let o = run(&psor, None, &opts(&a, &b));
    check_planted(&o, &want, 60);
    let detail = |k: &str| o.differences.iter().find(|d| d.key == k).unwrap().detail.clone();
    assert!(detail(&want[2][0]).contains("list vs string"), "{}", detail(&want[2][0]));

    // --quick: the same-size hash change is not seen; the size change is.
    let o = run(&psor, None, &VerifyOptions { quick: true, ..opts(&a, &b) });
    assert_eq!(o.counts, counts(55, 1, 1, 1, 1, 2));
    assert_eq!(named(&o, Kind::Content), vec![display_key(&keys[1])]);
    // A tolerance of 10 ms absorbs the 5 ms expiry shift, not the persistent/expiring one.
    let o = run(&psor, None, &VerifyOptions { ttl_tolerance_ms: 10 * ms_unit() as u64, ..opts(&a, &b) });
    assert_eq!(o.counts, counts(55, 1, 1, 1, 2, 1));
    assert_eq!(named(&o, Kind::Expiry), vec![display_key(&keys[4])]);
    // Overlapping prefixes on one server are refused.
    let err = verify::verify(&psor, None, &opts(&a, &format!("{a}x:")), &small(), Arc::new(Progress::new()));
    assert!(matches!(err, Err(psor_core::Error::Refused(_))));
}

#[test]
fn two_servers_and_a_hashtable_set_restored_elsewhere() {
    let (s1, s2) = (RedisServer::start(), RedisServer::start());
    let ns = unique_prefix("verify-two");
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    let keys = populate_all_types(&mut s1.admin_conn(), a.as_bytes(), 48);
    // A hashtable-encoded set (strings, more than set-max-listpack-entries) and hash.
    let mut c1 = s1.admin_conn();
    let big_set = format!("{a}hashtable-set");
    let big_hash = format!("{a}hashtable-hash");
    for i in 0..600 {
        q(&mut c1, redis::cmd("SADD").arg(&big_set).arg(format!("member-{i}")));
        q(&mut c1, redis::cmd("HSET").arg(&big_hash).arg(format!("f{i}")).arg(i));
    }
    let (p1, p2) = (connect(&s1.url()), connect(&s2.url()));
    copy(&p1, Some(&p2), &a, &b);
    let dump = |c: &mut redis::Connection, k: &str| -> Vec<u8> { redis::cmd("DUMP").arg(k).query(c).unwrap() };
    let moved =
        dump(&mut s2.admin_conn(), &renamed(big_set.as_bytes(), &a, &b).iter().map(|&c| c as char).collect::<String>());
    assert_ne!(dump(&mut c1, &big_set), moved, "the test needs other DUMP bytes for the same set");
    let o = run(&p1, Some(&p2), &opts(&a, &b));
    assert_eq!(o.counts, counts(50, 0, 0, 0, 0, 0), "{:#?}", o.differences);

    let want = plant(&mut s2.admin_conn(), &keys, &a, &b);
    let o = run(&p1, Some(&p2), &opts(&a, &b));
    check_planted(&o, &want, 50);
    // Same prefix on both servers.
    copy(&p1, Some(&p2), &a, &a);
    let o = run(&p1, Some(&p2), &opts(&a, &a));
    assert_eq!(o.counts, counts(50, 0, 0, 0, 0, 0));
}

#[test]
fn cluster_and_standalone_both_ways() {
    let server = RedisServer::start();
    let cluster = RedisCluster::start(3, 0);
    let ns = unique_prefix("verify-cluster");
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    let keys = populate_all_types(&mut server.admin_conn(), a.as_bytes(), 60);
    let (single, cl) = (connect(&server.url()), connect(&cluster.url()));
    copy(&single, Some(&cl), &a, &b);
    let o = run(&single, Some(&cl), &opts(&a, &b));
    assert_eq!(o.counts, counts(60, 0, 0, 0, 0, 0), "{:#?}", o.differences);
    let o = run(&cl, Some(&single), &opts(&b, &a));
    assert_eq!(o.counts, counts(60, 0, 0, 0, 0, 0), "{:#?}", o.differences);

    let want = plant(&mut cluster.cluster_conn(), &keys, &a, &b);
    let o = run(&single, Some(&cl), &opts(&a, &b));
    check_planted(&o, &want, 60);
    // The other way round, missing and extra swap.
    let o = run(&cl, Some(&single), &opts(&b, &a));
    assert_eq!((o.counts.missing, o.counts.extra, o.counts.type_, o.counts.content), (1, 1, 1, 2));
    assert_eq!(named(&o, Kind::Extra), vec![display_key(&renamed(&keys[0], &a, &b))]);

    // The cluster's keys exported to a file: the file against the cluster (the same), and
    // against the standalone source (the planted differences, seen from the source).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.psnap");
    let eo = ExportOptions { selection: ExportSelection::prefix(prefix(&b)), path: path.clone(), overwrite: false };
    snapshot::export(&cl, &eo, &small(), Arc::new(Progress::new())).unwrap();
    let o = run_file(&cl, &path, &opts(&b, &b));
    assert_eq!(o.counts, counts(60, 0, 0, 0, 0, 0), "{:#?}", o.differences);
    check_planted(&run_file(&single, &path, &opts(&a, &b)), &want, 60);
}

#[test]
fn server_against_snapshot_with_rename() {
    let server = RedisServer::start();
    let ns = unique_prefix("verify-snap");
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    let keys = populate_all_types(&mut server.admin_conn(), a.as_bytes(), 60);
    let psor = connect(&server.url());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.psnap");
    let eo = ExportOptions { selection: ExportSelection::prefix(prefix(&a)), path: path.clone(), overwrite: false };
    snapshot::export(&psor, &eo, &small(), Arc::new(Progress::new())).unwrap();
    let o = run_file(&psor, &path, &opts(&a, &a));
    assert_eq!(o.counts, counts(60, 0, 0, 0, 0, 0), "{:#?}", o.differences);

    // Live keys under B against the file's keys under A.
    copy(&psor, None, &a, &b);
    let o = run_file(&psor, &path, &opts(&b, &a));
    assert_eq!(o.counts, counts(60, 0, 0, 0, 0, 0), "{:#?}", o.differences);
    let mut con = server.admin_conn();
    let bk = |i: usize| renamed(&keys[i], &a, &b);
    q(&mut con, redis::cmd("DEL").arg(bk(0))); // in the file only: extra
    q(&mut con, redis::cmd("SET").arg(format!("{b}new\n")).arg("1")); // live only: missing
    q(&mut con, redis::cmd("RPUSH").arg(bk(2)).arg("more")); // content
    q(&mut con, redis::cmd("PERSIST").arg(bk(3))); // expiry
    q(&mut con, redis::cmd("DEL").arg(bk(5))); // a stream replaced by another stream: content
    q(&mut con, redis::cmd("XADD").arg(bk(5)).arg("1-1").arg("f").arg("other"));
    let o = run_file(&psor, &path, &opts(&b, &a));
    assert_eq!(o.counts, counts(56, 1, 1, 0, 2, 1), "{:#?}", o.differences);
    assert_eq!(named(&o, Kind::Missing), vec![display_key(format!("{b}new\n").as_bytes())]);
    assert_eq!(named(&o, Kind::Extra), vec![display_key(&bk(0))]);
    let mut content = vec![display_key(&bk(2)), display_key(&bk(5))];
    content.sort();
    assert_eq!(named(&o, Kind::Content), content);
    assert_eq!(named(&o, Kind::Expiry), vec![display_key(&bk(3))]);
}

#[test]
fn values_larger_than_a_chunk() {
    let server = RedisServer::start();
    let ns = unique_prefix("verify-big");
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    let mut con = server.admin_conn();
    q(&mut con, redis::cmd("SET").arg(format!("{a}string")).arg(vec![b'x'; 700 * 1024]));
    for chunk in 0..13 {
        let (mut l, mut z, mut h, mut s) =
            (redis::cmd("RPUSH"), redis::cmd("ZADD"), redis::cmd("HSET"), redis::cmd("SADD"));
        l.arg(format!("{a}list"));
        z.arg(format!("{a}zset"));
        h.arg(format!("{a}hash"));
        s.arg(format!("{a}set"));
        for i in chunk * 1000..(chunk + 1) * 1000 {
            l.arg(i);
            z.arg(i % 97).arg(format!("m{i}"));
            h.arg(format!("f{i}")).arg(i);
            s.arg(format!("m{i}"));
        }
        for c in [&mut l, &mut z, &mut h, &mut s] {
            q(&mut con, c);
        }
    }
    for i in 0..2500 {
        q(&mut con, redis::cmd("XADD").arg(format!("{a}stream")).arg(format!("{}-1", i + 1)).arg("f").arg(i));
    }
    let psor = connect(&server.url());
    copy(&psor, None, &a, &b);
    let o = run(&psor, None, &opts(&a, &b));
    assert_eq!(o.counts, counts(6, 0, 0, 0, 0, 0), "{:#?}", o.differences);
    // One element changed deep inside each value, sizes unchanged.
    q(&mut con, redis::cmd("SETRANGE").arg(format!("{b}string")).arg(600 * 1024).arg("y"));
    q(&mut con, redis::cmd("LSET").arg(format!("{b}list")).arg(11_500).arg("changed"));
    q(&mut con, redis::cmd("ZADD").arg(format!("{b}zset")).arg(1000).arg("m12345"));
    q(&mut con, redis::cmd("HSET").arg(format!("{b}hash")).arg("f12000").arg("changed"));
    q(&mut con, redis::cmd("SREM").arg(format!("{b}set")).arg("m12999"));
    q(&mut con, redis::cmd("SADD").arg(format!("{b}set")).arg("m13000"));
    q(&mut con, redis::cmd("XDEL").arg(format!("{b}stream")).arg("2400-1"));
    q(&mut con, redis::cmd("XADD").arg(format!("{b}stream")).arg("9999-1").arg("f").arg("2399"));
    let o = run(&psor, None, &opts(&a, &b));
    assert_eq!(o.counts, counts(0, 0, 0, 0, 6, 0), "{:#?}", o.differences);
    let o = run(&psor, None, &VerifyOptions { quick: true, ..opts(&a, &b) });
    assert_eq!(o.counts, counts(6, 0, 0, 0, 0, 0));
}

#[test]
fn a_key_fixed_during_the_run_counts_as_changed() {
    let server = RedisServer::start();
    let ns = unique_prefix("verify-changing");
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    let keys = populate_all_types(&mut server.admin_conn(), a.as_bytes(), 20);
    let psor = connect(&server.url());
    copy(&psor, None, &a, &b);
    let bad = renamed(&keys[6], &a, &b);
    q(&mut server.admin_conn(), redis::cmd("SET").arg(&bad).arg("wrong"));
    let mut con = server.admin_conn();
    let (good, fix) = (keys[6].clone(), bad.clone());
    let fixer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        q(&mut con, redis::cmd("COPY").arg(&good).arg(&fix).arg("REPLACE"));
    });
    let o = run(&psor, None, &VerifyOptions { recheck_delay: Duration::from_millis(2000), ..opts(&a, &b) });
    fixer.join().unwrap();
    assert_eq!(o.counts, VerifyCounts { changed: 1, ..counts(19, 0, 0, 0, 0, 0) }, "{:#?}", o.differences);
    // Without the fix, the same key is reported.
    q(&mut server.admin_conn(), redis::cmd("SET").arg(&bad).arg("wrong"));
    let o = run(&psor, None, &opts(&a, &b));
    assert_eq!(o.counts, counts(19, 0, 0, 0, 1, 0));
    assert_eq!(named(&o, Kind::Content), vec![display_key(&keys[6])]);
}

#[test]
fn rerunning_a_copy_of_a_big_hashtable_set_to_another_server_is_unchanged() {
    // More than 10,000 members: the old comparer did not read such a set and called the
    // rerun a conflict; the chunked one reads it with SSCAN.
    let (s1, s2) = (RedisServer::start(), RedisServer::start());
    let ns = unique_prefix("verify-rerun");
    let key = format!("{ns}A:big-set");
    let mut con = s1.admin_conn();
    for chunk in 0..12 {
        let mut c = redis::cmd("SADD");
        c.arg(&key);
        for i in chunk * 1000..(chunk + 1) * 1000 {
            c.arg(format!("member-{i}"));
        }
        q(&mut con, &mut c);
    }
    let (p1, p2) = (connect(&s1.url()), connect(&s2.url()));
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    copy(&p1, Some(&p2), &a, &b);
    let o =
        CopyOptions { from: prefix(&a), to: prefix(&b), replace: false, move_keys: false, dry_run: false, sample: 0 };
    let again = engine::copy(&p1, Some(&p2), &o, &small(), Arc::new(Progress::new())).unwrap();
    assert_eq!((again.counts.unchanged, again.counts.conflicts), (1, 0));
    assert_eq!(run(&p1, Some(&p2), &opts(&a, &b)).counts, counts(1, 0, 0, 0, 0, 0));
}

#[test]
fn hash_field_expirations_are_compared_on_valkey_9() {
    // scripts/fetch-servers.sh (run by the test command) installs it.
    let server = RedisServer::builder().server(psor_tests::kind::ServerKind::Valkey91).start();
    let ns = unique_prefix("verify-hfe");
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    let mut con = server.admin_conn();
    let h = format!("{a}hash");
    q(&mut con, redis::cmd("HSET").arg(&h).arg("f1").arg("v1").arg("f2").arg("v2").arg("f3").arg("v3"));
    q(&mut con, redis::cmd("HPEXPIREAT").arg(&h).arg(4_102_444_800_000i64).arg("FIELDS").arg(1).arg("f1"));
    let psor = connect(&server.url());
    copy(&psor, None, &a, &b);
    assert_eq!(run(&psor, None, &opts(&a, &b)).counts, counts(1, 0, 0, 0, 0, 0));
    // The field's instant moved by 1 ms, then the expiry moved to another field.
    let hb = format!("{b}hash");
    q(&mut con, redis::cmd("HPEXPIREAT").arg(&hb).arg(4_102_444_800_001i64).arg("FIELDS").arg(1).arg("f1"));
    let o = run(&psor, None, &opts(&a, &b));
    assert_eq!(o.counts, counts(0, 0, 0, 0, 0, 1), "{:#?}", o.differences);
    assert!(o.differences[0].detail.contains("field expirations"), "{:?}", o.differences);
    q(&mut con, redis::cmd("HPERSIST").arg(&hb).arg("FIELDS").arg(1).arg("f1"));
    q(&mut con, redis::cmd("HPEXPIREAT").arg(&hb).arg(4_102_444_800_000i64).arg("FIELDS").arg(1).arg("f2"));
    assert_eq!(run(&psor, None, &opts(&a, &b)).counts, counts(0, 0, 0, 0, 0, 1));
}

#[test]
fn sentinel_and_a_file_store_as_sides() {
    let master = RedisServer::start();
    let sentinel = psor_tests::RedisSentinel::start(&master, "vmaster");
    let ns = unique_prefix("verify-mix");
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    let keys = populate_all_types(&mut master.admin_conn(), a.as_bytes(), 30);
    let via_sentinel = connect(&sentinel.url("vmaster"));
    let dir = tempfile::tempdir().unwrap();
    let file = connect(&format!("file:{}", dir.path().join("store.psnap").display()));
    // Sentinel → a file: store, verified both ways.
    copy(&via_sentinel, Some(&file), &a, &b);
    assert_eq!(run(&via_sentinel, Some(&file), &opts(&a, &b)).counts, counts(30, 0, 0, 0, 0, 0));
    assert_eq!(run(&file, Some(&via_sentinel), &opts(&b, &a)).counts, counts(30, 0, 0, 0, 0, 0));
    // A key removed from the file store: missing one way, extra the other.
    let mut con = file.masters()[0].connect().unwrap();
    let gone = renamed(&keys[4], &a, &b);
    con.retry("DEL", None, |c| redis::cmd("DEL").arg(&gone).query::<u64>(c)).unwrap();
    let o = run(&via_sentinel, Some(&file), &opts(&a, &b));
    assert_eq!(o.counts, counts(29, 1, 0, 0, 0, 0));
    assert_eq!(named(&o, Kind::Missing), vec![display_key(&keys[4])]);
    assert_eq!(run(&file, Some(&via_sentinel), &opts(&b, &a)).counts, counts(29, 0, 1, 0, 0, 0));
}

/// Streams with consumer groups under `p` on `con`: `s` with 1,500 entries, group `g1`
/// (1,200 delivered to alice: the PEL spans two `XPENDING` pages) and `g2` (at the end, a
/// consumer bob with nothing pending); `t`, a copy of that; `e`, empty with a group.
fn streams_with_groups(con: &mut dyn ConnectionLike, p: &str) {
    for key in ["s", "t"] {
        let key = format!("{p}{key}");
        let mut pipe = redis::pipe();
        for i in 1..=1500 {
            pipe.cmd("XADD").arg(&key).arg(format!("1-{i}")).arg("f").arg(i).ignore();
        }
        pipe.query::<()>(con).unwrap();
        q(con, redis::cmd("XGROUP").arg("CREATE").arg(&key).arg("g1").arg("0"));
        q(
            con,
            redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g1")
                .arg("alice")
                .arg("COUNT")
                .arg(1200)
                .arg("STREAMS")
                .arg(&key)
                .arg(">"),
        );
        q(con, redis::cmd("XGROUP").arg("CREATE").arg(&key).arg("g2").arg("$"));
        q(con, redis::cmd("XGROUP").arg("CREATECONSUMER").arg(&key).arg("g2").arg("bob"));
    }
    q(con, redis::cmd("XGROUP").arg("CREATE").arg(format!("{p}e")).arg("g").arg("$").arg("MKSTREAM"));
}

#[test]
fn stream_consumer_groups_are_compared() {
    let (s1, s2) = (RedisServer::start(), RedisServer::start());
    let ns = unique_prefix("verify-groups");
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    streams_with_groups(&mut s1.admin_conn(), &a);
    let (p1, p2) = (connect(&s1.url()), connect(&s2.url()));
    copy(&p1, Some(&p2), &a, &b);
    // The same entries and groups (RESTORE keeps them): the same.
    let o = run(&p1, Some(&p2), &opts(&a, &b));
    assert_eq!(o.counts, counts(3, 0, 0, 0, 0, 0), "{:#?}", o.differences);

    // Live against a snapshot of side A, groups and all: the same.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.psnap");
    let eo = ExportOptions { selection: ExportSelection::prefix(prefix(&a)), path: path.clone(), overwrite: false };
    snapshot::export(&p1, &eo, &small(), Arc::new(Progress::new())).unwrap();
    let o = run_file(&p2, &path, &opts(&b, &a));
    assert_eq!(o.counts, counts(3, 0, 0, 0, 0, 0), "{:#?}", o.differences);
    // A `file:` store cannot read its streams by type: against the snapshot, they are compared
    // by DUMP bytes (the same ones).
    let file = connect(&format!("file:{}", dir.path().join("store.psnap").display()));
    copy(&p1, Some(&file), &a, &a);
    let o = run_file(&file, &path, &opts(&a, &a));
    assert_eq!(o.counts, counts(3, 0, 0, 0, 0, 0), "{:#?}", o.differences);

    // Same entries, other groups: another last-delivered id, one entry acknowledged, a
    // group gone.
    let mut con = s2.admin_conn();
    q(&mut con, redis::cmd("XGROUP").arg("SETID").arg(format!("{b}s")).arg("g2").arg("1-5"));
    q(&mut con, redis::cmd("XACK").arg(format!("{b}t")).arg("g1").arg("1-7"));
    q(&mut con, redis::cmd("XGROUP").arg("DESTROY").arg(format!("{b}e")).arg("g"));
    let o = run(&p1, Some(&p2), &opts(&a, &b));
    assert_eq!(o.counts, counts(0, 0, 0, 0, 3, 0), "{:#?}", o.differences);
    let o = run_file(&p2, &path, &opts(&b, &a));
    assert_eq!(o.counts, counts(0, 0, 0, 0, 3, 0), "{:#?}", o.differences);
}
