//! The checked-in v1.0 golden file: it must keep decoding to the exact same records forever
//! (every released version stays readable), and a damaged copy must be refused.
//!
//! Regenerate (only when deliberately adding a new golden version, never to "fix" this test):
//! `cargo test -p psor-formats --test golden -- --ignored regenerate_golden`.

mod common;

use psor_formats::*;

fn golden() -> Vec<u8> {
    std::fs::read(common::GOLDEN_PATH).expect("golden file is checked in")
}

#[test]
#[ignore = "writes tests/golden/v1.0.psnap; run by hand only"]
fn regenerate_golden() {
    let (bytes, _) = common::write(&common::golden_records(), common::GOLDEN_CREATED_AT_MS, common::tiny_frames());
    std::fs::write(common::GOLDEN_PATH, bytes).unwrap();
}

#[test]
fn golden_v1_0_decodes_to_exact_records() {
    let bytes = golden();
    let (header, records) = common::read_all(&bytes).unwrap();
    assert_eq!(header.version, Version { major: 1, minor: 0 });
    assert_eq!(header, common::header(common::GOLDEN_CREATED_AT_MS));
    assert_eq!(records, common::golden_records());
    let r = SnapshotReader::open(std::io::Cursor::new(&bytes)).unwrap();
    assert!(r.footer().frames.len() > 1, "golden file should exercise several frames");
    assert_eq!(r.footer().totals.keys, 10);
}

#[test]
fn golden_header_bytes_are_stable() {
    // The hand-written header does not depend on zstd, so today's writer must reproduce it.
    let bytes = golden();
    let (fresh, _) = common::write(&common::golden_records(), common::GOLDEN_CREATED_AT_MS, common::tiny_frames());
    let n = psor_formats::header::SOURCE_OFFSET;
    let src_len = usize::try_from(u32::from_le_bytes(bytes[n - 4..n].try_into().unwrap())).unwrap();
    let header_len = n + src_len + 4;
    assert_eq!(&fresh[..header_len], &bytes[..header_len]);
    assert_eq!(&bytes[..8], b"\x89PSN\r\n\x1a\n");
}

#[test]
fn corrupt_golden_copy_is_refused() {
    let mut bytes = golden();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    assert!(common::read_all(&bytes).is_err());
}

/// Stand-in for the cargo-fuzz target on machines without it: a few thousand seeded
/// pseudo-random mutations of the golden file fed to the decoder, which must return (Ok or a
/// typed error), never panic, and never yield records different from the original unless it
/// also reports an error.
#[test]
fn mutated_golden_never_panics() {
    let orig = golden();
    let expected = common::golden_records();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut b = orig.clone();
        let edits = 1 + next() % 4;
        for _ in 0..edits {
            let at = usize::try_from(next() % u64::try_from(b.len().max(1)).unwrap()).unwrap();
            match next() % 5 {
                0 if !b.is_empty() => b[at] ^= 1 << (next() % 8),
                1 if !b.is_empty() => b[at] = u8::try_from(next() & 0xff).unwrap(),
                2 => b.truncate(at),
                3 => b.insert(at, u8::try_from(next() & 0xff).unwrap()),
                _ if !b.is_empty() => {
                    b.remove(at);
                }
                _ => {}
            }
        }
        if let Ok(recs) = common::stream_all(&b) {
            assert_eq!(recs, expected, "a mutated file decoded silently to different records");
        }
        if let Ok((_, recs)) = common::read_all(&b) {
            assert_eq!(recs, expected);
        }
    }
}

#[test]
#[ignore = "writes tests/golden/v1.1-sorted.psnap; run by hand only"]
fn regenerate_golden_v1_1() {
    let records = common::golden_records_sorted();
    let (bytes, _) = common::write_sorted(&records, common::GOLDEN_CREATED_AT_MS, common::tiny_frames());
    std::fs::write(common::GOLDEN_V1_1_PATH, bytes).unwrap();
}

#[test]
fn golden_v1_1_sorted_decodes_and_finds_every_key() {
    let bytes = std::fs::read(common::GOLDEN_V1_1_PATH).expect("golden file is checked in");
    let (header, records) = common::read_all(&bytes).unwrap();
    assert_eq!(header.version, Version { major: 1, minor: 1 });
    assert!(header.is_sorted());
    assert_eq!(header, common::header(common::GOLDEN_CREATED_AT_MS).sorted());
    assert_eq!(records, common::golden_records_sorted());
    let mut r = SnapshotReader::open(std::io::Cursor::new(&bytes)).unwrap();
    let frames = r.footer().frames.len();
    assert!(frames > 2, "golden file should exercise several frames");
    for rec in &records {
        let (found, how) = r.find(&rec.key).unwrap();
        assert_eq!(found.as_ref(), Some(rec));
        assert!(matches!(how, Lookup::Indexed { frames: n } if n < frames));
    }
    assert!(matches!(r.find(b"absent").unwrap(), (None, Lookup::Indexed { .. })));
    assert!(matches!(r.find(b"").unwrap(), (Some(_), _)));
    // Today's writer reproduces its header.
    let (fresh, _) = common::write_sorted(&records, common::GOLDEN_CREATED_AT_MS, common::tiny_frames());
    let n = psor_formats::header::SOURCE_OFFSET;
    assert_eq!(&fresh[..n], &bytes[..n]);
}

#[test]
fn a_v1_0_file_is_found_by_scanning_and_a_sorted_flag_in_it_is_corruption() {
    let bytes = golden();
    let mut r = SnapshotReader::open(std::io::Cursor::new(&bytes)).unwrap();
    assert!(!r.header().is_sorted());
    let (found, how) = r.find(b"billing:2.3.1:invoice:42").unwrap();
    assert!(found.is_some());
    assert!(matches!(how, Lookup::Scanned { .. }));
    // v1.0 defines no flags: a 1.0 file claiming to be sorted is refused.
    let mut flagged = bytes.clone();
    flagged[psor_formats::header::FLAGS_OFFSET] = 1;
    assert!(common::read_all(&flagged).is_err());
}

#[test]
fn a_sorted_writer_refuses_keys_out_of_order() {
    let mut out = Vec::new();
    let mut w = SnapshotWriter::new(&mut out, &common::header(0).sorted()).unwrap();
    let recs = common::golden_records_sorted();
    w.push(&recs[1]).unwrap();
    assert!(matches!(w.push(&recs[0]), Err(Error::Unsorted { records: 1 })));
    assert!(matches!(w.push(&recs[1]), Err(Error::Unsorted { records: 1 })));
    w.push(&recs[2]).unwrap();
    assert_eq!(w.finish().unwrap().totals.keys, 2);
}
