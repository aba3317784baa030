//! Connecting the way operators do: TLS with a private CA and client certificates, an ACL
//! user allowed only the commands psor needs, and a password that never shows.

use std::sync::Arc;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec, Secret};
use psor_core::engine::{self, CopyOptions, DeleteOptions, EngineOptions};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_core::Error;
use psor_tests::{keyspace_digest, populate_all_types, unique_prefix, RedisSentinel, RedisServer};

/// The commands psor's scan / delete / copy need; the README lists the same for operators.
pub const PSOR_COMMANDS: &[&str] = &[
    "info",
    "dbsize",
    "scan",
    "unlink",
    "exists",
    "copy",
    "rename",
    "renamenx",
    "dump",
    "restore",
    "pexpiretime",
    "pttl",
    // Reading content, to tell an identical target (a rerun) from a conflict.
    "type",
    "strlen",
    "get",
    "hlen",
    "hgetall",
    "scard",
    "smembers",
    "zcard",
    "zrange",
    "llen",
    "lrange",
    "xlen",
    "xrange",
];

fn run_all(psor: &Psor, conn: &mut redis::Connection, ns: &str) {
    let (from, to) = (format!("{ns}a:"), format!("{ns}b:"));
    populate_all_types(conn, from.as_bytes(), 48);
    let p = |s: &str| KeyPrefix::new(s.as_bytes()).unwrap();
    let engine = EngineOptions::default();
    let opts = CopyOptions { from: p(&from), to: p(&to), replace: false, move_keys: false, dry_run: false, sample: 3 };
    let out = engine::copy(psor, None, &opts, &engine, Arc::new(Progress::new())).unwrap();
    assert_eq!((out.counts.done, out.counts.failed), (48, 0));
    // A rerun compares every target with its source, by content where DUMP bytes differ.
    let out = engine::copy(psor, None, &opts, &engine, Arc::new(Progress::new())).unwrap();
    assert_eq!((out.counts.unchanged, out.counts.conflicts, out.counts.failed), (48, 0, 0));
    let out = engine::copy(
        psor,
        None,
        &CopyOptions { move_keys: true, replace: true, ..opts.clone() },
        &engine,
        Arc::new(Progress::new()),
    )
    .unwrap();
    assert_eq!((out.counts.done, out.counts.failed), (48, 0));
    let del = DeleteOptions { prefix: p(&to), dry_run: false, sample: 0 };
    let out = engine::delete(psor, &del, &engine, Arc::new(Progress::new())).unwrap();
    assert_eq!(out.counts.done, 48);
    assert!(keyspace_digest(conn, to.as_bytes()).is_empty());
    assert!(keyspace_digest(conn, from.as_bytes()).is_empty());
}

#[test]
fn tls_with_a_private_ca_and_client_certificate() {
    if psor_tests::skip_without_tls("tls_with_a_private_ca_and_client_certificate") {
        return;
    }
    let server = RedisServer::builder().tls().start();
    let (ca, cert, key) = server.tls_files();
    let spec = PsorSpec::parse(&format!("rediss://{}", server.addr())).unwrap();
    let opts = ConnectOptions { tls_ca: Some(ca), tls_cert: Some(cert), tls_key: Some(key), ..Default::default() };
    let psor = Psor::connect(&spec, &opts).unwrap();
    run_all(&psor, &mut server.admin_conn(), &unique_prefix("tls"));

    // The caspac form reaches the same server.
    let caspac = PsorSpec::parse(&format!("redis_TLS,{}", server.addr())).unwrap();
    assert!(Psor::connect(&caspac, &opts).is_ok());
    // Without the CA the server's certificate is not trusted.
    let err = Psor::connect(&spec, &ConnectOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    // Plain text to a TLS port fails cleanly.
    let plain = PsorSpec::parse(&format!("redis://{}", server.addr())).unwrap();
    assert!(Psor::connect(
        &plain,
        &ConnectOptions {
            connect_timeout: std::time::Duration::from_secs(2),
            read_timeout: std::time::Duration::from_secs(2),
            retries: 0,
            ..Default::default()
        }
    )
    .is_err());
}

#[test]
fn tls_master_behind_a_tls_sentinel() {
    if psor_tests::skip_without_tls("tls_master_behind_a_tls_sentinel") {
        return;
    }
    // Sentinel and master both serve TLS only, with one private CA; psor asks the sentinel
    // over TLS and reaches the master it names over TLS.
    let master = RedisServer::builder().tls().start();
    let sentinel = RedisSentinel::start(&master, "tlsm");
    let url = sentinel.url("tlsm");
    assert!(url.starts_with("rediss+sentinel://"), "{url}");
    let (ca, cert, key) = master.tls_files();
    let opts = ConnectOptions { tls_ca: Some(ca), tls_cert: Some(cert), tls_key: Some(key), ..Default::default() };
    let spec = PsorSpec::parse(&url).unwrap();
    let psor = Psor::connect(&spec, &opts).unwrap();
    assert!(psor.masters()[0].addr().starts_with(&master.addr()), "{}", psor.masters()[0].addr());
    run_all(&psor, &mut master.admin_conn(), &unique_prefix("tls-sentinel"));
    // Without the CA the sentinel's certificate is not trusted.
    let err = Psor::connect(&spec, &ConnectOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
}

#[test]
fn an_acl_user_with_only_the_documented_commands_can_do_everything() {
    let server = RedisServer::builder().acl_user("psor", "pw-acl", PSOR_COMMANDS).start();
    let spec = PsorSpec::parse(&server.url_for("psor", "pw-acl")).unwrap();
    let psor = Psor::connect(&spec, &ConnectOptions::default()).unwrap();
    run_all(&psor, &mut server.admin_conn(), &unique_prefix("acl"));
}

#[test]
fn a_wrong_password_is_a_connect_error_that_does_not_show_it() {
    let server = RedisServer::builder().password("right-one").start();
    let spec = PsorSpec::parse(&format!("redis://:wrong-secret-42@{}", server.addr())).unwrap();
    let err = Psor::connect(&spec, &ConnectOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }));
    let shown = format!("{err} {err:?} {spec:?} {}", spec.redacted());
    assert!(!shown.contains("wrong-secret-42"), "{shown}");
    // A password from outside the spec wins over the one inside it.
    let opts = ConnectOptions { password: Some(Secret::new("right-one")), ..Default::default() };
    assert!(Psor::connect(&spec, &opts).is_ok());
}
