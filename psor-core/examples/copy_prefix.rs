//! Embedding psor-core: connect, scan a prefix, then copy it to another prefix while a
//! second thread reports progress from the engine's counters.
//!
//! ```text
//! cargo run -p psor-core --example copy_prefix -- redis://127.0.0.1:6379 'MyPAC_8.0:' 'MyPAC_9.0:'
//! ```

use std::sync::Arc;
use std::time::Duration;

use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::engine::{self, CopyOptions, EngineOptions};
use psor_core::keys::{display_key, KeyPrefix};
use psor_core::progress::Progress;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (spec, from, to) = match (args.next(), args.next(), args.next()) {
        (Some(s), Some(f), Some(t)) => (s, f, t),
        _ => return Err("usage: copy_prefix SPEC FROM_PREFIX TO_PREFIX".into()),
    };
    let psor = Psor::connect(&PsorSpec::parse(&spec)?, &ConnectOptions::default())?;
    let (from, to) = (KeyPrefix::new(from)?, KeyPrefix::new(to)?);
    let engine_opts = EngineOptions::default();

    // Scan: batches of keys, streamed; dropping the stream stops the scan.
    let first: Vec<String> = engine::scan(&psor, &from, &engine_opts, Arc::new(Progress::new()))?
        .flat_map(|batch| batch.unwrap_or_default())
        .take(3)
        .map(|k| display_key(&k))
        .collect();
    println!("first keys under {from}: {first:?}");

    // Copy, with a thread polling the counters (this is all the CLI's progress bar does).
    let progress = Arc::new(Progress::new());
    let watcher = {
        let progress = progress.clone();
        std::thread::spawn(move || loop {
            let s = progress.snapshot();
            eprintln!("examined {}/{} · copied {}", s.examined, s.total_keys, s.counts.done);
            if s.scan_finished {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        })
    };
    let opts = CopyOptions { from, to, replace: false, move_keys: false, dry_run: false, sample: 0 };
    let outcome = engine::copy(&psor, None, &opts, &engine_opts, progress.clone());
    progress.cancel();
    let _ = watcher.join();
    let outcome = outcome?;
    println!(
        "copied {} keys ({} unchanged, {} conflicts) in {:.2}s",
        outcome.counts.done, outcome.counts.unchanged, outcome.counts.conflicts, outcome.seconds
    );
    Ok(())
}
