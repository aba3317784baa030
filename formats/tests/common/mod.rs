//! Helpers shared by the integration tests: fixed headers, fixed records, write/read in memory.
#![allow(dead_code)]

use std::io::Cursor;

use psor_formats::*;

/// Creation time of the golden file: 2024-01-02T03:04:05.678Z.
pub const GOLDEN_CREATED_AT_MS: i64 = 1_704_164_645_678;

pub fn header(created_at_ms: i64) -> Header {
    Header::new(
        created_at_ms,
        Source {
            server_version: "7.2.4".into(),
            spec: "psor://db.example:6379/0?user=reader".into(),
            selection: Selection::PacVersion { pac: "billing".into(), version: "2.3.1".into() },
        },
    )
}

/// A fake but well-formed DUMP payload: body, RDB version (2 bytes LE), 8-byte "CRC64".
pub fn dump(body: &[u8], rdb: u16) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&rdb.to_le_bytes());
    p.extend_from_slice(&[0xA5; 8]);
    p
}

/// The fixed content of the golden v1 file.
pub fn golden_records() -> Vec<Record> {
    let mut v = Vec::new();
    let keys: [&[u8]; 10] = [
        b"plain",
        b"with\0nul",
        b"new\nline",
        b"glob*?[ab]\\",
        b"",
        "utf8-\u{e9}\u{1F600}".as_bytes(),
        &[0xff, 0xfe, 0x00, 0x80],
        b"billing:2.3.1:invoice:42",
        b" leading space",
        b"\r\n\x1a",
    ];
    for (i, key) in keys.iter().enumerate() {
        let kind = KeyKind::ALL[i % KeyKind::ALL.len()];
        let expire_at_ms = match i % 3 {
            0 => None,
            1 => Some(GOLDEN_CREATED_AT_MS + 86_400_000),
            _ => Some(-1),
        };
        let body: Vec<u8> = (0..(i * 37) % 300).map(|b| u8::try_from(b % 251).unwrap()).collect();
        let payload = if i == 4 { Vec::new() } else { dump(&body, 11) };
        v.push(Record { key: key.to_vec(), kind, expire_at_ms, rdb_version: 11, payload });
    }
    v
}

/// Writer options with tiny frames, so that small files have several frames.
pub fn tiny_frames() -> WriterOptions {
    WriterOptions { frame_target: 200, max_pending_frames: 3, ..WriterOptions::default() }
}

pub fn write(records: &[Record], created_at_ms: i64, opts: WriterOptions) -> (Vec<u8>, Footer) {
    let mut out = Vec::new();
    let mut w = SnapshotWriter::with_options(&mut out, &header(created_at_ms), opts).unwrap();
    for r in records {
        w.push(r).unwrap();
    }
    let footer = w.finish().unwrap();
    (out, footer)
}

/// Open, verify and read every record, returning the first error.
pub fn read_all(bytes: &[u8]) -> Result<(Header, Vec<Record>)> {
    let mut r = SnapshotReader::open(Cursor::new(bytes))?;
    r.verify_all()?;
    let recs = r.records().collect::<Result<Vec<_>>>()?;
    let mut n = 0usize;
    r.for_each_record(|_| n += 1)?;
    assert_eq!(n, recs.len());
    Ok((r.header().clone(), recs))
}

/// Open and stream records only (no verify_all), as the fuzz target does.
pub fn stream_all(bytes: &[u8]) -> Result<Vec<Record>> {
    let mut r = SnapshotReader::open(Cursor::new(bytes))?;
    r.records().collect()
}

pub const GOLDEN_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v1.0.psnap");

/// Rewrite the header's version and fix up the header CRC (to fabricate other versions).
pub fn with_version(bytes: &[u8], major: u16, minor: u16) -> Vec<u8> {
    use psor_formats::header::*;
    let mut b = bytes.to_vec();
    b[MAJOR_OFFSET..MAJOR_OFFSET + 2].copy_from_slice(&major.to_le_bytes());
    b[MINOR_OFFSET..MINOR_OFFSET + 2].copy_from_slice(&minor.to_le_bytes());
    let n = u32::from_le_bytes(b[SOURCE_LEN_OFFSET..SOURCE_OFFSET].try_into().unwrap());
    let crc_at = SOURCE_OFFSET + usize::try_from(n).unwrap();
    let crc = Checksum::of(&b[..crc_at]);
    b[crc_at..crc_at + 4].copy_from_slice(&crc.0.to_le_bytes());
    b
}

/// The v1.1 golden file: the golden records sorted by key, flagged sorted.
pub const GOLDEN_V1_1_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v1.1-sorted.psnap");

/// The golden records in key order.
pub fn golden_records_sorted() -> Vec<Record> {
    let mut v = golden_records();
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v
}

/// Like [`write`], with a sorted header ([`Header::sorted`]).
pub fn write_sorted(records: &[Record], created_at_ms: i64, opts: WriterOptions) -> (Vec<u8>, Footer) {
    let mut out = Vec::new();
    let mut w = SnapshotWriter::with_options(&mut out, &header(created_at_ms).sorted(), opts).unwrap();
    for r in records {
        w.push(r).unwrap();
    }
    let footer = w.finish().unwrap();
    (out, footer)
}
