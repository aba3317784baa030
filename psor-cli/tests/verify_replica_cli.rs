//! `psor --read-from replica verify` (issue 13): the report says where each side was read, in
//! the table and in `--json` (`read_from`, `target_read_from`), and `replica-only` without a
//! replica exits 9.

use psor_tests::cli::{command_at, json, output};
use psor_tests::{populate_all_types, unique_prefix, RedisServer, ServerKind};

fn psor(url: &str, args: &[&str]) -> std::process::Command {
    command_at(env!("CARGO_BIN_EXE_psor"), url, args)
}

/// Polls `replica` until it holds `n` keys under `p`.
fn holds(replica: &RedisServer, p: &str, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg(format!("{p}*")).query(&mut replica.admin_conn()).unwrap();
        if keys.len() == n {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{} holds {} keys of {n}", replica.addr(), keys.len());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn verify_reports_where_each_side_read_and_replica_only_exits_9_without_a_replica() {
    let (src, tgt) = (RedisServer::start(), RedisServer::start());
    let ns = unique_prefix("verifyrep-cli");
    let p = format!("{ns}A:");
    populate_all_types(&mut src.admin_conn(), p.as_bytes(), 40);
    populate_all_types(&mut tgt.admin_conn(), p.as_bytes(), 40);
    let (src_replica, tgt_replica) = (RedisServer::replica_of(&src), RedisServer::replica_of(&tgt));
    holds(&src_replica, &p, 40);
    holds(&tgt_replica, &p, 40);
    let (u1, u2) = (src.url(), tgt.url());

    // Redis 6.2 has no PEXPIRETIME: expiries are read with PTTL there, a few ms off per read.
    let tolerance = if ServerKind::from_env().has_pexpiretime() { "0" } else { "999" };
    let (code, out, err) = output(&mut psor(
        &u1,
        &["--read-from", "replica", "--json", "verify", "--prefix", &p, "--target", &u2, "--ttl-tolerance", tolerance],
    ));
    assert_eq!(code, 0, "{out}\n{err}");
    let v = json(&out);
    assert_eq!(v["same"], 40);
    assert_eq!(v["read_from"], serde_json::json!([{"master": src.addr(), "read_node": src_replica.addr()}]));
    assert_eq!(v["target_read_from"], serde_json::json!([{"master": tgt.addr(), "read_node": tgt_replica.addr()}]));

    let (code, out, err) =
        output(&mut psor(&u1, &["--read-from", "replica", "verify", "--prefix", &p, "--target", &u2]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("  read master {} on replica {}", src.addr(), src_replica.addr())), "{out}");
    assert!(out.contains(&format!("  target: read master {} on replica {}", tgt.addr(), tgt_replica.addr())), "{out}");

    // Reading the masters by choice: nothing said about it.
    let (code, out, _) = output(&mut psor(&u1, &["--json", "verify", "--prefix", &p, "--target", &u2]));
    assert_eq!(code, 0);
    let v = json(&out);
    assert!(v.get("read_from").is_none() && v.get("target_read_from").is_none(), "{v}");

    // The target has no replica any more: replica-only stops before comparing anything.
    drop(tgt_replica);
    let (code, out, err) =
        output(&mut psor(&u1, &["--read-from", "replica-only", "verify", "--prefix", &p, "--target", &u2]));
    assert_eq!(code, 9, "{out}\n{err}");
    assert!(err.contains(&tgt.addr()), "{err}");
}
