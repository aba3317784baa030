//! Keys moving between the four server builds psor meets — Redis 6.2, Redis 7.0, Valkey 8.1,
//! Valkey 9.1 — in every direction, newer to older included: `copy --target` and export →
//! import for every ordered pair, and the embedded store (`file:`) reading every server's
//! payloads. Content is compared, not DUMP bytes: every type, stream last ids, consumer groups
//! with their last-delivered ids and pending entries, and the absolute expiry.
//!
//! The servers are the real binaries `scripts/fetch-servers.sh` fetches, started by the harness
//! by name. A build that is not installed skips the test with a note, so the suite still runs
//! where only 7.0 is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::{self, CopyOptions, EngineOptions};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_core::snapshot::{self, ExportOptions, ExportSelection, ImportOptions, Rename};
use psor_tests::{populate_all_types, RedisServer, ServerKind};
use redis::Value;

/// One of the four builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Build {
    Redis62,
    Redis70,
    Valkey81,
    Valkey91,
    /// Optional: joins the matrix where `scripts/fetch-servers.sh` could fetch it.
    Redis80,
}

const ALL: [Build; 4] = [Build::Redis62, Build::Redis70, Build::Valkey81, Build::Valkey91];

/// The four builds, and Redis 8.0 where it is installed.
fn builds() -> Vec<Build> {
    let mut b = ALL.to_vec();
    if Build::Redis80.kind().is_installed() {
        b.push(Build::Redis80);
    } else {
        eprintln!("redis-8.0 not installed: the matrix runs without it (scripts/fetch-servers.sh fetches it)");
    }
    b
}

impl Build {
    fn name(self) -> &'static str {
        self.kind().name()
    }

    fn kind(self) -> ServerKind {
        match self {
            Build::Redis62 => ServerKind::Redis62,
            Build::Redis70 => ServerKind::Redis70,
            Build::Valkey81 => ServerKind::Valkey81,
            Build::Valkey91 => ServerKind::Valkey91,
            Build::Redis80 => ServerKind::Redis80,
        }
    }

    /// `PEXPIRETIME` exists (7.0+): expiries compare exactly.
    fn abs_ttl(self) -> bool {
        self.kind().has_pexpiretime()
    }
}

/// A running server of one build, through the harness (stopped on drop).
struct Server {
    build: Build,
    server: RedisServer,
}

impl Server {
    fn start(build: Build, config: &[(&str, &str)]) -> Server {
        let mut b = RedisServer::builder().server(build.kind());
        for (k, v) in config {
            b = b.config(k, v);
        }
        Server { build, server: b.start() }
    }

    fn conn(&self) -> redis::Connection {
        let con = self.server.admin_conn();
        con.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        con
    }

    fn psor(&self) -> Psor {
        Psor::connect(&PsorSpec::parse(&self.server.url()).unwrap(), &ConnectOptions::default()).unwrap()
    }
}

/// True when every build's binary is installed; otherwise says which is missing.
fn all_installed() -> bool {
    let missing: Vec<_> = ALL.iter().filter(|b| !b.kind().is_installed()).map(|b| b.name()).collect();
    if !missing.is_empty() {
        eprintln!("skipped: {missing:?} not installed (scripts/fetch-servers.sh fetches them)");
    }
    missing.is_empty()
}

fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::new(s.as_bytes()).unwrap()
}

fn engine() -> EngineOptions {
    EngineOptions { scan_count: 100, batch_size: 64, writers: 2, ..EngineOptions::default() }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The keys every source holds under `src:`: every type (populate_all_types), values big
/// enough for each server's non-compact encodings, and streams with consumer groups, a
/// group's last-delivered id and pending entries.
fn populate(con: &mut redis::Connection) {
    populate_all_types(con, b"src:", 120);
    let mut p = redis::pipe();
    p.cmd("RPUSH").arg("src:big:list").arg((0..300).map(|i| format!("item {i}")).collect::<Vec<_>>()).ignore();
    p.cmd("SADD").arg("src:big:intset").arg((0..100).collect::<Vec<i64>>()).ignore();
    p.cmd("SADD").arg("src:big:set").arg((0..700).map(|i| format!("m{i}")).collect::<Vec<_>>()).ignore();
    p.cmd("SADD").arg("src:small:set").arg(&["a", "b", "c"]).ignore();
    let h: Vec<(String, String)> = (0..700).map(|i| (format!("f{i}"), format!("v{i}"))).collect();
    p.cmd("HSET").arg("src:big:hash").arg(h).ignore();
    let z: Vec<(f64, String)> = (0..300).map(|i| (i as f64 / 7.0, format!("z{i}"))).collect();
    p.cmd("ZADD").arg("src:big:zset").arg(z).ignore();
    p.cmd("SET").arg("src:big:string").arg("abc".repeat(40_000)).ignore();
    p.cmd("SET").arg("src:int").arg(-1234567).ignore();
    p.cmd("PEXPIREAT").arg("src:big:hash").arg(4_102_444_800_123i64).ignore();
    for s in 0..3 {
        let key = format!("src:stream:groups:{s}");
        for j in 1..=5 {
            p.cmd("XADD").arg(&key).arg(format!("{}-{j}", 100 + s)).arg("n").arg(j).ignore();
        }
        p.cmd("XDEL").arg(&key).arg(format!("{}-5", 100 + s)).ignore();
        p.cmd("XGROUP").arg("CREATE").arg(&key).arg("g-at-2").arg(format!("{}-2", 100 + s)).ignore();
        p.cmd("XGROUP").arg("CREATE").arg(&key).arg("g-new").arg("0").ignore();
        p.cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g-new")
            .arg("alice")
            .arg("COUNT")
            .arg(2)
            .arg("STREAMS")
            .arg(&key)
            .arg(">");
        p.ignore();
    }
    p.query::<()>(con).unwrap();
}

/// A key's content, read with typed commands, as comparable text; and its absolute expiry.
#[derive(Debug, Clone, PartialEq)]
struct State {
    content: String,
    expire_at_ms: Option<i64>,
}

fn flat(v: &Value) -> String {
    match v {
        // Big values by length and a checksum (FNV-1a), or the digest would take longer than the copy.
        Value::BulkString(b) if b.len() > 256 => {
            let h = b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3));
            format!("<{} bytes {h:x}>", b.len())
        }
        Value::BulkString(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Value::SimpleString(s) => format!("{s:?}"),
        Value::Int(i) => i.to_string(),
        Value::Nil => "nil".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(flat).collect::<Vec<_>>().join(",")),
        Value::Map(m) => {
            format!("{{{}}}", m.iter().map(|(k, v)| format!("{}={}", flat(k), flat(v))).collect::<Vec<_>>().join(","))
        }
        other => format!("{other:?}"),
    }
}

/// The fields of a flat `XINFO` reply (name, value, name, value…) kept by name.
fn fields(v: &Value, keep: &[&str]) -> String {
    let Value::Array(a) = v else { return flat(v) };
    let mut out = Vec::new();
    for pair in a.chunks(2) {
        let name = flat(&pair[0]);
        if keep.iter().any(|k| name == format!("{k:?}")) {
            out.push(format!("{name}={}", flat(&pair[1])));
        }
    }
    out.join(",")
}

fn state(con: &mut redis::Connection, build: Build, key: &[u8]) -> State {
    let kind: String = redis::cmd("TYPE").arg(key).query(con).unwrap();
    let q = |con: &mut redis::Connection, c: &str, args: &[&[u8]]| -> Value {
        let mut cmd = redis::cmd(c);
        for a in args {
            cmd.arg(*a);
        }
        cmd.query(con).unwrap()
    };
    let sorted = |v: Value, pairs: bool| -> String {
        let Value::Array(a) = v else { return flat(&v) };
        let mut items: Vec<String> = if pairs {
            a.chunks(2).map(|c| format!("{}={}", flat(&c[0]), flat(&c[1]))).collect()
        } else {
            a.iter().map(flat).collect()
        };
        items.sort();
        items.join(",")
    };
    let content = match kind.as_str() {
        "string" => flat(&q(con, "GET", &[key])),
        "list" => flat(&q(con, "LRANGE", &[key, b"0", b"-1"])),
        "set" => sorted(q(con, "SMEMBERS", &[key]), false),
        "hash" => sorted(q(con, "HGETALL", &[key]), true),
        // Scores as numbers: Redis 6.2 prints them with %.17g, 7.0+ in the shortest form.
        "zset" => match q(con, "ZRANGE", &[key, b"0", b"-1", b"WITHSCORES"]) {
            Value::Array(a) => a
                .chunks(2)
                .map(|c| {
                    let score = match &c[1] {
                        Value::BulkString(b) => String::from_utf8_lossy(b).parse::<f64>().unwrap(),
                        Value::Double(d) => *d,
                        other => panic!("score {other:?}"),
                    };
                    format!("{}={score:?}", flat(&c[0]))
                })
                .collect::<Vec<_>>()
                .join(","),
            other => flat(&other),
        },
        "stream" => {
            let entries = flat(&q(con, "XRANGE", &[key, b"-", b"+"]));
            let info = fields(&q(con, "XINFO", &[b"STREAM", key]), &["length", "last-generated-id", "groups"]);
            let groups = match q(con, "XINFO", &[b"GROUPS", key]) {
                Value::Array(gs) => gs
                    .iter()
                    .map(|g| fields(g, &["name", "consumers", "pending", "last-delivered-id"]))
                    .collect::<Vec<_>>(),
                other => vec![flat(&other)],
            };
            let mut pending = Vec::new();
            for g in &groups {
                if let Some(name) = g.split(',').find_map(|f| f.strip_prefix("\"name\"=")) {
                    let name = name.trim_matches('"');
                    let p = q(con, "XPENDING", &[key, name.as_bytes(), b"-", b"+", b"100"]);
                    // id and consumer of each pending entry (idle time and count drift).
                    if let Value::Array(es) = p {
                        for e in es {
                            if let Value::Array(e) = e {
                                pending.push(format!("{name}:{}:{}", flat(&e[0]), flat(&e[1])));
                            }
                        }
                    }
                }
            }
            format!("{entries} {info} {groups:?} {pending:?}")
        }
        other => panic!("type {other}"),
    };
    let expire_at_ms = if build.abs_ttl() {
        let t: i64 = redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap();
        (t >= 0).then_some(t)
    } else {
        let t: i64 = redis::cmd("PTTL").arg(key).query(con).unwrap();
        (t >= 0).then(|| now_ms() + t)
    };
    State { content, expire_at_ms }
}

/// Every key under `p` on `server`, renamed to the suffix after `p`.
fn digest(server: &Server, p: &str) -> BTreeMap<Vec<u8>, State> {
    let mut con = server.conn();
    let mut out = BTreeMap::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) =
            redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(1000).query(&mut con).unwrap();
        for k in keys.into_iter().filter(|k| k.starts_with(p.as_bytes())) {
            let s = state(&mut con, server.build, &k);
            out.insert(k[p.len()..].to_vec(), s);
        }
        if next == 0 {
            return out;
        }
        cursor = next;
    }
}

/// Same keys, same content, same absolute expiry (within 2 s where Redis 6.2, which has no
/// `PEXPIRETIME`, is on either side: its expiries are only readable as relative TTLs).
fn assert_same(what: &str, a: &BTreeMap<Vec<u8>, State>, b: &BTreeMap<Vec<u8>, State>, exact_ttl: bool) {
    assert_eq!(a.len(), b.len(), "{what}: key counts differ");
    for (k, sa) in a {
        let sb = b.get(k).unwrap_or_else(|| panic!("{what}: {} missing", String::from_utf8_lossy(k)));
        if sa.content != sb.content {
            let cut = |s: &str| s.chars().take(400).collect::<String>();
            panic!("{what}: content of {}:\n{}\n{}", String::from_utf8_lossy(k), cut(&sa.content), cut(&sb.content));
        }
        let ttl_ok = match (sa.expire_at_ms, sb.expire_at_ms) {
            (None, None) => true,
            (Some(x), Some(y)) if exact_ttl => x == y,
            (Some(x), Some(y)) => (x - y).abs() <= 2_000,
            _ => false,
        };
        assert!(
            ttl_ok,
            "{what}: expiry of {}: {:?} vs {:?}",
            String::from_utf8_lossy(k),
            sa.expire_at_ms,
            sb.expire_at_ms
        );
    }
}

fn copy_to(source: &Psor, target: &Psor, to: &str, opts: &EngineOptions) -> psor_core::engine::Outcome {
    let co = CopyOptions {
        from: prefix("src:"),
        to: prefix(to),
        replace: false,
        move_keys: false,
        dry_run: false,
        sample: 0,
    };
    engine::copy(source, Some(target), &co, opts, Arc::new(Progress::new())).unwrap()
}

fn export(psor: &Psor, path: &Path) {
    let opts = ExportOptions {
        selection: ExportSelection::prefix(prefix("src:")),
        path: path.to_path_buf(),
        overwrite: false,
    };
    snapshot::export(psor, &opts, &engine(), Arc::new(Progress::new())).unwrap();
}

fn import(target: &Psor, path: &Path, to: &str) -> Result<snapshot::ImportOutcome, snapshot::Error> {
    import_with(target, path, to, &engine())
}

fn import_with(
    target: &Psor,
    path: &Path,
    to: &str,
    engine: &EngineOptions,
) -> Result<snapshot::ImportOutcome, snapshot::Error> {
    let opts = ImportOptions {
        path: path.to_path_buf(),
        rename: Some(Rename { from: prefix("src:"), to: prefix(to) }),
        replace: false,
        dry_run: false,
        sample: 0,
    };
    snapshot::import(target, &opts, engine, Arc::new(Progress::new()))
}

/// Whether a payload of `a` must change on the way to `b`: `b` refuses `a`'s RDB version
/// (Valkey 9 reads its own 80 and up to 11; the others up to their own).
fn transcodes(a: Build, b: Build) -> bool {
    let (from, to) = (a.kind().rdb_version(), b.kind().rdb_version());
    if to == 80 {
        from != 80 && from > 11
    } else {
        from > to
    }
}

#[test]
fn every_type_crosses_every_pair_of_servers_by_copy_and_by_snapshot() {
    if !all_installed() {
        return;
    }
    let started = Instant::now();
    let servers: Vec<Server> = builds().iter().map(|b| Server::start(*b, &[])).collect();
    let psors: Vec<Psor> = servers.iter().map(Server::psor).collect();
    for s in &servers {
        populate(&mut s.conn());
    }
    let originals: Vec<_> = servers.iter().map(|s| digest(s, "src:")).collect();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = servers
        .iter()
        .zip(&psors)
        .map(|(s, p)| {
            let path = dir.path().join(format!("{}.psnap", s.build.name()));
            export(p, &path);
            path
        })
        .collect();
    for (si, src) in servers.iter().enumerate() {
        for (ti, dst) in servers.iter().enumerate() {
            let exact = src.build.abs_ttl() && dst.build.abs_ttl();
            let what = format!("{} → {}", src.build.name(), dst.build.name());
            if si != ti {
                let to = format!("c-{}:", src.build.name());
                let out = copy_to(&psors[si], &psors[ti], &to, &engine());
                assert_eq!(
                    (out.counts.done, out.counts.failed),
                    (originals[si].len() as u64, 0),
                    "copy {what}: {out:?}"
                );
                // A newer source's payloads are transcoded, never tried as they are.
                if transcodes(src.build, dst.build) {
                    assert!(out.paths.transcoded > 0 && out.paths.restore == 0, "copy {what}: {:?}", out.paths);
                } else {
                    assert_eq!(out.paths.transcoded, 0, "copy {what}: {:?}", out.paths);
                }
                assert_same(&format!("copy {what}"), &originals[si], &digest(dst, &to), exact);
                // The source's snapshot imported over that copy (transcoded or not, streams
                // included): every key is already there. Not from Redis 6.2: without
                // PEXPIRETIME, the copy's and the export's instants of one expiry are each read
                // as a relative TTL, and differ by the time between the two reads.
                if src.build.abs_ttl() {
                    let out =
                        import(&psors[ti], &files[si], &to).unwrap_or_else(|e| panic!("import over copy {what}: {e}"));
                    let n = originals[si].len() as u64;
                    assert_eq!(
                        (out.counts.unchanged, out.counts.conflicts),
                        (n, 0),
                        "import over copy {what}: {out:?}"
                    );
                }
            }
            let to = format!("i-{}:", src.build.name());
            let out = import(&psors[ti], &files[si], &to).unwrap_or_else(|e| panic!("import {what}: {e}"));
            assert_eq!((out.counts.done, out.counts.failed), (originals[si].len() as u64, 0), "import {what}");
            assert_same(&format!("import {what}"), &originals[si], &digest(dst, &to), exact);
            // Imported again: unchanged, not conflicts.
            let out = import(&psors[ti], &files[si], &to).unwrap_or_else(|e| panic!("import again {what}: {e}"));
            let n = originals[si].len() as u64;
            assert_eq!((out.counts.unchanged, out.counts.conflicts), (n, 0), "import again {what}: {out:?}");
        }
    }
    // The embedded store reads every server's payloads: each snapshot into one `file:` store,
    // then from there to the oldest and the newest server.
    let store = dir.path().join("store.psnap");
    let file =
        Psor::connect(&PsorSpec::parse(&format!("file:{}", store.display())).unwrap(), &ConnectOptions::default())
            .unwrap();
    for (si, src) in servers.iter().enumerate() {
        let to = format!("e-{}:", src.build.name());
        let out = import(&file, &files[si], &to)
            .unwrap_or_else(|e| panic!("import into file: from {}: {e}", src.build.name()));
        assert_eq!(out.counts.done, originals[si].len() as u64);
        for ti in [0, 3] {
            let co = CopyOptions {
                from: prefix(&to),
                to: prefix(&format!("f-{}:", src.build.name())),
                replace: false,
                move_keys: false,
                dry_run: false,
                sample: 0,
            };
            let out = engine::copy(&file, Some(&psors[ti]), &co, &engine(), Arc::new(Progress::new())).unwrap();
            assert_eq!(
                (out.counts.done, out.counts.failed),
                (originals[si].len() as u64, 0),
                "file: → {}",
                servers[ti].build.name()
            );
            let what = format!("{} → file: → {}", src.build.name(), servers[ti].build.name());
            let exact = src.build.abs_ttl() && servers[ti].build.abs_ttl();
            assert_same(&what, &originals[si], &digest(&servers[ti], &format!("f-{}:", src.build.name())), exact);
        }
    }
    file.flush().unwrap();
    let n = servers.len() * servers.len();
    eprintln!("{n} pairs by copy and snapshot, and file:, in {:.1}s", started.elapsed().as_secs_f64());
}

/// `HSET` + per-field `HPEXPIREAT` (Valkey 9): `n` hashes `src:hfe:<i>` whose field `a` expires
/// at a fixed instant, `b` an hour later, `c` never.
fn populate_field_ttls(con: &mut redis::Connection, n: usize) -> i64 {
    let at = 4_102_444_800_000i64;
    for i in 0..n {
        let key = format!("src:hfe:{i}");
        redis::cmd("HSET").arg(&key).arg(&["a", "1", "b", "2", "c", "3"]).query::<()>(con).unwrap();
        redis::cmd("HPEXPIREAT").arg(&key).arg(at).arg("FIELDS").arg(1).arg("a").query::<()>(con).unwrap();
        redis::cmd("HPEXPIREAT").arg(&key).arg(at + 3_600_000).arg("FIELDS").arg(1).arg("b").query::<()>(con).unwrap();
    }
    at
}

fn field_expiries(con: &mut redis::Connection, key: &str) -> Vec<i64> {
    redis::cmd("HPEXPIRETIME").arg(key).arg("FIELDS").arg(3).arg(&["a", "b", "c"]).query(con).unwrap()
}

fn dbsize(s: &Server) -> u64 {
    redis::cmd("DBSIZE").query(&mut s.conn()).unwrap()
}

#[test]
fn hash_field_expirations_are_kept_where_the_target_has_them_and_refused_or_dropped_elsewhere() {
    if !all_installed() {
        return;
    }
    let v91 = Server::start(Build::Valkey91, &[]);
    let other_v91 = Server::start(Build::Valkey91, &[]);
    let r70 = Server::start(Build::Redis70, &[]);
    let v81 = Server::start(Build::Valkey81, &[]);
    let at = populate_field_ttls(&mut v91.conn(), 5);
    redis::cmd("SET").arg("src:plain").arg("x").query::<()>(&mut v91.conn()).unwrap();
    let src = v91.psor();

    // Valkey 9 → Valkey 9: as it is, every field's absolute expiry exact.
    let out = copy_to(&src, &other_v91.psor(), "c:", &engine());
    assert_eq!((out.counts.done, out.paths.restore, out.paths.transcoded), (6, 6, 0));
    assert_eq!(field_expiries(&mut other_v91.conn(), "c:hfe:3"), vec![at, at + 3_600_000, -1]);

    // Valkey 9 → Redis 7.0: refused before anything is written, naming how many and the first.
    let err = engine::copy(
        &src,
        Some(&r70.psor()),
        &CopyOptions {
            from: prefix("src:"),
            to: prefix("c:"),
            replace: false,
            move_keys: false,
            dry_run: false,
            sample: 0,
        },
        &engine(),
        Arc::new(Progress::new()),
    )
    .unwrap_err();
    assert!(
        matches!(&err, psor_core::Error::Refused(m) if m.contains("5 keys") && m.contains("src:hfe:") && m.contains("--drop-field-ttls")),
        "{err}"
    );
    assert_eq!(dbsize(&r70), 0);
    // …unless the fields' expiries may go: every field arrives, without expiry, and is counted.
    let drop = EngineOptions { drop_field_ttls: true, ..engine() };
    let out = copy_to(&src, &r70.psor(), "c:", &drop);
    assert_eq!((out.counts.done, out.counts.failed, out.paths.field_ttls_dropped), (6, 0, 5), "{out:?}");
    let h: BTreeMap<String, String> = redis::cmd("HGETALL").arg("c:hfe:0").query(&mut r70.conn()).unwrap();
    assert_eq!(h.len(), 3);

    // A snapshot: into Valkey 8.1 refused the same way, then with the flag restored.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v91.psnap");
    export(&src, &path);
    let err = import(&v81.psor(), &path, "i:").unwrap_err();
    assert!(
        matches!(&err, snapshot::Error::Refused(m) if m.contains("5 keys") && m.contains("field expirations")),
        "{err}"
    );
    assert_eq!(dbsize(&v81), 0);
    let opts = ImportOptions {
        path: path.clone(),
        rename: Some(Rename { from: prefix("src:"), to: prefix("i:") }),
        replace: false,
        dry_run: false,
        sample: 0,
    };
    let out = snapshot::import(&v81.psor(), &opts, &drop, Arc::new(Progress::new())).unwrap();
    assert_eq!((out.counts.done, out.paths.field_ttls_dropped, out.paths.transcoded), (6, 5, 6));

    // The embedded store reads them and keeps them: file: → Valkey 9 has the same expiries.
    let store = dir.path().join("store.psnap");
    let file =
        Psor::connect(&PsorSpec::parse(&format!("file:{}", store.display())).unwrap(), &ConnectOptions::default())
            .unwrap();
    import(&file, &path, "src:").unwrap();
    // …and takes them by copy too.
    let out = copy_to(&src, &file, "k:", &engine());
    assert_eq!((out.counts.done, out.paths.restore), (6, 6), "{out:?}");
    let out = copy_to(&file, &other_v91.psor(), "f:", &engine());
    assert_eq!(out.counts.done, 6);
    assert_eq!(field_expiries(&mut other_v91.conn(), "f:hfe:4"), vec![at, at + 3_600_000, -1]);
}

/// A snapshot of one record per `(key, payload)`, as if exported from Valkey 9.1.
fn handmade(path: &Path, records: &[(&str, Vec<u8>)]) {
    handmade_from(path, "7.2.4", records)
}

/// A snapshot of one record per `(key, payload)`, as if exported from a server that reported
/// `server_version`.
fn handmade_from(path: &Path, server_version: &str, records: &[(&str, Vec<u8>)]) {
    use psor_formats::{Header, KeyKind, Record, Selection, SnapshotWriter, Source};
    let header = Header::new(
        0,
        Source {
            server_version: server_version.into(),
            spec: "redis://x:1".into(),
            selection: Selection::Prefix(b"src:".to_vec()),
        },
    );
    let mut w = SnapshotWriter::new(std::fs::File::create(path).unwrap(), &header).unwrap();
    for (key, payload) in records {
        let rdb_version = psor_formats::dump_rdb_version(payload).unwrap();
        w.push(&Record {
            key: key.as_bytes().to_vec(),
            kind: KeyKind::Other,
            expire_at_ms: None,
            rdb_version,
            payload: payload.clone(),
        })
        .unwrap();
    }
    w.finish().unwrap();
}

/// `body` with an RDB-version footer and a correct CRC-64/Redis.
fn with_footer(body: &[u8], version: u16) -> Vec<u8> {
    // The CRC is checked by every server; compute it as they do (crc64 Jones, reflected).
    let mut out = body.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    let mut crc: u64 = 0;
    for &b in &out {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x95ac_9329_ac4b_c9b5 } else { crc >> 1 };
        }
    }
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn payloads_psor_cannot_decode_are_refused_before_writing_naming_the_key_and_what_it_is() {
    if !all_installed() {
        return;
    }
    let v91 = Server::start(Build::Valkey91, &[]);
    let r70 = Server::start(Build::Redis70, &[]);
    let string: Vec<u8> = {
        let mut c = v91.conn();
        redis::cmd("SET").arg("probe").arg("hello").query::<()>(&mut c).unwrap();
        redis::cmd("DUMP").arg("probe").query(&mut c).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    for (what, bad) in [
        ("module", with_footer(b"\x07\x81\x00\x00\x00\x00\x00\x00\x00\x00\x00", 80)),
        ("unknown RDB type 30", with_footer(b"\x1e\x01\x01x", 80)),
        ("corrupt", with_footer(b"\x10\x05\xff\xff\xff\xff\xff", 80)),
    ] {
        let path = dir.path().join(format!("{}.psnap", what.len()));
        handmade(&path, &[("src:good", string.clone()), ("src:bad", bad)]);
        let err = import(&r70.psor(), &path, "i:").unwrap_err();
        assert!(
            matches!(&err, snapshot::Error::Refused(m) if m.contains("src:bad") && m.contains(what.split(' ').next().unwrap())),
            "{what}: {err}"
        );
        assert_eq!(dbsize(&r70), 0, "{what}: nothing written");
    }
}

#[test]
fn values_bigger_than_the_targets_proto_max_bulk_len_are_rebuilt_in_chunks() {
    if !all_installed() {
        return;
    }
    let src = Server::start(Build::Redis70, &[]);
    let dst = Server::start(Build::Valkey91, &[("proto-max-bulk-len", "1mb")]);
    let mut con = src.conn();
    // 20 MB per key: one string, and 200 elements of 100 KB in each collection type.
    // Incompressible bytes (xorshift), or LZF would shrink the payloads below the limit.
    let noise = |seed: u64, n: usize| -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let elem = |i: usize| noise(i as u64 + 1, 100_000);
    redis::cmd("SET").arg("src:string").arg(noise(0, 20_000_000)).query::<()>(&mut con).unwrap();
    for i in 0..200 {
        let mut p = redis::pipe();
        p.cmd("RPUSH").arg("src:list").arg(elem(i)).ignore();
        p.cmd("SADD").arg("src:set").arg(elem(i)).ignore();
        p.cmd("ZADD").arg("src:zset").arg(i as f64 / 3.0).arg(elem(i)).ignore();
        p.cmd("HSET").arg("src:hash").arg(format!("f{i}")).arg(elem(i)).ignore();
        p.query::<()>(&mut con).unwrap();
    }
    redis::cmd("PEXPIREAT").arg("src:zset").arg(4_102_444_800_777i64).query::<()>(&mut con).unwrap();
    let out = copy_to(&src.psor(), &dst.psor(), "c:", &engine());
    assert_eq!((out.counts.done, out.counts.failed, out.paths.rebuilt), (4, 1, 4), "{out:?}");
    // A string longer than proto-max-bulk-len cannot exist there (APPEND refuses to grow it):
    // that key fails, named, with why; nothing of it is written.
    assert!(
        matches!(&out.failures[..], [f] if f.key == "src:string" && f.error.contains("proto-max-bulk-len")),
        "{:?}",
        out.failures
    );
    // Nothing but the four keys: no temporary key left behind.
    assert_eq!(dbsize(&dst), 4);
    let mut want = digest(&src, "src:");
    want.remove(&b"string"[..]);
    assert_same("rebuilt", &want, &digest(&dst, "c:"), true);
    // A rerun finds it the same (content and expiry): unchanged, not a conflict. One key: the
    // reads for the comparison cost as much as the copy.
    let co = CopyOptions {
        from: prefix("src:zset"),
        to: prefix("c:zset"),
        replace: false,
        move_keys: false,
        dry_run: false,
        sample: 0,
    };
    let again = engine::copy(&src.psor(), Some(&dst.psor()), &co, &engine(), Arc::new(Progress::new())).unwrap();
    assert_eq!((again.counts.unchanged, again.counts.conflicts), (1, 0), "{again:?}");

    // The same through a snapshot: import rebuilds them too; a rerun finds them unchanged.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.psnap");
    export(&src.psor(), &path);
    let out = import(&dst.psor(), &path, "i:").unwrap();
    assert_eq!((out.counts.done, out.counts.failed, out.paths.rebuilt), (4, 1, 4), "{out:?}");
    assert!(matches!(&out.failures[..], [f] if f.key == "i:string" && f.error.contains("proto-max-bulk-len")));
    assert_same("imported", &want, &digest(&dst, "i:"), true);
    let again = import(&dst.psor(), &path, "i:").unwrap();
    assert_eq!((again.counts.unchanged, again.counts.conflicts, again.counts.failed), (4, 0, 1), "{again:?}");
    assert_eq!(dbsize(&dst), 8);
}

#[test]
fn valkey_9_to_a_redis_7_0_cluster_with_a_small_proto_max_bulk_len() {
    if !all_installed() {
        return;
    }
    let src = Server::start(Build::Valkey91, &[]);
    let cluster = psor_tests::RedisCluster::start_on(ServerKind::Redis70, 3, 0);
    for m in cluster.masters() {
        redis::cmd("CONFIG").arg("SET").arg("proto-max-bulk-len").arg("1mb").query::<()>(&mut m.admin_conn()).unwrap();
    }
    let mut con = src.conn();
    populate_all_types(&mut con, b"src:", 90);
    // A 12 MB list on each of a few slots (with and without a hash tag): rebuilt in chunks in a
    // temporary key of the target key's slot, then renamed there (RENAME is single-slot).
    for key in ["src:big:1", "src:{tag}:big", "src:big:zz"] {
        for i in 0..120u32 {
            let v: Vec<u8> =
                (0..100_000u32).map(|j| (j.wrapping_mul(2_654_435_761).wrapping_add(i) >> 13) as u8).collect();
            redis::cmd("RPUSH").arg(key).arg(v).query::<()>(&mut con).unwrap();
        }
    }
    let target = Psor::connect(&PsorSpec::parse(&cluster.url()).unwrap(), &ConnectOptions::default()).unwrap();
    let out = copy_to(&src.psor(), &target, "c:", &engine());
    assert_eq!((out.counts.done, out.counts.failed, out.paths.rebuilt), (93, 0, 3), "{out:?}");
    assert_eq!(out.paths.transcoded, 90, "{out:?}");
    let want: BTreeMap<Vec<u8>, psor_tests::KeyState> = psor_tests::keyspace_digest(&mut src.conn(), b"src:")
        .into_iter()
        .map(|(k, v)| ([b"c:".as_slice(), &k[4..]].concat(), v))
        .collect();
    let got = psor_tests::keyspace_digest_cluster(&cluster, b"c:");
    assert_eq!(want.len(), got.len());
    assert!(want == got, "the cluster holds other content than the source");
    // No temporary key left on any master.
    let total: u64 =
        cluster.masters().iter().map(|m| redis::cmd("DBSIZE").query::<u64>(&mut m.admin_conn()).unwrap()).sum();
    assert_eq!(total, 93);
}

/// `XINFO STREAM key FULL COUNT 0` as comparable text: the entries, last id, consumer groups
/// with their last-delivered ids, pending entries (id, consumer, delivery time and count) and
/// consumers with theirs; with `counters`, also the max deleted id, entries added and each
/// group's entries read (Redis 7.0+). Left out: what no command can set (consumers' seen and
/// active times) and what the server derives (lag, first entry).
fn xinfo_full(server: &Server, key: &str, counters: bool) -> String {
    let v: Value =
        redis::cmd("XINFO").arg("STREAM").arg(key).arg("FULL").arg("COUNT").arg(0).query(&mut server.conn()).unwrap();
    fn pairs(v: &Value) -> Vec<(String, &Value)> {
        match v {
            Value::Array(a) => a.chunks(2).map(|c| (flat(&c[0]).trim_matches('"').to_string(), &c[1])).collect(),
            Value::Map(m) => m.iter().map(|(k, v)| (flat(k).trim_matches('"').to_string(), v)).collect(),
            other => panic!("XINFO reply {other:?}"),
        }
    }
    let list = |v: &Value| -> Vec<Value> {
        match v {
            Value::Array(a) => a.clone(),
            other => panic!("{other:?}"),
        }
    };
    let mut out = Vec::new();
    let mut top = vec!["length", "last-generated-id", "entries"];
    if counters {
        top.extend(["max-deleted-entry-id", "entries-added"]);
    }
    for (name, value) in pairs(&v) {
        if top.contains(&name.as_str()) {
            out.push(format!("{name}={}", flat(value)));
        } else if name == "groups" {
            for g in list(value) {
                let mut keep = vec!["name", "last-delivered-id", "pel-count", "pending"];
                if counters {
                    keep.push("entries-read");
                }
                for (gname, gv) in pairs(&g) {
                    if keep.contains(&gname.as_str()) {
                        out.push(format!("group.{gname}={}", flat(gv)));
                    } else if gname == "consumers" {
                        for c in list(gv) {
                            for (cname, cv) in pairs(&c) {
                                if ["name", "pel-count", "pending"].contains(&cname.as_str()) {
                                    out.push(format!("consumer.{cname}={}", flat(cv)));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out.join("\n")
}

#[test]
fn streams_bigger_than_the_targets_proto_max_bulk_len_are_rebuilt_with_groups_and_pending_entries() {
    if !all_installed() {
        return;
    }
    let src = Server::start(Build::Valkey91, &[]);
    let mut con = src.conn();
    // Incompressible 100 KB values (xorshift), 200 entries: a 20 MB stream.
    let noise = |seed: u64| -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let key = "src:stream";
    for i in 1..=200u64 {
        let mut add = redis::cmd("XADD");
        add.arg(key).arg(format!("1000-{i}")).arg("v").arg(noise(i));
        if i % 7 == 0 {
            // Entries with other fields than the first (not the node's master fields).
            add.arg("extra").arg(i);
        }
        add.query::<()>(&mut con).unwrap();
    }
    let run = |con: &mut redis::Connection, args: &[&str]| {
        let mut c = redis::cmd(args[0]);
        args[1..].iter().for_each(|a| {
            c.arg(*a);
        });
        c.query::<Value>(con).unwrap();
    };
    run(&mut con, &["XDEL", key, "1000-1"]);
    run(&mut con, &["XGROUP", "CREATE", key, "g1", "0"]);
    run(&mut con, &["XGROUP", "CREATE", key, "g2", "1000-100"]);
    run(&mut con, &["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "3", "STREAMS", key, ">"]);
    run(&mut con, &["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "2", "STREAMS", key, ">"]);
    // Delivered again: bob's first pending entry has a delivery count of 2.
    run(&mut con, &["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "1", "STREAMS", key, "0"]);
    run(&mut con, &["XGROUP", "CREATECONSUMER", key, "g2", "carol"]);
    run(&mut con, &["XREADGROUP", "GROUP", "g2", "dave", "COUNT", "2", "STREAMS", key, ">"]);
    // A pending entry deleted from the stream stays in alice's PEL.
    run(&mut con, &["XDEL", key, "1000-3"]);
    // The last entry deleted: the last id stays past the last entry.
    run(&mut con, &["XADD", key, "2000-1", "v", "last"]);
    run(&mut con, &["XDEL", key, "2000-1"]);
    run(&mut con, &["PEXPIREAT", key, "4102444800777"]);
    let want = xinfo_full(&src, key, true);
    assert!(want.contains("1000-3") && want.contains("\"bob\""), "{want}");

    for build in [Build::Redis70, Build::Redis62] {
        let dst = Server::start(build, &[("proto-max-bulk-len", "1mb")]);
        let counters = build != Build::Redis62;
        let out = copy_to(&src.psor(), &dst.psor(), "c:", &engine());
        assert_eq!((out.counts.done, out.counts.failed, out.paths.rebuilt), (1, 0, 1), "{build:?}: {out:?}");
        assert_eq!(dbsize(&dst), 1, "{build:?}: no temporary key left");
        let want = xinfo_full(&src, key, counters);
        assert_eq!(want, xinfo_full(&dst, "c:stream", counters), "{build:?}");
        assert_same(&format!("{build:?}"), &digest(&src, "src:"), &digest(&dst, "c:"), build.abs_ttl());
        if build == Build::Redis70 {
            // The same through a snapshot: import rebuilds it too.
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("stream.psnap");
            export(&src.psor(), &path);
            let out = import(&dst.psor(), &path, "i:").unwrap();
            assert_eq!((out.counts.done, out.counts.failed, out.paths.rebuilt), (1, 0, 1), "{out:?}");
            assert_eq!(want, xinfo_full(&dst, "i:stream", counters));
            assert_eq!(dbsize(&dst), 2);
            // Imported again over the rebuilt stream (other DUMP bytes, the same stream):
            // already there; and verify --snapshot finds it the same.
            let out = import(&dst.psor(), &path, "i:").unwrap();
            assert_eq!((out.counts.unchanged, out.counts.conflicts, out.counts.failed), (1, 0, 0), "{out:?}");
            let out = verify_file(&dst.psor(), &path, "i:");
            assert!(out.is_same() && out.counts.same == 1, "{out:?}");
            // One pending entry acknowledged: a conflict, and a content difference, naming it.
            redis::cmd("XACK").arg("i:stream").arg("g1").arg("1000-2").query::<i64>(&mut dst.conn()).unwrap();
            let out = import(&dst.psor(), &path, "i:").unwrap();
            assert_eq!((out.counts.unchanged, out.counts.conflicts), (0, 1), "{out:?}");
            assert_eq!(out.conflict_keys, vec!["i:stream".to_string()]);
            let out = verify_file(&dst.psor(), &path, "i:");
            assert_eq!((out.counts.content, out.counts.differences()), (1, 1), "{out:?}");
            assert_eq!(dbsize(&dst), 2, "no scratch key left");
        }
    }
}

/// `XINFO GROUPS` of `key`: group name → entries-read (`None`: nil).
fn entries_read(server: &Server, key: &str) -> BTreeMap<String, Option<i64>> {
    let groups: Vec<Value> = redis::cmd("XINFO").arg("GROUPS").arg(key).query(&mut server.conn()).unwrap();
    groups
        .iter()
        .map(|g| {
            let Value::Array(kv) = g else { panic!("{g:?}") };
            let get = |name: &str| kv.chunks(2).find(|c| flat(&c[0]).contains(name)).map(|c| c[1].clone());
            let read = match get("entries-read") {
                Some(Value::Int(n)) => Some(n),
                _ => None,
            };
            (flat(&get("name").unwrap()).trim_matches('"').to_string(), read)
        })
        .collect()
}

fn verify_file(live: &Psor, path: &Path, live_prefix: &str) -> psor_core::verify::VerifyOutcome {
    let o = psor_core::verify::VerifyOptions {
        recheck_delay: Duration::from_millis(20),
        ..psor_core::verify::VerifyOptions::new(prefix(live_prefix), prefix("src:"))
    };
    psor_core::verify::verify_snapshot(live, path, &o, &engine(), Arc::new(Progress::new())).unwrap()
}

#[test]
fn a_transcoded_stream_is_the_same_stream_to_import_and_verify_and_a_changed_one_is_not() {
    if !all_installed() {
        return;
    }
    use psor_core::verify::Kind;
    let src = Server::start(Build::Valkey91, &[]);
    let dst = Server::start(Build::Redis70, &[]);
    let mut con = src.conn();
    let run = |con: &mut redis::Connection, args: &[&str]| {
        let mut c = redis::cmd(args[0]);
        args[1..].iter().for_each(|a| {
            c.arg(*a);
        });
        c.query::<Value>(con).unwrap();
    };
    let key = "src:s";
    for i in 1..=20 {
        run(&mut con, &["XADD", key, &format!("1-{i}"), "n", &i.to_string(), "f", "v"]);
    }
    run(&mut con, &["XDEL", key, "1-5"]);
    run(&mut con, &["XGROUP", "CREATE", key, "g1", "0"]);
    run(&mut con, &["XGROUP", "CREATE", key, "g2", "1-10"]);
    run(&mut con, &["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "3", "STREAMS", key, ">"]);
    run(&mut con, &["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "2", "STREAMS", key, ">"]);
    run(&mut con, &["XGROUP", "CREATECONSUMER", key, "g2", "carol"]);
    // The last id stays past the last entry.
    run(&mut con, &["XADD", key, "5-1", "n", "last"]);
    run(&mut con, &["XDEL", key, "5-1"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v91-stream.psnap");
    export(&src.psor(), &path);
    let (target, mut dcon) = (dst.psor(), dst.conn());
    for to in ["same:", "entry:", "group:", "pel:"] {
        let out = copy_to(&src.psor(), &target, to, &engine());
        assert_eq!((out.counts.done, out.paths.transcoded), (1, 1), "{to} {out:?}");
    }
    // One entry less; g1's last-delivered id moved (entries-read kept as it was); one pending
    // entry acknowledged.
    run(&mut dcon, &["XDEL", "entry:s", "1-7"]);
    // Without ENTRIESREAD, SETID makes it unknown (nil): given again where it is known.
    let mut setid = vec!["XGROUP", "SETID", "group:s", "g1", "1-4"];
    let read = entries_read(&dst, "group:s")["g1"].map(|n| n.to_string());
    if let Some(n) = &read {
        setid.extend(["ENTRIESREAD", n.as_str()]);
    }
    run(&mut dcon, &setid);
    assert_eq!(entries_read(&dst, "group:s"), entries_read(&dst, "same:s"));
    run(&mut dcon, &["XACK", "pel:s", "g1", "1-2"]);

    for dry_run in [true, false] {
        for to in ["same:", "entry:", "group:", "pel:"] {
            let opts = ImportOptions {
                path: path.clone(),
                rename: Some(Rename { from: prefix("src:"), to: prefix(to) }),
                replace: false,
                dry_run,
                sample: 0,
            };
            let out = snapshot::import(&target, &opts, &engine(), Arc::new(Progress::new())).unwrap();
            let what = format!("{to} dry_run={dry_run}: {out:?}");
            if to == "same:" {
                assert_eq!((out.counts.unchanged, out.counts.conflicts, out.counts.done), (1, 0, 0), "{what}");
            } else {
                assert_eq!((out.counts.unchanged, out.counts.conflicts), (0, 1), "{what}");
                assert_eq!(out.conflict_keys, vec![format!("{to}s")], "{what}");
            }
        }
    }
    // verify --snapshot: the Valkey 9.1 snapshot against its Redis 7.0 copies.
    let out = verify_file(&target, &path, "same:");
    assert!(out.is_same() && out.counts.same == 1, "{out:?}");
    for to in ["entry:", "group:", "pel:"] {
        let out = verify_file(&target, &path, to);
        assert_eq!((out.counts.same, out.counts.content, out.counts.differences()), (0, 1, 1), "{to}: {out:?}");
        let named: Vec<_> = out.differences.iter().filter(|d| d.kind == Kind::Content).map(|d| d.key.clone()).collect();
        assert_eq!(named, vec![format!("{to}s")], "{to}");
    }
}

/// A DUMP payload Redis 8.0.2 made (tests/fixtures/rdb/redis-8.0.2, by
/// scripts/make-rdb-fixtures.sh), and what that server replied for the key (the JSON beside it).
fn redis_8_fixture(name: &str) -> (Vec<u8>, serde_json::Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rdb/redis-8.0.2");
    let hex = std::fs::read_to_string(dir.join(format!("{name}.hex"))).unwrap();
    let hex = hex.trim();
    let payload = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let json = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    (payload, json)
}

/// Each field's value and absolute expiry (-1: none) on `server`, against what Redis 8 replied.
fn assert_fields_as_redis_8(server: &Server, key: &str, want: &serde_json::Value, with_expiry: bool) {
    let mut con = server.conn();
    let values = want["value"].as_object().unwrap();
    let got: BTreeMap<String, String> = redis::cmd("HGETALL").arg(key).query(&mut con).unwrap();
    let expected: BTreeMap<String, String> =
        values.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    assert_eq!(got, expected, "{key}");
    if with_expiry {
        let fields: Vec<&String> = values.keys().collect();
        let at: Vec<i64> =
            redis::cmd("HPEXPIRETIME").arg(key).arg("FIELDS").arg(fields.len()).arg(&fields).query(&mut con).unwrap();
        let expected: Vec<i64> = fields
            .iter()
            .map(|f| want["field_expiry_ms"].get(f.as_str()).map_or(-1, |v| v.as_i64().unwrap()))
            .collect();
        assert_eq!(at, expected, "{key}");
    }
}

#[test]
fn redis_8_payloads_import_into_valkey_9_with_field_expiries_and_elsewhere_only_without() {
    if !all_installed() {
        return;
    }
    let names =
        ["hash_lpex", "hash_meta", "hash_lpex_persisted", "string", "list", "intset", "set", "zset", "hash", "stream"];
    let fixtures: Vec<(Vec<u8>, serde_json::Value)> = names.iter().map(|n| redis_8_fixture(n)).collect();
    let records: Vec<(String, Vec<u8>)> =
        names.iter().zip(&fixtures).map(|(n, (p, _))| (format!("src:{n}"), p.clone())).collect();
    let records: Vec<(&str, Vec<u8>)> = records.iter().map(|(k, p)| (k.as_str(), p.clone())).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("redis-8.psnap");
    handmade_from(&path, "8.0.2", &records);
    let hashes = |server: &Server, to: &str, with_expiry: bool| {
        for (n, (_, want)) in names.iter().zip(&fixtures).filter(|(_, (_, w))| w["type"] == "hash") {
            assert_fields_as_redis_8(server, &format!("{to}{n}"), want, with_expiry);
        }
    };

    // Valkey 9.1 refuses RDB 12 payloads: all transcoded, the hashes into its own type 22 with
    // every field's absolute expiry.
    let v91 = Server::start(Build::Valkey91, &[]);
    let out = import(&v91.psor(), &path, "i:").unwrap();
    assert_eq!((out.counts.done, out.counts.failed, out.paths.transcoded), (10, 0, 10), "{out:?}");
    assert_eq!(out.paths.field_ttls_dropped, 0);
    hashes(&v91, "i:", true);
    let entries: Value = redis::cmd("XRANGE").arg("i:stream").arg("-").arg("+").query(&mut v91.conn()).unwrap();
    assert_eq!(flat(&entries), r#"[["1-1",["f","v"]]]"#);

    // Redis 7.0 has no field expirations: refused before anything is written, unless dropped.
    let r70 = Server::start(Build::Redis70, &[]);
    let err = import(&r70.psor(), &path, "i:").unwrap_err();
    assert!(
        matches!(&err, snapshot::Error::Refused(m) if m.contains("src:hash_") && m.contains("--drop-field-ttls")),
        "{err}"
    );
    assert_eq!(dbsize(&r70), 0);
    let drop = EngineOptions { drop_field_ttls: true, ..engine() };
    let out = import_with(&r70.psor(), &path, "i:", &drop).unwrap();
    assert_eq!((out.counts.done, out.counts.failed, out.paths.field_ttls_dropped), (10, 0, 2), "{out:?}");
    hashes(&r70, "i:", false);

    // The embedded store keeps them as they are; from there to Valkey 9.1, expiries still exact.
    let store = dir.path().join("store.psnap");
    let file =
        Psor::connect(&PsorSpec::parse(&format!("file:{}", store.display())).unwrap(), &ConnectOptions::default())
            .unwrap();
    let out = import(&file, &path, "e:").unwrap();
    assert_eq!((out.counts.done, out.counts.failed, out.paths.restore), (10, 0, 10), "{out:?}");
    let co = CopyOptions {
        from: prefix("e:"),
        to: prefix("f:"),
        replace: false,
        move_keys: false,
        dry_run: false,
        sample: 0,
    };
    let out = engine::copy(&file, Some(&v91.psor()), &co, &engine(), Arc::new(Progress::new())).unwrap();
    assert_eq!((out.counts.done, out.counts.failed), (10, 0), "{out:?}");
    hashes(&v91, "f:", true);
}

#[test]
fn redis_8_field_expirations_cross_to_valkey_9_and_back_and_module_values_are_refused_before_writing() {
    if !all_installed() {
        return;
    }
    if !Build::Redis80.kind().is_installed() {
        eprintln!("skipped: redis-8.0 not installed (scripts/fetch-servers.sh fetches it)");
        return;
    }
    let r8 = Server::start(Build::Redis80, &[]);
    let v91 = Server::start(Build::Valkey91, &[]);
    let r70 = Server::start(Build::Redis70, &[]);
    // Three small hashes (Redis 8: listpack-ex, type 25) and a big one (hashtable, type 24).
    let at = populate_field_ttls(&mut r8.conn(), 3);
    let fields: Vec<(String, String)> = (0..300).map(|i| (format!("f{i}"), format!("v{i}"))).collect();
    redis::cmd("HSET").arg("src:hfe:big").arg(&fields).query::<()>(&mut r8.conn()).unwrap();
    redis::cmd("HPEXPIREAT")
        .arg("src:hfe:big")
        .arg(at + 7)
        .arg("FIELDS")
        .arg(2)
        .arg(&["f7", "f299"])
        .query::<()>(&mut r8.conn())
        .unwrap();
    redis::cmd("SET").arg("src:plain").arg("x").query::<()>(&mut r8.conn()).unwrap();
    let big_expiries = |s: &Server, key: &str| -> Vec<i64> {
        redis::cmd("HPEXPIRETIME")
            .arg(key)
            .arg("FIELDS")
            .arg(3)
            .arg(&["f7", "f8", "f299"])
            .query(&mut s.conn())
            .unwrap()
    };

    // Redis 8 → Valkey 9.1: transcoded into Valkey's type 22, every field's absolute expiry kept.
    let out = copy_to(&r8.psor(), &v91.psor(), "c:", &engine());
    assert_eq!((out.counts.done, out.counts.failed, out.paths.transcoded), (5, 0, 5), "{out:?}");
    assert_eq!(field_expiries(&mut v91.conn(), "c:hfe:2"), vec![at, at + 3_600_000, -1]);
    assert_eq!(big_expiries(&v91, "c:hfe:big"), vec![at + 7, -1, at + 7]);
    assert_same("redis 8 → valkey 9.1", &digest(&r8, "src:"), &digest(&v91, "c:"), true);

    // Valkey 9.1 → Redis 8: type 22 into Redis's type 24, expiries kept.
    let back = Server::start(Build::Redis80, &[]);
    let co = CopyOptions {
        from: prefix("c:"),
        to: prefix("b:"),
        replace: false,
        move_keys: false,
        dry_run: false,
        sample: 0,
    };
    let out = engine::copy(&v91.psor(), Some(&back.psor()), &co, &engine(), Arc::new(Progress::new())).unwrap();
    assert_eq!((out.counts.done, out.counts.failed, out.paths.transcoded), (5, 0, 5), "{out:?}");
    assert_eq!(field_expiries(&mut back.conn(), "b:hfe:0"), vec![at, at + 3_600_000, -1]);
    assert_eq!(big_expiries(&back, "b:hfe:big"), vec![at + 7, -1, at + 7]);

    // Redis 8 → Redis 7.0: refused before anything is written (Redis 8 counts them as
    // `subexpiry` in INFO keyspace), unless the fields' expiries may go.
    let co = CopyOptions {
        from: prefix("src:"),
        to: prefix("c:"),
        replace: false,
        move_keys: false,
        dry_run: false,
        sample: 0,
    };
    let err = engine::copy(&r8.psor(), Some(&r70.psor()), &co, &engine(), Arc::new(Progress::new())).unwrap_err();
    assert!(
        matches!(&err, psor_core::Error::Refused(m) if m.contains("4 keys") && m.contains("--drop-field-ttls")),
        "{err}"
    );
    assert_eq!(dbsize(&r70), 0);

    // A module value (Redis 8's built-in vector sets): psor cannot transcode it, so a copy that
    // must transcode is refused before anything is written, naming the key and the count.
    redis::cmd("VADD")
        .arg("src:vec")
        .arg("VALUES")
        .arg(3)
        .arg(&["0.1", "0.2", "0.3"])
        .arg("a")
        .query::<Value>(&mut r8.conn())
        .unwrap();
    let drop = EngineOptions { drop_field_ttls: true, ..engine() };
    for (target, name) in [(&r70, "Redis 7.0"), (&v91, "Valkey 9.1")] {
        let co = CopyOptions {
            from: prefix("src:"),
            to: prefix("m:"),
            replace: false,
            move_keys: false,
            dry_run: false,
            sample: 0,
        };
        let err = engine::copy(&r8.psor(), Some(&target.psor()), &co, &drop, Arc::new(Progress::new())).unwrap_err();
        assert!(
            matches!(&err, psor_core::Error::Refused(m) if m.contains("1 keys hold module values") && m.contains("src:vec") && m.contains("vectorset")),
            "{name}: {err}"
        );
    }
    assert_eq!(dbsize(&r70), 0);
    assert_eq!(dbsize(&v91), 5, "only the first copy's keys");
    // Between two Redis 8 servers the payload goes as it is: no pre-pass, no refusal.
    let other = Server::start(Build::Redis80, &[]);
    let out = copy_to(&r8.psor(), &other.psor(), "c:", &engine());
    assert_eq!((out.counts.done, out.counts.failed, out.paths.restore), (6, 0, 6), "{out:?}");
    let card: i64 = redis::cmd("VCARD").arg("c:vec").query(&mut other.conn()).unwrap();
    assert_eq!(card, 1);
}
