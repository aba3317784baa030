//! Typed errors for everything psor-core does.
//!
//! Each variant carries the context a user needs to act: which server, which key, which
//! file. The CLI maps them to exit codes in one place (`psor-cli/src/exit.rs`). Passwords
//! never appear here: specs are stored redacted before they reach an error.

use crate::display::display_key;

/// The result type of psor-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in psor-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `--psor` / `PSOR_URL` spec that does not parse.
    #[error("bad PSOR spec `{spec}`: {reason}. Accepted forms: {forms}", forms = crate::display::ACCEPTED_FORMS)]
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
    /// `--read-from replica-only`: a master has no replica psor may read (none online, none
    /// reachable, none caught up in time, or the one read disappeared during the run).
    #[error("no replica to read for master {master}: {reason} (--read-from replica-only; --read-from replica falls back to the master)")]
    ReplicaUnavailable {
        /// `host:port` of the master.
        master: String,
        /// Why no replica could be used.
        reason: String,
    },
    /// The work was stopped by the caller (Ctrl-C, a closed output).
    #[error(
        "interrupted before the end (nothing half-done is kept as complete); rerun the same command to finish the job"
    )]
    Interrupted,
}

impl From<psor_embedded::Error> for Error {
    /// The embedded store's errors, as psor-core has always reported them: a file it cannot
    /// read or write is [`Error::ReadFile`] / [`Error::WriteFile`], anything else about the
    /// store's file is [`Error::Store`] with the same words (and so the same exit code).
    fn from(e: psor_embedded::Error) -> Self {
        match e {
            psor_embedded::Error::ReadFile { path, source } => Error::ReadFile { path, source },
            psor_embedded::Error::WriteFile { path, source } => Error::WriteFile { path, source },
            psor_embedded::Error::Store { path, problem } => Error::Store { path, detail: problem.to_string() },
            // psor_embedded::Error is non-exhaustive: a variant added later keeps its message.
            other => Error::Refused(other.to_string()),
        }
    }
}

impl Error {
    /// True when a server refused the connection for want of the right credentials
    /// (`NOAUTH`, `WRONGPASS`, a failed `AUTH`) or permissions (`NOPERM`).
    pub fn is_auth_refusal(&self) -> bool {
        matches!(self, Error::Connect { source, .. } if is_auth_error(source))
    }

    /// True when the error is the user's input (a bad spec, a refused request, an unreadable
    /// file), as opposed to a failure while working on a server.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::BadSpec { .. } | Error::Refused(_) | Error::ReadFile { .. } | Error::Store { .. })
    }
}

/// What a Redis failure means for the work that met it. [`classify`] decides, in one
/// place, for every retry loop in psor: the connection's ([`crate::connect::NodeConn::retry`]),
/// the router's resends, the engine's, import's and export's per-key replies, and the PAC
/// record transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The transport failed (a timeout, a dropped connection): reconnect and send again.
    Retry,
    /// `MOVED` / `ASK`: the slot is served elsewhere; send it there.
    Redirect,
    /// The server cannot serve now but will (`LOADING`, `TRYAGAIN`, `CLUSTERDOWN`,
    /// `MASTERDOWN`, `READONLY` during a failover, `BUSY` with a script): wait, then again.
    Wait,
    /// It will fail every key the same way (out of memory, no permission, bad credentials,
    /// a refused certificate, disk trouble, payloads from a newer Redis): stop the run.
    FatalForRun,
    /// This key's own trouble (`WRONGTYPE`, `BUSYKEY`, a bad payload…): count it, go on.
    PerKey,
}

impl ErrorClass {
    /// True for the classes a loop may try again (after a wait, a reconnect or a redirect).
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorClass::Retry | ErrorClass::Redirect | ErrorClass::Wait)
    }
}

/// The class of a Redis failure; see [`ErrorClass`].
pub fn classify(err: &redis::RedisError) -> ErrorClass {
    if err.is_io_error() {
        // A certificate the client does not trust fails the same way every time. redis-rs
        // 1.8 keeps the io::Error's kind private (`as_io_error` is crate-only), so the
        // rustls message is the one public signal.
        let text = err.to_string();
        if text.contains("certificate") || text.contains("CertificateRequired") || text.contains("HandshakeFailure") {
            return ErrorClass::FatalForRun;
        }
        return ErrorClass::Retry;
    }
    if err.is_timeout() || err.is_connection_dropped() {
        return ErrorClass::Retry;
    }
    match err.code() {
        Some(code) => classify_code(code, err.detail()),
        // Not a server reply (a reply psor cannot parse, a client-side refusal): the same
        // every time.
        None => ErrorClass::FatalForRun,
    }
}

/// The class of an error reply (a `Value::ServerError` in a pipeline's replies).
pub fn classify_server(err: &redis::ServerError) -> ErrorClass {
    classify_code(err.code(), err.details())
}

fn classify_code(code: &str, details: Option<&str>) -> ErrorClass {
    match code {
        "MOVED" | "ASK" => ErrorClass::Redirect,
        "LOADING" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "READONLY" | "BUSY" => ErrorClass::Wait,
        "OOM" | "NOPERM" | "NOAUTH" | "WRONGPASS" | "MISCONF" | "NOSCRIPT" | "EXECABORT" => ErrorClass::FatalForRun,
        _ if details.is_some_and(|d| d.contains("DUMP payload version")) => ErrorClass::FatalForRun,
        _ => ErrorClass::PerKey,
    }
}

/// Tells a failure worth retrying (timeouts, dropped connections, LOADING, TRYAGAIN,
/// MOVED/ASK, a master that just became a replica) from a fatal one: [`classify`] says
/// [`ErrorClass::is_transient`].
pub fn is_retryable(err: &redis::RedisError) -> bool {
    classify(err).is_transient()
}

/// A refusal for want of (the right) credentials or permissions.
pub(crate) fn is_auth_error(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::AuthenticationFailed || matches!(e.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::*;

    fn reply(resp: &str) -> redis::ServerError {
        match redis::parse_redis_value(format!("-{resp}\r\n").as_bytes()) {
            Ok(redis::Value::ServerError(e)) => e,
            other => panic!("{resp}: {other:?}"),
        }
    }

    fn io(kind: std::io::ErrorKind, text: &str) -> redis::RedisError {
        std::io::Error::new(kind, text.to_owned()).into()
    }

    #[test]
    fn every_server_error_psor_knows_has_its_class() {
        let table = [
            ("MOVED 3999 127.0.0.1:6381", Redirect),
            ("ASK 3999 127.0.0.1:6381", Redirect),
            ("TRYAGAIN Multiple keys request during rehashing of slot", Wait),
            ("LOADING Redis is loading the dataset in memory", Wait),
            ("CLUSTERDOWN The cluster is down", Wait),
            ("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", Wait),
            ("READONLY You can't write against a read only replica.", Wait),
            ("BUSY Redis is busy running a script.", Wait),
            ("OOM command not allowed when used memory > 'maxmemory'.", FatalForRun),
            ("NOPERM User psor has no permissions to run the 'unlink' command", FatalForRun),
            ("NOAUTH Authentication required.", FatalForRun),
            ("WRONGPASS invalid username-password pair or user is disabled.", FatalForRun),
            ("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist", FatalForRun),
            ("NOSCRIPT No matching script. Please use EVAL.", FatalForRun),
            ("EXECABORT Transaction discarded because of previous errors.", FatalForRun),
            ("ERR DUMP payload version or checksum are wrong", FatalForRun),
            ("BUSYKEY Target key name already exists.", PerKey),
            ("WRONGTYPE Operation against a key holding the wrong kind of value", PerKey),
            ("ERR no such key", PerKey),
            ("ERR Bad data format", PerKey),
            ("CROSSSLOT Keys in request don't hash to the same slot", PerKey),
        ];
        for (resp, class) in table {
            let e = reply(resp);
            assert_eq!(classify_server(&e), class, "{resp}");
            let r: redis::RedisError = e.into();
            assert_eq!(classify(&r), class, "{resp} as a RedisError");
            assert_eq!(is_retryable(&r), matches!(class, Retry | Redirect | Wait), "{resp}");
        }
    }

    #[test]
    fn transport_failures_retry_and_a_refused_certificate_does_not() {
        use std::io::ErrorKind as K;
        for (e, class) in [
            (io(K::TimedOut, "timed out"), Retry),
            (io(K::WouldBlock, "Resource temporarily unavailable"), Retry),
            (io(K::ConnectionReset, "connection reset by peer"), Retry),
            (io(K::BrokenPipe, "broken pipe"), Retry),
            (io(K::UnexpectedEof, "unexpected end of file"), Retry),
            (io(K::ConnectionRefused, "connection refused"), Retry),
            (io(K::InvalidData, "invalid peer certificate: UnknownIssuer"), FatalForRun),
            (io(K::InvalidData, "received fatal alert: CertificateRequired"), FatalForRun),
            (io(K::InvalidData, "received fatal alert: HandshakeFailure"), FatalForRun),
        ] {
            assert_eq!(classify(&e), class, "{e}");
        }
        let dropped: redis::RedisError = (redis::ErrorKind::Io, "connection dropped").into();
        assert_eq!(classify(&dropped), Retry);
        let parse: redis::RedisError = (redis::ErrorKind::Parse, "bad reply").into();
        assert_eq!(classify(&parse), FatalForRun);
    }

    /// Every error of the embedded store reaches the user as psor-core reported it before the
    /// store was its own crate: the same variant (so the same exit code) and the same words.
    #[test]
    fn embedded_store_errors_keep_their_variant_and_words() {
        use psor_embedded::{Error as E, Problem};
        use std::path::PathBuf;
        let file = PathBuf::from("/data/pacs.psnap");
        let io = || std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let read: Error = E::ReadFile { path: file.clone(), source: io() }.into();
        assert!(matches!(&read, Error::ReadFile { path, .. } if *path == file), "{read:?}");
        assert_eq!(read.to_string(), "cannot read /data/pacs.psnap: permission denied");
        let write: Error = E::WriteFile { path: file.with_extension("psnap.tmp"), source: io() }.into();
        assert!(matches!(&write, Error::WriteFile { .. }), "{write:?}");
        assert_eq!(write.to_string(), "cannot write /data/pacs.psnap.tmp: permission denied");
        let locked: Error = E::Store {
            path: file.clone(),
            problem: Problem::Locked {
                lock: "/data/pacs.psnap.lock".into(),
                waited: std::time::Duration::from_secs(10),
            },
        }
        .into();
        assert!(matches!(&locked, Error::Store { path, .. } if *path == file), "{locked:?}");
        assert_eq!(
            locked.to_string(),
            "embedded store /data/pacs.psnap: in use by another psor process (it holds /data/pacs.psnap.lock); \
             waited 10 s for it to finish: try again once it is done"
        );
        let found = psor_formats::Version { major: 1, minor: 9 };
        let newer: Error = E::Store { path: file.clone(), problem: Problem::NewerFormat { found } }.into();
        assert!(matches!(&newer, Error::Store { .. }), "{newer:?}");
        assert_eq!(
            newer.to_string(),
            format!(
                "embedded store /data/pacs.psnap: not saving: it was written by a newer psor (format 1.9); \
                 this psor writes {} and will not overwrite it",
                psor_formats::CURRENT_VERSION
            )
        );
        let bad: Error = E::Store { path: file, problem: Problem::Snapshot(psor_formats::Error::Io(io())) }.into();
        assert!(matches!(&bad, Error::Store { .. }) && bad.is_usage(), "{bad:?}");
        assert_eq!(bad.to_string(), "embedded store /data/pacs.psnap: I/O error: permission denied");
    }
}
