//! Tests of the standalone-server part of the harness: ports, restart, password, ACL, TLS.

use std::collections::HashSet;
use std::net::TcpListener;

use psor_tests::{RedisServer, ServerKind};

fn ping(conn: &mut redis::Connection) -> redis::RedisResult<String> {
    redis::cmd("PING").query(conn)
}

#[test]
fn plain_server_answers_and_frees_its_port_on_stop_and_drop() {
    let mut server = RedisServer::start();
    let port = server.port();
    assert_eq!(server.addr(), format!("127.0.0.1:{port}"));
    assert_eq!(server.url(), format!("redis://127.0.0.1:{port}/"));
    assert_eq!(ping(&mut server.admin_conn()).unwrap(), "PONG");
    assert!(TcpListener::bind(("127.0.0.1", port)).is_err(), "port should be held while the server runs");
    let dir = server.dir().to_path_buf();
    assert!(dir.join("redis.conf").is_file());

    server.stop();
    assert!(!server.is_running());
    TcpListener::bind(("127.0.0.1", port)).expect("port free after stop()");

    server.restart();
    assert_eq!(server.port(), port);
    assert_eq!(ping(&mut server.admin_conn()).unwrap(), "PONG");

    drop(server);
    TcpListener::bind(("127.0.0.1", port)).expect("port free after drop");
    assert!(!dir.exists(), "temp dir removed on drop");
}

#[test]
fn version_and_config_directives_apply() {
    let server = RedisServer::builder().config("maxmemory-policy", "allkeys-lru").start();
    let version = server.redis_version();
    assert!(version >= (6, 2, 0), "harness expects Redis 6.2+, got {version:?}");
    assert_eq!(version, server.kind().version(), "INFO and --version name the same version");
    let mut conn = server.admin_conn();
    let policy: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query(&mut conn).unwrap();
    assert_eq!(policy, ["maxmemory-policy", "allkeys-lru"]);
    let save: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("save").query(&mut conn).unwrap();
    assert_eq!(save, ["save", ""]);
    // enable-debug-command yes (7.0+; always allowed before): DEBUG works on a local connection.
    let _: String = redis::cmd("DEBUG").arg("SLEEP").arg(0).query(&mut conn).unwrap();
}

#[test]
fn many_servers_start_in_parallel_on_distinct_ports() {
    let servers: Vec<RedisServer> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(RedisServer::start)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ports: HashSet<u16> = servers.iter().map(RedisServer::port).collect();
    assert_eq!(ports.len(), servers.len());
    for s in &servers {
        assert_eq!(ping(&mut s.admin_conn()).unwrap(), "PONG");
    }
}

#[test]
fn password_is_required() {
    let server = RedisServer::builder().password("s3cret").start();
    assert_eq!(server.url(), format!("redis://:s3cret@{}/", server.addr()));
    assert_eq!(ping(&mut server.admin_conn()).unwrap(), "PONG");
    let mut anon = redis::Client::open(format!("redis://{}/", server.addr())).unwrap().get_connection().unwrap();
    let err = ping(&mut anon).unwrap_err();
    assert_eq!(err.code(), Some("NOAUTH"), "{err}");
}

#[test]
fn acl_user_gets_only_its_commands() {
    let server = RedisServer::builder().acl_user("psor", "pw", &["get", "set", "ping"]).start();
    let mut admin = server.admin_conn();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut admin).unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut admin).map(|_: String| ()).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut admin).unwrap();

    assert_eq!(server.url_for("psor", "pw"), format!("redis://psor:pw@{}/", server.addr()));
    let mut user = server.client_for("psor", "pw").get_connection().unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut user).unwrap();
    assert_eq!(v, "v");
    let err = redis::cmd("FLUSHALL").query::<String>(&mut user).unwrap_err();
    assert_eq!(err.code(), Some("NOPERM"), "{err}");
    let err = redis::cmd("KEYS").arg("*").query::<Vec<String>>(&mut user).unwrap_err();
    assert_eq!(err.code(), Some("NOPERM"), "{err}");

    let bad = server.client_for("psor", "wrong").get_connection();
    assert!(bad.is_err(), "wrong password must be refused");
}

#[test]
fn tls_server_needs_tls_and_its_ca() {
    if psor_tests::skip_without_tls("tls_server_needs_tls_and_its_ca") {
        return;
    }
    let server = RedisServer::builder().tls().start();
    assert!(server.url().starts_with("rediss://127.0.0.1:"));
    let (ca, cert, key) = server.tls_files();
    for f in [&ca, &cert, &key] {
        let pem = std::fs::read_to_string(f).unwrap();
        assert!(pem.starts_with("-----BEGIN"), "{} is not PEM", f.display());
    }

    // With the CA and the client certificate: works.
    assert_eq!(ping(&mut server.admin_conn()).unwrap(), "PONG");

    // With the CA only (client certificates are optional): works.
    let ca_only = redis::Client::build_with_tls(
        server.url(),
        redis::TlsCertificates { client_tls: None, root_cert: Some(std::fs::read(&ca).unwrap()) },
    )
    .unwrap();
    assert_eq!(ping(&mut ca_only.get_connection().unwrap()).unwrap(), "PONG");

    // Plain TCP to the TLS port: no answer.
    let plain = redis::Client::open(format!("redis://{}/", server.addr())).unwrap();
    let plain_result = plain.get_connection_with_timeout(std::time::Duration::from_secs(2)).and_then(|mut c| {
        c.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        ping(&mut c)
    });
    assert!(plain_result.is_err(), "plain connection to a TLS port must fail");

    // TLS without our CA (system roots): the certificate is not trusted.
    let untrusted =
        redis::Client::open(server.url()).unwrap().get_connection_with_timeout(std::time::Duration::from_secs(2));
    assert!(untrusted.is_err(), "TLS without the test CA must fail");
}

#[test]
fn every_installed_kind_starts_reports_its_version_and_writes_its_rdb_version() {
    let kinds: Vec<ServerKind> = ServerKind::ALL.into_iter().filter(|k| k.is_installed()).collect();
    assert!(kinds.contains(&ServerKind::from_env()), "the default kind is installed");
    for kind in kinds {
        let server = RedisServer::builder().server(kind).start();
        assert_eq!(server.kind(), kind);
        assert_eq!(server.redis_version(), kind.version(), "{kind}");
        let info: String = redis::cmd("INFO").arg("server").query(&mut server.admin_conn()).unwrap();
        assert_eq!(info.contains("server_name:valkey"), kind.is_valkey(), "{kind}");
        let mut conn = server.admin_conn();
        let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut conn).unwrap();
        let dump: Vec<u8> = redis::cmd("DUMP").arg("k").query(&mut conn).unwrap();
        // The payload ends with the 2-byte RDB version (little-endian) and an 8-byte CRC.
        let at = dump.len() - 10;
        assert_eq!(u16::from_le_bytes([dump[at], dump[at + 1]]), kind.rdb_version(), "{kind}");
        let pexpiretime = redis::cmd("PEXPIRETIME").arg("k").query::<i64>(&mut conn);
        assert_eq!(pexpiretime.is_ok(), kind.has_pexpiretime(), "{kind}: {pexpiretime:?}");
        let field_ttl =
            redis::cmd("HEXPIRE").arg("h").arg(100).arg("FIELDS").arg(1).arg("f").query::<redis::Value>(&mut conn);
        assert_eq!(field_ttl.is_ok(), kind.has_field_ttls(), "{kind}: {field_ttl:?}");
        // Only Debian's builds (7.0, and trixie's 8.0) have TLS; a TLS server of it starts.
        assert_eq!(kind.has_tls(), matches!(kind, ServerKind::Redis70 | ServerKind::Redis80), "{kind}");
        if kind.has_tls() {
            let tls = RedisServer::builder().server(kind).tls().start();
            assert!(tls.is_tls());
        }
    }
}
