//! `psor status` as operators and scripts run it: exit 0 on a clean PSOR and during a
//! normal upgrade, exit 7 with `warnings`/`orphans` in `--json` when something needs
//! attention, the table naming what to do, and `--upgrade-warn-hours`.

use psor_tests::RedisServer;

fn run(url: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = psor_tests::cli::command(env!("CARGO_BIN_EXE_psor"), &["--psor", url, "--no-progress"]);
    psor_tests::cli::output(cmd.args(args))
}

fn ok(url: &str, args: &[&str], code: i32) -> String {
    let (c, out, err) = run(url, args);
    assert_eq!(c, code, "psor {args:?}\nstdout: {out}\nstderr: {err}");
    out
}

use psor_tests::cli::json;

#[test]
fn status_exit_codes_json_and_table() {
    let server = RedisServer::start();
    let url = server.url();
    let u = url.as_str();
    ok(u, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "100"], 0);
    ok(u, &["sample", "MyPAC2", "--product-version", "8.0", "--keys", "20"], 0);

    // Clean: exit 0, the documented shape.
    let v = json(&ok(u, &["--json", "status"], 0));
    assert_eq!(v["operation"], "status");
    assert_eq!(v["server"]["name"], server.kind().display_name());
    assert_eq!(v["server"]["rdb_version"], server.kind().rdb_version());
    assert_eq!(v["warnings"].as_array().unwrap().len(), 0);
    assert_eq!(v["orphans"].as_array().unwrap().len(), 0);
    let ver = &v["pacs"][0]["versions"][0];
    assert_eq!(ver["record"]["mode"], "Running");
    assert_eq!(ver["region_versions"][0]["product_version"], "8.0");
    let pct = ver["stores"].as_array().unwrap().iter().find(|s| s["store"] == "PCT").unwrap();
    assert!(pct["known"].as_bool().unwrap() && pct["bytes"].as_u64().unwrap() > 0, "{pct}");
    assert_eq!(pct["types"]["hash"], pct["keys"]);
    assert!(pct["ttl"]["none"].is_u64());
    let out = ok(u, &["status", "MyPAC"], 0);
    assert!(out.lines().next().unwrap().contains(&format!("({})", server.kind().display_name())), "{out}");
    assert!(out.contains("no orphans, no warnings") && out.contains("REGION1 8.0"), "{out}");

    // The upgrade in progress (8.0 Running, 9.0 Upgrade, just created): still 0.
    ok(u, &["create", "MyPAC", "--product-version", "9.0"], 0);
    ok(u, &["status", "MyPAC"], 0);

    // 9.0 left in upgrade mode for two days: exit 7, unless the threshold is longer.
    let old = psor_core_now_ms() - 48 * 3_600_000;
    let mut con = server.admin_conn();
    redis::cmd("HSET").arg("MyPAC_9.0:pac:{MyPAC_9.0}").arg("updated_ms").arg(old).query::<()>(&mut con).unwrap();
    let v = json(&ok(u, &["--json", "status", "MyPAC"], 7));
    assert_eq!(v["warnings"][0]["kind"], "upgrade-stale");
    assert_eq!((v["warnings"][0]["pac"].as_str(), v["warnings"][0]["version"].as_str()), (Some("MyPAC"), Some("9.0")));
    ok(u, &["status", "MyPAC", "--upgrade-warn-hours", "72"], 0);
    let out = ok(u, &["status", "MyPAC"], 7);
    assert!(out.contains("upgrade-stale") && out.contains("set-mode MyPAC running --product-version 9.0"), "{out}");

    // A TS queue under 9.0: an unknown-store orphan and a queues-in-psor warning.
    redis::cmd("SET").arg("MyPAC_9.0:tsq:Q1").arg("item").query::<()>(&mut con).unwrap();
    let v = json(&ok(u, &["--json", "status", "MyPAC", "--upgrade-warn-hours", "72"], 7));
    assert_eq!(v["orphans"][0]["kind"], "unknown-store");
    assert_eq!(v["orphans"][0]["keys"], 1);
    assert_eq!(v["warnings"][0]["kind"], "queues-in-psor");
    // The neighbour PAC alone is clean.
    ok(u, &["status", "MyPAC2"], 0);
    // Counts only.
    let v = json(&ok(u, &["--json", "status", "MyPAC2", "--no-types", "--sample-every", "0"], 0));
    assert!(v["pacs"][0]["versions"][0]["stores"][0]["bytes"].is_null());
    ok(u, &["status", "Nope"], 5);
    ok(u, &["status", "--upgrade-warn-hours", "-1"], 2);
}

fn psor_core_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}
