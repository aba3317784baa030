//! The one pipeline every bulk operation runs on: delete, copy and move (the engine's
//! writers), export (key readers feeding the file writer), import (record writers) and
//! survey (page workers feeding the tree).
//!
//! A run is a set of [`Lane`]s and optionally one sink:
//!
//! ```text
//!   lane:  source ──bounded(queue_depth)──▶ worker, worker, …  ──┐
//!   lane:  source ──bounded(queue_depth)──▶ worker, worker, …  ──┼──bounded(out_depth)──▶ sink
//! ```
//!
//! Each lane's source (a scanner on one master, the feeder of an export, the file of an
//! import) runs on its own thread and hands batches to its lane's workers, each on its own
//! thread and owning its connections, that implement [`Stage`]. What a worker returns from a
//! batch goes to the sink, which runs on the calling thread (the export's file writer, the
//! survey's tree). Memory is bounded by the channel depths times the batch size.
//!
//! What every run does alike lives here, once:
//! - pacing: under `--max-latency` a batch is handed to its stage in chunks the pacer sizes
//!   from the round trips it is told ([`Pacer::chunk`], [`Pacer::observe`]); the cancel check
//!   before and after each chunk's pacing ([`Pacer::admit_within`]): items taken off the queue
//!   but not handled are simply not counted as done;
//! - the first fatal error: it cancels everything ([`Progress::cancel`]) and is the one the
//!   run returns; a stage or source that stops with an interrupt (the run being cancelled)
//!   is not a failure of the run;
//! - [`Stage::finish`] when a worker's queue closes, when the run is interrupted and when
//!   the sink stopped (what a worker holds was handed to it, so it is finished like the
//!   batch in hand), not after its own failure;
//! - handing back the workers that finished, for what they collected.

use std::sync::Mutex;
use std::time::Instant;

use super::pacing::{Pacer, MAX_WAIT};
use crate::progress::Progress;

/// An error a pipeline stops on. An interrupt is the run being cancelled, not a failure.
pub(crate) trait StageError: Send {
    /// True for the error a source or stage returns because the run was cancelled.
    fn is_interrupted(&self) -> bool;
}

impl StageError for crate::Error {
    fn is_interrupted(&self) -> bool {
        matches!(self, crate::Error::Interrupted)
    }
}

/// One worker of a lane: owns its connections and handles one batch at a time.
pub(crate) trait Stage: Send {
    /// What a batch is made of (keys, records).
    type Item: Send;
    /// What a batch gives the sink (`()` when there is no sink).
    type Out: Send;
    /// The error that stops the run.
    type Error: StageError;
    /// Handles one batch; `Some` goes to the sink.
    fn handle(&mut self, batch: Vec<Self::Item>, progress: &Progress) -> Result<Option<Self::Out>, Self::Error>;
    /// Handles whatever the worker still holds back, when its queue closes or the run is
    /// interrupted; `Some` goes to the sink.
    fn finish(&mut self, _progress: &Progress) -> Result<Option<Self::Out>, Self::Error> {
        Ok(None)
    }
}

/// Hands a batch to a lane's workers; false once they are all gone (the run is stopping).
pub(crate) type Emit<'a, T> = &'a mut dyn FnMut(Vec<T>) -> bool;

type Source<'env, S> =
    Box<dyn for<'a> FnOnce(Emit<'a, <S as Stage>::Item>) -> Result<(), <S as Stage>::Error> + Send + 'env>;

/// One source and the workers its batches go to.
pub(crate) struct Lane<'env, S: Stage> {
    source: Source<'env, S>,
    workers: Vec<S>,
}

impl<'env, S: Stage> Lane<'env, S> {
    /// `source` feeds batches through the `emit` it is given and stops (with `Ok`) when
    /// `emit` says false; its error stops the run.
    pub(crate) fn new(
        workers: Vec<S>,
        source: impl for<'a> FnOnce(Emit<'a, S::Item>) -> Result<(), S::Error> + Send + 'env,
    ) -> Self {
        Lane { source: Box::new(source), workers }
    }
}

/// How a run is wired.
pub(crate) struct Pipeline<'a> {
    /// Counters, and the cancel flag every thread watches.
    pub(crate) progress: &'a Progress,
    /// Admits every batch before a worker handles it (`None`: paced elsewhere, as an
    /// export's key stream is).
    pub(crate) pacer: Option<&'a Pacer>,
    /// Batches buffered between a lane's source and its workers.
    pub(crate) queue_depth: usize,
    /// Worker outputs buffered before the sink.
    pub(crate) out_depth: usize,
}

impl Pipeline<'_> {
    /// Runs every lane to its end (or to the first fatal error, or to the interrupt) with
    /// `sink` consuming the workers' outputs on this thread, and returns the workers that
    /// finished (all but those that failed). A sink error is fatal like a worker's; the sink also stops once the
    /// run is cancelled. Whether the run was interrupted is [`Progress::is_cancelled`].
    pub(crate) fn run<S: Stage>(
        &self,
        lanes: Vec<Lane<'_, S>>,
        mut sink: impl FnMut(S::Out) -> Result<(), S::Error>,
    ) -> Result<Vec<S>, S::Error> {
        let progress = self.progress;
        let pacer = self.pacer;
        let first_error: Mutex<Option<S::Error>> = Mutex::new(None);
        let fail = |e: S::Error| {
            progress.cancel();
            if !e.is_interrupted() {
                first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
            }
        };
        let ended: Mutex<Vec<S>> = Mutex::new(Vec::new());
        let (fail, ended_ref) = (&fail, &ended);
        std::thread::scope(|s| {
            let (out_tx, out_rx) = crossbeam_channel::bounded::<S::Out>(self.out_depth.max(1));
            for lane in lanes {
                let (tx, rx) = crossbeam_channel::bounded::<Vec<S::Item>>(self.queue_depth.max(1));
                for mut stage in lane.workers {
                    let (rx, out_tx) = (rx.clone(), out_tx.clone());
                    s.spawn(move || {
                        // False when the sink stopped (on its error, recorded, or the cancel):
                        // the worker then takes no more batches.
                        let pass_on = |out: Option<S::Out>| out.is_none_or(|o| out_tx.send(o).is_ok());
                        'batches: for batch in rx.iter() {
                            if progress.is_cancelled() {
                                break;
                            }
                            // Under a latency bound the batch goes in chunks the pacer sizes
                            // from the round trips it is told; otherwise in one piece. The
                            // chunks of one batch share one `MAX_WAIT` of pacing.
                            let wait_until = Instant::now() + MAX_WAIT;
                            // At least one chunk, so a stage still sees an empty batch.
                            let mut rest = batch;
                            loop {
                                let chunk = match pacer {
                                    Some(p) => {
                                        let tail = rest.split_off(p.chunk().min(rest.len()));
                                        std::mem::replace(&mut rest, tail)
                                    }
                                    None => std::mem::take(&mut rest),
                                };
                                let n = chunk.len();
                                if let Some(p) = pacer {
                                    p.admit_within(n, progress, wait_until);
                                }
                                // Checked again after pacing, which may have waited: items
                                // taken off the queue but not handled are not counted as done.
                                if progress.is_cancelled() {
                                    break 'batches;
                                }
                                let sent = Instant::now();
                                match stage.handle(chunk, progress) {
                                    Ok(out) => {
                                        if !pass_on(out) {
                                            break 'batches;
                                        }
                                    }
                                    Err(e) => return fail(e),
                                }
                                if let Some(p) = pacer {
                                    p.observe(n, sent.elapsed());
                                }
                                if rest.is_empty() {
                                    break;
                                }
                            }
                        }
                        // What `finish` hands on is dropped if the sink has stopped.
                        match stage.finish(progress) {
                            Ok(out) => {
                                pass_on(out);
                            }
                            Err(e) => return fail(e),
                        }
                        ended_ref.lock().unwrap_or_else(|p| p.into_inner()).push(stage);
                    });
                }
                drop(rx);
                let source = lane.source;
                s.spawn(move || {
                    let mut emit = |batch: Vec<S::Item>| tx.send(batch).is_ok();
                    if let Err(e) = source(&mut emit) {
                        fail(e);
                    }
                });
            }
            drop(out_tx);
            // The sink stops consuming on its error or the cancel, which makes the workers'
            // sends fail and the sources' after them, so nothing waits forever.
            for out in out_rx.iter() {
                if let Err(e) = sink(out) {
                    fail(e);
                    break;
                }
                if progress.is_cancelled() {
                    break;
                }
            }
            drop(out_rx);
        });
        match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(ended.into_inner().unwrap_or_else(|p| p.into_inner())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    /// Sums its batches; fails on `fail_on`; cancels the run on `cancel_on`; hands what it
    /// held back (`held`) to the sink from `finish`.
    struct Sum {
        fail_on: Option<u64>,
        cancel_on: Option<u64>,
        held: u64,
        finished: bool,
    }

    impl Stage for Sum {
        type Item = u64;
        type Out = u64;
        type Error = Error;
        fn handle(&mut self, batch: Vec<u64>, progress: &Progress) -> Result<Option<u64>, Error> {
            if batch.iter().any(|&n| Some(n) == self.fail_on) {
                return Err(Error::Refused("boom".into()));
            }
            if batch.iter().any(|&n| Some(n) == self.cancel_on) {
                progress.cancel();
            }
            self.held += 1;
            Ok(Some(batch.iter().sum()))
        }
        fn finish(&mut self, _progress: &Progress) -> Result<Option<u64>, Error> {
            self.finished = true;
            Ok(Some(1000 * std::mem::take(&mut self.held)))
        }
    }

    fn sum(fail_on: Option<u64>, cancel_on: Option<u64>) -> Sum {
        Sum { fail_on, cancel_on, held: 0, finished: false }
    }

    fn lane(workers: Vec<Sum>, upto: u64) -> Lane<'static, Sum> {
        Lane::new(workers, move |emit| {
            for n in 1..=upto {
                if !emit(vec![n]) {
                    return Ok(());
                }
            }
            Ok(())
        })
    }

    fn pipeline(progress: &Progress) -> Pipeline<'_> {
        Pipeline { progress, pacer: None, queue_depth: 2, out_depth: 2 }
    }

    #[test]
    fn every_batch_and_every_finish_reaches_the_sink_and_the_workers_come_back() {
        let progress = Progress::new();
        let mut total = 0;
        let lanes = vec![lane(vec![sum(None, None), sum(None, None)], 100), lane(vec![sum(None, None)], 10)];
        let ended = pipeline(&progress)
            .run(lanes, |n| {
                total += n;
                Ok(())
            })
            .unwrap();
        assert_eq!(ended.len(), 3);
        assert!(ended.iter().all(|w| w.finished));
        // 5050 + 55 from the batches, 1000 per batch from the finishes.
        assert_eq!(total, 5050 + 55 + 1000 * 110);
        assert!(!progress.is_cancelled());
    }

    #[test]
    fn the_first_real_error_cancels_the_run_and_is_returned() {
        let progress = Progress::new();
        let source_saw_stop = std::sync::atomic::AtomicBool::new(false);
        let stop_ref = &source_saw_stop;
        let lanes = vec![Lane::new(vec![sum(Some(7), None)], move |emit: Emit<'_, u64>| {
            for n in 1.. {
                if !emit(vec![n]) {
                    stop_ref.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Ok(());
                }
            }
            Ok(())
        })];
        let err = pipeline(&progress).run(lanes, |_| Ok(())).map(|_| ()).unwrap_err();
        assert!(matches!(err, Error::Refused(_)), "{err:?}");
        assert!(progress.is_cancelled());
        assert!(source_saw_stop.into_inner(), "the source stops once its workers are gone");
    }

    #[test]
    fn an_interrupt_is_no_failure_and_workers_finish_what_they_hold() {
        let progress = Progress::new();
        let lanes = vec![
            lane(vec![sum(None, Some(3))], 1_000_000),
            Lane::new(vec![sum(None, None)], |_emit: Emit<'_, u64>| Err(Error::Interrupted)),
        ];
        // The sink stops at the cancel: what the finishes hand on is dropped, the workers
        // still finish and come back.
        let ended = pipeline(&progress).run(lanes, |_| Ok(())).unwrap();
        assert!(progress.is_cancelled());
        assert_eq!(ended.len(), 2);
        assert!(ended.iter().all(|w| w.finished));
    }

    #[test]
    fn a_sink_error_stops_the_run() {
        let progress = Progress::new();
        let lanes = vec![lane(vec![sum(None, None)], 1_000_000)];
        let err = pipeline(&progress)
            .run(lanes, |n| if n == 5 { Err(Error::Refused("full".into())) } else { Ok(()) })
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(err, Error::Refused(_)), "{err:?}");
    }
}
