//! An indicatif bar on stderr, fed by polling psor-core's counters from a ticker thread.
//! Shown only when stderr is a terminal and `--no-progress` was not given.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use psor_core::progress::{Progress, ProgressSnapshot};

/// A running bar; stops and clears itself on drop.
pub struct Bar {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    /// Starts a bar for `progress`, or nothing when progress should not be shown.
    /// `verb` names the work ("deleted", "copied", "found").
    pub fn start(progress: &Arc<Progress>, enabled: bool, verb: &'static str) -> Bar {
        let stop = Arc::new(AtomicBool::new(false));
        if !enabled || !std::io::stderr().is_terminal() {
            return Bar { stop, thread: None };
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{wide_bar}] {percent:>3}% scanned · ETA {eta} · {msg}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        let (progress, stop2) = (progress.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let s = progress.snapshot();
                bar.set_length(s.total_keys.max(1));
                bar.set_position(s.examined);
                let mut msg = message(&s, verb);
                // On a cluster, each master's share: `:7001 48% · :7002 45% · :7003 51%`.
                let masters = progress.masters();
                if masters.len() > 1 {
                    let shares: Vec<String> = masters
                        .iter()
                        .map(|m| {
                            let port = m.addr.rsplit_once(':').map(|(_, p)| p).unwrap_or(&m.addr);
                            format!(":{port} {}%", m.examined * 100 / m.total_keys.max(1))
                        })
                        .collect();
                    msg.push_str(&format!(" · {}", shares.join(" ")));
                }
                bar.set_message(msg);
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Bar { stop, thread: Some(thread) }
    }
}

fn message(s: &ProgressSnapshot, verb: &str) -> String {
    let mut m = format!("{} matched · {} {verb}", HumanCount(s.counts.matched), HumanCount(s.counts.done));
    if s.counts.conflicts > 0 {
        m.push_str(&format!(" · {} conflicts", HumanCount(s.counts.conflicts)));
    }
    if s.counts.failed > 0 {
        m.push_str(&format!(" · {} failed", HumanCount(s.counts.failed)));
    }
    m
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
