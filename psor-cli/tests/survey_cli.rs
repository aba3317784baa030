//! `psor survey` as operators run it, against real redis-server processes: the `--json`
//! schema of docs/survey.md with exact counts, the table, the draft catalog file, and the
//! exit codes (an existing draft file is refused; no PAC prefixes to draft from is a failure).

use psor_tests::{unique_prefix, RedisServer};
use redis::Commands;

fn psor(args: &[&str]) -> (i32, String, String) {
    psor_tests::cli::output(&mut psor_tests::cli::command(env!("CARGO_BIN_EXE_psor"), args))
}

#[test]
fn json_follows_the_documented_schema_with_exact_counts() {
    let server = RedisServer::start();
    let mut c = server.admin_conn();
    let ns = unique_prefix("cli-survey");
    for i in 0..25 {
        let _: () = c.hset(format!("{ns}a:x:{i}"), "f", i).unwrap();
    }
    for i in 0..4 {
        let _: () = c.set_ex(format!("{ns}b:{i}"), "v", 600).unwrap();
    }
    let url = server.url();
    let (code, out, err) = psor(&["--psor", &url, "--json", "survey", "--prefix", &ns, "--depth", "2", "--top", "2"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["operation"], "survey");
    // The server by its product and own version (Valkey 9.1.2, not its redis_version 7.2.4).
    assert_eq!(v["server"]["name"], server.kind().display_name());
    assert_eq!(v["server"]["product"], server.kind().product());
    assert_eq!((v["keys"].as_u64(), v["masters"].as_u64(), v["sample_every"].as_u64()), (Some(29), Some(1), Some(10)));
    assert_eq!(v["delimiter"], ":");
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    let root = &nodes[0];
    assert_eq!((root["prefix"].as_str(), root["keys"].as_u64()), (Some(ns.as_str()), Some(29)));
    for field in ["prefix", "keys", "bytes", "types", "children", "ttl", "biggest", "sampled_keys", "depth", "other"] {
        assert!(root.get(field).is_some(), "no {field} in {root}");
    }
    let kids = root["children"].as_array().unwrap();
    let a = kids.iter().find(|k| k["prefix"] == format!("{ns}a:")).unwrap();
    assert_eq!((a["keys"].as_u64(), a["types"]["hash"].as_u64()), (Some(25), Some(25)));
    assert_eq!(a["children"][0]["prefix"], format!("{ns}a:x:"));
    assert_eq!(a["children"][0]["keys"].as_u64(), Some(25));
    let b = kids.iter().find(|k| k["prefix"] == format!("{ns}b:")).unwrap();
    assert_eq!((b["ttl"]["expiring"].as_u64(), b["ttl"]["none"].as_u64()), (Some(4), Some(0)));
    assert!(a["biggest"].as_array().unwrap().len() <= 2);

    let (code, out, _) = psor(&["--psor", &url, "survey", "--prefix", &ns]);
    assert_eq!(code, 0);
    assert!(out.contains("29 keys on 1 master(s)"), "{out}");
    assert!(out.contains("bytes estimated from"), "{out}");
    let row = out.lines().find(|l| l.trim_start().starts_with(&format!("{ns}a:x:"))).unwrap();
    assert!(row.contains(" 25 ") && row.contains("hash"), "{row}");
}

#[test]
fn suggest_layout_writes_a_loadable_draft_and_refuses_to_overwrite() {
    let server = RedisServer::start();
    let mut c = server.admin_conn();
    let _: () = c.hset("ZPAC_9.0:pac:{ZPAC_9.0}", "mode", "Running").unwrap();
    let _: () = c.hset("ZPAC_9.0:pct:T1", "f", "1").unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("draft.toml");
    let f = file.to_str().unwrap();
    let (code, out, err) = psor(&["--psor", &url, "survey", "--suggest-layout", f]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 layout(s), 2 store(s) from 1 PAC prefix(es)"), "{out}");
    let cat = psor_core::layout::Catalog::load_file(&file).unwrap();
    assert_eq!(cat.layout("surveyed-9.0").map(|l| l.stores.len()), Some(2));

    let (code, _, err) = psor(&["--psor", &url, "survey", "--suggest-layout", f]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exists"), "{err}");
    let (code, _, err) = psor(&["--psor", &url, "--yes", "survey", "--suggest-layout", f]);
    assert_eq!(code, 0, "{err}");

    // Nothing PAC-shaped (here: the wrong delimiter): no file, exit 1, said why.
    let other = dir.path().join("none.toml");
    let (code, out, _) =
        psor(&["--psor", &url, "survey", "--delimiter", "/", "--suggest-layout", other.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("no draft written") && out.contains("--delimiter :"), "{out}");
    assert!(!other.exists());
}

#[test]
fn bad_survey_options_are_usage_errors() {
    for args in [
        &["--psor", "redis://127.0.0.1:1", "survey", "--delimiter", ""][..],
        &["--psor", "redis://127.0.0.1:1", "survey", "--depth", "0"][..],
        &["--psor", "redis://127.0.0.1:1", "survey", "--prefix", "bad\\q"][..],
        &["--psor", "redis://127.0.0.1:1", "survey", "--no-types", "--suggest-layout", "x.toml"][..],
    ] {
        let (code, out, err) = psor(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
}
