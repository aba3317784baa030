//! Helpers for runs against servers that change under them: a writer thread that keeps
//! writing while a run goes on, replication held back on a replica (a lagging replica),
//! command counters, and, on a cluster, which replica follows which master.
//!
//! psor's `--read-from replica` reads a replica that has caught up with its master's offset
//! at the start of the run; the tests that check that every key of the start is still seen
//! (and nothing else is touched) need a replica that lags on purpose and writes that arrive
//! while the run reads. Nothing here knows psor.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use redis::ConnectionLike;

use crate::cluster::RedisCluster;
use crate::server::{info_field, RedisServer};

/// How many calls of `command` (lower case; `memory|usage` for a subcommand) `server` has
/// served since its stats were last reset (`INFO commandstats`).
///
/// # Panics
/// On any Redis error.
pub fn command_calls(server: &RedisServer, command: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut server.admin_conn()).expect("INFO");
    let head = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(head.as_str()))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("calls="))
}

/// `CONFIG RESETSTAT` on `server`.
///
/// # Panics
/// On any Redis error.
pub fn reset_stats(server: &RedisServer) {
    let () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut server.admin_conn()).expect("CONFIG RESETSTAT");
}

/// Holds back `replica`'s replication for `ms` milliseconds (`CLIENT PAUSE ms WRITE`: the
/// replica stops applying its master's stream too, so writes on the master after this call
/// are not on the replica until the pause ends or [`resume_replication`]).
///
/// # Panics
/// On any Redis error.
pub fn pause_replication(replica: &RedisServer, ms: u64) {
    let () = redis::cmd("CLIENT").arg("PAUSE").arg(ms).arg("WRITE").query(&mut replica.admin_conn()).expect("PAUSE");
}

/// Ends a [`pause_replication`].
///
/// # Panics
/// On any Redis error.
pub fn resume_replication(replica: &RedisServer) {
    let () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut replica.admin_conn()).expect("CLIENT UNPAUSE");
}

/// Whether `key` exists on `server` (read with `READONLY` first, so a cluster replica
/// answers for its master's slots instead of redirecting).
///
/// # Panics
/// On any Redis error.
pub fn exists_on(server: &RedisServer, key: &[u8]) -> bool {
    let mut con = server.admin_conn();
    // A standalone server without cluster support refuses READONLY; that changes nothing.
    let _ = redis::cmd("READONLY").query::<redis::Value>(&mut con);
    let n: u64 = redis::cmd("EXISTS").arg(key).query(&mut con).expect("EXISTS");
    n == 1
}

/// A thread that calls `step(conn, i)` for i = 0, 1, 2, ... about once a millisecond until
/// [`stop`](Self::stop), so writes arrive while a run goes on.
#[derive(Debug)]
pub struct BackgroundWriter {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
}

impl BackgroundWriter {
    /// Starts the thread on `conn`. A `step` that panics makes [`stop`](Self::stop) panic.
    pub fn start<C, F>(mut conn: C, mut step: F) -> BackgroundWriter
    where
        C: ConnectionLike + Send + 'static,
        F: FnMut(&mut C, u64) + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    step(&mut conn, i);
                    i += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                i
            })
        };
        BackgroundWriter { stop, handle: Some(handle) }
    }

    /// Stops the thread and returns how many steps it made.
    ///
    /// # Panics
    /// If a step panicked.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().expect("stopped once").join().expect("the background writer panicked")
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The replica of `cluster` that follows `master` (by `master_port` in its `INFO
/// replication`).
///
/// # Panics
/// If no live replica follows `master`.
pub fn replica_following<'a>(cluster: &'a RedisCluster, master: &RedisServer) -> &'a RedisServer {
    cluster
        .replicas()
        .into_iter()
        .find(|r| {
            let info: String =
                redis::cmd("INFO").arg("replication").query(&mut r.admin_conn()).expect("INFO replication");
            info_field(&info, "master_port") == Some(master.port().to_string())
        })
        .unwrap_or_else(|| panic!("no replica follows {}", master.addr()))
}

/// A hash tag (`{tN}`, braces included) whose slot `master` serves, so keys named with it
/// land on that master.
///
/// # Panics
/// If none of the first 10,000 tags lands there.
pub fn tag_on(cluster: &RedisCluster, master: &RedisServer) -> String {
    (0..10_000)
        .map(|n| format!("{{t{n}}}"))
        .find(|tag| cluster.node_for_slot(cluster.slot_of(tag.as_bytes())).port() == master.port())
        .unwrap_or_else(|| panic!("no tag lands on {}", master.addr()))
}
