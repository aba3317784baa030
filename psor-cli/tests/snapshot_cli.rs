//! `psor export`, `import` and `inspect` as operators run them: exit codes, one-line errors
//! naming the file and the offset, `--json` objects, and the prompt for `--replace`.

use std::process::Command;

use psor_tests::{keyspace_digest, populate_all_types, unique_prefix, RedisServer};

fn psor(args: &[&str]) -> Command {
    cli::command(env!("CARGO_BIN_EXE_psor"), args)
}

use psor_tests::cli::{self, json, output as run};

#[test]
fn export_inspect_import_with_json_and_exit_codes() {
    let source = RedisServer::start();
    let ns = unique_prefix("cli-snap");
    let p = format!("{ns}a:");
    populate_all_types(&mut source.admin_conn(), p.as_bytes(), 60);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.psnap");
    let file_s = file.to_str().unwrap();

    let (code, out, err) = run(&mut psor(&["--psor", &source.url(), "--json", "export", "--prefix", &p, "-o", file_s]));
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(
        (v["keys"].as_u64(), v["failed"].as_u64(), v["operation"].as_str()),
        (Some(60), Some(0), Some("export"))
    );
    assert_eq!(v["per_type"]["zset"]["keys"].as_u64(), Some(10));
    assert_eq!(v["file_bytes"].as_u64(), Some(std::fs::metadata(&file).unwrap().len()));

    // Exporting again onto the file: bad usage, the file untouched.
    let before = std::fs::read(&file).unwrap();
    let (code, out, err) = run(&mut psor(&["--psor", &source.url(), "export", "--prefix", &p, "-o", file_s]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--overwrite") && out.is_empty(), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), before);

    // Inspect needs no server. Its JSON schema:
    let (code, out, err) = run(&mut psor(&["--json", "inspect", file_s, "--depth", "3", "--top", "5"]));
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    for field in [
        "path",
        "file_bytes",
        "format_version",
        "created_at_ms",
        "created",
        "server_version",
        "spec",
        "frames",
        "keys",
        "key_bytes",
        "payload_bytes",
        "with_ttl",
        "expired_now",
        "rdb_versions",
        "depth",
        "groups",
        "other_groups",
    ] {
        assert!(v.get(field).is_some(), "no {field} in {v}");
    }
    assert_eq!(
        (v["keys"].as_u64(), v["with_ttl"].as_u64(), v["format_version"].as_str()),
        (Some(60), Some(20), Some("1.1"))
    );
    assert_eq!(v["selection"]["kind"].as_str(), Some("prefix"));
    assert_eq!(v["per_type"]["stream"]["keys"].as_u64(), Some(10));
    // ns is `psor-test:<name>:<id>:`, so depth 3 groups every key under it.
    assert_eq!(v["prefixes"][0]["prefix"].as_str(), Some(ns.as_str()));
    assert_eq!(v["prefixes"][0]["keys"].as_u64(), Some(60));
    let (code, out, _) = run(&mut psor(&["inspect", file_s]));
    assert_eq!(code, 0);
    assert!(out.contains("format 1.1") && out.contains("stream") && out.contains("prefixes (depth 2)"), "{out}");

    // Import into another server; a rerun is all unchanged, exit 0.
    let target = RedisServer::start();
    let (code, out, err) = run(&mut psor(&["--psor", &target.url(), "--json", "import", file_s]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["done"].as_u64(), Some(60));
    assert_eq!(
        keyspace_digest(&mut target.admin_conn(), p.as_bytes()),
        keyspace_digest(&mut source.admin_conn(), p.as_bytes())
    );
    let (code, out, _) = run(&mut psor(&["--psor", &target.url(), "--json", "import", file_s]));
    assert_eq!((code, json(&out)["unchanged"].as_u64()), (0, Some(60)));

    // Someone else's key in the way: conflict left alone, exit 3.
    let first = keyspace_digest(&mut target.admin_conn(), p.as_bytes()).into_keys().next().unwrap();
    redis::cmd("DEL").arg(&first).query::<()>(&mut target.admin_conn()).unwrap();
    redis::cmd("SET").arg(&first).arg("theirs").query::<()>(&mut target.admin_conn()).unwrap();
    let (code, out, _) = run(&mut psor(&["--psor", &target.url(), "--json", "import", file_s]));
    assert_eq!((code, json(&out)["conflicts"].as_u64()), (3, Some(1)));
    // --replace without a terminal and without --yes: refused, one line, nothing changed.
    let (code, _, err) = run(&mut psor(&["--psor", &target.url(), "import", file_s, "--replace"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--yes") && err.trim().lines().count() == 1, "{err}");
    let v: Vec<u8> = redis::cmd("GET").arg(&first).query(&mut target.admin_conn()).unwrap();
    assert_eq!(v, b"theirs");
    let (code, out, _) = run(&mut psor(&["--psor", &target.url(), "--json", "--yes", "import", file_s, "--replace"]));
    assert_eq!((code, json(&out)["done"].as_u64()), (0, Some(60)));

    // --rename with a dry run writes nothing.
    let to = format!("{ns}b:");
    let rename = format!("{p}={to}");
    let (code, out, _) =
        run(&mut psor(&["--psor", &target.url(), "--json", "import", file_s, "--rename", &rename, "-n"]));
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!((v["done"].as_u64(), v["dry_run"].as_bool()), (Some(60), Some(true)));
    assert!(keyspace_digest(&mut target.admin_conn(), to.as_bytes()).is_empty());
}

#[test]
fn damaged_truncated_and_newer_files_are_exit_2_with_file_and_offset() {
    let source = RedisServer::start();
    let ns = unique_prefix("cli-snap-bad");
    let p = format!("{ns}a:");
    populate_all_types(&mut source.admin_conn(), p.as_bytes(), 30);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.psnap");
    let (code, _, err) =
        run(&mut psor(&["--psor", &source.url(), "export", "--prefix", &p, "-o", file.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    let good = std::fs::read(&file).unwrap();
    let bad = dir.path().join("bad.psnap");
    let bad_s = bad.to_str().unwrap();
    let target = RedisServer::start();
    let turl = target.url();

    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x40;
    let mut newer = good.clone();
    newer[8..10].copy_from_slice(&2u16.to_le_bytes());
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("flipped", flipped, "offset"),
        ("truncated", good[..good.len() - 3].to_vec(), "truncated"),
        ("newer", newer, "upgrade psor"),
        ("foreign", b"hello, world".to_vec(), "offset 0"),
    ];
    for (what, bytes, says) in cases {
        std::fs::write(&bad, &bytes).unwrap();
        for args in [vec!["--psor", turl.as_str(), "import", bad_s], vec!["inspect", bad_s]] {
            let (code, out, err) = run(&mut psor(&args));
            assert_eq!(code, 2, "{what} {args:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
            assert!(err.starts_with("psor: ") && err.contains(bad_s) && err.contains(says), "{what}: {err}");
            assert!(out.is_empty(), "{what}: {out}");
        }
    }
    // With --json the error is a JSON object too.
    let (code, out, _) = run(&mut psor(&["--json", "inspect", bad_s]));
    assert_eq!((code, json(&out)["exit_code"].as_i64()), (2, Some(2)));
    let (code, _, err) = run(&mut psor(&["inspect", dir.path().join("missing.psnap").to_str().unwrap()]));
    assert_eq!(code, 2, "{err}");
    let n: u64 = redis::cmd("DBSIZE").query(&mut target.admin_conn()).unwrap();
    assert_eq!(n, 0, "a refused file wrote something");
}

#[test]
fn inspect_key_finds_one_key_and_exits_5_without_it() {
    let source = RedisServer::start();
    let ns = unique_prefix("cli-key");
    let p = format!("{ns}a:");
    populate_all_types(&mut source.admin_conn(), p.as_bytes(), 30);
    let () = redis::cmd("SET").arg(format!("{p}bin\x01key")).arg("v").query(&mut source.admin_conn()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.psnap");
    let file_s = file.to_str().unwrap();
    let (code, _, err) = run(&mut psor(&["--psor", &source.url(), "export", "--prefix", &p, "-o", file_s]));
    assert_eq!(code, 0, "{err}");

    let key = format!("{p}bin\\x01key");
    let (code, out, err) = run(&mut psor(&["--json", "inspect", file_s, "--key", &key]));
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!((v["sorted"].as_bool(), v["record"]["kind"].as_str()), (Some(true), Some("string")));
    let (code, out, _) = run(&mut psor(&["inspect", file_s, "--key", &key]));
    assert_eq!(code, 0);
    assert!(out.contains("type          string") && !out.contains("not sorted"), "{out}");

    let (code, out, _) = run(&mut psor(&["inspect", file_s, "--key", &format!("{p}nope")]));
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("no key"), "{out}");

    // A file written before format 1.1 is searched by reading it, and says so.
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/../formats/tests/golden/v1.0.psnap");
    let (code, out, _) = run(&mut psor(&["inspect", golden, "--key", "plain"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not sorted by key"), "{out}");
}
