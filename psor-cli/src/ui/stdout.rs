//! The one way to stdout. Every report, key list, JSON object and completion script goes
//! through [`out`], which remembers the first write error. `main` asks [`failure`] at the
//! end: a broken pipe (`psor scan … | head`) ends the program quietly with success, any other
//! error (a full disk, `>/dev/full`) is one line on stderr and exit 1. Nothing here panics,
//! unlike `println!`, which panics when stdout has gone away.

use std::io::{self, ErrorKind, StdoutLock, Write};
use std::sync::Mutex;

/// The first error a write to stdout returned: its kind and text.
static FAILURE: Mutex<Option<(ErrorKind, String)>> = Mutex::new(None);

/// A handle on stdout that records its first write error (see [`failure`]).
pub struct Out {
    inner: StdoutLock<'static>,
}

/// Locks stdout for writing.
pub fn out() -> Out {
    Out { inner: io::stdout().lock() }
}

fn record<T>(r: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &r {
        if let Ok(mut f) = FAILURE.lock() {
            f.get_or_insert_with(|| (e.kind(), e.to_string()));
        }
    }
    r
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        record(self.inner.write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        record(self.inner.write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        record(self.inner.flush())
    }
}

/// Writes `bytes` and flushes.
pub fn write_all(bytes: &[u8]) -> io::Result<()> {
    let mut o = out();
    o.write_all(bytes)?;
    o.flush()
}

/// Flushes whatever is still buffered (stdout is line-buffered), recording an error.
pub fn flush() {
    let _ = out().flush();
}

/// The first stdout write error, if any: its kind and text.
pub fn failure() -> Option<(ErrorKind, String)> {
    FAILURE.lock().ok().and_then(|f| f.clone())
}
