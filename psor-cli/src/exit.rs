//! Exit codes, decided in one place and documented in the README.

use psor_core::layout::CatalogError;
use psor_core::pac::Error as PacError;
use psor_core::Error;

/// Done: everything asked was done.
pub const OK: i32 = 0;
/// The operation failed, or some keys failed (the report names them).
pub const FAILED: i32 = 1;
/// Bad usage or bad input: nothing was written.
pub const USAGE: i32 = 2;
/// Done, but some target keys existed with other content and were left alone.
pub const CONFLICTS: i32 = 3;
/// check-compat: the product version is incompatible with the PAC (incompatible upgrade).
pub const INCOMPATIBLE: i32 = 4;
/// The PAC or the product version is not known (not in the PSOR / not in the catalog).
pub const UNKNOWN: i32 = 5;
/// Refused because the target is in use: an old version not quiesced, regions registered.
pub const IN_USE: i32 = 6;
/// status: done, and the report has warnings or orphans (the procedure is at risk, or
/// keys follow the PAC naming but belong to nothing the catalog knows).
pub const FINDINGS: i32 = 7;
/// verify: done, and the two sides differ (the report names the keys).
pub const DIFFERENCES: i32 = 8;
/// Stopped by the user (declined the prompt, Ctrl-C): nothing more was written.
pub const INTERRUPTED: i32 = 130;

/// A failure the CLI itself decides (usage it checks, a declined prompt).
#[derive(Debug)]
pub enum CliError {
    /// Bad usage found by the CLI.
    Usage(String),
    /// The user said no.
    Declined,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) => f.write_str(m),
            CliError::Declined => f.write_str("nothing done"),
        }
    }
}

impl std::error::Error for CliError {}

/// The exit code for an error that ended the run.
pub fn code_for(err: &anyhow::Error) -> i32 {
    if let Some(e) = err.downcast_ref::<CliError>() {
        return match e {
            CliError::Usage(_) => USAGE,
            CliError::Declined => INTERRUPTED,
        };
    }
    if let Some(e) = err.downcast_ref::<PacError>() {
        return match e {
            e if e.is_unknown() => UNKNOWN,
            PacError::InUse { .. } => IN_USE,
            PacError::Catalog(_) => USAGE,
            PacError::Compatible { .. } => USAGE,
            PacError::Transition { .. } | PacError::State { .. } | PacError::Concurrent { .. } => CONFLICTS,
            PacError::Core(core) => code_for_core(core),
            _ => FAILED,
        };
    }
    if let Some(e) = err.downcast_ref::<CatalogError>() {
        return match e {
            CatalogError::UnknownVersion { .. } => UNKNOWN,
            _ => USAGE,
        };
    }
    match err.downcast_ref::<Error>() {
        Some(e) => code_for_core(e),
        None => FAILED,
    }
}

fn code_for_core(e: &Error) -> i32 {
    match e {
        e if e.is_usage() => USAGE,
        Error::Interrupted => INTERRUPTED,
        _ => FAILED,
    }
}

/// The exit code for a finished run, from its counts.
pub fn code_for_outcome(failed: u64, conflicts: u64) -> i32 {
    if failed > 0 {
        FAILED
    } else if conflicts > 0 {
        CONFLICTS
    } else {
        OK
    }
}

/// The exit code for a finished verify: 1 if keys could not be read, 8 if anything differs.
pub fn code_for_verify(o: &psor_core::verify::VerifyCounts) -> i32 {
    if o.failed > 0 {
        FAILED
    } else if o.differences() > 0 {
        DIFFERENCES
    } else {
        OK
    }
}
