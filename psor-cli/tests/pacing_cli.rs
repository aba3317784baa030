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

/// The keys of one `UNLINK` and the `COUNT` of one `SCAN` the server logged (its slow log,
/// every command logged): (most keys per UNLINK, largest COUNT, UNLINK calls).
fn logged_sizes(server: &RedisServer) -> (usize, usize, usize) {
    let entries: Vec<redis::Value> =
        redis::cmd("SLOWLOG").arg("GET").arg(1_000_000).query(&mut server.admin_conn()).unwrap();
    let (mut unlink_keys, mut scan_count, mut unlinks) = (0, 0, 0);
    for entry in entries {
        let redis::Value::Array(fields) = entry else { panic!("slow log entry {entry:?}") };
        let args: Vec<String> = redis::from_redis_value(fields[3].clone()).unwrap();
        // The log keeps 32 arguments; the last then says how many more there were.
        let more =
            args.last().and_then(|a| a.strip_prefix("... (")?.strip_suffix(" more arguments)")?.parse::<usize>().ok());
        let argc = more.map_or(args.len(), |m| args.len() - 1 + m);
        match args[0].to_ascii_uppercase().as_str() {
            "UNLINK" => {
                unlinks += 1;
                unlink_keys = unlink_keys.max(argc - 1);
            }
            "SCAN" => {
                let at = args.iter().position(|a| a.eq_ignore_ascii_case("COUNT")).expect("SCAN with COUNT");
                scan_count = scan_count.max(args[at + 1].parse().unwrap());
            }
            _ => {}
        }
    }
    (unlink_keys, scan_count, unlinks)
}

/// A command of psor is one event-loop turn that every other client waits behind: under
/// `--max-latency 2` no UNLINK and no SCAN may carry the default 1000 keys (measured at
/// 1.7–3.2 ms and 1.1–1.5 ms of server time on a loaded machine), whatever `--batch` says.
#[test]
fn max_latency_keeps_every_command_small() {
    let server =
        RedisServer::builder().config("slowlog-log-slower-than", "0").config("slowlog-max-len", "100000").start();
    let url = server.url();
    populate(&server, "a:", 5_000);
    redis::cmd("SLOWLOG").arg("RESET").exec(&mut server.admin_conn()).unwrap();
    let (code, out, err) = psor_tests::cli::output(&mut psor(
        &url,
        &["--json", "--yes", "--max-latency", "2", "delete", "--prefix", "a:"],
    ));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(psor_tests::cli::json(&out)["done"], 5_000);
    let (unlink_keys, scan_count, unlinks) = logged_sizes(&server);
    assert!(unlinks >= 10, "{unlinks} UNLINKs for 5000 keys");
    assert!(unlink_keys <= 500, "an UNLINK of {unlink_keys} keys under --max-latency 2");
    assert!(scan_count <= 500, "a SCAN COUNT {scan_count} under --max-latency 2");

    // Unpaced, the defaults stand (the bound's shaping is not applied without it).
    populate(&server, "b:", 5_000);
    redis::cmd("SLOWLOG").arg("RESET").exec(&mut server.admin_conn()).unwrap();
    let (code, out, err) = psor_tests::cli::output(&mut psor(&url, &["--json", "--yes", "delete", "--prefix", "b:"]));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let (unlink_keys, scan_count, _) = logged_sizes(&server);
    assert_eq!((unlink_keys, scan_count), (1000, 1000));
}

/// A server that stalls (`DEBUG SLEEP` from another client) makes a `--max-latency` run wait:
/// the report's paused time is above zero, and every key is still deleted.
#[test]
fn max_latency_pauses_while_the_server_stalls() {
    let server = RedisServer::start();
    let url = server.url();
    populate(&server, "a:", 20_000);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let staller = {
        let (stop, client) = (stop.clone(), server.admin_client());
        std::thread::spawn(move || {
            let mut con = client.get_connection().unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                redis::cmd("DEBUG").arg("SLEEP").arg("0.1").exec(&mut con).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let (code, out, err) = psor_tests::cli::output(&mut psor(
        &url,
        &["--json", "--yes", "--max-latency", "2", "--batch", "100", "delete", "--prefix", "a:"],
    ));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    staller.join().unwrap();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let j = psor_tests::cli::json(&out);
    assert_eq!(j["done"], 20_000);
    assert!(j["paused_seconds"].as_f64().unwrap() > 0.0, "no pause while the server slept: {j}");
}

/// The server's slow log (every command logged), oldest first: each command's arguments (the
/// log keeps 32; a 33rd then says how many more there were) and the client that sent it.
fn logged(server: &RedisServer) -> Vec<(Vec<String>, String)> {
    let entries: Vec<redis::Value> =
        redis::cmd("SLOWLOG").arg("GET").arg(1_000_000).query(&mut server.admin_conn()).unwrap();
    let mut out: Vec<(Vec<String>, String)> = entries
        .into_iter()
        .map(|entry| {
            let redis::Value::Array(fields) = entry else { panic!("slow log entry {entry:?}") };
            // Binary arguments (RESTORE's payloads) as lossy text: only names and numbers are read.
            let args: Vec<Vec<u8>> = redis::from_redis_value(fields[3].clone()).unwrap();
            let args = args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            let client: String = redis::from_redis_value(fields[4].clone()).unwrap();
            (args, client)
        })
        .collect();
    out.reverse();
    out
}

/// The largest `COUNT` of the logged `SCAN`s (0: none logged).
fn largest_scan_count(log: &[(Vec<String>, String)]) -> usize {
    log.iter()
        .filter(|(args, _)| args[0].eq_ignore_ascii_case("SCAN"))
        .map(|(args, _)| {
            let at = args.iter().position(|a| a.eq_ignore_ascii_case("COUNT")).expect("SCAN with COUNT");
            args[at + 1].parse().unwrap()
        })
        .max()
        .unwrap_or(0)
}

/// The most `cmd`s one client sent one after another (a pipeline, when the client sends
/// something else between two of them).
fn longest_run(log: &[(Vec<String>, String)], cmd: &str) -> usize {
    let mut runs: std::collections::HashMap<&str, (usize, usize)> = std::collections::HashMap::new();
    for (args, client) in log {
        let (now, best) = runs.entry(client.as_str()).or_default();
        if args[0].eq_ignore_ascii_case(cmd) {
            *now += 1;
            *best = (*best).max(*now);
        } else {
            *now = 0;
        }
    }
    runs.values().map(|r| r.1).max().unwrap_or(0)
}

/// Every command that scans or pipelines — `scan`, `export`, `import`, `survey`, `status` —
/// takes its SCAN COUNT and its keys per pipeline from `--max-latency` (as delete and copy do):
/// none sends the default `COUNT 1000` or a 1000-key pipeline under `--max-latency 2`, and
/// each does without the bound (so the log would show it).
#[test]
fn max_latency_shapes_scan_export_import_survey_and_status() {
    let server =
        RedisServer::builder().config("slowlog-log-slower-than", "0").config("slowlog-max-len", "1000000").start();
    let url = server.url();
    let (code, out, err) =
        psor_tests::cli::output(&mut psor(&url, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "3000"]));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    populate(&server, "s:", 3_000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.psnap");
    let f = file.to_str().unwrap();
    // Keys per RESTORE pipeline: every key of the file exists already (the same content), so
    // each batch's RESTOREs are followed by that batch's DUMPs, on the writer's connection.
    let (code, out, err) = psor_tests::cli::output(&mut psor(&url, &["export", "--prefix", "s:", "--output", f]));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let runs: [(&str, Vec<&str>); 5] = [
        ("scan", vec!["scan", "--prefix", "s:", "--count-only"]),
        ("export", vec!["export", "--prefix", "s:", "--output", "OUT", "--overwrite"]),
        ("import", vec!["import", f]),
        ("survey", vec!["survey", "--prefix", "s:"]),
        ("status", vec!["status", "MyPAC"]),
    ];
    let out_file = dir.path().join("again.psnap");
    let mut wrong = Vec::new();
    for bound in [Some("2"), None] {
        for (name, args) in &runs {
            let mut all: Vec<&str> = bound.map_or(vec![], |b| vec!["--max-latency", b]);
            all.extend(args.iter().map(|a| if *a == "OUT" { out_file.to_str().unwrap() } else { a }));
            redis::cmd("SLOWLOG").arg("RESET").exec(&mut server.admin_conn()).unwrap();
            let (code, out, err) = psor_tests::cli::output(&mut psor(&url, &all));
            assert_eq!(code, 0, "psor {all:?}\nstdout: {out}\nstderr: {err}");
            let log = logged(&server);
            let (count, restores) = (largest_scan_count(&log), longest_run(&log, "RESTORE"));
            let (what, got, ok) = match (*name, bound) {
                ("import", Some(_)) => ("RESTOREs in a row", restores, (1..=500).contains(&restores)),
                ("import", None) => ("RESTOREs in a row", restores, restores == 1000),
                (_, Some(_)) => ("SCAN COUNT", count, (1..=500).contains(&count)),
                (_, None) => ("SCAN COUNT", count, count == 1000),
            };
            if !ok {
                wrong.push(format!("{name} with --max-latency {bound:?}: {what} {got}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
