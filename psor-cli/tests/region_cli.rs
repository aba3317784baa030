//! psor on a region's host (issue 14): the PSOR taken from `ES_SCALE_OUT_REPOS_n` (the SOR
//! marked TMP) or `--es-env FILE`, `ES_PAC` as every PAC command's default PAC, the
//! placement warnings of `status` and `check-compat` (queues in the PSOR, in a SOR that is
//! the PSOR's server spelled another way, or with no SOR but the PSOR), malformed lines, and
//! Sentinels with a password of their own. Real servers throughout.

use psor_tests::cli::json;
use psor_tests::{RedisCluster, RedisSentinel, RedisServer};

/// `psor --no-progress ARGS` with `vars` set (and nothing else of the caller's).
fn run(vars: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = psor_tests::cli::command(env!("CARGO_BIN_EXE_psor"), &["--no-progress"]);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    psor_tests::cli::output(cmd.args(args))
}

fn ok(vars: &[(&str, &str)], args: &[&str], code: i32) -> (String, String) {
    let (c, out, err) = run(vars, args);
    assert_eq!(c, code, "psor {args:?} with {vars:?}\nstdout: {out}\nstderr: {err}");
    (out, err)
}

fn kinds(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|w| (w["kind"].as_str().unwrap().to_string(), w["var"].as_str().unwrap().to_string()))
        .collect()
}

fn dbsize(server: &RedisServer) -> u64 {
    redis::cmd("DBSIZE").query(&mut server.admin_conn()).unwrap()
}

#[test]
fn the_region_s_psor_and_queue_sor_standalone() {
    let psor = RedisServer::start();
    let queues = RedisServer::start();
    let p1 = format!("PSOR=redis,{}##TMP", psor.addr());
    let q2 = format!("QUEUES=redis,{}##TS=*#TD=*", queues.addr());
    let good: &[(&str, &str)] = &[("ES_PAC", "MyPAC"), ("ES_SCALE_OUT_REPOS_1", &p1), ("ES_SCALE_OUT_REPOS_2", &q2)];

    // No --psor, no PSOR_URL: the TMP SOR; the PAC from ES_PAC. Said on stderr.
    let (_, err) = ok(good, &["sample", "--product-version", "8.0", "--keys", "50"], 0);
    assert!(err.contains("ES_SCALE_OUT_REPOS_1 (environment)") && err.contains(&psor.addr()), "{err}");
    assert!(dbsize(&psor) > 0);
    assert_eq!(dbsize(&queues), 0);
    // …and in --json.
    let (out, _) = ok(good, &["--json", "scan", "--prefix", "MyPAC_8.0:", "--count-only"], 0);
    let v = json(&out);
    assert_eq!(v["psor_source"]["var"], "ES_SCALE_OUT_REPOS_1");
    assert_eq!(v["psor_source"]["origin"], "environment");
    assert_eq!(v["psor_source"]["connection"], format!("redis,{}", psor.addr()));
    assert!(v["matched"].as_u64().unwrap() > 0);

    // A good placement: status exits 0 with an empty `placement`; check-compat has none.
    let (out, _) = ok(good, &["--json", "status"], 0);
    let v = json(&out);
    assert_eq!(kinds(&v["placement"]), vec![]);
    assert_eq!(v["pacs"].as_array().unwrap().len(), 1, "status defaults to ES_PAC's PAC");
    let (out, _) = ok(good, &["--json", "check-compat", "--product-version", "9.0"], 4);
    assert_eq!(kinds(&json(&out)["placement_warnings"]), vec![]);
    assert_eq!(json(&out)["psor_source"]["var"], "ES_SCALE_OUT_REPOS_1");
    // ES_PAC is the default PAC of every PAC command (here a dry run of create).
    ok(good, &["create", "--product-version", "9.0", "--dry-run"], 0);
    let (out, _) = ok(good, &["set-mode", "running", "--product-version", "8.0", "--dry-run"], 0);
    assert!(out.contains("Running"), "{out}");
    ok(good, &["caspac", "-aSetMode=Running", "--product-version", "8.0", "--dry-run"], 0);

    // The queue SOR is the PSOR's server spelled another way: same run_id → warned.
    let same = format!("QUEUES=redis,localhost:{}##TS=*#TD=*", psor.port());
    let spelled: &[(&str, &str)] =
        &[("ES_PAC", "MyPAC"), ("ES_SCALE_OUT_REPOS_1", &p1), ("ES_SCALE_OUT_REPOS_2", &same)];
    let (out, _) = ok(spelled, &["--json", "status"], 7);
    let v = json(&out);
    assert_eq!(kinds(&v["placement"]), vec![("queues-on-psor-server".into(), "ES_SCALE_OUT_REPOS_2".into())]);
    let msg = v["placement"][0]["message"].as_str().unwrap();
    assert!(msg.contains("step 6") && msg.contains("step 14") && msg.contains("ES_SCALE_OUT_REPOS_2"), "{msg}");
    assert_eq!(v["warnings"].as_array().unwrap().len(), 0, "the PAC itself is healthy");
    let (out, _) = ok(spelled, &["status"], 7);
    assert!(out.contains("placement warnings (1):") && out.contains("queues-on-psor-server"), "{out}");
    let (out, _) = ok(spelled, &["check-compat", "--product-version", "9.0"], 4);
    assert!(out.contains("WARNING queues-on-psor-server (ES_SCALE_OUT_REPOS_2, environment)"), "{out}");
    // The same with --psor naming the PSOR: the region's placement is still checked.
    let (out, err) = ok(spelled, &["--json", "--psor", &psor.url(), "check-compat", "--product-version", "9.0"], 4);
    assert_eq!(kinds(&json(&out)["placement_warnings"]).len(), 1);
    assert!(!err.contains("PSOR from"), "{err}");
    assert!(json(&out).get("psor_source").is_none());

    // Models on the TMP SOR itself.
    let tmp_models = format!("PSOR=redis,{}##TMP#TD=A+++", psor.addr());
    let q_plain = format!("QUEUES=redis,{}##TS=*", queues.addr());
    let in_psor: &[(&str, &str)] =
        &[("ES_PAC", "MyPAC"), ("ES_SCALE_OUT_REPOS_1", &tmp_models), ("ES_SCALE_OUT_REPOS_2", &q_plain)];
    let v = json(&ok(in_psor, &["--json", "status"], 7).0);
    assert_eq!(kinds(&v["placement"]), vec![("queues-in-psor-sor".into(), "ES_SCALE_OUT_REPOS_1".into())]);
    assert_eq!(v["placement"][0]["models"][0], "TD=A+++");

    // Queue models but no SOR other than the PSOR.
    let alone: &[(&str, &str)] = &[("ES_PAC", "MyPAC"), ("ES_SCALE_OUT_REPOS_1", &tmp_models)];
    let v = json(&ok(alone, &["--json", "status"], 7).0);
    assert_eq!(
        kinds(&v["placement"]),
        vec![
            ("queues-in-psor-sor".into(), "ES_SCALE_OUT_REPOS_1".into()),
            ("no-queue-sor".into(), "ES_SCALE_OUT_REPOS_1".into())
        ]
    );

    // A queue SOR that cannot be opened: unchecked, and said so.
    let down = "QUEUES=redis,127.0.0.1:1##TS=*".to_string();
    let unreachable: &[(&str, &str)] =
        &[("ES_PAC", "MyPAC"), ("ES_SCALE_OUT_REPOS_1", &p1), ("ES_SCALE_OUT_REPOS_2", &down)];
    let v = json(&ok(unreachable, &["--json", "status"], 7).0);
    assert_eq!(kinds(&v["placement"]), vec![("sor-unreachable".into(), "ES_SCALE_OUT_REPOS_2".into())]);

    // --es-env FILE: the region's lines copied into a file win over the environment.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("region.env");
    std::fs::write(
        &file,
        format!("# region REGION1\nexport ES_PAC=MyPAC\nES_SCALE_OUT_REPOS_1={p1}\nES_SCALE_OUT_REPOS_2={q2}\n"),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let (out, err) = ok(spelled, &["--json", "--es-env", f, "status"], 0);
    assert_eq!(kinds(&json(&out)["placement"]), vec![]);
    assert!(err.contains(&format!("ES_SCALE_OUT_REPOS_1 ({f}:3)")), "{err}");
    assert_eq!(json(&out)["psor_source"]["origin"], format!("{f}:3"));
}

#[test]
fn malformed_region_lines_and_precedence() {
    let server = RedisServer::start();
    let p1 = format!("PSOR=redis,{}##TMP", server.addr());
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("ES_SCALE_OUT_REPOS_1", "PSOR=redis,h##TMP")], "ES_SCALE_OUT_REPOS_1: connection `h`"),
        (&[("ES_SCALE_OUT_REPOS_2", "Q=mongo,h:1##TS=*")], "ES_SCALE_OUT_REPOS_2: unknown SOR type `mongo`"),
        (&[("ES_SCALE_OUT_REPOS_1", &p1), ("ES_SCALE_OUT_REPOS_3", "Q=redis,h:1##TD=TOOLONG")], "ES_SCALE_OUT_REPOS_3"),
        (&[("ES_SCALE_OUT_REPOS_1", "A=redis,h:1"), ("ES_SCALE_OUT_REPOS_2", "B=redis,h:2")], "no SOR is marked TMP"),
        (&[("ES_SCALE_OUT_REPOS_1", &p1), ("ES_SCALE_OUT_REPOS_2", "B=redis,h:2##TMP")], "several SORs are marked TMP"),
    ];
    for (vars, want) in cases {
        let (code, out, err) = run(vars, &["scan", "--prefix", "k:"]);
        assert_eq!(code, 2, "{vars:?}\nstdout: {out}\nstderr: {err}");
        let line = err.lines().find(|l| l.starts_with("psor: ")).unwrap_or_default();
        assert!(line.contains(want), "{vars:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    // In a file: the line is named.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.env");
    std::fs::write(&file, format!("ES_SCALE_OUT_REPOS_1={p1}\nES_SCALE_OUT_REPOS_2=Q=redis,h:1##TS=A::B\n")).unwrap();
    let f = file.to_str().unwrap();
    let (code, _, err) = run(&[], &["--es-env", f, "scan", "--prefix", "k:"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("ES_SCALE_OUT_REPOS_2 ({f}:2)")) && err.contains("empty TS model"), "{err}");
    // --psor wins over the region, which is then not even read for scan.
    let dead = [("ES_SCALE_OUT_REPOS_1", "PSOR=redis,127.0.0.1:1##TMP")];
    let (out, err) = ok(&dead, &["--psor", &server.url(), "scan", "--prefix", "k:", "--count-only"], 0);
    assert_eq!(out.trim(), "0");
    assert!(!err.contains("PSOR from"), "{err}");
    // PSOR_URL too.
    ok(&[dead[0], ("PSOR_URL", &server.url())], &["scan", "--prefix", "k:", "--count-only"], 0);
    // --es-env wins over the environment's (here malformed) SOR list.
    std::fs::write(&file, format!("ES_SCALE_OUT_REPOS_1={p1}\n")).unwrap();
    ok(&[("ES_SCALE_OUT_REPOS_1", "broken")], &["--es-env", f, "scan", "--prefix", "k:", "--count-only"], 0);
    // No PSOR anywhere: usage, naming the region's variables too.
    let (code, _, err) = run(&[], &["scan", "--prefix", "k:"]);
    assert_eq!(code, 2);
    assert!(err.contains("ES_SCALE_OUT_REPOS_n"), "{err}");
    // A PAC command with no PAC and no ES_PAC: usage.
    let (code, _, err) = run(&[("ES_SCALE_OUT_REPOS_1", &p1)], &["check-compat", "--product-version", "9.0"]);
    assert_eq!(code, 2);
    assert!(err.contains("ES_PAC"), "{err}");
}

#[test]
fn cluster_and_sentinel_node_lists_from_the_region() {
    // The PSOR is a cluster given as the vendor's node list; the queue SOR a Sentinel node
    // list whose SOR name names its master — among two the Sentinel watches.
    let cluster = RedisCluster::start(3, 0);
    let queues = RedisServer::start();
    let other = RedisServer::start();
    let sentinel = RedisSentinel::start(&queues, "qmaster");
    let _: () = redis::cmd("SENTINEL")
        .arg("MONITOR")
        .arg("othermaster")
        .arg("127.0.0.1")
        .arg(other.port())
        .arg(1)
        .query(&mut sentinel.conn())
        .unwrap();
    let seeds = cluster.seeds().join(",");
    let p1 = format!("PSOR=redis,{seeds}##TMP");
    let q2 = format!("qmaster=redis,{0},{0}##TS=*#TD=*", sentinel.addr());
    let vars: &[(&str, &str)] = &[("ES_PAC", "MyPAC"), ("ES_SCALE_OUT_REPOS_1", &p1), ("ES_SCALE_OUT_REPOS_2", &q2)];
    ok(vars, &["sample", "--product-version", "8.0", "--keys", "30"], 0);
    let v = json(&ok(vars, &["--json", "status"], 0).0);
    assert_eq!(kinds(&v["placement"]), vec![]);
    assert_eq!(dbsize(&queues), 0);

    // One cluster node spelled `localhost:PORT` as the queue SOR: it is one of the PSOR's
    // masters (same run_id and node id) → warned.
    let node = format!("QUEUES=redis,localhost:{}##TS=*", cluster.masters()[1].port());
    let bad: &[(&str, &str)] = &[("ES_PAC", "MyPAC"), ("ES_SCALE_OUT_REPOS_1", &p1), ("ES_SCALE_OUT_REPOS_2", &node)];
    let v = json(&ok(bad, &["--json", "status"], 7).0);
    assert_eq!(kinds(&v["placement"]), vec![("queues-on-psor-server".into(), "ES_SCALE_OUT_REPOS_2".into())]);

    // The Sentinel node list as the PSOR: the SOR's name picks the master of the two.
    let s1 = format!("othermaster=redis,{0},{0}##TMP", sentinel.addr());
    let (out, err) = ok(&[("ES_SCALE_OUT_REPOS_1", &s1)], &["--json", "scan", "--prefix", "x:", "--count-only"], 0);
    assert!(err.contains("ES_SCALE_OUT_REPOS_1"), "{err}");
    assert_eq!(json(&out)["psor_source"]["sor"], "othermaster");
    // One Sentinel alone (one host:port) works the same.
    let single = format!("othermaster=redis,{}##TMP", sentinel.addr());
    ok(&[("ES_SCALE_OUT_REPOS_1", &single)], &["scan", "--prefix", "x:", "--count-only"], 0);
    let mut o = other.admin_conn();
    let _: () = redis::cmd("SET").arg("x:1").arg("1").query(&mut o).unwrap();
    let (out, _) = ok(&[("ES_SCALE_OUT_REPOS_1", &s1)], &["scan", "--prefix", "x:", "--count-only"], 0);
    assert_eq!(out.trim(), "1", "the master named othermaster, not qmaster");
    let (out, _) = ok(&[("ES_SCALE_OUT_REPOS_1", &single)], &["scan", "--prefix", "x:", "--count-only"], 0);
    assert_eq!(out.trim(), "1", "a single Sentinel: the master named othermaster");
}

#[test]
fn a_password_protected_sentinel_from_the_command_line() {
    let master = RedisServer::builder().password("mpw").start();
    let sentinel = RedisSentinel::start_secured(&master, "mym", "spw", Some(("psorsent", "upw")));
    let _: () = redis::cmd("SET").arg("k:1").arg("v").query(&mut master.admin_conn()).unwrap();
    let url = format!("redis+sentinel://:mpw@{}/mym", sentinel.addr());
    let scan = ["--psor", url.as_str(), "scan", "--prefix", "k:", "--count-only"];

    // As a new user tries it: refused, saying how to give the Sentinel's password.
    let (code, out, err) = run(&[], &scan);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("PSOR_SENTINEL_PASSWORD") && err.contains("--sentinel-password-file"), "{err}");
    // requirepass of the Sentinel (its default user), from the environment.
    let (out, err) = ok(&[("PSOR_SENTINEL_PASSWORD", "spw")], &scan, 0);
    assert_eq!(out.trim(), "1");
    assert!(!err.contains("spw") && !out.contains("spw"));
    // The ACL user, with the password from a file.
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("sentinel.pw");
    std::fs::write(&pw, "upw\n").unwrap();
    let mut args = vec!["--sentinel-user", "psorsent", "--sentinel-password-file", pw.to_str().unwrap()];
    args.extend_from_slice(&scan);
    let (out, err) = ok(&[("PSOR_SENTINEL_PASSWORD", "wrong")], &args, 0);
    assert_eq!(out.trim(), "1", "the file wins over PSOR_SENTINEL_PASSWORD: {err}");
    // A wrong one: refused, and never printed.
    let (code, out, err) = run(&[("PSOR_SENTINEL_PASSWORD", "s3cretwrong")], &scan);
    assert_eq!(code, 2);
    assert!(!err.contains("s3cretwrong") && !out.contains("s3cretwrong") && !err.contains("mpw"), "{err}");
    // A single Sentinel as the region's PSOR (one host:port; the SOR's name is the master),
    // with both passwords from the environment.
    let s1 = format!("mym=redis,{}##TMP", sentinel.addr());
    let vars = [("ES_SCALE_OUT_REPOS_1", s1.as_str()), ("PSOR_PASSWORD", "mpw"), ("PSOR_SENTINEL_PASSWORD", "spw")];
    let (out, err) = ok(&vars, &["scan", "--prefix", "k:", "--count-only"], 0);
    assert_eq!(out.trim(), "1", "{err}");
    // --sentinel-password is not a flag: never on the command line.
    let (code, _, _) = run(&[], &["--sentinel-password", "spw", "scan", "--prefix", "k:"]);
    assert_eq!(code, 2);
}
