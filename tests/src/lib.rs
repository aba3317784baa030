//! The test harness: real `redis-server` processes on free loopback ports.
//!
//! psor's integration tests and benchmarks need real Redis servers (standalone, TLS, ACL,
//! cluster, sentinel) that many tests can run at once without stepping on each other, and
//! a way to say "these two keyspaces hold the same data". This crate provides both; it
//! never mocks Redis. It starts any of four builds ([`ServerKind`]: Redis 7.0, Redis 6.2,
//! Valkey 8.1, Valkey 9.1), by default the one `PSOR_TEST_SERVER` names. If `redis-server` is missing, starting a server panics with a hint
//! to run `scripts/ensure-redis.sh`.
//!
//! ```no_run
//! use psor_tests::{keyspace_digest, populate_all_types, unique_prefix, RedisServer};
//! let server = RedisServer::start();
//! let prefix = unique_prefix("example");
//! let mut conn = server.admin_conn();
//! populate_all_types(&mut conn, prefix.as_bytes(), 12);
//! assert_eq!(keyspace_digest(&mut conn, prefix.as_bytes()).len(), 12);
//! ```
#![deny(missing_docs)]

pub mod cli;
pub mod cluster;
pub mod keyspace;
pub mod kind;
pub mod live;
pub mod ports;
pub mod sentinel;
pub mod server;
pub mod tls;

pub use cluster::{keyspace_digest_cluster, RedisCluster};
pub use keyspace::{
    expire_time_ms, expiry_matches, glob_escape, key_state, keyspace_digest, populate_all_types, unique_prefix,
    CanonicalValue, KeyState, StreamEntry, ALL_TYPES, POPULATE_EXPIRE_AT_MS,
};
pub use kind::{
    needs_transcode, needs_transcode_into_store, needs_transcode_out_of_store, skip, skip_without_pexpiretime,
    skip_without_tls, ServerKind,
};
pub use sentinel::RedisSentinel;
pub use server::{RedisServer, RedisServerBuilder};
pub use tls::{install_crypto_provider, TlsFiles};
