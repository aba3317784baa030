//! Tests of the sentinel part of the harness.

use psor_tests::{RedisSentinel, RedisServer};

#[test]
fn sentinel_reports_the_master() {
    let master = RedisServer::builder().password("mpw").start();
    let sentinel = RedisSentinel::start(&master, "psormaster");
    assert_eq!(sentinel.master_addr("psormaster"), Some(("127.0.0.1".to_owned(), master.port())));
    assert_eq!(sentinel.url("psormaster"), format!("redis+sentinel://127.0.0.1:{}/psormaster", sentinel.port()));
    assert_eq!(sentinel.master_addr("unknown"), None);
}
