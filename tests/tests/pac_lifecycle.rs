//! The incompatible upgrade procedure through `psor_core::pac`, against a real
//! redis-server: sample → check-compat → create → set-mode → rem-old-pac, with neighbours
//! (another PAC, keys that look like PAC keys but are not, unrelated keys) byte-identical
//! before and after; illegal transitions; an interrupted create finished by a rerun;
//! init-pac; and a site catalog with every Redis type and a renamed store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::EngineOptions;
use psor_core::layout::{Catalog, PacMode, PacName, ProductVersion};
use psor_core::pac::{self, CreateOptions, InitPacOptions, RemOldPacOptions, SampleOptions, SetModeOptions};
use psor_core::progress::Progress;
use psor_tests::{keyspace_digest, populate_all_types, KeyState, RedisServer};

fn connect(server: &RedisServer) -> Psor {
    Psor::connect(&PsorSpec::parse(&server.url()).unwrap(), &ConnectOptions::default()).unwrap()
}

fn engine() -> EngineOptions {
    EngineOptions { scan_count: 100, batch_size: 50, writers: 2, ..EngineOptions::default() }
}

fn p() -> Arc<Progress> {
    Arc::new(Progress::new())
}

fn pac(s: &str) -> PacName {
    PacName::new(s).unwrap()
}

fn v(s: &str) -> ProductVersion {
    ProductVersion::new(s).unwrap()
}

fn small(keys: usize) -> SampleOptions {
    SampleOptions { keys, regions: 2, mode: PacMode::Running, large_values: 2 }
}

type Digest = BTreeMap<Vec<u8>, KeyState>;

/// Every key of the server, by content.
fn all(server: &RedisServer) -> Digest {
    keyspace_digest(&mut server.admin_conn(), b"")
}

/// The keys not under any of `prefixes`.
fn without(d: &Digest, prefixes: &[&str]) -> Digest {
    d.iter()
        .filter(|(k, _)| !prefixes.iter().any(|p| k.starts_with(p.as_bytes())))
        .map(|(k, s)| (k.clone(), s.clone()))
        .collect()
}

/// The keys under `prefix`, renamed to `to`.
fn under_renamed(d: &Digest, prefix: &str, to: &str) -> Digest {
    d.iter()
        .filter(|(k, _)| k.starts_with(prefix.as_bytes()))
        .map(|(k, s)| {
            let mut nk = to.as_bytes().to_vec();
            nk.extend_from_slice(&k[prefix.len()..]);
            (nk, s.clone())
        })
        .collect()
}

const CARRIED: [&str; 6] = ["pct", "fct", "ppt", "dct", "tst", "enqmodel"];

/// The carried stores of `from` equal those of `to`, key for key, byte for byte, TTL for TTL.
fn assert_carried(d: &Digest, pac: &str, from: &str, to: &str) {
    for store in CARRIED {
        let a = under_renamed(d, &format!("{pac}_{from}:{store}:"), &format!("{pac}_{to}:{store}:"));
        let b = under_renamed(d, &format!("{pac}_{to}:{store}:"), &format!("{pac}_{to}:{store}:"));
        assert!(!a.is_empty(), "store {store} of {pac}_{from} is empty");
        assert_eq!(a, b, "store {store} differs between {from} and {to}");
    }
}

/// Neighbours that a careless prefix would catch: another PAC, look-alike keys, and
/// unrelated keys of every type.
fn neighbours(server: &RedisServer, psor: &Psor, cat: &Catalog) {
    pac::sample(psor, cat, &pac("MyPAC2"), &v("8.0"), &small(60), p()).unwrap();
    let mut con = server.admin_conn();
    for k in ["MyPAC_8.01:pct:X", "MyPAC_8.0", "MyPAC", "MyPAC_9.0x:pct:Y", "myPAC_8.0:pct:Z", "xMyPAC_8.0:pct:W"] {
        redis::cmd("SET").arg(k).arg("neighbour").query::<()>(&mut con).unwrap();
    }
    populate_all_types(&mut con, b"unrelated:", 30);
}

fn unregister_regions(server: &RedisServer, prefix_tag: &str) {
    let key = format!("{prefix_tag}:regions:{{{prefix_tag}}}");
    let n: i64 = redis::cmd("DEL").arg(&key).query(&mut server.admin_conn()).unwrap();
    assert_eq!(n, 1, "{key} should have existed");
}

#[test]
fn the_incompatible_upgrade_end_to_end() {
    let server = RedisServer::start();
    let psor = connect(&server);
    let cat = Catalog::builtin();
    let my = pac("MyPAC");
    let s = pac::sample(&psor, &cat, &my, &v("8.0"), &small(400), p()).unwrap();
    assert_eq!((s.keys, s.large_values, s.regions.len()), (400 + 1 + 1 + 2, 2, 2));
    assert!(s.with_ttl > 0);
    neighbours(&server, &psor, &cat);
    let before = all(&server);
    let neighbours_before = without(&before, &["MyPAC_8.0:", "MyPAC_9.0:"]);
    assert!(neighbours_before.len() > 90, "neighbours are there: {}", neighbours_before.len());

    // Step 5: check-compat says incompatible.
    let c = pac::check_compat(&psor, &cat, &my, &v("9.0"), &engine(), p()).unwrap();
    assert!(!c.compatible);
    assert_eq!(
        (c.current.version.as_str(), c.current.layout.as_str(), c.product.layout.as_str()),
        ("8.0", "ref-8", "ref-9")
    );

    // Step 6: create 9.0 in upgrade mode.
    let o = pac::create(&psor, &cat, &my, &v("9.0"), &CreateOptions::default(), &engine(), p()).unwrap();
    assert!(o.complete && !o.resumed);
    assert_eq!((o.counts.done, o.counts.conflicts, o.counts.failed), (400, 0, 0));
    assert_eq!(o.record.as_ref().map(|r| r.mode), Some(PacMode::Upgrade));
    let mid = all(&server);
    assert_carried(&mid, "MyPAC", "8.0", "9.0");
    assert_eq!(without(&mid, &["MyPAC_8.0:", "MyPAC_9.0:"]), neighbours_before);
    // The old version is untouched by create.
    assert_eq!(under_renamed(&mid, "MyPAC_8.0:", "MyPAC_8.0:"), under_renamed(&before, "MyPAC_8.0:", "MyPAC_8.0:"));

    // Step 10: the new PAC takes batch work (from a 9.0.2 region: compatible with 9.0).
    let m = pac::set_mode(
        &psor,
        &cat,
        &my,
        &v("9.0.2"),
        SetModeOptions { mode: PacMode::Running, dry_run: false },
        &engine(),
        p(),
    )
    .unwrap();
    assert_eq!(
        (m.version.as_str(), m.before.mode, m.after.mode, m.changed),
        ("9.0", PacMode::Upgrade, PacMode::Running, true)
    );

    // rem-old-pac now: 8.0 is still Running and has regions.
    let refused = pac::rem_old_pac(&psor, &cat, &my, &RemOldPacOptions::default(), &engine(), p()).unwrap_err();
    assert!(matches!(&refused, pac::Error::InUse { blockers, .. } if blockers.len() == 2), "{refused}");

    // Step 12: the old PAC is quiesced.
    let m = pac::set_mode(
        &psor,
        &cat,
        &my,
        &v("8.0"),
        SetModeOptions { mode: PacMode::Quiesce, dry_run: false },
        &engine(),
        p(),
    )
    .unwrap();
    assert_eq!((m.version.as_str(), m.after.mode), ("8.0", PacMode::Quiesce));

    // Still refused: regions of 8.0 are registered. A dry run lists stores and counts.
    let dry =
        pac::rem_old_pac(&psor, &cat, &my, &RemOldPacOptions { dry_run: true, ..Default::default() }, &engine(), p())
            .unwrap();
    assert_eq!(dry.remove.len(), 1);
    assert_eq!(dry.remove[0].keys, 404);
    assert_eq!(dry.blockers.len(), 1);
    assert!(dry.remove[0].stores.iter().any(|s| s.store == "PPT" && s.keys > 0));
    assert_eq!(all(&server), {
        let mut d = mid.clone();
        // Only the two mode changes happened since `mid`.
        for (k, s) in all(&server) {
            if k.starts_with(b"MyPAC_8.0:pac:") || k.starts_with(b"MyPAC_9.0:pac:") {
                d.insert(k, s);
            }
        }
        d
    });
    assert!(matches!(
        pac::rem_old_pac(&psor, &cat, &my, &RemOldPacOptions::default(), &engine(), p()),
        Err(pac::Error::InUse { .. })
    ));

    // Step 13: the old regions stop and leave. Step 14: remove the old PAC.
    unregister_regions(&server, "MyPAC_8.0");
    let r = pac::rem_old_pac(&psor, &cat, &my, &RemOldPacOptions::default(), &engine(), p()).unwrap();
    assert_eq!((r.keep.version.as_str(), r.deleted.len()), ("9.0", 1));
    assert_eq!(r.deleted[0].counts.done, 403);

    let after = all(&server);
    assert!(after.keys().all(|k| !k.starts_with(b"MyPAC_8.0:")));
    assert_eq!(without(&after, &["MyPAC_9.0:"]), neighbours_before, "neighbours are byte-identical");
    let st = pac::status(&psor, &cat, Some(&my), &engine(), p()).unwrap();
    assert_eq!(st.pacs.len(), 1);
    assert_eq!(st.pacs[0].versions.len(), 1);
    assert_eq!(st.pacs[0].versions[0].mode(), Some(PacMode::Running));

    // Rerunning rem-old-pac has nothing left to do.
    let again = pac::rem_old_pac(&psor, &cat, &my, &RemOldPacOptions::default(), &engine(), p()).unwrap();
    assert!(again.remove.is_empty());
}

#[test]
fn illegal_transitions_are_refused_and_change_nothing() {
    let server = RedisServer::start();
    let psor = connect(&server);
    let cat = Catalog::builtin();
    let my = pac("MyPAC");
    pac::sample(&psor, &cat, &my, &v("8.0"), &small(20), p()).unwrap();
    pac::create(&psor, &cat, &my, &v("9.0"), &CreateOptions::default(), &engine(), p()).unwrap();
    let before = all(&server);

    // Upgrade → Quiesce is not a transition.
    let e = pac::set_mode(
        &psor,
        &cat,
        &my,
        &v("9.0"),
        SetModeOptions { mode: PacMode::Quiesce, dry_run: false },
        &engine(),
        p(),
    )
    .unwrap_err();
    assert!(matches!(&e, pac::Error::Transition { source, .. } if source.from == PacMode::Upgrade), "{e}");
    // Nobody sets Upgrade.
    let e = pac::set_mode(
        &psor,
        &cat,
        &my,
        &v("8.0"),
        SetModeOptions { mode: PacMode::Upgrade, dry_run: false },
        &engine(),
        p(),
    )
    .unwrap_err();
    assert!(matches!(e, pac::Error::Core(psor_core::Error::Refused(_))), "{e}");
    // A version the PAC does not have.
    let e = pac::set_mode(
        &psor,
        &cat,
        &my,
        &v("7.0"),
        SetModeOptions { mode: PacMode::Running, dry_run: false },
        &engine(),
        p(),
    )
    .unwrap_err();
    assert!(e.is_unknown(), "{e}");
    // A dry run changes nothing either.
    let d = pac::set_mode(
        &psor,
        &cat,
        &my,
        &v("8.0"),
        SetModeOptions { mode: PacMode::Quiesce, dry_run: true },
        &engine(),
        p(),
    )
    .unwrap();
    assert!(d.changed && d.dry_run);
    assert_eq!(all(&server), before);

    // Setting the current mode again is a harmless no-op.
    let same = pac::set_mode(
        &psor,
        &cat,
        &my,
        &v("8.0"),
        SetModeOptions { mode: PacMode::Running, dry_run: false },
        &engine(),
        p(),
    )
    .unwrap();
    assert!(!same.changed);
    assert_eq!(all(&server), before);

    // create again once 9.0 is Running is refused; create for a compatible version too.
    pac::set_mode(
        &psor,
        &cat,
        &my,
        &v("9.0"),
        SetModeOptions { mode: PacMode::Running, dry_run: false },
        &engine(),
        p(),
    )
    .unwrap();
    let e = pac::create(&psor, &cat, &my, &v("9.0"), &CreateOptions::default(), &engine(), p()).unwrap_err();
    assert!(matches!(e, pac::Error::State { .. }), "{e}");
    let e = pac::create(&psor, &cat, &my, &v("9.0.2"), &CreateOptions::default(), &engine(), p()).unwrap_err();
    assert!(matches!(e, pac::Error::Compatible { .. }), "{e}");
    // Quiesce → Running (backing out) is legal.
    pac::set_mode(
        &psor,
        &cat,
        &my,
        &v("8.0"),
        SetModeOptions { mode: PacMode::Quiesce, dry_run: false },
        &engine(),
        p(),
    )
    .unwrap();
    let back = pac::set_mode(
        &psor,
        &cat,
        &my,
        &v("8.0"),
        SetModeOptions { mode: PacMode::Running, dry_run: false },
        &engine(),
        p(),
    )
    .unwrap();
    assert_eq!((back.before.mode, back.after.mode), (PacMode::Quiesce, PacMode::Running));
}

#[test]
fn an_interrupted_create_is_finished_by_a_rerun() {
    let server = RedisServer::start();
    let psor = connect(&server);
    let cat = Catalog::builtin();
    let my = pac("MyPAC");
    pac::sample(&psor, &cat, &my, &v("8.0"), &SampleOptions { keys: 6_000, large_values: 0, ..small(0) }, p()).unwrap();
    let slow = EngineOptions { scan_count: 20, batch_size: 10, writers: 1, queue_depth: 1, ..EngineOptions::default() };

    // Cancel once some keys are copied, as Ctrl-C would.
    let progress = p();
    let watcher = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            let t = std::time::Instant::now();
            while progress.snapshot().counts.done < 500 && t.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(1));
            }
            progress.cancel();
        })
    };
    // An interrupted create returns its report, marked, with exact counts (issue 10).
    let o = pac::create(&psor, &cat, &my, &v("9.0"), &CreateOptions::default(), &slow, progress.clone()).unwrap();
    watcher.join().unwrap();
    assert!(o.interrupted && !o.complete, "{o:?}");
    let copied_before = progress.snapshot().counts.done;
    assert!((500..6_000).contains(&copied_before), "interrupted midway: {copied_before}");
    assert_eq!(o.counts.done, copied_before, "the report counts exactly what was copied");
    let on_server = all(&server).keys().filter(|k| k.starts_with(b"MyPAC_9.0:")).count() as u64;
    assert_eq!(on_server, copied_before + 1, "the copied keys and the record, no more");

    // The half-made version is marked, and cannot be made Running.
    let st = pac::status(&psor, &cat, Some(&my), &engine(), p()).unwrap();
    let v9 = st.pacs[0].version(&v("9.0")).unwrap();
    assert!(v9.record.as_ref().unwrap().creating);
    let e = pac::set_mode(
        &psor,
        &cat,
        &my,
        &v("9.0"),
        SetModeOptions { mode: PacMode::Running, dry_run: false },
        &engine(),
        p(),
    )
    .unwrap_err();
    assert!(matches!(e, pac::Error::State { .. }), "{e}");

    // The rerun finishes: what was copied is unchanged, the rest is copied, nothing conflicts.
    let o = pac::create(&psor, &cat, &my, &v("9.0"), &CreateOptions::default(), &engine(), p()).unwrap();
    assert!(o.complete && o.resumed);
    assert_eq!(o.counts.conflicts + o.counts.failed, 0);
    assert_eq!(o.counts.done + o.counts.unchanged, 6_000);
    assert!(o.counts.unchanged >= copied_before.min(6_000) - 50, "{:?} vs {copied_before}", o.counts);
    let d = all(&server);
    assert_carried(&d, "MyPAC", "8.0", "9.0");
    assert_eq!(d.keys().filter(|k| k.starts_with(b"MyPAC_9.0:")).count(), 6_001, "the stores and the record, no more");
    pac::set_mode(
        &psor,
        &cat,
        &my,
        &v("9.0"),
        SetModeOptions { mode: PacMode::Running, dry_run: false },
        &engine(),
        p(),
    )
    .unwrap();
}

#[test]
fn check_compat_answers_and_unknowns() {
    let server = RedisServer::start();
    let psor = connect(&server);
    let cat = Catalog::builtin();
    pac::sample(&psor, &cat, &pac("MyPAC"), &v("9.0"), &small(10), p()).unwrap();
    let c = pac::check_compat(&psor, &cat, &pac("MyPAC"), &v("9.0.2"), &engine(), p()).unwrap();
    assert!(c.compatible && c.process == "compatible");
    let c = pac::check_compat(&psor, &cat, &pac("MyPAC"), &v("8.0"), &engine(), p()).unwrap();
    assert!(!c.compatible);
    let e = pac::check_compat(&psor, &cat, &pac("MyPAC"), &v("10.0"), &engine(), p()).unwrap_err();
    assert!(e.is_unknown(), "{e}");
    let e = pac::check_compat(&psor, &cat, &pac("MyPAC2"), &v("9.0"), &engine(), p()).unwrap_err();
    assert!(matches!(e, pac::Error::UnknownPac { .. }), "{e}");
    // A sample never overwrites an existing version.
    let e = pac::sample(&psor, &cat, &pac("MyPAC"), &v("9.0"), &small(10), p()).unwrap_err();
    assert!(matches!(e, pac::Error::State { .. }), "{e}");
}

#[test]
fn init_pac_removes_every_version_of_that_pac_only() {
    let server = RedisServer::start();
    let psor = connect(&server);
    let cat = Catalog::builtin();
    let my = pac("MyPAC");
    pac::sample(&psor, &cat, &my, &v("8.0"), &small(50), p()).unwrap();
    pac::create(&psor, &cat, &my, &v("9.0"), &CreateOptions::default(), &engine(), p()).unwrap();
    neighbours(&server, &psor, &cat);
    let neighbours_before = without(&all(&server), &["MyPAC_8.0:", "MyPAC_9.0:"]);

    let dry = pac::init_pac(
        &psor,
        &cat,
        &my,
        &v("9.0"),
        &InitPacOptions { dry_run: true, ..Default::default() },
        &engine(),
        p(),
    )
    .unwrap();
    assert_eq!(dry.remove.len(), 2);
    assert_eq!(dry.blockers.len(), 1, "8.0 has regions registered");
    let e = pac::init_pac(&psor, &cat, &my, &v("9.0"), &InitPacOptions::default(), &engine(), p()).unwrap_err();
    assert!(matches!(e, pac::Error::InUse { .. }), "{e}");
    // The caller confirmed only 9.0: the PSOR has more, so nothing happens.
    let e = pac::init_pac(
        &psor,
        &cat,
        &my,
        &v("9.0"),
        &InitPacOptions { force: true, expect: Some(vec![v("9.0")]), ..Default::default() },
        &engine(),
        p(),
    )
    .unwrap_err();
    assert!(matches!(e, pac::Error::State { .. }), "{e}");

    let o = pac::init_pac(
        &psor,
        &cat,
        &my,
        &v("9.0"),
        &InitPacOptions { force: true, ..Default::default() },
        &engine(),
        p(),
    )
    .unwrap();
    assert!(o.forced);
    let after = all(&server);
    assert_eq!(without(&after, &["MyPAC_8.0:", "MyPAC_9.0:"]), neighbours_before);
    let mine: Vec<_> = after.keys().filter(|k| k.starts_with(b"MyPAC_8.0:") || k.starts_with(b"MyPAC_9.0:")).collect();
    assert_eq!(mine, vec![&b"MyPAC_9.0:pac:{MyPAC_9.0}".to_vec()]);
    let st = pac::status(&psor, &cat, Some(&my), &engine(), p()).unwrap();
    assert_eq!(st.pacs[0].versions[0].mode(), Some(PacMode::Running));
}

const SITE: &str = r#"
[catalog]
name = "site"
extends = "builtin"

[[layout]]
name = "site-8"
epoch = "8"
[[layout.store]]
name = "pac"
sub_prefix = "pac"
type = "hash"
role = "pac-record"
placement = "tagged"
upgrade = "fresh"
[[layout.store]]
name = "regions"
sub_prefix = "regions"
type = "hash"
role = "region-registry"
placement = "tagged"
upgrade = "fresh"
[[layout.store]]
name = "PCT"
sub_prefix = "pct"
type = "hash"
role = "pct"
placement = "spread"
upgrade = "carry"
[[layout.store]]
name = "LOG"
sub_prefix = "log"
type = "stream"
placement = "spread"
upgrade = "carry"
[[layout.store]]
name = "Q"
sub_prefix = "q"
type = "list"
placement = "spread"
upgrade = "carry"
[[layout.store]]
name = "S"
sub_prefix = "set"
type = "set"
placement = "spread"
upgrade = "carry"
[[layout.store]]
name = "Z"
sub_prefix = "z"
type = "zset"
placement = "spread"
upgrade = "carry"
[[layout.store]]
name = "STR"
sub_prefix = "txt"
type = "string"
placement = "spread"
upgrade = "fresh"

[[layout]]
name = "site-10"
epoch = "10"
[[layout.store]]
name = "pac"
sub_prefix = "pac"
type = "hash"
role = "pac-record"
placement = "tagged"
upgrade = "fresh"
[[layout.store]]
name = "TRANS"
sub_prefix = "trans"
type = "hash"
role = "pct"
placement = "spread"
upgrade = "carry"
transform = "rename-store"
from_store = "PCT"
[[layout.store]]
name = "LOG"
sub_prefix = "log"
type = "stream"
placement = "spread"
upgrade = "carry"
[[layout.store]]
name = "Q"
sub_prefix = "q"
type = "list"
placement = "spread"
upgrade = "carry"
[[layout.store]]
name = "S"
sub_prefix = "set"
type = "set"
placement = "spread"
upgrade = "carry"
[[layout.store]]
name = "Z"
sub_prefix = "z"
type = "zset"
placement = "spread"
upgrade = "carry"
[[layout.store]]
name = "NEW"
sub_prefix = "new"
type = "hash"
placement = "spread"
upgrade = "carry"

[[version]]
match = "8.5"
layout = "site-8"
[[version]]
match = "10.0.*"
layout = "site-10"
"#;

#[test]
fn a_site_catalog_with_every_type_and_a_renamed_store() {
    let server = RedisServer::start();
    let psor = connect(&server);
    let cat = Catalog::from_toml_str(SITE, "site.toml").unwrap();
    let my = pac("Acme");
    let s = pac::sample(&psor, &cat, &my, &v("8.5"), &small(300), p()).unwrap();
    assert!(
        ["LOG", "Q", "S", "Z", "STR", "PCT"].iter().all(|n| s.stores.get(*n).is_some_and(|c| *c > 0)),
        "{:?}",
        s.stores
    );
    let before = all(&server);
    let kinds: std::collections::BTreeSet<&str> = before.values().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), vec!["hash", "list", "set", "stream", "string", "zset"]);

    let o = pac::create(&psor, &cat, &my, &v("10.0"), &CreateOptions::default(), &engine(), p()).unwrap();
    assert!(o.complete);
    let trans = o.carried.iter().find(|c| c.store == "TRANS").unwrap();
    assert_eq!((trans.from_store.as_str(), trans.from_prefix.as_str()), ("PCT", "Acme_8.5:pct:"));
    let new = o.carried.iter().find(|c| c.store == "NEW").unwrap();
    assert!(new.note.is_some() && new.counts.matched == 0);
    let after = all(&server);
    assert_eq!(under_renamed(&after, "Acme_8.5:pct:", "X:"), under_renamed(&after, "Acme_10.0:trans:", "X:"));
    for store in ["log", "q", "set", "z"] {
        let a = under_renamed(&after, &format!("Acme_8.5:{store}:"), "X:");
        assert!(!a.is_empty());
        assert_eq!(a, under_renamed(&after, &format!("Acme_10.0:{store}:"), "X:"), "{store}");
    }
    assert!(after.keys().all(|k| !k.starts_with(b"Acme_10.0:txt:")), "fresh stores start empty");
}

#[test]
fn carrying_a_tagged_store_is_refused_before_anything_is_written() {
    let server = RedisServer::start();
    let psor = connect(&server);
    let bad = SITE.replace(
        "name = \"pac\"\nsub_prefix = \"pac\"\ntype = \"hash\"\nrole = \"pac-record\"\nplacement = \"tagged\"\nupgrade = \"fresh\"\n[[layout.store]]\nname = \"TRANS\"",
        "name = \"pac\"\nsub_prefix = \"pac\"\ntype = \"hash\"\nrole = \"pac-record\"\nplacement = \"tagged\"\nupgrade = \"fresh\"\n[[layout.store]]\nname = \"REG\"\nsub_prefix = \"reg\"\ntype = \"hash\"\nrole = \"region-registry\"\nplacement = \"tagged\"\nupgrade = \"carry\"\n[[layout.store]]\nname = \"TRANS\"",
    );
    assert_ne!(bad, SITE);
    let cat = Catalog::from_toml_str(&bad, "bad.toml").unwrap();
    let my = pac("Acme");
    pac::sample(&psor, &cat, &my, &v("8.5"), &small(20), p()).unwrap();
    let before = all(&server);
    let e = pac::create(&psor, &cat, &my, &v("10.0"), &CreateOptions::default(), &engine(), p()).unwrap_err();
    assert!(matches!(e, pac::Error::Unsupported(_)), "{e}");
    assert_eq!(all(&server), before);
}

#[test]
fn rem_old_pac_touches_only_its_own_prefixes() {
    let server = RedisServer::start();
    let psor = connect(&server);
    let cat = Catalog::builtin();
    let a = pac("A");
    let quiet = SampleOptions { keys: 12, regions: 0, mode: PacMode::Quiesce, large_values: 1 };
    pac::sample(&psor, &cat, &a, &v("9.0"), &SampleOptions { mode: PacMode::Running, ..quiet.clone() }, p()).unwrap();
    pac::sample(&psor, &cat, &a, &v("8.0"), &quiet, p()).unwrap();
    pac::sample(&psor, &cat, &a, &v("8.0.1"), &quiet, p()).unwrap();
    // PACs whose names extend "A", in every mode, and keys that only look like A's.
    for name in ["A_B", "AB", "A-1", "a"] {
        pac::sample(
            &psor,
            &cat,
            &pac(name),
            &v("8.0"),
            &SampleOptions { mode: PacMode::Running, ..quiet.clone() },
            p(),
        )
        .unwrap();
    }
    let mut con = server.admin_conn();
    let own_raw: [&[u8]; 2] = [b"A_8:pct:x", b"A_7.0:\xff\x00weird"];
    let look_alike: [&[u8]; 7] =
        [b"A_8.01:pct:x", b"A_8.0", b"A_9.0x:pct:y", b"A_:pct:z", b"A_8.0.1.2.3:x", b"A\xff_8.0:x", b"[A]_8.0:x"];
    for k in own_raw.iter().chain(look_alike.iter()) {
        redis::cmd("SET").arg(*k).arg("v").query::<()>(&mut con).unwrap();
    }
    let before = all(&server);
    let a_old = ["A_8.0:", "A_8.0.1:", "A_8:", "A_7.0:"];

    let r = pac::rem_old_pac(&psor, &cat, &a, &RemOldPacOptions::default(), &engine(), p()).unwrap();
    let removed: Vec<&str> = r.remove.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(removed, vec!["7.0", "8", "8.0", "8.0.1"]);
    let after = all(&server);
    assert_eq!(after, without(&before, &a_old), "exactly A's old versions went");
    for k in look_alike {
        assert!(after.contains_key(k), "{:?} survived", String::from_utf8_lossy(k));
    }
    assert!(after.keys().any(|k| k.starts_with(b"A_9.0:")));
}
