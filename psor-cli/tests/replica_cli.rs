//! `--read-from` on the command line (issue 13): the report says where the scan read, in
//! the table and in `--json`, and `replica-only` without a replica exits 9 having deleted
//! nothing.

use psor_tests::cli::{command_at, json, output, set_numbered};
use psor_tests::{unique_prefix, RedisServer};

fn psor(url: &str, args: &[&str]) -> std::process::Command {
    command_at(env!("CARGO_BIN_EXE_psor"), url, args)
}

fn count(server: &RedisServer, p: &str) -> usize {
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg(format!("{p}*")).query(&mut server.admin_conn()).unwrap();
    keys.len()
}

#[test]
fn delete_reports_where_it_read_and_replica_only_exits_9_without_a_replica() {
    let master = RedisServer::start();
    let ns = unique_prefix("replica-cli");
    let p = format!("{ns}A:");
    set_numbered(&mut master.admin_conn(), &p, 500);
    let mut replica = RedisServer::replica_of(&master);
    let url = master.url();

    let (code, out, err) =
        output(&mut psor(&url, &["--read-from", "replica", "--json", "-y", "delete", "--prefix", &p]));
    assert_eq!(code, 0, "{out}\n{err}");
    let v = json(&out);
    assert_eq!(v["done"], 500);
    assert_eq!(v["read_from"], serde_json::json!([{"master": master.addr(), "read_node": replica.addr()}]));
    assert_eq!(count(&master, &p), 0);

    set_numbered(&mut master.admin_conn(), &p, 100);
    replica.wait_synced();
    let (code, out, err) =
        output(&mut psor(&url, &["--read-from", "replica-preferred", "-y", "delete", "--prefix", &p]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("read master {} on replica {}", master.addr(), replica.addr())), "{out}");

    set_numbered(&mut master.admin_conn(), &p, 100);
    replica.stop();
    let (code, out, err) = output(&mut psor(&url, &["--read-from", "replica-only", "-y", "delete", "--prefix", &p]));
    assert_eq!(code, 9, "{out}\n{err}");
    assert!(err.contains("no replica to read for master"), "{err}");
    assert_eq!(count(&master, &p), 100, "nothing deleted");
}

fn reset_stats(server: &RedisServer) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut server.admin_conn()).unwrap();
}

/// The reads (`SCAN`, `TYPE`, `PTTL`, `MEMORY USAGE`, `DUMP`) `server` served since its stats
/// were reset, with their counts.
fn reads(server: &RedisServer) -> Vec<String> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut server.admin_conn()).unwrap();
    info.lines()
        .filter(|l| {
            // Redis before 7.0 counts `MEMORY USAGE` as `memory`.
            ["scan", "type", "pttl", "memory|usage", "memory", "dump", "pexpiretime"]
                .iter()
                .any(|c| l.starts_with(&format!("cmdstat_{c}:")))
        })
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

/// `status` and `survey` with `--read-from replica` read every key's facts on the replica,
/// report it in the table and in `--json`, and find what a master-only run finds; export
/// says where it read too; with `replica-only` and no replica they exit 9.
#[test]
fn status_survey_and_export_read_on_the_replica_and_say_so() {
    let master = RedisServer::start();
    let url = master.url();
    let (code, out, err) = output(&mut psor(&url, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "100"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let mut replica = RedisServer::replica_of(&master);
    let on = format!("read master {} on replica {}", master.addr(), replica.addr());
    let where_read = serde_json::json!([{"master": master.addr(), "read_node": replica.addr()}]);

    let (code, out, err) = output(&mut psor(&url, &["--json", "status"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let on_master = json(&out);
    reset_stats(&master);
    reset_stats(&replica);
    let (code, out, err) = output(&mut psor(&url, &["--read-from", "replica", "--json", "status"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(reads(&master), Vec::<String>::new(), "the master served no scan nor per-key read");
    let r = reads(&replica);
    assert!(
        ["scan", "type", "pttl"].iter().all(|c| r.iter().any(|l| l.starts_with(&format!("cmdstat_{c}:")))),
        "{r:?}"
    );
    let v = json(&out);
    assert_eq!(v["read_from"], where_read);
    assert_eq!(v["pac_keys"], on_master["pac_keys"]);
    let stores = |v: &serde_json::Value| -> Vec<(String, serde_json::Value, serde_json::Value)> {
        v["pacs"][0]["versions"][0]["stores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["store"].to_string(), s["keys"].clone(), s["types"].clone()))
            .collect()
    };
    assert_eq!(stores(&v), stores(&on_master));
    let (code, out, err) = output(&mut psor(&url, &["--read-from", "replica", "status"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&on), "{out}");

    reset_stats(&master);
    let (code, out, err) =
        output(&mut psor(&url, &["--read-from", "replica", "--json", "survey", "--prefix", "MyPAC_8.0:"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(reads(&master), Vec::<String>::new());
    let v = json(&out);
    assert_eq!(v["read_from"], where_read);
    assert_eq!(v["keys"], on_master["pac_keys"]);
    let (code, out, err) = output(&mut psor(&url, &["--read-from", "replica", "survey", "--prefix", "MyPAC_8.0:"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&on), "{out}");

    let dir = tempfile::Builder::new().prefix("psor-replica2-cli-").tempdir().unwrap();
    let file = dir.path().join("e.psnap");
    let file = file.to_str().unwrap();
    reset_stats(&master);
    let (code, out, err) =
        output(&mut psor(&url, &["--read-from", "replica", "export", "--prefix", "MyPAC_8.0:", "--output", file]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(reads(&master), Vec::<String>::new());
    assert!(out.contains(&on), "{out}");

    replica.stop();
    for args in [&["status"][..], &["survey", "--prefix", "MyPAC_8.0:"][..]] {
        let mut all = vec!["--read-from", "replica-only"];
        all.extend_from_slice(args);
        let (code, out, err) = output(&mut psor(&url, &all));
        assert_eq!(code, 9, "{args:?}\n{out}\n{err}");
        assert!(err.contains("no replica to read for master"), "{err}");
    }
}
