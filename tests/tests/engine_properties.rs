//! Properties over random names: whatever the prefix's bytes (glob metacharacters, NUL,
//! newlines, high bytes) and whatever names sit next to it, a delete removes exactly the
//! keys that start with the prefix and a copy reproduces exactly those.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::{self, CopyOptions, DeleteOptions, EngineOptions};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_tests::{unique_prefix, RedisServer};

fn all_keys(conn: &mut redis::Connection, ns: &[u8]) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg(psor_tests::glob_escape(ns).into_iter().chain(*b"*").collect::<Vec<u8>>())
        .query(conn)
        .unwrap();
    keys.retain(|k| k.starts_with(ns));
    keys.sort();
    keys
}

/// Bytes that make prefixes interesting: glob metacharacters, separators, NUL, newline, 0xff.
fn name_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b'*'),
            Just(b'?'),
            Just(b'['),
            Just(b']'),
            Just(b'\\'),
            Just(b':'),
            Just(b'_'),
            Just(b'.'),
            Just(0u8),
            Just(b'\n'),
            Just(0xffu8),
            Just(b'a'),
            Just(b'A'),
            Just(b'0'),
            Just(b'9'),
        ],
        1..8,
    )
}

/// Runs `case` over 48 random (prefix, neighbour names) pairs against one server that
/// lives exactly as long as the property.
fn check(case: impl Fn(&RedisServer, Vec<u8>, Vec<Vec<u8>>) -> Result<(), TestCaseError>) {
    let server = RedisServer::start();
    let mut runner = TestRunner::new(Config { cases: 48, ..Config::default() });
    let strategy = (name_bytes(), prop::collection::vec(name_bytes(), 1..12));
    runner.run(&strategy, |(p, others)| case(&server, p, others)).unwrap();
}

#[test]
fn delete_touches_exactly_the_prefix() {
    check(|server, p, others| {
        let mut conn = server.admin_conn();
        let ns = unique_prefix("prop-delete").into_bytes();
        let prefix: Vec<u8> = ns.iter().chain(&p).copied().collect();
        // Keys under the prefix, and neighbours built from it: truncations, extensions, and
        // random names (some of which happen to start with the prefix; they must go too).
        let mut names: Vec<Vec<u8>> = others.iter().map(|o| ns.iter().chain(o).copied().collect()).collect();
        for o in &others {
            names.push(prefix.iter().chain(o).copied().collect());
            names.push(prefix[..prefix.len() - 1].iter().chain(o).copied().collect());
        }
        names.push(prefix.clone());
        names.push(prefix[..prefix.len() - 1].to_vec());
        for n in &names {
            let _: () = redis::cmd("SET").arg(n).arg("v").query(&mut conn).unwrap();
        }
        let before = all_keys(&mut conn, &ns);
        let psor = Psor::connect(&PsorSpec::parse(&server.url()).unwrap(), &ConnectOptions::default()).unwrap();
        let opts = DeleteOptions { prefix: KeyPrefix::new(prefix.clone()).unwrap(), dry_run: false, sample: 0 };
        let engine_opts = EngineOptions { scan_count: 7, batch_size: 3, ..EngineOptions::default() };
        let out = engine::delete(&psor, &opts, &engine_opts, Arc::new(Progress::new())).unwrap();
        let expected: Vec<Vec<u8>> = before.iter().filter(|k| !k.starts_with(&prefix)).cloned().collect();
        prop_assert_eq!(out.counts.done as usize, before.len() - expected.len());
        prop_assert_eq!(all_keys(&mut conn, &ns), expected);
        Ok(())
    });
}

#[test]
fn copy_reproduces_exactly_the_prefix() {
    check(|server, p, others| {
        let mut conn = server.admin_conn();
        let ns = unique_prefix("prop-copy").into_bytes();
        let dest_ns = unique_prefix("prop-copy-dest").into_bytes();
        let prefix: Vec<u8> = ns.iter().chain(&p).copied().collect();
        let mut names: Vec<Vec<u8>> = others.iter().map(|o| ns.iter().chain(o).copied().collect()).collect();
        names.extend(others.iter().map(|o| prefix.iter().chain(o).copied().collect::<Vec<u8>>()));
        for n in &names {
            let _: () = redis::cmd("SET").arg(n).arg(n).query(&mut conn).unwrap();
        }
        let psor = Psor::connect(&PsorSpec::parse(&server.url()).unwrap(), &ConnectOptions::default()).unwrap();
        let opts = CopyOptions {
            from: KeyPrefix::new(prefix.clone()).unwrap(),
            to: KeyPrefix::new(dest_ns.clone()).unwrap(),
            replace: false,
            move_keys: false,
            dry_run: false,
            sample: 0,
        };
        engine::copy(&psor, None, &opts, &EngineOptions::default(), Arc::new(Progress::new())).unwrap();
        let mut expected: Vec<Vec<u8>> = all_keys(&mut conn, &ns)
            .into_iter()
            .filter(|k| k.starts_with(&prefix))
            .map(|k| dest_ns.iter().chain(&k[prefix.len()..]).copied().collect())
            .collect();
        expected.sort();
        prop_assert_eq!(all_keys(&mut conn, &dest_ns), expected);
        Ok(())
    });
}
