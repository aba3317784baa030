//! The `psor` binary on a TLS-only Redis Cluster, as operators run it: `--psor
//! rediss+cluster://…` with `--tls-ca/--tls-cert/--tls-key`; without the CA the
//! connection fails with one line and exit 1, and nothing is touched.

use std::process::{Command, Output, Stdio};

use psor_tests::{keyspace_digest_cluster, populate_all_types, unique_prefix, RedisCluster};

fn psor(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_psor"));
    cmd.args(args).stdin(Stdio::null()).env_remove("PSOR_URL").env_remove("PSOR_PASSWORD").env_remove("REDISCLI_AUTH");
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = cmd.output().expect("psor runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"))
}

#[test]
fn a_tls_cluster_from_the_command_line() {
    if psor_tests::skip_without_tls("a_tls_cluster_from_the_command_line") {
        return;
    }
    let cluster = RedisCluster::start_tls(3, 0);
    let (ca, cert, key) = cluster.tls_files();
    let (ca, cert, key) = (ca.to_str().unwrap(), cert.to_str().unwrap(), key.to_str().unwrap());
    let url = cluster.url();
    assert!(url.starts_with("rediss+cluster://"), "{url}");
    let ns = unique_prefix("cli-tlscluster");
    let (a, b) = (format!("{ns}a:"), format!("{ns}b:"));
    populate_all_types(&mut cluster.cluster_conn(), a.as_bytes(), 90);
    populate_all_types(&mut cluster.cluster_conn(), b.as_bytes(), 30);
    let tls = ["--psor", &url, "--tls-ca", ca, "--tls-cert", cert, "--tls-key", key];

    let (code, out, err) = run(psor(&tls).args(["--json", "scan", "--prefix", &a, "--count-only"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["matched"].as_u64(), Some(90));

    // Without --tls-ca the private CA is not trusted: one line, exit 1, nothing deleted.
    let (code, out, err) = run(&mut psor(&["--psor", &url, "--yes", "delete", "--prefix", &a]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(keyspace_digest_cluster(&cluster, a.as_bytes()).len(), 90);

    let (code, out, err) = run(psor(&tls).args(["--json", "--yes", "delete", "--prefix", &a]));
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!((v["matched"].as_u64(), v["done"].as_u64(), v["failed"].as_u64()), (Some(90), Some(90), Some(0)));
    assert!(keyspace_digest_cluster(&cluster, a.as_bytes()).is_empty());
    assert_eq!(keyspace_digest_cluster(&cluster, b.as_bytes()).len(), 30, "a neighbouring prefix was touched");
}
