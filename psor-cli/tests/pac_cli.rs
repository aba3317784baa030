//! The PAC commands as operators run them, against real redis-server processes: the
//! incompatible upgrade procedure step by step (partly in the vendor's caspac syntax), exit
//! codes 0/2/3/4/5/6, `--json`, refusals without a terminal, catalog errors, and neighbours
//! byte-identical before and after.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use psor_tests::{keyspace_digest, populate_all_types, KeyState, RedisServer};

fn psor(url: &str, args: &[&str]) -> Command {
    let mut cmd = psor_tests::cli::command(env!("CARGO_BIN_EXE_psor"), &["--psor", url]);
    cmd.args(args);
    cmd
}

use psor_tests::cli::{json, output as run};

/// Runs and checks the exit code; returns stdout.
fn ok(url: &str, args: &[&str], code: i32) -> String {
    let (c, out, err) = run(&mut psor(url, args));
    assert_eq!(c, code, "psor {args:?}\nstdout: {out}\nstderr: {err}");
    out
}

type Digest = BTreeMap<Vec<u8>, KeyState>;

fn all(server: &RedisServer) -> Digest {
    keyspace_digest(&mut server.admin_conn(), b"")
}

fn without(d: &Digest, prefixes: &[&str]) -> Digest {
    d.iter()
        .filter(|(k, _)| !prefixes.iter().any(|p| k.starts_with(p.as_bytes())))
        .map(|(k, s)| (k.clone(), s.clone()))
        .collect()
}

#[test]
fn the_procedure_step_by_step_with_the_cli() {
    let server = RedisServer::start();
    let url = server.url();
    let caspac_s = format!("-sredis,{}", server.addr());
    let u = url.as_str();

    ok(u, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "300"], 0);
    ok(u, &["sample", "MyPAC2", "--product-version", "8.0", "--keys", "40"], 0);
    let mut con = server.admin_conn();
    populate_all_types(&mut con, b"unrelated:", 20);
    redis::cmd("SET").arg("MyPAC_8.01:pct:X").arg("look-alike").query::<()>(&mut con).unwrap();
    let neighbours = without(&all(&server), &["MyPAC_8.0:", "MyPAC_9.0:"]);

    // Step 5: caspac -aCheckCompat on the upgraded host: incompatible is exit 4.
    let out = ok(u, &["--json", "caspac", "-aCheckCompat=MyPAC", &caspac_s, "--product-version", "9.0"], 4);
    let v = json(&out);
    assert_eq!((v["compatible"].as_bool(), v["current"]["version"].as_str()), (Some(false), Some("8.0")));

    // Step 6: casstart /s:u — create the new PAC's stores in upgrade mode.
    let out = ok(u, &["--json", "create", "MyPAC", "--product-version", "9.0"], 0);
    let v = json(&out);
    assert_eq!((v["complete"].as_bool(), v["counts"]["done"].as_u64()), (Some(true), Some(300)));
    assert_eq!(v["record"]["mode"].as_str(), Some("Upgrade"));

    // Step 10: caspac -aSetMode=Running from the new product (PAC from ES_PAC).
    let out = run(psor(u, &["--json", "caspac", "-aSetMode=Running", &caspac_s])
        .env("ES_PAC", "MyPAC")
        .env("PSOR_PRODUCT_VERSION", "9.0"));
    assert_eq!(out.0, 0, "{out:?}");
    let v = json(&out.1);
    assert_eq!(
        (v["before"]["mode"].as_str(), v["after"]["mode"].as_str(), v["version"].as_str()),
        (Some("Upgrade"), Some("Running"), Some("9.0"))
    );

    // rem-old-pac before step 12: refused, the old PAC is in use (exit 6), nothing deleted.
    let (c, _, err) = run(&mut psor(u, &["--yes", "rem-old-pac", "MyPAC"]));
    assert_eq!(c, 6, "{err}");
    assert!(err.contains("Running") && err.contains("REGION1"), "{err}");

    // Step 12: caspac -aSetMode=Quiesce from the old product.
    let out =
        run(psor(u, &["caspac", "-aSetMode=Quiesce", &caspac_s, "--product-version", "8.0"]).env("ES_PAC", "MyPAC"));
    assert_eq!(out.0, 0, "{out:?}");
    assert!(out.1.contains("before: mode Running") && out.1.contains("after:  mode Quiesce"), "{}", out.1);

    // Regions still registered: the dry run lists stores and counts, and says exit 6.
    let out = ok(u, &["--json", "rem-old-pac", "MyPAC", "--dry-run"], 6);
    let v = json(&out);
    assert_eq!(v["remove"][0]["version"].as_str(), Some("8.0"));
    assert_eq!(v["remove"][0]["keys"].as_u64(), Some(304));
    assert_eq!(v["blockers"][0]["kind"].as_str(), Some("regions-registered"));

    // Step 13: the old regions stop (and leave the registry).
    redis::cmd("DEL").arg("MyPAC_8.0:regions:{MyPAC_8.0}").query::<()>(&mut con).unwrap();
    // Without a terminal and without --yes: refused, exit 2, nothing deleted.
    let (c, _, err) = run(&mut psor(u, &["caspac", "-aRemOldPAC=MyPAC", &caspac_s]));
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("--yes"), "{err}");
    // Step 14: caspac -aRemOldPAC.
    let out = ok(u, &["caspac", "-aRemOldPAC=MyPAC", &caspac_s, "--yes", "--json"], 0);
    let v = json(&out);
    assert_eq!(v["deleted"][0]["counts"]["done"].as_u64(), Some(303));

    let after = all(&server);
    assert!(after.keys().all(|k| !k.starts_with(b"MyPAC_8.0:")));
    assert_eq!(after.keys().filter(|k| k.starts_with(b"MyPAC_9.0:")).count(), 301);
    assert_eq!(without(&after, &["MyPAC_9.0:"]), neighbours, "neighbours byte-identical");

    let v = json(&ok(u, &["--json", "status"], 0));
    let pacs: Vec<(&str, usize)> = v["pacs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["pac"].as_str().unwrap(), p["versions"].as_array().unwrap().len()))
        .collect();
    assert_eq!(pacs, vec![("MyPAC", 1), ("MyPAC2", 1)]);
    let out = ok(u, &["status", "MyPAC"], 0);
    assert!(out.contains("9.0") && out.contains("Running") && !out.contains("8.0 "), "{out}");
}

#[test]
fn exit_codes_and_refusals() {
    let server = RedisServer::start();
    let u = server.url();
    let u = u.as_str();
    ok(u, &["sample", "MyPAC", "--product-version", "9.0", "--keys", "30"], 0);
    let before = all(&server);

    ok(u, &["check-compat", "MyPAC", "--product-version", "9.0.2"], 0);
    ok(u, &["check-compat", "MyPAC", "--product-version", "8.0"], 4);
    ok(u, &["check-compat", "MyPAC", "--product-version", "11.0"], 5);
    ok(u, &["check-compat", "NoSuchPAC", "--product-version", "9.0"], 5);
    ok(u, &["check-compat", "MyPAC"], 2);
    ok(u, &["check-compat", "My.PAC", "--product-version", "9.0"], 2);
    ok(u, &["check-compat", "MyPAC", "--product-version", "9.01"], 2);
    // Illegal transition: 3. Upgrade is not settable: 2.
    ok(u, &["set-mode", "MyPAC", "quiesce", "--product-version", "9.0"], 0);
    ok(u, &["set-mode", "MyPAC", "quiesce", "--product-version", "9.0"], 0);
    ok(u, &["set-mode", "MyPAC", "running", "--product-version", "9.0"], 0);
    ok(u, &["set-mode", "MyPAC", "upgrade", "--product-version", "9.0"], 2);
    ok(u, &["set-mode", "MyPAC", "sideways", "--product-version", "9.0"], 2);
    // create for a version compatible with the running one: nothing to create (2).
    ok(u, &["create", "MyPAC", "--product-version", "9.0.2"], 2);
    // caspac without ES_PAC for SetMode: 2; an unsupported action: 2.
    ok(u, &["caspac", "-aSetMode=Running", "--product-version", "9.0"], 2);
    ok(u, &["caspac", "-aLoad=prog.so"], 2);
    // init-pac: regions registered → 6; without --yes → 2 (after --force).
    ok(u, &["--yes", "init-pac", "MyPAC", "--product-version", "9.0"], 6);
    ok(u, &["init-pac", "MyPAC", "--product-version", "9.0", "--force"], 2);
    let out = ok(u, &["init-pac", "MyPAC", "--product-version", "9.0", "--dry-run", "--json"], 6);
    assert_eq!(json(&out)["remove"][0]["keys"].as_u64(), Some(34));
    // Everything above wrote only the mode (back to Running), so the keyspace is as it was
    // apart from the record's timestamps.
    let strip = |d: &Digest| without(d, &["MyPAC_9.0:pac:"]);
    assert_eq!(strip(&all(&server)), strip(&before));

    // Catalog errors: a file with a mistake is usage (2) with file:line:column.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[version]]\nmatch = \"9.2\"\nlayout = \"nope\"\n").unwrap();
    let (c, _, err) = run(&mut psor(u, &["layouts", "--layouts", bad.to_str().unwrap()]));
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("bad.toml:") && err.contains("nope"), "{err}");
    let (c, _, err) = run(&mut psor(u, &["status", "--layouts", "/nonexistent/site.toml"]));
    assert_eq!(c, 2, "{err}");
    // A good site file: its version is known, and `layouts` shows it.
    let site = dir.path().join("site.toml");
    std::fs::write(&site, "[[version]]\nmatch = \"9.5\"\nlayout = \"ref-9\"\n").unwrap();
    let out = run(psor(u, &["check-compat", "MyPAC", "--product-version", "9.5"]).env("PSOR_LAYOUTS", &site));
    assert_eq!(out.0, 0, "{out:?}");
    let v = json(&ok(u, &["--json", "layouts", "--layouts", site.to_str().unwrap()], 0));
    assert!(v["versions"].as_array().unwrap().iter().any(|e| e["match"]["version"] == "9.5"), "{v}");
    let out = ok(u, &["layouts"], 0);
    assert!(out.contains("ref-8") && out.contains("REFERENCE"), "{out}");

    // init-pac --force --yes: one record, nothing else of MyPAC.
    ok(u, &["--yes", "init-pac", "MyPAC", "--product-version", "9.0", "--force"], 0);
    let mine: Vec<_> = all(&server).into_keys().filter(|k| k.starts_with(b"MyPAC_")).collect();
    assert_eq!(mine, vec![b"MyPAC_9.0:pac:{MyPAC_9.0}".to_vec()]);
    // A downgrade is refused (3) unless --allow-downgrade; then it is just another
    // incompatible create, and versions can pile up.
    ok(u, &["create", "MyPAC", "--product-version", "8.0"], 3);
    ok(u, &["create", "MyPAC", "--product-version", "8.0", "--allow-downgrade"], 0);
    ok(u, &["set-mode", "MyPAC", "running", "--product-version", "8.0"], 0);
    ok(u, &["set-mode", "MyPAC", "quiesce", "--product-version", "9.0"], 0);
    ok(u, &["create", "MyPAC", "--product-version", "7.0", "--allow-downgrade"], 0);
    ok(u, &["set-mode", "MyPAC", "quiesce", "--product-version", "8.0"], 0);
    // No version is Running any more: nothing to create from (3). Unknown version: 5.
    ok(u, &["create", "MyPAC", "--product-version", "9.0.2"], 3);
    ok(u, &["create", "MyPAC", "--product-version", "10.0"], 5);
}

#[test]
fn create_killed_midway_then_rerun_equals_a_clean_run() {
    let server = RedisServer::start();
    let url = server.url();
    let u = url.as_str();
    ok(u, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "8000", "--large-values", "0"], 0);
    let mut con = server.admin_conn();
    let count_9 = |con: &mut redis::Connection| keyspace_digest(con, b"MyPAC_9.0:").len();

    // Slow batches so the process is surely mid-copy when it is killed (SIGKILL: no cleanup).
    let mut child = psor(
        u,
        &["create", "MyPAC", "--product-version", "9.0", "--batch", "5", "--writers", "1", "--scan-count", "10"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let started = std::time::Instant::now();
    loop {
        let n: usize =
            redis::cmd("EVAL").arg("return #redis.call('KEYS', 'MyPAC_9.0:*')").arg(0).query(&mut con).unwrap();
        if n > 300 || started.elapsed() > std::time::Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = count_9(&mut con);
    assert!(partial > 300 && partial < 8_001, "killed midway: {partial} keys of 9.0");
    // The half-made version cannot be made Running.
    ok(u, &["set-mode", "MyPAC", "running", "--product-version", "9.0"], 3);
    // status warns about it (exit 7), saying to rerun create.
    let v = json(&ok(u, &["--json", "status", "MyPAC"], 7));
    assert_eq!(v["pacs"][0]["versions"][1]["record"]["creating"].as_bool(), Some(true));
    assert_eq!(v["warnings"][0]["kind"], "create-incomplete", "{v}");

    let v = json(&ok(u, &["--json", "create", "MyPAC", "--product-version", "9.0"], 0));
    assert_eq!((v["resumed"].as_bool(), v["complete"].as_bool()), (Some(true), Some(true)));
    let counts = &v["counts"];
    assert_eq!(counts["done"].as_u64().unwrap() + counts["unchanged"].as_u64().unwrap(), 8_000, "{counts}");
    assert!(counts["unchanged"].as_u64().unwrap() >= partial as u64 - 2, "{counts}");
    assert_eq!(counts["conflicts"].as_u64(), Some(0));

    // Equal to a clean run: every carried key of 8.0 is under 9.0 with the same content.
    let old = keyspace_digest(&mut con, b"MyPAC_8.0:");
    let new = keyspace_digest(&mut con, b"MyPAC_9.0:");
    let carried: Digest = old
        .iter()
        .filter(|(k, _)| {
            !k.starts_with(b"MyPAC_8.0:pac:")
                && !k.starts_with(b"MyPAC_8.0:regions:")
                && !k.starts_with(b"MyPAC_8.0:version:")
        })
        .map(|(k, s)| ([b"MyPAC_9.0:".as_slice(), &k[10..]].concat(), s.clone()))
        .collect();
    assert_eq!(without(&new, &["MyPAC_9.0:pac:"]), carried);
    assert_eq!(new.len(), 8_001);
    ok(u, &["set-mode", "MyPAC", "running", "--product-version", "9.0"], 0);
}

#[test]
fn rem_old_pac_backs_up_and_verifies_before_removing() {
    let server = RedisServer::start();
    let u = &server.url();
    ok(u, &["sample", "MyPAC", "--product-version", "8.0", "--keys", "200"], 0);
    ok(u, &["--yes", "create", "MyPAC", "--product-version", "9.0"], 0);
    ok(u, &["set-mode", "MyPAC", "running", "--product-version", "9.0"], 0);
    ok(u, &["set-mode", "MyPAC", "quiesce", "--product-version", "8.0"], 0);
    redis::cmd("DEL").arg("MyPAC_8.0:regions:{MyPAC_8.0}").query::<()>(&mut server.admin_conn()).unwrap();
    let old = keyspace_digest(&mut server.admin_conn(), b"MyPAC_8.0:");
    assert_eq!(old.len(), 203);

    // A backup that cannot be written: nothing is removed.
    let (c, _, err) = run(&mut psor(u, &["--yes", "rem-old-pac", "MyPAC", "--backup", "/nonexistent-dir/b.psnap"]));
    assert_ne!(c, 0, "{err}");
    assert_eq!(keyspace_digest(&mut server.admin_conn(), b"MyPAC_8.0:"), old, "removed without a backup");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("MyPAC-8.0.psnap");
    let out = ok(u, &["--yes", "--json", "rem-old-pac", "MyPAC", "--backup", file.to_str().unwrap()], 0);
    let v = json(&out);
    assert_eq!(v["backup"]["keys"].as_u64(), Some(203));
    assert_eq!(v["deleted"][0]["counts"]["done"].as_u64(), Some(203));
    assert!(keyspace_digest(&mut server.admin_conn(), b"MyPAC_8.0:").is_empty());

    // The backup restores the old PAC exactly.
    let other = RedisServer::start();
    ok(&other.url(), &["--yes", "import", file.to_str().unwrap()], 0);
    assert_eq!(keyspace_digest(&mut other.admin_conn(), b"MyPAC_8.0:"), old);
}
