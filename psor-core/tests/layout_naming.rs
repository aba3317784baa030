//! Properties of the key grammar: prefixes are injective and prefix-free, and
//! every key psor builds parses back to its parts.

use proptest::prelude::*;
use psor_core::layout::{
    parse_key, Catalog, KeyTemplate, NameError, PacName, PacVersionPrefix, ProductVersion, RegionName, ResourceTable,
};

/// PAC names biased toward sharing prefixes and ending in digits, `_` and `-`.
fn pac_name() -> impl Strategy<Value = PacName> {
    prop_oneof!["[A-Za-z][A-Za-z0-9_-]{0,12}", "(A|A_B|A_|A-|MyPAC|MyPAC2|MyPAC_8|MyPAC_8_0)[0-9_]{0,3}",]
        .prop_map(|s| PacName::new(&s).unwrap())
}

/// Versions biased toward prefixes of one another (9, 9.0, 9.0.1, 9.01 is refused).
fn version() -> impl Strategy<Value = ProductVersion> {
    prop::collection::vec(prop_oneof![Just(0u32), Just(1), Just(8), Just(9), Just(10), 0u32..1000], 1..=4)
        .prop_map(|c| ProductVersion::new(&c.iter().map(u32::to_string).collect::<Vec<_>>().join(".")).unwrap())
}

fn template() -> impl Strategy<Value = KeyTemplate> {
    prop_oneof![
        Just("{pac}_{version}:"),
        Just("{pac}-{version}:"),
        Just("x{pac}__{version}/"),
        Just("{version}_{pac}:"),
        Just("v{version}#{pac}|"),
    ]
    .prop_map(|t| KeyTemplate::new(t).unwrap())
}

proptest! {
    #[test]
    fn prefixes_are_injective_and_prefix_free(
        t in template(), p1 in pac_name(), v1 in version(), p2 in pac_name(), v2 in version(),
        tail in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let a = t.prefix(&p1, &v1);
        let b = t.prefix(&p2, &v2);
        let mut key_b = b.as_bytes().to_vec();
        key_b.extend_from_slice(&tail);
        if (p1.clone(), v1.clone()) == (p2.clone(), v2.clone()) {
            prop_assert_eq!(a.as_str(), b.as_str());
        } else {
            prop_assert_ne!(a.as_str(), b.as_str());
            prop_assert!(!a.matches(&key_b), "{} is a prefix of a key of {}", a, b);
        }
    }

    #[test]
    fn prefix_parses_back(t in template(), p in pac_name(), v in version(),
                          tail in prop::collection::vec(any::<u8>(), 0..16)) {
        let mut key = t.prefix(&p, &v).as_bytes().to_vec();
        key.extend_from_slice(&tail);
        let (pp, pv, rest) = t.parse_prefix(&key).expect("a built key parses");
        prop_assert_eq!(pp, p);
        prop_assert_eq!(pv, v);
        prop_assert_eq!(rest, &tail[..]);
    }

    #[test]
    fn catalog_keys_round_trip(p in pac_name(), v in prop_oneof![Just("7.0"), Just("8.0"), Just("9.0"), Just("9.0.2")],
                               entry in prop::collection::vec(any::<u8>(), 0..24),
                               region in "[A-Za-z0-9_$#@-]{1,12}") {
        let cat = Catalog::builtin();
        let v = ProductVersion::new(v).unwrap();
        let layout = cat.layout_for(&v).unwrap();
        let keys = layout.keys(&p, &v);
        for table in ResourceTable::ALL {
            let k = keys.resource_key(table, &entry).unwrap();
            let parsed = cat.parse_key(&k).expect("parses");
            prop_assert_eq!(&parsed.pac, &p);
            prop_assert_eq!(&parsed.version, &v);
            prop_assert_eq!(parsed.store.as_deref(), Some(layout.store_with_role(
                psor_core::layout::StoreRole::Resource(table)).unwrap().name.as_str()));
            prop_assert_eq!(&parsed.rest, &entry);
        }
        let r = RegionName::new(&region).unwrap();
        let k = keys.region_version_key(&r).unwrap();
        let parsed = cat.parse_key(&k).unwrap();
        prop_assert_eq!(parsed.store.as_deref(), Some("version"));
        prop_assert_eq!(parsed.rest, region.as_bytes().to_vec());
        for k in [keys.pac_record_key().unwrap(), keys.region_registry_key().unwrap()] {
            let parsed = cat.parse_key(&k).unwrap();
            prop_assert!(parsed.store.is_some());
            prop_assert!(parsed.rest.is_empty());
        }
    }

    #[test]
    fn parse_key_never_panics(key in prop::collection::vec(any::<u8>(), 0..40)) {
        let _ = parse_key(&key);
        let _ = Catalog::builtin().parse_key(&key);
    }

    #[test]
    fn version_order_is_numeric(a in version(), b in version()) {
        let ord = a.components().cmp(b.components());
        prop_assert_eq!(a.cmp(&b), ord);
        prop_assert_eq!(a == b, a.as_str() == b.as_str());
    }
}

fn pac(s: &str) -> PacName {
    PacName::new(s).unwrap()
}
fn ver(s: &str) -> ProductVersion {
    ProductVersion::new(s).unwrap()
}

#[test]
fn adversarial_pairs_are_prefix_free() {
    let pairs = [
        (("A", "9.0"), ("A_B", "9.0")),
        (("A", "9.0"), ("A", "9.0.1")),
        (("MyPAC", "8.0"), ("MyPAC", "8.0.1")),
        (("MyPAC", "8.0"), ("MyPAC2", "8.0")),
        (("MyPAC", "8"), ("MyPAC", "8.0")),
        (("MyPAC_8", "0"), ("MyPAC", "8.0")),
    ];
    for ((p1, v1), (p2, v2)) in pairs {
        let a = PacVersionPrefix::new(&pac(p1), &ver(v1));
        let b = PacVersionPrefix::new(&pac(p2), &ver(v2));
        let mut kb = b.as_bytes().to_vec();
        kb.extend_from_slice(b"pct:X");
        let mut ka = a.as_bytes().to_vec();
        ka.extend_from_slice(b"pct:X");
        assert!(!a.matches(&kb), "{a} vs {b}");
        assert!(!b.matches(&ka), "{b} vs {a}");
    }
    assert_eq!(PacVersionPrefix::new(&pac("MyPAC"), &ver("8.0")).as_str(), "MyPAC_8.0:");
}

#[test]
fn leading_zeros_are_refused_so_9_01_is_not_a_version() {
    let e = ProductVersion::new("9.01").unwrap_err();
    assert!(matches!(e, NameError::Version { .. }));
    assert!(e.to_string().contains("leading zero"), "{e}");
    assert!(e.to_string().contains("dot-separated"), "the message quotes the grammar: {e}");
    // A key with such a version is not a PAC key at all.
    assert!(parse_key(b"MyPAC_8.01:pct:X").is_none());
    assert_eq!(parse_key(b"MyPAC_8.0:pct:X").unwrap().version, ver("8.0"));
}

#[test]
fn version_ordering() {
    assert!(ver("9.0") < ver("9.0.2"));
    assert!(ver("9.0.2") < ver("10.0"));
    assert!(ver("9") < ver("9.0"));
    assert_ne!(ver("9"), ver("9.0"));
    for bad in ["", "9.", ".9", "9..0", "9.a", "1.2.3.4.5", "1234567890", "-1", "9.0 "] {
        assert!(ProductVersion::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn pac_name_grammar() {
    for good in ["A", "MyPAC", "my_pac-2", &"a".repeat(64)] {
        assert!(PacName::new(good).is_ok(), "{good:?}");
    }
    for bad in ["", "1PAC", "_PAC", "My.PAC", "My:PAC", "My PAC", "Mý", &"a".repeat(65), "a{b}"] {
        let e = PacName::new(bad).unwrap_err();
        assert!(matches!(e, NameError::PacName { .. }), "{bad:?}");
        assert!(e.to_string().contains("[A-Za-z][A-Za-z0-9_-]{0,63}"), "{e}");
    }
}

#[test]
fn bad_templates_are_refused() {
    for bad in [
        "{pac}_{version}",        // no terminator
        "{pac}{version}:",        // no separator
        "{pac}.{version}:",       // separator a version may contain
        "{pac}_{version}_",       // terminator allowed in names
        "{pac}:{version}:",       // terminator occurs twice
        "{pac}_:",                // missing version
        "{pac}_{version}:{pac}:", // pac twice
        "{{pac}_{version}}:",     // stray braces
        "{pac} {version}:",       // whitespace
    ] {
        let e = KeyTemplate::new(bad).unwrap_err();
        assert!(matches!(e, NameError::Template { .. }), "{bad:?}");
    }
    assert_eq!(KeyTemplate::default().as_str(), "{pac}_{version}:");
}

#[test]
fn non_utf8_and_foreign_keys_do_not_parse() {
    assert!(parse_key(b"\xffPAC_9.0:pct:x").is_none());
    assert!(parse_key(b"MyPAC_9.0").is_none());
    assert!(parse_key(b"session:123").is_none());
    assert!(parse_key(b"MyPAC-9.0:x").is_none());
    // Binary bytes after the prefix are fine.
    let p = parse_key(b"MyPAC_9.0:ppt:\x00\xff{x}").unwrap();
    assert_eq!(p.rest, b"ppt:\x00\xff{x}".to_vec());
    assert!(p.store.is_none());
}

#[test]
fn key_shapes_of_the_reference_catalog() {
    let cat = Catalog::builtin();
    let v = ver("9.0");
    let keys = cat.layout_for(&v).unwrap().keys(&pac("MyPAC"), &v);
    assert_eq!(keys.prefix().as_str(), "MyPAC_9.0:");
    assert_eq!(keys.hash_tag(), "{MyPAC_9.0}");
    assert_eq!(keys.pac_record_key().unwrap(), b"MyPAC_9.0:pac:{MyPAC_9.0}".to_vec());
    assert_eq!(keys.region_registry_key().unwrap(), b"MyPAC_9.0:regions:{MyPAC_9.0}".to_vec());
    assert_eq!(
        keys.region_version_key(&RegionName::new("REGION1").unwrap()).unwrap(),
        b"MyPAC_9.0:version:{MyPAC_9.0}:REGION1".to_vec()
    );
    assert_eq!(keys.resource_key(ResourceTable::Pct, b"TXN1").unwrap(), b"MyPAC_9.0:pct:TXN1".to_vec());
    assert_eq!(keys.resource_prefix(ResourceTable::Enqmodel).unwrap(), b"MyPAC_9.0:enqmodel:".to_vec());
    // A tagged key whose tag belongs to another PAC is not claimed by a store.
    let p = cat.parse_key(b"MyPAC_9.0:pac:{Other_9.0}").unwrap();
    assert!(p.store.is_none());
    assert!(matches!(keys.entry_key("version", b""), Err(psor_core::layout::KeyError::EmptyEntry { .. })));
    assert!(matches!(keys.single_key("PCT"), Err(psor_core::layout::KeyError::NotTagged { .. })));
}
