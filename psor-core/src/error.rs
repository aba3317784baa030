//! Typed errors for everything psor-core does.
//!
//! Each variant carries the context a user needs to act: which server, which key, which
//! file. The CLI maps them to exit codes in one place (`psor-cli/src/exit.rs`). Passwords
//! never appear here: specs are stored redacted before they reach an error.

use crate::keys::display_key;

/// The result type of psor-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in psor-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `--psor` / `PSOR_URL` spec that does not parse.
    #[error("bad PSOR spec `{spec}`: {reason}. Accepted forms: {forms}", forms = crate::connect::ACCEPTED_FORMS)]
    BadSpec {
        /// The spec as given, with any password replaced by `***`.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Input that is well-formed but not acceptable (an empty prefix, overlapping prefixes…).
    #[error("{0}")]
    Refused(String),
    /// A file psor needs (TLS material, password file…) could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The path.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file psor writes (the embedded store's file) could not be written.
    #[error("cannot write {path}: {source}")]
    WriteFile {
        /// The path.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The embedded store's file is not a snapshot psor can use, or must not be overwritten.
    #[error("embedded store {path}: {detail}")]
    Store {
        /// The path.
        path: std::path::PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The server could not be reached or refused the handshake (auth, TLS).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port` of the server.
        addr: String,
        /// What redis-rs said.
        source: redis::RedisError,
    },
    /// A server that accepted the connection (or not even that) but did not answer in time
    /// while psor connected.
    #[error("{addr} did not answer {what} within {} s{hint}", waited.as_secs_f64())]
    NoAnswer {
        /// `host:port` of the server.
        addr: String,
        /// What it did not answer: the connection, the TLS handshake, a first command.
        what: &'static str,
        /// How long psor waited (the connect timeout).
        waited: std::time::Duration,
        /// A likely cause, if one (" (is it a TLS port?)"), or empty.
        hint: &'static str,
    },
    /// A command failed in a way that stops the run.
    #[error("{addr}: {op} failed{}: {source}", key.as_deref().map(|k| format!(" on key {}", display_key(k))).unwrap_or_default())]
    Command {
        /// `host:port` of the server.
        addr: String,
        /// The command (or step) that failed.
        op: &'static str,
        /// The key it was working on, if one.
        key: Option<Vec<u8>>,
        /// What redis-rs said.
        source: redis::RedisError,
    },
    /// The server answered something psor did not expect.
    #[error("{addr}: unexpected reply to {op}: {detail}")]
    Protocol {
        /// `host:port` of the server.
        addr: String,
        /// The command.
        op: &'static str,
        /// What was odd about the reply.
        detail: String,
    },
    /// The server is too old for what was asked.
    #[error("{addr} runs Redis {version}; {what} needs {needed} or newer")]
    ServerTooOld {
        /// `host:port` of the server.
        addr: String,
        /// Its version.
        version: String,
        /// What needs the newer version.
        what: &'static str,
        /// The version needed.
        needed: &'static str,
    },
    /// The work was stopped by the caller (Ctrl-C, a closed output).
    #[error("stopped before the end")]
    Interrupted,
}

impl Error {
    /// True when the error is the user's input (a bad spec, a refused request, an unreadable
    /// file), as opposed to a failure while working on a server.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::BadSpec { .. } | Error::Refused(_) | Error::ReadFile { .. } | Error::Store { .. })
    }
}

/// Tells a failure worth retrying (timeouts, dropped connections, LOADING, TRYAGAIN,
/// MOVED/ASK, a master that just became a replica) from a fatal one. This is the one place
/// that decides; every retry loop in psor asks it.
pub fn is_retryable(err: &redis::RedisError) -> bool {
    if err.is_io_error() {
        // A certificate the client does not trust fails the same way every time. redis-rs
        // 1.8 keeps the io::Error's kind private (`as_io_error` is crate-only), so the
        // rustls message is the one public signal.
        let text = err.to_string();
        return !(text.contains("certificate")
            || text.contains("CertificateRequired")
            || text.contains("HandshakeFailure"));
    }
    if err.is_timeout() || err.is_connection_dropped() {
        return true;
    }
    matches!(
        err.code(),
        Some("LOADING" | "TRYAGAIN" | "MOVED" | "ASK" | "CLUSTERDOWN" | "MASTERDOWN" | "READONLY" | "BUSY")
    )
}
