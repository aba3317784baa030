//! The cluster section: psor delete and copy on a 3-master Redis Cluster, a redis-cli peer
//! on the cluster, and the same psor runs on one standalone server for the 1 → 3 masters
//! scaling table.
//!
//! The cluster numbers need two busy times: the SUM over masters of `INFO commandstats`
//! `usec` (the total server work) and the MAX over masters (the critical path when the
//! masters work in parallel). wall / max-busy is the "is the server the bottleneck" ratio
//! of a cluster: 1.0 means the busiest master executed commands the whole run.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use psor_tests::{RedisCluster, RedisServer};

use crate::{
    check_copied_on, check_eq, conn, dbsize, flush, j_u64, measure, populate, populate_to, shell, Args, Measured,
    Report, Tools, COPY_PREFIX, PREFIX,
};

/// Hash slots in a Redis Cluster.
const SLOTS: usize = 16384;

/// The hash slot of `key`, as `CLUSTER KEYSLOT` computes it: CRC16 (XMODEM) of the key, or
/// of the first non-empty `{…}` hash tag, mod 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16::State::<crc16::XMODEM>::calculate(hashed) % SLOTS as u16
}

/// The cluster under test: its masters and which master (index into `masters`) serves
/// each slot.
struct Shards<'a> {
    cluster: &'a RedisCluster,
    masters: Vec<&'a RedisServer>,
    owner: Vec<u8>,
}

impl<'a> Shards<'a> {
    fn new(cluster: &'a RedisCluster) -> Result<Shards<'a>> {
        let masters = cluster.masters();
        ensure!(!masters.is_empty(), "the cluster has no masters");
        let ranges: Vec<(u16, u16, Vec<redis::Value>)> =
            redis::cmd("CLUSTER").arg("SLOTS").query(&mut conn(masters[0])?)?;
        let mut owner = vec![u8::MAX; SLOTS];
        for (start, end, master) in ranges {
            let port = match master.get(1) {
                Some(redis::Value::Int(p)) => *p as u16,
                other => anyhow::bail!("CLUSTER SLOTS: unexpected master entry {other:?}"),
            };
            let idx = masters
                .iter()
                .position(|m| m.port() == port)
                .with_context(|| format!("slot range {start}-{end} served by unknown port {port}"))?;
            for slot in start..=end {
                owner[slot as usize] = idx as u8;
            }
        }
        ensure!(owner.iter().all(|&o| o != u8::MAX), "some slots are not served");
        // Our CRC16 must agree with the server's, or populate would send keys to the wrong
        // master (MOVED errors).
        let mut c = conn(masters[0])?;
        for k in [crate::key(PREFIX, 0), crate::key(PREFIX, 12345), crate::key(COPY_PREFIX, 7), "a{tag}b".into()] {
            let want: u16 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(&k).query(&mut c)?;
            ensure!(
                key_slot(k.as_bytes()) == want,
                "key_slot({k}) = {} but CLUSTER KEYSLOT says {want}",
                key_slot(k.as_bytes())
            );
        }
        Ok(Shards { cluster, masters, owner })
    }

    fn route(&self, key: &[u8]) -> usize {
        self.owner[key_slot(key) as usize] as usize
    }

    fn flush(&self) -> Result<()> {
        for m in &self.masters {
            flush(m)?;
        }
        Ok(())
    }

    fn populate(&self, n: u64, others: u64) -> Result<f64> {
        populate_to(&self.masters, &|k| self.route(k), n, others)
    }

    fn repopulate(&self, n: u64, others: u64) -> Result<f64> {
        self.flush()?;
        self.populate(n, others)
    }

    fn dbsize(&self) -> Result<u64> {
        let mut total = 0;
        for m in &self.masters {
            total += dbsize(m)?;
        }
        Ok(total)
    }

    /// Keys under `prefix` over all masters (SCAN MATCH on each; the prefixes used here
    /// have no glob characters).
    fn count_prefix(&self, prefix: &str) -> Result<u64> {
        let mut total = 0u64;
        for m in &self.masters {
            total += count_prefix(m, prefix)?;
        }
        Ok(total)
    }

    fn check_copied(&self, n: u64) -> Result<()> {
        let mut s = self.cluster.cluster_conn();
        let mut d = self.cluster.cluster_conn();
        check_copied_on(&mut s, &mut d, n)
    }
}

fn count_prefix(s: &RedisServer, prefix: &str) -> Result<u64> {
    let mut c = conn(s)?;
    let mut cursor = 0u64;
    let mut total = 0u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(10_000)
            .query(&mut c)?;
        total += keys.len() as u64;
        if next == 0 {
            return Ok(total);
        }
        cursor = next;
    }
}

/// Runs the cluster section and the 1-master comparison; rows go into `report`.
pub fn run(args: &Args, tools: &Tools, report: &mut Report) -> Result<()> {
    let n = args.cluster_keys.unwrap_or(args.keys);
    eprintln!("== cluster: 3 masters, {n} keys under {PREFIX} plus {n} others");
    report.note(format!(
        "cluster section: load average at start {}",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    ));

    // --- 1 master: the same psor runs on one standalone server, for the scaling table ---
    {
        let s = RedisServer::start();
        populate(&s, n, n)?;
        let m = measure(&[&s], tools.psor(&s, &["delete", "--prefix", PREFIX, "--yes"]))?;
        check_psor(&m, n, "psor delete (1 master)")?;
        check_eq("dbsize after psor delete (1 master)", dbsize(&s)?, n)?;
        report.cluster_row("delete", "psor", n, m);
        flush(&s)?;
        populate(&s, n, n)?;
        let m = measure(&[&s], tools.psor(&s, &["copy", "--prefix", PREFIX, "--to-prefix", COPY_PREFIX]))?;
        check_psor(&m, n, "psor copy (1 master)")?;
        check_eq("dbsize after psor copy (1 master)", dbsize(&s)?, 3 * n)?;
        crate::check_copied(&s, &s, n)?;
        report.cluster_row("copy", "psor", n, m);
    }

    // --- 3 masters ---
    let t0 = Instant::now();
    let cluster = RedisCluster::start(3, 0);
    let shards = Shards::new(&cluster)?;
    let url = cluster.url();
    report.note(format!("cluster: 3 masters, 0 replicas, formed in {:.1} s", t0.elapsed().as_secs_f64()));

    let t = shards.populate(n, n)?;
    report.note(format!(
        "cluster populate {} keys (grouped by master, one pipelined socket each): {t:.1} s ({:.0} keys/s)",
        2 * n,
        2.0 * n as f64 / t
    ));
    {
        let before = unlink_calls(&shards.masters)?;
        let m = measure(&shards.masters, tools.psor_url(&url, &["delete", "--prefix", PREFIX, "--yes"]))?;
        check_psor(&m, n, "psor delete (cluster)")?;
        check_eq("keys under the prefix after psor delete (cluster)", shards.count_prefix(PREFIX)?, 0)?;
        check_eq("dbsize over masters after psor delete (cluster)", shards.dbsize()?, n)?;
        let calls = unlink_calls(&shards.masters)? - before;
        report.note(format!(
            "cluster psor delete: {calls} UNLINK calls over the masters for {n} keys ({:.1} keys per call; \
             one set of per-slot buffers per run, 16 MiB in all, a slot sent at 1000 keys, so the floor is \
             one call per slot touched: {} for this keyspace); per master {}",
            n as f64 / calls.max(1) as f64,
            n.min(SLOTS as u64),
            per_master(&shards.masters, &["unlink", "scan"])?
        ));
        report.cluster_row("delete", "psor", n, m);
    }
    shards.repopulate(n, n)?;
    {
        let m =
            measure(&shards.masters, tools.psor_url(&url, &["copy", "--prefix", PREFIX, "--to-prefix", COPY_PREFIX]))?;
        check_psor(&m, n, "psor copy (cluster)")?;
        check_eq("keys under the copy prefix after psor copy (cluster)", shards.count_prefix(COPY_PREFIX)?, n)?;
        check_eq("dbsize over masters after psor copy (cluster)", shards.dbsize()?, 3 * n)?;
        shards.check_copied(n)?;
        report.note(format!(
            "cluster psor copy: per master {}",
            per_master(&shards.masters, &["restore", "dump", "pexpiretime", "scan"])?
        ));
        report.cluster_row("copy", "psor", n, m);
    }

    if args.no_peers {
        return Ok(());
    }

    // --- peers on the cluster ---
    // The standalone peer (xargs -n 1000 unlink) sends multi-key UNLINKs; on a cluster they
    // span slots and fail with CROSSSLOT. Show that on one master, then run the per-key
    // variant that works (one redis-cli process per key) on a smaller keyspace.
    shards.repopulate(n, n)?;
    {
        let m0 = shards.masters[0];
        let before = count_prefix(m0, PREFIX)?;
        let sh = format!(
            "{cli} -p {p} --scan --pattern '{PREFIX}*' | xargs -n 1000 {cli} -c -p {p} unlink 2>&1 | sort | uniq -c | sort -rn | head -n 3; exit 0",
            cli = tools.redis_cli.display(),
            p = m0.port()
        );
        let m = measure(&[m0], shell(&sh))?;
        let after = count_prefix(m0, PREFIX)?;
        let out = m.stdout_str();
        // `uniq -c` lines: "COUNT TEXT"; drop the ones for blank lines.
        let summary: Vec<&str> = out
            .lines()
            .map(str::trim)
            .filter(|l| l.split_once(' ').is_some_and(|(_, t)| !t.trim().is_empty()))
            .collect();
        report.note(format!(
            "cluster peer `redis-cli --scan | xargs -n 1000 redis-cli -c unlink` on one master (port {}): \
             deleted {} of its {before} keys under the prefix in {:.1} s; replies (count, text): {}",
            m0.port(),
            before - after,
            m.wall,
            summary.join(" / ").replace('|', "\\|")
        ));
    }
    let pn = args.cluster_peer_keys.min(n);
    if pn == 0 {
        report.note("cluster delete peer (xargs -n 1) skipped: --cluster-peer-keys 0".into());
        return Ok(());
    }
    // psor and the peer on the same smaller keyspace, so the wall ratio is like for like.
    shards.repopulate(pn, pn)?;
    {
        let m = measure(&shards.masters, tools.psor_url(&url, &["delete", "--prefix", PREFIX, "--yes"]))?;
        check_psor(&m, pn, "psor delete (cluster, peer size)")?;
        check_eq("keys under the prefix after psor delete (cluster, peer size)", shards.count_prefix(PREFIX)?, 0)?;
        report.cluster_row("delete (peer size)", "psor", pn, m);
    }
    shards.repopulate(pn, pn)?;
    {
        // One pipeline per master, all three at once: what an operator would script.
        let per_master: Vec<String> = shards
            .masters
            .iter()
            .map(|m| {
                format!(
                    "{cli} -p {p} --scan --pattern '{PREFIX}*' | xargs -n 1 {cli} -c -p {p} unlink > /dev/null &",
                    cli = tools.redis_cli.display(),
                    p = m.port()
                )
            })
            .collect();
        let sh = format!("{} wait", per_master.join(" "));
        let m = measure(&shards.masters, shell(&sh))?;
        check_eq("keys under the prefix after the xargs -n 1 peer (cluster)", shards.count_prefix(PREFIX)?, 0)?;
        check_eq("dbsize over masters after the xargs -n 1 peer (cluster)", shards.dbsize()?, pn)?;
        report.cluster_row(
            "delete (peer size)",
            "per master: redis-cli --scan | xargs -n 1 redis-cli -c unlink (3 in parallel)",
            pn,
            m,
        );
    }
    Ok(())
}

/// `cmdstat_unlink:calls` summed over `masters`.
fn unlink_calls(masters: &[&RedisServer]) -> Result<u64> {
    let mut total = 0;
    for m in masters {
        let info: String = redis::cmd("INFO").arg("commandstats").query(&mut conn(m)?)?;
        total += info
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_unlink:calls="))
            .and_then(|rest| rest.split(',').next())
            .map(str::parse::<u64>)
            .transpose()?
            .unwrap_or(0);
    }
    Ok(total)
}

fn check_psor(m: &Measured, n: u64, what: &str) -> Result<()> {
    let j = m.json()?;
    check_eq(&format!("{what} done"), j_u64(&j, "done")?, n)?;
    check_eq(&format!("{what} failed"), j_u64(&j, "failed")?, 0)?;
    Ok(())
}

/// `cmd calls/usec-per-call` from `INFO commandstats` for each of `cmds`, per master (what
/// the last measured run did: `measure` resets the stats before it).
fn per_master(masters: &[&RedisServer], cmds: &[&str]) -> Result<String> {
    let mut out = Vec::new();
    for m in masters {
        let info: String = redis::cmd("INFO").arg("commandstats").query(&mut conn(m)?)?;
        let mut parts = Vec::new();
        for c in cmds {
            let Some(line) = info.lines().find_map(|l| l.strip_prefix(&format!("cmdstat_{c}:"))) else { continue };
            let field = |name: &str| line.split(',').find_map(|f| f.strip_prefix(name)).unwrap_or("?").to_owned();
            parts.push(format!("{c} {} calls {} usec/call", field("calls="), field("usec_per_call=")));
        }
        out.push(format!("{}: {}", m.port(), parts.join(", ")));
    }
    Ok(out.join("; "))
}
