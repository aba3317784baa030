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
