//! Writing a snapshot file without ever leaving a half-written one at its name, and the
//! clock snapshots are stamped with: the helpers every writer of `.psnap` files (an export,
//! the embedded store's save) shares.
//!
//! A file is written to `FILE.tmp` beside `FILE` ([`tmp_path`]; a fixed name, so a second
//! writer of the same file finds it and stops), synced, then moved to `FILE` by
//! [`persist`], and the directory is synced ([`sync_dir`]).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 before it, `i64::MAX` far after it).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// `FILE.tmp`, beside `FILE`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// The path as one file is known whatever way it was spelled (the file may not exist yet:
/// then its directory's canonical path and its name). For telling two spellings of one
/// file apart where no inode can be had (a file not written yet, a platform without them).
pub fn canonical_path(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(parent), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Moves the finished `tmp` to `path`. With `overwrite`, a rename (replacing `path` if it
/// is there). Without, a hard link that fails with [`io::ErrorKind::AlreadyExists`] if
/// `path` appeared meanwhile (what `tempfile`'s `persist_noclobber` does), then `tmp` goes;
/// on a file system without hard links, a rename if `path` is still absent. `tmp` is left
/// in place on error (the caller removes it).
pub fn persist(tmp: &Path, path: &Path, overwrite: bool) -> io::Result<()> {
    if overwrite {
        return std::fs::rename(tmp, path);
    }
    match std::fs::hard_link(tmp, path) {
        Ok(()) => {
            let _ = std::fs::remove_file(tmp);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        // A file system without hard links: the caller's check before writing is what protects.
        Err(_) if !path.exists() => std::fs::rename(tmp, path),
        Err(e) => Err(e),
    }
}

/// Makes a rename into `path`'s directory durable. Best effort: not every platform can open
/// a directory, and the file itself is already synced, so a failure here is not an error.
pub fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_beside_the_file() {
        assert_eq!(tmp_path(Path::new("/a/b/x.psnap")), PathBuf::from("/a/b/x.psnap.tmp"));
        assert_eq!(tmp_path(Path::new("x.psnap")), PathBuf::from("x.psnap.tmp"));
    }

    #[test]
    fn persist_without_overwrite_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, path) = (dir.path().join("x.tmp"), dir.path().join("x"));
        std::fs::write(&path, b"old").unwrap();
        std::fs::write(&tmp, b"new").unwrap();
        let e = persist(&tmp, &path, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        persist(&tmp, &path, true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(!tmp.exists());
    }
}
