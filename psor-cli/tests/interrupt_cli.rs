//! Ctrl-C as a request, not a crash: real `psor` processes on a real server, sent SIGINT
//! midway through a paced run. Each must exit 130, print its normal report marked
//! `interrupted` whose counts are exactly what changed on the server, and a rerun of the
//! same command must finish the job.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use psor_tests::RedisServer;

const KEYS: u64 = 20_000;

fn psor(url: &str, args: &[&str]) -> Command {
    psor_tests::cli::command_at(env!("CARGO_BIN_EXE_psor"), url, args)
}

fn populate(server: &RedisServer, prefix: &str, n: u64) {
    psor_tests::cli::set_numbered(&mut server.admin_conn(), prefix, n);
}

fn count(server: &RedisServer, prefix: &str) -> u64 {
    let mut con = server.admin_conn();
    let mut n = 0u64;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(10_000)
            .query(&mut con)
            .unwrap();
        n += keys.len() as u64;
        cursor = next;
        if cursor == 0 {
            return n;
        }
    }
}

/// Spawns `cmd`, waits until `started` says the run is midway, sends SIGINT, and returns
/// (exit code, stdout, stderr).
fn interrupt_midway(mut cmd: Command, started: impl Fn() -> bool) -> (i32, String, String) {
    let child: Child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("psor runs");
    let t = Instant::now();
    while !started() {
        assert!(t.elapsed() < Duration::from_secs(60), "the run never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    // In-flight batches finish, nothing more: a few seconds at most.
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?} to stop", t.elapsed());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(out: &str) -> serde_json::Value {
    psor_tests::cli::json(out)
}

#[test]
fn sigint_mid_delete_reports_exact_counts_and_a_rerun_finishes() {
    let server = RedisServer::start();
    let url = server.url();
    populate(&server, "d:", KEYS);
    populate(&server, "keep:", 100);
    let args = ["--yes", "--json", "--rate", "4000", "--batch", "100", "delete", "--prefix", "d:"];
    let (code, out, err) = interrupt_midway(psor(&url, &args), || count(&server, "d:") < KEYS - 1_000);
    assert_eq!(code, 130, "stdout: {out}\nstderr: {err}");
    let v = json(&out);
    assert_eq!(v["interrupted"].as_bool(), Some(true), "{v}");
    let left = count(&server, "d:");
    assert!(left > 0, "interrupted before the end");
    assert_eq!(v["done"].as_u64(), Some(KEYS - left), "the report counts exactly what was deleted: {v}");

    // Text report says so and how to finish.
    let (code, out, err) = psor_tests::cli::output(&mut psor(&url, &["--yes", "delete", "--prefix", "d:"]));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(!out.contains("interrupted"), "{out}");
    assert_eq!(count(&server, "d:"), 0);
    assert_eq!(count(&server, "keep:"), 100);
}

#[test]
fn sigint_mid_copy_and_mid_move_then_rerun_completes() {
    for mv in [false, true] {
        let server = RedisServer::start();
        let url = server.url();
        populate(&server, "src:", KEYS);
        let mut args = vec!["--yes", "--json", "--rate", "4000", "--batch", "100", "copy", "--prefix", "src:"];
        args.extend(["--to-prefix", "dst:"]);
        if mv {
            args.push("--move");
        }
        let (code, out, err) = interrupt_midway(psor(&url, &args), || count(&server, "dst:") > 1_000);
        assert_eq!(code, 130, "move {mv}: stdout: {out}\nstderr: {err}");
        let v = json(&out);
        assert_eq!(v["interrupted"].as_bool(), Some(true), "{v}");
        let copied = count(&server, "dst:");
        assert!(copied < KEYS, "interrupted before the end");
        assert_eq!(v["done"].as_u64(), Some(copied), "the report counts exactly what was copied: {v}");
        if mv {
            // A move deletes a source only once its copy is confirmed: none lost, none doubled.
            assert_eq!(count(&server, "src:") + copied, KEYS);
        }
        let args: Vec<&str> = args.into_iter().filter(|a| !matches!(*a, "--rate" | "4000")).collect();
        let (code, out, err) = psor_tests::cli::output(&mut psor(&url, &args));
        assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
        let v = json(&out);
        assert_eq!(v.get("interrupted"), None, "{v}");
        assert_eq!(count(&server, "dst:"), KEYS);
        assert_eq!(count(&server, "src:"), if mv { 0 } else { KEYS });
    }
}

#[test]
fn sigint_mid_export_leaves_no_file_and_a_rerun_writes_it() {
    let server = RedisServer::start();
    let url = server.url();
    populate(&server, "x:", KEYS);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.psnap");
    let f = file.to_str().unwrap();
    let args = ["--json", "--rate", "4000", "--batch", "100", "export", "--prefix", "x:", "--output", f];
    // Export gives no live signal on the server: interrupt after a second of a ~5 s run.
    let t = Instant::now();
    let (code, out, err) = interrupt_midway(psor(&url, &args), || t.elapsed() > Duration::from_secs(1));
    assert_eq!(code, 130, "stdout: {out}\nstderr: {err}");
    assert!(err.contains("rerun the same command"), "{err}");
    assert_eq!(json(&out)["interrupted"].as_bool(), Some(true), "{out}");
    assert!(!file.exists(), "a partial export is never left as if complete");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "no temp file left: {leftovers:?}");
    let (code, out, err) = psor_tests::cli::output(&mut psor(&url, &args[5..]));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(file.exists());
}

#[test]
fn sigint_mid_import_reports_exact_counts_and_a_rerun_finishes() {
    let server = RedisServer::start();
    let url = server.url();
    populate(&server, "i:", KEYS);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("i.psnap");
    let f = file.to_str().unwrap();
    let (code, out, err) = psor_tests::cli::output(&mut psor(&url, &["export", "--prefix", "i:", "--output", f]));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let args = ["--json", "--rate", "4000", "--batch", "100", "import", f, "--rename", "i:=j:"];
    let (code, out, err) = interrupt_midway(psor(&url, &args), || count(&server, "j:") > 1_000);
    assert_eq!(code, 130, "stdout: {out}\nstderr: {err}");
    let v = json(&out);
    assert_eq!(v["interrupted"].as_bool(), Some(true), "{v}");
    let restored = count(&server, "j:");
    assert!(restored < KEYS, "interrupted before the end");
    assert_eq!(v["done"].as_u64(), Some(restored), "the report counts exactly what was restored: {v}");
    let (code, out, err) = psor_tests::cli::output(&mut psor(&url, &["--json", "import", f, "--rename", "i:=j:"]));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let v = json(&out);
    assert_eq!((v["unchanged"].as_u64(), v["done"].as_u64()), (Some(restored), Some(KEYS - restored)), "{v}");
    assert_eq!(count(&server, "j:"), KEYS);
}

#[test]
fn sigint_mid_create_keeps_the_record_creating_and_a_rerun_completes() {
    let server = RedisServer::start();
    let url = server.url();
    let (code, out, err) =
        psor_tests::cli::output(&mut psor(&url, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "20000"]));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let old = count(&server, "MyPAC_8.0:");
    let args = ["--json", "--rate", "4000", "--batch", "100", "create", "MyPAC", "--product-version", "9.0"];
    let (code, out, err) = interrupt_midway(psor(&url, &args), || count(&server, "MyPAC_9.0:") > 1_000);
    assert_eq!(code, 130, "stdout: {out}\nstderr: {err}");
    let v = json(&out);
    assert_eq!(v["interrupted"].as_bool(), Some(true), "{v}");
    assert_eq!(v["complete"].as_bool(), Some(false), "{v}");
    let copied = count(&server, "MyPAC_9.0:") - 1; // less the PAC record
    assert_eq!(v["counts"]["done"].as_u64(), Some(copied), "the report counts exactly what was copied: {v}");
    assert!(copied + 1 < old, "interrupted before the end");

    // Not runnable yet: the record says "creating".
    let (code, _, err) =
        psor_tests::cli::output(&mut psor(&url, &["set-mode", "MyPAC", "running", "--product-version", "9.0"]));
    assert_ne!(code, 0, "{err}");

    let rerun = ["--json", "create", "MyPAC", "--product-version", "9.0"];
    let (code, out, err) = psor_tests::cli::output(&mut psor(&url, &rerun));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let v = json(&out);
    assert_eq!((v["complete"].as_bool(), v["resumed"].as_bool()), (Some(true), Some(true)), "{v}");
    assert_eq!(v["counts"]["unchanged"].as_u64(), Some(copied), "what was copied is kept: {v}");
    let done = v["counts"]["done"].as_u64().unwrap();
    assert_eq!(count(&server, "MyPAC_9.0:"), copied + done + 1, "the stores and the record, no more");
    let (code, out, err) =
        psor_tests::cli::output(&mut psor(&url, &["set-mode", "MyPAC", "running", "--product-version", "9.0"]));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
}

#[test]
fn sigint_while_pacing_waits_stops_at_once() {
    // --rate 20 with batches of 1000: each batch owes 50 s; an interrupt must not wait it out.
    let server = RedisServer::start();
    let url = server.url();
    populate(&server, "p:", KEYS);
    let args = ["--yes", "--json", "--rate", "20", "--batch", "1000", "delete", "--prefix", "p:"];
    let t = Instant::now();
    let (code, out, err) = interrupt_midway(psor(&url, &args), || t.elapsed() > Duration::from_secs(1));
    assert_eq!(code, 130, "stdout: {out}\nstderr: {err}");
    let v = json(&out);
    assert_eq!(v["interrupted"].as_bool(), Some(true), "{v}");
    assert_eq!(v["done"].as_u64(), Some(KEYS - count(&server, "p:")), "{v}");
}

#[test]
fn a_second_sigint_exits_at_once_without_the_graceful_report() {
    let server = RedisServer::start();
    let url = server.url();
    populate(&server, "d:", KEYS);
    let args = ["--yes", "--json", "--rate", "4000", "--batch", "100", "delete", "--prefix", "d:"];
    let mut child = psor(&url, &args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("psor runs");
    let t = Instant::now();
    while count(&server, "d:") > KEYS - 1_000 {
        assert!(t.elapsed() < Duration::from_secs(60), "the run never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Writes now wait on the server for 20 s: the batch in flight cannot finish, so a
    // graceful stop (the first signal) would wait that long and then print its report.
    redis::cmd("CLIENT").arg("PAUSE").arg(20_000).arg("WRITE").query::<()>(&mut server.admin_conn()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    let sigint = || assert!(Command::new("kill").arg("-INT").arg(&pid).status().unwrap().success());
    sigint();
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "the first signal waits for the batch in flight");
    sigint();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "stdout: {stdout}\nstderr: {stderr}");
    // Not the graceful stop: no report, no "rerun" line.
    assert!(!stdout.contains("interrupted"), "{stdout}");
    assert!(!stderr.contains("rerun the same command"), "{stderr}");
    redis::cmd("CLIENT").arg("UNPAUSE").query::<()>(&mut server.admin_conn()).unwrap();
}

/// MyPAC at 8.0 (Quiesce, `keys` stores, no region registered) and at 9.0 (Running, a copy).
fn old_and_new_pac(url: &str, server: &RedisServer, keys: &str) {
    for args in [
        &["sample", "MyPAC", "--product-version", "8.0", "--keys", keys][..],
        &["--yes", "create", "MyPAC", "--product-version", "9.0"],
        &["set-mode", "MyPAC", "running", "--product-version", "9.0"],
        &["set-mode", "MyPAC", "quiesce", "--product-version", "8.0"],
    ] {
        let (code, out, err) = psor_tests::cli::output(&mut psor(url, args));
        assert_eq!(code, 0, "psor {args:?}\nstdout: {out}\nstderr: {err}");
    }
    redis::cmd("DEL").arg("MyPAC_8.0:regions:{MyPAC_8.0}").query::<()>(&mut server.admin_conn()).unwrap();
}

#[test]
fn sigint_mid_rem_old_pac_reports_exact_counts_and_a_rerun_finishes() {
    let server = RedisServer::start();
    let url = server.url();
    old_and_new_pac(&url, &server, "20000");
    let old = count(&server, "MyPAC_8.0:");
    let new = count(&server, "MyPAC_9.0:");
    let args = ["--yes", "--json", "--rate", "4000", "--batch", "100", "rem-old-pac", "MyPAC"];
    let (code, out, err) = interrupt_midway(psor(&url, &args), || count(&server, "MyPAC_8.0:") + 1_000 < old);
    assert_eq!(code, 130, "stdout: {out}\nstderr: {err}");
    let v = json(&out);
    assert_eq!(v["interrupted"].as_bool(), Some(true), "{v}");
    let left = count(&server, "MyPAC_8.0:");
    assert!(left > 0, "interrupted before the end");
    let done = v["deleted"][0]["counts"]["done"].as_u64();
    assert_eq!(done, Some(old - left), "the report counts exactly what was removed: {v}");
    assert_eq!(count(&server, "MyPAC_9.0:"), new, "the Running version is untouched");

    // Text report, not interrupted: the rest goes.
    let (code, out, err) = psor_tests::cli::output(&mut psor(&url, &["--yes", "--json", "rem-old-pac", "MyPAC"]));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let v = json(&out);
    assert_eq!(v.get("interrupted"), None, "{v}");
    assert_eq!(v["deleted"][0]["counts"]["done"].as_u64(), Some(left), "{v}");
    assert_eq!(count(&server, "MyPAC_8.0:"), 0);
    assert_eq!(count(&server, "MyPAC_9.0:"), new);
}

#[test]
fn sigint_mid_init_pac_writes_no_record_and_a_rerun_finishes() {
    let server = RedisServer::start();
    let url = server.url();
    let (code, out, err) =
        psor_tests::cli::output(&mut psor(&url, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "20000"]));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let old = count(&server, "MyPAC_8.0:");
    let args = ["--yes", "--json", "--rate", "4000", "--batch", "100", "init-pac", "MyPAC"];
    let args = [&args[..], &["--product-version", "9.0", "--force"]].concat();
    let (code, out, err) = interrupt_midway(psor(&url, &args), || count(&server, "MyPAC_8.0:") + 1_000 < old);
    assert_eq!(code, 130, "stdout: {out}\nstderr: {err}");
    let v = json(&out);
    assert_eq!(v["interrupted"].as_bool(), Some(true), "{v}");
    assert_eq!(v["record"], serde_json::Value::Null, "no fresh record before the old stores are gone: {v}");
    let left = count(&server, "MyPAC_8.0:");
    assert!(left > 0, "interrupted before the end");
    assert_eq!(v["deleted"][0]["counts"]["done"].as_u64(), Some(old - left), "exactly what was removed: {v}");
    assert_eq!(count(&server, "MyPAC_9.0:"), 0, "no fresh record yet");

    let rerun = [&["--yes", "--json", "init-pac", "MyPAC"][..], &["--product-version", "9.0", "--force"]].concat();
    let (code, out, err) = psor_tests::cli::output(&mut psor(&url, &rerun));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let v = json(&out);
    assert_eq!(v.get("interrupted"), None, "{v}");
    let removed: u64 = v["deleted"].as_array().unwrap().iter().map(|d| d["counts"]["done"].as_u64().unwrap()).sum();
    assert_eq!(removed, left, "{v}");
    assert_eq!(count(&server, "MyPAC_8.0:"), 0);
    assert_eq!(count(&server, "MyPAC_9.0:"), 1, "the fresh record, nothing else");
    assert_eq!(v["record"]["mode"].as_str().map(str::to_lowercase).as_deref(), Some("running"), "{v}");
}
