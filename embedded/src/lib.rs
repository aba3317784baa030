//! The embedded store: a snapshot file (`--psor file:PATH`) used as an in-process Redis.
//!
//! It exists so people can try psor without a server and rehearse on a copy of production:
//! every command that works on a live PSOR works on a file. To keep every code path of the
//! engine, snapshots and PAC commands unchanged, the store is reached through an in-process
//! connection that implements `redis::ConnectionLike`: it parses the RESP command arrays
//! redis-rs hands it, runs them against an in-memory keyspace, and answers with the
//! `redis::Value`s a Redis 7.0 server would send. Each engine thread opens its own connection
//! onto the one shared keyspace, as it would onto a server.
//!
//! Values psor reads (PAC records and other hashes, sets, lists, sorted sets, strings) are
//! decoded from their `DUMP` payloads when a command reads them, whether psor or a real server
//! wrote them ([`rdb`]); everything else is carried as the exact payload it came as.
//!
//! Changes are saved atomically — `PATH.tmp` written beside, fsynced, renamed over `PATH` —
//! on [`EmbeddedStore::save`] (the CLI calls it through `Psor::flush` at the end of every
//! command that writes) and, as a fallback, when the last handle on the store is dropped.
//! While a store is open, its process holds an exclusive lock on `PATH.lock` beside it, so a
//! second process never reads a file the first is about to replace (see [`open`]).
//!
//! This crate stands between psor-core and psor-formats and knows neither psor-core nor the
//! CLI: psor-core plugs it in as one more kind of connection (a `file:` spec's node connects
//! through [`EmbeddedStore::connect`]) and turns its [`Error`]s into its own. The `DUMP`
//! payload codec ([`rdb`]) lives here rather than in psor-formats: a `.psnap` file carries
//! payloads as opaque bytes (psor-formats reads only their footer's RDB version and knows
//! nothing of Redis), while decoding and re-encoding Redis objects is what this store does
//! for every typed command; psor-core's cross-version copies and comparisons use the same
//! codec through [`rdb`]'s public functions.

#![deny(missing_docs)]

mod commands;
mod error;
pub mod glob;
pub mod rdb;
mod store;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use redis::{ConnectionLike, RedisResult, Value};

use store::Store;
pub use store::{tmp_path, EMBEDDED_VERSION};

pub use error::{Error, Problem, Result};

/// An open embedded store: the keyspace shared by every connection onto it.
pub struct EmbeddedStore {
    store: Mutex<Store>,
    run_id: String,
    label: String,
    /// The lock on `PATH.lock`, held while the store is open (released when this is dropped,
    /// after the last save; see [`open`]).
    _lock: Option<std::fs::File>,
}

/// How long [`open`] waits for another process to close the store before refusing.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").field("label", &self.label).finish_non_exhaustive()
    }
}

/// Opens the store saved at `path`: loads the snapshot if the file exists, starts empty if
/// it does not. A file written by a newer major format version is refused (and so never
/// overwritten); `PATH.tmp` left by an interrupted save is ignored.
///
/// Opening a file this process already has open hands back the same store, so a `copy`
/// between two specs naming one file works on one keyspace and one save wins nothing over
/// another.
///
/// Another process is kept out for as long as the store is open: an exclusive lock on
/// `PATH.lock` beside the file (not on the file itself, which every save replaces), taken
/// before the file is read, so a second process reads what the first saved. A second process
/// waits up to [`LOCK_WAIT`] for the first to finish, then refuses with an error naming the
/// file. The lock file is left in place: removing it would let two processes lock two
/// different files; the lock itself goes with the process, even one that was killed.
pub fn open(path: &Path) -> Result<Arc<EmbeddedStore>> {
    static OPEN: Mutex<Vec<(PathBuf, std::sync::Weak<EmbeddedStore>)>> = Mutex::new(Vec::new());
    let id = psor_formats::file::canonical_path(path);
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    open.retain(|(_, w)| w.strong_count() > 0);
    if let Some(store) = open.iter().find(|(p, _)| *p == id).and_then(|(_, w)| w.upgrade()) {
        return Ok(store);
    }
    let lock = lock(path)?;
    let mut store = EmbeddedStore::new(Store::load(path)?, format!("file:{}", path.display()));
    store._lock = lock;
    let store = Arc::new(store);
    open.push((id, Arc::downgrade(&store)));
    Ok(store)
}

/// `PATH.lock`, beside `PATH`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

/// Takes the store's lock, waiting up to [`LOCK_WAIT`]. `None` where no lock file can be
/// made (a read-only directory): no process can save there either (a save writes `PATH.tmp`
/// beside the file), so reading it unlocked loses nothing.
fn lock(path: &Path) -> Result<Option<std::fs::File>> {
    let lock_path = lock_path(path);
    let file = match std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path) {
        Ok(f) => f,
        Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem) => return Ok(None),
        Err(source) => return Err(Error::WriteFile { path: lock_path, source }),
    };
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Store {
                    path: path.to_path_buf(),
                    problem: Problem::Locked { lock: lock_path, waited: LOCK_WAIT },
                })
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(Error::WriteFile { path: lock_path, source }),
        }
    }
}

/// A store that lives only in memory (never saved): for tests and dry rehearsals.
pub fn in_memory() -> Arc<EmbeddedStore> {
    Arc::new(EmbeddedStore::new(Store::default(), "memory".into()))
}

impl EmbeddedStore {
    fn new(store: Store, label: String) -> Self {
        // A run_id, like a server's, that stays the same for the life of the store.
        // Unique per store in this process (a counter: two stores opened in one millisecond
        // must not look like one server to `Psor::same_keyspace`), and across processes.
        static STORES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = (store::now_ms() as u64 ^ (std::process::id() as u64) << 32)
            .wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let run_id =
            format!("{:016x}{:016x}{:08x}", seed, seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15, seed as u32 ^ 0x5eed);
        EmbeddedStore { store: Mutex::new(store), run_id, label, _lock: None }
    }

    /// `file:PATH` (or `memory`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The file the store is saved to, if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.lock().path.clone()
    }

    /// A new connection onto the store.
    pub fn connect(self: &Arc<Self>) -> EmbeddedConnection {
        EmbeddedConnection { shared: self.clone(), multi: None, multi_failed: false, watches: Vec::new() }
    }

    /// Saves the store to its file if anything changed since the last save (atomically: a
    /// failure leaves the old file intact).
    pub fn save(&self) -> Result<()> {
        self.lock().save()
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic in another thread while it held the lock leaves the keyspace consistent
        // per command (commands do not panic midway by design), so carry on.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // The fallback for a caller that never called `save`; errors have nowhere to go here.
        let _ = self.lock().save();
    }
}

/// A connection onto an [`EmbeddedStore`], as redis-rs sees a server connection.
pub struct EmbeddedConnection {
    shared: Arc<EmbeddedStore>,
    /// Commands queued since MULTI.
    multi: Option<Vec<Vec<Vec<u8>>>>,
    /// A command queued since MULTI was refused: EXEC answers EXECABORT.
    multi_failed: bool,
    /// WATCHed keys and their change counters at WATCH time.
    watches: Vec<(Vec<u8>, u64)>,
}

impl EmbeddedConnection {
    fn unwatch_all(&mut self, store: &mut Store) {
        for (key, _) in self.watches.drain(..) {
            if let Some(w) = store.watched.get_mut(&key) {
                w.0 -= 1;
                if w.0 == 0 {
                    store.watched.remove(&key);
                }
            }
        }
    }
}

impl Drop for EmbeddedConnection {
    fn drop(&mut self) {
        let shared = self.shared.clone();
        let mut store = shared.lock();
        self.unwatch_all(&mut store);
    }
}

/// Splits packed RESP commands (`*N\r\n$len\r\n...\r\n` each) into argument lists.
fn parse_commands(mut b: &[u8]) -> RedisResult<Vec<Vec<Vec<u8>>>> {
    fn line<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        let i = b.windows(2).position(|w| w == b"\r\n")?;
        let l = &b[..i];
        *b = &b[i + 2..];
        Some(l)
    }
    fn number(l: &[u8], sigil: u8) -> Option<usize> {
        let (&first, rest) = l.split_first()?;
        (first == sigil).then(|| std::str::from_utf8(rest).ok()?.parse().ok())?
    }
    let bad = || redis::RedisError::from((redis::ErrorKind::Client, "embedded store: malformed command bytes"));
    let mut cmds = Vec::new();
    while !b.is_empty() {
        let n = line(&mut b).and_then(|l| number(l, b'*')).ok_or_else(bad)?;
        let mut args = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let len = line(&mut b).and_then(|l| number(l, b'$')).ok_or_else(bad)?;
            if b.len() < len + 2 || &b[len..len + 2] != b"\r\n" {
                return Err(bad());
            }
            args.push(b[..len].to_vec());
            b = &b[len + 2..];
        }
        cmds.push(args);
    }
    Ok(cmds)
}

impl EmbeddedConnection {
    fn run_all(&mut self, cmds: Vec<Vec<Vec<u8>>>) -> Vec<Value> {
        // One lock for the whole pipeline: like a server, each command is atomic, and a
        // pipeline's commands run back to back.
        let shared = self.shared.clone();
        let mut store = shared.lock();
        cmds.into_iter().map(|args| commands::dispatch(self, &mut store, args)).collect()
    }
}

impl ConnectionLike for EmbeddedConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        let mut replies = self.run_all(parse_commands(cmd)?);
        replies.pop().ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Client, "embedded store: no command")))
    }

    fn req_packed_commands(&mut self, cmd: &[u8], offset: usize, count: usize) -> RedisResult<Vec<Value>> {
        let replies = self.run_all(parse_commands(cmd)?);
        // As redis-rs's own connection: an error among the skipped replies (a command refused
        // while queueing in an atomic pipeline) fails the whole request.
        for r in replies.iter().take(offset) {
            if let Value::ServerError(e) = r {
                return Err(e.clone().into());
            }
        }
        Ok(replies.into_iter().skip(offset).take(count).collect())
    }

    fn get_db(&self) -> i64 {
        0
    }

    fn check_connection(&mut self) -> bool {
        true
    }

    fn is_open(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_packed_commands() {
        let mut p = redis::pipe();
        p.cmd("SET").arg(b"k\r\n").arg("v").cmd("PING");
        let cmds = parse_commands(&p.get_packed_pipeline()).unwrap();
        assert_eq!(cmds, vec![vec![b"SET".to_vec(), b"k\r\n".to_vec(), b"v".to_vec()], vec![b"PING".to_vec()]]);
        assert!(parse_commands(b"*1\r\n$5\r\nab\r\n").is_err());
    }

    /// A file that is not a snapshot is refused with the typed error that names it (and is
    /// left as it was: nothing is saved over it).
    #[test]
    fn a_file_that_is_not_a_snapshot_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.psnap");
        std::fs::write(&path, b"someone's notes, not a snapshot\n").unwrap();
        let err = open(&path).unwrap_err();
        assert!(matches!(&err, Error::Store { path: p, problem: Problem::Snapshot(_) } if *p == path), "{err:?}");
        assert!(err.to_string().starts_with(&format!("embedded store {}: ", path.display())), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"someone's notes, not a snapshot\n");
    }
}
