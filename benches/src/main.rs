//! psor's benchmark runner: psor against the tools people use today, in one run, on one
//! throwaway Redis.
//!
//! Timings on a shared machine are noisy, so this runner never asserts a timing. It
//! measures psor and its peer side by side on the same keyspace, in the same run, and
//! reports ratios: peer wall / psor wall, and wall / server busy time (how far a client is
//! from the physical limit of the server; see `benches/README.md`). It does check
//! correctness (key counts after every step), so a row can never report a run that
//! silently did nothing.
//!
//! ```text
//! cargo run --release -p psor-benches -- [--keys N] [--rss-keys N] [--skip-10m] [--out FILE]
//!     [--skip-cluster] [--cluster-keys N] [--cluster-peer-keys N] [--only-replica | --skip-replica]
//!     [--only live [--live-repeats N]]
//! ```

mod cluster;
mod live;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use psor_tests::kind::ServerKind;
use psor_tests::RedisServer;

/// The prefix every tool works on.
const PREFIX: &str = "MyPAC_8.0:pct:";
/// Where the copies go.
const COPY_PREFIX: &str = "MyPAC_9.1:pct:";
/// Names of the keys that are not under [`PREFIX`] (half each).
const OTHER_PREFIXES: [&str; 2] = ["MyPAC_9.0:pct:", "other:"];
/// TTL of every 10th key, seconds: long enough to outlive any run.
const TTL_SECS: u64 = 86_400;

/// psor's benchmarks against the tools people use today, on throwaway redis-servers.
#[derive(Parser)]
#[command(name = "psor-benches")]
struct Args {
    /// Keys under the prefix for the side-by-side rows.
    #[arg(long, value_name = "N", default_value = "1000000", value_parser = parse_count)]
    keys: u64,
    /// Keys for the 10M run (every bulk command once: peak RSS and wall/busy at scale).
    #[arg(long, value_name = "N", default_value = "10000000", value_parser = parse_count)]
    rss_keys: u64,
    /// Skip the 10M run.
    #[arg(long = "skip-10m")]
    skip_10m: bool,
    /// Also write the report here [default: target/bench-results.md].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Use this psor binary instead of building target/release/psor.
    #[arg(long, value_name = "PATH")]
    psor_bin: Option<PathBuf>,
    /// Extra flags for every psor run (tuning experiments: `--psor-args "--writers 4 --batch 2000"`).
    #[arg(long = "psor-args", value_name = "S", default_value = "", allow_hyphen_values = true)]
    psor_args_text: String,
    /// psor rows only (tuning experiments).
    #[arg(long)]
    no_peers: bool,
    /// Skip the 3-master cluster section.
    #[arg(long)]
    skip_cluster: bool,
    /// Keys for the cluster section [default: --keys].
    #[arg(long, value_name = "N", value_parser = parse_count)]
    cluster_keys: Option<u64>,
    /// The server build every run uses (redis-7.0, valkey-8.1, valkey-9.1; the harness's
    /// names) [default: PSOR_TEST_SERVER, else redis-7.0].
    #[arg(long, value_name = "NAME", value_parser = parse_kind)]
    server: Option<ServerKind>,
    /// The second server's build, for copy-cross, verify and import (a cross-version copy:
    /// `--server valkey-9.1 --target-server redis-7.0`) [default: --server].
    #[arg(long, value_name = "NAME", value_parser = parse_kind)]
    target_server: Option<ServerKind>,
    /// Keys for the cluster delete peer, one redis-cli per key (0 skips it).
    #[arg(long, value_name = "N", default_value = "3000", value_parser = parse_count)]
    cluster_peer_keys: u64,
    /// Run only the `--read-from replica` rows (a master with one replica) and write the report.
    #[arg(long)]
    only_replica: bool,
    /// Skip the `--read-from replica` rows.
    #[arg(long, conflicts_with = "only_replica")]
    skip_replica: bool,
    /// Run only this row group: `live` (a probe client's latency while psor deletes, see
    /// `live.rs`), or `cluster` (the 3-master cluster section, `cluster.rs`).
    #[arg(long, value_name = "GROUP", value_parser = ["live", "cluster"])]
    only: Option<String>,
    /// Rounds of the live-safe rows (idle, unpaced, paced back to back, per round).
    #[arg(long, value_name = "N", default_value = "1")]
    live_repeats: u32,
}

impl Args {
    /// The words of `--psor-args`.
    fn psor_args(&self) -> Vec<String> {
        self.psor_args_text.split_whitespace().map(String::from).collect()
    }

    /// Where the report goes.
    fn out(&self, root: &Path) -> PathBuf {
        self.out.clone().unwrap_or_else(|| root.join("target/bench-results.md"))
    }
}

fn parse_args() -> Result<Args> {
    let a = Args::parse();
    ensure!(a.keys > 0, "--keys must be positive");
    ensure!(a.cluster_keys != Some(0), "--cluster-keys must be positive");
    Ok(a)
}

fn parse_kind(s: &str) -> Result<ServerKind> {
    ServerKind::from_name(s)
        .with_context(|| format!("unknown server {s:?} (redis-7.0, redis-6.2, valkey-8.1, valkey-9.1)"))
}

fn parse_count(s: &str) -> Result<u64> {
    s.replace('_', "").parse().with_context(|| format!("not a count: {s:?}"))
}

/// First argument of the launcher mode (see [`launch`]).
const LAUNCH_ARG: &str = "--launch-measured";
/// Where the launcher writes the child's rusage.
const LAUNCH_ENV: &str = "PSOR_BENCHES_RUSAGE_FILE";

fn main() {
    if std::env::args().nth(1).as_deref() == Some(LAUNCH_ARG) {
        launch();
    }
    if let Err(e) = run() {
        eprintln!("psor-benches: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("benches/ has no parent")?.to_path_buf();
    let args = parse_args()?;
    let out = args.out(&root);
    let tools = Tools::find(&root, args.psor_bin.clone(), args.psor_args())?;
    if args.only.as_deref() == Some("live") {
        return live::run(&root, &tools, &args);
    }
    let n = args.keys;

    let mut report = Report::new(&root, &tools, &args)?;
    if args.only.as_deref() == Some("cluster") {
        cluster::run(&args, &tools, &mut report)?;
        return write_report(&report, &out);
    }
    {
        let floor = measure(&[], Command::new("true"))?;
        report.note(format!(
            "peak-RSS floor: `true` run through the measuring launcher reports {:.1} MiB (the launcher's own \
             RSS, which a child inherits as its starting ru_maxrss); RSS figures at this level are the floor, not the tool",
            floor.maxrss_kib as f64 / 1024.0
        ));
    }
    if args.only_replica {
        replica_rows(&args, &tools, &mut report)?;
        return write_report(&report, &out);
    }
    eprintln!("== {n} keys under {PREFIX} plus {n} others");

    let src_kind = args.server.unwrap_or_else(ServerKind::from_env);
    let dst_kind = args.target_server.unwrap_or(src_kind);
    let src = start_server_kind(src_kind)?;
    let dst = start_server_kind(dst_kind)?;
    report.redis_version = server_name(&src)?;
    if dst_kind != src_kind {
        report.redis_version =
            format!("{}; the second server (copy-cross, verify, import) {}", report.redis_version, server_name(&dst)?);
    }

    // --- scan (not destructive: both tools see the same keyspace) ---
    let pop = populate(&src, n, n)?;
    report.note(format!("populate {} keys: {:.1} s ({:.0} keys/s)", 2 * n, pop, 2.0 * n as f64 / pop));
    {
        let m = measure(&[&src], tools.psor(&src, &["scan", "--prefix", PREFIX, "--count-only"]))?;
        let j = m.json()?;
        check_eq("psor scan matched", j_u64(&j, "matched")?, n)?;
        report.row("scan", "psor", n, m);
    }
    if !args.no_peers {
        let sh = format!(
            "{cli} -p {p} --scan --pattern '{PREFIX}*' | wc -l",
            cli = tools.redis_cli.display(),
            p = src.port()
        );
        let m = measure(&[&src], shell(&sh))?;
        let count: u64 = m.stdout_str().trim().parse().context("wc -l output")?;
        check_eq("redis-cli --scan | wc -l", count, n)?;
        report.row("scan", "redis-cli --scan | wc -l", n, m);
    }

    // --- delete ---
    {
        let m = measure(&[&src], tools.psor(&src, &["delete", "--prefix", PREFIX, "--yes"]))?;
        let j = m.json()?;
        check_eq("psor delete done", j_u64(&j, "done")?, n)?;
        check_eq("psor delete failed", j_u64(&j, "failed")?, 0)?;
        check_eq("dbsize after psor delete", dbsize(&src)?, n)?;
        report.row("delete", "psor", n, m);
    }
    if !args.no_peers {
        repopulate(&src, n, n)?;
        let sh = format!(
            "{cli} -p {p} --scan --pattern '{PREFIX}*' | xargs -n 1000 {cli} -p {p} unlink > /dev/null",
            cli = tools.redis_cli.display(),
            p = src.port()
        );
        let m = measure(&[&src], shell(&sh))?;
        check_eq("dbsize after redis-cli | xargs unlink", dbsize(&src)?, n)?;
        report.row("delete", "redis-cli --scan | xargs -n 1000 unlink", n, m);
    }

    // --- copy on one server (COPY) ---
    repopulate(&src, n, n)?;
    {
        let m = measure(&[&src], tools.psor(&src, &["copy", "--prefix", PREFIX, "--to-prefix", COPY_PREFIX]))?;
        let j = m.json()?;
        check_eq("psor copy done", j_u64(&j, "done")?, n)?;
        check_eq("dbsize after psor copy", dbsize(&src)?, 3 * n)?;
        check_copied(&src, &src, n)?;
        report.row("copy", "psor", n, m);
    }
    let py = if args.no_peers { Err(anyhow::anyhow!("--no-peers")) } else { tools.python(&root) };
    match &py {
        Ok(python) => {
            repopulate(&src, n, n)?;
            let m = measure(&[&src], py_copy(python, &root, &src, &src))?;
            let j = m.json()?;
            check_eq("redis-py copy done", j_u64(&j, "done")?, n)?;
            check_eq("dbsize after redis-py copy", dbsize(&src)?, 3 * n)?;
            check_copied(&src, &src, n)?;
            report.row("copy", "redis-py pipelined DUMP/RESTORE", n, m);
        }
        Err(e) => report.note(format!("redis-py copy peer skipped: {e:#}")),
    }

    // --- copy to a second server (DUMP + PEXPIRETIME -> RESTORE ABSTTL) ---
    repopulate(&src, n, n)?;
    flush(&dst)?;
    {
        let mut cmd = tools.psor(&src, &["copy", "--prefix", PREFIX, "--to-prefix", COPY_PREFIX]);
        cmd.arg("--target").arg(dst.url());
        let m = measure(&[&src, &dst], cmd)?;
        let j = m.json()?;
        check_eq("psor copy --target done", j_u64(&j, "done")?, n)?;
        check_eq("target dbsize after psor copy --target", dbsize(&dst)?, n)?;
        check_copied(&src, &dst, n)?;
        report.row("copy-cross", "psor --target", n, m);
    }
    if let Ok(python) = &py {
        flush(&dst)?;
        let m = measure(&[&src, &dst], py_copy(python, &root, &src, &dst))?;
        let j = m.json()?;
        check_eq("redis-py cross copy done", j_u64(&j, "done")?, n)?;
        check_eq("target dbsize after redis-py cross copy", dbsize(&dst)?, n)?;
        check_copied(&src, &dst, n)?;
        report.row("copy-cross", "redis-py pipelined DUMP/RESTORE", n, m);
    }
    // --- verify: the copy on the second server against its source, full and --quick ---
    for (op, quick) in [("verify", false), ("verify-quick", true)] {
        let mut cmd = tools.psor(&src, &["verify", "--prefix", PREFIX, "--to-prefix", COPY_PREFIX]);
        cmd.arg("--target").arg(dst.url());
        if quick {
            cmd.arg("--quick");
        }
        let m = measure(&[&src, &dst], cmd)?;
        let j = m.json()?;
        check_eq("psor verify same", j_u64(&j, "same")?, n)?;
        report.row(op, if quick { "psor verify --quick" } else { "psor verify --target" }, n, m);
    }
    if let Ok(python) = &py {
        let mut c = Command::new(python);
        c.arg(root.join("benches/peers/redis_py_verify.py"))
            .args(["--src-port", &src.port().to_string(), "--dst-port", &dst.port().to_string()])
            .args(["--prefix", PREFIX, "--to-prefix", COPY_PREFIX, "--batch", "1000"]);
        let m = measure(&[&src, &dst], c)?;
        let j = m.json()?;
        check_eq("redis-py verify same", j_u64(&j, "same")?, n)?;
        report.row("verify", "redis-py pipelined compare loop", n, m);
    }
    // --- snapshots: export N keys to a file, import them into an empty server ---
    repopulate(&src, n, n)?;
    flush(&dst)?;
    {
        let file = root.join("target").join("bench-export.psnap");
        let f = file.to_str().context("a UTF-8 path")?;
        let m = measure(&[&src], tools.psor(&src, &["export", "--prefix", PREFIX, "-o", f, "--overwrite"]))?;
        check_eq("psor export keys", j_u64(&m.json()?, "keys")?, n)?;
        let file_bytes = std::fs::metadata(&file).with_context(|| format!("{}", file.display()))?.len();
        report.row("export", "psor export", n, m);
        let m = measure(&[&dst], tools.psor(&dst, &["import", f, "--yes"]))?;
        check_eq("psor import done", j_u64(&m.json()?, "done")?, n)?;
        check_eq("dbsize after psor import", dbsize(&dst)?, n)?;
        report.row("import", "psor import", n, m);
        // The server's own RDB of exactly the same keys, for the file-size comparison.
        redis::cmd("SAVE").query::<()>(&mut conn(&dst)?).context("SAVE")?;
        let rdb = dst.dir().join("dump.rdb");
        let rdb_bytes = std::fs::metadata(&rdb).with_context(|| format!("{}", rdb.display()))?.len();
        report.note(format!(
            "snapshot of {n} keys: .psnap {:.1} MiB vs the server's RDB of the same keys {:.1} MiB ({:.2}×)",
            file_bytes as f64 / 1048576.0,
            rdb_bytes as f64 / 1048576.0,
            file_bytes as f64 / rdb_bytes.max(1) as f64
        ));
        let _ = std::fs::remove_file(&file);
    }

    // --- survey of the whole keyspace (2N keys) vs a redis-cli prefix count ---
    {
        let m = measure(&[&src], tools.psor(&src, &["survey", "--depth", "2"]))?;
        check_eq("psor survey keys", j_u64(&m.json()?, "keys")?, 2 * n)?;
        report.row("survey", "psor survey --depth 2", 2 * n, m);
    }
    if !args.no_peers {
        let sh = format!(
            "{cli} -p {p} --scan | awk -F: '{{c[$1\":\"$2]++}} END {{for (k in c) n += c[k]; print n}}'",
            cli = tools.redis_cli.display(),
            p = src.port()
        );
        let m = measure(&[&src], shell(&sh))?;
        let count: u64 = m.stdout_str().trim().parse().context("awk output")?;
        check_eq("redis-cli --scan | awk", count, 2 * n)?;
        report.row("survey", "redis-cli --scan | awk (2-level counts)", 2 * n, m);
    }

    drop(dst);
    drop(src);

    // --- delete on a master with one replica: reads on the master vs on the replica ---
    if !args.skip_replica {
        replica_rows(&args, &tools, &mut report)?;
    }

    // --- 3-master cluster, and the same psor runs on 1 master ---
    if !args.skip_cluster {
        cluster::run(&args, &tools, &mut report)?;
    }

    // --- peak RSS and wall/busy at 10M keys: every bulk command once ---
    if !args.skip_10m {
        let big = args.rss_keys;
        let others = (big / 10).max(1);
        eprintln!("== 10M run: {big} keys under {PREFIX} plus {others} others");
        let s = start_server()?;
        let d = start_server()?;
        let t = populate(&s, big, others)?;
        report.note(format!(
            "10M run: populate {} keys: {:.1} s ({:.0} keys/s)",
            big + others,
            t,
            (big + others) as f64 / t
        ));
        let m = measure(&[&s], tools.psor(&s, &["scan", "--prefix", PREFIX, "--count-only"]))?;
        check_eq("psor scan matched (10M run)", j_u64(&m.json()?, "matched")?, big)?;
        report.rss_row("scan", "psor", big, m);
        // Same-server copy, then delete of those copies: the two one-server rows.
        let m = measure(&[&s], tools.psor(&s, &["copy", "--prefix", PREFIX, "--to-prefix", COPY_PREFIX]))?;
        check_eq("psor copy done (10M run)", j_u64(&m.json()?, "done")?, big)?;
        check_eq("dbsize after psor copy (10M run)", dbsize(&s)?, 2 * big + others)?;
        check_copied(&s, &s, big)?;
        report.rss_row("copy", "psor", big, m);
        let m = measure(&[&s], tools.psor(&s, &["delete", "--prefix", COPY_PREFIX, "--yes"]))?;
        check_eq("psor delete done (10M run)", j_u64(&m.json()?, "done")?, big)?;
        check_eq("dbsize after psor delete (10M run)", dbsize(&s)?, big + others)?;
        report.rss_row("delete", "psor", big, m);
        // To a second server, then verify the copy there against its source.
        let mut cmd = tools.psor(&s, &["copy", "--prefix", PREFIX, "--to-prefix", COPY_PREFIX]);
        cmd.arg("--target").arg(d.url());
        let m = measure(&[&s, &d], cmd)?;
        check_eq("psor copy --target done (10M run)", j_u64(&m.json()?, "done")?, big)?;
        check_eq("target dbsize (10M run)", dbsize(&d)?, big)?;
        check_copied(&s, &d, big)?;
        report.rss_row("copy-cross", "psor --target", big, m);
        let mut cmd = tools.psor(&s, &["verify", "--prefix", PREFIX, "--to-prefix", COPY_PREFIX]);
        cmd.arg("--target").arg(d.url());
        let m = measure(&[&s, &d], cmd)?;
        check_eq("psor verify same (10M run)", j_u64(&m.json()?, "same")?, big)?;
        report.rss_row("verify", "psor verify --target", big, m);
        // A snapshot of the prefix, imported into the emptied second server.
        flush(&d)?;
        let file = root.join("target").join("bench-export-10m.psnap");
        let f = file.to_str().context("a UTF-8 path")?;
        let m = measure(&[&s], tools.psor(&s, &["export", "--prefix", PREFIX, "-o", f, "--overwrite"]))?;
        check_eq("psor export keys (10M run)", j_u64(&m.json()?, "keys")?, big)?;
        report.rss_row("export", "psor export", big, m);
        let m = measure(&[&d], tools.psor(&d, &["import", f, "--yes"]))?;
        check_eq("psor import done (10M run)", j_u64(&m.json()?, "done")?, big)?;
        check_eq("dbsize after psor import (10M run)", dbsize(&d)?, big)?;
        report.rss_row("import", "psor import", big, m);
        let _ = std::fs::remove_file(&file);
    }

    write_report(&report, &out)
}

/// Prints the report and writes it to `out`.
fn write_report(report: &Report, out: &Path) -> Result<()> {
    let text = report.render();
    println!("{text}");
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(out, &text).with_context(|| format!("write {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// "delete N of 2N, --read-from replica" (issue 13): on a master with one replica, the same
/// delete reading the master and reading the replica; what counts is the master's busy time
/// (`INFO commandstats` usec sum on the master only), target ≤ 0.4× the master-only run's.
fn replica_rows(args: &Args, tools: &Tools, report: &mut Report) -> Result<()> {
    let n = args.keys;
    eprintln!("== --read-from replica: {n} keys under {PREFIX} plus {n} others, a master with one replica");
    let kind = args.server.unwrap_or_else(ServerKind::from_env);
    let master = start_server_kind(kind)?;
    let replica = RedisServer::replica_of(&master);
    let mut busy = Vec::new();
    let mut unlink_busy = Vec::new();
    for (i, read_from) in ["master", "replica"].into_iter().enumerate() {
        if i > 0 {
            // FLUSHALL and the new keys reach the replica too; psor waits for it to catch up.
            repopulate(&master, n, n)?;
        } else {
            populate(&master, n, n)?;
        }
        let m = measure(
            &[&master],
            tools.psor(&master, &["--read-from", read_from, "delete", "--prefix", PREFIX, "--yes"]),
        )?;
        let j = m.json()?;
        check_eq("psor delete done", j_u64(&j, "done")?, n)?;
        check_eq("psor delete failed", j_u64(&j, "failed")?, 0)?;
        check_eq("dbsize after psor delete", dbsize(&master)?, n)?;
        if read_from == "replica" {
            let read_node = j["read_from"][0]["read_node"].as_str().unwrap_or_default().to_string();
            ensure!(read_node == replica.addr(), "--read-from replica read {read_node:?}, not the replica: {j}");
        }
        busy.push(m.busy_max());
        if read_from == "replica" {
            unlink_busy.push(m.cmd_busy.first().and_then(|c| c.get("unlink")).copied().unwrap_or(0.0));
        }
        let tool = if read_from == "master" { "psor (master with 1 replica)" } else { "psor --read-from replica" };
        // Its own op, so the generic delete targets (wall/busy) are not applied to it.
        report.row("delete-replica", tool, n, m);
    }
    // The writes stay on the master whatever reads: its UNLINK time in the replica run is
    // the floor any placement of the reads leaves there.
    let unlink = unlink_busy.first().copied().unwrap_or(0.0);
    report.note(format!(
        "--read-from replica: the master's busy time {:.2} s vs {:.2} s reading the master = {} (target ≤ 0.4×); \
         of it `UNLINK` (the writes, which only the master can do) {unlink:.2} s = {} of the master-only run: the \
         floor for any reader placement; everything else left on the master {:.2} s",
        busy[1],
        busy[0],
        if busy[0] > 0.0 { format!("{:.2}×", busy[1] / busy[0]) } else { "n/a".into() },
        if busy[0] > 0.0 { format!("{:.2}×", unlink / busy[0]) } else { "n/a".into() },
        busy[1] - unlink,
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Tools

/// The binaries the runner drives; found up front so a missing one is a clear error.
struct Tools {
    psor: PathBuf,
    psor_args: Vec<String>,
    redis_cli: PathBuf,
}

impl Tools {
    fn find(root: &Path, psor_bin: Option<PathBuf>, psor_args: Vec<String>) -> Result<Tools> {
        for (bin, pkg) in [("redis-server", "redis-server"), ("redis-cli", "redis-tools")] {
            if which(bin).is_none() {
                bail!("`{bin}` is not on PATH: install it (Debian: `apt-get install {pkg}`, or run scripts/ensure-redis.sh)");
            }
        }
        let psor = match psor_bin {
            Some(p) => p,
            None => {
                eprintln!("== cargo build --release -p psor-cli");
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let st = Command::new(cargo)
                    .args(["build", "--release", "-p", "psor-cli"])
                    .current_dir(root)
                    .status()
                    .context("run cargo build")?;
                ensure!(st.success(), "cargo build --release -p psor-cli failed");
                root.join("target/release/psor")
            }
        };
        ensure!(psor.is_file(), "no psor binary at {}", psor.display());
        Ok(Tools { psor, psor_args, redis_cli: which("redis-cli").expect("checked above") })
    }

    fn psor(&self, server: &RedisServer, args: &[&str]) -> Command {
        self.psor_url(&server.url(), args)
    }

    /// psor against any PSOR URL (`redis+cluster://…` for the cluster rows).
    fn psor_url(&self, url: &str, args: &[&str]) -> Command {
        let mut c = Command::new(&self.psor);
        c.arg("--psor").arg(url).args(args).args(["--no-progress", "--json"]).args(&self.psor_args);
        c
    }

    /// The virtualenv's python with redis-py installed, created on first use.
    fn python(&self, root: &Path) -> Result<PathBuf> {
        let venv = root.join("target/bench-venv");
        let py = venv.join("bin/python");
        if !py.is_file() {
            eprintln!("== creating {} (python3 -m venv; pip install redis)", venv.display());
            let st = Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(&venv)
                .status()
                .context("python3 is missing: install python3 and python3-venv")?;
            ensure!(
                st.success(),
                "python3 -m venv failed: install python3-venv (Debian: apt-get install python3-venv)"
            );
        }
        let ok = Command::new(&py).args(["-c", "import redis"]).stderr(Stdio::null()).status()?;
        if !ok.success() {
            let st = Command::new(&py).args(["-m", "pip", "install", "-q", "redis"]).status()?;
            ensure!(st.success(), "pip install redis failed (is PyPI reachable?)");
        }
        Ok(py)
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

fn shell(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

fn py_copy(python: &Path, root: &Path, src: &RedisServer, dst: &RedisServer) -> Command {
    let mut c = Command::new(python);
    c.arg(root.join("benches/peers/redis_py_copy.py"))
        .args(["--src-port", &src.port().to_string(), "--dst-port", &dst.port().to_string()])
        .args(["--prefix", PREFIX, "--to-prefix", COPY_PREFIX, "--batch", "1000"]);
    c
}

// ---------------------------------------------------------------------------------------
// Servers and population

fn start_server() -> Result<RedisServer> {
    // The harness panics with a hint if redis-server cannot start; we checked PATH already.
    Ok(RedisServer::start())
}

fn start_server_kind(kind: ServerKind) -> Result<RedisServer> {
    ensure!(kind.is_installed(), "{} is not installed: run scripts/fetch-servers.sh", kind.display_name());
    Ok(RedisServer::builder().server(kind).start())
}

/// "Valkey 9.1.2" or "Redis 7.0.15", from the server itself.
fn server_name(s: &RedisServer) -> Result<String> {
    match info_field(s, "server", "valkey_version") {
        Ok(v) => Ok(format!("Valkey {v}")),
        Err(_) => Ok(format!("Redis {}", info_field(s, "server", "redis_version")?)),
    }
}

fn conn(s: &RedisServer) -> Result<redis::Connection> {
    let c = s.admin_conn();
    c.set_read_timeout(Some(Duration::from_secs(600)))?;
    Ok(c)
}

fn dbsize(s: &RedisServer) -> Result<u64> {
    Ok(redis::cmd("DBSIZE").query(&mut conn(s)?)?)
}

fn flush(s: &RedisServer) -> Result<()> {
    redis::cmd("FLUSHALL").arg("SYNC").exec(&mut conn(s)?)?;
    Ok(())
}

fn repopulate(s: &RedisServer, n: u64, others: u64) -> Result<()> {
    flush(s)?;
    populate(s, n, others)?;
    Ok(())
}

/// Key `i` under `prefix`.
fn key(prefix: &str, i: u64) -> String {
    format!("{prefix}obj:{i:09}")
}

/// Writes `n` keys under [`PREFIX`] and `others` keys elsewhere as raw RESP over one
/// socket, replies drained by a second thread; returns seconds. Every 7th key is a hash,
/// every 10th has a TTL; string values are 20..100 bytes.
fn populate(s: &RedisServer, n: u64, others: u64) -> Result<f64> {
    populate_to(&[s], &|_| 0, n, others)
}

/// [`populate`] over several servers: key `k` goes to `targets[route(k)]` (a cluster
/// master, by hash slot), one socket per server written from this thread, one reply
/// reader thread per socket. Returns seconds.
fn populate_to(targets: &[&RedisServer], route: &dyn Fn(&[u8]) -> usize, n: u64, others: u64) -> Result<f64> {
    let t0 = Instant::now();
    let all_keys = || {
        (0..n).map(|i| (key(PREFIX, i), i)).chain((0..others).map(|i| (key(OTHER_PREFIXES[(i % 2) as usize], i), i)))
    };
    // Replies each reader must drain: counted up front so every reader knows when it is done.
    let mut expected = vec![0u64; targets.len()];
    for (k, i) in all_keys() {
        expected[route(k.as_bytes())] += commands_for(i);
    }
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for (s, &want) in targets.iter().zip(&expected) {
        let sock = TcpStream::connect(s.addr()).with_context(|| format!("connect {}", s.addr()))?;
        sock.set_nodelay(true)?;
        let rd = sock.try_clone()?;
        let addr = s.addr();
        readers.push(std::thread::spawn(move || -> Result<()> {
            let mut r = BufReader::with_capacity(1 << 20, rd);
            let mut line = Vec::with_capacity(64);
            for seen in 0..want {
                line.clear();
                if r.read_until(b'\n', &mut line)? == 0 {
                    bail!("{addr} closed the connection after {seen} replies");
                }
                if line.first() == Some(&b'-') {
                    bail!("populate: {addr}: server error {}", String::from_utf8_lossy(&line).trim_end());
                }
            }
            Ok(())
        }));
        writers.push(BufWriter::with_capacity(1 << 20, sock));
    }
    let emit = |w: &mut BufWriter<TcpStream>, k: &str, i: u64| -> Result<()> {
        let ttl = i.is_multiple_of(10);
        if i % 7 == 3 {
            let v = value(i);
            resp(w, &[b"HSET", k.as_bytes(), b"name", v.as_bytes(), b"rev", i.to_string().as_bytes()])?;
            if ttl {
                resp(w, &[b"EXPIRE", k.as_bytes(), TTL_SECS.to_string().as_bytes()])?;
            }
        } else if ttl {
            resp(w, &[b"SET", k.as_bytes(), value(i).as_bytes(), b"EX", TTL_SECS.to_string().as_bytes()])?;
        } else {
            resp(w, &[b"SET", k.as_bytes(), value(i).as_bytes()])?;
        }
        Ok(())
    };
    for (k, i) in all_keys() {
        emit(&mut writers[route(k.as_bytes())], &k, i)?;
    }
    for w in &mut writers {
        w.flush()?;
    }
    for r in readers {
        r.join().map_err(|_| anyhow::anyhow!("populate reader panicked"))??;
    }
    let mut got = 0;
    for s in targets {
        got += dbsize(s)?;
    }
    ensure!(got >= n + others, "populate: dbsize {got} < {}", n + others);
    let secs = t0.elapsed().as_secs_f64();
    eprintln!("   populated {} keys on {} server(s) in {secs:.1} s", n + others, targets.len());
    Ok(secs)
}

/// How many commands [`populate`] sends for key `i`: a hash with a TTL takes HSET + EXPIRE.
fn commands_for(i: u64) -> u64 {
    if i % 7 == 3 && i.is_multiple_of(10) {
        2
    } else {
        1
    }
}

/// A value of 20..100 bytes, different per key.
fn value(i: u64) -> String {
    let len = 20 + (i.wrapping_mul(2_654_435_761) % 81) as usize;
    let mut v = format!("v{i}:");
    while v.len() < len {
        v.push_str("pac-data-");
    }
    v.truncate(len);
    v
}

/// Writes one command in RESP (`redis::pack_command`).
fn resp(w: &mut impl Write, parts: &[&[u8]]) -> std::io::Result<()> {
    let args: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
    w.write_all(&redis::pack_command(&args))
}

/// Spot-checks copies: a string, a hash and a key with a TTL carry over (value and
/// absolute expiry), sampled across the range.
fn check_copied(src: &RedisServer, dst: &RedisServer, n: u64) -> Result<()> {
    check_copied_on(&mut conn(src)?, &mut conn(dst)?, n)
}

/// [`check_copied`] over any connections (a cluster connection routes each key to its master).
fn check_copied_on(s: &mut impl redis::ConnectionLike, d: &mut impl redis::ConnectionLike, n: u64) -> Result<()> {
    let samples: Vec<u64> = [0, 1, 3, 10, 17, n / 2, n - 1].into_iter().filter(|&i| i < n).collect();
    for i in samples {
        let (a, b) = (key(PREFIX, i), key(COPY_PREFIX, i));
        let va = content(s, &a)?;
        ensure!(!va.is_empty(), "{a} is missing on the source");
        ensure!(va == content(d, &b)?, "copy of {a} -> {b} differs");
        let ta: i64 = redis::cmd("PEXPIRETIME").arg(&a).query(s)?;
        let tb: i64 = redis::cmd("PEXPIRETIME").arg(&b).query(d)?;
        ensure!(ta == tb, "expiry of {a} ({ta}) != {b} ({tb})");
        ensure!((i % 10 == 0) == (ta > 0), "{a}: TTL expected {}", i % 10 == 0);
    }
    Ok(())
}

/// A key's type and content, comparable across servers (DUMP bytes are not: a hashtable's
/// iteration order differs between a hash and its copy).
fn content(c: &mut impl redis::ConnectionLike, k: &str) -> Result<Vec<Vec<u8>>> {
    let ty: String = redis::cmd("TYPE").arg(k).query(c)?;
    let mut v: Vec<Vec<u8>> = match ty.as_str() {
        "string" => vec![redis::cmd("GET").arg(k).query(c)?],
        "hash" => {
            let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL").arg(k).query(c)?;
            pairs.sort();
            pairs.into_iter().flat_map(|(f, v)| [f, v]).collect()
        }
        "none" => return Ok(Vec::new()),
        other => bail!("{k}: unexpected type {other}"),
    };
    v.insert(0, ty.into_bytes());
    Ok(v)
}

fn check_eq(what: &str, got: u64, want: u64) -> Result<()> {
    ensure!(got == want, "{what}: got {got}, expected {want}");
    Ok(())
}

fn info_field(s: &RedisServer, section: &str, field: &str) -> Result<String> {
    let info: String = redis::cmd("INFO").arg(section).query(&mut conn(s)?)?;
    info.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_owned())
        .with_context(|| format!("INFO {section} has no {field}"))
}

// ---------------------------------------------------------------------------------------
// Measurement

/// Launcher mode: `psor-benches --launch-measured PROG ARGS…` runs PROG with inherited
/// stdio, waits for it with `wait4`, writes "maxrss_kib utime_s stime_s" to the file named by
/// `$PSOR_BENCHES_RUSAGE_FILE`, and exits with PROG's status.
///
/// Why: on Linux a child's `ru_maxrss` starts at the RSS high-water mark of the process
/// that spawned it (exec keeps the old address space's peak in the child's accounting), so
/// a child spawned straight from the runner reports at least the runner's own RSS. The
/// launcher is a fresh process with a small RSS, so the tool's number is its own (floor:
/// the launcher's RSS, reported in the notes).
fn launch() -> ! {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(2).collect();
    let code = (|| -> Result<i32> {
        let (prog, rest) = argv.split_first().context("--launch-measured needs a program")?;
        let child = Command::new(prog).args(rest).spawn().with_context(|| format!("spawn {prog:?}"))?;
        let (status, ru) = wait4_child(child)?;
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        if let Some(f) = std::env::var_os(LAUNCH_ENV) {
            std::fs::write(&f, format!("{} {} {}\n", ru.ru_maxrss, tv(ru.ru_utime), tv(ru.ru_stime)))?;
        }
        Ok(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) })
    })();
    match code {
        Ok(c) => std::process::exit(c),
        Err(e) => {
            eprintln!("psor-benches launcher: {e:#}");
            std::process::exit(127);
        }
    }
}

/// Waits for `child` with `wait4`: its wait status and rusage (the child plus its reaped
/// descendants).
fn wait4_child(child: std::process::Child) -> Result<(libc::c_int, libc::rusage)> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zero is a valid value for every field.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; status and ru are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("wait4");
        }
    }
    // The child is reaped; `child` must not be waited on again (dropping it does not wait).
    drop(child);
    Ok((status, ru))
}

/// `cmd` run through the launcher (see [`launch`]), reporting into `rusage_file`.
fn launched(cmd: &Command, rusage_file: &Path) -> Result<Command> {
    let mut c = Command::new(std::env::current_exe().context("current_exe")?);
    c.arg(LAUNCH_ARG).arg(cmd.get_program()).args(cmd.get_args()).env(LAUNCH_ENV, rusage_file);
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    Ok(c)
}

/// What one measured run gives.
struct Measured {
    wall: f64,
    /// Per server: sum of `usec` over `INFO commandstats`, seconds.
    busy: Vec<f64>,
    /// Per server: main-thread CPU (user + sys) during the run, seconds.
    server_cpu: Vec<f64>,
    /// Peak RSS of the child (for `sh -c`: the largest process of the pipeline), KiB.
    maxrss_kib: i64,
    /// User + system CPU of the child and its reaped children, seconds.
    client_cpu: f64,
    /// Per server: each command's `usec` from `INFO commandstats`, seconds.
    cmd_busy: Vec<BTreeMap<String, f64>>,
    stdout: Vec<u8>,
}

impl Measured {
    fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn json(&self) -> Result<serde_json::Value> {
        let text = self.stdout_str();
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        serde_json::from_str(last).with_context(|| format!("not JSON: {text:?}"))
    }

    fn busy_max(&self) -> f64 {
        self.busy.iter().copied().fold(0.0, f64::max)
    }

    /// The lowest wall/busy any schedule of this run's measured CPU could reach on `cores`
    /// cores: a server's main thread runs on one core at a time, so the wall is at least the
    /// largest server's CPU; and all the CPU used, `server_cpu` summed (+ `client_cpu`), takes
    /// at least that over `cores`. `(servers and psor, servers only)`; the second is what no
    /// client doing the same server work could go under.
    fn cpu_floor(&self, cores: usize) -> (f64, f64) {
        let busy = self.busy_max();
        if busy <= 0.0 || cores == 0 {
            return (0.0, 0.0);
        }
        let one = self.server_cpu.iter().copied().fold(0.0, f64::max);
        let servers: f64 = self.server_cpu.iter().sum();
        let cores = cores as f64;
        let only = one.max(servers / cores) / busy;
        (only.max((servers + self.client_cpu) / cores / busy).max(1.0), only.max(1.0))
    }
}

fn j_u64(j: &serde_json::Value, field: &str) -> Result<u64> {
    j.get(field).and_then(|v| v.as_u64()).with_context(|| format!("no {field} in {j}"))
}

fn main_thread_cpu(s: &RedisServer) -> Result<f64> {
    let u: f64 = info_field(s, "cpu", "used_cpu_user_main_thread")?.parse()?;
    let y: f64 = info_field(s, "cpu", "used_cpu_sys_main_thread")?.parse()?;
    Ok(u + y)
}

/// The server's busy time (the `usec` sum over `INFO commandstats`) and each command's share.
fn commandstats_busy(s: &RedisServer) -> Result<(f64, BTreeMap<String, f64>)> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut conn(s)?)?;
    let mut usec = 0u64;
    let mut calls = Vec::new();
    let mut per_cmd = BTreeMap::new();
    for l in info.lines().filter(|l| l.starts_with("cmdstat_")) {
        let v = l.split([':', ',']).find_map(|f| f.strip_prefix("usec=")).with_context(|| format!("no usec in {l}"))?;
        let v = v.parse::<u64>()?;
        usec += v;
        let name = l.trim_start_matches("cmdstat_").split(':').next().unwrap_or("");
        per_cmd.insert(name.to_string(), v as f64 / 1e6);
        if let Some(c) = l.split([':', ',']).find_map(|f| f.strip_prefix("calls=")) {
            calls.push(format!("{name}={c}"));
        }
    }
    // stderr only: which commands the tool made the server run, and how many.
    eprintln!("   {}: calls {}", s.addr(), calls.join(" "));
    Ok((usec as f64 / 1e6, per_cmd))
}

/// Runs `cmd` to the end: CONFIG RESETSTAT on `servers` first, commandstats and CPU after,
/// the child's peak RSS from `wait4`. A non-zero exit is an error carrying its stderr.
fn measure(servers: &[&RedisServer], cmd: Command) -> Result<Measured> {
    let desc = format!("{:?}", cmd);
    let rusage_file = std::env::temp_dir().join(format!("psor-benches-rusage-{}", std::process::id()));
    let _ = std::fs::remove_file(&rusage_file);
    let mut cmd = launched(&cmd, &rusage_file)?;
    eprintln!("   run {}", short(&desc));
    let mut cpu0 = Vec::new();
    for s in servers {
        redis::cmd("CONFIG").arg("RESETSTAT").exec(&mut conn(s)?)?;
        cpu0.push(main_thread_cpu(s)?);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("spawn {desc}"))?;
    let mut err = child.stderr.take().context("stderr")?;
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut stdout = Vec::new();
    child.stdout.take().context("stdout")?.read_to_end(&mut stdout)?;
    let (status, _launcher_ru) = wait4_child(child)?;
    let wall = t0.elapsed().as_secs_f64();
    let stderr = err_t.join().unwrap_or_default();
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    ensure!(exited_ok, "{} failed (wait status {status}):\n{}", short(&desc), String::from_utf8_lossy(&stderr));
    let mut busy = Vec::new();
    let mut cmd_busy = Vec::new();
    let mut server_cpu = Vec::new();
    for (s, c0) in servers.iter().zip(cpu0) {
        let (b, per_cmd) = commandstats_busy(s)?;
        busy.push(b);
        cmd_busy.push(per_cmd);
        server_cpu.push(main_thread_cpu(s)? - c0);
    }
    let ru = std::fs::read_to_string(&rusage_file)
        .with_context(|| format!("launcher wrote no {}", rusage_file.display()))?;
    let _ = std::fs::remove_file(&rusage_file);
    let f: Vec<f64> = ru.split_whitespace().map(str::parse).collect::<Result<_, _>>().context("launcher rusage")?;
    ensure!(f.len() == 3, "launcher rusage {ru:?}");
    let m = Measured { wall, busy, server_cpu, maxrss_kib: f[0] as i64, client_cpu: f[1] + f[2], cmd_busy, stdout };
    eprintln!("   wall {:.2} s, busy {:.2} s, peak RSS {:.1} MiB", m.wall, m.busy_max(), m.maxrss_kib as f64 / 1024.0);
    Ok(m)
}

fn short(s: &str) -> String {
    if s.len() > 160 {
        format!("{}…", &s[..s.char_indices().nth(160).map_or(s.len(), |(i, _)| i)])
    } else {
        s.to_owned()
    }
}

// ---------------------------------------------------------------------------------------
// Report

struct Row {
    op: &'static str,
    tool: String,
    keys: u64,
    m: Measured,
}

struct Report {
    command: String,
    nproc: usize,
    uname: String,
    loadavg: String,
    psor_version: String,
    redis_version: String,
    rows: Vec<Row>,
    rss_rows: Vec<Row>,
    /// The cluster section: rows measured on 1 server (scaling baseline) or 3 masters.
    cluster_rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    fn new(root: &Path, tools: &Tools, _args: &Args) -> Result<Report> {
        let out = |prog: &OsStr, args: &[&str]| -> String {
            Command::new(prog)
                .args(args)
                .current_dir(root)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        };
        let argv: Vec<String> = std::env::args().skip(1).collect();
        Ok(Report {
            command: format!(
                "cargo run --release -p psor-benches --{}",
                argv.iter().map(|a| format!(" {a}")).collect::<String>()
            ),
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            uname: out(OsStr::new("uname"), &["-srm"]),
            loadavg: std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_owned(),
            psor_version: out(tools.psor.as_os_str(), &["--version"]),
            redis_version: String::new(),
            rows: Vec::new(),
            rss_rows: Vec::new(),
            cluster_rows: Vec::new(),
            notes: Vec::new(),
        })
    }

    fn row(&mut self, op: &'static str, tool: &str, keys: u64, m: Measured) {
        self.rows.push(Row { op, tool: tool.to_owned(), keys, m });
    }

    fn rss_row(&mut self, op: &'static str, tool: &str, keys: u64, m: Measured) {
        self.rss_rows.push(Row { op, tool: tool.to_owned(), keys, m });
    }

    fn cluster_row(&mut self, op: &'static str, tool: &str, keys: u64, m: Measured) {
        self.cluster_rows.push(Row { op, tool: tool.to_owned(), keys, m });
    }

    fn note(&mut self, s: String) {
        eprintln!("   {s}");
        self.notes.push(s);
    }

    fn table(rows: &[Row]) -> String {
        let mut t = String::from(
            "| op | tool | keys | wall s | server busy s | wall/busy | server CPU s | wall/CPU | keys/s | peak RSS MiB | client CPU s |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in rows {
            let m = &r.m;
            let busy = if m.busy.len() > 1 {
                format!("{:.2} (src {:.2} / dst {:.2})", m.busy_max(), m.busy[0], m.busy[1])
            } else {
                format!("{:.2}", m.busy_max())
            };
            let cpu_max = m.server_cpu.iter().copied().fold(0.0, f64::max);
            let cpu = if m.server_cpu.len() > 1 {
                format!("{:.2} (src {:.2} / dst {:.2})", cpu_max, m.server_cpu[0], m.server_cpu[1])
            } else {
                format!("{cpu_max:.2}")
            };
            let _ = writeln!(
                t,
                "| {} | {} | {} | {:.2} | {} | {} | {} | {} | {:.0} | {:.1} | {:.2} |",
                r.op,
                r.tool.replace('|', "\\|"),
                r.keys,
                m.wall,
                busy,
                ratio(m.wall, m.busy_max()),
                cpu,
                ratio(m.wall, cpu_max),
                r.keys as f64 / m.wall,
                m.maxrss_kib as f64 / 1024.0,
                m.client_cpu,
            );
        }
        t
    }

    /// The cluster section's rows: busy as the SUM over masters (total server work) and as
    /// the MAX (the critical path: the masters work in parallel).
    fn cluster_table(rows: &[Row]) -> String {
        let mut t = String::from(
            "| op | tool | masters | keys | wall s | busy sum s | wall/busy-sum | busy per master s | wall/max-busy | \
             server CPU sum s | cores used | keys/s | peak RSS MiB | client CPU s |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in rows {
            let m = &r.m;
            let busy_sum: f64 = m.busy.iter().sum();
            let cpu_sum: f64 = m.server_cpu.iter().sum();
            let per = m.busy.iter().map(|b| format!("{b:.2}")).collect::<Vec<_>>().join(" / ");
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {:.2} | {:.2} | {} | {} | {} | {:.2} | {:.2} | {:.0} | {:.1} | {:.2} |",
                r.op,
                r.tool.replace('|', "\\|"),
                m.busy.len(),
                r.keys,
                m.wall,
                busy_sum,
                ratio(m.wall, busy_sum),
                per,
                ratio(m.wall, m.busy_max()),
                cpu_sum,
                (cpu_sum + m.client_cpu) / m.wall,
                r.keys as f64 / m.wall,
                m.maxrss_kib as f64 / 1024.0,
                m.client_cpu,
            );
        }
        t
    }

    /// psor on 1 master vs 3 masters, same keys: keys/s and where the CPU went.
    fn scaling(&self) -> String {
        let mut t = String::from(
            "| op | masters | keys | wall s | keys/s | vs 1 master | max busy s | busy sum s | server CPU sum s | \
             psor CPU s | cores used |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        let mut lines = String::new();
        for op in ["delete", "copy"] {
            let psor = |masters: usize| {
                self.cluster_rows.iter().find(|r| r.op == op && r.tool == "psor" && r.m.busy.len() == masters)
            };
            let Some(one) = psor(1) else { continue };
            for r in [Some(one), psor(3)].into_iter().flatten() {
                let m = &r.m;
                let cpu_sum: f64 = m.server_cpu.iter().sum();
                let _ = writeln!(
                    t,
                    "| {op} | {} | {} | {:.2} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} of {} |",
                    m.busy.len(),
                    r.keys,
                    m.wall,
                    r.keys as f64 / m.wall,
                    ratio(one.m.wall, m.wall),
                    m.busy_max(),
                    m.busy.iter().sum::<f64>(),
                    cpu_sum,
                    m.client_cpu,
                    (cpu_sum + m.client_cpu) / m.wall,
                    self.nproc,
                );
            }
            if let Some(three) = psor(3) {
                let _ = writeln!(
                    lines,
                    "- {op}: 3 masters run at **{}** the keys/s of 1 master; the cluster run kept {:.2} of {} \
                     cores busy (server main threads + psor), the 1-master run {:.2}",
                    ratio(one.m.wall, three.m.wall),
                    (three.m.server_cpu.iter().sum::<f64>() + three.m.client_cpu) / three.m.wall,
                    self.nproc,
                    (one.m.server_cpu.iter().sum::<f64>() + one.m.client_cpu) / one.m.wall,
                );
            }
        }
        t.push('\n');
        t.push_str(&lines);
        t
    }

    fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# psor benchmark results\n");
        let _ = writeln!(s, "- command: `{}`", self.command);
        let _ = writeln!(s, "- machine: {} cores (nproc), {}", self.nproc, self.uname);
        let _ = writeln!(s, "- load average at start: {}", self.loadavg);
        let _ = writeln!(s, "- server: {} (one throwaway server per run; a second for copy-cross)", self.redis_version);
        let _ = writeln!(s, "- {}", self.psor_version);
        let _ = writeln!(
            s,
            "- keyspace: N keys under `{PREFIX}` plus N others (`{}`, `{}`); every 7th key a hash, \
             every 10th with a TTL, strings of 20–100 bytes; re-populated before every destructive run\n",
            OTHER_PREFIXES[0], OTHER_PREFIXES[1]
        );
        let _ = writeln!(s, "## Side by side\n");
        s.push_str(&Self::table(&self.rows));
        let _ = writeln!(s, "\n## psor vs peer (peer wall / psor wall; >1 means psor is faster)\n");
        let mut by_op: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
        for r in &self.rows {
            by_op.entry(r.op).or_default().push(r);
        }
        let target = |op: &str| match op {
            "delete" | "copy" => "target ≥ 5×",
            "copy-cross" => "copy's target ≥ 5× carried over",
            "verify" => "target ≥ 5×",
            _ => "no target",
        };
        for (op, rows) in &by_op {
            let psor = rows.iter().find(|r| r.tool.starts_with("psor"));
            for peer in rows.iter().filter(|r| !r.tool.starts_with("psor")) {
                if let Some(p) = psor {
                    let _ = writeln!(
                        s,
                        "- {op}: {} / psor = **{}** ({}); ceiling for any client with psor's \
                         server work (peer wall / psor server busy) = {}",
                        peer.tool,
                        ratio(peer.m.wall, p.m.wall),
                        target(op),
                        ratio(peer.m.wall, p.m.busy_max()),
                    );
                }
            }
        }
        let _ = writeln!(s, "\n## Targets (stated, not asserted: the machine is shared and noisy)\n");
        for r in self.rows.iter().chain(&self.rss_rows).filter(|r| r.tool.starts_with("psor")) {
            if matches!(r.op, "delete" | "copy" | "copy-cross" | "verify") {
                let wb = r.m.wall / r.m.busy_max();
                // The targets of issues 12 and 13.
                let bound = match r.op {
                    "verify" => 1.5,
                    "copy-cross" => 1.3,
                    _ => 1.1,
                };
                let _ = writeln!(
                    s,
                    "- {} {} keys wall/busy = {} (target ≤ {bound}× the busier server's busy time): {}{}",
                    r.op,
                    r.keys,
                    ratio(r.m.wall, r.m.busy_max()),
                    if wb <= bound { "met" } else { "NOT met" },
                    floor_note(&r.m, self.nproc, bound),
                );
            }
        }
        for r in self.rows.iter().chain(&self.rss_rows).filter(|r| r.tool.starts_with("psor")) {
            let mib = r.m.maxrss_kib as f64 / 1024.0;
            let _ = writeln!(
                s,
                "- {} {} keys peak RSS = {mib:.1} MiB (target ≤ 64 MiB): {}",
                r.op,
                r.keys,
                if mib <= 64.0 { "met" } else { "NOT met" }
            );
        }
        for r in self.cluster_rows.iter().filter(|r| r.tool.starts_with("psor") && r.m.busy.len() > 1) {
            let mib = r.m.maxrss_kib as f64 / 1024.0;
            let wb = r.m.wall / r.m.busy_max();
            // Issue 13: the busiest master's wall/busy ≤ 1.3× for delete, ≤ 1.5× for copy.
            let bound = if r.op == "copy" { 1.5 } else { 1.3 };
            let _ = writeln!(
                s,
                "- cluster {} {} keys: wall/max-busy = {} (target ≤ {bound}×): {}{}; peak RSS = {mib:.1} MiB \
                 (target ≤ 64 MiB): {}",
                r.op,
                r.keys,
                ratio(r.m.wall, r.m.busy_max()),
                if wb <= bound { "met" } else { "NOT met" },
                floor_note(&r.m, self.nproc, bound),
                if mib <= 64.0 { "met" } else { "NOT met" }
            );
        }
        if !self.cluster_rows.is_empty() {
            let _ = writeln!(
                s,
                "\n## Cluster (3 masters, no replicas) and the same psor runs on 1 master\n\n\
                 busy sum = total server work over all masters; wall/max-busy = wall / the busiest \
                 master's busy time, the cluster's \"is the server the bottleneck\" ratio (1.0: the \
                 busiest master executed commands the whole run); cores used = (server main-thread \
                 CPU summed over masters + client CPU) / wall.\n"
            );
            s.push_str(&Self::cluster_table(&self.cluster_rows));
            let _ = writeln!(s, "\n### Scaling: psor on 1 master vs 3 masters (same keys, same machine)\n");
            s.push_str(&self.scaling());
        }
        if !self.rss_rows.is_empty() {
            let _ = writeln!(
                s,
                "\n## 10M run: every bulk command once at --rss-keys (prefix keys plus a tenth as many others)\n"
            );
            s.push_str(&Self::table(&self.rss_rows));
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "\n## Notes\n");
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        let _ = writeln!(
            s,
            "\nserver busy = sum of `usec` over `INFO commandstats` after `CONFIG RESETSTAT` (command \
             execution only); server CPU = main-thread user+sys CPU from `INFO cpu` (includes \
             socket I/O and parsing). wall/busy 1.0 is the physical limit; wall/CPU near 1 means \
             the server's thread was saturated. Peer RSS for `sh -c` pipelines is the largest \
             single process (wait4 reports the max over reaped descendants)."
        );
        s
    }
}

/// What the run's own CPU says about a wall/busy target on this machine (see
/// [`Measured::cpu_floor`]): empty when met or when the floors leave room for it.
fn floor_note(m: &Measured, cores: usize, bound: f64) -> String {
    if m.wall / m.busy_max() <= bound {
        return String::new();
    }
    let (all, servers) = m.cpu_floor(cores);
    if servers > bound {
        format!(
            " — cannot be met on {cores} cores with this server work: the servers' main threads alone \
             used {} s of CPU, at least {:.2} s of wall = {servers:.2}× the busy time before psor runs at \
             all (with psor's {:.2} s of CPU: {all:.2}×)",
            m.server_cpu.iter().map(|c| format!("{c:.2}")).collect::<Vec<_>>().join(" + "),
            servers * m.busy_max(),
            m.client_cpu,
        )
    } else {
        format!(
            " (floor on {cores} cores from this run's CPU: servers only {servers:.2}×, servers and \
             psor {all:.2}×)"
        )
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "n/a".into()
    }
}
