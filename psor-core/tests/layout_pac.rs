//! PAC modes and the PAC record's hash encoding.

use psor_core::layout::catalog::Epoch;
use psor_core::layout::{check_transition, PacMode, PacName, PacRecord, PacRecordError, ProductVersion, TRANSITIONS};

use PacMode::*;

#[test]
fn legal_transitions() {
    assert!(check_transition(Upgrade, Running).is_ok());
    assert!(check_transition(Running, Quiesce).is_ok());
    assert!(check_transition(Quiesce, Running).is_ok());
    for m in [Upgrade, Running, Quiesce] {
        assert!(check_transition(m, m).is_ok(), "setting the same mode is a no-op");
    }
}

#[test]
fn illegal_transitions_say_what_is_allowed() {
    for (from, to) in [(Running, Upgrade), (Quiesce, Upgrade), (Upgrade, Quiesce)] {
        let e = check_transition(from, to).unwrap_err();
        assert_eq!((e.from, e.to), (from, to));
        assert!(!TRANSITIONS.contains(&(from, to)));
    }
    let e = check_transition(Upgrade, Quiesce).unwrap_err();
    assert_eq!(e.to_string(), "a PAC in mode Upgrade cannot be set to Quiesce; allowed from Upgrade: Running");
}

#[test]
fn mode_parses_case_insensitively() {
    assert_eq!("running".parse::<PacMode>().unwrap(), Running);
    assert_eq!("Quiesce".parse::<PacMode>().unwrap(), Quiesce);
    assert!(matches!("Quiesced".parse::<PacMode>(), Err(PacRecordError::BadValue { field: "mode", .. })));
}

fn record() -> PacRecord {
    PacRecord {
        pac: PacName::new("MyPAC").unwrap(),
        version: ProductVersion::new("9.0").unwrap(),
        mode: Upgrade,
        layout: "ref-9".into(),
        epoch: Epoch::new("9"),
        created_ms: 1_700_000_000_000,
        updated_ms: 1_700_000_000_000,
    }
}

#[test]
fn record_round_trips_through_a_hash() {
    let r = record();
    let fields = r.to_hash();
    assert_eq!(fields[2], ("mode", "Upgrade".to_owned()));
    let back = PacRecord::from_hash(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()))).unwrap();
    assert_eq!(back, r);
}

#[test]
fn record_tolerates_unknown_fields_and_refuses_bad_ones() {
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> =
        record().to_hash().into_iter().map(|(k, v)| (k.as_bytes().to_vec(), v.into_bytes())).collect();
    fields.push((b"future".to_vec(), b"\xff".to_vec()));
    assert!(PacRecord::from_hash(fields.clone()).is_ok());

    let without: Vec<_> = fields.iter().filter(|(k, _)| k != b"epoch").cloned().collect();
    assert!(matches!(PacRecord::from_hash(without), Err(PacRecordError::MissingField("epoch"))));

    let mut twice = fields.clone();
    twice.push((b"mode".to_vec(), b"Running".to_vec()));
    assert!(matches!(PacRecord::from_hash(twice), Err(PacRecordError::DuplicateField(_))));

    let bad: Vec<_> = fields
        .iter()
        .map(|(k, v)| if k == b"created_ms" { (k.clone(), b"yesterday".to_vec()) } else { (k.clone(), v.clone()) })
        .collect();
    assert!(matches!(PacRecord::from_hash(bad), Err(PacRecordError::BadValue { field: "created_ms", .. })));

    let bad: Vec<_> = fields
        .iter()
        .map(|(k, v)| if k == b"version" { (k.clone(), b"9.01".to_vec()) } else { (k.clone(), v.clone()) })
        .collect();
    assert!(matches!(PacRecord::from_hash(bad), Err(PacRecordError::BadValue { field: "version", .. })));
}

#[test]
fn with_mode_checks_and_stamps() {
    let r = record();
    let running = r.with_mode(Running, 1_700_000_000_500).unwrap();
    assert_eq!(running.mode, Running);
    assert_eq!(running.updated_ms, 1_700_000_000_500);
    assert_eq!(running.created_ms, r.created_ms);
    assert!(r.with_mode(Quiesce, 1).is_err());
}
