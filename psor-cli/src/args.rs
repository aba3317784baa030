//! The command line as clap sees it. These types never leave the CLI crate: each command
//! turns them into validated psor-core options before calling the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// psor: fast, safe work on the Redis PSOR behind Enterprise Server PACs.
#[derive(Debug, Parser)]
#[command(name = "psor", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Where the PSOR is: redis://[user[:pass]@]host:port[/db], rediss://... (TLS), the
    /// caspac form redis,host:port / redis_TLS,host:port, or file:PATH (a snapshot file used
    /// as an embedded store, no server needed; created if missing, saved atomically). Without
    /// --psor and PSOR_URL: the SOR marked TMP in --es-env FILE, else in ES_SCALE_OUT_REPOS_1..9
    #[arg(long, global = true, env = "PSOR_URL", hide_env_values = true, value_name = "SPEC")]
    pub psor: Option<String>,
    /// Read the password from this file (first line). Wins over the URL, PSOR_PASSWORD and REDISCLI_AUTH
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// A file of the region's ES_PAC / ES_SCALE_OUT_REPOS_n=... lines; used instead of those
    /// variables in the environment. The SOR marked TMP is the PSOR when neither --psor nor
    /// PSOR_URL is given
    #[arg(long, global = true, value_name = "FILE")]
    pub es_env: Option<PathBuf>,
    /// ACL user to authenticate to Sentinels as (with --sentinel-password-file or PSOR_SENTINEL_PASSWORD)
    #[arg(long, global = true, value_name = "USER")]
    pub sentinel_user: Option<String>,
    /// Read the Sentinels' password from this file (first line). Wins over PSOR_SENTINEL_PASSWORD
    #[arg(long, global = true, value_name = "FILE")]
    pub sentinel_password_file: Option<PathBuf>,
    /// CA certificate (PEM) to trust for TLS instead of the system's roots
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for servers that check clients
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM) for --tls-cert
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Accept any TLS server certificate (tests and emergencies only)
    #[arg(long, global = true)]
    pub tls_insecure: bool,
    /// Seconds to wait for a server to be usable: TCP connect, TLS handshake, AUTH and a first reply
    #[arg(long, global = true, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub connect_timeout: u64,
    /// Seconds to wait for any one reply once connected (a timeout is retried, with backoff)
    #[arg(long, global = true, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Where scans and reads (SCAN, DUMP, TYPE, PTTL, MEMORY USAGE) go: master (default); replica
    /// (also replica-preferred): a replica of each master once it has caught up with the master's
    /// replication offset at the start (at most --replica-wait), else the master, and the master if
    /// the replica is lost mid-run; replica-only: like replica, but stop (exit 9) instead of reading
    /// the master. Writes always go to the masters; copy --move reads the values it deletes on them
    #[arg(long, global = true, value_name = "WHERE", default_value = "master", value_parser = ["master", "replica", "replica-preferred", "replica-only"])]
    pub read_from: String,
    /// Seconds a replica may take to catch up with its master at the start (--read-from replica…)
    #[arg(long, global = true, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600), hide_short_help = true)]
    pub replica_wait: u64,
    /// Print one JSON object on stdout at the end instead of tables
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bar (it is shown only when stderr is a terminal anyway)
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Do not ask before destructive work (needed when not on a terminal)
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// Print keys as raw bytes instead of escaped
    #[arg(long, global = true)]
    pub raw: bool,
    #[command(flatten)]
    pub tuning: Tuning,
}

/// Engine tuning; the defaults saturate one Redis server.
#[derive(Debug, Clone, Args)]
pub struct Tuning {
    /// SCAN COUNT: keys the server examines per SCAN call
    #[arg(long, global = true, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000), hide_short_help = true)]
    pub scan_count: u64,
    /// Keys per pipeline
    #[arg(long, global = true, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000), hide_short_help = true)]
    pub batch: u64,
    /// Writer connections per server
    #[arg(long, global = true, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64), hide_short_help = true)]
    pub writers: u64,
    /// At most this many keys per second (for work on a live PSOR; default: unpaced)
    #[arg(long, global = true, value_name = "KEYS_PER_S", value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
    /// Back off while the server's PING round trip is above this many milliseconds
    #[arg(long, global = true, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub max_latency: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List (or count) the keys under a prefix
    Scan(ScanArgs),
    /// Delete every key under a prefix (UNLINK, pipelined)
    Delete(DeleteArgs),
    /// Copy every key under one prefix to another prefix, on this or another server
    Copy(CopyArgs),
    /// Write every key under a prefix (type, value, exact expiry) to a snapshot file
    Export(ExportArgs),
    /// Restore a snapshot file into the PSOR, after checking every checksum in it
    Import(ImportArgs),
    /// Show what a snapshot file holds (offline: no server needed)
    Inspect(InspectArgs),
    /// Compare the keys under a prefix with their copy (another prefix, server or snapshot
    /// file), or every store a PAC upgrade carries; reads only (exit 8 = differences)
    Verify(VerifyArgs),
    /// Map the keyspace as a prefix tree: keys, bytes, types, TTLs and biggest keys per prefix
    Survey(SurveyArgs),
    /// The layout catalog in force: versions → layouts → epochs → stores
    Layouts(LayoutsArgs),
    /// The PACs in the PSOR: versions, modes, regions, stores and key counts
    Status(StatusArgs),
    /// Rehearse the incompatible upgrade, step by step, on an embedded store: on a sample PAC
    /// (no Redis needed), or on a copy of a live PAC (--from; the source is only read)
    Rehearse(RehearseArgs),
    /// Remove every store of a PAC (all versions) and write a fresh record in mode Running (caspac -aInitPac)
    InitPac(InitPacArgs),
    /// Is the product version compatible with the PAC in the PSOR? (caspac -aCheckCompat; exit 4 = incompatible)
    CheckCompat(CheckCompatArgs),
    /// Create the product version's stores next to the running ones, in mode Upgrade (casstart /s:u)
    Create(CreateArgs),
    /// Set the mode of the PAC version compatible with the product version (caspac -aSetMode)
    SetMode(SetModeArgs),
    /// Remove the stores of every version but the Running one (caspac -aRemOldPAC)
    RemOldPac(RemOldPacArgs),
    /// Write a realistic PAC at a version, for demos, tests and rehearsals
    Sample(SampleArgs),
    /// The vendor's caspac syntax: -aInitPac=P, -aCheckCompat=P, -aSetMode=Running|Quiesce, -aRemOldPAC=P, -sredis,host:port
    Caspac(CaspacArgs),
    /// Print shell completions
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Key prefix (bytes; \xHH, \n, \t, \0 and \\ escapes name any byte)
    #[arg(long, short)]
    pub prefix: String,
    /// Print only the number of keys
    #[arg(long)]
    pub count_only: bool,
    /// Separate keys with NUL instead of newline, and write them as raw bytes (as --raw): for xargs -0
    #[arg(long, short = '0')]
    pub null: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Key prefix (bytes; \xHH, \n, \t, \0 and \\ escapes name any byte). Never empty
    #[arg(long, short)]
    pub prefix: String,
    /// Count and show a sample; delete nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// How many keys a dry run shows
    #[arg(long, default_value_t = 10)]
    pub sample: usize,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Copy the keys under this prefix…
    #[arg(long, short)]
    pub prefix: String,
    /// …to the same names under this prefix
    #[arg(long)]
    pub to_prefix: String,
    /// Another server to copy to (same spec forms as --psor); default: the same server
    #[arg(long, value_name = "SPEC")]
    pub target: Option<String>,
    /// Overwrite target keys that exist (otherwise they are conflicts, left alone)
    #[arg(long)]
    pub replace: bool,
    /// Delete each source key once its copy is confirmed
    #[arg(long = "move")]
    pub move_keys: bool,
    /// Then compare every key with its copy, both directions (as `psor verify`; exit 8 if they differ)
    #[arg(long, conflicts_with_all = ["move_keys", "dry_run"])]
    pub verify: bool,
    /// Count what would be copied and what would conflict; write nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// How many keys a dry run shows
    #[arg(long, default_value_t = 10)]
    pub sample: usize,
    /// Copy hashes with field expirations to a target that has none, without the fields'
    /// expiries (otherwise refused before writing)
    #[arg(long)]
    pub drop_field_ttls: bool,
    /// The biggest payload one RESTORE may carry when the target's proto-max-bulk-len cannot be
    /// read (bytes; k/m/g suffixes)
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_payload: Option<u64>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A PAC: verify every store the upgrade --from-version → --to-version carries (by the catalog)
    #[arg(conflicts_with_all = ["prefix", "to_prefix", "target", "snapshot"], requires_all = ["from_version", "to_version"])]
    pub pac: Option<String>,
    /// Side A: the keys under this prefix on --psor
    #[arg(long, short, required_unless_present = "pac")]
    pub prefix: Option<String>,
    /// Side B: the same names under this prefix (default: the same prefix)
    #[arg(long)]
    pub to_prefix: Option<String>,
    /// Side B is on this server (same spec forms as --psor); default: the same server
    #[arg(long, value_name = "SPEC", conflicts_with = "snapshot")]
    pub target: Option<String>,
    /// Side B is this .psnap snapshot file (read only)
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// With a PAC: the version carried from
    #[arg(long, value_name = "V", requires = "pac")]
    pub from_version: Option<String>,
    /// With a PAC: the version carried to
    #[arg(long, value_name = "V", requires = "pac")]
    pub to_version: Option<String>,
    /// Type, expiry and size only (STRLEN/HLEN/SCARD/ZCARD/LLEN/XLEN): a first look at many keys
    #[arg(long)]
    pub quick: bool,
    /// Expiry instants this many milliseconds apart still count as the same (for data copied by other tools)
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub ttl_tolerance: u64,
    /// How many differing keys of each kind the report names
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub show: usize,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Key prefix (bytes; \xHH, \n, \t, \0 and \\ escapes name any byte). Never empty
    #[arg(long, short)]
    pub prefix: String,
    /// The snapshot file to write (written as FILE.tmp, then renamed once complete)
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
    /// Replace FILE if it is an existing snapshot (never a non-snapshot, never a newer format)
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The snapshot file
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Restore keys starting with OLD under NEW instead (every key must start with OLD;
    /// escapes as in prefixes, an `=` in OLD is \x3d)
    #[arg(long, value_name = "OLD=NEW")]
    pub rename: Option<String>,
    /// Overwrite keys that exist (otherwise they are conflicts, left alone)
    #[arg(long)]
    pub replace: bool,
    /// Check the file and count what would be restored and what would conflict; write nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// How many keys a dry run shows
    #[arg(long, default_value_t = 10)]
    pub sample: usize,
    /// Then compare the restored keys with the file, both directions (as `psor verify
    /// --snapshot`; exit 8 if they differ)
    #[arg(long, conflicts_with = "dry_run")]
    pub verify: bool,
    /// Copy hashes with field expirations to a target that has none, without the fields'
    /// expiries (otherwise refused before writing)
    #[arg(long)]
    pub drop_field_ttls: bool,
    /// The biggest payload one RESTORE may carry when the target's proto-max-bulk-len cannot be
    /// read (bytes; k/m/g suffixes)
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_payload: Option<u64>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The snapshot file
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Group keys by their first N `:`-separated segments
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub depth: usize,
    /// Show the K groups with the most bytes
    #[arg(long, default_value_t = 20, value_name = "K")]
    pub top: usize,
    /// Show only this key (same escapes as --prefix): a binary search in a sorted file
    /// (format 1.1), a scan of older files; exit 5 when the file does not hold it
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
}

#[derive(Debug, Args)]
pub struct SurveyArgs {
    /// Survey only keys under this prefix (bytes; \xHH, \n, \t, \0 and \\ escapes). Default: every key
    #[arg(long, short, default_value = "")]
    pub prefix: String,
    /// Levels of the tree below the prefix
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub depth: u64,
    /// What ends a level of a key name (same escapes as --prefix)
    #[arg(long, default_value = ":")]
    pub delimiter: String,
    /// The biggest sampled keys shown per prefix
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub top: u64,
    /// Skip TYPE and PTTL (two commands per key): counts and bytes only, about twice as fast
    #[arg(long)]
    pub no_types: bool,
    /// Measure MEMORY USAGE of one key in N (chosen by a hash of its name); 1: every key, 0: none
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub sample_every: u64,
    /// At most this many prefixes under one prefix; the rest are counted in "(other)"
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000), hide_short_help = true)]
    pub max_children: u64,
    /// At most this many prefixes in the whole tree (bounds memory); the rest are counted in "(other)"
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(2..=10_000_000), hide_short_help = true)]
    pub max_nodes: u64,
    /// Write a draft layout catalog (docs/layouts.md) from the <PAC>_<version>:<store>: prefixes found
    #[arg(long, value_name = "FILE", conflicts_with = "no_types")]
    pub suggest_layout: Option<PathBuf>,
}

/// Where the layout catalog comes from.
#[derive(Debug, Clone, Args)]
pub struct CatalogArgs {
    /// Layout catalog (TOML) laid over, or replacing, the built-in reference catalog (docs/layouts.md).
    /// Empty (PSOR_LAYOUTS=) means not given
    // Parsed as any OS string so an empty PSOR_LAYOUTS is not a clap error; `catalog()` treats it as unset.
    #[arg(long, env = "PSOR_LAYOUTS", value_name = "FILE", value_parser = clap::builder::TypedValueParser::map(clap::builder::OsStringValueParser::new(), PathBuf::from))]
    pub layouts: Option<PathBuf>,
}

/// The product version psor acts for.
#[derive(Debug, Clone, Args)]
pub struct ProductArgs {
    /// The product version psor acts for (what the installed product would report), e.g. 9.0
    #[arg(long, env = "PSOR_PRODUCT_VERSION", value_name = "V")]
    pub product_version: Option<String>,
}

#[derive(Debug, Args)]
pub struct LayoutsArgs {
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this PAC; default: ES_PAC (the region's PAC), else every PAC
    pub pac: Option<String>,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// Warn about a version in mode Upgrade whose record has not changed for this many hours
    #[arg(long, default_value_t = 24.0, value_name = "HOURS")]
    pub upgrade_warn_hours: f64,
    /// Measure MEMORY USAGE of one key in N (chosen by a hash of its name); 1: every key, 0: none
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub sample_every: u64,
    /// Skip TYPE and PTTL (two commands per key) and the regions' version records: counts and bytes only
    #[arg(long)]
    pub no_types: bool,
}

#[derive(Debug, Clone, Args)]
pub struct InitPacArgs {
    /// The PAC (its regions' ES_PAC); default: ES_PAC
    pub pac: Option<String>,
    #[command(flatten)]
    pub product: ProductArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// List the stores and key counts that would be removed; write nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Go ahead although regions are still registered
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CheckCompatArgs {
    /// The PAC; default: ES_PAC (the region's PAC)
    pub pac: Option<String>,
    #[command(flatten)]
    pub product: ProductArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// The PAC; default: ES_PAC (the region's PAC)
    pub pac: Option<String>,
    #[command(flatten)]
    pub product: ProductArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// Count what would be copied; write nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Create a version older than the Running one (a downgrade; refused otherwise)
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Then compare every carried store with its source, both directions (as `psor verify
    /// PAC --from-version --to-version`; exit 8 if they differ)
    #[arg(long, conflicts_with = "dry_run")]
    pub verify: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SetModeArgs {
    /// The PAC (default: ES_PAC, then the one word given is the mode)
    #[arg(value_name = "PAC")]
    pub pac: Option<String>,
    /// The new mode: running or quiesce
    #[arg(value_name = "MODE")]
    pub mode: Option<String>,
    #[command(flatten)]
    pub product: ProductArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// Check the change and show it; write nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RemOldPacArgs {
    /// The PAC; default: ES_PAC (the region's PAC)
    pub pac: Option<String>,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// List the stores and key counts that would be removed; write nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Remove although an old version is not quiesced or still has regions registered
    #[arg(long)]
    pub force: bool,
    /// First write the old versions' stores to this snapshot file and verify it; nothing is
    /// removed unless the backup verifies
    #[arg(long, value_name = "FILE")]
    pub backup: Option<std::path::PathBuf>,
    /// Let --backup replace an existing file (only an older-or-equal psor snapshot, never the store's own file)
    #[arg(long, requires = "backup")]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The PAC; default: ES_PAC (the region's PAC)
    pub pac: Option<String>,
    #[command(flatten)]
    pub product: ProductArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// Resource-table entries to write
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// Regions to register (REGION1, REGION2, ...)
    #[arg(long, default_value_t = 2)]
    pub regions: usize,
    /// The mode of the PAC record: running, quiesce or upgrade
    #[arg(long, default_value = "running")]
    pub mode: String,
    /// PPT entries that get a large (256 KiB) program binary
    #[arg(long, default_value_t = 3)]
    pub large_values: usize,
}

#[derive(Debug, Args)]
pub struct CaspacArgs {
    #[command(flatten)]
    pub product: ProductArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// Dry run for -aInitPac and -aRemOldPAC
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// --force for -aInitPac and -aRemOldPAC
    #[arg(long)]
    pub force: bool,
    /// caspac arguments: -a<Action>[=<value>] and -s<sorType>,<host>:<port>[,...]. The PAC of
    /// -aSetMode comes from ES_PAC
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "CASPAC_ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RehearseArgs {
    /// The PAC; default: ES_PAC, else MyPAC
    #[arg(long)]
    pub pac: Option<String>,
    /// The version to upgrade to
    #[arg(long, default_value = "9.0", value_name = "V")]
    pub to: String,
    /// The sample PAC's old version (without --from)
    #[arg(long, default_value = "8.0", value_name = "V")]
    pub sample_version: String,
    /// Resource-table keys of the sample PAC (without --from)
    #[arg(long, default_value_t = 100_000)]
    pub keys: usize,
    /// Rehearse on a copy of the PAC in this live PSOR (same forms as --psor); it is only read
    #[arg(long, value_name = "SPEC")]
    pub from: Option<String>,
    /// The embedded store to rehearse in (must not hold the PAC); default: a temporary file
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// Where the old PAC's backup goes; default: beside the store
    #[arg(long, value_name = "FILE")]
    pub backup: Option<PathBuf>,
    /// Let the backup replace an existing file (only an older-or-equal psor snapshot, never the store's own file)
    #[arg(long)]
    pub overwrite: bool,
    /// Keep the temporary store and backup (their paths are printed)
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

/// `256m`, `1g`, `4096`: a byte count with an optional k/m/g (powers of 1024) suffix.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let (num, mult) = match t.as_bytes().last() {
        Some(b'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some(b'm') => (&t[..t.len() - 1], 1 << 20),
        Some(b'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (&t[..], 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{text}`: expected a byte count such as 262144, 256m or 1g"))
}
