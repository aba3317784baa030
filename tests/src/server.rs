//! One real `redis-server` (or `valkey-server`) process per test.
//!
//! psor is tested against real servers, never mocks, because what matters is how Redis
//! itself answers: ACL refusals, TLS handshakes, cluster redirections, DUMP payloads. Each
//! server gets a free loopback port and its own temp dir, and is killed, reaped and its dir
//! removed when the handle drops, so tests run in parallel without sharing state.
//!
//! The API:
//! - `RedisServer::start()`: a plain server of the default kind;
//!   `RedisServer::builder().password(..).acl_user(..).tls().config(k, v).server(kind).start()`
//!   for more. The kind ([`ServerKind`]: `redis-7.0`, `redis-6.2`, `valkey-8.1`,
//!   `valkey-9.1`) defaults to `PSOR_TEST_SERVER` ([`ServerKind::from_env`], `redis-7.0` when
//!   unset), for every server, cluster ([`crate::RedisCluster::start`], or
//!   [`crate::RedisCluster::start_on`] for another kind) and sentinel (the master's kind).
//! - What a kind can do: [`ServerKind::has_tls`] (asked of the binary),
//!   [`ServerKind::has_pexpiretime`], [`ServerKind::has_field_ttls`],
//!   [`ServerKind::rdb_version`]; `enable-debug-command yes` is written only where the config
//!   knows it (7.0+).
//! - Tests about a feature the default kind lacks return early with a printed reason:
//!   [`crate::skip_without_tls`], [`crate::skip_without_pexpiretime`], [`crate::skip`]; tests
//!   that need psor's payload transcoder say so with [`crate::needs_transcode`].
//! - [`RedisServer::kind`] and [`RedisServer::redis_version`] (the product's own version:
//!   `valkey_version` on Valkey) say what a running server is.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use crate::kind::ServerKind;
use crate::ports::free_port;
use crate::tls::{install_crypto_provider, TlsFiles};

/// How long a server gets to answer PING after it was spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How many ports a start tries when another process takes the chosen one first.
const PORT_ATTEMPTS: usize = 20;

/// The password the default user gets when the builder adds ACL users but no password.
pub const DEFAULT_ADMIN_PASSWORD: &str = "psor-admin-pw";

/// Returns the `redis-server` binary on `PATH`.
///
/// # Panics
/// If there is none, with a message saying how to install it.
pub fn redis_server_bin() -> PathBuf {
    find_on_path("redis-server")
}

/// Returns the `redis-cli` binary on `PATH`.
///
/// # Panics
/// If there is none, with a message saying how to install it.
pub fn redis_cli_bin() -> PathBuf {
    find_on_path("redis-cli")
}

pub(crate) fn try_find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

fn find_on_path(name: &str) -> PathBuf {
    try_find_on_path(name).unwrap_or_else(|| {
        panic!(
            "`{name}` is not on PATH; the integration tests need a real Redis. \
                 Run `scripts/ensure-redis.sh` (installs Debian's redis-server and redis-tools)."
        )
    })
}

/// The version of the default kind's server binary ([`ServerKind::from_env`]), from
/// `SERVER --version`.
///
/// # Panics
/// If the binary is missing or its output cannot be parsed.
pub fn installed_redis_version() -> (u32, u32, u32) {
    ServerKind::from_env().version()
}

pub(crate) fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next().flatten().unwrap_or(0)))
}

/// An ACL user the builder creates, allowed only the listed commands.
#[derive(Debug, Clone)]
struct AclUser {
    name: String,
    password: String,
    commands: Vec<String>,
}

/// What kind of process the builder starts; sentinels and cluster nodes are built by
/// their own modules on top of this one.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Server,
    Sentinel { name: String, master_port: u16, master_password: Option<String> },
}

/// Options for a [`RedisServer`]; see [`RedisServer::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .start()"]
pub struct RedisServerBuilder {
    password: Option<String>,
    acl_users: Vec<AclUser>,
    tls: bool,
    /// Certificates generated elsewhere (one set shared by every node of a TLS cluster),
    /// used instead of generating a set per server.
    shared_tls: Option<TlsFiles>,
    extra: Vec<(String, String)>,
    cluster_bus: bool,
    kind: Kind,
    server: ServerKind,
}

impl RedisServerBuilder {
    fn new() -> Self {
        RedisServerBuilder {
            password: None,
            acl_users: Vec::new(),
            tls: false,
            shared_tls: None,
            extra: Vec::new(),
            cluster_bus: false,
            kind: Kind::Server,
            server: ServerKind::from_env(),
        }
    }

    /// Starts a server of `kind` instead of the default ([`ServerKind::from_env`]).
    pub fn server(mut self, kind: ServerKind) -> Self {
        self.server = kind;
        self
    }

    /// Requires `password` for the default user (`requirepass`). With ACL users it is the
    /// default user's (admin's) password instead of [`DEFAULT_ADMIN_PASSWORD`].
    pub fn password(mut self, password: &str) -> Self {
        check_token("password", password);
        self.password = Some(password.to_owned());
        self
    }

    /// Adds ACL user `name` with `password`, allowed every key (`~*`) but only `commands`
    /// (`-@all +cmd ...`; a subcommand is written `client|setinfo`). `pexpiretime` and
    /// `expiretime` are left out on a build that lacks them (Redis 6.2).
    ///
    /// The default user keeps full access under the admin password (the one given to
    /// [`password`](Self::password), or [`DEFAULT_ADMIN_PASSWORD`]), so tests can still set
    /// up data through [`RedisServer::admin_conn`].
    pub fn acl_user(mut self, name: &str, password: &str, commands: &[&str]) -> Self {
        check_token("ACL user name", name);
        check_token("ACL password", password);
        for c in commands {
            check_token("ACL command", c);
        }
        self.acl_users.push(AclUser {
            name: name.to_owned(),
            password: password.to_owned(),
            commands: commands.iter().map(|c| (*c).to_owned()).collect(),
        });
        self
    }

    /// Serves TLS only (`port 0`, `tls-port`), with certificates generated for this server:
    /// see [`RedisServer::tls_files`]. Client certificates are accepted but not required
    /// (`tls-auth-clients optional`).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Like [`tls`](Self::tls), but with certificates `files` generated by the caller, so
    /// several servers (the nodes of a TLS cluster) share one CA and one server certificate.
    pub(crate) fn tls_shared(mut self, files: TlsFiles) -> Self {
        self.tls = true;
        self.shared_tls = Some(files);
        self
    }

    /// Adds a config directive `key value`, written after the harness's own.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.extra.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Also reserves `port + 10000` (the cluster bus port).
    pub(crate) fn cluster_bus(mut self) -> Self {
        self.cluster_bus = true;
        self
    }

    pub(crate) fn kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    fn admin_password(&self) -> Option<String> {
        match (&self.password, self.acl_users.is_empty()) {
            (Some(p), _) => Some(p.clone()),
            (None, false) => Some(DEFAULT_ADMIN_PASSWORD.to_owned()),
            (None, true) => None,
        }
    }

    fn render_config(&self, port: u16, dir: &Path, tls: Option<&TlsFiles>) -> String {
        let mut c = String::new();
        // Says who started this server, for anyone who finds a stray one.
        let _ = writeln!(
            c,
            "# psor-tests harness: started by pid {} ({})",
            std::process::id(),
            std::env::current_exe().unwrap_or_default().display()
        );
        let mut line = |s: String| {
            c.push_str(&s);
            c.push('\n');
        };
        line("bind 127.0.0.1".into());
        line(format!("dir {}", quote(&dir.display().to_string())));
        line("daemonize no".into());
        if let Kind::Sentinel { name, master_port, master_password } = &self.kind {
            match tls {
                // A sentinel of a TLS master serves TLS only too, and talks TLS to the
                // master (tls-replication), presenting the client certificate.
                Some(t) => {
                    line("port 0".into());
                    line(format!("tls-port {port}"));
                    for (k, path) in [
                        ("tls-cert-file", &t.server_cert),
                        ("tls-key-file", &t.server_key),
                        ("tls-ca-cert-file", &t.ca_cert),
                        ("tls-client-cert-file", &t.client_cert),
                        ("tls-client-key-file", &t.client_key),
                    ] {
                        line(format!("{k} {}", quote(&path.display().to_string())));
                    }
                    line("tls-auth-clients optional".into());
                    line("tls-replication yes".into());
                }
                None => line(format!("port {port}")),
            }
            line("protected-mode no".into());
            line(format!("sentinel monitor {name} 127.0.0.1 {master_port} 1"));
            line(format!("sentinel down-after-milliseconds {name} 1000"));
            line(format!("sentinel failover-timeout {name} 10000"));
            line(format!("sentinel parallel-syncs {name} 1"));
            if let Some(pw) = master_password {
                line(format!("sentinel auth-pass {name} {pw}"));
            }
            // A Sentinel of its own password (`requirepass`) or ACL users, as production
            // Sentinels often are.
            let admin = self.admin_password();
            if self.acl_users.is_empty() {
                if let Some(pw) = &admin {
                    line(format!("requirepass {pw}"));
                }
            } else {
                let pw = admin.as_deref().unwrap_or(DEFAULT_ADMIN_PASSWORD);
                line(format!("user default on >{pw} ~* &* +@all"));
                for u in &self.acl_users {
                    let mut l = format!("user {} on >{} -@all", u.name, u.password);
                    for cmd in &u.commands {
                        let _ = write!(l, " +{cmd}");
                    }
                    line(l);
                }
            }
        } else {
            match tls {
                Some(t) => {
                    line("port 0".into());
                    line(format!("tls-port {port}"));
                    line(format!("tls-cert-file {}", quote(&t.server_cert.display().to_string())));
                    line(format!("tls-key-file {}", quote(&t.server_key.display().to_string())));
                    line(format!("tls-ca-cert-file {}", quote(&t.ca_cert.display().to_string())));
                    line("tls-auth-clients optional".into());
                }
                None => line(format!("port {port}")),
            }
            line("save \"\"".into());
            line("appendonly no".into());
            // A replica's first sync starts at once (Valkey 8 waits 5 s by default, which on a
            // loaded 2-core machine runs into the tests' catch-up deadlines).
            line("repl-diskless-sync-delay 0".into());
            if self.server.has_enable_debug_command() {
                line("enable-debug-command yes".into());
            }
            let admin = self.admin_password();
            if admin.is_none() {
                line("protected-mode no".into());
            }
            if self.acl_users.is_empty() {
                if let Some(pw) = &admin {
                    line(format!("requirepass {pw}"));
                }
            } else {
                let pw = admin.as_deref().unwrap_or(DEFAULT_ADMIN_PASSWORD);
                line(format!("user default on >{pw} ~* &* +@all"));
                for u in &self.acl_users {
                    let mut l = format!("user {} on >{} ~* -@all", u.name, u.password);
                    for cmd in &u.commands {
                        // A build without the command (Redis 6.2 has no PEXPIRETIME) refuses the
                        // whole config over it; psor does not use it there.
                        if !self.server.has_pexpiretime() && matches!(cmd.as_str(), "pexpiretime" | "expiretime") {
                            continue;
                        }
                        let _ = write!(l, " +{cmd}");
                    }
                    line(l);
                }
            }
        }
        for (k, v) in &self.extra {
            line(format!("{k} {v}"));
        }
        c
    }

    /// Starts the server and waits until it answers PING.
    ///
    /// # Panics
    /// If the server binary is missing, TLS was asked of a build without it, or the server
    /// does not answer within [`START_TIMEOUT`] (the message carries the tail of its log).
    pub fn start(self) -> RedisServer {
        assert!(
            !self.tls || self.server.has_tls(),
            "{} has no TLS: check ServerKind::has_tls (or skip_without_tls) before asking for it",
            self.server.display_name()
        );
        let mut server = self.prepare();
        for _ in 0..PORT_ATTEMPTS {
            match self.try_port(&mut server, free_port(self.cluster_bus)) {
                Ok(()) => return server,
                Err(StartFailure::AddrInUse) => continue,
                Err(StartFailure::Other(msg)) => panic!("{msg}"),
            }
        }
        panic!("redis-server could not bind a port after {PORT_ATTEMPTS} attempts; log:\n{}", server.log_tail());
    }

    /// The server handle with its temp dir (and certificates), not yet running.
    fn prepare(&self) -> RedisServer {
        let bin = self.server.server_bin();
        let dir = tempfile::Builder::new().prefix("psor-redis-").tempdir().expect("create temp dir for redis-server");
        let tls = match &self.shared_tls {
            Some(files) => Some(files.clone()),
            None => self.tls.then(|| TlsFiles::generate(dir.path())),
        };
        if tls.is_some() {
            install_crypto_provider();
        }
        let conf_path = dir.path().join(match self.kind {
            Kind::Sentinel { .. } => "sentinel.conf",
            Kind::Server => "redis.conf",
        });
        RedisServer {
            port: 0,
            log_path: dir.path().join("redis.log"),
            conf_path,
            bin,
            child: None,
            admin_password: self.admin_password(),
            tls,
            sentinel: matches!(self.kind, Kind::Sentinel { .. }),
            server: self.server,
            dir,
        }
    }

    /// Writes the config for `port` and starts the server on it.
    fn try_port(&self, server: &mut RedisServer, port: u16) -> Result<(), StartFailure> {
        server.port = port;
        let conf = self.render_config(port, server.dir.path(), server.tls.as_ref());
        fs::write(&server.conf_path, conf).expect("write redis config");
        server.spawn_and_wait()
    }
}

/// Config tokens the harness writes unquoted must not need quoting.
fn check_token(what: &str, s: &str) {
    assert!(
        !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c == '"' || c == '\''),
        "{what} {s:?} must be non-empty without whitespace or quotes"
    );
}

pub(crate) fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

enum StartFailure {
    AddrInUse,
    Other(String),
}

/// A running `redis-server` (or sentinel) on 127.0.0.1, stopped and cleaned up on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    log_path: PathBuf,
    conf_path: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
    admin_password: Option<String>,
    tls: Option<TlsFiles>,
    sentinel: bool,
    server: ServerKind,
    // Last, so the process is gone (Drop::drop runs first) before the dir is removed.
    dir: TempDir,
}

impl RedisServer {
    /// Starts a plain server: no password, no TLS.
    pub fn start() -> RedisServer {
        RedisServer::builder().start()
    }

    /// Options for a server: password, ACL user, TLS, extra config.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::new()
    }

    /// Starts a replica of `master` (a plain one: no password, no TLS; of the same build),
    /// and waits until it has synced (`master_link_status:up`, `master_sync_in_progress:0`).
    ///
    /// # Panics
    /// If the replica does not start, or does not sync within 10 s.
    pub fn replica_of(master: &RedisServer) -> RedisServer {
        assert!(master.admin_password.is_none() && master.tls.is_none(), "replica_of: plain masters only");
        let replica = RedisServer::builder()
            .server(master.server)
            .config("replicaof", &format!("127.0.0.1 {}", master.port))
            .start();
        replica.wait_synced();
        replica
    }

    /// Waits until this replica's link to its master is up and its first sync is done.
    ///
    /// # Panics
    /// If that takes longer than 10 s.
    pub fn wait_synced(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut con = self.admin_conn();
        loop {
            let info: String = redis::cmd("INFO").arg("replication").query(&mut con).unwrap_or_default();
            if info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0") {
                return;
            }
            assert!(Instant::now() < deadline, "replica {} did not sync; log:\n{}", self.addr(), self.log_tail());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port clients connect to (the TLS port for a TLS server).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"127.0.0.1:PORT"`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's temp dir (config, log, certificates, nodes.conf).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the server serves TLS only.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The default user's password, if it has one.
    pub fn admin_password(&self) -> Option<&str> {
        self.admin_password.as_deref()
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        }
    }

    /// URL for the default (admin) user: `redis://[:PASSWORD@]127.0.0.1:PORT/`, or
    /// `rediss://...` for a TLS server (whose CA is in [`tls_files`](Self::tls_files)).
    pub fn url(&self) -> String {
        match &self.admin_password {
            Some(pw) => format!("{}://:{}@{}/", self.scheme(), pct_encode(pw), self.addr()),
            None => format!("{}://{}/", self.scheme(), self.addr()),
        }
    }

    /// URL for ACL user `user` with password `pass`.
    pub fn url_for(&self, user: &str, pass: &str) -> String {
        format!("{}://{}:{}@{}/", self.scheme(), pct_encode(user), pct_encode(pass), self.addr())
    }

    /// The CA certificate, client certificate and client key (PEM) of a TLS server.
    ///
    /// # Panics
    /// If the server was not built with [`RedisServerBuilder::tls`].
    pub fn tls_files(&self) -> (PathBuf, PathBuf, PathBuf) {
        let t = self.tls.as_ref().expect("tls_files() on a server without TLS");
        (t.ca_cert.clone(), t.client_cert.clone(), t.client_key.clone())
    }

    /// All generated certificate files of a TLS server, or `None` without TLS.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    fn client_for_url(&self, url: &str) -> redis::RedisResult<redis::Client> {
        match &self.tls {
            Some(t) => {
                install_crypto_provider();
                redis::Client::build_with_tls(url, t.redis_certificates())
            }
            None => redis::Client::open(url),
        }
    }

    /// A client for the default (admin) user; for TLS it trusts the server's CA and
    /// presents the client certificate.
    pub fn admin_client(&self) -> redis::Client {
        self.client_for_url(&self.url()).unwrap_or_else(|e| panic!("admin client for {}: {e}", self.addr()))
    }

    /// A connection for the default (admin) user.
    pub fn admin_conn(&self) -> redis::Connection {
        self.admin_client()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {}: {e}\nlog:\n{}", self.addr(), self.log_tail()))
    }

    /// A client for ACL user `user` (with the TLS settings of [`admin_client`](Self::admin_client)).
    pub fn client_for(&self, user: &str, pass: &str) -> redis::Client {
        self.client_for_url(&self.url_for(user, pass))
            .unwrap_or_else(|e| panic!("client for {user}@{}: {e}", self.addr()))
    }

    /// The running server's own version, from `INFO server`: `valkey_version` on Valkey
    /// (whose `redis_version` is a fixed compatibility value), `redis_version` on Redis.
    pub fn redis_version(&self) -> (u32, u32, u32) {
        let info: String = redis::cmd("INFO").arg("server").query(&mut self.admin_conn()).expect("INFO server");
        info_field(&info, "valkey_version")
            .or_else(|| info_field(&info, "redis_version"))
            .and_then(|v| parse_version(&v))
            .expect("redis_version in INFO")
    }

    /// The build this server runs.
    pub fn kind(&self) -> ServerKind {
        self.server
    }

    /// Whether the process is running (started and not stopped).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills the process (SIGKILL) and reaps it. The temp dir stays until drop, so
    /// [`restart`](Self::restart) can bring the server back. Stopping twice is harmless.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server and starts it again on the same port, with the same dir and
    /// config, for fault tests. Nothing is persisted (`save ""`, no AOF), so a restarted
    /// standalone server is empty; a cluster node keeps its identity via nodes.conf.
    ///
    /// # Panics
    /// If the server does not come back within [`START_TIMEOUT`].
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                // Something else grabbed the port in the gap; it may let go again.
                Err(StartFailure::AddrInUse) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Err(StartFailure::AddrInUse) => {
                    panic!("restart on port {}: address still in use; log:\n{}", self.port, self.log_tail())
                }
                Err(StartFailure::Other(msg)) => panic!("{msg}"),
            }
        }
    }

    /// The last lines of the server's log (stdout and stderr).
    pub fn log_tail(&self) -> String {
        let text = fs::read(&self.log_path).unwrap_or_default();
        tail(&String::from_utf8_lossy(&text), 40)
    }

    fn spawn_and_wait(&mut self) -> Result<(), StartFailure> {
        let mut log = OpenOptions::new().create(true).append(true).open(&self.log_path).expect("open redis log");
        let log_start = log.seek(SeekFrom::End(0)).unwrap_or(0);
        let mut cmd = Command::new(&self.bin);
        cmd.arg(&self.conf_path);
        if self.sentinel {
            cmd.arg("--sentinel");
        }
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        let child = cmd.spawn().map_err(|e| StartFailure::Other(format!("spawn {}: {e}", self.bin.display())))?;
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        let mut last_err: String;
        loop {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                let this_run = read_from(&self.log_path, log_start);
                if this_run.contains("Address already in use") {
                    return Err(StartFailure::AddrInUse);
                }
                return Err(StartFailure::Other(format!(
                    "redis-server on port {} exited during start ({status}); log:\n{}",
                    self.port,
                    tail(&this_run, 40)
                )));
            }
            let our_pid = self.child.as_ref().map(Child::id);
            match self.ping() {
                Ok(pid) if Some(pid) == our_pid => return Ok(()),
                // Another process's server holds our port; ours will fail to bind and
                // exit, which the check above turns into a retry on another port.
                Ok(pid) => last_err = format!("port answered by foreign redis pid {pid}"),
                Err(e) => last_err = e,
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(StartFailure::Other(format!(
                    "redis-server on port {} did not answer PING within {:?} (last error: {last_err}); log:\n{}",
                    self.port,
                    START_TIMEOUT,
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// PINGs the server and returns the `process_id` it reports, so the caller can tell
    /// our process from another one that holds the same port.
    fn ping(&self) -> Result<u32, String> {
        let client = self.client_for_url(&self.url()).map_err(|e| e.to_string())?;
        let mut conn = client.get_connection_with_timeout(Duration::from_millis(500)).map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
        redis::cmd("PING").query::<String>(&mut conn).map_err(|e| e.to_string())?;
        let info: String = redis::cmd("INFO").arg("server").query(&mut conn).map_err(|e| e.to_string())?;
        info_field(&info, "process_id")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| "no process_id in INFO server".to_owned())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() {
            eprintln!("--- log of redis-server on {} (test panicked) ---\n{}", self.addr(), self.log_tail());
        }
        self.stop();
    }
}

/// Reads one `field:value` line of an INFO reply.
pub(crate) fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')).map(|v| v.trim().to_owned()))
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut s = Vec::new();
    if let Ok(mut f) = File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_end(&mut s);
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for URL user info.
pub(crate) fn pct_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_server_on_our_port_is_not_taken_for_ours() {
        let foreign = RedisServer::start();
        let builder = RedisServer::builder();
        let mut ours = builder.prepare();
        let result = builder.try_port(&mut ours, foreign.port());
        assert!(matches!(result, Err(StartFailure::AddrInUse)));
        assert!(!ours.is_running());
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("7.0.15"), Some((7, 0, 15)));
        assert_eq!(parse_version("7.2"), Some((7, 2, 0)));
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn passwords_are_percent_encoded_in_urls() {
        assert_eq!(pct_encode("a:b@c/d%"), "a%3Ab%40c%2Fd%25");
    }
}
