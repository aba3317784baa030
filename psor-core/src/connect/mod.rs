//! Connecting to a PSOR: turning a parsed spec plus options (TLS files, passwords) into
//! connections, and the retry rule every command goes through.
//!
//! The engine never holds a single shared connection: each thread (a scanner, a writer)
//! opens its own [`NodeConn`], so round trips overlap and one slow reply blocks nobody else.

mod spec;

pub use spec::{Endpoint, HostPort, PsorSpec, Secret, ACCEPTED_FORMS};

use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::Duration;

use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use crate::error::{is_retryable, Error, Result};

/// How to connect, beyond what the spec says.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// A password from outside the spec (`PSOR_PASSWORD`, `REDISCLI_AUTH`, `--password-file`);
    /// it wins over one in the spec.
    pub password: Option<Secret>,
    /// A CA certificate (PEM) to trust instead of the system's roots.
    pub tls_ca: Option<PathBuf>,
    /// A client certificate (PEM), for servers that check clients.
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Accept any server certificate. For tests and emergencies only.
    pub tls_insecure: bool,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long to wait for a reply before the attempt counts as a (retryable) timeout.
    pub read_timeout: Duration,
    /// How many times a retryable failure is retried before the run stops.
    pub retries: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            password: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls_insecure: false,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            retries: 6,
        }
    }
}

/// The version a server reports in `INFO server`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct ServerVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl ServerVersion {
    fn parse(text: &str) -> Option<Self> {
        let mut it = text.trim().split('.').map(|p| p.parse::<u32>().ok());
        Some(ServerVersion { major: it.next()??, minor: it.next()??, patch: it.next().flatten().unwrap_or(0) })
    }
    /// True from Redis 7.0 on: `PEXPIRETIME` exists, so TTLs copy as absolute times.
    pub fn has_pexpiretime(&self) -> bool {
        self.major >= 7
    }
    /// True from Redis 6.2 on: `COPY` exists.
    pub fn has_copy(&self) -> bool {
        (self.major, self.minor) >= (6, 2)
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// One Redis server psor works on (a standalone server, or one master of a cluster), from
/// which any number of connections can be opened.
#[derive(Clone, Debug)]
pub struct Node {
    addr: Arc<str>,
    client: redis::Client,
    retries: u32,
    read_timeout: Duration,
    connect_timeout: Duration,
}

impl Node {
    /// `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Opens a new connection.
    pub fn connect(&self) -> Result<NodeConn> {
        let con = self.open()?;
        Ok(NodeConn { node: self.clone(), con })
    }

    fn open(&self) -> Result<redis::Connection> {
        let con = self
            .client
            .get_connection_with_timeout(self.connect_timeout)
            .map_err(|source| Error::Connect { addr: self.addr.to_string(), source })?;
        con.set_read_timeout(Some(self.read_timeout))
            .and_then(|_| con.set_write_timeout(Some(self.read_timeout)))
            .map_err(|source| Error::Connect { addr: self.addr.to_string(), source })?;
        Ok(con)
    }
}

/// A connection to one [`Node`] that reconnects and retries on transient failures.
pub struct NodeConn {
    node: Node,
    con: redis::Connection,
}

impl NodeConn {
    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        self.node.addr()
    }

    /// The raw connection, for commands that must not be retried blindly.
    pub fn raw(&mut self) -> &mut redis::Connection {
        &mut self.con
    }

    /// Runs `f`, retrying with backoff (and a fresh connection) while the failure is
    /// retryable ([`is_retryable`]). Use only for idempotent work. `op` and `key` name the
    /// step in the error if it still fails.
    pub fn retry<T>(
        &mut self,
        op: &'static str,
        key: Option<&[u8]>,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            match f(&mut self.con) {
                Ok(v) => return Ok(v),
                Err(e) if is_retryable(&e) && attempt < self.node.retries => {
                    attempt += 1;
                    std::thread::sleep(backoff(attempt));
                    if e.is_timeout() || e.is_connection_dropped() || e.is_io_error() {
                        // A fresh connection; if that fails too, the next attempt says so.
                        if let Ok(con) = self.node.open() {
                            self.con = con;
                        }
                    }
                }
                Err(source) => {
                    return Err(Error::Command {
                        addr: self.addr().to_string(),
                        op,
                        key: key.map(<[u8]>::to_vec),
                        source,
                    })
                }
            }
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(25u64 << attempt.min(7))
}

/// A connected PSOR: the spec, the server's version, and the nodes to work on.
#[derive(Clone, Debug)]
pub struct Psor {
    spec: PsorSpec,
    version: ServerVersion,
    masters: Vec<Node>,
}

impl Psor {
    /// Connects (and checks the connection with `INFO server`).
    pub fn connect(spec: &PsorSpec, opts: &ConnectOptions) -> Result<Psor> {
        install_crypto_provider();
        let hp = match &spec.endpoint {
            Endpoint::Standalone(hp) => hp.clone(),
            Endpoint::Cluster(_) | Endpoint::Sentinel { .. } | Endpoint::NodeList(_) => {
                return Err(Error::Refused(format!(
                    "`{}`: Redis Cluster and Sentinel are not supported by this build yet; \
                     connect to one server with redis://host:port",
                    spec.redacted()
                )))
            }
        };
        let node = build_node(spec, opts, &hp)?;
        let mut con = node.connect()?;
        // TLS handshakes complete on the first command, so its failure is a connect failure.
        let info: String = con
            .retry("INFO server", None, |c| redis::cmd("INFO").arg("server").query(c))
            .map_err(|e| match e {
                Error::Command { addr, source, .. } => Error::Connect { addr, source },
                other => other,
            })?;
        let version = info_field(&info, "redis_version")
            .and_then(ServerVersion::parse)
            .ok_or_else(|| Error::Protocol {
                addr: node.addr().to_string(),
                op: "INFO server",
                detail: "no redis_version".into(),
            })?;
        Ok(Psor { spec: spec.clone(), version, masters: vec![node] })
    }

    /// The spec this PSOR was reached through.
    pub fn spec(&self) -> &PsorSpec {
        &self.spec
    }

    /// The server's version (the lowest over all masters).
    pub fn version(&self) -> ServerVersion {
        self.version
    }

    /// The masters: the one server of a standalone PSOR.
    pub fn masters(&self) -> &[Node] {
        &self.masters
    }

    /// The number of keys over all masters (`DBSIZE`), for progress totals.
    pub fn dbsize(&self) -> Result<u64> {
        let mut total = 0;
        for node in &self.masters {
            let mut con = node.connect()?;
            total += con.retry("DBSIZE", None, |c| redis::cmd("DBSIZE").query::<u64>(c))?;
        }
        Ok(total)
    }

    /// True when `other` is the same server and database as `self` (so a copy can use `COPY`).
    pub fn same_keyspace(&self, other: &Psor) -> bool {
        self.spec.endpoint == other.spec.endpoint && self.spec.db == other.spec.db
    }
}

/// Reads one `field:value` line of an `INFO` reply.
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')).map(str::trim)
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn build_node(spec: &PsorSpec, opts: &ConnectOptions, hp: &HostPort) -> Result<Node> {
    let addr = if spec.tls {
        ConnectionAddr::TcpTls { host: hp.host.clone(), port: hp.port, insecure: opts.tls_insecure, tls_params: None }
    } else {
        ConnectionAddr::Tcp(hp.host.clone(), hp.port)
    };
    // No CLIENT SETINFO on connect: one round trip fewer, and one command fewer that an
    // operator's ACL user must be allowed.
    let mut redis_info = RedisConnectionInfo::default().set_db(spec.db).set_skip_set_lib_name();
    if let Some(user) = &spec.username {
        redis_info = redis_info.set_username(user);
    }
    if let Some(pass) = opts.password.as_ref().or(spec.password.as_ref()) {
        redis_info = redis_info.set_password(pass.expose());
    }
    let bad_config = |source| Error::Connect { addr: hp.to_string(), source };
    let info = addr.into_connection_info().map_err(bad_config)?.set_redis_settings(redis_info);
    let wants_files = opts.tls_ca.is_some() || opts.tls_cert.is_some() || opts.tls_key.is_some();
    let client = if spec.tls && wants_files {
        let read = |p: &PathBuf| std::fs::read(p).map_err(|source| Error::ReadFile { path: p.clone(), source });
        let client_tls = match (&opts.tls_cert, &opts.tls_key) {
            (Some(c), Some(k)) => Some(redis::ClientTlsConfig { client_cert: read(c)?, client_key: read(k)? }),
            (None, None) => None,
            _ => return Err(Error::Refused("--tls-cert and --tls-key go together".into())),
        };
        let root_cert = opts.tls_ca.as_ref().map(read).transpose()?;
        redis::Client::build_with_tls(info, redis::TlsCertificates { client_tls, root_cert }).map_err(bad_config)?
    } else if wants_files {
        return Err(Error::Refused(format!(
            "TLS files were given but `{}` is not a TLS spec (use rediss:// or redis_TLS,)",
            spec.redacted()
        )));
    } else {
        redis::Client::open(info).map_err(bad_config)?
    };
    Ok(Node {
        addr: hp.to_string().into(),
        client,
        retries: opts.retries,
        read_timeout: opts.read_timeout,
        connect_timeout: opts.connect_timeout,
    })
}
