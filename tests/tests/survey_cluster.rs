//! `psor survey` on a real 3-master Redis Cluster: every master is scanned (in parallel), and
//! a known tree spread over all of them gives the same exact counts, types and TTLs per node
//! as on one server.

use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::progress::Progress;
use psor_core::survey::{self, SurveyNode, SurveyOptions};
use psor_tests::{unique_prefix, RedisCluster};
use redis::Commands;

fn node<'a>(root: &'a SurveyNode, prefix: &str) -> &'a SurveyNode {
    root.find(prefix.as_bytes()).unwrap_or_else(|| panic!("no node {prefix}"))
}

#[test]
fn a_known_tree_over_three_masters_gives_exact_counts() {
    let cluster = RedisCluster::start(3, 0);
    let mut c = cluster.cluster_conn();
    let ns = unique_prefix("survey-cluster");
    for i in 0..120 {
        let _: () = c.hset(format!("{ns}P_9.0:pct:T{i}"), "f", i).unwrap();
    }
    for i in 0..30 {
        let _: () = c.set(format!("{ns}P_9.0:ppt:P{i}"), "x".repeat(100 * (i + 1))).unwrap();
    }
    for i in 0..7 {
        let _: () = c.set_ex(format!("{ns}sess:{i}"), "v", 1000 + i as u64).unwrap();
    }
    let _: () = c.set("outside:the:prefix", "1").unwrap();
    // The tree really is spread: every master holds some of it.
    for m in cluster.masters() {
        let n: u64 = redis::cmd("DBSIZE").query(&mut m.admin_conn()).unwrap();
        assert!(n > 10, "master {} holds {n} keys", m.addr());
    }

    let psor = Psor::connect(&PsorSpec::parse(&cluster.url()).unwrap(), &ConnectOptions::default()).unwrap();
    let opts =
        SurveyOptions { prefix: ns.as_bytes().to_vec(), sample_every: 1, scan_count: 13, ..SurveyOptions::default() };
    let s = survey::survey(&psor, &opts, Arc::new(Progress::new())).unwrap();
    let root = s.root();
    assert_eq!((s.keys, root.keys, s.vanished, s.folded_keys), (157, 157, 0, 0));
    let pac = node(root, &format!("{ns}P_9.0:"));
    assert_eq!(pac.keys, 150);
    let pct = node(root, &format!("{ns}P_9.0:pct:"));
    assert_eq!(pct.keys, 120);
    assert_eq!(pct.types.as_ref().unwrap().get("hash"), Some(&120));
    let ppt = node(root, &format!("{ns}P_9.0:ppt:"));
    assert_eq!((ppt.keys, ppt.types.as_ref().unwrap().get("string")), (30, Some(&30)));
    let sess = node(root, &format!("{ns}sess:"));
    let ttl = sess.ttl.as_ref().unwrap();
    assert_eq!((sess.keys, ttl.none, ttl.expiring), (7, 0, 7));
    // Bytes were measured on every key (sample_every 1), on whichever master holds it.
    assert!(ppt.bytes > 30 * 100, "{}", ppt.bytes);
}
