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

/// The commands of one batch, as the router sends them: how many, each one's slot, and each
/// one's RESP bytes. Either [`Routed`] commands or a [`PackedCmds`] buffer (built without a
/// `redis::Cmd` per key).
pub(crate) trait CmdList {
    fn count(&self) -> usize;
    fn slot(&self, i: usize) -> u16;
    /// Appends command `i`, packed as RESP, to `out`.
    fn write(&self, i: usize, out: &mut Vec<u8>);
    /// About how many bytes command `i` packs into (to size a pipeline's buffer once).
    fn size(&self, i: usize) -> usize;
    /// Every command packed end to end, when the list already holds them so: sent as it is.
    fn packed(&self) -> Option<&[u8]> {
        None
    }
}

impl CmdList for [Routed] {
    fn count(&self) -> usize {
        self.len()
    }
    fn slot(&self, i: usize) -> u16 {
        self[i].slot
    }
    fn write(&self, i: usize, out: &mut Vec<u8>) {
        self[i].cmd.write_packed_command(out);
    }
    fn size(&self, i: usize) -> usize {
        // `*N\r\n` and, per argument, `$LEN\r\n` … `\r\n`: 16 bytes cover either.
        32 + self[i]
            .cmd
            .args_iter()
            .map(|a| 16 + if let redis::Arg::Simple(b) = a { b.len() } else { 20 })
            .sum::<usize>()
    }
}

/// Commands packed as RESP straight into one buffer as they are built, each with its slot:
/// no `redis::Cmd`, no allocation per command, and a payload copied once (into the buffer)
/// on its way to the socket. On one server the buffer is sent as it is.
pub(crate) struct PackedCmds {
    bytes: Vec<u8>,
    /// Where each command ends in `bytes`, and its slot.
    ends: Vec<(usize, u16)>,
}

impl PackedCmds {
    /// Room for `cmds` commands of about `bytes` bytes in all.
    pub(crate) fn with_capacity(cmds: usize, bytes: usize) -> PackedCmds {
        PackedCmds { bytes: Vec::with_capacity(bytes), ends: Vec::with_capacity(cmds) }
    }

    /// Appends one command (its name first) for the master of `slot`.
    pub(crate) fn push(&mut self, slot: u16, args: &[&[u8]]) {
        let mut n = itoa::Buffer::new();
        self.bytes.push(b'*');
        self.bytes.extend_from_slice(n.format(args.len()).as_bytes());
        self.bytes.extend_from_slice(b"\r\n");
        for a in args {
            self.bytes.push(b'$');
            self.bytes.extend_from_slice(n.format(a.len()).as_bytes());
            self.bytes.extend_from_slice(b"\r\n");
            self.bytes.extend_from_slice(a);
            self.bytes.extend_from_slice(b"\r\n");
        }
        self.ends.push((self.bytes.len(), slot));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn range(&self, i: usize) -> std::ops::Range<usize> {
        let start = if i == 0 { 0 } else { self.ends[i - 1].0 };
        start..self.ends[i].0
    }
}

impl CmdList for PackedCmds {
    fn count(&self) -> usize {
        self.ends.len()
    }
    fn slot(&self, i: usize) -> u16 {
        self.ends[i].1
    }
    fn write(&self, i: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes[self.range(i)]);
    }
    fn size(&self, i: usize) -> usize {
        self.range(i).len()
    }
    fn packed(&self) -> Option<&[u8]> {
        Some(&self.bytes)
    }
}

/// Some of a list's commands, in the order of `idx`.
pub(crate) struct Subset<'a, C: ?Sized> {
    pub cmds: &'a C,
    pub idx: &'a [usize],
}

impl<C: CmdList + ?Sized> CmdList for Subset<'_, C> {
    fn count(&self) -> usize {
        self.idx.len()
    }
    fn slot(&self, i: usize) -> u16 {
        self.cmds.slot(self.idx[i])
    }
    fn write(&self, i: usize, out: &mut Vec<u8>) {
        self.cmds.write(self.idx[i], out)
    }
    fn size(&self, i: usize) -> usize {
        self.cmds.size(self.idx[i])
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
        self.run_list(op, cmds)
    }

    /// [`Router::run`] for commands packed as they were built ([`PackedCmds`]).
    pub(crate) fn run_packed(&mut self, op: &'static str, cmds: &PackedCmds) -> Result<Vec<Value>> {
        self.run_list(op, cmds)
    }

    pub(crate) fn run_list<C: CmdList + ?Sized>(&mut self, op: &'static str, cmds: &C) -> Result<Vec<Value>> {
        if self.map.is_none() {
            return self.run_single(op, cmds);
        }
        let mut replies: Vec<Option<Value>> = vec![None; cmds.count()];
        // (index, ASK target) still to send.
        let mut pending: Vec<(usize, Option<HostPort>)> = (0..cmds.count()).map(|i| (i, None)).collect();
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
                    None => match self.map.as_ref().and_then(|m| m.master_of(cmds.slot(i))) {
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
                let pipe = Packed::new(cmds, items.iter().copied());
                match self.conn_at(&hp) {
                    Ok(_) => {
                        let con = self.conns.remove(&hp).expect("opened above");
                        work.push((hp, items, pipe, con));
                    }
                    Err(e) => failed.push((hp, items, Err(e))),
                }
            }
            let send = |(hp, items, pipe, mut con): (HostPort, Vec<(usize, bool)>, Packed<'_>, NodeConn)| {
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
                            self.unstable.insert(cmds.slot(i));
                            pending.push((i, None));
                        }
                        Some(Redirect::Stale) => {
                            self.unstable.insert(cmds.slot(i));
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
                detail: format!("slot {} kept redirecting after {MAX_ROUNDS} rounds", cmds.slot(i)),
            });
        }
        Ok(replies.into_iter().map(|v| v.expect("every command got a reply")).collect())
    }

    /// One server: one pipeline. A reply saying the server is not (yet) a writable master
    /// (a Sentinel failover in progress, a restart still loading) reconnects — for Sentinel,
    /// to the master now — and resends those commands.
    fn run_single<C: CmdList + ?Sized>(&mut self, op: &'static str, cmds: &C) -> Result<Vec<Value>> {
        let con = self.single.as_mut().expect("a single-server router has its connection");
        let mut replies: Vec<Option<Value>> = vec![None; cmds.count()];
        let mut pending: Vec<usize> = (0..cmds.count()).collect();
        for round in 0..MAX_ROUNDS {
            if round > 0 {
                std::thread::sleep(Duration::from_millis(25 << round.min(6)));
                let _ = con.reconnect();
            }
            let values = Packed::new(cmds, pending.iter().map(|&i| (i, false))).send(con, op)?;
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
/// A [`PackedCmds`] sent whole is sent from its own buffer.
struct Packed<'a> {
    bytes: std::borrow::Cow<'a, [u8]>,
    /// Per command sent: is it an `ASKING` (whose reply is dropped)?
    asking: Vec<bool>,
}

impl<'a> Packed<'a> {
    /// Commands `items` (index, preceded by `ASKING`?) of `cmds`.
    fn new<C: CmdList + ?Sized>(cmds: &'a C, items: impl Iterator<Item = (usize, bool)> + Clone) -> Packed<'a> {
        let (mut bytes, mut n, mut whole) = (0usize, 0usize, true);
        for (k, (i, asking)) in items.clone().enumerate() {
            n += 1 + usize::from(asking);
            whole &= i == k && !asking;
            bytes += cmds.size(i) + if asking { 20 } else { 0 };
        }
        if let Some(all) = cmds.packed().filter(|_| whole && n == cmds.count()) {
            return Packed { bytes: std::borrow::Cow::Borrowed(all), asking: vec![false; n] };
        }
        // Sized once: a pipeline of payloads grown by doubling copies them again and again.
        let mut out = Vec::with_capacity(bytes);
        let mut asks = Vec::with_capacity(n);
        for (i, asking) in items {
            if asking {
                redis::cmd("ASKING").write_packed_command(&mut out);
                asks.push(true);
            }
            cmds.write(i, &mut out);
            asks.push(false);
        }
        Packed { bytes: std::borrow::Cow::Owned(out), asking: asks }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What `redis::Cmd` packs for the same arguments.
    fn packed_by_redis(args: &[&[u8]]) -> Vec<u8> {
        let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.get_packed_command()
    }

    #[test]
    fn packed_commands_are_the_bytes_redis_rs_would_send_binary_keys_and_empty_arguments_included() {
        let cmds: [&[&[u8]]; 4] = [
            &[b"DUMP", b"k\r\n\x00\xff"],
            &[b"RESTORE", b"t", b"0", b"", b"REPLACE"],
            &[b"UNLINK", b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h", b"i", b"j", b"k"],
            &[b"PING"],
        ];
        let mut packed = PackedCmds::with_capacity(0, 0);
        let mut want = Vec::new();
        for (slot, args) in cmds.iter().enumerate() {
            packed.push(slot as u16, args);
            want.extend(packed_by_redis(args));
        }
        assert_eq!(packed.packed(), Some(&want[..]));
        assert_eq!(packed.count(), 4);
        for (i, args) in cmds.iter().enumerate() {
            let mut one = Vec::new();
            packed.write(i, &mut one);
            assert_eq!(one, packed_by_redis(args), "command {i}");
            assert_eq!(packed.slot(i), i as u16);
            assert_eq!(packed.size(i), one.len());
        }
    }

    #[test]
    fn a_whole_packed_list_is_sent_from_its_own_buffer_and_a_part_or_an_asking_is_copied() {
        let mut packed = PackedCmds::with_capacity(2, 64);
        packed.push(0, &[b"GET", b"a"]);
        packed.push(0, &[b"GET", b"b"]);
        let whole = Packed::new(&packed, [(0, false), (1, false)].into_iter());
        assert!(matches!(whole.bytes, std::borrow::Cow::Borrowed(_)));
        assert_eq!(whole.asking, [false, false]);
        let part = Packed::new(&packed, [(1, false)].into_iter());
        assert_eq!(&part.bytes[..], &packed_by_redis(&[b"GET", b"b"])[..]);
        let asked = Packed::new(&packed, [(0, true), (1, false)].into_iter());
        let mut want = packed_by_redis(&[b"ASKING"]);
        want.extend(packed_by_redis(&[b"GET", b"a"]));
        want.extend(packed_by_redis(&[b"GET", b"b"]));
        assert_eq!(&asked.bytes[..], &want[..]);
        assert_eq!(asked.asking, [true, false, false]);
        // The same commands as `Routed` pack to the same bytes.
        let routed: Vec<Routed> = [b"a", b"b"]
            .iter()
            .map(|k| {
                let mut cmd = redis::cmd("GET");
                cmd.arg(&k[..]);
                Routed { slot: 0, cmd }
            })
            .collect();
        let from_routed = Packed::new(&routed[..], [(0, false), (1, false)].into_iter());
        assert_eq!(&from_routed.bytes[..], &whole.bytes[..]);
    }
}
