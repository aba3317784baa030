//! `--rate N` holds for every command that runs a bulk operation, reads included: real
//! `psor` processes on a real server, keys handled over wall time, with generous slack (a
//! run may only be slower than the cap, never faster than 1.5 × it).

use std::process::Command;
use std::time::{Duration, Instant};

use psor_tests::RedisServer;

const KEYS: u64 = 3_000;
const RATE: u64 = 1_000;

fn psor(url: &str, args: &[&str]) -> Command {
    psor_tests::cli::command_at(env!("CARGO_BIN_EXE_psor"), url, args)
}

fn populate(server: &RedisServer, prefix: &str, n: u64) {
    psor_tests::cli::set_numbered(&mut server.admin_conn(), prefix, n);
}

/// Runs with `--rate RATE --batch 100`; asserts exit 0 and that `keys` keys took at least
/// `keys / (1.5 × RATE)` seconds. Returns stdout.
fn paced(url: &str, args: &[&str], keys: u64) -> String {
    let mut all = vec!["--rate", "1000", "--batch", "100"];
    all.extend_from_slice(args);
    let t = Instant::now();
    let (code, out, err) = psor_tests::cli::output(&mut psor(url, &all));
    let took = t.elapsed();
    assert_eq!(code, 0, "psor {all:?}\nstdout: {out}\nstderr: {err}");
    let floor = Duration::from_secs_f64(keys as f64 / (1.5 * RATE as f64));
    assert!(took >= floor, "psor {args:?}: {keys} keys in {took:?}, faster than the cap of {RATE} keys/s allows");
    out
}

#[test]
fn delete_and_copy_stay_within_the_rate() {
    let server = RedisServer::start();
    let url = server.url();
    populate(&server, "a:", KEYS);
    paced(&url, &["--yes", "copy", "--prefix", "a:", "--to-prefix", "b:"], KEYS);
    paced(&url, &["--yes", "delete", "--prefix", "b:"], KEYS);
}

#[test]
fn export_and_import_stay_within_the_rate() {
    let server = RedisServer::start();
    let url = server.url();
    populate(&server, "x:", KEYS);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.psnap");
    let f = file.to_str().unwrap();
    paced(&url, &["export", "--prefix", "x:", "--output", f], KEYS);
    paced(&url, &["import", f, "--rename", "x:=y:"], KEYS);
    let n: u64 = redis::cmd("DBSIZE").query(&mut server.admin_conn()).unwrap();
    assert_eq!(n, 2 * KEYS);
}

#[test]
fn survey_and_status_stay_within_the_rate() {
    let server = RedisServer::start();
    let url = server.url();
    populate(&server, "s:", KEYS);
    paced(&url, &["survey", "--prefix", "s:"], KEYS);
    paced(&url, &["scan", "--prefix", "s:", "--count-only"], KEYS);
    paced(&url, &["delete", "--prefix", "s:", "--dry-run"], KEYS);
    let (code, out, err) =
        psor_tests::cli::output(&mut psor(&url, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "3000"]));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    paced(&url, &["status", "MyPAC"], KEYS);
}

#[test]
fn rem_old_pac_with_backup_stays_within_the_rate() {
    let server = RedisServer::start();
    let url = server.url();
    let u = url.as_str();
    let run = |args: &[&str]| {
        let (code, out, err) = psor_tests::cli::output(&mut psor(u, args));
        assert_eq!(code, 0, "psor {args:?}\nstdout: {out}\nstderr: {err}");
    };
    run(&["sample", "MyPAC", "--product-version", "8.0", "--keys", "1000"]);
    run(&["create", "MyPAC", "--product-version", "9.0"]);
    run(&["set-mode", "MyPAC", "running", "--product-version", "9.0"]);
    run(&["set-mode", "MyPAC", "quiesce", "--product-version", "8.0"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.psnap");
    // The plan's count (both versions), the backup, the recount and the delete: all paced.
    paced(u, &["--yes", "rem-old-pac", "MyPAC", "--force", "--backup", file.to_str().unwrap()], 4 * 1_000);
    assert!(file.exists());
}
