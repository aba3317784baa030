//! The `psor` binary between server builds, as the new user tried it: Valkey 9.1 →
//! Redis 7.0 by `copy --target` (transcoded, counted in `--json`), hashes with field
//! expirations refused with exit 2 unless `--drop-field-ttls`, and a Valkey 9.1 backup restored
//! into another Valkey 9.1; a Redis 8 module value that would need transcoding refused with exit 2.

use psor_tests::cli::{self, json, output as run};
use psor_tests::{RedisServer, ServerKind};

fn psor(args: &[&str]) -> std::process::Command {
    cli::command(env!("CARGO_BIN_EXE_psor"), args)
}

#[test]
fn valkey_9_to_redis_7_0_by_copy_and_a_valkey_backup_into_valkey() {
    if !ServerKind::Valkey91.is_installed() {
        eprintln!("skipped: valkey-9.1 is not installed (scripts/fetch-servers.sh)");
        return;
    }
    let v91 = RedisServer::builder().server(ServerKind::Valkey91).start();
    let r70 = RedisServer::builder().server(ServerKind::Redis70).start();
    let mut con = v91.admin_conn();
    for i in 0..20 {
        redis::cmd("SET").arg(format!("a:s{i}")).arg(i).query::<()>(&mut con).unwrap();
        redis::cmd("SADD").arg(format!("a:set{i}")).arg(&["x", "y"]).query::<()>(&mut con).unwrap();
    }
    redis::cmd("HSET").arg("a:hfe").arg(&["f", "1", "g", "2"]).query::<()>(&mut con).unwrap();
    redis::cmd("HPEXPIREAT")
        .arg("a:hfe")
        .arg(4_102_444_800_000i64)
        .arg("FIELDS")
        .arg(1)
        .arg("f")
        .query::<()>(&mut con)
        .unwrap();

    let (src_url, target) = (v91.url(), r70.url());
    let copy = |extra: &[&str]| {
        let mut args = vec!["--psor", src_url.as_str(), "--json", "copy", "--prefix", "a:", "--to-prefix", "b:"];
        args.extend(["--target", target.as_str()]);
        args.extend(extra);
        run(&mut psor(&args))
    };
    // The field expirations cannot go to Redis 7.0: refused before writing, exit 2, one line.
    let (code, _, err) = copy(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("1 keys") && err.contains("a:hfe") && err.contains("--drop-field-ttls"), "{err}");
    assert_eq!(redis::cmd("DBSIZE").query::<u64>(&mut r70.admin_conn()).unwrap(), 0);
    // With --drop-field-ttls: everything arrives, every key transcoded (RDB 80 → 10), counted.
    let (code, out, err) = copy(&["--drop-field-ttls"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["done"].as_u64(), Some(41), "{v}");
    assert_eq!(v["paths"]["transcoded"].as_u64(), Some(41), "{v}");
    assert_eq!(v["paths"]["restore"].as_u64(), Some(0), "{v}");
    assert_eq!(v["paths"]["field_ttls_dropped"].as_u64(), Some(1), "{v}");

    // A Valkey 9.1 backup restores into another Valkey 9.1 (refused as "Redis 7.2.4" before).
    let other = RedisServer::builder().server(ServerKind::Valkey91).start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v9.psnap");
    let file = file.to_str().unwrap();
    let (code, _, err) = run(&mut psor(&["--psor", &v91.url(), "export", "--prefix", "a:", "-o", file]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&mut psor(&["--psor", &other.url(), "--json", "import", file]));
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!((v["done"].as_u64(), v["paths"]["restore"].as_u64()), (Some(41), Some(41)), "{v}");
    let ttl: Vec<i64> = redis::cmd("HPEXPIRETIME")
        .arg("a:hfe")
        .arg("FIELDS")
        .arg(2)
        .arg(&["f", "g"])
        .query(&mut other.admin_conn())
        .unwrap();
    assert_eq!(ttl, vec![4_102_444_800_000, -1]);
}

#[test]
fn a_module_value_that_would_need_transcoding_is_refused_with_exit_2_before_writing() {
    if !ServerKind::Redis80.is_installed() {
        eprintln!("skipped: redis-8.0 is not installed (scripts/fetch-servers.sh)");
        return;
    }
    let r8 = RedisServer::builder().server(ServerKind::Redis80).start();
    let r70 = RedisServer::builder().server(ServerKind::Redis70).start();
    let mut con = r8.admin_conn();
    redis::cmd("SET").arg("a:s").arg("x").query::<()>(&mut con).unwrap();
    // Redis 8's built-in vector sets: a module type psor cannot transcode for Redis 7.0.
    redis::cmd("VADD").arg("a:v").arg("VALUES").arg(2).arg(&["0.5", "0.25"]).arg("e").query::<i64>(&mut con).unwrap();
    let (src, target) = (r8.url(), r70.url());
    let (code, _, err) =
        run(&mut psor(&["--psor", &src, "copy", "--prefix", "a:", "--to-prefix", "b:", "--target", &target]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("1 keys hold module values") && err.contains("a:v") && err.contains("vectorset"), "{err}");
    assert_eq!(redis::cmd("DBSIZE").query::<u64>(&mut r70.admin_conn()).unwrap(), 0, "nothing written");
}

/// A Valkey 9.1 stream copied to Redis 7.0 (transcoded: other DUMP bytes) is the same stream
/// to `verify --snapshot` (exit 0) and to a re-import of the Valkey backup (unchanged); one
/// pending entry acknowledged on the copy makes it a content difference (exit 8) and a
/// conflict, naming the key.
#[test]
fn a_valkey_9_stream_verifies_and_reimports_against_its_redis_7_0_copy() {
    if !ServerKind::Valkey91.is_installed() {
        eprintln!("skipped: valkey-9.1 is not installed (scripts/fetch-servers.sh)");
        return;
    }
    let v91 = RedisServer::builder().server(ServerKind::Valkey91).start();
    let r70 = RedisServer::builder().server(ServerKind::Redis70).start();
    let mut con = v91.admin_conn();
    for i in 1..=10 {
        redis::cmd("XADD").arg("a:st").arg(format!("1-{i}")).arg("n").arg(i).query::<()>(&mut con).unwrap();
    }
    redis::cmd("XGROUP").arg("CREATE").arg("a:st").arg("g").arg("0").query::<()>(&mut con).unwrap();
    let read = ["GROUP", "g", "alice", "COUNT", "3", "STREAMS", "a:st", ">"];
    redis::cmd("XREADGROUP").arg(&read).query::<redis::Value>(&mut con).unwrap();
    let (src, dst) = (v91.url(), r70.url());
    let (code, out, err) =
        run(&mut psor(&["--psor", &src, "--json", "copy", "--prefix", "a:", "--to-prefix", "b:", "--target", &dst]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["paths"]["transcoded"].as_u64(), Some(1), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v9-stream.psnap");
    let file = file.to_str().unwrap();
    let (code, _, err) = run(&mut psor(&["--psor", &src, "export", "--prefix", "a:", "-o", file]));
    assert_eq!(code, 0, "{err}");
    let verify = || {
        run(&mut psor(&["--psor", &dst, "--json", "verify", "--prefix", "b:", "--to-prefix", "a:", "--snapshot", file]))
    };
    let import = || run(&mut psor(&["--psor", &dst, "--json", "import", file, "--rename", "a:=b:"]));
    let (code, out, err) = verify();
    assert_eq!((code, json(&out)["same"].as_u64()), (0, Some(1)), "{out}\n{err}");
    let (_, out, err) = import();
    let v = json(&out);
    assert_eq!((v["unchanged"].as_u64(), v["conflicts"].as_u64()), (Some(1), Some(0)), "{v}\n{err}");

    redis::cmd("XACK").arg("b:st").arg("g").arg("1-2").query::<i64>(&mut r70.admin_conn()).unwrap();
    let (code, out, err) = verify();
    let v = json(&out);
    assert_eq!((code, v["content"].as_u64()), (8, Some(1)), "{v}\n{err}");
    assert!(out.contains("b:st"), "{out}");
    let (_, out, err) = import();
    let v = json(&out);
    assert_eq!((v["unchanged"].as_u64(), v["conflicts"].as_u64()), (Some(0), Some(1)), "{v}\n{err}");
    assert!(out.contains("b:st"), "{out}");
}
