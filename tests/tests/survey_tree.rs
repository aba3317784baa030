//! `psor_core::survey` against real redis-server processes: trees built here give exact
//! key counts, types, TTLs and bytes per node; an empty database and binary keys survey
//! correctly; caps fold the tail into `(other)` with exact counts; and the draft catalog
//! from a PSOR-shaped keyspace loads as a catalog.

use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::layout::Catalog;
use psor_core::progress::Progress;
use psor_core::survey::{self, Survey, SurveyNode, SurveyOptions};
use psor_tests::{populate_all_types, unique_prefix, RedisServer};
use redis::Commands;

fn connect(server: &RedisServer) -> Psor {
    Psor::connect(&PsorSpec::parse(&server.url()).unwrap(), &ConnectOptions::default()).unwrap()
}

/// Every key sampled (exact bytes), small SCAN pages and several workers.
fn opts(prefix: &[u8]) -> SurveyOptions {
    SurveyOptions { prefix: prefix.to_vec(), sample_every: 1, scan_count: 7, workers: 3, ..SurveyOptions::default() }
}

fn run(psor: &Psor, o: &SurveyOptions) -> Survey {
    survey::survey(psor, o, Arc::new(Progress::new())).unwrap()
}

fn node<'a>(root: &'a SurveyNode, prefix: &str) -> &'a SurveyNode {
    root.find(prefix.as_bytes()).unwrap_or_else(|| panic!("no node {prefix}"))
}

#[test]
fn a_known_tree_gives_exact_counts_types_ttls_and_bytes_per_node() {
    let server = RedisServer::start();
    let mut c = server.admin_conn();
    let ns = unique_prefix("survey-known");
    for i in 0..120 {
        let _: () = c.hset(format!("{ns}P_9.0:pct:T{i}"), "f", i).unwrap();
    }
    for i in 0..30 {
        let _: () = c.set(format!("{ns}P_9.0:ppt:P{i}"), "x".repeat(100 * (i + 1))).unwrap();
    }
    for i in 0..7 {
        let _: () = c.set_ex(format!("{ns}sess:{i}"), "v", 1000 + i as u64).unwrap();
    }
    let _: () = c.rpush(format!("{ns}P_9.0:q"), "a").unwrap(); // a direct key of P_9.0:
    let _: () = c.set(format!("{ns}loose"), "1").unwrap(); // a direct key of the root
    let _: () = c.set("outside:the:prefix", "1").unwrap();

    let psor = connect(&server);
    let progress = Arc::new(Progress::new());
    let s = survey::survey(&psor, &opts(ns.as_bytes()), progress.clone()).unwrap();
    let root = s.root();
    assert_eq!((s.keys, root.keys, root.direct_keys, s.vanished, s.folded_keys), (159, 159, 1, 0, 0));
    assert_eq!(progress.snapshot().counts.done, 159);
    assert_eq!(root.children.len(), 2);
    let pac = node(root, &format!("{ns}P_9.0:"));
    assert_eq!((pac.keys, pac.direct_keys, pac.children.len()), (151, 1, 2));
    let pct = node(root, &format!("{ns}P_9.0:pct:"));
    assert_eq!(pct.keys, 120);
    assert_eq!(pct.types.as_ref().unwrap().get("hash"), Some(&120));
    let ppt = node(root, &format!("{ns}P_9.0:ppt:"));
    assert_eq!((ppt.keys, ppt.sampled_keys), (30, 30));
    assert_eq!(ppt.types.as_ref().unwrap().len(), 1);
    // Every key sampled: bytes are the exact sum of MEMORY USAGE, and the biggest keys have
    // the top 5 sizes (the allocator rounds sizes, so several keys may tie).
    let mut usage: Vec<u64> = (0..30)
        .map(|i| {
            redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(format!("{ns}P_9.0:ppt:P{i}"))
                .arg("SAMPLES")
                .arg(0)
                .query::<u64>(&mut c)
                .unwrap()
        })
        .collect();
    assert_eq!(ppt.bytes, usage.iter().sum::<u64>());
    usage.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ppt.biggest.iter().map(|b| b.bytes).collect::<Vec<_>>(), usage[..5]);
    assert!(ppt.biggest[0].key.starts_with(&format!("{ns}P_9.0:ppt:P2")), "{:?}", ppt.biggest);
    let sess = node(root, &format!("{ns}sess:"));
    let ttl = sess.ttl.as_ref().unwrap();
    assert_eq!((sess.keys, ttl.none, ttl.expiring), (7, 0, 7));
    assert!(ttl.soonest_ms.is_some_and(|ms| ms > 900_000 && ms <= 1_000_000), "{ttl:?}");
    assert_eq!(root.ttl.as_ref().map(|t| (t.none, t.expiring)), Some((152, 7)));
    // Children biggest first by bytes.
    assert!(root.children.windows(2).all(|w| w[0].bytes >= w[1].bytes));
    // The root's bytes are the sum over its direct key and children.
    let loose: u64 =
        redis::cmd("MEMORY").arg("USAGE").arg(format!("{ns}loose")).arg("SAMPLES").arg(0).query(&mut c).unwrap();
    assert_eq!(root.bytes, loose + root.children.iter().map(|c| c.bytes).sum::<u64>());

    // Depth 1 stops at the first level; --no-types leaves types and TTLs out.
    let s = run(&psor, &SurveyOptions { depth: 1, types: false, sample_every: 0, ..opts(ns.as_bytes()) });
    let pac = node(s.root(), &format!("{ns}P_9.0:"));
    assert_eq!((pac.keys, pac.direct_keys, pac.children.len()), (151, 151, 0));
    assert!(pac.types.is_none() && pac.ttl.is_none());
    assert_eq!((s.sampled_keys, pac.bytes), (0, 0));
}

#[test]
fn sampling_one_key_in_n_still_estimates_every_node() {
    let server = RedisServer::start();
    let mut c = server.admin_conn();
    let ns = unique_prefix("survey-sample");
    for i in 0..2000 {
        let _: () = c.set(format!("{ns}big:{i}"), "y".repeat(64)).unwrap();
    }
    let _: () = c.set(format!("{ns}tiny:only"), "z").unwrap();
    let s = run(&connect(&server), &SurveyOptions { sample_every: 10, ..opts(ns.as_bytes()) });
    let big = node(s.root(), &format!("{ns}big:"));
    // The hash picks about one key in ten.
    assert!((120..=280).contains(&big.sampled_keys), "{}", big.sampled_keys);
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        pipe.cmd("MEMORY").arg("USAGE").arg(format!("{ns}big:{i}")).arg("SAMPLES").arg(0);
    }
    let exact: u64 = pipe.query::<Vec<u64>>(&mut c).unwrap().iter().sum();
    // Values of one size (key lengths differ by a few bytes): the estimate is within 3%.
    assert!(big.bytes.abs_diff(exact) * 100 <= exact * 3, "{} vs {exact}", big.bytes);
    assert_ne!(big.bytes, 0);
    // One key, not picked by the hash: measured after the scan.
    let tiny = node(s.root(), &format!("{ns}tiny:"));
    assert_eq!((tiny.keys, tiny.sampled_keys), (1, 1));
    assert!(tiny.bytes > 0);
}

#[test]
fn an_empty_database_gives_an_empty_tree() {
    let server = RedisServer::start();
    let s = run(&connect(&server), &opts(b""));
    assert_eq!((s.keys, s.sampled_keys, s.tree_nodes, s.masters), (0, 0, 1, 1));
    let root = s.root();
    assert_eq!((root.prefix.as_str(), root.bytes, root.children.len()), ("\"\"", 0, 0));
    assert!(root.types.is_none() && root.ttl.is_none() && root.biggest.is_empty());
    assert!(survey::suggest_layout(&s, "test").is_none());
}

#[test]
fn binary_keys_are_counted_and_shown_escaped() {
    let server = RedisServer::start();
    let mut c = server.admin_conn();
    let ns = unique_prefix("survey-binary");
    let keys: Vec<Vec<u8>> = vec![
        [ns.as_bytes(), b"\x00\xff:a"].concat(),
        [ns.as_bytes(), b"\x00\xff:b\n:c"].concat(),
        [ns.as_bytes(), b"a b*?[x]:1"].concat(),
        [ns.as_bytes(), b"a b*?[x]:2"].concat(),
        [ns.as_bytes(), b"a b*?[x]:3"].concat(),
        [ns.as_bytes(), b"\\:"].concat(),
    ];
    for k in &keys {
        let _: () = c.set(k.as_slice(), b"\x00v".as_slice()).unwrap();
    }
    // The prefix itself has glob metacharacters: only keys starting with it are counted.
    let _: () = c.set([ns.as_bytes(), b"a bXX[x]:1"].concat(), "no").unwrap();
    let s = run(&connect(&server), &opts(ns.as_bytes()));
    assert_eq!(s.keys, 7);
    let bin = s.root().child(&[ns.as_bytes(), b"\x00\xff:"].concat()).unwrap();
    assert_eq!((bin.keys, bin.prefix.clone()), (2, format!("\"{ns}\\x00\\xff:\"")));
    assert_eq!(bin.child(&[ns.as_bytes(), b"\x00\xff:b\n:"].concat()).map(|n| n.keys), Some(1));
    let glob = s.root().child(&[ns.as_bytes(), b"a b*?[x]:"].concat()).unwrap();
    assert_eq!(glob.keys, 3);
    let s = run(&connect(&server), &opts(&[ns.as_bytes(), b"a b*?[x]:"].concat()));
    assert_eq!((s.keys, s.root().direct_keys), (3, 3));
}

#[test]
fn the_tree_caps_fold_the_tail_into_other_with_exact_counts() {
    let server = RedisServer::start();
    let mut c = server.admin_conn();
    let ns = unique_prefix("survey-cap");
    populate_all_types(&mut c, format!("{ns}t:").as_bytes(), 40);
    for i in 0..50 {
        let _: () = c.set(format!("{ns}u{i}:k"), "v").unwrap();
    }
    let s = run(&connect(&server), &SurveyOptions { max_children: 10, ..opts(ns.as_bytes()) });
    let root = s.root();
    assert_eq!(root.keys, 90);
    let named: Vec<&SurveyNode> = root.children.iter().filter(|c| !c.other).collect();
    assert_eq!(named.len(), 10);
    let other = root.other_child().unwrap();
    assert_eq!(other.keys + named.iter().map(|c| c.keys).sum::<u64>(), 90);
    assert_eq!((s.folded_keys, s.folded_nodes), (other.keys, 1));
    assert!(other.children.is_empty());
    // Every named prefix holds exactly its keys: t: holds 40, each u<i>: one.
    for n in named {
        let expected = if n.prefix_bytes.ends_with(b"t:") && n.prefix_bytes.len() == ns.len() + 2 { 40 } else { 1 };
        assert_eq!(n.keys, expected, "{}", n.prefix);
    }
}

#[test]
fn the_draft_catalog_from_a_psor_shaped_keyspace_loads() {
    let server = RedisServer::start();
    let mut c = server.admin_conn();
    for (pac, v) in [("AcmePAC", "9.0"), ("AcmePAC", "10.1"), ("Other", "9.0")] {
        let p = format!("{pac}_{v}:");
        let _: () = c.hset(format!("{p}pac:{{{pac}_{v}}}"), "mode", "Running").unwrap();
        let _: () = c.hset(format!("{p}regions:{{{pac}_{v}}}"), "R1", "1").unwrap();
        for i in 0..20 {
            let _: () = c.hset(format!("{p}trans:T{i}"), "f", i).unwrap();
        }
        let _: () = c.set(format!("{p}ppt:PROG"), "binary").unwrap();
    }
    let _: () = c.set("AcmePAC_9.01:pct:x", "not a canonical version").unwrap();
    let _: () = c.set("unrelated:key", "1").unwrap();
    let s = run(&connect(&server), &SurveyOptions { sample_every: 0, ..opts(b"") });
    let draft = survey::suggest_layout(&s, "psor survey (test)").unwrap();
    assert!(draft.problem.is_none(), "{:?}\n{}", draft.problem, draft.toml);
    assert_eq!(draft.pac_prefixes, ["AcmePAC_10.1:", "AcmePAC_9.0:", "Other_9.0:"]);
    assert_eq!((draft.layouts, draft.stores), (2, 8));
    let cat = Catalog::from_toml_str(&draft.toml, "draft").unwrap();
    let layout = cat.layout("surveyed-9.0").unwrap();
    let pac = layout.store("pac").unwrap();
    assert_eq!((pac.role.as_str(), format!("{:?}", pac.placement)), ("pac-record", "Tagged".to_string()));
    let trans = layout.store("trans").unwrap();
    assert_eq!((trans.role.as_str(), trans.redis_type.as_str()), ("other", "hash"));
    assert_eq!(layout.store("ppt").unwrap().redis_type.as_str(), "string");
    assert!(draft.toml.contains("holds = \"surveyed: 40 keys under PAC(s) AcmePAC, Other\""), "{}", draft.toml);
    assert!(cat.layout("surveyed-10.1").is_some());
}
