//! Exit codes, decided in one place and documented in the README.

use psor_core::connect::RegionEnvError;
use psor_core::layout::{CatalogError, NameError};
use psor_core::pac::Error as PacError;
use psor_core::snapshot::Error as SnapshotError;
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
/// `--read-from replica-only`: a master had no replica to read (none online, reachable or
/// caught up in time, or the one read was lost during the run); what was done is reported
/// by the error, and rerunning finishes the job.
pub const NO_REPLICA: i32 = 9;
/// Stopped by the user: the prompt was declined (nothing written), or Ctrl-C / SIGTERM (the
/// report says exactly what was done; rerunning the same command finishes the job).
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

/// The exit code for an error that ended the run: every error type psor has maps here, so
/// one cause gives one code whatever the command (a foreign output file is 2 for `export`
/// and for the `rem-old-pac --backup` alike). Context added with anyhow is looked through.
pub fn code_for(err: &anyhow::Error) -> i32 {
    if let Some(e) = err.downcast_ref::<CliError>() {
        return code_for_cli(e);
    }
    if let Some(e) = err.downcast_ref::<PacError>() {
        return code_for_pac(e);
    }
    if let Some(e) = err.downcast_ref::<SnapshotError>() {
        return code_for_snapshot(e);
    }
    if let Some(e) = err.downcast_ref::<CatalogError>() {
        return code_for_catalog(e);
    }
    if err.downcast_ref::<RegionEnvError>().is_some() {
        return USAGE;
    }
    if let Some(e) = err.downcast_ref::<Error>() {
        return code_for_core(e);
    }
    if err.downcast_ref::<NameError>().is_some() {
        return USAGE;
    }
    FAILED
}

fn code_for_cli(e: &CliError) -> i32 {
    match e {
        CliError::Usage(_) => USAGE,
        CliError::Declined => INTERRUPTED,
    }
}

fn code_for_pac(e: &PacError) -> i32 {
    match e {
        e if e.is_unknown() => UNKNOWN,
        PacError::InUse { .. } => IN_USE,
        PacError::Catalog(c) => code_for_catalog(c),
        PacError::Compatible { .. } => USAGE,
        PacError::Transition { .. } | PacError::State { .. } | PacError::Concurrent { .. } => CONFLICTS,
        PacError::Core(core) => code_for_core(core),
        PacError::Snapshot(s) => code_for_snapshot(s),
        // A damaged record, a layout without a store psor needs, a store psor cannot carry.
        _ => FAILED,
    }
}

fn code_for_snapshot(e: &SnapshotError) -> i32 {
    match e {
        SnapshotError::Core(core) => code_for_core(core),
        e if e.is_usage() => USAGE,
        _ => FAILED,
    }
}

fn code_for_catalog(e: &CatalogError) -> i32 {
    match e {
        CatalogError::UnknownVersion { .. } => UNKNOWN,
        _ => USAGE,
    }
}

fn code_for_core(e: &Error) -> i32 {
    match e {
        e if e.is_usage() => USAGE,
        Error::Interrupted => INTERRUPTED,
        Error::ReplicaUnavailable { .. } => NO_REPLICA,
        _ => FAILED,
    }
}

/// The exit code for a run that returned its report: 130 when it was interrupted, else from
/// its counts.
pub fn code_for_run(interrupted: bool, failed: u64, conflicts: u64) -> i32 {
    if interrupted {
        INTERRUPTED
    } else {
        code_for_outcome(failed, conflicts)
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

/// The exit code for a verify that returned its report: 130 when it was interrupted (what it
/// compared proves nothing about the rest), else 1 if keys could not be read, 8 if anything
/// differs.
pub fn code_for_verify(v: &psor_core::verify::VerifyOutcome) -> i32 {
    let o = &v.counts;
    if v.interrupted {
        INTERRUPTED
    } else if o.failed > 0 {
        FAILED
    } else if o.differences() > 0 {
        DIFFERENCES
    } else {
        OK
    }
}

#[cfg(test)]
mod tests {
    //! Every error variant psor has, walked through [`code_for`]. `CliError` is matched
    //! without a wildcard, so a new variant does not compile until it is mapped; the
    //! library's enums are `#[non_exhaustive]`, which Rust lets only their own crate match
    //! exhaustively, so each of their variants is listed here by hand: add a new one here
    //! when you add it there.
    use std::path::PathBuf;

    use psor_core::layout::TransitionError;
    use psor_core::layout::{CatalogErrorKind, KeyError, PacMode, PacName, PacRecordError, ProductVersion};

    use super::*;

    fn io() -> std::io::Error {
        std::io::Error::other("disk on fire")
    }

    fn redis_err() -> redis::RedisError {
        std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset").into()
    }

    fn core_errors() -> Vec<(Error, i32)> {
        let path = PathBuf::from("f");
        vec![
            (Error::BadSpec { spec: "x".into(), reason: "y".into() }, USAGE),
            (Error::Refused("overlap".into()), USAGE),
            (Error::ReadFile { path: path.clone(), source: io() }, USAGE),
            (Error::Store { path: path.clone(), detail: "newer".into() }, USAGE),
            (Error::WriteFile { path, source: io() }, FAILED),
            (Error::Connect { addr: "a:1".into(), source: redis_err() }, FAILED),
            (Error::Command { addr: "a:1".into(), op: "UNLINK", key: None, source: redis_err() }, FAILED),
            (Error::Protocol { addr: "a:1".into(), op: "SCAN", detail: "odd".into() }, FAILED),
            (Error::ServerTooOld { addr: "a:1".into(), version: "5.0".into(), what: "x", needed: "6.0" }, FAILED),
            (
                Error::NoAnswer {
                    addr: "a:1".into(),
                    what: "the TLS handshake",
                    waited: std::time::Duration::from_secs(5),
                    hint: "",
                },
                FAILED,
            ),
            (Error::ReplicaUnavailable { master: "a:1".into(), reason: "no online replica".into() }, NO_REPLICA),
            (Error::Interrupted, INTERRUPTED),
        ]
    }

    fn snapshot_errors() -> Vec<(SnapshotError, i32)> {
        let path = PathBuf::from("f");
        let mut all = vec![
            (SnapshotError::File { path: path.clone(), source: psor_formats::Error::Io(io()) }, USAGE),
            (SnapshotError::Open { path: path.clone(), source: io() }, USAGE),
            (SnapshotError::Refused("a foreign output file".into()), USAGE),
            (SnapshotError::Write { path, source: io() }, FAILED),
            (SnapshotError::TargetRefused("newer payloads".into()), FAILED),
        ];
        all.extend(core_errors().into_iter().map(|(e, c)| (SnapshotError::Core(e), c)));
        all
    }

    fn catalog_errors() -> Vec<(CatalogError, i32)> {
        vec![
            (
                CatalogError::Invalid {
                    kind: CatalogErrorKind::Syntax,
                    file: "l.toml".into(),
                    line: 1,
                    column: 1,
                    field: "x".into(),
                    message: "y".into(),
                },
                USAGE,
            ),
            (CatalogError::Read { path: PathBuf::from("l.toml"), source: io() }, USAGE),
            (CatalogError::UnknownVersion { version: "11.0".into(), known: "9.0".into() }, UNKNOWN),
        ]
    }

    fn pac_errors() -> Vec<(PacError, i32)> {
        let pac = PacName::new("MyPAC").unwrap();
        let v = ProductVersion::new("9.0").unwrap();
        let mut all = vec![
            (PacError::UnknownPac { pac: pac.clone(), known: Vec::new() }, UNKNOWN),
            (
                PacError::NoCompatibleVersion { pac: pac.clone(), product_version: v.clone(), versions: "8.0".into() },
                UNKNOWN,
            ),
            (PacError::InUse { pac: pac.clone(), blockers: Vec::new() }, IN_USE),
            (PacError::Compatible { pac: pac.clone(), reason: "same epoch".into() }, USAGE),
            (
                PacError::Transition {
                    pac: pac.clone(),
                    version: v,
                    source: TransitionError { from: PacMode::Upgrade, to: PacMode::Quiesce, allowed: "Running".into() },
                },
                CONFLICTS,
            ),
            (PacError::State { pac: pac.clone(), reason: "creating".into() }, CONFLICTS),
            (PacError::Concurrent { key: "k".into() }, CONFLICTS),
            (PacError::BadRecord { key: "k".into(), source: PacRecordError::MissingField("mode") }, FAILED),
            (PacError::Key(KeyError::NoStoreWithRole { layout: "l".into(), role: "pac-record" }), FAILED),
            (PacError::Unsupported("carrying a tagged store".into()), FAILED),
        ];
        all.extend(core_errors().into_iter().map(|(e, c)| (PacError::Core(e), c)));
        all.extend(catalog_errors().into_iter().map(|(e, c)| (PacError::Catalog(e), c)));
        all.extend(snapshot_errors().into_iter().map(|(e, c)| (PacError::Snapshot(e), c)));
        all
    }

    fn cli_errors() -> Vec<(CliError, i32)> {
        let all = [CliError::Usage("no PSOR given".into()), CliError::Declined];
        all.into_iter()
            .map(|e| {
                let code = match e {
                    CliError::Usage(_) => USAGE,
                    CliError::Declined => INTERRUPTED,
                };
                (e, code)
            })
            .collect()
    }

    fn check(e: anyhow::Error, code: i32) {
        assert_eq!(code_for(&e), code, "{e}");
        // The same cause with context added by a command maps the same.
        let e = e.context("connecting to redis://127.0.0.1:1");
        assert_eq!(code_for(&e), code, "{e:#}");
    }

    #[test]
    fn every_error_variant_has_its_exit_code() {
        for (e, code) in core_errors() {
            check(e.into(), code);
        }
        for (e, code) in snapshot_errors() {
            check(e.into(), code);
        }
        for (e, code) in catalog_errors() {
            check(e.into(), code);
        }
        for (e, code) in pac_errors() {
            check(e.into(), code);
        }
        for (e, code) in cli_errors() {
            check(e.into(), code);
        }
        for e in [
            RegionEnvError::Malformed { var: "ES_SCALE_OUT_REPOS_1".into(), at: None, reason: "no =".into() },
            RegionEnvError::BadLine { path: PathBuf::from("env"), line: 3 },
            RegionEnvError::NoPsor { vars: "ES_SCALE_OUT_REPOS_1".into() },
            RegionEnvError::SeveralPsors { vars: "ES_SCALE_OUT_REPOS_1,ES_SCALE_OUT_REPOS_2".into() },
            RegionEnvError::Read { path: PathBuf::from("env"), source: io() },
        ] {
            check(e.into(), USAGE);
        }
        check(PacName::new("My.PAC").unwrap_err().into(), USAGE);
        check(anyhow::anyhow!("anything else"), FAILED);
    }

    #[test]
    fn one_cause_one_code_from_every_command() {
        // A foreign output file: export's error, and the same inside rem-old-pac's backup.
        let foreign = || SnapshotError::Refused("out.psnap exists and is not a snapshot".into());
        assert_eq!(code_for(&foreign().into()), USAGE);
        assert_eq!(code_for(&PacError::Snapshot(foreign()).into()), USAGE);
        // Ctrl-C in the engine, in a snapshot, in a PAC step.
        assert_eq!(code_for(&Error::Interrupted.into()), INTERRUPTED);
        assert_eq!(code_for(&SnapshotError::Core(Error::Interrupted).into()), INTERRUPTED);
        assert_eq!(code_for(&PacError::Snapshot(SnapshotError::Core(Error::Interrupted)).into()), INTERRUPTED);
    }
}
