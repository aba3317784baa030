//! What the `psor` binary promises around its edges, against real redis-server processes and
//! `file:` stores: stdout that closes or fills up, `--json` for every outcome (clap's usage
//! errors and caspac's arguments included), dry runs that say what the run will do, `status`
//! warnings with commands that work, catalog mistakes refused when loaded, and the smaller
//! promises (sample sizes, flag names, `-0`, an empty `PSOR_LAYOUTS`, downgrades, a finished
//! `create`).

use std::io::Read;
use std::process::{Command, Stdio};

use psor_tests::cli::{self, json, output as run};
use psor_tests::{keyspace_digest, unique_prefix, RedisServer};

fn psor(args: &[&str]) -> Command {
    cli::command(env!("CARGO_BIN_EXE_psor"), args)
}

fn on(url: &str, args: &[&str]) -> Command {
    let mut cmd = psor(&["--psor", url]);
    cmd.args(args);
    cmd
}

/// Runs and checks the exit code; returns (stdout, stderr).
fn expect(cmd: &mut Command, code: i32) -> (String, String) {
    let (c, out, err) = run(cmd);
    assert_eq!(c, code, "{cmd:?}\nstdout: {out}\nstderr: {err}");
    (out, err)
}

fn no_panic(err: &str) {
    assert!(!err.contains("panicked"), "{err}");
}

fn dev_full() -> Stdio {
    std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full").into()
}

const RECORD_9: &str = "MyPAC_9.0:pac:{MyPAC_9.0}";

// ---- item 6: stdout goes away --------------------------------------------------------

#[test]
fn a_closed_pipe_ends_quietly_with_and_without_json() {
    let server = RedisServer::start();
    let url = server.url();
    let ns = unique_prefix("pipe");
    let mut con = server.admin_conn();
    // Far more than a pipe buffer holds, so psor is still writing when the reader leaves.
    let mut pipe = redis::pipe();
    for i in 0..30_000 {
        pipe.cmd("SET").arg(format!("{ns}{i:06}-a-fairly-long-key-name-to-fill-the-pipe")).arg("v").ignore();
    }
    pipe.query::<()>(&mut con).unwrap();
    for json_flag in [true, false] {
        let mut cmd = on(&url, &[]);
        if json_flag {
            cmd.arg("--json");
        }
        cmd.args(["scan", "--prefix", &ns]).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut first = [0u8; 10];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The read end is dropped here: psor's next write gets EPIPE.
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "--json {json_flag}: {err}");
        assert!(err.is_empty(), "--json {json_flag}: a broken pipe is quiet: {err}");
    }
}

#[test]
fn a_full_disk_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file:{}", dir.path().join("s.psnap").display());
    // A snapshot to inspect, exported from the embedded store.
    expect(&mut on(&store, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "20"]), 0);
    let snap = dir.path().join("x.psnap");
    let snap_s = snap.display().to_string();
    expect(&mut on(&store, &["export", "--prefix", "MyPAC_8.0:", "-o", &snap_s]), 0);
    for args in [
        &["--json", "status"][..],
        &["status"][..],
        &["--json", "inspect", &snap_s][..],
        &["--json", "scan", "--prefix", "MyPAC_8.0:"][..],
        &["completions", "bash"][..],
        &["--json", "completions", "bash"][..],
    ] {
        let (c, _, err) = run(on(&store, args).stdout(dev_full()));
        assert_eq!(c, 1, "{args:?}: {err}");
        no_panic(&err);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("psor: writing to stdout: "), "{args:?}: {err}");
    }
    // A JSON error that cannot be written keeps the error's own code, and says both.
    let (c, _, err) = run(psor(&["--json", "inspect", "/nonexistent/x.psnap"]).stdout(dev_full()));
    assert_eq!(c, 2, "{err}");
    no_panic(&err);
    assert!(err.contains("/nonexistent/x.psnap") && err.contains("writing to stdout"), "{err}");
}

// ---- item 11: --json without JSON --------------------------------------------------

#[test]
fn json_covers_clap_errors_and_flags_among_caspac_arguments() {
    for args in
        [&["--json", "scan"][..], &["--json", "--batch", "0", "scan", "--prefix", "a"][..], &["scan", "--json"][..]]
    {
        let (c, out, err) = run(&mut psor(args));
        assert_eq!(c, 2, "{args:?}: {err}");
        let v = json(&out);
        assert_eq!(v["exit_code"].as_i64(), Some(2), "{args:?}: {out}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty() && !e.contains('\n')), "{out}");
        // People still get clap's own message on stderr.
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
    let (out, _) = expect(&mut psor(&["--json", "scan"]), 2);
    assert!(json(&out)["error"].as_str().unwrap().contains("--prefix"), "{out}");
    // --help and --version are what they always were, exit 0.
    let (out, _) = expect(&mut psor(&["--json", "--help"]), 0);
    assert!(out.contains("Usage") && serde_json::from_str::<serde_json::Value>(&out).is_err(), "{out}");
    let (out, _) = expect(&mut psor(&["--version"]), 0);
    assert!(out.starts_with("psor "), "{out}");

    let server = RedisServer::start();
    let s = format!("-sredis,{}", server.addr());
    // --json after caspac: the unknown PAC (exit 5) is one JSON object on stdout.
    let (out, _) = expect(&mut psor(&["caspac", "-aRemOldPAC=Rr", &s, "--json"]), 5);
    assert_eq!(json(&out)["exit_code"].as_i64(), Some(5), "{out}");
    let (out, _) = expect(&mut psor(&["caspac", "-aCheckCompat=Nope", &s, "--product-version", "9.0", "--json"]), 5);
    assert_eq!(json(&out)["exit_code"].as_i64(), Some(5), "{out}");
    // A caspac usage error with --json among its arguments, too.
    let (out, _) = expect(&mut psor(&["caspac", "-aLoad=x", "--json"]), 2);
    assert_eq!(json(&out)["exit_code"].as_i64(), Some(2), "{out}");
}

// ---- item 8: dry runs say what the run will do -------------------------------------

#[test]
fn a_dry_run_copy_counts_identical_targets_as_unchanged() {
    let server = RedisServer::start();
    let url = server.url();
    let ns = unique_prefix("dry");
    let (e, f) = (format!("{ns}e:"), format!("{ns}f:"));
    let mut con = server.admin_conn();
    redis::cmd("SET").arg(format!("{e}1")).arg("same").query::<()>(&mut con).unwrap();
    redis::cmd("SET").arg(format!("{f}1")).arg("same").query::<()>(&mut con).unwrap();
    // A set whose target has the same members added in another order (DUMP may differ).
    redis::cmd("SADD").arg(format!("{e}s")).arg(&["a", "b", "c", "d"]).query::<()>(&mut con).unwrap();
    redis::cmd("SADD").arg(format!("{f}s")).arg(&["d", "c", "b", "a"]).query::<()>(&mut con).unwrap();
    let copy = |extra: &[&str]| {
        let mut args = vec!["--json", "copy", "--prefix", e.as_str(), "--to-prefix", f.as_str()];
        args.extend_from_slice(extra);
        on(&url, &args)
    };
    let (out, _) = expect(&mut copy(&["--dry-run"]), 0);
    let v = json(&out);
    assert_eq!((v["unchanged"].as_u64(), v["conflicts"].as_u64()), (Some(2), Some(0)), "{out}");
    let (out, _) = expect(&mut copy(&[]), 0);
    let real = json(&out);
    assert_eq!((real["unchanged"].as_u64(), real["conflicts"].as_u64()), (Some(2), Some(0)), "{out}");

    // Other content, or the same value with another expiry: a conflict in both runs.
    redis::cmd("SET").arg(format!("{e}2")).arg("mine").query::<()>(&mut con).unwrap();
    redis::cmd("SET").arg(format!("{f}2")).arg("theirs").query::<()>(&mut con).unwrap();
    redis::cmd("SET").arg(format!("{e}3")).arg("x").arg("PX").arg(600_000).query::<()>(&mut con).unwrap();
    redis::cmd("SET").arg(format!("{f}3")).arg("x").query::<()>(&mut con).unwrap();
    redis::cmd("SET").arg(format!("{e}4")).arg("new").query::<()>(&mut con).unwrap();
    // (A dry-run copy exits 0 whatever it found; its counts are the real run's.)
    let (out, _) = expect(&mut copy(&["--dry-run"]), 0);
    let dry = json(&out);
    let (out, _) = expect(&mut copy(&[]), 3);
    let real = json(&out);
    for field in ["done", "unchanged", "conflicts"] {
        assert_eq!(dry[field], real[field], "{field}: dry {dry} real {real}");
    }
    assert_eq!((real["done"].as_u64(), real["conflicts"].as_u64()), (Some(1), Some(2)), "{real}");
}

#[test]
fn a_dry_run_of_an_interrupted_create_shows_unchanged_and_a_finished_create_does_nothing() {
    let server = RedisServer::start();
    let url = server.url();
    let mut con = server.admin_conn();
    expect(&mut on(&url, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "50"]), 0);
    expect(&mut on(&url, &["create", "MyPAC", "--product-version", "9.0"]), 0);
    // As if the create had been interrupted after copying everything.
    redis::cmd("HSET").arg(RECORD_9).arg("psor_creating").arg("8.0").query::<()>(&mut con).unwrap();
    let (out, _) = expect(&mut on(&url, &["--json", "create", "MyPAC", "--product-version", "9.0", "--dry-run"]), 0);
    let v = json(&out);
    assert_eq!(v["counts"]["conflicts"].as_u64(), Some(0), "{out}");
    assert!(v["counts"]["unchanged"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(v["counts"]["unchanged"], v["counts"]["matched"], "{out}");
    let (out, _) = expect(&mut on(&url, &["--json", "create", "MyPAC", "--product-version", "9.0"]), 0);
    assert_eq!(json(&out)["complete"].as_bool(), Some(true), "{out}");

    // Now complete: a second create says so, writes nothing (not even updated_ms), exit 0.
    let before = keyspace_digest(&mut con, b"");
    let updated: String = redis::cmd("HGET").arg(RECORD_9).arg("updated_ms").query(&mut con).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let (out, _) = expect(&mut on(&url, &["create", "MyPAC", "--product-version", "9.0"]), 0);
    assert!(out.contains("already exists") && out.contains("complete") && !out.contains("resuming"), "{out}");
    let (out, _) = expect(&mut on(&url, &["--json", "create", "MyPAC", "--product-version", "9.0"]), 0);
    assert_eq!(json(&out)["already_complete"].as_bool(), Some(true), "{out}");
    let after: String = redis::cmd("HGET").arg(RECORD_9).arg("updated_ms").query(&mut con).unwrap();
    assert_eq!(updated, after);
    assert!(keyspace_digest(&mut con, b"") == before, "a finished create wrote something");
}

// ---- item 9: status and a damaged PAC record -----------------------------------------

fn warning_kinds(v: &serde_json::Value) -> Vec<String> {
    v["warnings"].as_array().unwrap().iter().map(|w| w["kind"].as_str().unwrap().to_owned()).collect()
}

fn record(pac: &str, v: &str) -> String {
    format!("{pac}_{v}:pac:{{{pac}_{v}}}")
}

#[test]
fn status_warns_about_damaged_and_incomplete_records() {
    let server = RedisServer::start();
    let url = server.url();
    let mut con = server.admin_conn();
    for pac in ["Bogus", "Str", "MyPAC"] {
        expect(&mut on(&url, &["sample", pac, "--product-version", "8.0", "--keys", "20", "--regions", "0"]), 0);
        expect(&mut on(&url, &["status", pac]), 0);
    }

    // mode = "Bogus": set-mode refuses it, and status warns (exit 7) with what to do.
    redis::cmd("HSET").arg(record("Bogus", "8.0")).arg("mode").arg("Bogus").query::<()>(&mut con).unwrap();
    let (out, _) = expect(&mut on(&url, &["--json", "status", "Bogus"]), 7);
    let v = json(&out);
    assert_eq!(warning_kinds(&v), ["damaged-record"], "{out}");
    assert!(v["warnings"][0]["action"].as_str().unwrap().contains("psor delete --prefix 'Bogus_8.0:'"), "{out}");
    let (out, _) = expect(&mut on(&url, &["status", "Bogus"]), 7);
    assert!(out.contains("damaged-record") && out.contains("what to do"), "{out}");
    let (c, _, _) = run(&mut on(&url, &["set-mode", "Bogus", "quiesce", "--product-version", "8.0"]));
    assert_ne!(c, 0);

    // The record key holding a string.
    redis::cmd("DEL").arg(record("Str", "8.0")).query::<()>(&mut con).unwrap();
    redis::cmd("SET").arg(record("Str", "8.0")).arg("not a hash").query::<()>(&mut con).unwrap();
    let (out, _) = expect(&mut on(&url, &["--json", "status", "Str"]), 7);
    assert_eq!(warning_kinds(&json(&out)), ["damaged-record"], "{out}");

    // A record left with psor_creating; the command status suggests for it works.
    expect(&mut on(&url, &["create", "MyPAC", "--product-version", "9.0"]), 0);
    expect(&mut on(&url, &["status", "MyPAC"]), 0);
    redis::cmd("HSET").arg(RECORD_9).arg("psor_creating").arg("8.0").query::<()>(&mut con).unwrap();
    let (out, _) = expect(&mut on(&url, &["--json", "status", "MyPAC"]), 7);
    let v = json(&out);
    assert_eq!(warning_kinds(&v), ["create-incomplete"], "{out}");
    let action = v["warnings"][0]["action"].as_str().unwrap();
    assert!(action.contains("psor create MyPAC --product-version 9.0"), "{action}");
    expect(&mut on(&url, &["create", "MyPAC", "--product-version", "9.0"]), 0);
    expect(&mut on(&url, &["status", "MyPAC"]), 0);
}

#[test]
fn the_commands_status_suggests_for_a_version_without_record_work() {
    let server = RedisServer::start();
    let url = server.url();
    let mut con = server.admin_conn();
    // MyPAC2 8.0 without a record and nothing Running to create it from: create would be
    // refused, so status must not suggest it.
    expect(&mut on(&url, &["sample", "MyPAC2", "--product-version", "8.0", "--keys", "10", "--regions", "0"]), 0);
    redis::cmd("DEL").arg("MyPAC2_8.0:pac:{MyPAC2_8.0}").query::<()>(&mut con).unwrap();
    let (out, _) = expect(&mut on(&url, &["--json", "status", "MyPAC2"]), 7);
    let action = json(&out)["orphans"][0]["action"].as_str().unwrap().to_owned();
    assert!(!action.contains("psor create"), "{action}");
    assert!(action.contains("psor delete --prefix 'MyPAC2_8.0:'"), "{action}");
    expect(&mut on(&url, &["create", "MyPAC2", "--product-version", "8.0"]), 3);
    expect(&mut on(&url, &["delete", "--prefix", "MyPAC2_8.0:", "--yes"]), 0);

    // MyPAC 9.0 without a record next to 8.0 Running: create works there, and is suggested.
    expect(&mut on(&url, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "10", "--regions", "0"]), 0);
    expect(&mut on(&url, &["create", "MyPAC", "--product-version", "9.0"]), 0);
    redis::cmd("DEL").arg(RECORD_9).query::<()>(&mut con).unwrap();
    let (out, _) = expect(&mut on(&url, &["--json", "status", "MyPAC"]), 7);
    let action = json(&out)["orphans"][0]["action"].as_str().unwrap().to_owned();
    assert!(action.contains("psor create MyPAC --product-version 9.0"), "{action}");
    expect(&mut on(&url, &["create", "MyPAC", "--product-version", "9.0"]), 0);
    expect(&mut on(&url, &["status", "MyPAC"]), 0);
}

// ---- item 10: catalog mistakes refused when loaded -----------------------------------

const PAC_STORE: &str =
    "[[layout.store]]\nname = \"pac\"\nsub_prefix = \"pac\"\ntype = \"hash\"\nrole = \"pac-record\"\nplacement = \"tagged\"\nupgrade = \"fresh\"\n";

#[test]
fn catalog_mistakes_are_exit_2_when_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // No pac-record store in a layout a version uses.
        ("[[layout]]\nname = \"site-10\"\nepoch = 10\n[[version]]\nmatch = \"10.0\"\nlayout = \"site-10\"\n", "pac-record"),
        // rename-store from a store no layout has.
        (
            &*format!(
                "[[layout]]\nname = \"site-10\"\nepoch = 10\n{PAC_STORE}[[layout.store]]\nname = \"PCT2\"\nsub_prefix = \
                 \"pct2\"\ntype = \"hash\"\nplacement = \"spread\"\nupgrade = \"carry\"\ntransform = \
                 \"rename-store\"\nfrom_store = \"NOPE\"\n[[version]]\nmatch = \"10.0\"\nlayout = \"site-10\"\n"
            ),
            "from_store",
        ),
        // A float epoch.
        (&*format!("[[layout]]\nname = \"site-10\"\nepoch = 9.5\n{PAC_STORE}"), "layout[site-10].epoch"),
    ];
    for (i, (text, field)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let p = path.display().to_string();
        let (_, err) = expect(&mut psor(&["layouts", "--layouts", &p]), 2);
        assert!(err.starts_with(&format!("psor: {p}:")), "{err}");
        assert!(err.contains(field), "{field}: {err}");
        assert!(!err.contains("untagged"), "{err}");
        let (out, _) = expect(&mut psor(&["--json", "layouts", "--layouts", &p]), 2);
        assert_eq!(json(&out)["exit_code"].as_i64(), Some(2));
    }
}

// ---- item 12: the smaller promises -------------------------------------------------

#[test]
fn rem_old_pac_with_one_version_is_not_a_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file:{}", dir.path().join("s.psnap").display());
    expect(&mut on(&store, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "10", "--regions", "0"]), 0);
    let (out, _) = expect(&mut on(&store, &["rem-old-pac", "MyPAC", "--yes"]), 0);
    assert!(out.contains("nothing to remove") && !out.contains("dry run"), "{out}");
}

#[test]
fn a_dry_run_delete_shows_the_sample_asked_for() {
    let server = RedisServer::start();
    let url = server.url();
    let ns = unique_prefix("sample");
    let mut con = server.admin_conn();
    for i in 0..60 {
        redis::cmd("SET").arg(format!("{ns}{i:02}")).arg("v").query::<()>(&mut con).unwrap();
    }
    let (out, _) = expect(&mut on(&url, &["delete", "--prefix", &ns, "--dry-run", "--sample", "50"]), 0);
    let listed = out.lines().filter(|l| l.starts_with(&format!("  {ns}"))).count();
    assert_eq!(listed, 50, "{out}");
    assert!(out.contains("first 50 of 60"), "{out}");
    let (out, _) = expect(&mut on(&url, &["--json", "delete", "--prefix", &ns, "--dry-run", "--sample", "50"]), 0);
    assert_eq!(json(&out)["sample"].as_array().map(Vec::len), Some(50));
}

#[test]
fn errors_name_the_flag_the_user_gave() {
    let (_, err) =
        expect(&mut psor(&["--psor", "redis://127.0.0.1:1", "copy", "--prefix", "a:", "--to-prefix", ""]), 2);
    assert!(err.contains("--to-prefix") && !err.contains("--prefix "), "{err}");
    for rename in ["MyPAC_8.0:=", "=MyPAC_9.0:"] {
        let (_, err) =
            expect(&mut psor(&["--psor", "redis://127.0.0.1:1", "import", "x.psnap", "--rename", rename]), 2);
        assert!(err.contains("--rename") && !err.contains("--prefix"), "{err}");
    }
}

#[test]
fn scan_dash_0_writes_raw_bytes() {
    let server = RedisServer::start();
    let url = server.url();
    let ns = unique_prefix("nul");
    let key = format!("{ns}a b\n\"c");
    redis::cmd("SET").arg(&key).arg("v").query::<()>(&mut server.admin_conn()).unwrap();
    let out = on(&url, &["scan", "--prefix", &ns, "-0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, format!("{key}\0").into_bytes());
}

#[test]
fn an_empty_psor_layouts_is_unset() {
    let (out, _) = expect(psor(&["layouts"]).env("PSOR_LAYOUTS", ""), 0);
    assert!(out.contains("ref-9"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file:{}", dir.path().join("s.psnap").display());
    expect(on(&store, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "5"]).env("PSOR_LAYOUTS", ""), 0);
}

#[test]
fn a_downgrade_is_refused_and_rem_old_pac_keeps_a_newer_version() {
    let server = RedisServer::start();
    let url = server.url();
    expect(&mut on(&url, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "10", "--regions", "0"]), 0);
    let (_, err) = expect(&mut on(&url, &["create", "MyPAC", "--product-version", "7.0"]), 3);
    assert!(err.contains("downgrade") && err.contains("--allow-downgrade"), "{err}");
    assert!(keyspace_digest(&mut server.admin_conn(), b"MyPAC_7.0:").is_empty());

    // A backed-out upgrade: 8.0 Running, 9.0 Quiesce. rem-old-pac would remove 9.0: refused.
    expect(&mut on(&url, &["create", "MyPAC", "--product-version", "9.0"]), 0);
    expect(&mut on(&url, &["set-mode", "MyPAC", "running", "--product-version", "9.0"]), 0);
    expect(&mut on(&url, &["set-mode", "MyPAC", "quiesce", "--product-version", "9.0"]), 0);
    let (_, err) = expect(&mut on(&url, &["rem-old-pac", "MyPAC", "--yes"]), 6);
    assert!(err.contains("9.0 is newer than the Running version 8.0"), "{err}");
    let (out, _) = expect(&mut on(&url, &["--json", "rem-old-pac", "MyPAC", "--dry-run"]), 6);
    assert_eq!(json(&out)["blockers"][0]["kind"], "newer-than-running", "{out}");
    assert!(!keyspace_digest(&mut server.admin_conn(), b"MyPAC_9.0:").is_empty());
    expect(&mut on(&url, &["rem-old-pac", "MyPAC", "--yes", "--force"]), 0);
    assert!(keyspace_digest(&mut server.admin_conn(), b"MyPAC_9.0:").is_empty());

    // --allow-downgrade: the operator means it.
    expect(&mut on(&url, &["create", "MyPAC", "--product-version", "7.0", "--allow-downgrade"]), 0);
}
