//! Damage detection: every single-byte flip, every truncation, trailing garbage, and version
//! rules (newer major refused with a clear message, newer minor read).

mod common;

use psor_formats::*;

fn small_file() -> Vec<u8> {
    common::write(&common::golden_records(), common::GOLDEN_CREATED_AT_MS, common::tiny_frames()).0
}

#[test]
fn every_single_byte_flip_is_detected() {
    let orig = small_file();
    assert!(orig.len() < 4096, "keep this test fast: {} bytes", orig.len());
    let frames = SnapshotReader::open(std::io::Cursor::new(&orig)).unwrap().footer().frames.len();
    assert!(frames > 1);
    for i in 0..orig.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut b = orig.clone();
            b[i] ^= mask;
            // Both paths: streaming without verify, and verify + stream.
            let streamed = common::stream_all(&b);
            assert!(streamed.is_err(), "flip {mask:#x} at byte {i} went undetected by records()");
            let full = common::read_all(&b);
            assert!(full.is_err(), "flip {mask:#x} at byte {i} went undetected by verify_all()");
        }
    }
}

#[test]
fn every_truncation_is_a_clean_error() {
    let orig = small_file();
    for len in 0..orig.len() {
        let err = common::stream_all(&orig[..len]).expect_err("truncated file accepted");
        // Never an I/O "unexpected EOF" leaking out: lengths are checked before reading.
        assert!(!matches!(err, Error::Io(_)), "truncation at {len}: {err}");
    }
}

#[test]
fn trailing_garbage_is_refused() {
    let mut b = small_file();
    b.extend_from_slice(b"garbage");
    assert!(matches!(common::stream_all(&b), Err(Error::NoTrailer { .. })));
    // Even a whole second trailer appended: its footer offset no longer lines up.
    let orig = small_file();
    let mut b = orig.clone();
    b.extend_from_slice(&orig[orig.len() - footer::TRAILER_LEN..]);
    assert!(common::stream_all(&b).is_err());
}

#[test]
fn not_a_snapshot() {
    assert!(matches!(common::stream_all(b"hello world, not a snapshot"), Err(Error::BadMagic { .. })));
    assert!(matches!(common::stream_all(b""), Err(Error::Truncated { .. })));
    // Text-mode mangling (CRLF -> LF) breaks the magic.
    let mut b = small_file();
    b.remove(5);
    assert!(matches!(common::stream_all(&b), Err(Error::BadMagic { .. })));
}

#[test]
fn newer_major_is_refused_with_both_versions_named() {
    let b = common::with_version(&small_file(), 2, 0);
    let err = common::stream_all(&b).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                found: Version { major: 2, minor: 0 },
                // The newest this build reads (1.1: sorted files), not the 1.0 it writes
                // for unsorted ones.
                supported: Version { major: 1, minor: 1 }
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("2.0") && msg.contains("1.1"), "{msg}");
    // Version 0 was never released.
    assert!(matches!(
        common::stream_all(&common::with_version(&small_file(), 0, 9)),
        Err(Error::UnsupportedVersion { .. })
    ));
}

#[test]
fn newer_minor_of_same_major_is_readable() {
    let b = common::with_version(&small_file(), 1, 7);
    let (h, recs) = common::read_all(&b).unwrap();
    assert_eq!(h.version, Version { major: 1, minor: 7 });
    assert_eq!(recs, common::golden_records());
}

#[test]
fn checksum_newtype() {
    let c = Checksum::of(b"abc");
    assert!(c.check(c, "x", 0).is_ok());
    assert!(matches!(c.check(Checksum(0), "x", 7), Err(Error::Checksum { offset: 7, .. })));
}
