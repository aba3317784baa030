//! `psor verify` and the `--verify` of copy, import, create and rem-old-pac --backup as
//! operators run them against real servers: exit 0 when the same, 8 when anything differs,
//! `--json` counts named same/missing/extra/type/content/expiry/changed, and a PAC upgrade
//! verified store by store from the catalog.

use std::process::Command;

use psor_tests::cli::{json, output as run};
use psor_tests::{populate_all_types, unique_prefix, RedisServer};

fn psor(url: &str, args: &[&str]) -> Command {
    let mut cmd = psor_tests::cli::command(env!("CARGO_BIN_EXE_psor"), &["--psor", url]);
    cmd.args(args);
    cmd
}

fn ok(url: &str, args: &[&str], code: i32) -> String {
    let (c, out, err) = run(&mut psor(url, args));
    assert_eq!(c, code, "psor {args:?}\nstdout: {out}\nstderr: {err}");
    out
}

#[test]
fn verify_exit_codes_json_and_copy_import_verify() {
    let (s1, s2) = (RedisServer::start(), RedisServer::start());
    let (u1, u2) = (s1.url(), s2.url());
    let ns = unique_prefix("cli-verify");
    let (a, b) = (format!("{ns}A:"), format!("{ns}B:"));
    populate_all_types(&mut s1.admin_conn(), a.as_bytes(), 30);

    // copy --verify: the copy, then the verify in the same JSON object.
    let out = ok(&u1, &["--json", "copy", "--prefix", &a, "--to-prefix", &b, "--target", &u2, "--verify"], 0);
    let v = json(&out);
    assert_eq!(
        (v["done"].as_u64(), v["verify"]["same"].as_u64(), v["verify"]["missing"].as_u64()),
        (Some(30), Some(30), Some(0))
    );

    let out = ok(&u1, &["--json", "verify", "--prefix", &a, "--to-prefix", &b, "--target", &u2], 0);
    let v = json(&out);
    for k in ["same", "missing", "extra", "type", "content", "expiry", "changed"] {
        assert!(v[k].is_u64(), "{k} in {v}");
    }
    assert_eq!(v["same"].as_u64(), Some(30));
    // Settled by identical DUMP payloads: at least every key but the hashtable-encoded sets,
    // whose members a restore on another server may reorder.
    assert!(v["same_by_payload"].as_u64().is_some_and(|n| (25..=30).contains(&n)), "{v}");

    // One difference: exit 8, the key named, in the table and in JSON.
    redis::cmd("SET").arg(format!("{b}only-here")).arg("x").query::<()>(&mut s2.admin_conn()).unwrap();
    let out = ok(&u1, &["verify", "--prefix", &a, "--to-prefix", &b, "--target", &u2], 8);
    assert!(out.contains("extra, first 1 of 1:") && out.contains(&format!("{a}only-here")), "{out}");
    let v = json(&ok(&u1, &["--json", "verify", "--prefix", &a, "--to-prefix", &b, "--target", &u2, "--quick"], 8));
    assert_eq!((v["extra"].as_u64(), v["same"].as_u64(), v["quick"].as_bool()), (Some(1), Some(30), Some(true)));
    assert_eq!(v["differences"][0]["kind"].as_str(), Some("extra"));
    // Overlapping prefixes on one server: usage.
    ok(&u1, &["verify", "--prefix", &a, "--to-prefix", &format!("{a}x")], 2);

    // export, then import --rename --verify on the other server.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.psnap");
    let f = file.to_str().unwrap();
    ok(&u1, &["export", "--prefix", &a, "-o", f], 0);
    let c = format!("{ns}C:");
    let v = json(&ok(&u2, &["--json", "import", f, "--rename", &format!("{a}={c}"), "--verify"], 0));
    assert_eq!((v["done"].as_u64(), v["verify"]["same"].as_u64()), (Some(30), Some(30)), "{v}");
    // verify --snapshot: the live copy against the file, then one key changed.
    ok(&u2, &["verify", "--prefix", &c, "--to-prefix", &a, "--snapshot", f], 0);
    redis::cmd("APPEND").arg(format!("{c}plain:0")).arg("!").query::<()>(&mut s2.admin_conn()).unwrap();
    let v = json(&ok(&u2, &["--json", "verify", "--prefix", &c, "--to-prefix", &a, "--snapshot", f], 8));
    assert_eq!((v["content"].as_u64(), v["same"].as_u64()), (Some(1), Some(29)), "{v}");
}

#[test]
fn a_pac_upgrade_verified_by_the_catalog() {
    let server = RedisServer::start();
    let u = server.url();
    ok(&u, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "200"], 0);
    let v = json(&ok(&u, &["--json", "create", "MyPAC", "--product-version", "9.0", "--verify"], 0));
    assert_eq!((v["counts"]["done"].as_u64(), v["verify"]["same"].as_u64()), (Some(200), Some(200)), "{v}");
    let v = json(&ok(&u, &["--json", "verify", "MyPAC", "--from-version", "8.0", "--to-version", "9.0"], 0));
    let stores = v["stores"].as_array().unwrap();
    assert!(!stores.is_empty());
    let to = stores[0]["to_prefix"].as_str().unwrap().to_string();
    redis::cmd("SET").arg(format!("{to}planted")).arg("x").query::<()>(&mut server.admin_conn()).unwrap();
    let v = json(&ok(&u, &["--json", "verify", "MyPAC", "--from-version", "8.0", "--to-version", "9.0"], 8));
    assert_eq!((v["extra"].as_u64(), v["stores"][0]["extra"].as_u64()), (Some(1), Some(1)), "{v}");

    // rem-old-pac --backup: the backup is verified against the live keys before removal.
    ok(&u, &["set-mode", "MyPAC", "running", "--product-version", "9.0"], 0);
    ok(&u, &["set-mode", "MyPAC", "quiesce", "--product-version", "8.0"], 0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.psnap");
    let out = ok(&u, &["--yes", "rem-old-pac", "MyPAC", "--force", "--backup", file.to_str().unwrap()], 0);
    assert!(out.contains("verified against the live keys"), "{out}");
}

/// Spawns `cmd`, sends SIGINT after `after`, and returns (exit code, stdout, stderr).
fn interrupt_after(mut cmd: Command, after: std::time::Duration) -> (i32, String, String) {
    use std::process::Stdio;
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("psor runs");
    std::thread::sleep(after);
    let status = Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_interrupted_verify_reports_what_it_compared_and_exits_130() {
    const KEYS: u64 = 20_000;
    let server = RedisServer::start();
    let u = server.url();
    psor_tests::cli::set_numbered(&mut server.admin_conn(), "a:", KEYS);
    psor_tests::cli::set_numbered(&mut server.admin_conn(), "b:", KEYS);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.psnap");
    let f = file.to_str().unwrap();
    ok(&u, &["export", "--prefix", "b:", "-o", f], 0);
    // Paced to ~10 s for the whole run: interrupted after 1.5 s, it has compared some keys.
    let paced = ["--no-progress", "--rate", "2000", "--batch", "100"];
    let sides: [&[&str]; 2] = [&["--to-prefix", "b:"], &["--to-prefix", "b:", "--snapshot", f]];
    for side in sides {
        let mut args: Vec<&str> = paced.to_vec();
        args.extend(["--json", "verify", "--prefix", "a:"]);
        args.extend(side);
        let (code, out, err) = interrupt_after(psor(&u, &args), std::time::Duration::from_millis(1500));
        assert_eq!(code, 130, "{side:?}\nstdout: {out}\nstderr: {err}");
        let v = json(&out);
        assert_eq!(v["interrupted"].as_bool(), Some(true), "{v}");
        let same = v["same"].as_u64().unwrap();
        assert!(same > 0 && same < KEYS, "some keys compared, not all: {v}");
        for k in ["missing", "extra", "type", "content", "expiry"] {
            assert_eq!(v[k].as_u64(), Some(0), "{k} in {v}");
        }
        // The text report says so and never says "the same".
        let mut args: Vec<&str> = paced.to_vec();
        args.extend(["verify", "--prefix", "a:"]);
        args.extend(side);
        let (code, out, err) = interrupt_after(psor(&u, &args), std::time::Duration::from_millis(1500));
        assert_eq!(code, 130, "{side:?}\nstdout: {out}\nstderr: {err}");
        assert!(out.contains("interrupted") && !out.lines().any(|l| l == "the same"), "{out}");
    }
    // Not interrupted: the whole run, no mark.
    let v = json(&ok(&u, &["--json", "verify", "--prefix", "a:", "--to-prefix", "b:"], 0));
    assert_eq!((v["same"].as_u64(), v.get("interrupted")), (Some(KEYS), None), "{v}");
}
