//! Snapshots against real redis-server processes: export → file → import into another server
//! gives the same keyspace (every type, binary key names, expiry to the millisecond); a file
//! with any damage is refused before anything is written; conflicts, --replace, --rename,
//! past expiries and dry runs behave as documented.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::EngineOptions;
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_core::snapshot::{
    self, Error, ExportOptions, ExportOutcome, ExportSelection, ImportOptions, ImportOutcome, InspectOptions, Rename,
};
use psor_formats::{dump_rdb_version, Header, KeyKind, Record, Selection, SnapshotWriter, Source};
use psor_tests::{keyspace_digest, populate_all_types, unique_prefix, KeyState, RedisServer};

fn connect(server: &RedisServer) -> Psor {
    Psor::connect(&PsorSpec::parse(&server.url()).unwrap(), &ConnectOptions::default()).unwrap()
}

/// Small batches so that even small tests go through many pipelines and several threads.
fn small() -> EngineOptions {
    EngineOptions { scan_count: 50, batch_size: 37, writers: 3, ..EngineOptions::default() }
}

fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::new(s.as_bytes()).unwrap()
}

fn export(psor: &Psor, p: &str, path: &Path) -> ExportOutcome {
    let opts =
        ExportOptions { selection: ExportSelection::prefix(prefix(p)), path: path.to_path_buf(), overwrite: false };
    snapshot::export(psor, &opts, &small(), Arc::new(Progress::new())).unwrap()
}

fn import_opts(path: &Path) -> ImportOptions {
    ImportOptions { path: path.to_path_buf(), rename: None, replace: false, dry_run: false, sample: 5 }
}

fn import(psor: &Psor, opts: &ImportOptions) -> Result<ImportOutcome, Error> {
    snapshot::import(psor, opts, &small(), Arc::new(Progress::new()))
}

fn dbsize(server: &RedisServer) -> u64 {
    redis::cmd("DBSIZE").query(&mut server.admin_conn()).unwrap()
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

/// A source server holding 120 keys of every type under `<ns>a:` (binary names, a third with
/// expiries), plus neighbours that share the prefix's bytes but are not under it.
fn source_with_keys(ns: &str) -> (RedisServer, String) {
    let server = RedisServer::start();
    let mut conn = server.admin_conn();
    let p = format!("{ns}a:");
    populate_all_types(&mut conn, p.as_bytes(), 120);
    for nb in ["a", "a;", "ab:", "a\\:"] {
        populate_all_types(&mut conn, format!("{ns}{nb}").as_bytes(), 7);
    }
    (server, p)
}

#[test]
fn round_trip_every_type_binary_keys_and_exact_expiry() {
    let ns = unique_prefix("snap-roundtrip");
    let (source, p) = source_with_keys(&ns);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.psnap");
    let out = export(&connect(&source), &p, &path);
    assert_eq!((out.keys, out.vanished, out.failed, out.duplicates), (120, 0, 0, 0));
    assert_eq!(out.with_ttl, 40);
    for kind in ["string", "hash", "list", "set", "zset", "stream"] {
        assert_eq!(out.per_type[kind].keys, 20, "{kind}");
    }
    assert_eq!(out.file_bytes, std::fs::metadata(&path).unwrap().len());
    assert!(!dir.path().join("a.psnap.tmp").exists());

    let target = RedisServer::start();
    let got = import(&connect(&target), &import_opts(&path)).unwrap();
    assert_eq!((got.counts.matched, got.counts.done, got.counts.conflicts, got.counts.expired), (120, 120, 0, 0));
    let want = keyspace_digest(&mut source.admin_conn(), p.as_bytes());
    assert_eq!(want.len(), 120);
    assert_eq!(keyspace_digest(&mut target.admin_conn(), p.as_bytes()), want);
    // Nothing but the prefix travelled: the neighbours are not on the target.
    assert_eq!(dbsize(&target), 120);

    // A rerun finds every key identical: unchanged, no conflicts, nothing rewritten.
    let again = import(&connect(&target), &import_opts(&path)).unwrap();
    assert_eq!((again.counts.done, again.counts.unchanged, again.counts.conflicts), (0, 120, 0));
    // Sets are hashtable-encoded before Redis 7.2 and DUMP in another order after RESTORE: those
    // were compared through a scratch key, which is gone again.
    assert_eq!(dbsize(&target), 120);
}

#[test]
fn export_never_overwrites_what_it_should_not() {
    let ns = unique_prefix("snap-overwrite");
    let (source, p) = source_with_keys(&ns);
    let psor = connect(&source);
    let dir = tempfile::tempdir().unwrap();
    let run = |path: &PathBuf, overwrite: bool| {
        let opts = ExportOptions { selection: ExportSelection::prefix(prefix(&p)), path: path.clone(), overwrite };
        snapshot::export(&psor, &opts, &small(), Arc::new(Progress::new()))
    };
    // Someone's data: never, even with overwrite.
    let other = dir.path().join("notes.txt");
    std::fs::write(&other, b"precious").unwrap();
    assert!(matches!(run(&other, true), Err(Error::Refused(_))));
    assert_eq!(std::fs::read(&other).unwrap(), b"precious");
    // A snapshot of a newer format major: never.
    let newer = dir.path().join("newer.psnap");
    let mut bytes = psor_formats::header::MAGIC.to_vec();
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&[0; 30]);
    std::fs::write(&newer, &bytes).unwrap();
    let err = run(&newer, true).unwrap_err();
    assert!(matches!(err, Error::Refused(ref m) if m.contains("newer")), "{err}");
    assert_eq!(std::fs::read(&newer).unwrap(), bytes);
    // Our own snapshot: only with overwrite.
    let ours = dir.path().join("ours.psnap");
    run(&ours, false).unwrap();
    assert!(matches!(run(&ours, false), Err(Error::Refused(_))));
    assert_eq!(run(&ours, true).unwrap().keys, 120);
    // A leftover FILE.tmp (a killed export) is not clobbered.
    std::fs::write(dir.path().join("x.psnap.tmp"), b"partial").unwrap();
    assert!(matches!(run(&dir.path().join("x.psnap"), false), Err(Error::Refused(_))));
    assert!(!dir.path().join("x.psnap").exists());
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
}

#[test]
fn any_flipped_byte_or_truncation_is_refused_before_writing() {
    let ns = unique_prefix("snap-corrupt");
    let (source, p) = source_with_keys(&ns);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.psnap");
    export(&connect(&source), &p, &path);
    let good = std::fs::read(&path).unwrap();
    let target = RedisServer::start();
    let psor = connect(&target);
    let bad = dir.path().join("bad.psnap");
    // Every byte of a small file would take long against a server; every 7th byte plus the
    // first and last 64 covers header, frames, footer and trailer.
    let positions: Vec<usize> = (0..good.len()).filter(|&i| i % 7 == 0 || i < 64 || i >= good.len() - 64).collect();
    for &i in &positions {
        let mut b = good.clone();
        b[i] ^= 0x01;
        std::fs::write(&bad, &b).unwrap();
        match import(&psor, &import_opts(&bad)) {
            Err(e @ Error::File { .. }) => assert!(e.is_usage()),
            other => panic!("flipped byte {i} of {}: {other:?}", good.len()),
        }
    }
    for len in [0, 7, 8, 40, good.len() / 2, good.len() - 25, good.len() - 1] {
        std::fs::write(&bad, &good[..len]).unwrap();
        assert!(matches!(import(&psor, &import_opts(&bad)), Err(Error::File { .. })), "truncated to {len}");
    }
    let mut longer = good.clone();
    longer.push(0);
    std::fs::write(&bad, &longer).unwrap();
    assert!(matches!(import(&psor, &import_opts(&bad)), Err(Error::File { .. })));
    assert_eq!(dbsize(&target), 0, "a refused file wrote something");
    // And the good file still imports.
    assert_eq!(import(&psor, &import_opts(&path)).unwrap().counts.done, 120);
}

#[test]
fn conflicts_are_left_alone_unless_replace() {
    let ns = unique_prefix("snap-conflicts");
    let (source, p) = source_with_keys(&ns);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.psnap");
    export(&connect(&source), &p, &path);
    let want = keyspace_digest(&mut source.admin_conn(), p.as_bytes());

    let target = RedisServer::start();
    let mut conn = target.admin_conn();
    let clobbered: Vec<&Vec<u8>> = want.keys().take(5).collect();
    for k in &clobbered {
        redis::cmd("SET").arg(*k).arg("someone else's").query::<()>(&mut conn).unwrap();
    }
    let psor = connect(&target);
    let dry = import(&psor, &ImportOptions { dry_run: true, ..import_opts(&path) }).unwrap();
    assert_eq!((dry.counts.done, dry.counts.conflicts, dry.dry_run), (115, 5, true));
    assert_eq!(dbsize(&target), 5, "a dry run wrote");

    let got = import(&psor, &import_opts(&path)).unwrap();
    assert_eq!((got.counts.done, got.counts.conflicts), (115, 5));
    assert_eq!(got.conflict_keys.len(), 5);
    for k in &clobbered {
        let v: Vec<u8> = redis::cmd("GET").arg(*k).query(&mut conn).unwrap();
        assert_eq!(v, b"someone else's");
    }
    let got = import(&psor, &ImportOptions { replace: true, ..import_opts(&path) }).unwrap();
    assert_eq!((got.counts.done, got.counts.conflicts), (120, 0));
    assert_eq!(keyspace_digest(&mut conn, p.as_bytes()), want);
}

#[test]
fn rename_rewrites_the_prefix_and_refuses_keys_outside_it() {
    let ns = unique_prefix("snap-rename");
    let (source, p) = source_with_keys(&ns);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.psnap");
    export(&connect(&source), &p, &path);
    let want = keyspace_digest(&mut source.admin_conn(), p.as_bytes());
    let target = RedisServer::start();
    let psor = connect(&target);
    let to = format!("{ns}b:");

    // A rename whose OLD does not cover every key: refused, nothing written.
    let narrow = format!("{p}plain");
    let opts = ImportOptions { rename: Some(Rename { from: prefix(&narrow), to: prefix(&to) }), ..import_opts(&path) };
    let err = import(&psor, &opts).unwrap_err();
    assert!(matches!(err, Error::Refused(ref m) if m.contains("do not start with")), "{err}");
    assert_eq!(dbsize(&target), 0);

    let opts = ImportOptions { rename: Some(Rename { from: prefix(&p), to: prefix(&to) }), ..import_opts(&path) };
    assert_eq!(import(&psor, &opts).unwrap().counts.done, 120);
    assert_eq!(keyspace_digest(&mut target.admin_conn(), to.as_bytes()), renamed(&want, &p, &to));
    assert_eq!(dbsize(&target), 120);
}

/// A file written directly with the format crate: one real payload per record.
fn handmade(path: &Path, source: &RedisServer, records: &[(&[u8], Option<i64>)], fix: impl Fn(&mut Record)) {
    let mut conn = source.admin_conn();
    redis::cmd("SET").arg("payload-source").arg("v").query::<()>(&mut conn).unwrap();
    let payload: Vec<u8> = redis::cmd("DUMP").arg("payload-source").query(&mut conn).unwrap();
    let header = Header::new(
        0,
        Source {
            server_version: "7.0.15".into(),
            spec: "redis://x:1".into(),
            selection: Selection::Prefix(b"t:".to_vec()),
        },
    );
    let mut w = SnapshotWriter::new(std::fs::File::create(path).unwrap(), &header).unwrap();
    for (key, expire_at_ms) in records {
        let mut r = Record {
            key: key.to_vec(),
            kind: KeyKind::String,
            expire_at_ms: *expire_at_ms,
            rdb_version: dump_rdb_version(&payload).unwrap(),
            payload: payload.clone(),
        };
        fix(&mut r);
        w.push(&r).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn past_expiries_are_skipped_and_reported() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.psnap");
    let future = 4_102_444_800_000;
    handmade(&path, &server, &[(b"t:past", Some(1_000)), (b"t:future", Some(future)), (b"t:none", None)], |_| {});
    let got = import(&connect(&server), &import_opts(&path)).unwrap();
    assert_eq!((got.counts.done, got.counts.expired), (2, 1));
    assert_eq!(got.expired_keys, vec!["t:past".to_string()]);
    let mut conn = server.admin_conn();
    assert_eq!(redis::cmd("EXISTS").arg("t:past").query::<u8>(&mut conn).unwrap(), 0);
    // key_state reads PEXPIRETIME (TIME + PTTL before Redis 7.0, compared with a tolerance).
    let mut expiry = |key: &[u8]| psor_tests::key_state(&mut conn, key).unwrap().expire_at_ms;
    assert!(psor_tests::expiry_matches(expiry(b"t:future"), Some(future)));
    assert_eq!(expiry(b"t:none"), None);
}

#[test]
fn payloads_from_a_newer_redis_are_a_clear_error_naming_the_target_version() {
    let server = RedisServer::start();
    let (major, minor, patch) = server.redis_version();
    let version = format!("{major}.{minor}.{patch}");
    let dir = tempfile::tempdir().unwrap();
    // The record says RDB 99: refused before anything is written.
    let path = dir.path().join("newer.psnap");
    handmade(&path, &server, &[(b"t:a", None), (b"t:b", None)], |r| r.rdb_version = 99);
    let err = import(&connect(&server), &import_opts(&path)).unwrap_err();
    assert!(matches!(err, Error::Refused(ref m) if m.contains(&version) && m.contains("99")), "{err}");
    assert_eq!(dbsize(&server), 1); // only payload-source
                                    // The record looks fine but the payload's own trailer says RDB 99: the server refuses it.
    let path = dir.path().join("forged.psnap");
    handmade(&path, &server, &[(b"t:c", None)], |r| {
        let n = r.payload.len();
        r.payload[n - 10..n - 8].copy_from_slice(&99u16.to_le_bytes());
    });
    let err = import(&connect(&server), &import_opts(&path)).unwrap_err();
    assert!(matches!(err, Error::TargetRefused(ref m) if m.contains(&version)), "{err}");
    assert!(!err.is_usage());
}

#[test]
fn inspect_counts_per_type_and_prefix_exactly() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.psnap");
    // Keys in known groups; every payload the same real 'SET' payload.
    let mut keys: Vec<(Vec<u8>, Option<i64>)> = Vec::new();
    for i in 0..30 {
        keys.push((format!("app:users:{i}").into_bytes(), None));
    }
    for i in 0..12 {
        keys.push((format!("app:orders:{i}:x").into_bytes(), Some(4_102_444_800_000)));
    }
    keys.push((b"app:lonely".to_vec(), Some(1)));
    keys.push((b"nocolon".to_vec(), None));
    keys.push((b"bin\x00\xff:k:1".to_vec(), None));
    let refs: Vec<(&[u8], Option<i64>)> = keys.iter().map(|(k, t)| (k.as_slice(), *t)).collect();
    handmade(&path, &server, &refs, |r| {
        if r.key.starts_with(b"app:orders:") {
            r.kind = KeyKind::Hash;
        }
    });
    let payload_len = {
        let v: Vec<u8> = redis::cmd("DUMP").arg("payload-source").query(&mut server.admin_conn()).unwrap();
        v.len() as u64
    };
    let i = snapshot::inspect(&InspectOptions { path: path.clone(), depth: 2, top: 3 }).unwrap();
    assert_eq!((i.keys, i.with_ttl, i.expired_now, i.groups), (45, 13, 1, 5));
    assert_eq!(i.per_type["string"].keys, 33);
    assert_eq!(i.per_type["hash"].keys, 12);
    assert_eq!(i.per_type["hash"].payload_bytes, 12 * payload_len);
    assert_eq!(i.per_type["stream"].keys, 0);
    assert_eq!(i.format_version, "1.0");
    assert_eq!(i.created, "1970-01-01T00:00:00.000Z");
    let top: Vec<(&str, u64)> = i.prefixes.iter().map(|p| (p.prefix.as_str(), p.keys)).collect();
    // Ties (same bytes, same keys) go by name: the empty group (keys without `:`) first.
    assert_eq!(top, vec![("app:users:", 30), ("app:orders:", 12), ("\"\"", 1)]);
    let all = snapshot::inspect(&InspectOptions { path, depth: 1, top: 100 }).unwrap();
    let top: Vec<(&str, u64)> = all.prefixes.iter().map(|p| (p.prefix.as_str(), p.keys)).collect();
    assert_eq!(top, vec![("app:", 43), ("\"\"", 1), ("\"bin\\x00\\xff:\"", 1)]);
}

/// The commands the README lists for an ACL user: the engine's plus the snapshots'.
const SNAPSHOT_COMMANDS: &[&str] = &[
    "info",
    "dbsize",
    "scan",
    "unlink",
    "exists",
    "copy",
    "rename",
    "renamenx",
    "dump",
    "restore",
    "pexpiretime",
    "pttl",
    "type",
    "multi",
    "exec",
    "time",
    "get",
    "hgetall",
    "smembers",
    "zrange",
    "lrange",
    "xrange",
    "strlen",
    "hlen",
    "scard",
    "zcard",
    "llen",
    "xlen",
];

#[test]
fn export_and_import_as_an_acl_user_with_only_the_listed_commands() {
    let server = RedisServer::builder().acl_user("snap", "s3cret", SNAPSHOT_COMMANDS).start();
    let ns = unique_prefix("snap-acl");
    let p = format!("{ns}a:");
    populate_all_types(&mut server.admin_conn(), p.as_bytes(), 60);
    let psor = Psor::connect(&PsorSpec::parse(&server.url_for("snap", "s3cret")).unwrap(), &ConnectOptions::default())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.psnap");
    assert_eq!(export(&psor, &p, &path).keys, 60);
    let want = keyspace_digest(&mut server.admin_conn(), p.as_bytes());
    let to = format!("{ns}b:");
    let opts = ImportOptions { rename: Some(Rename { from: prefix(&p), to: prefix(&to) }), ..import_opts(&path) };
    assert_eq!(import(&psor, &opts).unwrap().counts.done, 60);
    // The rerun goes through the content comparison (sets reorder), which needs the reads.
    let again = import(&psor, &opts).unwrap();
    assert_eq!((again.counts.unchanged, again.counts.conflicts, again.counts.failed), (60, 0, 0));
    assert_eq!(keyspace_digest(&mut server.admin_conn(), to.as_bytes()), renamed(&want, &p, &to));
}

/// An export comes out sorted by key (format 1.1, flagged), one record per key, over several
/// frames, and one key is found by a binary search that reads a few frames, not the file.
#[test]
fn export_is_sorted_and_one_key_is_found_without_reading_the_file() {
    let ns = unique_prefix("snap-sorted");
    let (source, p) = source_with_keys(&ns);
    let mut conn = source.admin_conn();
    let mut pipe = redis::pipe();
    // Values that do not compress (DUMP compresses strings), so the file has several frames.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..3000 {
        let value: Vec<u8> = (0..1500)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        pipe.cmd("SET").arg(format!("{p}big:{}", (i * 7919) % 3000)).arg(value).ignore();
    }
    let () = pipe.query(&mut conn).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.psnap");
    let out = export(&connect(&source), &p, &path);
    assert_eq!((out.keys, out.duplicates, out.failed), (3120, 0, 0));
    // Only the snapshot is left in the directory: the spilled runs were anonymous files.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let mut reader = psor_formats::SnapshotReader::open(std::fs::File::open(&path).unwrap()).unwrap();
    assert!(reader.header().is_sorted());
    assert_eq!(reader.header().version, psor_formats::Version { major: 1, minor: 1 });
    let frames = reader.footer().frames.len();
    assert!(frames >= 4, "{frames} frames");
    let keys: Vec<Vec<u8>> = reader.records().map(|r| r.unwrap().key).collect();
    let want: Vec<Vec<u8>> = keyspace_digest(&mut conn, p.as_bytes()).into_keys().collect();
    assert_eq!(keys, want, "the file holds every key once, in byte order");

    for key in [&want[0], &want[want.len() / 2], &want[want.len() - 1]] {
        let l = snapshot::lookup(&path, key).unwrap();
        assert!(l.sorted);
        assert!(l.record.is_some(), "{}", l.key);
        assert!(l.frames_read <= 1 + frames.ilog2() as usize + 1, "{} of {frames} frames read", l.frames_read);
    }
    let missing = snapshot::lookup(&path, format!("{p}big:zzz").as_bytes()).unwrap();
    assert!(missing.record.is_none());
}
