//! Staying gentle on a live server: during `rem-old-pac` the new PAC runs on the same Redis.
//! Every bulk operation admits its batches through one [`Pacer`]: delete, copy and move (the
//! engine's writers), every [`super::KeyStream`] (`psor scan`, dry runs, export and the
//! `rem-old-pac --backup`), import (its writers), survey and status (their scans).
//!
//! `rate` caps keys per second over all writers with a token bucket.
//!
//! `max_latency` bounds what another client of the server waits. Redis runs one command at a
//! time: a client that sends a `GET` while the server runs one of psor's commands waits for
//! that command to end, and for every other command that is ready in the same event-loop
//! turn. Measured (`INFO commandstats`, a loaded 2-core machine): one `UNLINK` of 1000 keys
//! ran 1.7–3.2 ms, one `SCAN … COUNT 1000` 1.1–1.5 ms, so with the default batch and COUNT a
//! single command of psor was already longer than a 2 ms bound, and a side `PING` every 50
//! ms (what this module did alone) almost never landed in one of those ~2 ms stalls: the
//! bound had no visible effect on another client's tail. The bound is therefore held by
//! construction, per command, and watched as before:
//!
//! - **Budget.** At most half the bound may be spent on psor's work in one event-loop turn,
//!   shared by the commands psor can have ready at once (one per writer and the scanner): a
//!   command's budget is `bound / (2 × (writers + 1))`, 333 µs for 2 ms with two writers.
//! - **SCAN COUNT** is cut to the budget at [`SCAN_US_PER_COUNT`] ([`shape`]); the batches the
//!   scanner hands on keep their size.
//! - **Keys per write** ([`Pacer::chunk`]): a writer splits its batch into chunks and times each
//!   write ([`Pacer::observe`]). An AIMD controller on that round trip less the last side
//!   `PING`'s (what any command pays now: network, scheduling, other clients), which leaves
//!   the server's work for the chunk: above the budget the chunk halves, below it grows by
//!   an eighth of its start. It starts at the budget at [`UNLINK_US_PER_KEY`],
//!   never exceeds the batch nor twice the start, and never goes below [`MIN_CHUNK`] (below
//!   that the round trip is the network's and the client's, not the server's work).
//! - **Watching.** A side connection per master times a `PING` every [`PING_EVERY`] (every 50
//!   ms sampled too rarely to see a stall of a few ms), and a writer's own round trip above
//!   the bound counts as such a `PING`: the writers see every stall they are part of. While
//!   the last reading of any master is above the bound (a slow server for reasons of its
//!   own: another client, a fork, a starved CPU), writers wait before their next chunk until
//!   the next `PING` says otherwise, and the chunk halves. The waits of one batch's chunks
//!   last at most one second together, so a bound the server can never meet slows the run
//!   down (to a batch per second per writer, as before chunks) instead of stalling it.
//!
//! The budget leaves the other half of the bound to the other clients' own commands and to
//! scheduling on a busy machine. Only the engine's writers (delete, copy, move) split their
//! batches with the controller. Every other operation gets its sizes from the same two
//! functions, and passes only its bound: [`shape`] (SCAN COUNT, batch) for every key stream
//! (`psor scan`, dry runs, export's feeder, verify's second pass), and [`pipeline_keys`] for
//! the keys of one read or write pipeline that has no controller — export's `DUMP`s,
//! import's `RESTORE`s, survey's and status's facts (whose pages are one SCAN reply).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::EngineOptions;
use crate::connect::Psor;
use crate::error::Result;
use crate::progress::Progress;

/// How gently a run treats the server. The default is unpaced: maintenance windows want the
/// server to be the bottleneck.
#[derive(Clone, Debug, Default)]
pub struct Pacing {
    /// At most this many keys per second, over all writers.
    pub rate: Option<u64>,
    /// What another client may wait for the server because of this run: psor's commands are
    /// kept small enough for it, and writers back off while the server's `PING` round trip
    /// is above it (see the module documentation).
    pub max_latency: Option<Duration>,
}

/// Longest single wait for the latency to come down before a chunk goes anyway.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(1);
/// How often the side connection times a `PING` under a latency bound.
pub(crate) const PING_EVERY: Duration = Duration::from_millis(10);
/// Server time one `SCAN … MATCH` spends per unit of `COUNT`, microseconds: measured 1.1–1.5
/// on a loaded 2-core machine (0.3–0.5 on a quiet one), rounded to the loaded figure's floor.
pub(crate) const SCAN_US_PER_COUNT: u64 = 1;
/// Server time one `UNLINK` spends per key at the start, microseconds (measured 1.7–3.2 under
/// load); the controller corrects it from the writers' round trips.
pub(crate) const UNLINK_US_PER_KEY: u64 = 2;
/// The fewest keys per write under a latency bound.
pub(crate) const MIN_CHUNK: usize = 16;
/// The smallest `SCAN COUNT` under a latency bound.
const MIN_SCAN_COUNT: usize = 20;

/// A command's share of a latency bound, in microseconds: half the bound over the commands
/// one run can have ready in the same event-loop turn (one per writer, and the scanner).
fn budget_us(bound: Duration, writers: usize) -> u64 {
    (bound.as_micros() as u64 / (2 * (writers.max(1) as u64 + 1))).max(1)
}

/// The keys-per-write controller's start for a budget: the budget at [`UNLINK_US_PER_KEY`],
/// within [`MIN_CHUNK`] and the batch size.
fn chunk_start(budget_us: u64, batch: usize) -> usize {
    let batch = batch.max(1);
    ((budget_us / UNLINK_US_PER_KEY) as usize).clamp(MIN_CHUNK.min(batch), batch)
}

/// The options a run uses: under a latency bound, `SCAN COUNT` is cut to the command budget
/// and the batch to the most keys one write may carry (twice the controller's start; this
/// also bounds a cluster writer's pipelines); a user's smaller values are kept. Without a
/// bound, `opts` unchanged.
pub(crate) fn shape(opts: &EngineOptions) -> EngineOptions {
    let mut shaped = opts.clone();
    if let Some(bound) = opts.pacing.max_latency {
        let budget = budget_us(bound, opts.writers);
        let count = (budget / SCAN_US_PER_COUNT) as usize;
        shaped.scan_count = opts.scan_count.min(count.max(MIN_SCAN_COUNT));
        shaped.batch_size = opts.batch_size.min(2 * chunk_start(budget, opts.batch_size));
    }
    shaped
}

/// The most keys one pipeline of `usual` keys may carry in a run of `opts` that has no
/// keys-per-write controller (reads, import's writes): under a latency bound, the
/// controller's start for the command budget ([`UNLINK_US_PER_KEY`] per key), else `usual`.
/// Never 0.
pub(crate) fn pipeline_keys(opts: &EngineOptions, usual: usize) -> usize {
    let usual = usual.max(1);
    match opts.pacing.max_latency {
        Some(bound) => usual.min(chunk_start(budget_us(bound, opts.writers), usual)),
        None => usual,
    }
}

/// The keys-per-write controller of a latency bound (AIMD on the writers' round trips).
struct Chunker {
    /// The round trip a write should stay under: the command budget.
    target: Duration,
    start: usize,
    max: usize,
    /// Keys per write now.
    now: AtomicUsize,
}

impl Chunker {
    fn new(bound: Duration, writers: usize, batch: usize) -> Chunker {
        let budget = budget_us(bound, writers);
        let start = chunk_start(budget, batch);
        Chunker {
            target: Duration::from_micros(budget),
            start,
            max: (2 * start).min(batch.max(1)),
            now: AtomicUsize::new(start),
        }
    }

    /// A write of `n` keys cost the server about `work`.
    fn observe(&self, n: usize, work: Duration) {
        let floor = MIN_CHUNK.min(self.max);
        // Only a write of the current size says something about it: a smaller last chunk
        // of a batch is always quick.
        let _ = self.now.fetch_update(Relaxed, Relaxed, |now| {
            if work > self.target {
                Some((now / 2).max(floor))
            } else if n >= now {
                Some((now + (self.start / 8).max(1)).min(self.max))
            } else {
                None
            }
        });
    }

    fn halve(&self) {
        let floor = MIN_CHUNK.min(self.max);
        let _ = self.now.fetch_update(Relaxed, Relaxed, |now| Some((now / 2).max(floor)));
    }
}

pub(crate) struct Pacer {
    bucket: Option<Mutex<(f64, Instant)>>,
    rate: f64,
    max_latency: Option<Duration>,
    chunker: Option<Chunker>,
    /// The slowest master's last PING round trip, or a slower write since, in microseconds.
    latency_us: Arc<AtomicU64>,
    /// Each master's last PING round trip, in microseconds.
    pings: Vec<Arc<AtomicU64>>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Time writers spent waiting, in microseconds.
    paused_us: AtomicU64,
}

impl Pacer {
    /// Starts pacing a run of the engine's writers: [`Pacer::start`] with, under a latency
    /// bound, the keys-per-write controller for `opts`' writers and batch size.
    pub(crate) fn start_writers(opts: &EngineOptions, psor: &Psor) -> Result<Pacer> {
        let mut pacer = Pacer::start(&opts.pacing, psor)?;
        pacer.chunker = opts.pacing.max_latency.map(|b| Chunker::new(b, opts.writers, opts.batch_size));
        Ok(pacer)
    }

    /// Starts pacing a run: the token bucket, and under a latency bound the side `PING`s.
    pub(crate) fn start(pacing: &Pacing, psor: &Psor) -> Result<Pacer> {
        let mut pacer = Pacer {
            bucket: pacing.rate.map(|r| Mutex::new((r as f64 / 10.0, Instant::now()))),
            rate: pacing.rate.unwrap_or(0) as f64,
            max_latency: pacing.max_latency,
            chunker: None,
            latency_us: Arc::new(AtomicU64::new(0)),
            pings: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
            paused_us: AtomicU64::new(0),
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
                        std::thread::sleep(PING_EVERY);
                    }
                }));
            }
            drop(threads);
            pacer.pings = per_master;
        }
        Ok(pacer)
    }

    /// How many keys a writer sends in one write now: everything it holds when no latency
    /// bound is set.
    pub(crate) fn chunk(&self) -> usize {
        self.chunker.as_ref().map_or(usize::MAX, |c| c.now.load(Relaxed))
    }

    /// A write of `n` keys took `rtt` (sent to answered): the keys-per-write controller's
    /// signal. A write slower than the bound also counts as a slow `PING`: every writer
    /// waits before its next chunk until the side connection's next `PING` says the server
    /// is back under the bound. Does nothing without a latency bound.
    pub(crate) fn observe(&self, n: usize, rtt: Duration) {
        if let Some(c) = &self.chunker {
            // What the round trip has of the server's work for the chunk: the rest is what
            // any command pays now (network, scheduling, other clients), which the side
            // PING measures; the fastest master's is taken, so the work is never understated.
            let base = self.pings.iter().map(|p| p.load(Relaxed)).min().filter(|&b| b != u64::MAX).unwrap_or(0);
            c.observe(n, rtt.saturating_sub(Duration::from_micros(base)));
        }
        if self.max_latency.is_some_and(|b| rtt > b) {
            self.latency_us.fetch_max(rtt.as_micros() as u64, Relaxed);
        }
    }

    /// Blocks until `n` more keys may be handled, or until `progress` is cancelled: a wait
    /// never holds up an interrupt by more than a few milliseconds, whatever the rate.
    pub(crate) fn admit(&self, n: usize, progress: &Progress) {
        self.admit_within(n, progress, Instant::now() + MAX_WAIT);
    }

    /// [`Pacer::admit`] for one chunk of a batch: the latency wait ends at `wait_until` (the
    /// batch's start plus [`MAX_WAIT`]), so the chunks of one batch share one second of
    /// waiting and an unmeetable bound slows a run no more than it did whole batches.
    pub(crate) fn admit_within(&self, n: usize, progress: &Progress, wait_until: Instant) {
        let started = Instant::now();
        if let Some(bound) = self.max_latency {
            let bound_us = bound.as_micros() as u64;
            if self.latency_us.load(Relaxed) > bound_us {
                if let Some(c) = &self.chunker {
                    c.halve();
                }
            }
            while self.latency_us.load(Relaxed) > bound_us && Instant::now() < wait_until && !progress.is_cancelled() {
                std::thread::sleep(Duration::from_millis(5));
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
        let waited = started.elapsed().as_micros() as u64;
        // Waits shorter than the time to check (a lock, no sleep) are not pauses.
        if waited >= 100 {
            self.paused_us.fetch_add(waited, Relaxed);
        }
    }

    pub(crate) fn stop(&self) -> f64 {
        self.stop.store(true, Relaxed);
        for t in self.threads.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = t.join();
        }
        self.paused_us.load(Relaxed) as f64 / 1e6
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelines_follow_the_bound_and_only_under_one() {
        let opts = |ms: Option<u64>, writers: usize| EngineOptions {
            writers,
            pacing: Pacing { max_latency: ms.map(Duration::from_millis), ..Pacing::default() },
            ..EngineOptions::default()
        };
        assert_eq!(pipeline_keys(&opts(None, 2), 256), 256);
        // 2 ms, two writers: 333 µs a command, 2 µs a key.
        assert_eq!(pipeline_keys(&opts(Some(2), 2), 256), 166);
        assert_eq!(pipeline_keys(&opts(Some(2), 2), 100), 100, "a smaller usual size is kept");
        assert_eq!(pipeline_keys(&opts(Some(1), 64), 1000), MIN_CHUNK, "never below the floor");
        assert_eq!(pipeline_keys(&opts(Some(2), 2), 0), 1, "never 0");
        let shaped = shape(&opts(Some(2), 2));
        assert_eq!((shaped.scan_count, shaped.batch_size), (333, 332));
        assert_eq!(shape(&opts(None, 2)).scan_count, 1000);
    }
}
