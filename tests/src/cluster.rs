//! A real Redis Cluster of loopback `redis-server` nodes.
//!
//! psor discovers masters, scans each one, follows MOVED/ASK and survives failovers; none
//! of that can be believed without a real cluster. `RedisCluster` starts the nodes (each a
//! [`RedisServer`] with its bus port reserved), joins them with `redis-cli --cluster
//! create`, and waits until every node agrees that all slots are served. Debian's `redis-cli`
//! creates the cluster whatever the nodes' kind: the cluster protocol it speaks is the same
//! from Redis 6.2 to Valkey 9.1, and not every fetched build ships a cli.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterConnection};
use tempfile::TempDir;

use crate::keyspace::{keyspace_digest, KeyState};
use crate::server::{info_field, quote, redis_cli_bin, RedisServer, ServerKind};
use crate::tls::{install_crypto_provider, TlsFiles};

/// How long cluster creation, failover and similar waits may take.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// A running cluster; all nodes are stopped when it drops.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    replicas_per_master: usize,
    tls: Option<TlsFiles>,
    // After `nodes`, so every node has stopped before the certificates go.
    _tls_dir: Option<TempDir>,
}

impl RedisCluster {
    /// Starts `masters` masters with `replicas_per_master` replicas each, and waits until
    /// `cluster_state:ok` on every node, every slot is covered, and every replica's link to
    /// its master is up.
    ///
    /// # Panics
    /// If `masters < 3` (redis-cli refuses smaller clusters), or the cluster does not form
    /// within [`CLUSTER_TIMEOUT`].
    pub fn start(masters: usize, replicas_per_master: usize) -> RedisCluster {
        Self::start_with(ServerKind::from_env(), masters, replicas_per_master, false)
    }

    /// Like [`start`](Self::start), with nodes of `kind` instead of the default kind.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_on(kind: ServerKind, masters: usize, replicas_per_master: usize) -> RedisCluster {
        Self::start_with(kind, masters, replicas_per_master, false)
    }

    /// Like [`start`](Self::start), but every node serves TLS only (`port 0`, `tls-port`),
    /// and the cluster bus and replication run over TLS too (`tls-cluster yes`,
    /// `tls-replication yes`). All nodes share one generated CA, server certificate and
    /// client certificate ([`tls_files`](Self::tls_files)); nodes present the client
    /// certificate when they connect to each other.
    ///
    /// # Panics
    /// As [`start`](Self::start), and when the default kind has no TLS
    /// ([`ServerKind::has_tls`]).
    pub fn start_tls(masters: usize, replicas_per_master: usize) -> RedisCluster {
        Self::start_with(ServerKind::from_env(), masters, replicas_per_master, true)
    }

    fn start_with(kind: ServerKind, masters: usize, replicas_per_master: usize, tls: bool) -> RedisCluster {
        assert!(masters >= 3, "redis-cli --cluster create needs at least 3 masters");
        let tls_dir = tls.then(|| {
            tempfile::Builder::new()
                .prefix("psor-cluster-tls-")
                .tempdir()
                .expect("create temp dir for cluster certificates")
        });
        let tls_files = tls_dir.as_ref().map(|d| TlsFiles::generate(d.path()));
        let total = masters * (1 + replicas_per_master);
        let nodes: Vec<RedisServer> = (0..total)
            .map(|_| {
                let mut b = RedisServer::builder()
                    .server(kind)
                    .cluster_bus()
                    .config("cluster-enabled", "yes")
                    .config("cluster-config-file", "nodes.conf")
                    .config("cluster-node-timeout", "2000")
                    // Let a replica take over quickly in failover tests.
                    .config("cluster-replica-validity-factor", "0");
                if let Some(t) = &tls_files {
                    // The bus port is tls-port + 10000, which cluster_bus() reserved.
                    b = b
                        .tls_shared(t.clone())
                        .config("tls-cluster", "yes")
                        .config("tls-replication", "yes")
                        // The server certificate is for servers only (EKU serverAuth);
                        // node-to-node connections present the client certificate.
                        .config("tls-client-cert-file", &quote(&t.client_cert.display().to_string()))
                        .config("tls-client-key-file", &quote(&t.client_key.display().to_string()));
                }
                b.start()
            })
            .collect();
        let cluster = RedisCluster { nodes, replicas_per_master, tls: tls_files, _tls_dir: tls_dir };
        let out = Command::new(redis_cli_bin())
            .args(cluster.redis_cli_tls_args())
            .arg("--cluster")
            .arg("create")
            .args(cluster.seeds())
            .arg("--cluster-replicas")
            .arg(replicas_per_master.to_string())
            .arg("--cluster-yes")
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_healthy(masters);
        cluster
    }

    /// `--tls --cacert CA --cert CERT --key KEY` for redis-cli on a TLS cluster; empty
    /// otherwise.
    pub fn redis_cli_tls_args(&self) -> Vec<std::ffi::OsString> {
        match &self.tls {
            Some(t) => vec![
                "--tls".into(),
                "--cacert".into(),
                t.ca_cert.clone().into(),
                "--cert".into(),
                t.client_cert.clone().into(),
                "--key".into(),
                t.client_key.clone().into(),
            ],
            None => Vec::new(),
        }
    }

    /// Whether the nodes serve TLS only ([`start_tls`](Self::start_tls)).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The CA certificate, client certificate and client key (PEM) shared by every node of
    /// a TLS cluster, as [`RedisServer::tls_files`] gives them for one server.
    ///
    /// # Panics
    /// If the cluster was not started with [`start_tls`](Self::start_tls).
    pub fn tls_files(&self) -> (PathBuf, PathBuf, PathBuf) {
        let t = self.tls.as_ref().expect("tls_files() on a cluster without TLS");
        (t.ca_cert.clone(), t.client_cert.clone(), t.client_key.clone())
    }

    /// Waits until every node says `cluster_state:ok` with all slots ok and knows every
    /// node, and there are `masters` masters each with its replicas' links up.
    fn wait_healthy(&self, masters: usize) {
        let total = self.nodes.len();
        self.wait_until("cluster to become healthy", || {
            for node in &self.nodes {
                let info = cluster_info(node)?;
                let ok = info_field(&info, "cluster_state").as_deref() == Some("ok")
                    && info_field(&info, "cluster_slots_ok").as_deref() == Some("16384")
                    && info_field(&info, "cluster_known_nodes") == Some(total.to_string());
                if !ok {
                    return Err(format!("{}: {}", node.addr(), info.replace("\r\n", " ")));
                }
            }
            let n_masters = self.masters().len();
            if n_masters != masters {
                return Err(format!("{n_masters} masters, want {masters}"));
            }
            let replicas = self.replicas();
            if replicas.len() != masters * self.replicas_per_master {
                return Err(format!("{} replicas attached", replicas.len()));
            }
            // Every node must also see every other in its role: a node still gossiped as a
            // master elsewhere is refused votes in a failover (Redis 6.2 converges slower).
            for node in &self.nodes {
                let nodes: String = query(node, redis::cmd("CLUSTER").arg("NODES"))?;
                let flags = |want: &str| {
                    nodes
                        .lines()
                        .filter(|l| l.split(' ').nth(2).is_some_and(|f| f.split(',').any(|x| x == want)))
                        .count()
                };
                if flags("master") != masters || flags("slave") != replicas.len() {
                    return Err(format!("{} does not see every node's role yet", node.addr()));
                }
            }
            for replica in replicas {
                let info: String = query(replica, redis::cmd("INFO").arg("replication"))?;
                if info_field(&info, "master_link_status").as_deref() != Some("up") {
                    return Err(format!("replica {} link not up", replica.addr()));
                }
            }
            Ok(())
        });
    }

    fn wait_until(&self, what: &str, mut check: impl FnMut() -> Result<(), String>) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        loop {
            match check() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!("timed out waiting for {what}: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The number of replicas each master was started with.
    pub fn replicas_per_master(&self) -> usize {
        self.replicas_per_master
    }

    /// Every node, masters and replicas, in start order.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Mutable access to every node, e.g. to [`RedisServer::stop`] or
    /// [`RedisServer::restart`] one in a fault test.
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// `"127.0.0.1:PORT"` of every node.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::addr).collect()
    }

    /// psor's cluster URL: `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...`, or
    /// `rediss+cluster://...` for a TLS cluster (whose CA is in
    /// [`tls_files`](Self::tls_files)).
    pub fn url(&self) -> String {
        let scheme = if self.is_tls() { "rediss+cluster" } else { "redis+cluster" };
        format!("{scheme}://{}", self.seeds().join(","))
    }

    /// The nodes that are masters right now (asked with ROLE; a node that does not answer
    /// is left out).
    pub fn masters(&self) -> Vec<&RedisServer> {
        self.nodes.iter().filter(|n| role(n).as_deref() == Some("master")).collect()
    }

    /// The nodes that are replicas right now.
    pub fn replicas(&self) -> Vec<&RedisServer> {
        self.nodes.iter().filter(|n| role(n).as_deref() == Some("slave")).collect()
    }

    /// A cluster client seeded with every node, for test setup; for a TLS cluster it trusts
    /// the cluster's CA and presents the client certificate.
    pub fn cluster_client(&self) -> ClusterClient {
        let builder = ClusterClient::builder(self.nodes.iter().map(|n| n.url()));
        let builder = match &self.tls {
            Some(t) => {
                install_crypto_provider();
                builder.certs(t.redis_certificates())
            }
            None => builder,
        };
        builder.build().expect("cluster client")
    }

    /// A connection from [`cluster_client`](Self::cluster_client).
    pub fn cluster_conn(&self) -> ClusterConnection {
        self.cluster_client().get_connection().expect("cluster connection")
    }

    /// The node id (`CLUSTER MYID`) of `node`.
    pub fn node_id(node: &RedisServer) -> String {
        query(node, redis::cmd("CLUSTER").arg("MYID")).expect("CLUSTER MYID")
    }

    /// The master serving `slot`, according to the first node that answers CLUSTER SLOTS.
    ///
    /// # Panics
    /// If no node answers or the slot is not served.
    pub fn node_for_slot(&self, slot: u16) -> &RedisServer {
        let port = self
            .nodes
            .iter()
            .find_map(|node| Self::owner_seen_by(node, slot))
            .unwrap_or_else(|| panic!("no cluster node answered CLUSTER SLOTS"));
        let port = port.unwrap_or_else(|| panic!("slot {slot} is not served"));
        self.nodes.iter().find(|n| n.port() == port).unwrap_or_else(|| panic!("slot {slot} served by unknown port {port}"))
    }

    /// The port of the master that `node` says serves `slot` (`CLUSTER SLOTS`): `None` if
    /// `node` does not answer, `Some(None)` if it knows no owner for the slot.
    fn owner_seen_by(node: &RedisServer, slot: u16) -> Option<Option<u16>> {
        // Each range is [start, end, master, replica...]: a fixed-size tuple would not
        // parse once the masters have replicas.
        let ranges = query::<Vec<Vec<redis::Value>>>(node, redis::cmd("CLUSTER").arg("SLOTS")).ok()?;
        for range in ranges {
            let int = |v: Option<&redis::Value>| match v {
                Some(redis::Value::Int(n)) => *n,
                other => panic!("CLUSTER SLOTS range entry {other:?}"),
            };
            let (start, end) = (int(range.first()) as u16, int(range.get(1)) as u16);
            let master = match range.get(2) {
                Some(redis::Value::Array(m)) => m,
                other => panic!("CLUSTER SLOTS master entry {other:?}"),
            };
            if (start..=end).contains(&slot) {
                return Some(Some(int(master.get(1)) as u16));
            }
        }
        Some(None)
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`, asked of any live node).
    pub fn slot_of(&self, key: &[u8]) -> u16 {
        self.nodes
            .iter()
            .find_map(|n| query(n, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)).ok())
            .expect("no node answered CLUSTER KEYSLOT")
    }

    /// Runs `CLUSTER FAILOVER` on `replica` and waits until it is a master, its old
    /// master has become its replica, and every reachable node reports `cluster_state:ok`.
    ///
    /// # Panics
    /// If `replica` is not a replica or the failover does not finish in time.
    pub fn failover(&self, replica: &RedisServer) {
        let info: String = query(replica, redis::cmd("INFO").arg("replication")).expect("INFO replication");
        assert_eq!(
            info_field(&info, "role").as_deref(),
            Some("slave"),
            "failover() on {} which is not a replica",
            replica.addr()
        );
        let old_master_port = info_field(&info, "master_port").expect("master_port");
        let _: String = query(replica, redis::cmd("CLUSTER").arg("FAILOVER")).expect("CLUSTER FAILOVER");
        self.wait_until("failover", || {
            if role(replica).as_deref() != Some("master") {
                return Err(format!("{} not master yet", replica.addr()));
            }
            let old =
                self.nodes.iter().find(|n| n.port().to_string() == old_master_port).expect("old master among nodes");
            if role(old).as_deref() != Some("slave") {
                return Err(format!("old master {} not a replica yet", old.addr()));
            }
            for node in &self.nodes {
                if let Ok(info) = cluster_info(node) {
                    if info_field(&info, "cluster_state").as_deref() != Some("ok") {
                        return Err(format!("{} cluster_state not ok", node.addr()));
                    }
                }
            }
            Ok(())
        });
    }

    /// Moves `slot` and its keys from master `from` to master `to`: SETSLOT IMPORTING on
    /// `to`, MIGRATING on `from`, MIGRATE the keys in batches, then SETSLOT NODE on every
    /// master. Best effort; meant for tests of MOVED/ASK handling.
    ///
    /// # Panics
    /// On any Redis error.
    pub fn migrate_slot(&self, slot: u16, from: &RedisServer, to: &RedisServer) {
        let from_id = Self::node_id(from);
        let to_id = Self::node_id(to);
        let setslot = |node: &RedisServer, args: &[&str]| {
            let _: String = query(node, redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg(args))
                .unwrap_or_else(|e| panic!("CLUSTER SETSLOT {slot} {args:?} on {}: {e}", node.addr()));
        };
        setslot(to, &["IMPORTING", &from_id]);
        setslot(from, &["MIGRATING", &to_id]);
        loop {
            let keys: Vec<Vec<u8>> = query(from, redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(100))
                .expect("CLUSTER GETKEYSINSLOT");
            if keys.is_empty() {
                break;
            }
            // MIGRATE carries the remaining TTL, so each expiry can land a millisecond
            // later than it was; read the exact ones first (Redis 7.0+) and put them back.
            let mut read = redis::pipe();
            for key in &keys {
                read.cmd("PEXPIRETIME").arg(key);
            }
            let expiries: Vec<i64> = read.query(&mut from.admin_conn()).unwrap_or_default();
            let mut m = redis::cmd("MIGRATE");
            m.arg("127.0.0.1").arg(to.port()).arg("").arg(0).arg(5000);
            if let Some(pw) = to.admin_password() {
                m.arg("AUTH").arg(pw);
            }
            m.arg("KEYS").arg(&keys);
            let _: String = query(from, &m).expect("MIGRATE");
            let timed: Vec<_> = keys.iter().zip(&expiries).filter(|(_, at)| **at >= 0).collect();
            if !timed.is_empty() {
                let mut exact = redis::pipe();
                for (key, at) in timed {
                    // The slot is still importing on `to`: each command there needs ASKING.
                    exact.cmd("ASKING").ignore().cmd("PEXPIREAT").arg(key).arg(*at).ignore();
                }
                let () = exact.query(&mut to.admin_conn()).expect("PEXPIREAT after MIGRATE");
            }
        }
        setslot(to, &["NODE", &to_id]);
        setslot(from, &["NODE", &to_id]);
        for node in self.masters() {
            if node.port() != to.port() && node.port() != from.port() {
                setslot(node, &["NODE", &to_id]);
            }
        }
        // A bus message `from` sent before its SETSLOT can still reach a third master
        // after that master's SETSLOT and, while it has not yet heard `to`'s bumped
        // config epoch, hand the slot back to `from`. Wait until every node agrees, and
        // tell again any master that went back.
        self.wait_until("the slot migration to agree on every node", || {
            for node in &self.nodes {
                match Self::owner_seen_by(node, slot) {
                    Some(Some(port)) if port == to.port() => {}
                    None => {}
                    seen => {
                        if self.masters().iter().any(|m| m.port() == node.port()) {
                            let _ = query::<String>(node, redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("NODE").arg(&to_id));
                        }
                        return Err(format!("{} sees slot {slot} on {seen:?}, not {}", node.addr(), to.port()));
                    }
                }
            }
            Ok(())
        });
    }
}

/// Every key under `prefix` on every master of `cluster`, merged; see
/// [`keyspace_digest`].
///
/// # Panics
/// If two masters hold the same key, or on any Redis error.
pub fn keyspace_digest_cluster(cluster: &RedisCluster, prefix: &[u8]) -> BTreeMap<Vec<u8>, KeyState> {
    let mut all = BTreeMap::new();
    for master in cluster.masters() {
        for (k, v) in keyspace_digest(&mut master.admin_conn(), prefix) {
            let dup = all.insert(k.clone(), v);
            assert!(dup.is_none(), "key {:?} found on two masters", String::from_utf8_lossy(&k));
        }
    }
    all
}

fn query<T: redis::FromRedisValue>(node: &RedisServer, cmd: &redis::Cmd) -> Result<T, String> {
    let mut conn =
        node.admin_client().get_connection_with_timeout(Duration::from_secs(2)).map_err(|e| e.to_string())?;
    cmd.query(&mut conn).map_err(|e| e.to_string())
}

fn cluster_info(node: &RedisServer) -> Result<String, String> {
    query(node, redis::cmd("CLUSTER").arg("INFO"))
}

/// "master" or "slave", from ROLE.
fn role(node: &RedisServer) -> Option<String> {
    let v: Vec<redis::Value> = query(node, &redis::cmd("ROLE")).ok()?;
    match v.first()? {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}
