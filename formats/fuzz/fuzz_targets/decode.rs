//! Fuzz the `.psnap` decoder: arbitrary bytes to `SnapshotReader::open`, `verify_all`,
//! `records()` and `for_each_record`. Any panic, abort or over-allocation is a bug.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use psor_formats::SnapshotReader;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut r) = SnapshotReader::open(Cursor::new(data)) {
        let _ = r.verify_all();
        for rec in r.records() {
            if rec.is_err() {
                break;
            }
        }
        let _ = r.for_each_record(|_| {});
    }
});
