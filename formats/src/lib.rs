//! The psor snapshot file format (`.psnap`).
//!
//! A `.psnap` file holds Redis keys exactly — key name bytes, type, absolute expiry and the
//! server's `DUMP` payload — so that `psor` can restore them later with the same type, content
//! and expiry. This crate knows nothing of Redis connections, command lines or terminals: it
//! turns [`Record`]s into bytes and back, streams with bounded memory, and checks every byte it
//! reads (CRC32 over header, every frame header, every frame's data, footer and trailer).
//!
//! Layout: `header | frame* | footer | trailer`; see `FORMAT.md` in this crate for the byte
//! tables, and the [`header`], [`frame`] and [`footer`] modules for the same tables in code.
//!
//! ```
//! use psor_formats::*;
//! let header = Header::new(0, Source {
//!     server_version: "7.2.4".into(),
//!     spec: "redis://db.example:6379/0".into(),
//!     selection: Selection::Prefix(b"app:".to_vec()),
//! });
//! let mut file = Vec::new();
//! let mut w = SnapshotWriter::new(&mut file, &header)?;
//! w.push(&Record { key: b"app:1".to_vec(), kind: KeyKind::String, expire_at_ms: None,
//!                  rdb_version: 11, payload: b"\0\x01x\x0b\0abcdefgh".to_vec() })?;
//! w.finish()?;
//! let mut r = SnapshotReader::open(std::io::Cursor::new(file))?;
//! assert_eq!(r.footer().totals.keys, 1);
//! r.verify_all()?;
//! let records: Vec<Record> = r.records().collect::<Result<_>>()?;
//! assert_eq!(records[0].key, b"app:1");
//! # Ok::<(), psor_formats::Error>(())
//! ```
#![deny(missing_docs)]

mod bytes;
mod error;
pub mod file;
pub mod footer;
pub mod frame;
pub mod header;
mod reader;
mod record;
mod writer;

pub use error::{Checksum, Error, Result, Version};
pub use file::now_ms;
pub use footer::{Footer, KindTotals, Totals};
pub use frame::FrameInfo;
pub use header::{Header, Selection, Source, CURRENT_VERSION};
pub use reader::{Lookup, Records, SnapshotReader, READ_AHEAD_BYTES, READ_AHEAD_FRAMES};
pub use record::{decode_record, dump_rdb_version, encode_record, encoded_len, KeyKind, Record, RecordRef};
pub use writer::{SnapshotWriter, WriterOptions, MAX_RECORD_LEN};

/// File name extension of snapshots.
pub const FILE_EXTENSION: &str = "psnap";
