//! The `psor` binary as operators run it, against real redis-server processes: exit codes,
//! `--json`, binary-safe key output, prompts without a terminal, and passwords that never
//! appear in any output.

use std::process::Command;

use psor_tests::{populate_all_types, unique_prefix, RedisServer};

fn psor(args: &[&str]) -> Command {
    cli::command(env!("CARGO_BIN_EXE_psor"), args)
}

use psor_tests::cli::{self, json, output as run};

#[test]
fn delete_reports_json_and_exit_codes() {
    let server = RedisServer::start();
    let url = server.url();
    let ns = unique_prefix("cli-delete");
    populate_all_types(&mut server.admin_conn(), format!("{ns}a:").as_bytes(), 40);
    let p = format!("{ns}a:");

    let (code, out, _) = run(&mut psor(&["--psor", &url, "--json", "delete", "--prefix", &p, "--dry-run"]));
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!((v["matched"].as_u64(), v["dry_run"].as_bool()), (Some(40), Some(true)));

    // Not on a terminal and no --yes: refused, one line, nothing deleted.
    let (code, out, err) = run(&mut psor(&["--psor", &url, "delete", "--prefix", &p]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert!(out.is_empty());
    let (_, out, _) = run(&mut psor(&["--psor", &url, "--json", "scan", "--prefix", &p, "--count-only"]));
    assert_eq!(json(&out)["matched"].as_u64(), Some(40));

    let (code, out, _) = run(&mut psor(&["--psor", &url, "--json", "--yes", "delete", "--prefix", &p]));
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!((v["done"].as_u64(), v["failed"].as_u64()), (Some(40), Some(0)));
    assert!(v["seconds"].as_f64().is_some());
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    for args in [
        &["--psor", "mysql://x", "scan", "--prefix", "a"][..],
        &["--psor", "redis://127.0.0.1:1", "delete", "--prefix", "", "--yes"][..],
        &["--psor", "redis://127.0.0.1:1", "delete", "--prefix", "bad\\q", "--yes"][..],
        &["scan", "--prefix", "a"][..],
        &["--psor", "redis,onlyhost", "scan", "--prefix", "a"][..],
    ] {
        let (code, out, err) = run(&mut psor(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("psor: "), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
    // A server that is not there: the operation failed (1), with the address named.
    let (code, _, err) = run(&mut psor(&["--psor", "redis://127.0.0.1:1", "scan", "--prefix", "a"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
fn copy_conflicts_exit_3_and_leave_the_target_alone() {
    let server = RedisServer::start();
    let url = server.url();
    let mut conn = server.admin_conn();
    let ns = unique_prefix("cli-copy");
    let (a, b) = (format!("{ns}a:"), format!("{ns}b:"));
    populate_all_types(&mut conn, a.as_bytes(), 12);
    let _: () = redis::cmd("SET").arg(format!("{a}x")).arg("mine").query(&mut conn).unwrap();
    let _: () = redis::cmd("SET").arg(format!("{b}x")).arg("theirs").query(&mut conn).unwrap();
    let (code, out, _) = run(&mut psor(&["--psor", &url, "--json", "copy", "--prefix", &a, "--to-prefix", &b]));
    assert_eq!(code, 3);
    let v = json(&out);
    assert_eq!((v["done"].as_u64(), v["conflicts"].as_u64()), (Some(12), Some(1)));
    let theirs: String = redis::cmd("GET").arg(format!("{b}x")).query(&mut conn).unwrap();
    assert_eq!(theirs, "theirs");
    // --replace is destructive: it asks, so without a terminal it needs --yes.
    let (code, _, err) = run(&mut psor(&["--psor", &url, "copy", "--prefix", &a, "--to-prefix", &b, "--replace"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, _) =
        run(&mut psor(&["--psor", &url, "--yes", "copy", "--prefix", &a, "--to-prefix", &b, "--replace"]));
    assert_eq!(code, 0);
}

#[test]
fn keys_print_escaped_raw_or_nul_separated() {
    let server = RedisServer::start();
    let url = server.url();
    let mut conn = server.admin_conn();
    let ns = unique_prefix("cli-scan");
    let key = [ns.as_bytes(), b"a b\n\x00*\xff"].concat();
    let _: () = redis::cmd("SET").arg(&key).arg("v").query(&mut conn).unwrap();
    let (_, out, _) = run(&mut psor(&["--psor", &url, "scan", "--prefix", &ns]));
    assert_eq!(out, format!("\"{ns}a b\\n\\x00*\\xff\"\n"));
    let raw = psor(&["--psor", &url, "--raw", "scan", "-0", "--prefix", &ns]).output().unwrap().stdout;
    assert_eq!(raw, [key.as_slice(), b"\0"].concat());
    // The escaped form is accepted back as a prefix.
    let (_, out, _) =
        run(&mut psor(&["--psor", &url, "--json", "scan", "--prefix", &format!("{ns}a b\\n\\x00"), "--count-only"]));
    assert_eq!(json(&out)["matched"].as_u64(), Some(1));
}

#[test]
fn a_closed_stdout_is_success() {
    let server = RedisServer::start();
    let ns = unique_prefix("cli-pipe");
    populate_all_types(&mut server.admin_conn(), ns.as_bytes(), 3000);
    let script = format!(
        "'{}' --psor '{}' scan --prefix '{ns}' | head -n 1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        env!("CARGO_BIN_EXE_psor"),
        server.url()
    );
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_password_never_appears_in_any_output() {
    let secret = "pw-Do-Not-Print-91";
    let server = RedisServer::builder().password(secret).start();
    let addr = server.addr();
    let good = format!("redis://:{secret}@{addr}");
    let bad = format!("redis://:{secret}X@{addr}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{secret}\n")).unwrap();
    let plain = format!("redis://{addr}");
    let pfile = file.path().to_str().unwrap();
    let runs: Vec<Vec<String>> = vec![
        vec![
            "--psor".into(),
            good.clone(),
            "--json".into(),
            "delete".into(),
            "-p".into(),
            "x:".into(),
            "--dry-run".into(),
        ],
        vec!["--psor".into(), good.clone(), "delete".into(), "-p".into(), "x:".into()],
        vec!["--psor".into(), bad.clone(), "scan".into(), "-p".into(), "x:".into()],
        vec!["--psor".into(), bad.clone(), "--json".into(), "scan".into(), "-p".into(), "x:".into()],
        vec!["--psor".into(), format!("{good}/notadb"), "scan".into(), "-p".into(), "x:".into()],
        vec![
            "--psor".into(),
            plain.clone(),
            "--password-file".into(),
            pfile.into(),
            "--json".into(),
            "copy".into(),
            "-p".into(),
            "x:".into(),
            "--to-prefix".into(),
            "y:".into(),
        ],
        vec![
            "--psor".into(),
            good.clone(),
            "copy".into(),
            "-p".into(),
            "x:".into(),
            "--to-prefix".into(),
            "y:".into(),
            "--target".into(),
            bad.clone(),
        ],
    ];
    let mut codes = Vec::new();
    for args in &runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = run(&mut psor(&args));
        assert!(!out.contains(secret) && !err.contains(secret), "{args:?}\n{out}\n{err}");
        codes.push(code);
    }
    // Environment variables and --help (which shows PSOR_URL's presence, not its value).
    let (code, out, err) =
        run(psor(&["--json", "scan", "-p", "x:"]).env("PSOR_URL", &plain).env("PSOR_PASSWORD", secret));
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(secret) && !err.contains(secret));
    let (_, out, err) = run(psor(&["--help"]).env("PSOR_URL", &good));
    assert!(!out.contains(secret) && !err.contains(secret), "{out}");
    assert_eq!(codes, vec![0, 0, 1, 1, 2, 0, 1], "the runs did what they should, so the check saw real output");
}

#[test]
fn completions_are_generated() {
    let (code, out, _) = run(&mut psor(&["completions", "bash"]));
    assert_eq!(code, 0);
    assert!(out.contains("psor") && out.contains("delete"));
}

#[test]
fn cluster_and_sentinel_specs_work_from_the_command_line() {
    let cluster = psor_tests::RedisCluster::start(3, 0);
    let ns = unique_prefix("cli-cluster");
    populate_all_types(&mut cluster.cluster_conn(), ns.as_bytes(), 60);
    let (code, out, err) = run(&mut psor(&["--psor", &cluster.url(), "--json", "--yes", "delete", "--prefix", &ns]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["done"].as_u64(), Some(60));

    let master = RedisServer::start();
    let sentinel = psor_tests::RedisSentinel::start(&master, "clim");
    populate_all_types(&mut master.admin_conn(), ns.as_bytes(), 30);
    let (code, out, err) =
        run(&mut psor(&["--psor", &sentinel.url("clim"), "--json", "scan", "--prefix", &ns, "--count-only"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["matched"].as_u64(), Some(30));
}

#[test]
fn rehearse_needs_no_server() {
    // No --psor, no PSOR_URL: the rehearsal builds its own embedded store.
    let (code, out, err) = run(&mut psor(&["--json", "rehearse", "--keys", "1500"]));
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    let steps: Vec<&str> =
        v["steps"].as_array().unwrap().iter().map(|s| s["procedure_step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["setup", "5", "6", "6", "10", "12", "13", "14", "14"]);
    assert_eq!(v["final_status"]["pacs"][0]["versions"][0]["version"].as_str(), Some("9.0"));
    // Human output names the procedure's steps and leaves no temporary files behind.
    let (code, out, _) = run(&mut psor(&["rehearse", "--keys", "500", "--pac", "Demo"]));
    assert_eq!(code, 0);
    assert!(out.contains("step 5") && out.contains("step 14") && out.contains("Remove the old PAC's stores"), "{out}");
}
