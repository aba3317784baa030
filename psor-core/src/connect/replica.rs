//! Reading from replicas (`--read-from`): which server each master's reads go to, decided in
//! one place.
//!
//! A run may send what it only reads (the `SCAN` that finds the keys, and the per-key reads:
//! `DUMP`, `PEXPIRETIME`/`PTTL`, `TYPE`, `MEMORY USAGE`) to a replica of each master, so the
//! master spends its time on the writes. (A move reads its values on the master: it deletes
//! them there; see `engine::copy`.) Correctness comes first: before
//! the scan, the replica must have caught up with the master's replication offset as it
//! stood at the start of the run (`INFO replication`: the master's `master_repl_offset`,
//! reached by the replica's `slave_repl_offset`), so every key that existed at the start is
//! on the replica and is seen by its scan. Keys the run itself deletes on the master vanish
//! from the replica too, which changes nothing. A value read on the replica is the value the
//! master held at some moment since the run started (the replica applies the master's
//! stream in order): a key written during the run may be read as it was a moment earlier. The wait is bounded; a replica that does not
//! catch up in time, cannot be reached (an announced address behind NAT), or replicates
//! another stream (`master_replid` differs: identity by the server, not by the address) is
//! not used: the master is read instead ([`ReadFrom::Replica`]), or the run is refused
//! ([`ReadFrom::ReplicaOnly`], [`crate::Error::ReplicaUnavailable`]).
//!
//! Replicas are found the same way on every topology: the master's own `INFO replication`
//! lists its replicas (`slaveN:ip=..,port=..,state=online,offset=..`) — a standalone master,
//! the master Sentinel names, and each master of a cluster alike. Cluster replicas get
//! `READONLY` on every connection.

use std::time::{Duration, Instant};

use super::{info_field, HostPort, Node};
use crate::error::{Error, Result};

/// Where a run sends what it only reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadFrom {
    /// Every read on the master (the default).
    #[default]
    Master,
    /// Reads on a replica that has caught up with the master's offset at the start of the
    /// run; the master when there is none (none online, unreachable, not caught up within
    /// the wait) or when the replica disappears during the run. Reported either way.
    /// `replica-preferred` is the same.
    Replica,
    /// Like [`ReadFrom::Replica`], but without a usable replica the run stops with
    /// [`Error::ReplicaUnavailable`] instead of reading the master.
    ReplicaOnly,
}

impl ReadFrom {
    /// Parses `master`, `replica`, `replica-preferred` (the same as `replica`) and `replica-only`.
    pub fn parse(text: &str) -> Option<ReadFrom> {
        match text {
            "master" => Some(ReadFrom::Master),
            "replica" | "replica-preferred" => Some(ReadFrom::Replica),
            "replica-only" => Some(ReadFrom::ReplicaOnly),
            _ => None,
        }
    }
}

/// The default bound on the catch-up wait ([`crate::engine::EngineOptions::replica_wait`]).
pub const DEFAULT_REPLICA_WAIT: Duration = Duration::from_secs(10);

/// Where one master's reads went, for the report.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReadChoice {
    /// `host:port` of the master.
    pub master: String,
    /// `host:port` of the server that was read: a replica, or the master itself.
    pub read_node: String,
    /// Why the master was read instead of a replica (none found or usable at the start, or
    /// the replica lost during the run), if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// One replica as its master lists it in `INFO replication`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListedReplica {
    pub hp: HostPort,
    pub online: bool,
    pub offset: u64,
}

/// The replicas a master's `INFO replication` lists (`slaveN:` lines; `replicaN:` too).
pub(crate) fn listed_replicas(info: &str) -> Vec<ListedReplica> {
    let mut out: Vec<ListedReplica> = info
        .lines()
        .filter_map(|line| {
            let (name, fields) = line.split_once(':')?;
            let n = name.strip_prefix("slave").or_else(|| name.strip_prefix("replica"))?;
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let field = |k: &str| fields.split(',').find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='));
            let host = field("ip")?.trim_matches(['[', ']']).to_string();
            let port = field("port")?.trim().parse().ok()?;
            Some(ListedReplica {
                hp: HostPort { host, port },
                online: field("state") == Some("online"),
                offset: field("offset").and_then(|o| o.trim().parse().ok()).unwrap_or(0),
            })
        })
        .collect();
    // The most caught-up first.
    out.sort_by_key(|r| std::cmp::Reverse(r.offset));
    out
}

/// The node one master's reads go to, chosen at the start of the run, and the report of it.
#[derive(Clone, Debug)]
pub struct ReadNode {
    /// The master.
    pub master: Node,
    /// The caught-up replica to read, if one was chosen.
    pub replica: Option<Node>,
    /// What the report says (`None` when every read goes to the master by choice).
    pub choice: Option<ReadChoice>,
}

impl ReadNode {
    /// Reads on the master, by choice.
    pub fn master_only(master: &Node) -> ReadNode {
        ReadNode { master: master.clone(), replica: None, choice: None }
    }
}

/// The masters' read nodes, in the order of [`super::Psor::masters`].
pub(crate) fn choose(
    masters: &[Node],
    cluster: bool,
    mode: ReadFrom,
    wait: Duration,
    replica_node: impl Fn(&HostPort, bool) -> Node,
) -> Result<Vec<ReadNode>> {
    if mode == ReadFrom::Master {
        return Ok(masters.iter().map(ReadNode::master_only).collect());
    }
    masters
        .iter()
        .map(|master| {
            let (replica, fallback) = match pick(master, cluster, wait, &replica_node) {
                Ok(node) => (Some(node), None),
                Err(reason) if mode == ReadFrom::ReplicaOnly => {
                    return Err(Error::ReplicaUnavailable { master: master.addr().to_string(), reason })
                }
                Err(reason) => (None, Some(reason)),
            };
            let read_node = replica.as_ref().map_or_else(|| master.addr().to_string(), |r| r.addr().to_string());
            let choice = ReadChoice { master: master.addr().to_string(), read_node, fallback };
            Ok(ReadNode { master: master.clone(), replica, choice: Some(choice) })
        })
        .collect()
}

/// A replica of `master` that has caught up with the master's offset now, or why there is none.
fn pick(
    master: &Node,
    cluster: bool,
    wait: Duration,
    replica_node: &impl Fn(&HostPort, bool) -> Node,
) -> std::result::Result<Node, String> {
    let mut con = master.connect().map_err(|e| format!("the master cannot be asked for its replicas: {e}"))?;
    let deadline = Instant::now() + wait;
    let mut first_target = None;
    let (target, replid, listed) = loop {
        let info: String = con
            .retry("INFO replication", None, |c| redis::cmd("INFO").arg("replication").query(c))
            .map_err(|e| format!("the master did not list its replicas: {e}"))?;
        let (Some(target), Some(replid)) = (
            info_field(&info, "master_repl_offset").and_then(|o| o.parse::<u64>().ok()),
            info_field(&info, "master_replid").map(str::to_string),
        ) else {
            return Err("the master reports no replication offset".into());
        };
        // The offset at the start of the run is the first one read.
        let target = *first_target.get_or_insert(target);
        let listed = listed_replicas(&info);
        if listed.iter().any(|r| r.online) {
            break (target, replid, listed);
        }
        // None listed: none will come. Listed but still syncing (a replica that just
        // connected is `online` once it acknowledged the sync): wait for it, within `wait`.
        if listed.is_empty() || Instant::now() >= deadline {
            return Err(format!("no online replica ({} listed)", listed.len()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut reasons = Vec::new();
    for r in listed.iter().filter(|r| r.online) {
        let node = replica_node(&r.hp, cluster);
        match catch_up(&node, &replid, target, deadline) {
            Ok(()) => return Ok(node),
            Err(why) => reasons.push(format!("replica {}: {why}", r.hp)),
        }
    }
    Err(reasons.join("; "))
}

/// Waits until the replica behind `node` has applied the master's stream `replid` up to
/// `target`, until `deadline` at the latest.
fn catch_up(node: &Node, replid: &str, target: u64, deadline: Instant) -> std::result::Result<(), String> {
    let mut con = node.connect().map_err(|e| format!("unreachable ({e})"))?;
    loop {
        let info: String = con
            .retry("INFO replication", None, |c| redis::cmd("INFO").arg("replication").query(c))
            .map_err(|e| format!("unreachable ({e})"))?;
        if info_field(&info, "role") != Some("slave") {
            return Err("is not a replica".into());
        }
        if info_field(&info, "master_replid") != Some(replid) {
            return Err("replicates another stream than this master's (master_replid differs)".into());
        }
        let up = info_field(&info, "master_link_status") == Some("up");
        let offset = info_field(&info, "slave_repl_offset")
            .or_else(|| info_field(&info, "master_repl_offset"))
            .and_then(|o| o.parse::<u64>().ok())
            .unwrap_or(0);
        if up && offset >= target {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(if up {
                format!("still {} bytes behind the master's offset at the start", target.saturating_sub(offset))
            } else {
                "its link to the master is down".into()
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_replicas_from_info() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
            slave0:ip=127.0.0.1,port=7004,state=online,offset=100,lag=0\r\n\
            slave1:ip=10.0.0.2,port=7005,state=wait_bgsave,offset=0,lag=0\r\n\
            slave_read_repl_offset:1\r\nmaster_replid:abc\r\nmaster_repl_offset:120\r\n";
        let r = listed_replicas(info);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            ListedReplica { hp: HostPort { host: "127.0.0.1".into(), port: 7004 }, online: true, offset: 100 }
        );
        assert!(!r[1].online);
    }

    #[test]
    fn parses_modes() {
        assert_eq!(ReadFrom::parse("replica-preferred"), Some(ReadFrom::Replica));
        assert_eq!(ReadFrom::parse("replica-only"), Some(ReadFrom::ReplicaOnly));
        assert_eq!(ReadFrom::parse("slave"), None);
    }
}
