//! Connecting to a PSOR: turning a parsed spec plus options (TLS files, passwords) into
//! connections, and the retry rule every command goes through.
//!
//! The engine never holds a single shared connection: each thread (a scanner, a writer)
//! opens its own [`NodeConn`], so round trips overlap and one slow reply blocks nobody else.

pub mod region_env;
mod replica;
mod server;
mod sor;
mod spec;
mod topology;

pub use region_env::{QueueModel, QueueType, RegionEnv, RegionEnvError, SorEntry};
pub use replica::{ReadChoice, ReadFrom, ReadNode, DEFAULT_REPLICA_WAIT};
pub use server::{describe_version, Product, ServerInfo};
pub use sor::connect_sor;
pub use spec::{Endpoint, HostPort, PsorSpec, Secret, ACCEPTED_FORMS};
pub use topology::{key_slot, SlotMap, SLOTS};

use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::Duration;

use psor_embedded::EmbeddedStore;
use redis::{ConnectionAddr, ConnectionLike, IntoConnectionInfo, RedisConnectionInfo};

use crate::error::{classify, Error, ErrorClass, Result};

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
    /// How long to wait for a connection to be usable: TCP connect, TLS handshake, AUTH and
    /// a first reply. Not retried: a server that does not answer fails the connect at once.
    pub connect_timeout: Duration,
    /// How long to wait for a reply before the attempt counts as a (retryable) timeout.
    pub read_timeout: Duration,
    /// How many times a retryable failure is retried before the run stops.
    pub retries: u32,
    /// The ACL user to authenticate to every Sentinel as (issue 14); with no user but a
    /// password, the Sentinel's `requirepass`.
    pub sentinel_username: Option<String>,
    /// The Sentinels' password (`--sentinel-password-file`, `PSOR_SENTINEL_PASSWORD`).
    pub sentinel_password: Option<Secret>,
    /// The master to ask for when a vendor node list (`redis,h1:p1,h2:p2`) turns out to be
    /// Sentinels: a SOR's name in `ES_SCALE_OUT_REPOS_n`. Without it the Sentinels must
    /// watch exactly one master.
    pub node_list_master: Option<String>,
}

/// The default [`ConnectOptions::connect_timeout`]: TCP connect, TLS handshake, AUTH and a
/// first reply, together.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default [`ConnectOptions::read_timeout`].
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            password: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls_insecure: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            retries: 6,
            sentinel_username: None,
            sentinel_password: None,
            node_list_master: None,
        }
    }
}

/// A version number as `INFO server` reports it (`redis_version`, `valkey_version`).
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
    /// Parses `7.0.15` (a missing patch is 0).
    pub fn parse(text: &str) -> Option<Self> {
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

/// Everything needed to open a connection to any server of a PSOR: credentials, TLS
/// material and timeouts. Shared by every node of a cluster and re-used after a failover.
#[derive(Clone, Debug)]
pub(crate) struct ConnTemplate {
    tls: bool,
    insecure: bool,
    certs: Option<redis::TlsCertificates>,
    redis: RedisConnectionInfo,
    connect_timeout: Duration,
    read_timeout: Duration,
    retries: u32,
    /// Credentials for Sentinels (none by default).
    sentinel: RedisConnectionInfo,
    node_list_master: Option<String>,
}

impl ConnTemplate {
    fn client(&self, hp: &HostPort, with_auth: bool) -> Result<redis::Client> {
        let addr = if self.tls {
            ConnectionAddr::TcpTls { host: hp.host.clone(), port: hp.port, insecure: self.insecure, tls_params: None }
        } else {
            ConnectionAddr::Tcp(hp.host.clone(), hp.port)
        };
        let bad = |source| Error::Connect { addr: hp.to_string(), source };
        // Without the data credentials: a Sentinel, with the Sentinel credentials (issue 14).
        let settings = if with_auth { self.redis.clone() } else { self.sentinel.clone() };
        let info = addr.into_connection_info().map_err(bad)?.set_redis_settings(settings);
        match &self.certs {
            Some(certs) => redis::Client::build_with_tls(info, certs.clone()).map_err(bad),
            None => redis::Client::open(info).map_err(bad),
        }
    }

    /// Opens a connection whose whole setup — TCP connect, TLS handshake, AUTH/SELECT and a
    /// first reply — is bounded by the connect timeout, and is not retried: a server that
    /// does not answer is reported after `connect_timeout`, not after `retries` read timeouts.
    fn open(&self, hp: &HostPort, with_auth: bool) -> Result<redis::Connection> {
        let no_answer = |what: &'static str| {
            let (what, hint) = if self.tls { ("the TLS handshake", " (is it a TLS port?)") } else { (what, "") };
            Error::NoAnswer { addr: hp.to_string(), what, waited: self.connect_timeout, hint }
        };
        // redis-rs sends nothing on connect when there is no AUTH or SELECT to send, and a TLS
        // handshake only happens on the first write.
        let sent_setup = with_auth && (self.redis.password().is_some() || self.redis.db() != 0);
        let bad = |source: redis::RedisError| {
            if source.is_timeout() {
                no_answer(if sent_setup { "the connection or its AUTH/SELECT" } else { "the connection" })
            } else {
                Error::Connect { addr: hp.to_string(), source }
            }
        };
        let client = self.client(hp, with_auth)?;
        let mut con = client.get_connection_with_timeout(self.connect_timeout).map_err(bad)?;
        // Nothing sent yet: ask for one reply now, within the connect timeout. Any reply
        // counts — an ACL user without +ping gets NOPERM, which is an answer.
        if !sent_setup {
            let limit = Some(self.connect_timeout);
            con.set_read_timeout(limit).and_then(|_| con.set_write_timeout(limit)).map_err(bad)?;
            match redis::cmd("PING").query::<redis::Value>(&mut con) {
                Ok(_) => {}
                Err(e) if e.is_timeout() => return Err(no_answer("a first command (PING)")),
                Err(e) if e.code().is_some() && !e.is_io_error() => {}
                Err(source) => return Err(Error::Connect { addr: hp.to_string(), source }),
            }
        }
        con.set_read_timeout(Some(self.read_timeout))
            .and_then(|_| con.set_write_timeout(Some(self.read_timeout)))
            .map_err(bad)?;
        Ok(con)
    }

    /// A connection to a data node, with the PSOR's credentials.
    pub(crate) fn connect(&self, hp: &HostPort) -> Result<redis::Connection> {
        self.open(hp, true)
    }

    /// A connection to a sentinel: same TLS, the Sentinel credentials (none unless given).
    pub(crate) fn connect_sentinel(&self, hp: &HostPort) -> Result<redis::Connection> {
        self.open(hp, false)
    }

    /// True when Sentinel credentials were given.
    pub(crate) fn has_sentinel_auth(&self) -> bool {
        self.sentinel.password().is_some() || self.sentinel.username().is_some()
    }

    /// The master to use when a node list turns out to be Sentinels, if one was given.
    pub(crate) fn node_list_master(&self) -> Option<&str> {
        self.node_list_master.as_deref()
    }
}

/// Opens an in-process connection (see [`Node::in_process`]).
pub type ConnectFn = Arc<dyn Fn() -> Box<dyn ConnectionLike + Send> + Send + Sync>;

/// Where a node is: a fixed address, whatever server Sentinel calls the master now, or a
/// store inside this process.
#[derive(Clone)]
enum AddrSource {
    Fixed(HostPort),
    Sentinel { sentinels: Vec<HostPort>, master: String },
    InProcess(ConnectFn),
}

impl std::fmt::Debug for AddrSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddrSource::Fixed(hp) => f.debug_tuple("Fixed").field(hp).finish(),
            AddrSource::Sentinel { sentinels, master } => {
                f.debug_struct("Sentinel").field("sentinels", sentinels).field("master", master).finish()
            }
            AddrSource::InProcess(_) => f.write_str("InProcess"),
        }
    }
}

/// One Redis server psor works on (a standalone server, one master of a cluster, or the
/// master behind Sentinel), from which any number of connections can be opened.
#[derive(Clone, Debug)]
pub struct Node {
    label: Arc<str>,
    source: AddrSource,
    template: Arc<ConnTemplate>,
    /// A cluster replica read from: every connection sends `READONLY` first, so it serves
    /// reads of its slots instead of redirecting them to its master.
    readonly: bool,
}

impl Node {
    /// `host:port` (for a Sentinel master: its name and the address it had when psor connected).
    pub fn addr(&self) -> &str {
        &self.label
    }

    /// The fixed address of this node, if it has one (not behind Sentinel).
    pub fn host_port(&self) -> Option<&HostPort> {
        match &self.source {
            AddrSource::Fixed(hp) => Some(hp),
            AddrSource::Sentinel { .. } | AddrSource::InProcess(_) => None,
        }
    }

    /// A node whose connections are made in this process by `connect` (the embedded store),
    /// shown as `label`. Retries and the rest of the connection rules are the usual ones.
    pub fn in_process(label: &str, connect: ConnectFn) -> Node {
        let template =
            build_template(&PsorSpec::parse("redis://embedded").expect("a valid spec"), &ConnectOptions::default())
                .expect("a template without TLS files");
        Node {
            label: label.into(),
            source: AddrSource::InProcess(connect),
            template: Arc::new(template),
            readonly: false,
        }
    }

    pub(crate) fn fixed(hp: HostPort, template: Arc<ConnTemplate>) -> Node {
        Node { label: hp.to_string().into(), source: AddrSource::Fixed(hp), template, readonly: false }
    }

    /// Opens a new connection.
    pub fn connect(&self) -> Result<NodeConn> {
        let (addr, con) = self.open()?;
        let mut nc = NodeConn { node: self.clone(), addr, con, run_id: String::new(), restarts: 0 };
        nc.run_id = nc.current_run_id().unwrap_or_default();
        Ok(nc)
    }

    fn open(&self) -> Result<(String, Box<dyn ConnectionLike + Send>)> {
        let hp = match &self.source {
            AddrSource::InProcess(connect) => return Ok((self.label.to_string(), connect())),
            AddrSource::Fixed(hp) => hp.clone(),
            // Asked again at every (re)connect, so a failover is followed.
            AddrSource::Sentinel { sentinels, master } => {
                topology::resolve_sentinel(sentinels, master, &self.template)?
            }
        };
        let mut con = self.template.connect(&hp)?;
        if self.readonly {
            redis::cmd("READONLY").query::<()>(&mut con).map_err(|source| Error::Command {
                addr: hp.to_string(),
                op: "READONLY",
                key: None,
                source,
            })?;
        }
        Ok((hp.to_string(), Box::new(con)))
    }
}

/// A connection to one [`Node`] that reconnects and retries on transient failures.
pub struct NodeConn {
    node: Node,
    addr: String,
    con: Box<dyn ConnectionLike + Send>,
    run_id: String,
    restarts: u64,
}

impl NodeConn {
    /// `host:port` of the server this connection reaches.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The raw connection, for commands that must not be retried blindly. A TCP connection
    /// to Redis, or any other `ConnectionLike` a [`Node`] was built with.
    pub fn raw(&mut self) -> &mut dyn ConnectionLike {
        &mut *self.con
    }

    /// How many times the server behind this connection was found restarted (or replaced by
    /// a failover) on reconnecting. A SCAN cursor from before a restart means nothing after
    /// it, so scanners compare this before and after each page.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    fn current_run_id(&mut self) -> Option<String> {
        let info: String = redis::cmd("INFO").arg("server").query(&mut *self.con).ok()?;
        info_field(&info, "run_id").map(str::to_string)
    }

    /// The server's identity: its address and `run_id`. A different identity at the end of
    /// a run than at its start means a failover or restart happened in between.
    pub fn identity(&mut self) -> Result<(String, String)> {
        let info: String = self.retry("INFO server", None, |c| redis::cmd("INFO").arg("server").query(c))?;
        Ok((self.addr.clone(), info_field(&info, "run_id").unwrap_or_default().to_string()))
    }

    /// Drops the connection and opens a new one (for Sentinel: to whichever server is the
    /// master now).
    pub(crate) fn reconnect(&mut self) -> Result<()> {
        let (addr, con) = self.node.open()?;
        self.addr = addr;
        self.con = con;
        let run_id = self.current_run_id().unwrap_or_default();
        if run_id != self.run_id {
            self.restarts += 1;
            self.run_id = run_id;
        }
        Ok(())
    }

    /// Runs `f`, retrying with backoff (and a fresh connection) while the failure is
    /// transient ([`crate::error::classify`]). `op` and `key` name the step in the error if it still
    /// fails. Work that is not idempotent must tolerate a retry of work that already took
    /// effect (psor's writers do: see `engine::compare`).
    pub fn retry<T>(
        &mut self,
        op: &'static str,
        key: Option<&[u8]>,
        mut f: impl FnMut(&mut dyn ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            match f(&mut *self.con) {
                Ok(v) => return Ok(v),
                Err(e) if classify(&e).is_transient() && attempt < self.node.template.retries => {
                    attempt += 1;
                    std::thread::sleep(backoff(attempt));
                    if classify(&e) == ErrorClass::Retry || e.code() == Some("READONLY") {
                        // A fresh connection (for Sentinel: to the master now); if that fails
                        // too, the next attempt says so.
                        let _ = self.reconnect();
                    }
                }
                Err(source) => {
                    return Err(Error::Command { addr: self.addr.clone(), op, key: key.map(<[u8]>::to_vec), source })
                }
            }
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(25u64 << attempt.min(7))
}

/// How the PSOR is deployed.
#[derive(Clone, Debug)]
pub enum Topology {
    /// One server (possibly behind Sentinel).
    Single,
    /// A Redis Cluster: which master serves which slot, as discovered when connecting.
    Cluster(SlotMap),
}

/// A connected PSOR: the spec, the server's product and version, and the nodes to work on.
#[derive(Clone, Debug)]
pub struct Psor {
    spec: PsorSpec,
    server: ServerInfo,
    masters: Vec<Node>,
    topology: Topology,
    seeds: Vec<HostPort>,
    template: Arc<ConnTemplate>,
    embedded: Option<Arc<EmbeddedStore>>,
    /// Each master's `run_id`, as it answered on connecting, and on a cluster each master's
    /// `node:ID` (sorted): who the servers are, whatever spelling reached them.
    identities: Vec<String>,
}

impl Psor {
    /// Connects: discovers a cluster's masters or asks Sentinel for the master, then checks
    /// every master with `INFO server`.
    pub fn connect(spec: &PsorSpec, opts: &ConnectOptions) -> Result<Psor> {
        install_crypto_provider();
        let template = Arc::new(build_template(spec, opts)?);
        let mut embedded = None;
        let (masters, topology, seeds) = match &spec.endpoint {
            Endpoint::Standalone(hp) => {
                (vec![Node::fixed(hp.clone(), template.clone())], Topology::Single, vec![hp.clone()])
            }
            Endpoint::Sentinel { sentinels, master } => {
                (vec![sentinel_node(sentinels, master, &template)?], Topology::Single, sentinels.clone())
            }
            Endpoint::Cluster(seeds) => cluster_nodes(seeds, &template)?,
            Endpoint::File(path) => {
                let store = psor_embedded::open(path)?;
                let node = Node {
                    label: store.label().into(),
                    source: AddrSource::InProcess(store_connector(&store)),
                    template: template.clone(),
                    readonly: false,
                };
                embedded = Some(store);
                (vec![node], Topology::Single, Vec::new())
            }
            Endpoint::NodeList(nodes) => match topology::classify_node_list(nodes, &template)? {
                topology::NodeListKind::Cluster => cluster_nodes(nodes, &template)?,
                topology::NodeListKind::Sentinel(master) => {
                    (vec![sentinel_node(nodes, &master, &template)?], Topology::Single, nodes.clone())
                }
            },
        };
        let mut server: Option<ServerInfo> = None;
        let mut identities = Vec::new();
        for node in &masters {
            let mut con = node.connect()?;
            // TLS handshakes complete on the first command, so its failure is a connect failure.
            let info: String =
                con.retry("INFO server", None, |c| redis::cmd("INFO").arg("server").query(c)).map_err(|e| match e {
                    Error::Command { addr, source, .. } => Error::Connect { addr, source },
                    other => other,
                })?;
            let mut s = ServerInfo::from_info(&info).ok_or_else(|| Error::Protocol {
                addr: con.addr().to_string(),
                op: "INFO server",
                detail: "no redis_version".into(),
            })?;
            if let Some(id) = info_field(&info, "run_id").filter(|id| !id.is_empty()) {
                identities.push(id.to_string());
            }
            if embedded.is_some() {
                s = ServerInfo::embedded(s.redis_version, psor_embedded::rdb::MAX_RDB_VERSION);
            }
            // Nodes of one cluster mostly run one build; where they do not, the one that
            // reads the least decides.
            let weakest = |x: &ServerInfo| (x.max_rdb_version().unwrap_or(u16::MAX), x.redis_version, x.version);
            server = Some(match server {
                Some(old) if weakest(&old) <= weakest(&s) => old,
                _ => s,
            });
        }
        let server = server.ok_or_else(|| Error::Refused(format!("`{}` has no master", spec.redacted())))?;
        // A cluster's masters are also known by their node ids (kept across restarts).
        if let Topology::Cluster(map) = &topology {
            identities.extend(map.node_ids.iter().map(|id| format!("node:{id}")));
        }
        identities.sort();
        identities.dedup();
        Ok(Psor { spec: spec.clone(), server, masters, topology, seeds, template, embedded, identities })
    }

    /// Makes the work done so far durable: for a `file:` PSOR, saves the embedded store if
    /// it changed (atomically); for a server, nothing to do. Commands that write call it at
    /// their end.
    pub fn flush(&self) -> Result<()> {
        match &self.embedded {
            Some(store) => Ok(store.save()?),
            None => Ok(()),
        }
    }

    /// The spec this PSOR was reached through.
    pub fn spec(&self) -> &PsorSpec {
        &self.spec
    }

    /// The Redis version the server is compatible with (`redis_version`; the lowest over all
    /// masters): what decides which commands exist. For reports and payload decisions use
    /// [`Psor::server`], which tells Valkey 9.1.2 from Redis 7.2.4.
    // The compatibility version on purpose: `version()` decided command availability before
    // psor knew Valkey, and still does; the product's own version is `server().version`.
    #[allow(clippy::misnamed_getters)]
    pub fn version(&self) -> ServerVersion {
        self.server.redis_version
    }

    /// The server's product, own version and the payload versions it reads (the weakest
    /// master's, on a cluster).
    pub fn server(&self) -> ServerInfo {
        self.server
    }

    /// The masters: the one server of a standalone PSOR, every master of a cluster.
    pub fn masters(&self) -> &[Node] {
        &self.masters
    }

    /// Standalone or cluster, and a cluster's slot map as discovered.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// True for a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.topology, Topology::Cluster(_))
    }

    /// Asks the cluster again which master serves which slot (after a failover or a slot
    /// migration). For a single server, `None`.
    pub fn rediscover(&self) -> Result<Option<SlotMap>> {
        if !self.is_cluster() {
            return Ok(None);
        }
        // Known masters first (they are the freshest), then the seeds.
        let mut candidates: Vec<HostPort> = match &self.topology {
            Topology::Cluster(map) => map.masters.clone(),
            Topology::Single => Vec::new(),
        };
        candidates.extend(self.seeds.iter().cloned());
        topology::discover_cluster(&candidates, &self.template).map(Some)
    }

    /// A node for `hp`, sharing this PSOR's credentials and TLS settings.
    pub fn node_at(&self, hp: &HostPort) -> Node {
        Node::fixed(hp.clone(), self.template.clone())
    }

    /// Where each master's reads go under `mode` (in the order of [`Psor::masters`]): the
    /// master itself, or a replica that has caught up, within `wait`, with the master's
    /// replication offset as it is now. See the `replica` module for the rules; with
    /// [`ReadFrom::ReplicaOnly`] a master without a usable replica is an error.
    pub fn read_nodes(&self, mode: ReadFrom, wait: Duration) -> Result<Vec<ReadNode>> {
        if self.embedded.is_some() && mode != ReadFrom::Master {
            let master = self.masters[0].addr().to_string();
            if mode == ReadFrom::ReplicaOnly {
                return Err(Error::ReplicaUnavailable { master, reason: "an embedded store has no replicas".into() });
            }
            let fallback = Some("an embedded store has no replicas".to_string());
            let choice = ReadChoice { read_node: master.clone(), master, fallback };
            return Ok(vec![ReadNode { master: self.masters[0].clone(), replica: None, choice: Some(choice) }]);
        }
        replica::choose(&self.masters, self.is_cluster(), mode, wait, |hp, readonly| {
            let mut node = self.node_at(hp);
            node.readonly = readonly;
            node
        })
    }

    /// The number of keys over all masters (`DBSIZE`), for progress totals.
    pub fn dbsize(&self) -> Result<u64> {
        Ok(self.dbsize_per_master()?.iter().map(|(_, n)| n).sum())
    }

    /// Each master's `host:port` and `DBSIZE`, in the order of [`Psor::masters`].
    pub fn dbsize_per_master(&self) -> Result<Vec<(String, u64)>> {
        self.masters
            .iter()
            .map(|node| {
                let mut con = node.connect()?;
                Ok((node.addr().to_string(), con.retry("DBSIZE", None, |c| redis::cmd("DBSIZE").query::<u64>(c))?))
            })
            .collect()
    }

    /// True when `other` reaches a server of `self` (the same `run_id` or cluster node id on
    /// some master: one server, whichever spelling — `localhost`, an IP, another seed of the
    /// cluster — reached it) and the same database. An embedded store has one `run_id` per
    /// file, whatever its path's spelling. Only when a server reported no `run_id` are the
    /// specs compared.
    pub fn same_keyspace(&self, other: &Psor) -> bool {
        if self.spec.db != other.spec.db {
            return false;
        }
        if self.identities.is_empty() || other.identities.is_empty() {
            return self.spec.endpoint == other.spec.endpoint;
        }
        self.identities.iter().any(|id| other.identities.binary_search(id).is_ok())
    }

    /// The file of the embedded store behind a `file:` PSOR (`None` for a server).
    pub fn store_path(&self) -> Option<PathBuf> {
        self.embedded.as_ref().and_then(|s| s.path())
    }
}

fn store_connector(store: &Arc<EmbeddedStore>) -> ConnectFn {
    let store = store.clone();
    Arc::new(move || Box::new(store.connect()) as Box<dyn ConnectionLike + Send>)
}

fn sentinel_node(sentinels: &[HostPort], master: &str, template: &Arc<ConnTemplate>) -> Result<Node> {
    let hp = topology::resolve_sentinel(sentinels, master, template)?;
    Ok(Node {
        label: format!("{hp} ({master})").into(),
        source: AddrSource::Sentinel { sentinels: sentinels.to_vec(), master: master.to_string() },
        template: template.clone(),
        readonly: false,
    })
}

fn cluster_nodes(seeds: &[HostPort], template: &Arc<ConnTemplate>) -> Result<(Vec<Node>, Topology, Vec<HostPort>)> {
    let map = topology::discover_cluster(seeds, template)?;
    let masters = map.masters.iter().map(|hp| Node::fixed(hp.clone(), template.clone())).collect();
    Ok((masters, Topology::Cluster(map), seeds.to_vec()))
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

fn build_template(spec: &PsorSpec, opts: &ConnectOptions) -> Result<ConnTemplate> {
    // No CLIENT SETINFO on connect: one round trip fewer, and one command fewer that an
    // operator's ACL user must be allowed.
    let mut redis_info = RedisConnectionInfo::default().set_db(spec.db).set_skip_set_lib_name();
    if let Some(user) = &spec.username {
        redis_info = redis_info.set_username(user);
    }
    match opts.password.as_ref().or(spec.password.as_ref()) {
        Some(pass) => redis_info = redis_info.set_password(pass.expose()),
        // redis-rs sends no AUTH without a password, which would leave the connection
        // `default`'s while psor shows the user's name. `AUTH user ""` authenticates a
        // `nopass` user (any password works) and fails for one that needs a password.
        None if spec.username.is_some() => redis_info = redis_info.set_password(""),
        None => {}
    }
    let wants_files = opts.tls_ca.is_some() || opts.tls_cert.is_some() || opts.tls_key.is_some();
    let certs = if spec.tls && wants_files {
        let read = |p: &PathBuf| std::fs::read(p).map_err(|source| Error::ReadFile { path: p.clone(), source });
        let client_tls = match (&opts.tls_cert, &opts.tls_key) {
            (Some(c), Some(k)) => Some(redis::ClientTlsConfig { client_cert: read(c)?, client_key: read(k)? }),
            (None, None) => None,
            _ => return Err(Error::Refused("--tls-cert and --tls-key go together".into())),
        };
        let root_cert = opts.tls_ca.as_ref().map(read).transpose()?;
        Some(redis::TlsCertificates { client_tls, root_cert })
    } else if wants_files {
        return Err(Error::Refused(format!(
            "TLS files were given but `{}` is not a TLS spec (use rediss:// or redis_TLS,)",
            spec.redacted()
        )));
    } else {
        None
    };
    Ok(ConnTemplate {
        tls: spec.tls,
        insecure: opts.tls_insecure,
        certs,
        redis: redis_info,
        connect_timeout: opts.connect_timeout,
        read_timeout: opts.read_timeout,
        retries: opts.retries,
        sentinel: sentinel_settings(opts),
        node_list_master: opts.node_list_master.clone(),
    })
}

/// What a Sentinel connection authenticates with: `--sentinel-user` and the Sentinel
/// password, or nothing (Sentinels usually take no password). Never the data password.
fn sentinel_settings(opts: &ConnectOptions) -> RedisConnectionInfo {
    let mut info = RedisConnectionInfo::default().set_skip_set_lib_name();
    if let Some(user) = &opts.sentinel_username {
        info = info.set_username(user);
    }
    if let Some(pass) = &opts.sentinel_password {
        info = info.set_password(pass.expose());
    }
    info
}
