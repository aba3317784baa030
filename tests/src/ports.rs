//! Free loopback ports for test servers.
//!
//! Many tests (and several test binaries, and other checkouts on the same machine) start
//! servers at once, so "pick a port" must not hand the same port out twice and must not
//! collide with the kernel's ephemeral range, where outgoing connections get their source
//! ports. Ports come from a fixed low range walked by a process-wide counter from a
//! per-process random start, and each candidate is checked by binding it (and, for
//! cluster nodes, its bus port `port + 10000`) on 127.0.0.1. A check can still race with
//! another process, so the server start retries on "Address already in use" as well.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Lowest port handed out.
///
/// The range `[PORT_MIN, PORT_MAX)` plus the cluster bus offset stays below 32768, where
/// Linux's default ephemeral range starts, and well below 55535 so `port + 10000` exists.
pub const PORT_MIN: u16 = 10_000;
/// One past the highest port handed out.
pub const PORT_MAX: u16 = 22_000;
/// Offset of a cluster node's bus port from its client port (fixed by Redis).
pub const CLUSTER_BUS_OFFSET: u16 = 10_000;

fn next_candidate() -> u16 {
    static BASE: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = *BASE.get_or_init(|| {
        // RandomState is seeded from the OS per process; mix in the pid so two processes
        // started in the same instant still walk the range from different places.
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        (h.finish() % u64::from(PORT_MAX - PORT_MIN)) as u32
    });
    // A prime stride spreads successive picks so two processes whose walks start close
    // together do not keep tripping over each other.
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let span = u32::from(PORT_MAX - PORT_MIN);
    let offset = (base + n.wrapping_mul(7919)) % span;
    PORT_MIN + offset as u16
}

fn bindable(port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// Returns a port on 127.0.0.1 that was free a moment ago and that no other caller in this
/// process has been given.
///
/// With `cluster_bus` set, `port + 10000` was free too. The answer can still be taken by
/// another process before the server binds it; callers retry with a new port when the
/// server reports "Address already in use".
///
/// # Panics
/// If no free port turns up after many tries (the range is exhausted).
pub fn free_port(cluster_bus: bool) -> u16 {
    for _ in 0..2_000 {
        let port = next_candidate();
        if bindable(port) && (!cluster_bus || bindable(port + CLUSTER_BUS_OFFSET)) {
            return port;
        }
    }
    panic!("no free loopback port found in {PORT_MIN}..{PORT_MAX}");
}
