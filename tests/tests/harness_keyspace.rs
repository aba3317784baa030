//! Tests of the keyspace helpers: digest by content, populate_all_types, glob_escape.

use std::collections::BTreeSet;

use psor_tests::{
    expiry_matches, glob_escape, keyspace_digest, populate_all_types, unique_prefix, CanonicalValue, RedisServer,
    ALL_TYPES,
};

fn run(conn: &mut redis::Connection, args: &[&[u8]]) {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query::<redis::Value>(conn).unwrap();
}

#[test]
fn glob_escape_escapes_metacharacters_only() {
    assert_eq!(glob_escape(b"a*b?c[d]e\\f"), b"a\\*b\\?c\\[d\\]e\\\\f".to_vec());
    assert_eq!(glob_escape(b"plain:\0\n "), b"plain:\0\n ".to_vec());
}

#[test]
fn digest_compares_content_not_encoding_or_insertion_order() {
    // Server b stores hashes, sets and zsets in their big encodings, a in the compact ones,
    // and receives elements in the opposite order: DUMP differs, content does not.
    let a = RedisServer::start();
    // Redis 6.2 still calls the compact encoding ziplist.
    let compact = if a.kind().has_pexpiretime() { "listpack" } else { "ziplist" };
    let b = RedisServer::builder()
        .config(&format!("hash-max-{compact}-entries"), "0")
        .config("set-max-intset-entries", "0")
        .config(&format!("zset-max-{compact}-entries"), "0")
        .start();
    let p = b"same:";
    let (mut ca, mut cb) = (a.admin_conn(), b.admin_conn());
    run(&mut ca, &[b"HSET", b"same:h", b"f1", b"1", b"f2", b"2", b"f3", b"3"]);
    run(&mut cb, &[b"HSET", b"same:h", b"f3", b"3", b"f2", b"2", b"f1", b"1"]);
    run(&mut ca, &[b"SADD", b"same:s", b"1", b"2", b"3"]);
    run(&mut cb, &[b"SADD", b"same:s", b"3", b"1", b"2"]);
    run(&mut ca, &[b"ZADD", b"same:z", b"1", b"x", b"2", b"y"]);
    run(&mut cb, &[b"ZADD", b"same:z", b"2", b"y", b"1", b"x"]);
    for c in [&mut ca, &mut cb] {
        run(c, &[b"RPUSH", b"same:l", b"a", b"b", b"a"]);
        run(c, &[b"SET", b"same:str", b"\x00\xff"]);
        run(c, &[b"PEXPIREAT", b"same:str", b"4102444800000"]);
        run(c, &[b"XADD", b"same:x", b"1-1", b"f", b"v"]);
        run(c, &[b"SET", b"other:not-in-digest", b"1"]);
    }
    let dump = |c: &mut redis::Connection| -> Vec<u8> { redis::cmd("DUMP").arg("same:h").query(c).unwrap() };
    assert_ne!(dump(&mut ca), dump(&mut cb), "encodings should differ");

    let da = keyspace_digest(&mut ca, p);
    let db = keyspace_digest(&mut cb, p);
    assert_eq!(da.len(), 6);
    assert_eq!(da, db);
    assert!(expiry_matches(da[&b"same:str".to_vec()].expire_at_ms, Some(4_102_444_800_000)));
    assert_eq!(da[&b"same:l".to_vec()].expire_at_ms, None);

    // A real difference is seen: list order matters.
    run(&mut cb, &[b"DEL", b"same:l"]);
    run(&mut cb, &[b"RPUSH", b"same:l", b"b", b"a", b"a"]);
    assert_ne!(da, keyspace_digest(&mut cb, p));
    // ...and so does a TTL.
    run(&mut cb, &[b"DEL", b"same:l"]);
    run(&mut cb, &[b"RPUSH", b"same:l", b"a", b"b", b"a"]);
    assert_eq!(da, keyspace_digest(&mut cb, p));
    run(&mut cb, &[b"PEXPIREAT", b"same:l", b"4102444800000"]);
    assert_ne!(da, keyspace_digest(&mut cb, p));
}

#[test]
fn populate_all_types_writes_every_type_and_awkward_names() {
    let server = RedisServer::start();
    let mut conn = server.admin_conn();
    let prefix = unique_prefix("populate");
    let keys = populate_all_types(&mut conn, prefix.as_bytes(), 36);
    assert_eq!(keys.len(), 36);
    assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), 36, "names are distinct");

    let digest = keyspace_digest(&mut conn, prefix.as_bytes());
    assert_eq!(digest.keys().cloned().collect::<BTreeSet<_>>(), keys.iter().cloned().collect());
    let kinds: BTreeSet<&str> = digest.values().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ALL_TYPES.into_iter().collect());
    assert!(digest.values().all(|s| !matches!(s.value, CanonicalValue::Other)));
    let with_ttl = digest.values().filter(|s| s.expire_at_ms.is_some()).count();
    assert_eq!(with_ttl, 12);
    for needle in [&b" "[..], b"\n", b"\0", b"*", b"?", b"[", b"]", b"\\"] {
        assert!(
            keys.iter().any(|k| k[prefix.len()..].windows(needle.len()).any(|w| w == needle)),
            "no key with {needle:?}"
        );
    }

    // Deterministic and idempotent: a second run, and a run on another server, give the
    // same content.
    populate_all_types(&mut conn, prefix.as_bytes(), 36);
    assert_eq!(keyspace_digest(&mut conn, prefix.as_bytes()), digest);
    let other = RedisServer::start();
    let mut other_conn = other.admin_conn();
    populate_all_types(&mut other_conn, prefix.as_bytes(), 36);
    assert_eq!(keyspace_digest(&mut other_conn, prefix.as_bytes()), digest);
}

#[test]
fn digest_prefix_is_literal_not_a_glob() {
    let server = RedisServer::start();
    let mut conn = server.admin_conn();
    // Unescaped, "g*[ab]?" would match all three keys.
    run(&mut conn, &[b"SET", b"g*[ab]?:1", b"in"]);
    run(&mut conn, &[b"SET", b"gXXa!:1", b"out"]);
    run(&mut conn, &[b"SET", b"g*[ab]", b"out: shorter than prefix"]);
    let d = keyspace_digest(&mut conn, b"g*[ab]?");
    assert_eq!(d.keys().cloned().collect::<Vec<_>>(), vec![b"g*[ab]?:1".to_vec()]);
}

#[test]
fn unique_prefixes_differ() {
    assert_ne!(unique_prefix("t"), unique_prefix("t"));
    assert!(unique_prefix("name").contains("name"));
}
