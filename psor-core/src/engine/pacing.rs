//! Staying gentle on a live server: during `rem-old-pac` the new PAC runs on the same Redis.
//! Every bulk operation admits its batches through one [`Pacer`]: delete, copy and move (the
//! engine's writers), every [`super::KeyStream`] (`psor scan`, dry runs, export and the
//! `rem-old-pac --backup`), import (its writers), survey and status (their scans).
//!
//! `rate` caps keys per second over all writers with a token bucket. `max_latency` starts a
//! side connection per master that times a `PING` every 50 ms; while any master answers
//! slower than the bound, writers wait before their next batch. A wait lasts at most one
//! second per batch, so a bound the server can never meet slows the run down instead of
//! stalling it forever.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::connect::Psor;
use crate::error::Result;
use crate::progress::Progress;

/// How gently a run treats the server. The default is unpaced: maintenance windows want the
/// server to be the bottleneck.
#[derive(Clone, Debug, Default)]
pub struct Pacing {
    /// At most this many keys per second, over all writers.
    pub rate: Option<u64>,
    /// Back off while the server's `PING` round trip is above this.
    pub max_latency: Option<Duration>,
}

/// Longest single wait for the latency to come down before a batch goes anyway.
const MAX_WAIT: Duration = Duration::from_secs(1);

pub(crate) struct Pacer {
    bucket: Option<Mutex<(f64, Instant)>>,
    rate: f64,
    max_latency: Option<Duration>,
    /// The slowest master's last PING round trip, in microseconds.
    latency_us: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Time writers spent waiting, in milliseconds.
    pub(crate) paused_ms: AtomicU64,
}

impl Pacer {
    pub(crate) fn start(pacing: &Pacing, psor: &Psor) -> Result<Pacer> {
        let pacer = Pacer {
            bucket: pacing.rate.map(|r| Mutex::new((r as f64 / 10.0, Instant::now()))),
            rate: pacing.rate.unwrap_or(0) as f64,
            max_latency: pacing.max_latency,
            latency_us: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
            paused_ms: AtomicU64::new(0),
        };
        if pacing.max_latency.is_some() {
            let per_master: Vec<Arc<AtomicU64>> = psor.masters().iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
            let mut threads = pacer.threads.lock().unwrap_or_else(|p| p.into_inner());
            for (node, mine) in psor.masters().iter().zip(&per_master) {
                let mut con = node.connect()?;
                // Measure once before the first batch: until the side thread's first PING the
                // latency would read as zero and the first batches would go unpaced.
                mine.store(ping_us(&mut con), Relaxed);
                pacer.latency_us.fetch_max(mine.load(Relaxed), Relaxed);
                let (stop, mine, all, worst) =
                    (pacer.stop.clone(), mine.clone(), per_master.clone(), pacer.latency_us.clone());
                threads.push(std::thread::spawn(move || {
                    while !stop.load(Relaxed) {
                        mine.store(ping_us(&mut con), Relaxed);
                        worst.store(all.iter().map(|a| a.load(Relaxed)).max().unwrap_or(0), Relaxed);
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }));
            }
        }
        Ok(pacer)
    }

    /// Blocks until `n` more keys may be handled, or until `progress` is cancelled: a wait
    /// never holds up an interrupt by more than a few milliseconds, whatever the rate.
    pub(crate) fn admit(&self, n: usize, progress: &Progress) {
        let started = Instant::now();
        if let Some(bound) = self.max_latency {
            let bound_us = bound.as_micros() as u64;
            while self.latency_us.load(Relaxed) > bound_us && started.elapsed() < MAX_WAIT && !progress.is_cancelled() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if let Some(bucket) = &self.bucket {
            // Tokens may go negative: the batch goes now and the debt is slept off, so the
            // long-run rate is exact whatever the batch size.
            let wait = {
                let mut b = bucket.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * self.rate).min(self.rate / 10.0);
                b.1 = now;
                b.0 -= n as f64;
                if b.0 < 0.0 {
                    Duration::from_secs_f64(-b.0 / self.rate)
                } else {
                    Duration::ZERO
                }
            };
            let until = Instant::now() + wait;
            while !progress.is_cancelled() {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(Duration::from_millis(20)));
            }
        }
        let waited = started.elapsed().as_millis() as u64;
        if waited > 0 {
            self.paused_ms.fetch_add(waited, Relaxed);
        }
    }

    pub(crate) fn stop(&self) -> f64 {
        self.stop.store(true, Relaxed);
        for t in self.threads.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = t.join();
        }
        self.paused_ms.load(Relaxed) as f64 / 1000.0
    }
}

/// One `PING` round trip in microseconds; a failed one counts as infinitely slow.
fn ping_us(con: &mut crate::connect::NodeConn) -> u64 {
    let t = Instant::now();
    match redis::cmd("PING").query::<String>(con.raw()) {
        Ok(_) => t.elapsed().as_micros() as u64,
        Err(_) => u64::MAX,
    }
}
