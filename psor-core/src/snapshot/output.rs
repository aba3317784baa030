//! The one rule for a file psor writes a snapshot to (`export -o`, `rem-old-pac --backup`,
//! the rehearsal's backup): files are never replaced by surprise.
//!
//! A target that exists is replaced only when asked (`--overwrite`), and never when it is not
//! a psor snapshot (someone's data), when it was written by a newer format version (major or
//! minor: a newer psor's file may hold what this build cannot write back), or when it is the
//! very file of a store being worked on — compared by device and inode (and by canonical path
//! for a store not saved yet), never by spelling.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Error, Result};

/// Refuses to write a snapshot to `path` unless it is free to be written: it does not exist,
/// or it is an older-or-equal psor snapshot and `overwrite` is set. `in_use` are the files of
/// the stores the command works on (an embedded store's file, a snapshot being read); `path`
/// must be none of them, whatever its spelling.
pub fn check_output_path(path: &Path, overwrite: bool, in_use: &[PathBuf]) -> Result<()> {
    if let Some(store) = in_use.iter().find(|s| same_file(path, s)) {
        return Err(Error::Refused(format!(
            "{} is the file of the store being worked on (file:{}): psor never writes over it; choose another name",
            path.display(),
            store.display()
        )));
    }
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(Error::Open { path: path.to_path_buf(), source }),
    };
    if path.is_dir() {
        return Err(Error::Refused(format!("{} is a directory; give a file name", path.display())));
    }
    let mut head = [0u8; 12];
    let n = read_up_to(&mut f, &mut head).map_err(|source| Error::Open { path: path.to_path_buf(), source })?;
    let is_snapshot = n >= 12 && head[..8] == psor_formats::header::MAGIC;
    if !is_snapshot {
        return Err(Error::Refused(format!(
            "{} exists and is not a psor snapshot: psor never overwrites it; choose another name",
            path.display()
        )));
    }
    let major = u16::from_le_bytes([head[8], head[9]]);
    let minor = u16::from_le_bytes([head[10], head[11]]);
    let current = psor_formats::CURRENT_VERSION;
    if (major, minor) > (current.major, current.minor) {
        return Err(Error::Refused(format!(
            "{} is a snapshot of format {major}.{minor}, newer than this build's {current}: it is never overwritten",
            path.display()
        )));
    }
    if !overwrite {
        return Err(Error::Refused(format!("{} exists: use --overwrite to replace it", path.display())));
    }
    Ok(())
}

/// True when `a` and `b` are one file: the same device and inode when both exist, else the
/// same canonical path (a file not written yet, in a directory that exists).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(ma), Ok(mb)) => same_inode(&ma, &mb),
        (Err(_), Err(_)) => canonical(a) == canonical(b),
        _ => false,
    }
}

#[cfg(unix)]
fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_inode(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    // Without inodes, the canonical path is the best identity there is.
    false
}

pub(crate) use psor_formats::file::canonical_path as canonical;

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot_head(major: u16, minor: u16) -> Vec<u8> {
        let mut b = psor_formats::header::MAGIC.to_vec();
        b.extend_from_slice(&major.to_le_bytes());
        b.extend_from_slice(&minor.to_le_bytes());
        b.extend_from_slice(&[0; 32]);
        b
    }

    #[test]
    fn the_output_rule() {
        let dir = std::env::temp_dir().join(format!("psor-output-rule-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let refused = |r: Result<()>| matches!(r, Err(Error::Refused(_)));
        let free = dir.join("free.psnap");
        assert!(check_output_path(&free, false, &[]).is_ok());
        // A store not saved yet is its path, however spelled.
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let spelled = dir.join("sub").join("..").join("free.psnap");
        assert!(refused(check_output_path(&free, true, &[spelled])));

        let old = dir.join("old.psnap");
        std::fs::write(&old, snapshot_head(1, 0)).unwrap();
        assert!(refused(check_output_path(&old, false, &[])));
        assert!(check_output_path(&old, true, &[]).is_ok());
        // The same file through a hard link is the same file.
        let link = dir.join("link.psnap");
        let _ = std::fs::remove_file(&link);
        std::fs::hard_link(&old, &link).unwrap();
        assert!(refused(check_output_path(&link, true, std::slice::from_ref(&old))));

        let newer = dir.join("newer.psnap");
        std::fs::write(&newer, snapshot_head(1, 5)).unwrap();
        assert!(refused(check_output_path(&newer, true, &[])));
        std::fs::write(&newer, snapshot_head(2, 0)).unwrap();
        assert!(refused(check_output_path(&newer, true, &[])));

        let foreign = dir.join("notes.txt");
        std::fs::write(&foreign, b"someone's notes, not a snapshot").unwrap();
        assert!(refused(check_output_path(&foreign, true, &[])));
        assert!(refused(check_output_path(&dir, true, &[])));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
