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
    /// For a TLS master the sentinel serves TLS only, with the master's certificates
    /// ([`RedisServer::tls_files`] of the master), and reaches the master over TLS.
    ///
    /// # Panics
    /// If the sentinel does not start, or does not report the master within 10 s.
    pub fn start(master: &RedisServer, name: &str) -> RedisSentinel {
        Self::start_with(master, name, RedisServer::builder())
    }

    /// Like [`start`](Self::start), but the Sentinel itself asks for `password`
    /// (`requirepass`), or, with `acl_user` (name, password), has that ACL user allowed only
    /// what psor asks a Sentinel (`SENTINEL get-master-addr-by-name`, `SENTINEL masters`,
    /// `INFO`) and a default user with `password`. The harness's own connections
    /// ([`conn`](Self::conn), [`master_addr`](Self::master_addr)) use the default user.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_secured(
        master: &RedisServer,
        name: &str,
        password: &str,
        acl_user: Option<(&str, &str)>,
    ) -> RedisSentinel {
        let mut builder = RedisServer::builder().password(password);
        if let Some((user, pass)) = acl_user {
            builder = builder.acl_user(user, pass, &["sentinel|get-master-addr-by-name", "sentinel|masters", "info"]);
        }
        Self::start_with(master, name, builder)
    }

    fn start_with(master: &RedisServer, name: &str, builder: crate::server::RedisServerBuilder) -> RedisSentinel {
        // The sentinel runs the master's build (`valkey-server --sentinel` for Valkey).
        let mut builder = builder.server(master.kind()).kind(Kind::Sentinel {
            name: name.to_owned(),
            master_port: master.port(),
            master_password: master.admin_password().map(str::to_owned),
        });
        // A TLS master gets a TLS-only sentinel with the master's certificates.
        if let Some(t) = master.tls() {
            builder = builder.tls_shared(t.clone());
        }
        let server = builder.start();
        let sentinel = RedisSentinel { server, name: name.to_owned() };
        let want = ("127.0.0.1".to_owned(), master.port());
        let deadline = Instant::now() + Duration::from_secs(30);
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

    /// psor's sentinel URL: `redis+sentinel://127.0.0.1:PORT/NAME`, or
    /// `rediss+sentinel://...` when the master (and so the sentinel) serves TLS.
    pub fn url(&self, name: &str) -> String {
        let scheme = if self.server.is_tls() { "rediss+sentinel" } else { "redis+sentinel" };
        format!("{scheme}://{}/{name}", self.addr())
    }

    /// A connection to the sentinel itself (for SENTINEL commands); TLS for a TLS master.
    pub fn conn(&self) -> redis::Connection {
        self.server.admin_conn()
    }

    /// `SENTINEL get-master-addr-by-name NAME`, or `None` if unknown or unreachable.
    pub fn master_addr(&self, name: &str) -> Option<(String, u16)> {
        let mut conn = self.server.admin_client().get_connection_with_timeout(Duration::from_secs(2)).ok()?;
        let reply: Option<(String, u16)> =
            redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg(name).query(&mut conn).ok()?;
        reply
    }

    /// The sentinel's log tail.
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }
}
