//! The errors of the embedded store: its file cannot be read, written, locked, or used.
//!
//! They name the file, as every psor error does. psor-core turns them into its own
//! `psor_core::Error` (`From<psor_embedded::Error>`), keeping each message as it reads here,
//! so a user sees the same words, and the same exit code, whichever crate met the problem.

use std::path::PathBuf;

/// The result type of psor-embedded.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong opening or saving an embedded store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store's file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file the store writes (`PATH.tmp`, `PATH` itself, `PATH.lock`) could not be written.
    #[error("cannot write {path}: {source}")]
    WriteFile {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store's file cannot be used as it is, or must not be overwritten.
    #[error("embedded store {path}: {problem}")]
    Store {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        problem: Problem,
    },
}

/// What is wrong with a store's file ([`Error::Store`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The file is not a snapshot psor can read (or writing one failed in the format layer).
    #[error("{0}")]
    Snapshot(#[from] psor_formats::Error),
    /// Another process has the store open (holds its lock) and did not close it in time.
    #[error(
        "in use by another psor process (it holds {}); waited {} s for it to finish: try again once it is done",
        lock.display(),
        waited.as_secs()
    )]
    Locked {
        /// The lock file, `PATH.lock`.
        lock: PathBuf,
        /// How long this process waited for the other one.
        waited: std::time::Duration,
    },
    /// The file was written by a newer snapshot format version: it is read, but never replaced.
    #[error(
        "not saving: it was written by a newer psor (format {found}); this psor writes {} and will not overwrite it",
        psor_formats::CURRENT_VERSION
    )]
    NewerFormat {
        /// The format version in the file.
        found: psor_formats::Version,
    },
}
