//! Sending each command to the node that serves its key's slot.
//!
//! On one server everything goes into one pipeline. On a cluster the commands of a batch are
//! grouped by master, one pipeline each, all in flight at once, and the replies are put back
//! in order. A `MOVED`
//! reply updates the slot map and resends to the new owner, `ASK` resends with `ASKING`,
//! `TRYAGAIN`/`CLUSTERDOWN` wait and resend, and a master that stops answering makes the
//! router ask the cluster who serves its slots now. So CROSSSLOT and redirections never
//! reach the user. Every slot that redirected is remembered: the run sweeps those slots
//! again at the end, so a key moved during the run is not missed.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use redis::Value;

use crate::connect::{HostPort, NodeConn, Psor, SlotMap, Topology};
use crate::error::{classify, classify_server, Error, ErrorClass, Result};

/// A command and the slot of the key it acts on.
pub(crate) struct Routed {
    pub slot: u16,
    pub cmd: redis::Cmd,
}

impl Routed {
    /// Routes `cmd` by its first argument (the key of every single-key command).
    pub(crate) fn by_key(cmd: &redis::Cmd, cluster: bool) -> Routed {
        let slot = if cluster {
            match cmd.args_iter().nth(1) {
                Some(redis::Arg::Simple(key)) => crate::connect::key_slot(key),
                _ => 0,
            }
        } else {
            0
        };
        Routed { slot, cmd: cmd.clone() }
    }
}

/// Redirection rounds before a command counts as failed.
const MAX_ROUNDS: usize = 10;

/// Routes pipelines to the right master; one per writer thread (it owns its connections).
pub(crate) struct Router {
    psor: Psor,
    map: Option<SlotMap>,
    conns: HashMap<HostPort, NodeConn>,
    single: Option<NodeConn>,
    /// Slots that redirected or whose master changed while this router worked.
    pub unstable: BTreeSet<u16>,
}

impl Router {
    pub(crate) fn new(psor: &Psor) -> Result<Router> {
        match psor.topology() {
            Topology::Single => Ok(Router {
                psor: psor.clone(),
                map: None,
                conns: HashMap::new(),
                single: Some(psor.masters()[0].connect()?),
                unstable: BTreeSet::new(),
            }),
            Topology::Cluster(map) => Ok(Router {
                psor: psor.clone(),
                map: Some(map.clone()),
                conns: HashMap::new(),
                single: None,
                unstable: BTreeSet::new(),
            }),
        }
    }

    /// `host:port` of the master serving `slot`, for messages.
    pub(crate) fn label(&mut self, slot: u16) -> String {
        match &self.map {
            None => self.single.as_ref().map(|c| c.addr().to_string()).unwrap_or_default(),
            Some(map) => map.master_of(slot).map(ToString::to_string).unwrap_or_else(|| format!("slot {slot}")),
        }
    }

    /// The connection serving `slot` (the only one on a single server).
    pub(crate) fn conn_for(&mut self, slot: u16) -> Result<&mut NodeConn> {
        let Some(map) = &self.map else {
            return Ok(self.single.as_mut().expect("a single-server router has its connection"));
        };
        let hp = map
            .master_of(slot)
            .cloned()
            .ok_or_else(|| Error::Refused(format!("no master serves slot {slot}; is the cluster down?")))?;
        self.conn_at(&hp)
    }

    fn conn_at(&mut self, hp: &HostPort) -> Result<&mut NodeConn> {
        if !self.conns.contains_key(hp) {
            let con = self.psor.node_at(hp).connect()?;
            self.conns.insert(hp.clone(), con);
        }
        Ok(self.conns.get_mut(hp).expect("inserted above"))
    }

    /// Sends every command to the master of its slot and returns the replies in order.
    /// Server errors other than redirections come back as `Value::ServerError`.
    pub(crate) fn run(&mut self, op: &'static str, cmds: &[Routed]) -> Result<Vec<Value>> {
        if self.map.is_none() {
            return self.run_single(op, cmds);
        }
        let mut replies: Vec<Option<Value>> = vec![None; cmds.len()];
        // (index, ASK target) still to send.
        let mut pending: Vec<(usize, Option<HostPort>)> = (0..cmds.len()).map(|i| (i, None)).collect();
        for round in 0..MAX_ROUNDS {
            if pending.is_empty() {
                break;
            }
            if round > 0 {
                std::thread::sleep(Duration::from_millis(20 << round.min(6)));
            }
            let mut by_node: HashMap<HostPort, Vec<(usize, bool)>> = HashMap::new();
            for (i, ask) in std::mem::take(&mut pending) {
                let (hp, asking) = match ask {
                    Some(hp) => (hp, true),
                    None => match self.map.as_ref().and_then(|m| m.master_of(cmds[i].slot)) {
                        Some(hp) => (hp.clone(), false),
                        None => {
                            self.refresh()?;
                            pending.push((i, None));
                            continue;
                        }
                    },
                };
                by_node.entry(hp).or_default().push((i, asking));
            }
            // A node that answered READONLY / MASTERDOWN is no longer the slot's master:
            // after this round, ask the cluster who is.
            let mut stale = false;
            // Every node's pipeline is in flight at once, each on its own connection (one
            // thread per node beyond the first): a batch spread over three masters takes as
            // long as the slowest of them, not the sum, and no master idles while another
            // answers.
            let mut work = Vec::with_capacity(by_node.len());
            let mut failed = Vec::new();
            for (hp, items) in by_node {
                let pipe = Packed::new(items.iter().map(|&(i, asking)| (&cmds[i].cmd, asking)));
                match self.conn_at(&hp) {
                    Ok(_) => {
                        let con = self.conns.remove(&hp).expect("opened above");
                        work.push((hp, items, pipe, con));
                    }
                    Err(e) => failed.push((hp, items, Err(e))),
                }
            }
            let send = |(hp, items, pipe, mut con): (HostPort, Vec<(usize, bool)>, Packed, NodeConn)| {
                let sent = pipe.send(&mut con, op);
                (hp, items, con, sent)
            };
            let mut done = Vec::with_capacity(work.len());
            if work.len() <= 1 {
                done.extend(work.into_iter().map(send));
            } else {
                std::thread::scope(|s| {
                    let mut work = work.into_iter();
                    let first = work.next().expect("more than one");
                    let others: Vec<_> = work.map(|w| s.spawn(move || send(w))).collect();
                    done.push(send(first));
                    for h in others {
                        done.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                    }
                });
            }
            let mut results = failed;
            for (hp, items, con, sent) in done {
                self.conns.insert(hp.clone(), con);
                results.push((hp, items, sent));
            }
            for (hp, items, sent) in results {
                let values = match sent {
                    Ok(v) => v,
                    Err(e) if is_node_gone(&e) => {
                        // The master stopped answering: ask the cluster who serves its slots now.
                        self.conns.remove(&hp);
                        self.refresh()?;
                        pending.extend(items.iter().map(|&(i, _)| (i, None)));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                for (&(i, _), v) in items.iter().zip(values) {
                    match redirect(&v) {
                        Some(Redirect::Moved(slot, to)) => {
                            self.unstable.insert(slot);
                            if let Some(map) = self.map.as_mut() {
                                set_owner(map, slot, to);
                            }
                            pending.push((i, None));
                        }
                        Some(Redirect::Ask(slot, to)) => {
                            self.unstable.insert(slot);
                            pending.push((i, Some(to)));
                        }
                        Some(Redirect::Wait) => {
                            self.unstable.insert(cmds[i].slot);
                            pending.push((i, None));
                        }
                        Some(Redirect::Stale) => {
                            self.unstable.insert(cmds[i].slot);
                            stale = true;
                            pending.push((i, None));
                        }
                        None => replies[i] = Some(v),
                    }
                }
            }
            if stale {
                self.refresh()?;
            }
        }
        if let Some(&(i, _)) = pending.first() {
            return Err(Error::Protocol {
                addr: self.psor.spec().redacted(),
                op,
                detail: format!("slot {} kept redirecting after {MAX_ROUNDS} rounds", cmds[i].slot),
            });
        }
        Ok(replies.into_iter().map(|v| v.expect("every command got a reply")).collect())
    }

    /// One server: one pipeline. A reply saying the server is not (yet) a writable master
    /// (a Sentinel failover in progress, a restart still loading) reconnects — for Sentinel,
    /// to the master now — and resends those commands.
    fn run_single(&mut self, op: &'static str, cmds: &[Routed]) -> Result<Vec<Value>> {
        let con = self.single.as_mut().expect("a single-server router has its connection");
        let mut replies: Vec<Option<Value>> = vec![None; cmds.len()];
        let mut pending: Vec<usize> = (0..cmds.len()).collect();
        for round in 0..MAX_ROUNDS {
            if round > 0 {
                std::thread::sleep(Duration::from_millis(25 << round.min(6)));
                let _ = con.reconnect();
            }
            let values = Packed::new(pending.iter().map(|&i| (&cmds[i].cmd, false))).send(con, op)?;
            let mut again = Vec::new();
            for (i, v) in pending.iter().zip(values) {
                match &v {
                    Value::ServerError(e) if classify_server(e) == ErrorClass::Wait => again.push(*i),
                    _ => replies[*i] = Some(v),
                }
            }
            pending = again;
            if pending.is_empty() {
                return Ok(replies.into_iter().map(|v| v.expect("every command got a reply")).collect());
            }
        }
        Err(Error::Protocol {
            addr: con.addr().to_string(),
            op,
            detail: format!("the server kept refusing writes (read-only or loading) after {MAX_ROUNDS} rounds"),
        })
    }

    fn refresh(&mut self) -> Result<()> {
        if let Some(new) = self.psor.rediscover()? {
            if let Some(old) = &self.map {
                for s in 0..new.owner.len() {
                    if old.master_of(s as u16) != new.master_of(s as u16) {
                        self.unstable.insert(s as u16);
                    }
                }
            }
            self.unstable.extend(new.migrating.iter().copied());
            self.map = Some(new);
        }
        Ok(())
    }
}

/// One pipeline, packed once into one buffer straight from the commands (no copy of a
/// command, nor of the payload it carries, on the way), each optionally preceded by `ASKING`.
struct Packed {
    bytes: Vec<u8>,
    /// Per command sent: is it an `ASKING` (whose reply is dropped)?
    asking: Vec<bool>,
}

impl Packed {
    fn new<'a>(cmds: impl Iterator<Item = (&'a redis::Cmd, bool)> + Clone) -> Packed {
        // Sized once: a pipeline of payloads grown by doubling copies them again and again.
        let (mut bytes, mut n) = (0usize, 0usize);
        for (cmd, asking) in cmds.clone() {
            n += 1 + usize::from(asking);
            // `*N\r\n` and, per argument, `$LEN\r\n` … `\r\n`: 16 bytes cover either.
            bytes += 32
                + cmd.args_iter().map(|a| 16 + if let redis::Arg::Simple(b) = a { b.len() } else { 20 }).sum::<usize>();
        }
        let mut p = Packed { bytes: Vec::with_capacity(bytes), asking: Vec::with_capacity(n) };
        for (cmd, asking) in cmds {
            if asking {
                redis::cmd("ASKING").write_packed_command(&mut p.bytes);
                p.asking.push(true);
            }
            cmd.write_packed_command(&mut p.bytes);
            p.asking.push(false);
        }
        p
    }

    /// Sends the pipeline (again, after a transient failure) and returns one reply per
    /// command, server errors as `Value::ServerError`.
    fn send(&self, con: &mut NodeConn, op: &'static str) -> Result<Vec<Value>> {
        let n = self.asking.len();
        let values = con.retry(op, None, |c| c.req_packed_commands(&self.bytes, 0, n))?;
        if values.len() != n {
            return Err(Error::Protocol {
                addr: con.addr().to_string(),
                op,
                detail: format!("{} replies to a pipeline of {n} commands", values.len()),
            });
        }
        if !self.asking.contains(&true) {
            return Ok(values);
        }
        Ok(values.into_iter().zip(&self.asking).filter(|(_, &a)| !a).map(|(v, _)| v).collect())
    }
}

enum Redirect {
    Moved(u16, HostPort),
    Ask(u16, HostPort),
    /// Wait, then send again to the same slot's master.
    Wait,
    /// Wait, learn the slot map again (a failover), then send again.
    Stale,
}

fn redirect(v: &Value) -> Option<Redirect> {
    let Value::ServerError(e) = v else { return None };
    match e.code() {
        code @ ("MOVED" | "ASK") => {
            let mut parts = e.details()?.split_whitespace();
            let slot: u16 = parts.next()?.parse().ok()?;
            let (host, port) = parts.next()?.rsplit_once(':')?;
            let to = HostPort { host: host.trim_matches(['[', ']']).to_string(), port: port.parse().ok()? };
            Some(if code == "MOVED" { Redirect::Moved(slot, to) } else { Redirect::Ask(slot, to) })
        }
        "READONLY" | "MASTERDOWN" => Some(Redirect::Stale),
        _ if classify_server(e) == ErrorClass::Wait => Some(Redirect::Wait),
        _ => None,
    }
}

fn set_owner(map: &mut SlotMap, slot: u16, to: HostPort) {
    let idx = match map.masters.iter().position(|m| *m == to) {
        Some(i) => i,
        None => {
            map.masters.push(to);
            map.masters.len() - 1
        }
    };
    map.owner[slot as usize] = idx as u16;
}

/// A failure that means "this node is not (or no longer) a usable master".
pub(crate) fn is_node_gone(e: &Error) -> bool {
    match e {
        Error::Connect { .. } => true,
        // A transport failure, or a node that answers but is not a master that serves:
        // [`classify`] says Retry or Wait, and the wait is not just a busy script or a
        // migration in progress (TRYAGAIN), which the same master finishes.
        Error::Command { source, .. } => match classify(source) {
            ErrorClass::Retry => true,
            ErrorClass::Wait => !matches!(source.code(), Some("BUSY" | "TRYAGAIN")),
            _ => false,
        },
        _ => false,
    }
}
