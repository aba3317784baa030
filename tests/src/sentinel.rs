//! A real Redis Sentinel watching a test master.
//!
//! psor accepts `redis+sentinel://` URLs and must ask Sentinel where the master is rather
//! than trusting a fixed address. `RedisSentinel` runs `redis-server sentinel.conf
//! --sentinel` on its own port and temp dir, monitoring a [`RedisServer`] with quorum 1
//! and a short down-after time so failover tests do not wait long.

use std::time::{Duration, Instant};

use crate::server::{Kind, RedisServer};

/// A running sentinel; stopped and cleaned up on drop.
#[derive(Debug)]
pub struct RedisSentinel {
    server: RedisServer,
    name: String,
}

impl RedisSentinel {
    /// Starts a sentinel monitoring `master` under `name` (quorum 1,
    /// `down-after-milliseconds 1000`), and waits until it reports the master's address.
    ///
    /// # Panics
    /// If the sentinel does not start, or does not report the master within 10 s.
    pub fn start(master: &RedisServer, name: &str) -> RedisSentinel {
        assert!(
            !master.is_tls(),
            "the harness does not run sentinels for TLS masters"
        );
        let server = RedisServer::builder()
            .kind(Kind::Sentinel {
                name: name.to_owned(),
                master_port: master.port(),
                master_password: master.admin_password().map(str::to_owned),
            })
            .start();
        let sentinel = RedisSentinel {
            server,
            name: name.to_owned(),
        };
        let want = ("127.0.0.1".to_owned(), master.port());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match sentinel.master_addr(name) {
                Some(got) if got == want => return sentinel,
                got if Instant::now() > deadline => panic!(
                    "sentinel {} reports {got:?} for {name}, want {want:?}; log:\n{}",
                    sentinel.addr(),
                    sentinel.server.log_tail()
                ),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// The sentinel's port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `"127.0.0.1:PORT"` of the sentinel.
    pub fn addr(&self) -> String {
        self.server.addr()
    }

    /// The master name it monitors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// psor's sentinel URL: `redis+sentinel://127.0.0.1:PORT/NAME`.
    pub fn url(&self, name: &str) -> String {
        format!("redis+sentinel://{}/{name}", self.addr())
    }

    /// A plain connection to the sentinel itself (for SENTINEL commands).
    pub fn conn(&self) -> redis::Connection {
        self.server.admin_conn()
    }

    /// `SENTINEL get-master-addr-by-name NAME`, or `None` if unknown or unreachable.
    pub fn master_addr(&self, name: &str) -> Option<(String, u16)> {
        let mut conn = self
            .server
            .admin_client()
            .get_connection_with_timeout(Duration::from_secs(2))
            .ok()?;
        let reply: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(name)
            .query(&mut conn)
            .ok()?;
        reply
    }

    /// The sentinel's log tail.
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }
}
