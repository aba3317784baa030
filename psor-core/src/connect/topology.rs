//! Finding out what a spec points at: which masters serve which hash slots in a Redis
//! Cluster (`CLUSTER NODES`), which server Sentinel calls the master now, and whether the
//! vendor's node list (`redis,h1:p1,h2:p2`) names cluster nodes or sentinels.

use super::{ConnTemplate, HostPort};
use crate::error::{is_auth_error, Error, Result};

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: usize = 16384;

/// The hash slot of a key: CRC16 (XMODEM) of its hash tag (the first non-empty `{...}`) or
/// of the whole key, modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter().position(|&b| b == b'}').map(|close| &rest[..close])
        })
        .filter(|tag| !tag.is_empty());
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(key)) % SLOTS as u16
}

/// Which master serves each slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMap {
    /// The masters, in a stable order (sorted by address).
    pub masters: Vec<HostPort>,
    /// `owner[slot]` is an index into `masters`; `u16::MAX` for an unserved slot.
    pub owner: Vec<u16>,
    /// Slots being migrated (listed as `[slot->-id]` / `[slot-<-id]`): keys may be on two nodes.
    pub migrating: Vec<u16>,
    /// The cluster node id of each master, in the order of `masters`: who they are, whatever
    /// address reached them (it survives a restart, unlike `run_id`).
    pub node_ids: Vec<String>,
}

impl SlotMap {
    /// The master serving `slot`, if any.
    pub fn master_of(&self, slot: u16) -> Option<&HostPort> {
        self.owner.get(slot as usize).and_then(|&i| self.masters.get(i as usize))
    }

    /// The slots served by `master`.
    pub fn slots_of(&self, master: &HostPort) -> Vec<u16> {
        let Some(i) = self.masters.iter().position(|m| m == master) else { return Vec::new() };
        (0..SLOTS as u16).filter(|&s| self.owner[s as usize] == i as u16).collect()
    }

    /// Parses a `CLUSTER NODES` reply. Migrating/importing markers (`[slot->-id]`) are
    /// ignored: the slot belongs to the node that lists it plainly.
    pub fn from_cluster_nodes(text: &str, seed_host: &str) -> Option<SlotMap> {
        // Each master: its address, its slot ranges and its node id.
        struct Master {
            hp: HostPort,
            slots: Vec<(u16, u16)>,
            id: String,
        }
        let mut ranges: Vec<Master> = Vec::new();
        let mut migrating = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                continue;
            }
            let flags = fields[2];
            if !flags.split(',').any(|f| f == "master") || flags.contains("fail") || flags.contains("noaddr") {
                continue;
            }
            // ip:port@cport[,hostname]
            let addr = fields[1].split('@').next()?;
            let (ip, port) = addr.rsplit_once(':')?;
            let port: u16 = port.parse().ok()?;
            let host = if ip.is_empty() { seed_host.to_string() } else { ip.trim_matches(['[', ']']).to_string() };
            let mut slots = Vec::new();
            for tok in &fields[8..] {
                if let Some(inner) = tok.strip_prefix('[') {
                    if let Some(n) = inner.split('-').next().and_then(|n| n.parse().ok()) {
                        migrating.push(n);
                    }
                    continue;
                }
                let (a, b) = tok.split_once('-').unwrap_or((tok, tok));
                slots.push((a.parse().ok()?, b.parse().ok()?));
            }
            if !slots.is_empty() {
                ranges.push(Master { hp: HostPort { host, port }, slots, id: fields[0].to_string() });
            }
        }
        ranges.sort_by(|a, b| (&a.hp.host, a.hp.port).cmp(&(&b.hp.host, b.hp.port)));
        let mut owner = vec![u16::MAX; SLOTS];
        for (i, m) in ranges.iter().enumerate() {
            for &(a, b) in &m.slots {
                for s in a..=b.min(SLOTS as u16 - 1) {
                    owner[s as usize] = i as u16;
                }
            }
        }
        migrating.sort_unstable();
        migrating.dedup();
        let node_ids = ranges.iter().map(|m| m.id.clone()).collect();
        Some(SlotMap { masters: ranges.into_iter().map(|m| m.hp).collect(), owner, migrating, node_ids })
    }
}

/// Asks the first reachable node of `nodes` for the slot map.
pub(crate) fn discover_cluster(nodes: &[HostPort], template: &ConnTemplate) -> Result<SlotMap> {
    let mut last = None;
    for hp in nodes {
        let text: Result<String> = template.connect(hp).and_then(|mut con| {
            redis::cmd("CLUSTER")
                .arg("NODES")
                .query(&mut con)
                .map_err(|source| Error::Connect { addr: hp.to_string(), source })
        });
        match text {
            Ok(text) => {
                if let Some(map) = SlotMap::from_cluster_nodes(&text, &hp.host) {
                    if !map.masters.is_empty() && map.owner.iter().all(|&o| o != u16::MAX) {
                        return Ok(map);
                    }
                    last = Some(Error::Protocol {
                        addr: hp.to_string(),
                        op: "CLUSTER NODES",
                        detail: "not every slot is served (is the cluster being reconfigured?)".into(),
                    });
                    continue;
                }
                last = Some(Error::Protocol {
                    addr: hp.to_string(),
                    op: "CLUSTER NODES",
                    detail: "unreadable reply".into(),
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Refused("no cluster node given".into())))
}

/// Asks the sentinels which server is the master named `master` now.
pub(crate) fn resolve_sentinel(sentinels: &[HostPort], master: &str, template: &ConnTemplate) -> Result<HostPort> {
    let mut last = None;
    for hp in sentinels {
        let con = template.connect_sentinel(hp).map_err(|e| match e {
            Error::Connect { source, .. } => sentinel_error(hp, source, template),
            other => other,
        });
        let reply: Result<Option<(String, u16)>> = con.and_then(|mut con| {
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(master)
                .query(&mut con)
                .map_err(|source| sentinel_error(hp, source, template))
        });
        match reply {
            Ok(Some((host, port))) => return Ok(HostPort { host, port }),
            Ok(None) => last = Some(Error::Refused(format!("sentinel {hp} does not know a master named `{master}`"))),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Refused("no sentinel given".into())))
}

/// A Sentinel's refusal; one asking for a password says how to give it (issue 14).
fn sentinel_error(hp: &HostPort, source: redis::RedisError, template: &ConnTemplate) -> Error {
    if is_auth_error(&source) {
        let hint = if template.has_sentinel_auth() {
            "the Sentinel refused the Sentinel credentials given (--sentinel-user, --sentinel-password-file / PSOR_SENTINEL_PASSWORD)"
        } else {
            "the Sentinel wants a password of its own: give it with --sentinel-password-file or PSOR_SENTINEL_PASSWORD (and --sentinel-user for an ACL user)"
        };
        return Error::Refused(format!("sentinel {hp}: {source}; {hint}"));
    }
    Error::Connect { addr: hp.to_string(), source }
}

/// What a node of the vendor's node list turned out to be.
pub(crate) enum NodeListKind {
    Cluster,
    /// Sentinels, with the one master they watch.
    Sentinel(String),
}

/// Finds out whether `nodes` are cluster nodes or sentinels (`INFO server`'s `redis_mode`, Valkey's `server_mode`).
pub(crate) fn classify_node_list(nodes: &[HostPort], template: &ConnTemplate) -> Result<NodeListKind> {
    let mut last = None;
    for hp in nodes {
        // Sentinels usually take no password (or the Sentinel credentials given); try that
        // first, then the data credentials. A node refusing both for want of a password is
        // reported as a Sentinel wanting its own (the likelier case, and the one with a hint).
        let info_with = |con: Result<redis::Connection>| -> Result<String, Option<redis::RedisError>> {
            let mut con = con.map_err(|e| match e {
                Error::Connect { source, .. } => Some(source),
                _ => None,
            })?;
            redis::cmd("INFO").arg("server").query(&mut con).map_err(Some)
        };
        let info: Result<String> = match info_with(template.connect_sentinel(hp)) {
            Ok(info) => Ok(info),
            Err(first) => info_with(template.connect(hp)).map_err(|second| match (first, second) {
                (Some(f), Some(s)) if is_auth_error(&f) && is_auth_error(&s) => Error::Refused(format!(
                    "{hp}: {f}; a Redis server's password is given with --password-file or PSOR_PASSWORD, \
                         a Sentinel's with --sentinel-password-file or PSOR_SENTINEL_PASSWORD"
                )),
                (_, Some(s)) => Error::Connect { addr: hp.to_string(), source: s },
                (Some(f), None) => Error::Connect { addr: hp.to_string(), source: f },
                (None, None) => Error::Refused(format!("cannot connect to {hp}")),
            }),
        };
        match info {
            Ok(info) => {
                // Valkey names the field `server_mode`.
                let mode = super::info_field(&info, "redis_mode").or_else(|| super::info_field(&info, "server_mode"));
                return match mode {
                    Some("cluster") => Ok(NodeListKind::Cluster),
                    Some("sentinel") => {
                        // The SOR's name in ES_SCALE_OUT_REPOS_n names the master (issue 14).
                        if let Some(master) = template.node_list_master() {
                            return Ok(NodeListKind::Sentinel(master.to_string()));
                        }
                        let mut con = template.connect_sentinel(hp)?;
                        let masters: Vec<redis::Value> = redis::cmd("SENTINEL")
                            .arg("MASTERS")
                            .query(&mut con)
                            .map_err(|source| sentinel_error(hp, source, template))?;
                        let names: Vec<String> = masters.iter().filter_map(master_name).collect();
                        match names.as_slice() {
                            [one] => Ok(NodeListKind::Sentinel(one.clone())),
                            _ => Err(Error::Refused(format!(
                                "the sentinels at {hp} watch {} masters ({}); name one with redis+sentinel://{hp}/MASTER",
                                names.len(),
                                names.join(", ")
                            ))),
                        }
                    }
                    other => Err(Error::Refused(format!(
                        "{hp} is a {} server, not a cluster node or a sentinel; give one node as redis,host:port",
                        other.unwrap_or("standalone")
                    ))),
                };
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Refused("the node list is empty".into())))
}

fn master_name(v: &redis::Value) -> Option<String> {
    // RESP2: a flat array of field, value, field, value…
    let redis::Value::Array(items) = v else { return None };
    items.chunks(2).find_map(|kv| match kv {
        [redis::Value::BulkString(k), redis::Value::BulkString(v)] if k == b"name" => String::from_utf8(v.clone()).ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_hash_tags() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"), "an empty first tag hashes the whole key");
        assert_eq!(key_slot(b"MyPAC_9.0:pac:{MyPAC_9.0}"), key_slot(b"MyPAC_9.0"));
    }

    #[test]
    fn parses_cluster_nodes() {
        let text = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460 [5461->-b2]
b2 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922
c3 127.0.0.1:7003@17003 master - 0 0 3 connected 10923-16383
d4 127.0.0.1:7004@17004 slave a1 0 0 1 connected
e5 :0@0 master,fail,noaddr - 0 0 4 disconnected
";
        let map = SlotMap::from_cluster_nodes(text, "127.0.0.1").unwrap();
        assert_eq!(map.masters.len(), 3);
        assert_eq!(map.master_of(5461).unwrap().port, 7002);
        assert_eq!(map.master_of(0).unwrap().port, 7001);
        assert_eq!(map.slots_of(&map.masters[2]).len(), 16384 - 10923);
        assert_eq!(map.migrating, vec![5461]);
        assert_eq!(map.node_ids, ["a1", "b2", "c3"]);
    }
}
