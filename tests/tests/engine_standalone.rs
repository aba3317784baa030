//! The engine on one real redis-server: delete, copy and move under a prefix touch exactly
//! the keys asked for, every type arrives identical, and TTLs are kept to the millisecond.

use std::collections::BTreeMap;
use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::{self, CopyOptions, DeleteOptions, EngineOptions, Outcome};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_core::Error;
use psor_tests::{keyspace_digest, populate_all_types, unique_prefix, KeyState, RedisServer};

fn connect(server: &RedisServer) -> Psor {
    Psor::connect(&PsorSpec::parse(&server.url()).unwrap(), &ConnectOptions::default()).unwrap()
}

/// Small batches so that even small tests go through many pipelines and several writers.
fn small_batches() -> EngineOptions {
    EngineOptions { scan_count: 50, batch_size: 37, writers: 3, ..EngineOptions::default() }
}

fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::new(s.as_bytes()).unwrap()
}

fn delete(psor: &Psor, p: &str, dry_run: bool) -> Outcome {
    let opts = DeleteOptions { prefix: prefix(p), dry_run, sample: 5 };
    engine::delete(psor, &opts, &small_batches(), Arc::new(Progress::new())).unwrap()
}

fn copy_opts(from: &str, to: &str) -> CopyOptions {
    CopyOptions { from: prefix(from), to: prefix(to), replace: false, move_keys: false, dry_run: false, sample: 5 }
}

fn copy(source: &Psor, target: Option<&Psor>, opts: &CopyOptions) -> Outcome {
    engine::copy(source, target, opts, &small_batches(), Arc::new(Progress::new())).unwrap()
}

/// The digest of `from` with every key renamed to start with `to` instead.
fn renamed(d: &BTreeMap<Vec<u8>, KeyState>, from: &str, to: &str) -> BTreeMap<Vec<u8>, KeyState> {
    d.iter()
        .map(|(k, v)| {
            let mut nk = to.as_bytes().to_vec();
            nk.extend_from_slice(&k[from.len()..]);
            (nk, v.clone())
        })
        .collect()
}

/// Writes keys under the PAC-like prefixes that sit next to `<ns>MyPAC_8.0:` and returns
/// the namespace. `MyPAC_8.01:`, `MyPAC_8.0` itself and `MyPAC_8.0;` must never be touched.
fn neighbourhood(conn: &mut redis::Connection, ns: &str, n: usize) {
    let neighbours: Vec<String> = ["MyPAC_8.01:", "MyPAC_8.0", "MyPAC_8.0;", "MyPAC_8.", "MyPAC2_8.0:", "myPAC_8.0:"]
        .iter()
        .map(|s| format!("{ns}{s}"))
        .collect();
    for nb in &neighbours {
        populate_all_types(conn, nb.as_bytes(), n);
    }
}

/// Every key of the test's namespace except those under `excluded`, by content.
fn outside(conn: &mut redis::Connection, ns: &str, excluded: &[&str]) -> BTreeMap<Vec<u8>, KeyState> {
    let mut d = keyspace_digest(conn, ns.as_bytes());
    d.retain(|k, _| !excluded.iter().any(|e| k.starts_with(e.as_bytes())));
    d
}

#[test]
fn delete_removes_the_prefix_and_nothing_next_to_it() {
    let server = RedisServer::start();
    let mut conn = server.admin_conn();
    let ns = unique_prefix("delete");
    let target = format!("{ns}MyPAC_8.0:");
    populate_all_types(&mut conn, target.as_bytes(), 500);
    neighbourhood(&mut conn, &ns, 30);
    // The exact key `MyPAC_8.0` (no colon) must survive too.
    let _: () = redis::cmd("SET").arg(format!("{ns}MyPAC_8.0")).arg("pac record").query(&mut conn).unwrap();
    let before = outside(&mut conn, &ns, &[&target]);
    assert!(before.len() > 6 * 30, "the neighbourhood is populated");

    let psor = connect(&server);
    let dry = delete(&psor, &target, true);
    assert!(dry.dry_run);
    assert_eq!((dry.counts.matched, dry.counts.done), (500, 500));
    assert_eq!(dry.sample.len(), 5);
    assert_eq!(keyspace_digest(&mut conn, target.as_bytes()).len(), 500, "a dry run wrote something");

    let out = delete(&psor, &target, false);
    assert_eq!((out.counts.matched, out.counts.done, out.counts.failed), (500, 500, 0));
    assert!(keyspace_digest(&mut conn, target.as_bytes()).is_empty());
    assert_eq!(keyspace_digest(&mut conn, ns.as_bytes()), before, "a key outside the prefix changed");
    let pac: Option<String> = redis::cmd("GET").arg(format!("{ns}MyPAC_8.0")).query(&mut conn).unwrap();
    assert_eq!(pac.as_deref(), Some("pac record"));
}

#[test]
fn delete_of_an_absent_prefix_is_a_clean_zero() {
    let server = RedisServer::start();
    let psor = connect(&server);
    let out = delete(&psor, "nothing-here:", false);
    assert_eq!((out.counts.matched, out.counts.done, out.counts.failed), (0, 0, 0));
}

#[test]
fn copy_on_one_server_keeps_every_type_and_expiry() {
    let server = RedisServer::start();
    let mut conn = server.admin_conn();
    let ns = unique_prefix("copy-same");
    let (from, to) = (format!("{ns}MyPAC_8.0:"), format!("{ns}MyPAC_9.0:"));
    populate_all_types(&mut conn, from.as_bytes(), 300);
    neighbourhood(&mut conn, &ns, 12);
    let before = outside(&mut conn, &ns, &[&to]);
    let original = keyspace_digest(&mut conn, from.as_bytes());

    let psor = connect(&server);
    let out = copy(&psor, None, &copy_opts(&from, &to));
    assert_eq!((out.counts.matched, out.counts.done, out.counts.conflicts, out.counts.failed), (300, 300, 0, 0));
    assert_eq!(keyspace_digest(&mut conn, to.as_bytes()), renamed(&original, &from, &to));
    assert_eq!(keyspace_digest(&mut conn, from.as_bytes()), original, "the source changed");
    assert_eq!(outside(&mut conn, &ns, &[&to]), before, "a key outside the target prefix changed");
    assert!(original.values().any(|s| s.expire_at_ms.is_some()), "the fixture has TTLs");

    // A rerun finds everything already identical: nothing copied, nothing in conflict.
    let again = copy(&psor, None, &copy_opts(&from, &to));
    assert_eq!((again.counts.done, again.counts.unchanged, again.counts.conflicts), (0, 300, 0));
}

#[test]
fn copy_to_another_server_uses_absolute_expiry() {
    let (a, b) = (RedisServer::start(), RedisServer::start());
    let (mut ca, mut cb) = (a.admin_conn(), b.admin_conn());
    let ns = unique_prefix("copy-cross");
    let (from, to) = (format!("{ns}old:"), format!("{ns}new:"));
    populate_all_types(&mut ca, from.as_bytes(), 240);
    // A key that expires soon: its absolute expiry must arrive unchanged.
    let soon = format!("{from}soon");
    let _: () = redis::cmd("SET").arg(&soon).arg("x").arg("PX").arg(60_000).query(&mut ca).unwrap();
    let original = keyspace_digest(&mut ca, from.as_bytes());

    let (pa, pb) = (connect(&a), connect(&b));
    let out = copy(&pa, Some(&pb), &copy_opts(&from, &to));
    assert_eq!((out.counts.matched, out.counts.done, out.counts.failed), (241, 241, 0));
    assert_eq!(keyspace_digest(&mut cb, to.as_bytes()), renamed(&original, &from, &to));
    assert!(keyspace_digest(&mut ca, to.as_bytes()).is_empty(), "wrote to the source");

    let again = copy(&pa, Some(&pb), &copy_opts(&from, &to));
    assert_eq!((again.counts.done, again.counts.unchanged, again.counts.conflicts), (0, 241, 0));
}

#[test]
fn conflicts_are_left_alone_unless_replace() {
    for cross in [false, true] {
        let (a, b) = (RedisServer::start(), RedisServer::start());
        let ns = unique_prefix("conflict");
        let (from, to) = (format!("{ns}a:"), format!("{ns}b:"));
        let mut ca = a.admin_conn();
        populate_all_types(&mut ca, from.as_bytes(), 60);
        let target_server = if cross { &b } else { &a };
        let mut ct = target_server.admin_conn();
        let clash = format!("{to}{}", "theirs");
        let _: () = redis::cmd("SET").arg(format!("{from}theirs")).arg("mine").query(&mut ca).unwrap();
        let _: () = redis::cmd("SET").arg(&clash).arg("theirs").query(&mut ct).unwrap();

        let (pa, pt) = (connect(&a), connect(target_server));
        let target = cross.then_some(&pt);
        let out = copy(&pa, target, &copy_opts(&from, &to));
        assert_eq!((out.counts.matched, out.counts.done, out.counts.conflicts), (61, 60, 1), "cross={cross}");
        assert_eq!(out.conflict_keys.len(), 1);
        let v: String = redis::cmd("GET").arg(&clash).query(&mut ct).unwrap();
        assert_eq!(v, "theirs", "a conflict was overwritten (cross={cross})");

        let mut replace = copy_opts(&from, &to);
        replace.replace = true;
        let out = copy(&pa, target, &replace);
        assert_eq!((out.counts.conflicts, out.counts.failed), (0, 0));
        let v: String = redis::cmd("GET").arg(&clash).query(&mut ct).unwrap();
        assert_eq!(v, "mine", "--replace did not overwrite (cross={cross})");
    }
}

#[test]
fn move_deletes_sources_only_once_copied() {
    for cross in [false, true] {
        let (a, b) = (RedisServer::start(), RedisServer::start());
        let ns = unique_prefix("move");
        let (from, to) = (format!("{ns}a:"), format!("{ns}b:"));
        let mut ca = a.admin_conn();
        populate_all_types(&mut ca, from.as_bytes(), 90);
        let target_server = if cross { &b } else { &a };
        let mut ct = target_server.admin_conn();
        // One conflict: its source must stay.
        let _: () = redis::cmd("SET").arg(format!("{from}keep")).arg("mine").query(&mut ca).unwrap();
        let _: () = redis::cmd("SET").arg(format!("{to}keep")).arg("theirs").query(&mut ct).unwrap();
        let original = keyspace_digest(&mut ca, from.as_bytes());

        let (pa, pt) = (connect(&a), connect(target_server));
        let mut opts = copy_opts(&from, &to);
        opts.move_keys = true;
        let out = copy(&pa, cross.then_some(&pt), &opts);
        assert_eq!(
            (out.counts.matched, out.counts.done, out.counts.conflicts, out.counts.failed),
            (91, 90, 1, 0),
            "cross={cross}"
        );
        let left = keyspace_digest(&mut ca, from.as_bytes());
        assert_eq!(left.keys().cloned().collect::<Vec<_>>(), vec![format!("{from}keep").into_bytes()]);
        let mut expected = renamed(&original, &from, &to);
        expected.insert(
            format!("{to}keep").into_bytes(),
            keyspace_digest(&mut ct, format!("{to}keep").as_bytes()).into_values().next().unwrap(),
        );
        assert_eq!(keyspace_digest(&mut ct, to.as_bytes()), expected, "cross={cross}");
    }
}

#[test]
fn overlapping_prefixes_on_one_server_are_refused() {
    let server = RedisServer::start();
    let psor = connect(&server);
    for (from, to) in [("a:", "a:b:"), ("a:b:", "a:"), ("a:", "a:")] {
        let err =
            engine::copy(&psor, None, &copy_opts(from, to), &small_batches(), Arc::new(Progress::new())).unwrap_err();
        assert!(matches!(err, Error::Refused(_)), "{from} -> {to}: {err}");
    }
    // On another server the same prefixes are fine.
    let other = RedisServer::start();
    let po = connect(&other);
    assert!(
        engine::copy(&psor, Some(&po), &copy_opts("a:", "a:b:"), &small_batches(), Arc::new(Progress::new())).is_ok()
    );
}

#[test]
fn scan_streams_exactly_the_prefix() {
    let server = RedisServer::start();
    let mut conn = server.admin_conn();
    let ns = unique_prefix("scan");
    let target = format!("{ns}MyPAC_8.0:");
    let mut keys = populate_all_types(&mut conn, target.as_bytes(), 777);
    neighbourhood(&mut conn, &ns, 10);
    let psor = connect(&server);
    let progress = Arc::new(Progress::new());
    let mut seen: Vec<Vec<u8>> = engine::scan(&psor, &prefix(&target), &small_batches(), progress.clone())
        .unwrap()
        .flat_map(|b| b.unwrap())
        .collect();
    seen.sort();
    seen.dedup();
    keys.sort();
    assert_eq!(seen, keys);
    let snap = progress.snapshot();
    assert!(snap.scan_finished);
    assert!(snap.total_keys >= 777 && snap.examined > 0);
}

#[test]
fn a_fatal_error_stops_the_run_naming_the_server_and_the_key() {
    // A target that refuses every write (out of memory, noeviction): the run stops at the
    // first batch instead of counting thousands of identical failures.
    let (a, b) = (
        RedisServer::start(),
        RedisServer::builder().config("maxmemory", "1").config("maxmemory-policy", "noeviction").start(),
    );
    let ns = unique_prefix("fatal");
    populate_all_types(&mut a.admin_conn(), format!("{ns}a:").as_bytes(), 30);
    let (pa, pb) = (connect(&a), connect(&b));
    let err = engine::copy(
        &pa,
        Some(&pb),
        &copy_opts(&format!("{ns}a:"), &format!("{ns}b:")),
        &small_batches(),
        Arc::new(Progress::new()),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Command { op: "RESTORE", .. }), "{text}");
    assert!(text.contains(&b.addr()) && text.contains(&ns) && text.contains("OOM"), "{text}");
}

#[test]
fn a_move_whose_target_fails_leaves_every_source_key() {
    // The target stage restores while the writer reads on: when the target refuses (out of
    // memory), its error ends the run and no source key is unlinked, whatever was in flight.
    let (a, b) = (
        RedisServer::start(),
        RedisServer::builder().config("maxmemory", "1").config("maxmemory-policy", "noeviction").start(),
    );
    let ns = unique_prefix("fatalmove");
    let from = format!("{ns}a:");
    populate_all_types(&mut a.admin_conn(), from.as_bytes(), 300);
    let before = keyspace_digest(&mut a.admin_conn(), from.as_bytes());
    let (pa, pb) = (connect(&a), connect(&b));
    let opts = CopyOptions { move_keys: true, ..copy_opts(&from, &format!("{ns}b:")) };
    let err = engine::copy(&pa, Some(&pb), &opts, &small_batches(), Arc::new(Progress::new())).unwrap_err();
    assert!(matches!(err, Error::Command { op: "RESTORE", .. }), "{err}");
    assert_eq!(keyspace_digest(&mut a.admin_conn(), from.as_bytes()), before);
}
