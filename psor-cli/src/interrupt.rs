//! Ctrl-C is a request, not a crash: the first SIGINT or SIGTERM sets one flag that every
//! run's [`Progress`] watches; the engine then stops its source, lets the batches in flight
//! finish, and returns its report marked `interrupted`, which the command prints before
//! exiting 130. A second signal exits at once (130).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use psor_core::progress::Progress;

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn flag() -> &'static Arc<AtomicBool> {
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Installs the handlers. signal-hook installs its own `sigaction` whatever the inherited
/// disposition, so this also works when the parent left SIGINT ignored (a shell's `&`
/// background job, `nohup`): psor is then still stoppable cleanly by a SIGTERM or SIGINT
/// sent to it on purpose.
pub fn install() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = flag();
    for sig in [SIGINT, SIGTERM] {
        // Order matters: the conditional exit is registered first, so it sees the flag as it
        // was before this signal: a first signal only sets it, a second one exits.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, crate::exit::INTERRUPTED, flag.clone());
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
}

/// True once a first SIGINT/SIGTERM arrived.
pub fn requested() -> bool {
    flag().load(Relaxed)
}

/// Fresh counters for one run, stopped by the signal flag.
pub fn progress() -> Arc<Progress> {
    Arc::new(Progress::with_interrupt(flag().clone()))
}

/// The line every interrupted report ends with.
pub const RERUN: &str = "interrupted: stopped before the end; the counts above are exactly what was done; \
                         rerun the same command to finish the job";
