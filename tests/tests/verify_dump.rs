//! `verify`'s `DUMP`-equality shortcut against real servers: a key whose payloads are
//! byte-identical on both sides is `same` after its expiry is compared, without being read by
//! type (`same_by_payload` counts those); every other key is read by type as before. Payloads
//! that differ by one byte at the same length are a content difference; identical payloads
//! with another expiry are an expiry difference, read again before they are reported;
//! across server versions (other RDB versions in every payload) the typed path decides; a
//! snapshot record equal to its live key's `DUMP` is settled the same way; a user who may not
//! run `MEMORY USAGE` gets the typed path.

use std::sync::Arc;
use std::time::Duration;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::{self, CopyOptions, EngineOptions};
use psor_core::keys::{display_key, KeyPrefix};
use psor_core::progress::Progress;
use psor_core::snapshot::{self, ExportOptions, ExportSelection};
use psor_core::verify::{self, Kind, VerifyCounts, VerifyOptions, VerifyOutcome};
use psor_tests::{populate_all_types, unique_prefix, RedisServer, ServerKind};
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

/// Redis 6.2 has no PEXPIRETIME: its instants come from PTTL, a few ms off each read.
fn tolerance() -> u64 {
    if ServerKind::from_env().has_pexpiretime() {
        0
    } else {
        1000
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

fn copy(source: &Psor, target: Option<&Psor>, from: &str, to: &str) {
    let o =
        CopyOptions { from: prefix(from), to: prefix(to), replace: false, move_keys: false, dry_run: false, sample: 0 };
    let out = engine::copy(source, target, &o, &small(), Arc::new(Progress::new())).unwrap();
    assert_eq!((out.counts.failed, out.counts.conflicts), (0, 0));
}

fn run(a: &Psor, b: Option<&Psor>, o: &VerifyOptions) -> VerifyOutcome {
    verify::verify(a, b, o, &small(), Arc::new(Progress::new())).unwrap()
}

fn counts(same: u64, missing: u64, extra: u64, type_: u64, content: u64, expiry: u64) -> VerifyCounts {
    VerifyCounts { same, missing, extra, type_, content, expiry, changed: 0, failed: 0 }
}

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

fn dump(con: &mut dyn ConnectionLike, key: &[u8]) -> Option<Vec<u8>> {
    redis::cmd("DUMP").arg(key).query(con).unwrap()
}

/// How many of `keys` (side A names) have byte-identical `DUMP` payloads on both sides.
fn identical_payloads(
    ca: &mut dyn ConnectionLike,
    cb: &mut dyn ConnectionLike,
    keys: &[Vec<u8>],
    a: &str,
    b: &str,
) -> u64 {
    keys.iter().filter(|k| dump(ca, k).is_some_and(|d| Some(d) == dump(cb, &renamed(k, a, b)))).count() as u64
}

#[test]
fn identical_payloads_are_settled_by_bytes_and_the_rest_by_type() {
    let (s1, s2) = (RedisServer::start(), RedisServer::start());
    let ns = unique_prefix("vdump-two");
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    let mut keys = populate_all_types(&mut s1.admin_conn(), a.as_bytes(), 48);
    // A hashtable-encoded set: restored on another server, its members come out in another
    // order (other DUMP bytes, same content), so it is read by type, and is the same.
    let big_set = format!("{a}hashtable-set").into_bytes();
    let mut c1 = s1.admin_conn();
    for i in 0..600 {
        q(&mut c1, redis::cmd("SADD").arg(&big_set).arg(format!("member-{i}")));
    }
    keys.push(big_set.clone());
    let (p1, p2) = (connect(&s1.url()), connect(&s2.url()));
    copy(&p1, Some(&p2), &a, &b);
    let mut c2 = s2.admin_conn();
    assert_ne!(dump(&mut c1, &big_set), dump(&mut c2, &renamed(&big_set, &a, &b)), "the test needs other bytes");
    let identical = identical_payloads(&mut c1, &mut c2, &keys, &a, &b);
    assert!(identical >= 40, "most payloads survive a copy byte for byte: {identical} of {}", keys.len());

    let o = run(&p1, Some(&p2), &opts(&a, &b));
    assert_eq!(o.counts, counts(49, 0, 0, 0, 0, 0), "{:#?}", o.differences);
    assert_eq!(o.same_by_payload, identical, "every identical payload, and only those, settled by bytes");

    // Each kind of difference, planted on side B, changes the bytes and is found by type.
    let bk = |i: usize| renamed(&keys[i], &a, &b);
    q(&mut c2, redis::cmd("DEL").arg(bk(0))); // missing
    q(&mut c2, redis::cmd("HSET").arg(bk(1)).arg("planted").arg("x")); // content (size)
    q(&mut c2, redis::cmd("DEL").arg(bk(2)));
    q(&mut c2, redis::cmd("SET").arg(bk(2)).arg("x")); // type
    q(&mut c2, redis::cmd("SADD").arg(renamed(&big_set, &a, &b)).arg("one-more")); // content
    let o = run(&p1, Some(&p2), &opts(&a, &b));
    assert_eq!(o.counts, counts(45, 1, 0, 1, 2, 0), "{:#?}", o.differences);
    assert_eq!(named(&o, Kind::Missing), vec![display_key(&keys[0])]);
    assert_eq!(named(&o, Kind::Type), vec![display_key(&keys[2])]);
    let mut content = vec![display_key(&keys[1]), display_key(&big_set)];
    content.sort();
    assert_eq!(named(&o, Kind::Content), content);
}

#[test]
fn the_same_length_with_other_bytes_is_a_content_difference() {
    let (s1, s2) = (RedisServer::start(), RedisServer::start());
    let ns = unique_prefix("vdump-bytes");
    let (mut c1, mut c2) = (s1.admin_conn(), s2.admin_conn());
    // One byte apart, same length: the payloads have the same length, other bytes (and CRC).
    let long: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    let mut long2 = long.clone();
    long2[17_171] ^= 0x20;
    let pairs: [(&str, Vec<u8>, Vec<u8>); 3] =
        [("short", b"abc".to_vec(), b"abd".to_vec()), ("long", long.clone(), long2), ("equal", long.clone(), long)];
    // Above the 64 KiB of MEMORY USAGE up to which DUMP is asked: read by type.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
    q(&mut c1, redis::cmd("SET").arg(format!("{ns}big")).arg(&big));
    q(&mut c2, redis::cmd("SET").arg(format!("{ns}big")).arg(&big));
    for (name, x, y) in &pairs {
        q(&mut c1, redis::cmd("SET").arg(format!("{ns}{name}")).arg(x));
        q(&mut c2, redis::cmd("SET").arg(format!("{ns}{name}")).arg(y));
    }
    q(&mut c1, redis::cmd("HSET").arg(format!("{ns}hash")).arg("f").arg("value-1").arg("g").arg("x"));
    q(&mut c2, redis::cmd("HSET").arg(format!("{ns}hash")).arg("f").arg("value-2").arg("g").arg("x"));
    let (ka, kb) = (format!("{ns}short").into_bytes(), format!("{ns}hash").into_bytes());
    let (da, db) = (dump(&mut c1, &ka).unwrap(), dump(&mut c2, &ka).unwrap());
    assert_eq!(da.len(), db.len(), "the test needs payloads of one length");
    assert_eq!(dump(&mut c1, &kb).unwrap().len(), dump(&mut c2, &kb).unwrap().len());

    let (p1, p2) = (connect(&s1.url()), connect(&s2.url()));
    let o = run(&p1, Some(&p2), &opts(&ns, &ns));
    assert_eq!(o.counts, counts(2, 0, 0, 0, 3, 0), "{:#?}", o.differences);
    assert_eq!(o.same_by_payload, 1, "the big string is read by type");
    let mut want: Vec<String> =
        ["hash", "long", "short"].iter().map(|n| display_key(format!("{ns}{n}").as_bytes())).collect();
    want.sort();
    assert_eq!(named(&o, Kind::Content), want);
    assert!(o.differences.iter().all(|d| d.detail.contains("same size")), "{:#?}", o.differences);
    // --quick compares type, expiry and size only, as before: all five are the same there.
    let o = run(&p1, Some(&p2), &VerifyOptions { quick: true, ..opts(&ns, &ns) });
    assert_eq!((o.counts, o.same_by_payload), (counts(5, 0, 0, 0, 0, 0), 0));
}

#[test]
fn identical_payloads_with_another_expiry_are_an_expiry_difference() {
    let (s1, s2) = (RedisServer::start(), RedisServer::start());
    let ns = unique_prefix("vdump-expiry");
    let (mut c1, mut c2) = (s1.admin_conn(), s2.admin_conn());
    let at = 4_102_444_800_000i64;
    for (name, x, y) in
        [("later", Some(at), Some(at + 5_000)), ("persistent", None, Some(at)), ("same", Some(at), Some(at))]
    {
        let key = format!("{ns}{name}");
        for (con, t) in [(&mut c1, x), (&mut c2, y)] {
            q(con, redis::cmd("RPUSH").arg(&key).arg("a").arg("b"));
            if let Some(t) = t {
                q(con, redis::cmd("PEXPIREAT").arg(&key).arg(t));
            }
        }
        assert_eq!(dump(&mut c1, key.as_bytes()), dump(&mut c2, key.as_bytes()), "the test needs identical payloads");
    }
    let (p1, p2) = (connect(&s1.url()), connect(&s2.url()));
    let o = run(&p1, Some(&p2), &opts(&ns, &ns));
    assert_eq!(o.counts, counts(1, 0, 0, 0, 0, 2), "{:#?}", o.differences);
    assert_eq!(o.same_by_payload, 1);
    let mut want =
        vec![display_key(format!("{ns}later").as_bytes()), display_key(format!("{ns}persistent").as_bytes())];
    want.sort();
    assert_eq!(named(&o, Kind::Expiry), want);
    // Within the tolerance, the 5 s apart are the same; persistent vs expiring never is.
    let o = run(&p1, Some(&p2), &VerifyOptions { ttl_tolerance_ms: 10_000, ..opts(&ns, &ns) });
    assert_eq!((o.counts, o.same_by_payload), (counts(2, 0, 0, 0, 0, 1), 2), "{:#?}", o.differences);
}

#[test]
fn an_expiry_fixed_during_the_run_is_read_again_and_counts_as_changed() {
    let (s1, s2) = (RedisServer::start(), RedisServer::start());
    let ns = unique_prefix("vdump-fixed");
    let key = format!("{ns}k");
    let at = 4_102_444_800_000i64;
    q(&mut s1.admin_conn(), redis::cmd("SET").arg(&key).arg("v").arg("PXAT").arg(at));
    q(&mut s2.admin_conn(), redis::cmd("SET").arg(&key).arg("v").arg("PXAT").arg(at + 60_000));
    let mut con = s2.admin_conn();
    let fix = key.clone();
    let fixer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        q(&mut con, redis::cmd("PEXPIREAT").arg(&fix).arg(at));
    });
    let (p1, p2) = (connect(&s1.url()), connect(&s2.url()));
    let o = run(&p1, Some(&p2), &VerifyOptions { recheck_delay: Duration::from_millis(2000), ..opts(&ns, &ns) });
    fixer.join().unwrap();
    assert_eq!(o.counts, VerifyCounts { changed: 1, ..counts(0, 0, 0, 0, 0, 0) }, "{:#?}", o.differences);
}

#[test]
fn across_server_versions_the_typed_path_decides() {
    let here = ServerKind::from_env();
    let Some(other) = ServerKind::ALL.into_iter().find(|k| k.is_installed() && k.rdb_version() != here.rdb_version())
    else {
        eprintln!("skipped: no second server kind with another RDB version is installed");
        return;
    };
    // The older build is the source: a newer one restores its payloads as they are.
    let (old, new) = if other.rdb_version() < here.rdb_version() { (other, here) } else { (here, other) };
    let (s1, s2) = (RedisServer::builder().server(old).start(), RedisServer::builder().server(new).start());
    let ns = unique_prefix("vdump-versions");
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    let keys = populate_all_types(&mut s1.admin_conn(), a.as_bytes(), 30);
    let (p1, p2) = (connect(&s1.url()), connect(&s2.url()));
    copy(&p1, Some(&p2), &a, &b);
    let (mut c1, mut c2) = (s1.admin_conn(), s2.admin_conn());
    assert_eq!(identical_payloads(&mut c1, &mut c2, &keys, &a, &b), 0, "{old:?} and {new:?} payloads differ");
    // Redis 6.2 has no PEXPIRETIME: its instants come from PTTL, a few ms off.
    let o = VerifyOptions { ttl_tolerance_ms: 1000, ..opts(&a, &b) };
    let out = run(&p1, Some(&p2), &o);
    assert_eq!((out.counts, out.same_by_payload), (counts(30, 0, 0, 0, 0, 0), 0), "{:#?}", out.differences);
    q(&mut c2, redis::cmd("HSET").arg(renamed(&keys[1], &a, &b)).arg("field 0").arg("other"));
    for con in [&mut c1, &mut c2] {
        q(con, redis::cmd("CONFIG").arg("RESETSTAT"));
    }
    let o = run(&p1, Some(&p2), &o);
    assert_eq!(o.counts, counts(29, 0, 0, 0, 1, 0), "{:#?}", o.differences);
    // Other RDB versions: no payload can match, so none is asked for.
    for con in [&mut c1, &mut c2] {
        let stats: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
        assert!(!stats.contains("cmdstat_memory") && !stats.contains("cmdstat_dump"), "{stats}");
    }
    assert_eq!(named(&o, Kind::Content), vec![display_key(&keys[1])]);
}

#[test]
fn a_snapshot_record_equal_to_the_live_dump_is_settled_by_bytes() {
    let server = RedisServer::start();
    let ns = unique_prefix("vdump-snap");
    let a = format!("{ns}A:");
    let keys = populate_all_types(&mut server.admin_conn(), a.as_bytes(), 42);
    let psor = connect(&server.url());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vdump.psnap");
    let eo = ExportOptions { selection: ExportSelection::prefix(prefix(&a)), path: path.clone(), overwrite: false };
    snapshot::export(&psor, &eo, &small(), Arc::new(Progress::new())).unwrap();
    let check = |o: &VerifyOptions| verify::verify_snapshot(&psor, &path, o, &small(), Arc::new(Progress::new()));
    let o = check(&opts(&a, &a)).unwrap();
    assert_eq!((o.counts, o.same_by_payload), (counts(42, 0, 0, 0, 0, 0), 42), "{:#?}", o.differences);

    let mut con = server.admin_conn();
    // keys[0] (a string): same length, other bytes; keys[3] (a set with an expiry): persistent.
    let v: Vec<u8> = redis::cmd("GET").arg(&keys[0]).query(&mut con).unwrap();
    let mut w = v.clone();
    w[0] ^= 1;
    q(&mut con, redis::cmd("SET").arg(&keys[0]).arg(w).arg("KEEPTTL"));
    q(&mut con, redis::cmd("PERSIST").arg(&keys[3]));
    let o = check(&opts(&a, &a)).unwrap();
    assert_eq!((o.counts, o.same_by_payload), (counts(40, 0, 0, 0, 1, 1), 40), "{:#?}", o.differences);
    assert_eq!(named(&o, Kind::Content), vec![display_key(&keys[0])]);
    assert_eq!(named(&o, Kind::Expiry), vec![display_key(&keys[3])]);
    // --quick: type, expiry and size only, by type as before.
    let o = check(&VerifyOptions { quick: true, ..opts(&a, &a) }).unwrap();
    assert_eq!((o.counts, o.same_by_payload), (counts(41, 0, 0, 0, 0, 1), 0), "{:#?}", o.differences);
}

#[test]
fn a_user_without_memory_usage_is_compared_by_type() {
    let cmds = ["info", "dbsize", "scan", "exists", "dump", "pexpiretime", "pttl", "type", "strlen", "get", "getrange"];
    let cmds: Vec<&str> =
        cmds.into_iter().chain(["hlen", "hgetall", "hscan", "scard", "smembers", "sscan", "zcard", "zrange"]).collect();
    let cmds: Vec<&str> = cmds.into_iter().chain(["llen", "lrange", "xlen", "xrange", "command|info"]).collect();
    let server = RedisServer::builder().acl_user("reader", "pw-vdump", &cmds).start();
    let ns = unique_prefix("vdump-acl");
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    let keys = populate_all_types(&mut server.admin_conn(), a.as_bytes(), 24);
    copy(&connect(&server.url()), None, &a, &b);
    let mut con = server.admin_conn();
    q(&mut con, redis::cmd("HSET").arg(renamed(&keys[1], &a, &b)).arg("field 0").arg("other"));
    let psor = connect(&server.url_for("reader", "pw-vdump"));
    let o = run(&psor, None, &opts(&a, &b));
    assert_eq!((o.counts, o.same_by_payload), (counts(23, 0, 0, 0, 1, 0), 0), "{:#?}", o.differences);
    assert!(o.failures.is_empty(), "{:?}", o.failures);
}
