//! The in-memory keyspace of the embedded store, and saving it to / loading it from a
//! `.psnap` file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use psor_formats::{Header, KeyKind, Record, Selection, SnapshotReader, SnapshotWriter, Source, CURRENT_VERSION};

use super::rdb::{self, Typed};
use crate::error::{Error, Problem, Result};

/// The server version the embedded store reports in `INFO` (and writes into snapshot headers).
pub const EMBEDDED_VERSION: &str = "7.0.0";

/// A key's value: built by commands (typed), or a `DUMP` payload carried as it came.
#[derive(Clone, Debug)]
pub enum Val {
    /// A value commands built or changed.
    Typed(Typed),
    /// A payload from `RESTORE` or a snapshot file, with its type. Decoded only when a
    /// typed command reads it, and then only for the reply: `DUMP` hands back the exact bytes.
    Payload {
        /// The kind, from the type byte.
        kind: KeyKind,
        /// The payload (footer included).
        bytes: Vec<u8>,
    },
}

impl Val {
    /// The kind `TYPE` reports.
    pub fn kind(&self) -> KeyKind {
        match self {
            Val::Typed(t) => t.kind(),
            Val::Payload { kind, .. } => *kind,
        }
    }

    /// The value decoded (a copy for payloads).
    pub fn decoded(&self) -> std::result::Result<std::borrow::Cow<'_, Typed>, rdb::RdbError> {
        match self {
            Val::Typed(t) => Ok(std::borrow::Cow::Borrowed(t)),
            // Hash fields whose own expiry has passed are not shown (Valkey 9 field expirations).
            Val::Payload { bytes, .. } => rdb::decode_at(bytes, now_ms()).map(std::borrow::Cow::Owned),
        }
    }

    /// The `DUMP` payload.
    pub fn dump(&self) -> Vec<u8> {
        match self {
            Val::Typed(t) => rdb::encode(t),
            Val::Payload { bytes, .. } => bytes.clone(),
        }
    }
}

/// One key.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The value.
    pub val: Val,
    /// Absolute expiry, Unix milliseconds.
    pub expire_at_ms: Option<i64>,
}

/// The keyspace and what the connections share about it.
#[derive(Debug, Default)]
pub struct Store {
    /// Every key, in byte order (so a SCAN cursor can be "the next key").
    pub keys: BTreeMap<Vec<u8>, Entry>,
    /// Changed since the last save.
    pub dirty: bool,
    /// Watched keys: how many connections watch each, and a counter bumped whenever it changes.
    pub watched: HashMap<Vec<u8>, (usize, u64)>,
    /// SCAN cursors handed out: cursor → the key to continue from.
    pub cursors: BTreeMap<u64, Vec<u8>>,
    /// The next cursor number.
    pub next_cursor: u64,
    /// The file's path, if the store is backed by one.
    pub path: Option<PathBuf>,
    /// Why saving is refused: the file was written by this newer format version.
    pub save_refused: Option<psor_formats::Version>,
}

use psor_formats::file::sync_dir;
pub use psor_formats::file::{now_ms, tmp_path};

impl Store {
    /// Records that `key` changed: the store needs saving and WATCHers must fail.
    pub fn touch(&mut self, key: &[u8]) {
        self.dirty = true;
        if let Some((_, version)) = self.watched.get_mut(key) {
            *version += 1;
        }
    }

    /// Removes `key` if its time has passed (Redis's lazy expiry).
    pub fn expire_if_due(&mut self, key: &[u8], now: i64) {
        if self.keys.get(key).and_then(|e| e.expire_at_ms).is_some_and(|t| t <= now) {
            self.keys.remove(key);
            self.touch(key);
        }
    }

    /// The live entry for `key`.
    pub fn get(&mut self, key: &[u8]) -> Option<&Entry> {
        self.expire_if_due(key, now_ms());
        self.keys.get(key)
    }

    /// The live entry for `key`, for changing it (the caller has called [`Store::touch`] or will).
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.expire_if_due(key, now_ms());
        self.keys.get_mut(key)
    }

    /// Sets `key`.
    pub fn insert(&mut self, key: Vec<u8>, entry: Entry) {
        self.touch(&key);
        self.keys.insert(key, entry);
    }

    /// Removes `key`; true if it existed (and had not expired).
    pub fn remove(&mut self, key: &[u8]) -> bool {
        self.expire_if_due(key, now_ms());
        let had = self.keys.remove(key).is_some();
        if had {
            self.touch(key);
        }
        had
    }

    /// Loads a snapshot file into an empty store.
    pub fn load(path: &Path) -> Result<Store> {
        let bad = |e: psor_formats::Error| Error::Store { path: path.to_path_buf(), problem: Problem::Snapshot(e) };
        let mut store = Store { path: Some(path.to_path_buf()), ..Store::default() };
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(store),
            Err(source) => return Err(Error::ReadFile { path: path.to_path_buf(), source }),
        };
        // psor-formats refuses a newer major version here, so such a file is never opened
        // (and so never overwritten).
        let mut reader = SnapshotReader::open(std::io::BufReader::new(file)).map_err(bad)?;
        let version = reader.header().version;
        if version > CURRENT_VERSION {
            store.save_refused = Some(version);
        }
        for record in reader.records() {
            let r = record.map_err(bad)?;
            store.keys.insert(
                r.key,
                Entry { val: Val::Payload { kind: r.kind, bytes: r.payload }, expire_at_ms: r.expire_at_ms },
            );
        }
        Ok(store)
    }

    /// Saves to the store's file if it changed since the last save: writes `PATH.tmp` beside
    /// it, fsyncs, renames over `PATH`, fsyncs the directory. A failure at any step leaves the
    /// old file as it was.
    pub fn save(&mut self) -> Result<()> {
        let Some(path) = self.path.clone() else { return Ok(()) };
        if !self.dirty {
            return Ok(());
        }
        if let Some(found) = self.save_refused {
            return Err(Error::Store { path, problem: Problem::NewerFormat { found } });
        }
        let tmp = tmp_path(&path);
        let io = |source: std::io::Error| Error::WriteFile { path: tmp.clone(), source };
        let fmt = |e: psor_formats::Error| Error::Store { path: tmp.clone(), problem: Problem::Snapshot(e) };
        let now = now_ms();
        let header = Header::new(
            now,
            Source {
                server_version: EMBEDDED_VERSION.into(),
                spec: format!("file:{}", path.display()),
                selection: Selection::Prefix(Vec::new()),
            },
        );
        let written = (|| -> Result<()> {
            let file = std::fs::File::create(&tmp).map_err(io)?;
            let mut w = SnapshotWriter::new(std::io::BufWriter::new(file), &header).map_err(fmt)?;
            for (key, e) in &self.keys {
                if e.expire_at_ms.is_some_and(|t| t <= now) {
                    continue;
                }
                let payload = e.val.dump();
                let rdb_version = psor_formats::dump_rdb_version(&payload).unwrap_or(rdb::RDB_VERSION);
                w.push(&Record {
                    key: key.clone(),
                    kind: e.val.kind(),
                    expire_at_ms: e.expire_at_ms,
                    rdb_version,
                    payload,
                })
                .map_err(fmt)?;
            }
            let (_, buf) = w.finish_into_inner().map_err(fmt)?;
            let file = buf.into_inner().map_err(|e| io(e.into_error()))?;
            file.sync_all().map_err(io)?;
            drop(file);
            std::fs::rename(&tmp, &path).map_err(|source| Error::WriteFile { path: path.clone(), source })?;
            sync_dir(&path);
            Ok(())
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        } else {
            self.dirty = false;
        }
        written
    }
}
