//! The `psor` binary's connection and file safety rules, against real redis-server processes and real files:
//! identity by the server not by the spelling, the user psor names is the user it runs as,
//! secrets never in errors, nothing waits forever, backups and exports never replace a file
//! by surprise, and one `file:` store is never written by two processes at once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use psor_tests::cli::{self, json, output as run};
use psor_tests::{unique_prefix, RedisServer};

fn psor(args: &[&str]) -> Command {
    cli::command(env!("CARGO_BIN_EXE_psor"), args)
}

/// Runs `cmd`, killing it (and failing the test) if it runs longer than `limit`.
fn run_within(cmd: &mut Command, limit: Duration) -> (i32, String, String, Duration) {
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("psor runs");
    loop {
        if child.try_wait().expect("wait").is_some() {
            let out = child.wait_with_output().expect("output");
            return (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
                started.elapsed(),
            );
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("psor still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn set_keys(server: &RedisServer, prefix: &str, n: usize) {
    let mut con = server.admin_conn();
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("SET").arg(format!("{prefix}{i}")).arg(i).ignore();
    }
    p.query::<()>(&mut con).unwrap();
}

fn count(server: &RedisServer, pattern: &str) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut server.admin_conn()).unwrap();
    keys.len()
}

fn cmdstat(server: &RedisServer, cmd: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut server.admin_conn()).unwrap();
    let line = format!("cmdstat_{cmd}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn another_spelling_of_the_same_server_is_the_same_server() {
    let server = RedisServer::start();
    let ns = unique_prefix("spelling");
    let a = format!("{ns}a:");
    set_keys(&server, &a, 300);
    let url = format!("redis://127.0.0.1:{}", server.port());
    let other = format!("redis://localhost:{}", server.port());
    let to = format!("{a}b:");

    // Overlapping prefixes on one server, reached as `localhost`: refused, nothing written.
    let (code, _, err) =
        run(&mut psor(&["--psor", &url, "copy", "--prefix", &a, "--to-prefix", &to, "--target", &other]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("overlap"), "{err}");
    let (code, _, err) = run(&mut psor(&[
        "--psor",
        &url,
        "--yes",
        "copy",
        "--move",
        "--prefix",
        &a,
        "--to-prefix",
        &to,
        "--target",
        &other,
    ]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(count(&server, &format!("{a}*")), 300);
    assert_eq!(count(&server, &format!("{to}*")), 0);

    // A copy to another prefix through the other spelling takes the same-server path (COPY).
    let c = format!("{ns}c:");
    let restores = cmdstat(&server, "restore");
    let (code, out, err) =
        run(&mut psor(&["--psor", &url, "--json", "copy", "--prefix", &a, "--to-prefix", &c, "--target", &other]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["done"].as_u64(), Some(300), "{out}");
    assert_eq!(count(&server, &format!("{c}*")), 300);
    assert!(cmdstat(&server, "copy") >= 300, "COPY was not used");
    assert_eq!(cmdstat(&server, "restore"), restores, "keys went through DUMP/RESTORE");

    // Another database of the same server is another keyspace.
    let db1 = format!("redis://localhost:{}/1", server.port());
    let (code, _, err) =
        run(&mut psor(&["--psor", &url, "copy", "--prefix", &a, "--to-prefix", &to, "--target", &db1]));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_user_without_a_password_is_the_user_psor_runs_as() {
    let server = RedisServer::start();
    let mut admin = server.admin_conn();
    let ns = unique_prefix("nopass");
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("bob")
        .arg("on")
        .arg("nopass")
        .arg("~bobonly:*")
        .arg("-@all")
        .arg("+info")
        .arg("+scan")
        .arg("+dbsize")
        .query::<()>(&mut admin)
        .unwrap();
    let key = format!("{ns}other:k");
    redis::cmd("SET").arg(&key).arg("v").query::<()>(&mut admin).unwrap();

    let url = format!("redis://bob@127.0.0.1:{}", server.port());
    let prefix = format!("{ns}other:");
    let (code, out, err) = run(&mut psor(&["--psor", &url, "--json", "--yes", "delete", "--prefix", &prefix]));
    // bob may SCAN but not UNLINK: the key is a failure, not deleted as `default`.
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(count(&server, &key), 1, "the key was deleted by someone other than bob");
    assert!(format!("{out}{err}").to_lowercase().contains("noperm"), "{out}{err}");

    // A user that needs a password and gets none is refused, not run as `default`.
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("carl")
        .arg("on")
        .arg(">pw1")
        .arg("~*")
        .arg("+@all")
        .query::<()>(&mut admin)
        .unwrap();
    let url = format!("redis://carl@127.0.0.1:{}", server.port());
    let (code, _, err) = run(&mut psor(&["--psor", &url, "--yes", "delete", "--prefix", &prefix]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(count(&server, &key), 1);
    // ...and the error says what was sent and how to give the password.
    assert!(err.contains("user `carl` with no password"), "{err}");
    assert!(err.contains("redis://carl:PASSWORD@HOST:PORT") && err.contains("--password-file"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    // A wrong password names where it came from (a stale variable, say), never the password.
    let mut cmd = psor(&["--psor", &url, "--yes", "delete", "--prefix", &prefix]);
    cmd.env("PSOR_PASSWORD", "stale-pw-9");
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refused user `carl` with the password from PSOR_PASSWORD"), "{err}");
    assert!(!err.contains("stale-pw-9"), "{err}");
    assert_eq!(count(&server, &key), 1);

    // The right one from the same variable connects as carl.
    let mut cmd = psor(&["--psor", &url, "--json", "scan", "--prefix", &prefix, "--count-only"]);
    cmd.env("PSOR_PASSWORD", "pw1");
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["matched"], 1, "{out}");
}

#[test]
fn passwords_with_slashes_connect_and_bad_specs_show_no_secret() {
    let server = RedisServer::start();
    let mut admin = server.admin_conn();
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("carol")
        .arg("on")
        .arg(">Sup3r/S3cret")
        .arg("~*")
        .arg("+@all")
        .query::<()>(&mut admin)
        .unwrap();
    let url = format!("redis://carol:Sup3r/S3cret@127.0.0.1:{}", server.port());
    let (code, out, err) = run(&mut psor(&["--psor", &url, "--json", "scan", "--prefix", "x:", "--count-only"]));
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("S3cret") && !err.contains("S3cret"), "{out}{err}");

    for (spec, secrets) in [
        ("redis://carol:Sup3r/S3cret@127.0.0.1:notaport", &["Sup3r", "S3cret"][..]),
        ("redis,user:S3cretPW@127.0.0.1:1", &["S3cretPW"][..]),
        ("redis://127.0.0.1:21001:21002", &[][..]),
        ("redis://no such host:1", &[][..]),
    ] {
        for json_flag in [false, true] {
            for via_env in [false, true] {
                let mut args = vec![];
                if !via_env {
                    args.extend(["--psor", spec]);
                }
                if json_flag {
                    args.push("--json");
                }
                args.extend(["scan", "--prefix", "a:"]);
                let mut cmd = psor(&args);
                if via_env {
                    cmd.env("PSOR_URL", spec);
                }
                let (code, out, err, took) = run_within(&mut cmd, Duration::from_secs(20));
                assert_eq!(code, 2, "{spec}: {out}{err}");
                assert!(err.contains("bad PSOR spec") || out.contains("bad PSOR spec"), "{spec}: {out}{err}");
                assert!(!err.contains("lookup") && !out.contains("lookup"), "{spec}: {out}{err}");
                assert!(took < Duration::from_secs(5), "{spec}: {took:?}");
                for s in secrets {
                    assert!(!out.contains(s) && !err.contains(s), "{spec}: {out}{err}");
                }
            }
        }
    }
}

#[test]
fn a_server_that_never_answers_is_given_up_on() {
    // Accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let url = format!("redis://127.0.0.1:{port}");
    let (code, out, err, took) =
        run_within(&mut psor(&["--psor", &url, "scan", "--prefix", "a:"]), Duration::from_secs(30));
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port} did not answer")) && err.contains("within 5 s"), "{err}");
    assert!(took < Duration::from_secs(15), "{took:?}");

    // With a password, the AUTH psor sends on connecting is what goes unanswered.
    let with_auth = format!("redis://u:pw@127.0.0.1:{port}");
    let (code, _, err, took) = run_within(
        &mut psor(&["--psor", &with_auth, "--connect-timeout", "1", "scan", "--prefix", "a:"]),
        Duration::from_secs(30),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("did not answer the connection or its AUTH/SELECT within 1 s"), "{err}");
    assert!(!err.contains("pw@"), "{err}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    let (code, _, err, took) = run_within(
        &mut psor(&[
            "--psor",
            &format!("rediss://127.0.0.1:{port}"),
            "--connect-timeout",
            "1",
            "scan",
            "--prefix",
            "a:",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("did not answer the TLS handshake within 1 s (is it a TLS port?)"), "{err}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn tls_against_a_plain_server_is_given_up_on() {
    let server = RedisServer::start();
    let url = format!("rediss://127.0.0.1:{}", server.port());
    for extra in [&[][..], &["--tls-insecure"][..]] {
        let mut args = vec!["--psor", url.as_str()];
        args.extend(extra);
        args.extend(["scan", "--prefix", "a:"]);
        let (code, out, err, took) = run_within(&mut psor(&args), Duration::from_secs(40));
        assert_eq!(code, 1, "{out}{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(&format!("127.0.0.1:{}", server.port())), "{err}");
        assert!(took < Duration::from_secs(15), "{took:?}");
    }
}

/// A `file:` store holding MyPAC at 8.0 (quiesced) and 9.0 (running): ready for rem-old-pac.
fn pac_store(dir: &std::path::Path) -> String {
    let store = format!("file:{}", dir.join("rb.psnap").display());
    for args in [
        &["sample", "MyPAC", "--product-version", "8.0", "--keys", "10"][..],
        &["--yes", "create", "MyPAC", "--product-version", "9.0"][..],
        &["set-mode", "MyPAC", "running", "--product-version", "9.0"][..],
        &["set-mode", "MyPAC", "quiesce", "--product-version", "8.0"][..],
    ] {
        let mut all = vec!["--psor", store.as_str()];
        all.extend(args);
        let (code, _, err) = run(&mut psor(&all));
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    store
}

fn keys_under(store: &str, prefix: &str) -> u64 {
    let (code, out, err) = run(&mut psor(&["--psor", store, "--json", "scan", "--prefix", prefix, "--count-only"]));
    assert_eq!(code, 0, "{err}");
    json(&out)["matched"].as_u64().unwrap()
}

/// A valid snapshot file at `path` (an export of an empty prefix), then returns its bytes.
fn some_snapshot(store: &str, path: &std::path::Path) -> Vec<u8> {
    let (code, _, err) =
        run(&mut psor(&["--psor", store, "export", "--prefix", "MyPAC_9.0:pac:", "-o", path.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    std::fs::read(path).unwrap()
}

#[test]
fn backups_never_replace_a_file_by_surprise() {
    let dir = tempfile::tempdir().unwrap();
    let store = pac_store(dir.path());
    let old_keys = keys_under(&store, "MyPAC_8.0:");
    assert!(old_keys > 10);
    let rem = |extra: &[&str]| {
        let mut args = vec!["--psor", store.as_str(), "--yes", "rem-old-pac", "MyPAC", "--force"];
        args.extend(extra);
        run(&mut psor(&args))
    };

    // An existing backup file, no --overwrite: refused, the file and the old version untouched.
    let prev = dir.path().join("prev-backup.psnap");
    let prev_bytes = some_snapshot(&store, &prev);
    let (code, _, err) = rem(&["--backup", prev.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--overwrite"), "{err}");
    assert_eq!(std::fs::read(&prev).unwrap(), prev_bytes);
    assert_eq!(keys_under(&store, "MyPAC_8.0:"), old_keys);

    // The store's own file, spelled another way, even with --overwrite: refused.
    let store_file = dir.path().join("rb.psnap");
    let store_bytes = std::fs::read(&store_file).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let spelled = dir.path().join("sub").join("..").join("rb.psnap");
    let (code, _, err) = rem(&["--backup", spelled.to_str().unwrap(), "--overwrite"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("store being worked on"), "{err}");
    assert_eq!(std::fs::read(&store_file).unwrap(), store_bytes);

    // A newer format's file, with --overwrite: refused.
    let newer = dir.path().join("newer.psnap");
    let mut newer_bytes = prev_bytes.clone();
    newer_bytes[10..12].copy_from_slice(&5u16.to_le_bytes());
    std::fs::write(&newer, &newer_bytes).unwrap();
    let (code, _, err) = rem(&["--backup", newer.to_str().unwrap(), "--overwrite"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("newer"), "{err}");
    assert_eq!(std::fs::read(&newer).unwrap(), newer_bytes);
    assert_eq!(keys_under(&store, "MyPAC_8.0:"), old_keys);

    // Asked for, an older snapshot is replaced.
    let (code, out, err) = rem(&["--backup", prev.to_str().unwrap(), "--overwrite"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(keys_under(&store, "MyPAC_8.0:"), 0);
    assert_ne!(std::fs::read(&prev).unwrap(), prev_bytes);
}

#[test]
fn exports_never_replace_the_store_or_a_newer_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m2.psnap");
    let store = format!("file:{}", file.display());
    let (code, _, err) =
        run(&mut psor(&["--psor", &store, "sample", "MyPAC", "--product-version", "8.0", "--keys", "10"]));
    assert_eq!(code, 0, "{err}");
    let keys = keys_under(&store, "MyPAC");
    let bytes = std::fs::read(&file).unwrap();

    // Exporting a store into its own file: refused, with or without --overwrite.
    for extra in [&[][..], &["--overwrite"][..]] {
        let mut args =
            vec!["--psor", store.as_str(), "export", "--prefix", "MyPAC_8.0:pac:", "-o", file.to_str().unwrap()];
        args.extend(extra);
        let (code, _, err) = run(&mut psor(&args));
        assert_eq!(code, 2, "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), bytes);
    }
    assert_eq!(keys_under(&store, "MyPAC"), keys);

    // A newer format's file: refused even with --overwrite.
    let newer = dir.path().join("newer.psnap");
    let mut newer_bytes = bytes.clone();
    newer_bytes[10..12].copy_from_slice(&5u16.to_le_bytes());
    std::fs::write(&newer, &newer_bytes).unwrap();
    let (code, _, err) = run(&mut psor(&[
        "--psor",
        &store,
        "export",
        "--prefix",
        "MyPAC_8.0:",
        "-o",
        newer.to_str().unwrap(),
        "--overwrite",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("newer"), "{err}");
    assert_eq!(std::fs::read(&newer).unwrap(), newer_bytes);

    // The rehearsal's backup: the same rule, checked before the rehearsal starts.
    let s1 = dir.path().join("s1.psnap");
    let s1_bytes = some_snapshot(&store, &s1);
    let (code, _, err) = run(&mut psor(&["rehearse", "--keys", "10", "--backup", s1.to_str().unwrap()]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(std::fs::read(&s1).unwrap(), s1_bytes);
    let (code, _, err) =
        run(&mut psor(&["rehearse", "--keys", "10", "--backup", newer.to_str().unwrap(), "--overwrite"]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(std::fs::read(&newer).unwrap(), newer_bytes);
    let (code, _, err) = run(&mut psor(&["rehearse", "--keys", "10", "--backup", s1.to_str().unwrap(), "--overwrite"]));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn two_processes_on_one_file_store_never_lose_writes() {
    for trial in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("file:{}", dir.path().join("conc.psnap").display());
        let children: Vec<_> = ["PACA", "PACB"]
            .iter()
            .map(|pac| {
                psor(&["--psor", &store, "sample", pac, "--product-version", "8.0", "--keys", "2000"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut ok = Vec::new();
        for (pac, child) in ["PACA", "PACB"].iter().zip(children) {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            match out.status.code() {
                Some(0) => ok.push(*pac),
                // Refused, clearly, before writing anything: allowed, never a lost success.
                Some(2) => assert!(err.contains("in use by another psor process"), "trial {trial}: {err}"),
                other => panic!("trial {trial}: {pac} exited {other:?}: {err}"),
            }
        }
        assert!(!ok.is_empty(), "trial {trial}: neither run succeeded");
        for pac in ok {
            let n = keys_under(&store, &format!("{pac}_8.0:"));
            assert!(n > 2000, "trial {trial}: {pac} exited 0 but the store holds {n} of its keys");
        }
    }
}

#[test]
fn a_store_held_by_another_process_is_refused_after_a_bounded_wait() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("held.psnap");
    // Another process holds the store's lock (the test process, as another psor would).
    let lock = std::fs::File::create(dir.path().join("held.psnap.lock")).unwrap();
    lock.try_lock().unwrap();
    let store = format!("file:{}", file.display());
    let (code, _, err, took) = run_within(
        &mut psor(&["--psor", &store, "sample", "P", "--product-version", "8.0", "--keys", "10"]),
        Duration::from_secs(40),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("in use by another psor process"), "{err}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(!file.exists(), "written while another process held the store");
    drop(lock);
    let (code, _, err) = run(&mut psor(&["--psor", &store, "sample", "P", "--product-version", "8.0", "--keys", "10"]));
    assert_eq!(code, 0, "{err}");
}
