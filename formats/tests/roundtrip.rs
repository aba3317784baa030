//! Round trips: random records through writer and reader, the record codec alone, and the
//! frame-size rules.

mod common;

use std::io::Cursor;

use proptest::prelude::*;
use psor_formats::*;

fn kind() -> impl Strategy<Value = KeyKind> {
    prop::sample::select(KeyKind::ALL.to_vec())
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(prop::sample::select(b"\0\n\r*?[]\\:{}ab".to_vec()), 0..16),
    ]
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..256),
        1 => Just(Vec::new()),
        // Larger than the test frame target: spans/forces frames of their own.
        1 => (1usize..5000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
        1 => prop::collection::vec(any::<u8>(), 1000..3000),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    (key(), kind(), prop::option::of(any::<i64>()), any::<u16>(), payload()).prop_map(
        |(key, kind, expire_at_ms, rdb_version, payload)| Record { key, kind, expire_at_ms, rdb_version, payload },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn file_round_trip(records in prop::collection::vec(record(), 0..60), target in 64usize..4096, pending in 1usize..4) {
        let opts = WriterOptions { frame_target: target, max_pending_frames: pending, ..WriterOptions::default() };
        let (bytes, footer) = common::write(&records, 42, opts);
        let (header, back) = common::read_all(&bytes).unwrap();
        prop_assert_eq!(&back, &records);
        prop_assert_eq!(header, common::header(42));
        let mut totals = Totals::default();
        for r in &records { totals.add(r.as_ref()); }
        prop_assert_eq!(footer.totals, totals);
        let reader = SnapshotReader::open(Cursor::new(&bytes)).unwrap();
        prop_assert_eq!(reader.footer(), &footer);
        // No frame exceeds the target unless it holds a single record.
        for f in &footer.frames {
            prop_assert!(f.record_count == 1 || usize::try_from(f.uncompressed_len).unwrap() <= target);
        }
    }

    #[test]
    fn record_codec_round_trip(records in prop::collection::vec(record(), 1..20)) {
        let mut buf = Vec::new();
        for r in &records {
            let before = buf.len();
            encode_record(r.as_ref(), &mut buf).unwrap();
            prop_assert_eq!(buf.len() - before, encoded_len(r.as_ref()));
        }
        let mut rest = &buf[..];
        for r in &records {
            let (got, tail) = decode_record(rest, 0, None).unwrap();
            prop_assert_eq!(got.to_owned(), r.clone());
            rest = tail;
        }
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn record_codec_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_record(&bytes, 0, None);
    }
}

#[test]
fn empty_snapshot() {
    let (bytes, footer) = common::write(&[], 1, WriterOptions::default());
    assert!(footer.frames.is_empty());
    let (_, recs) = common::read_all(&bytes).unwrap();
    assert!(recs.is_empty());
}

#[test]
fn large_value_gets_its_own_frame() {
    let small =
        |i: u8| Record { key: vec![i], kind: KeyKind::Hash, expire_at_ms: None, rdb_version: 11, payload: vec![i; 10] };
    let big = Record {
        key: b"big".to_vec(),
        kind: KeyKind::String,
        expire_at_ms: Some(1),
        rdb_version: 12,
        payload: (0..3_000_000u32).map(|i| u8::try_from(i.wrapping_mul(2_654_435_761) >> 24).unwrap()).collect(),
    };
    let records = vec![small(1), small(2), big, small(3)];
    let (bytes, footer) = common::write(&records, 1, WriterOptions::default());
    let counts: Vec<u32> = footer.frames.iter().map(|f| f.record_count).collect();
    assert_eq!(counts, [2, 1, 1]);
    assert_eq!(common::read_all(&bytes).unwrap().1, records);
    assert_eq!(footer.totals.kind(KeyKind::String).payload_bytes, 3_000_000);
    assert_eq!(footer.totals.kind(KeyKind::Hash).count, 3);
}

#[test]
fn many_frames_default_options() {
    let records: Vec<Record> = (0..20_000u32)
        .map(|i| Record {
            key: format!("k:{i}").into_bytes(),
            kind: KeyKind::ALL[usize::try_from(i % 7).unwrap()],
            expire_at_ms: (i % 2 == 0).then_some(i64::from(i)),
            rdb_version: 11,
            payload: common::dump(&i.to_le_bytes().repeat(40), 11),
        })
        .collect();
    let (bytes, footer) = common::write(&records, 1, WriterOptions::default());
    assert!(footer.frames.len() > 2);
    assert_eq!(common::read_all(&bytes).unwrap().1, records);
}

#[test]
fn key_kind_names() {
    for k in KeyKind::ALL {
        assert_eq!(KeyKind::from_tag(k.tag()), Some(k));
        if k != KeyKind::Other {
            assert_eq!(KeyKind::from_type_reply(k.as_str()), Some(k));
        }
    }
    assert_eq!(KeyKind::from_type_reply("ReJSON-RL"), Some(KeyKind::Other));
    assert_eq!(KeyKind::from_type_reply("none"), None);
    assert_eq!(KeyKind::from_tag(7), None);
}

#[test]
fn dump_version_helper() {
    assert_eq!(dump_rdb_version(&common::dump(b"x", 11)), Some(11));
    assert_eq!(dump_rdb_version(b"short"), None);
}

#[test]
fn unknown_kind_tag_is_typed() {
    let r = Record { key: b"k".to_vec(), kind: KeyKind::Set, expire_at_ms: None, rdb_version: 1, payload: vec![] };
    let mut buf = Vec::new();
    encode_record(r.as_ref(), &mut buf).unwrap();
    buf[2] = 200; // key len, key, kind
    assert!(matches!(decode_record(&buf, 0, None), Err(Error::UnknownTag { tag: 200, .. })));
}

#[test]
fn min_record_len_and_writer_totals() {
    let r = Record { key: vec![], kind: KeyKind::String, expire_at_ms: None, rdb_version: 1, payload: vec![] };
    assert!(encoded_len(r.as_ref()) >= 5);
    let mut w = SnapshotWriter::new(Vec::new(), &common::header(0)).unwrap();
    w.push(&r).unwrap();
    assert_eq!(w.totals().keys, 1);
}

#[test]
fn real_file_and_finish_into_inner() {
    use std::io::{Seek, SeekFrom};
    let file = tempfile::tempfile().unwrap();
    let records = common::golden_records();
    let mut w =
        SnapshotWriter::with_options(std::io::BufWriter::new(file), &common::header(5), common::tiny_frames()).unwrap();
    for r in &records {
        w.push(r).unwrap();
    }
    let (footer, buf) = w.finish_into_inner().unwrap();
    let mut file = buf.into_inner().unwrap();
    file.sync_all().unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    let mut r = SnapshotReader::open(file).unwrap();
    assert_eq!(r.footer(), &footer);
    assert_eq!(r.verify_all().unwrap(), footer.totals);
    let mut keys = Vec::new();
    r.for_each_record(|rec| keys.push(rec.key.to_vec())).unwrap();
    assert_eq!(keys, records.iter().map(|r| r.key.clone()).collect::<Vec<_>>());
}

#[test]
fn oversized_source_block_is_refused() {
    let mut h = common::header(0);
    h.source.spec = "x".repeat(2 << 20);
    assert!(matches!(SnapshotWriter::new(Vec::new(), &h), Err(Error::TooLarge { .. })));
}

#[test]
fn prefix_selection_round_trips() {
    let mut h = common::header(0);
    h.source.selection = Selection::Prefix(b"bin\0\xff*".to_vec());
    let mut out = Vec::new();
    SnapshotWriter::new(&mut out, &h).unwrap().finish().unwrap();
    assert_eq!(SnapshotReader::open(Cursor::new(out)).unwrap().header(), &h);
}
