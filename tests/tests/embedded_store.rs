//! The embedded store (`--psor file:PATH`) against real redis-server processes: DUMP
//! payloads cross both ways for every type and encoding Redis 7.0 emits; scan / copy / delete
//! and export / import on a file give what they give on a server; saves never tear the file;
//! WATCH / MULTI / EXEC behave as on Redis.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::{self, CopyOptions, DeleteOptions, EngineOptions};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_core::snapshot::{self, ExportOptions, ExportSelection, ImportOptions};
use psor_tests::{
    key_state, keyspace_digest, populate_all_types, unique_prefix, CanonicalValue, KeyState, RedisServer,
};
use redis::{ConnectionLike, Value};

fn connect(spec: &str) -> Psor {
    Psor::connect(&PsorSpec::parse(spec).unwrap(), &ConnectOptions::default()).unwrap()
}

fn small() -> EngineOptions {
    EngineOptions { scan_count: 50, batch_size: 37, writers: 3, ..EngineOptions::default() }
}

fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::new(s.as_bytes()).unwrap()
}

fn export(psor: &Psor, p: &str, path: &Path) {
    let opts =
        ExportOptions { selection: ExportSelection::prefix(prefix(p)), path: path.to_path_buf(), overwrite: true };
    snapshot::export(psor, &opts, &small(), Arc::new(Progress::new())).unwrap();
}

fn import(psor: &Psor, path: &Path) -> u64 {
    let opts = ImportOptions { path: path.to_path_buf(), rename: None, replace: false, dry_run: false, sample: 5 };
    snapshot::import(psor, &opts, &small(), Arc::new(Progress::new())).unwrap().counts.done
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

/// Keys in every encoding Redis 7.0 picks: small (listpack, intset, int and short strings) and
/// large (hashtable, skiplist, several quicklist nodes, a plain node, LZF strings).
fn populate_encodings(con: &mut dyn ConnectionLike, ns: &str) -> Vec<String> {
    let k = |s: &str| format!("{ns}{s}");
    let big: String = "ab".repeat(2000);
    let mut p = redis::pipe();
    p.cmd("SET").arg(k("str:raw")).arg("hello").ignore();
    p.cmd("SET").arg(k("str:int")).arg("-123456").ignore();
    p.cmd("SET").arg(k("str:int8")).arg("7").ignore();
    p.cmd("SET").arg(k("str:lzf")).arg(&big).ignore();
    p.cmd("SET").arg(k("str:bin")).arg(b"\x00\xff\r\n".as_slice()).ignore();
    p.cmd("HSET")
        .arg(k("hash:lp"))
        .arg("mode")
        .arg("active")
        .arg("version")
        .arg("9.0")
        .arg("n")
        .arg(42)
        .arg("neg")
        .arg(-70000)
        .ignore();
    let c = p.cmd("HSET").arg(k("hash:ht"));
    for i in 0..300 {
        c.arg(format!("f{i}")).arg(i * 1000);
    }
    c.ignore();
    p.cmd("SADD").arg(k("set:intset")).arg(1).arg(-5).arg(70000).arg(5_000_000_000i64).ignore();
    p.cmd("SADD").arg(k("set:small")).arg("a").arg("b").arg(3).ignore();
    let c = p.cmd("SADD").arg(k("set:ht"));
    for i in 0..600 {
        c.arg(i);
    }
    c.ignore();
    p.cmd("RPUSH").arg(k("list:lp")).arg("a").arg(1).arg(-2).arg(300).arg(-70000).arg(1i64 << 40).arg("a").ignore();
    let c = p.cmd("RPUSH").arg(k("list:many"));
    for i in 0..2000 {
        c.arg(format!("item-{i}"));
    }
    c.ignore();
    p.cmd("RPUSH").arg(k("list:plain")).arg("x").arg("y".repeat(20_000)).arg("z").ignore();
    p.cmd("ZADD").arg(k("zset:lp")).arg(1.5).arg("a").arg(-2).arg("b").arg(0.1).arg("c").arg(3).arg(100).ignore();
    let c = p.cmd("ZADD").arg(k("zset:sl"));
    for i in 0..300 {
        c.arg(i as f64 / 7.0).arg(format!("m{i}"));
    }
    c.ignore();
    p.cmd("PEXPIREAT").arg(k("hash:lp")).arg(4_102_444_800_000i64).ignore();
    p.query::<()>(con).unwrap();
    [
        "str:raw",
        "str:int",
        "str:int8",
        "str:lzf",
        "str:bin",
        "hash:lp",
        "hash:ht",
        "set:intset",
        "set:small",
        "set:ht",
        "list:lp",
        "list:many",
        "list:plain",
        "zset:lp",
        "zset:sl",
    ]
    .iter()
    .map(|s| k(s))
    .collect()
}

fn dump(con: &mut dyn ConnectionLike, key: &str) -> Vec<u8> {
    redis::cmd("DUMP").arg(key).query(con).unwrap()
}

fn restore(con: &mut dyn ConnectionLike, key: &str, payload: &[u8]) -> redis::RedisResult<()> {
    redis::cmd("RESTORE").arg(key).arg(0).arg(payload).arg("REPLACE").query(con)
}

/// Writes `state` on `con` under `key` with ordinary commands (so the store holds it typed).
fn rebuild(con: &mut dyn ConnectionLike, key: &str, state: &KeyState) {
    let mut c;
    match &state.value {
        CanonicalValue::String(s) => {
            c = redis::cmd("SET");
            c.arg(key).arg(s);
        }
        CanonicalValue::Hash(pairs) => {
            c = redis::cmd("HSET");
            c.arg(key);
            pairs.iter().for_each(|(f, v)| {
                c.arg(f).arg(v);
            });
        }
        CanonicalValue::List(items) => {
            c = redis::cmd("RPUSH");
            c.arg(key).arg(items);
        }
        CanonicalValue::Set(items) => {
            c = redis::cmd("SADD");
            c.arg(key).arg(items);
        }
        CanonicalValue::ZSet(items) => {
            c = redis::cmd("ZADD");
            c.arg(key);
            items.iter().for_each(|(m, s)| {
                c.arg(*s).arg(m);
            });
        }
        other => panic!("not rebuilt: {other:?}"),
    }
    c.query::<Value>(con).unwrap();
}

#[test]
fn dump_payloads_cross_both_ways_for_every_encoding() {
    let server = RedisServer::start();
    let mut real = server.admin_conn();
    let store = psor_embedded::in_memory();
    let mut mine = store.connect();
    let ns = unique_prefix("rdb_cross");
    for key in populate_encodings(&mut real, &ns) {
        let want = key_state(&mut real, key.as_bytes()).unwrap();
        // Redis → embedded: the store decodes what Redis emits.
        let payload = dump(&mut real, &key);
        restore(&mut mine, &key, &payload).unwrap();
        let mut got = key_state(&mut mine, key.as_bytes()).unwrap();
        got.expire_at_ms = want.expire_at_ms;
        assert_eq!(got, want, "{key} (RDB type {})", payload[0]);
        assert_eq!(dump(&mut mine, &key), payload, "{key}: a carried payload comes back byte for byte");
        // Embedded → Redis: a value the store encodes itself loads in Redis with the same content.
        let typed = format!("{key}:typed");
        rebuild(&mut mine, &typed, &want);
        let mut encoded = dump(&mut mine, &typed);
        if server.kind().rdb_version() < psor_embedded::rdb::RDB_VERSION {
            // The store writes RDB 10 (Redis 7.0's) in the plain encodings; an older server gets
            // them with its own version in the footer, as psor's copy and import send them.
            encoded = psor_embedded::rdb::refooter(&encoded, server.kind().rdb_version()).unwrap();
        }
        restore(&mut real, &typed, &encoded).unwrap_or_else(|e| panic!("{typed}: Redis refused our payload: {e}"));
        let mut back = key_state(&mut real, typed.as_bytes()).unwrap();
        back.expire_at_ms = want.expire_at_ms;
        assert_eq!(back, want, "{typed}");
    }
    // A string Redis would encode the same way gets the very same bytes (CRC-64 included).
    redis::cmd("SET").arg("plain").arg("hello").query::<()>(&mut mine).unwrap();
    redis::cmd("SET").arg(format!("{ns}plain")).arg("hello").query::<()>(&mut real).unwrap();
    // (Only the object where the server writes another RDB version than the store's 10.)
    let (ours, theirs) = (dump(&mut mine, "plain"), dump(&mut real, &format!("{ns}plain")));
    if server.kind().rdb_version() == psor_embedded::rdb::RDB_VERSION {
        assert_eq!(ours, theirs);
    } else {
        assert_eq!(ours[..ours.len() - 10], theirs[..theirs.len() - 10]);
    }
    // Redis's own checks on RESTORE, with Redis's texts.
    let e = restore(&mut mine, "bad", b"\x00\x01x\x0a\x00garbage!").unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    let payload = dump(&mut real, &format!("{ns}plain"));
    let busy: redis::RedisResult<()> = redis::cmd("RESTORE").arg("plain").arg(0).arg(&payload).query(&mut mine);
    let busy = busy.unwrap_err();
    assert_eq!(busy.code(), Some("BUSYKEY"));
    assert!(busy.to_string().contains("Target key name already exists."), "{busy}");
}

#[test]
fn engine_on_a_file_does_what_it_does_on_a_server() {
    let source = RedisServer::start();
    let fresh = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ns = unique_prefix("embedded_engine");
    let (a, b) = (format!("{ns}a:"), format!("{ns}b:"));
    populate_all_types(&mut source.admin_conn(), a.as_bytes(), 150);
    populate_encodings(&mut source.admin_conn(), &a);
    let before = keyspace_digest(&mut source.admin_conn(), a.as_bytes());

    // The same data in a file store, from a real server's export.
    let snap = dir.path().join("prod.psnap");
    let store_path = dir.path().join("store.psnap");
    export(&connect(&source.url()), &a, &snap);
    let file = connect(&format!("file:{}", store_path.display()));
    assert_eq!(file.version().to_string(), "7.0.0");
    assert_eq!(import(&file, &snap), before.len() as u64);

    // Scan: the same keys.
    let scan_keys = |psor: &Psor| {
        let mut keys: Vec<Vec<u8>> = engine::scan(psor, &prefix(&a), &small(), Arc::new(Progress::new()))
            .unwrap()
            .flat_map(Result::unwrap)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    };
    let server = connect(&source.url());
    assert_eq!(scan_keys(&file), scan_keys(&server));
    assert_eq!(scan_keys(&file).len(), before.len());

    // Copy then delete, on both.
    for psor in [&server, &file] {
        let copy = CopyOptions {
            from: prefix(&a),
            to: prefix(&b),
            replace: false,
            move_keys: false,
            dry_run: false,
            sample: 5,
        };
        let out = engine::copy(psor, None, &copy, &small(), Arc::new(Progress::new())).unwrap();
        assert_eq!(
            (out.counts.done, out.counts.failed, out.counts.conflicts),
            (before.len() as u64, 0, 0),
            "{}",
            psor.spec().redacted()
        );
        // Copying again finds identical content: no conflicts.
        let again = engine::copy(psor, None, &copy, &small(), Arc::new(Progress::new())).unwrap();
        assert_eq!(again.counts.conflicts, 0, "{}", psor.spec().redacted());
        let del = DeleteOptions { prefix: prefix(&a), dry_run: false, sample: 0 };
        let out = engine::delete(psor, &del, &small(), Arc::new(Progress::new())).unwrap();
        assert_eq!(out.counts.done, before.len() as u64);
    }
    file.flush().unwrap();
    drop(file);

    // Reopened from disk, exported, imported into an empty server: what the server has.
    let file = connect(&format!("file:{}", store_path.display()));
    assert_eq!(file.dbsize().unwrap(), before.len() as u64);
    let out = dir.path().join("from-file.psnap");
    export(&file, &b, &out);
    import(&connect(&fresh.url()), &out);
    let want = renamed(&before, &a, &b);
    assert_eq!(keyspace_digest(&mut fresh.admin_conn(), b.as_bytes()), want);
    assert_eq!(keyspace_digest(&mut source.admin_conn(), b.as_bytes()), want);
    assert!(keyspace_digest(&mut fresh.admin_conn(), a.as_bytes()).is_empty());
}

#[test]
fn a_pac_record_from_a_real_dump_reads_back_from_the_file() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ns = unique_prefix("embedded_pac");
    let key = format!("{ns}MyPAC_8.0:pac");
    redis::cmd("HSET")
        .arg(&key)
        .arg("name")
        .arg("MyPAC")
        .arg("version")
        .arg("8.0")
        .arg("mode")
        .arg("active")
        .query::<()>(&mut server.admin_conn())
        .unwrap();
    let payload = dump(&mut server.admin_conn(), &key);
    // Redis 6.2 still sends it as a ziplist (type 13).
    let small_hash = if server.kind().has_pexpiretime() { 16 } else { 13 };
    assert_eq!(payload[0], small_hash, "Redis 7 sends a small hash as a listpack");
    let snap = dir.path().join("pac.psnap");
    export(&connect(&server.url()), &ns, &snap);
    let path = dir.path().join("store.psnap");
    import(&connect(&format!("file:{}", path.display())), &snap);
    // Reopen (the import saved the store on drop), then read the record as the PAC code does.
    let file = connect(&format!("file:{}", path.display()));
    let mut con = file.masters()[0].connect().unwrap();
    let fields: BTreeMap<String, String> = redis::cmd("HGETALL").arg(&key).query(con.raw()).unwrap();
    assert_eq!(fields.get("mode").map(String::as_str), Some("active"));
    assert_eq!(fields.get("version").map(String::as_str), Some("8.0"));
    assert_eq!(fields.len(), 3);
    assert_eq!(redis::cmd("HLEN").arg(&key).query::<i64>(con.raw()).unwrap(), 3);
}

#[test]
fn a_failed_save_leaves_the_old_file_and_tmp_leftovers_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.psnap");
    let store = psor_embedded::open(&path).unwrap();
    let mut con = store.connect();
    redis::cmd("SET").arg("k").arg("v1").query::<()>(&mut con).unwrap();
    store.save().unwrap();
    let saved = std::fs::read(&path).unwrap();

    // The temporary file cannot be created (a directory is in its way): the save fails and
    // the file on disk is still the old one, whole.
    let tmp = psor_embedded::tmp_path(&path);
    std::fs::create_dir(&tmp).unwrap();
    redis::cmd("SET").arg("k").arg("v2").query::<()>(&mut con).unwrap();
    assert!(store.save().is_err());
    assert_eq!(std::fs::read(&path).unwrap(), saved);
    std::fs::remove_dir(&tmp).unwrap();
    drop(con);
    drop(store); // the Drop fallback saves v2 now that it can

    // Garbage left at PATH.tmp (a crash mid-save) is ignored on open and replaced on save.
    std::fs::write(&tmp, b"torn half-written snapshot").unwrap();
    let store = psor_embedded::open(&path).unwrap();
    let mut con = store.connect();
    assert_eq!(redis::cmd("GET").arg("k").query::<String>(&mut con).unwrap(), "v2");
    redis::cmd("SET").arg("k").arg("v3").query::<()>(&mut con).unwrap();
    store.save().unwrap();
    assert!(!tmp.exists());
    drop(con);
    drop(store);
    let store = psor_embedded::open(&path).unwrap();
    assert_eq!(redis::cmd("GET").arg("k").query::<String>(&mut store.connect()).unwrap(), "v3");
}

#[test]
fn a_damaged_file_is_refused_and_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.psnap");
    {
        let store = psor_embedded::open(&path).unwrap();
        redis::cmd("SET").arg("k").arg("v").query::<()>(&mut store.connect()).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    // A newer major format version: refused on open, so never rewritten.
    bytes[8] = 9;
    std::fs::write(&path, &bytes).unwrap();
    let err = Psor::connect(&PsorSpec::parse(&format!("file:{}", path.display())).unwrap(), &ConnectOptions::default())
        .unwrap_err();
    assert!(err.is_usage(), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn watch_multi_exec_behave_as_on_redis() {
    let server = RedisServer::start();
    let store = psor_embedded::in_memory();
    let mut real = (server.admin_conn(), server.admin_conn());
    let mut mine = (store.connect(), store.connect());
    let run = |c1: &mut dyn ConnectionLike, c2: &mut dyn ConnectionLike| -> (Value, Value, Value) {
        redis::cmd("DEL").arg("w").query::<()>(c1).unwrap();
        // Untouched watched key: the transaction runs.
        redis::cmd("WATCH").arg("w").query::<()>(c1).unwrap();
        let ok: Value = redis::pipe().atomic().cmd("SET").arg("w").arg("1").cmd("GET").arg("w").query(c1).unwrap();
        // Changed by another connection after WATCH: EXEC answers nil.
        redis::cmd("WATCH").arg("w").query::<()>(c1).unwrap();
        redis::cmd("SET").arg("w").arg("2").query::<()>(c2).unwrap();
        let aborted: Value = redis::pipe().atomic().cmd("SET").arg("w").arg("3").query(c1).unwrap();
        // EXEC unwatched everything: the next transaction runs whatever changes.
        redis::cmd("SET").arg("w").arg("4").query::<()>(c2).unwrap();
        let after: Value = redis::pipe().atomic().cmd("GET").arg("w").query(c1).unwrap();
        (ok, aborted, after)
    };
    let want = run(&mut real.0, &mut real.1);
    let got = run(&mut mine.0, &mut mine.1);
    assert_eq!(got, want);
    assert_eq!(got.1, Value::Nil);
    // MULTI by hand: +OK, +QUEUED, and EXEC's array.
    let c = &mut mine.0;
    assert_eq!(redis::cmd("MULTI").query::<Value>(c).unwrap(), Value::Okay);
    assert_eq!(
        redis::cmd("HSET").arg("h").arg("f").arg("v").query::<Value>(c).unwrap(),
        Value::SimpleString("QUEUED".into())
    );
    assert_eq!(redis::cmd("EXEC").query::<Value>(c).unwrap(), Value::Array(vec![Value::Int(1)]));
    // A command refused while queueing aborts the transaction.
    redis::cmd("MULTI").query::<()>(c).unwrap();
    assert!(redis::cmd("NOSUCHCOMMAND").query::<Value>(c).is_err());
    let e = redis::cmd("EXEC").query::<Value>(c).unwrap_err();
    assert_eq!(e.code(), Some("EXECABORT"));
}
