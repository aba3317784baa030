//! The "live-safe" rows (`--only live`): what a bulk delete costs another client of the same
//! server. During the incompatible upgrade `rem-old-pac` removes the old PAC's keys while the
//! new PAC runs on the same Redis; this measures that situation.
//!
//! A probe thread on its own connection runs one `GET` or `SET` (alternating) of a key outside
//! the prefix every millisecond and records each round trip. The probe runs during an idle
//! baseline and during `psor delete` of the prefix (the engine's delete, the one
//! `rem-old-pac` runs), unpaced and with `--max-latency 2`; a `--read-from replica` row is
//! added when the psor binary has that flag. Each row reports the probe's p50/p99/max and
//! psor's keys/s, with the load average beside it: on a shared machine compare rows of one
//! run, not runs.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use psor_tests::kind::ServerKind;

use super::{dbsize, flush, j_u64, populate, Args, Tools, PREFIX};

/// The probe's key: outside every prefix psor works on.
const PROBE_KEY: &str = "probe:live";
/// How long the idle baseline probes.
const IDLE: Duration = Duration::from_secs(3);

/// One probe run's round trips, microseconds.
struct Probe {
    samples: Vec<u32>,
}

impl Probe {
    fn pct(&self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return f64::NAN;
        }
        let i = ((self.samples.len() as f64 - 1.0) * p).round() as usize;
        self.samples[i] as f64 / 1000.0
    }
    fn max(&self) -> f64 {
        self.samples.last().map_or(f64::NAN, |&m| m as f64 / 1000.0)
    }
}

/// Starts the probe on `addr`; it runs until `stop` is set and returns its sorted samples.
fn start_probe(server: &psor_tests::RedisServer, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Result<Probe>> {
    let client = server.admin_client();
    std::thread::spawn(move || -> Result<Probe> {
        let mut con = client.get_connection_with_timeout(Duration::from_secs(5))?;
        con.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut samples = Vec::with_capacity(100_000);
        let start = Instant::now();
        let mut tick = 0u64;
        while !stop.load(Relaxed) {
            tick += 1;
            // A fixed schedule: a slow reply is not followed by a longer gap (that would
            // hide the tail), the next probe goes as soon as it is due.
            let due = start + Duration::from_millis(tick);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let t = Instant::now();
            if tick.is_multiple_of(2) {
                redis::cmd("SET").arg(PROBE_KEY).arg(tick).exec(&mut con)?;
            } else {
                let _: Option<String> = redis::cmd("GET").arg(PROBE_KEY).query(&mut con)?;
            }
            samples.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
        samples.sort_unstable();
        Ok(Probe { samples })
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

struct Row {
    name: String,
    probe: Probe,
    keys_per_s: Option<f64>,
    paused: Option<f64>,
    /// Server side: mean µs per UNLINK and per SCAN, longest single command in ms (the
    /// latency monitor, 1 ms threshold; 0 when none reached it).
    server: Option<(f64, f64, u64)>,
    load: String,
}

/// Resets the server's command statistics and latency monitor before a run.
fn reset_server_stats(server: &psor_tests::RedisServer) -> Result<()> {
    let mut c = super::conn(server)?;
    redis::cmd("CONFIG").arg("SET").arg("latency-monitor-threshold").arg(1).exec(&mut c)?;
    redis::cmd("CONFIG").arg("RESETSTAT").exec(&mut c)?;
    redis::cmd("LATENCY").arg("RESET").exec(&mut c)?;
    Ok(())
}

/// (mean µs per UNLINK, mean µs per SCAN, longest command ms) since [`reset_server_stats`].
fn server_stats(server: &psor_tests::RedisServer) -> Result<(f64, f64, u64)> {
    let mut c = super::conn(server)?;
    let stats: String = redis::cmd("INFO").arg("commandstats").query(&mut c)?;
    let per_call = |name: &str| {
        stats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
            .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("usec_per_call=")))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let latest: Vec<(String, u64, u64, u64)> = redis::cmd("LATENCY").arg("LATEST").query(&mut c)?;
    let longest = latest.iter().filter(|e| e.0 == "command").map(|e| e.3).max().unwrap_or(0);
    Ok((per_call("unlink"), per_call("scan"), longest))
}

/// Runs the probe while `cmd` runs (or for [`IDLE`] when `None`); returns the probe and
/// psor's JSON outcome.
fn probed(server: &psor_tests::RedisServer, cmd: Option<Command>) -> Result<(Probe, Option<serde_json::Value>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let probe = start_probe(server, stop.clone());
    let out = match cmd {
        None => {
            std::thread::sleep(IDLE);
            None
        }
        Some(mut c) => {
            let out = c.output().context("run psor")?;
            ensure!(out.status.success(), "psor failed: {}", String::from_utf8_lossy(&out.stderr));
            let text = String::from_utf8_lossy(&out.stdout);
            let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            Some(serde_json::from_str(last).with_context(|| format!("not JSON: {text:?}"))?)
        }
    };
    stop.store(true, Relaxed);
    let probe = probe.join().map_err(|_| anyhow::anyhow!("probe panicked"))??;
    Ok((probe, out))
}

/// The live-safe rows; writes their table to stdout and to `--out`.
pub(crate) fn run(root: &std::path::Path, tools: &Tools, args: &Args) -> Result<()> {
    let n = args.keys;
    let kind = args.server.unwrap_or_else(ServerKind::from_env);
    ensure!(kind.is_installed(), "{} is not installed: run scripts/fetch-servers.sh", kind.display_name());
    let server = psor_tests::RedisServer::builder().server(kind).start();
    let help = Command::new(&tools.psor).arg("--help").output()?;
    let has_read_from = String::from_utf8_lossy(&help.stdout).contains("--read-from");
    let mut runs: Vec<(&str, Vec<&str>)> = vec![("unpaced", vec![]), ("--max-latency 2", vec!["--max-latency", "2"])];
    if has_read_from {
        runs.push(("--read-from replica", vec!["--read-from", "replica"]));
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut notes = Vec::new();
    if !has_read_from {
        notes.push("`--read-from replica` row skipped: this psor has no `--read-from`".to_string());
    }
    for round in 1..=args.live_repeats {
        eprintln!("== live-safe round {round}: idle");
        let (probe, _) = probed(&server, None)?;
        rows.push(Row {
            name: format!("idle (round {round})"),
            probe,
            keys_per_s: None,
            paused: None,
            server: None,
            load: loadavg(),
        });
        for (name, extra) in &runs {
            flush(&server)?;
            populate(&server, n, n)?;
            let load = loadavg();
            eprintln!("== live-safe round {round}: delete {n} keys, {name} (load {load})");
            let mut cmd = tools.psor(&server, &["delete", "--prefix", PREFIX, "--yes"]);
            cmd.args(extra);
            reset_server_stats(&server)?;
            let (probe, out) = probed(&server, Some(cmd))?;
            let stats = server_stats(&server)?;
            let j = out.context("no outcome")?;
            let done = j_u64(&j, "done")?;
            ensure!(done == n, "{name}: deleted {done} of {n}");
            ensure!(dbsize(&server)? == n + 1, "{name}: keys outside the prefix were touched");
            let secs = j["seconds"].as_f64().context("seconds")?;
            let paused = j["paused_seconds"].as_f64();
            rows.push(Row {
                name: format!("{name} (round {round})"),
                probe,
                keys_per_s: Some(n as f64 / secs),
                paused,
                server: Some(stats),
                load,
            });
        }
    }
    let mut md = String::new();
    use std::fmt::Write as _;
    writeln!(md, "## live-safe: a probe (GET/SET every 1 ms) while psor deletes {n} keys ({} others)\n", n)?;
    writeln!(
        md,
        "| run | probe p50 ms | probe p99 ms | probe max ms | probes | psor keys/s | paused s | server µs/UNLINK | \
         server µs/SCAN | longest command ms | load avg |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")?;
    for r in &rows {
        writeln!(
            md,
            "| {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.probe.pct(0.50),
            r.probe.pct(0.99),
            r.probe.max(),
            r.probe.samples.len(),
            r.keys_per_s.map_or("-".into(), |k| format!("{k:.0}")),
            r.paused.map_or("-".into(), |p| format!("{p:.2}")),
            r.server.map_or("-".into(), |s| format!("{:.0}", s.0)),
            r.server.map_or("-".into(), |s| format!("{:.0}", s.1)),
            r.server.map_or("-".into(), |s| format!("{}", s.2)),
            r.load
        )?;
    }
    for note in &notes {
        writeln!(md, "\n{note}")?;
    }
    print!("{md}");
    let out = args.out.clone().unwrap_or_else(|| root.join("target/bench-live.md"));
    std::fs::write(&out, &md).with_context(|| format!("write {}", out.display()))?;
    eprintln!("== written to {}", out.display());
    Ok(())
}
