//! The layout catalog: the reference content, lookup precedence, merging, and
//! that every kind of mistake is refused naming file, line and field.

use psor_core::layout::{Catalog, CatalogError, CatalogErrorKind, Compat, ProductVersion, Upgrade};

fn ver(s: &str) -> ProductVersion {
    ProductVersion::new(s).unwrap()
}

#[test]
fn builtin_has_7_8_9_and_is_marked_reference() {
    let cat = Catalog::builtin();
    assert!(cat.is_reference());
    for v in ["7.0", "8.0", "9.0", "9.0.2", "9.0.2.1"] {
        assert!(cat.layout_for(&ver(v)).is_ok(), "{v}");
    }
    let l9 = cat.layout_for(&ver("9.0")).unwrap();
    for store in ["pac", "regions", "version", "PCT", "FCT", "PPT", "DCT", "TST", "ENQMODEL"] {
        assert!(l9.store(store).is_some(), "{store}");
    }
    assert!(matches!(l9.store("PPT").unwrap().upgrade, Upgrade::Carry { .. }));
    assert!(matches!(l9.store("pac").unwrap().upgrade, Upgrade::Fresh));
    assert!(psor_core::layout::catalog::BUILTIN_TOML.contains("NOT THE VENDOR'S LAYOUT"));
}

#[test]
fn eight_and_nine_are_incompatible() {
    let c = Catalog::builtin().compatibility(&ver("8.0"), &ver("9.0")).unwrap();
    assert!(
        matches!(
            &c,
            Compat::Incompatible { epoch_a, epoch_b, layout_a, layout_b }
                if epoch_a.as_str() == "8" && epoch_b.as_str() == "9" && layout_a == "ref-8" && layout_b == "ref-9"
        ),
        "{c:?}"
    );
    assert!(!c.is_compatible());
}

#[test]
fn nine_and_nine_0_2_are_compatible() {
    let c = Catalog::builtin().compatibility(&ver("9.0"), &ver("9.0.2")).unwrap();
    assert!(matches!(&c, Compat::Compatible { epoch, .. } if epoch.as_str() == "9"), "{c:?}");
}

#[test]
fn unknown_version_is_a_typed_error() {
    let e = Catalog::builtin().layout_for(&ver("11.0")).unwrap_err();
    assert!(matches!(e, CatalogError::UnknownVersion { .. }));
    assert!(e.to_string().contains("11.0"), "{e}");
    // 9.1 is not in the 9.0.* series.
    assert!(Catalog::builtin().layout_for(&ver("9.1")).is_err());
    assert!(Catalog::builtin().compatibility(&ver("9.0"), &ver("12.0")).is_err());
}

const PRECEDENCE: &str = r#"
[catalog]
extends = "none"

[[layout]]
name = "wide"
epoch = 1
[[layout.store]]
name = "pac"
sub_prefix = "pac"
type = "hash"
role = "pac-record"
placement = "tagged"
upgrade = "fresh"
[[layout]]
name = "narrow"
epoch = 2
[[layout.store]]
name = "pac"
sub_prefix = "pac"
type = "hash"
role = "pac-record"
placement = "tagged"
upgrade = "fresh"
[[layout]]
name = "exact"
epoch = 3
[[layout.store]]
name = "pac"
sub_prefix = "pac"
type = "hash"
role = "pac-record"
placement = "tagged"
upgrade = "fresh"

[[version]]
match = "9.*"
layout = "wide"
[[version]]
match = "9.0.*"
layout = "narrow"
[[version]]
match = "9.0.2"
layout = "exact"
"#;

#[test]
fn exact_beats_pattern_and_longer_pattern_beats_shorter() {
    let cat = Catalog::from_toml_str(PRECEDENCE, "prec.toml").unwrap();
    let name = |v: &str| cat.layout_for(&ver(v)).unwrap().name.clone();
    assert_eq!(name("9.0.2"), "exact");
    assert_eq!(name("9.0.3"), "narrow");
    assert_eq!(name("9.0"), "narrow");
    assert_eq!(name("9.0.2.1"), "narrow");
    assert_eq!(name("9.1"), "wide");
    assert_eq!(name("9"), "wide");
    // Integer epochs are epochs like strings.
    assert_eq!(cat.layout("wide").unwrap().epoch.as_str(), "1");
}

#[test]
fn user_file_extends_builtin_by_default() {
    let user = r#"
[[layout]]
name = "site-10"
epoch = "10"
[[layout.store]]
name = "pac"
sub_prefix = "pac"
type = "hash"
role = "pac-record"
placement = "tagged"
upgrade = "fresh"
[[layout.store]]
name = "PCT"
sub_prefix = "pct"
type = "hash"
role = "pct"
placement = "spread"
upgrade = "carry"

[[version]]
match = "10.0.*"
layout = "site-10"

[[version]]
match = "9.0.*"
layout = "site-10"
"#;
    let cat = Catalog::from_toml_str(user, "site.toml").unwrap();
    assert!(!cat.is_reference());
    assert_eq!(cat.layout_for(&ver("10.0.1")).unwrap().name, "site-10");
    // Same `match` text replaces the built-in entry; the exact 9.0 entry stays.
    assert_eq!(cat.layout_for(&ver("9.0.2")).unwrap().name, "site-10");
    assert_eq!(cat.layout_for(&ver("9.0")).unwrap().name, "ref-9");
    assert_eq!(cat.layout_for(&ver("8.0")).unwrap().name, "ref-8");
    assert_eq!(cat.sources(), ["<builtin reference.toml>", "site.toml"]);
}

#[test]
fn user_file_can_replace_builtin() {
    let cat = Catalog::from_toml_str(PRECEDENCE, "prec.toml").unwrap();
    assert!(cat.layout_for(&ver("8.0")).is_err());
    assert!(cat.layout("ref-9").is_none());
}

#[test]
fn load_file_reads_and_names_the_path() {
    let dir = std::env::temp_dir().join(format!("psor-layout-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[[version]]\nmatch = \"9.0\"\nlayout = \"nope\"\n").unwrap();
    let e = Catalog::load_file(&path).unwrap_err();
    assert!(e.to_string().starts_with(&format!("{}:3:", path.display())), "{e}");
    let e = Catalog::load_file(&dir.join("missing.toml")).unwrap_err();
    assert!(matches!(e.kind(), CatalogErrorKind::Read));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn entries_iterate_versions_with_layouts_and_serialize() {
    let cat = Catalog::builtin();
    let rows: Vec<_> = cat.entries().collect();
    let names: Vec<String> = rows.iter().map(|r| r.matches.to_string()).collect();
    assert_eq!(names, ["7.0", "7.0.*", "8.0", "8.0.*", "9.0", "9.0.*"]);
    assert!(rows.iter().all(|r| !r.layout.stores.is_empty()));
    let json = serde_json::to_string(&rows).unwrap();
    assert!(json.contains("\"epoch\":\"9\""), "{json}");
    assert!(json.contains("\"sub_prefix\":\"pct\""), "{json}");
    assert!(serde_json::to_string(&cat).unwrap().contains("ref-8"));
}

// ---- every kind of mistake names file, line and field ---------------------

const BASE_LAYOUT: &str = r#"[catalog]
extends = "none"

[[layout]]
name = "L"
epoch = "1"
"#;

/// Parse `BASE_LAYOUT + extra`, expect a refusal of `kind` on `line` naming `field`.
fn refused(extra: &str, kind: CatalogErrorKind, line: usize, field: &str) -> CatalogError {
    let text = format!("{BASE_LAYOUT}{extra}");
    let e = Catalog::from_toml_str(&text, "site.toml").expect_err("must be refused");
    assert_eq!(e.kind(), kind, "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("site.toml:{line}:")), "expected line {line}: {msg}");
    assert!(msg.contains(field), "expected field {field}: {msg}");
    assert!(matches!(&e, CatalogError::Invalid { line: l, .. } if *l == line));
    e
}

fn store(lines: &str) -> String {
    format!("\n[[layout.store]]\n{lines}")
}

const STORE_OK: &str =
    "name = \"S\"\nsub_prefix = \"s\"\ntype = \"hash\"\nplacement = \"spread\"\nupgrade = \"fresh\"\n";

#[test]
fn syntax_error_is_located() {
    refused("epoch = 2\n", CatalogErrorKind::Syntax, 7, "epoch");
}

#[test]
fn missing_field_is_named() {
    let e = refused(&store("name = \"S\"\nsub_prefix = \"s\"\n"), CatalogErrorKind::Syntax, 8, "type");
    assert!(e.to_string().contains("missing"), "{e}");
}

#[test]
fn unknown_field_is_named() {
    refused("colour = \"blue\"\n", CatalogErrorKind::Syntax, 7, "colour");
}

#[test]
fn duplicate_layout() {
    refused("\n[[layout]]\nname = \"L\"\nepoch = 2\n", CatalogErrorKind::DuplicateLayout, 9, "layout[L].name");
}

#[test]
fn unknown_layout_referenced_by_a_version() {
    refused(
        "\n[[version]]\nmatch = \"9.0\"\nlayout = \"M\"\n",
        CatalogErrorKind::UnknownLayout,
        10,
        "version[9.0].layout",
    );
}

#[test]
fn bad_version_pattern() {
    for (pat, line) in [("9.*.1", 9), ("9.01", 9), ("*", 9), ("9.0.*.*", 9)] {
        refused(
            &format!("\n[[version]]\nmatch = \"{pat}\"\nlayout = \"L\"\n"),
            CatalogErrorKind::BadVersionPattern,
            line,
            ".match",
        );
    }
}

#[test]
fn duplicate_version() {
    refused(
        "\n[[version]]\nmatch = \"9.0\"\nlayout = \"L\"\n[[version]]\nmatch = \"9.0\"\nlayout = \"L\"\n",
        CatalogErrorKind::DuplicateVersion,
        12,
        "version[9.0].match",
    );
}

#[test]
fn duplicate_store_sub_prefix() {
    let two = format!("{}{}", store(STORE_OK), store(&STORE_OK.replace("\"S\"", "\"T\"")));
    refused(&two, CatalogErrorKind::DuplicateSubPrefix, 17, "layout[L].store[T].sub_prefix");
}

#[test]
fn sub_prefix_that_is_a_prefix_of_another() {
    let two = format!("{}{}", store(STORE_OK), store(&STORE_OK.replace("\"S\"", "\"T\"").replace("\"s\"", "\"s:x\"")));
    refused(&two, CatalogErrorKind::OverlappingSubPrefix, 17, "layout[L].store[T].sub_prefix");
}

#[test]
fn bad_sub_prefix() {
    refused(&store(&STORE_OK.replace("\"s\"", "\"s{x}\"")), CatalogErrorKind::BadSubPrefix, 10, "store[S].sub_prefix");
}

#[test]
fn duplicate_store_name() {
    let two = format!("{}{}", store(STORE_OK), store(&STORE_OK.replace("\"s\"", "\"t\"")));
    refused(&two, CatalogErrorKind::DuplicateStore, 16, "layout[L].store[S].name");
}

#[test]
fn unknown_transform() {
    let s = STORE_OK.replace("\"fresh\"", "\"carry\"") + "transform = \"rot13\"\n";
    let e = refused(&store(&s), CatalogErrorKind::UnknownTransform, 14, "layout[L].store[S].transform");
    assert!(e.to_string().contains("identity"), "lists known transforms: {e}");
}

#[test]
fn transform_on_fresh_store() {
    let s = STORE_OK.to_owned() + "transform = \"identity\"\n";
    refused(&store(&s), CatalogErrorKind::BadTransformUse, 14, "layout[L].store[S].transform");
}

#[test]
fn rename_store_needs_from_store() {
    let s = STORE_OK.replace("\"fresh\"", "\"carry\"") + "transform = \"rename-store\"\n";
    refused(&store(&s), CatalogErrorKind::BadTransformUse, 14, "layout[L].store[S].from_store");
    let ok = s + "from_store = \"OLD\"\n";
    // from_store must name a store of another layout (issue 9): layout K has one.
    let older =
        "\n[[layout]]\nname = \"K\"\nepoch = \"0\"\n".to_owned() + &store(&STORE_OK.replace("\"S\"", "\"OLD\""));
    let text = format!("{BASE_LAYOUT}{}{older}", store(&ok));
    let cat = Catalog::from_toml_str(&text, "ok.toml").unwrap();
    assert!(matches!(
        &cat.layout("L").unwrap().stores[0].upgrade,
        Upgrade::Carry { transform, from_store: Some(f) } if transform == "rename-store" && f == "OLD"
    ));
}

#[test]
fn bad_redis_type() {
    refused(&store(&STORE_OK.replace("\"hash\"", "\"hashmap\"")), CatalogErrorKind::BadValue, 11, "store[S].type");
}

#[test]
fn bad_placement_and_upgrade_words() {
    refused(
        &store(&STORE_OK.replace("\"spread\"", "\"everywhere\"")),
        CatalogErrorKind::BadValue,
        12,
        "store[S].placement",
    );
    refused(&store(&STORE_OK.replace("\"fresh\"", "\"copy\"")), CatalogErrorKind::BadValue, 13, "store[S].upgrade");
}

#[test]
fn bad_role_and_role_constraints() {
    refused(&store(&(STORE_OK.to_owned() + "role = \"boss\"\n")), CatalogErrorKind::BadValue, 14, "store[S].role");
    // PAC metadata must be tagged ...
    refused(
        &store(&(STORE_OK.to_owned() + "role = \"pac-record\"\n")),
        CatalogErrorKind::RoleConstraint,
        12,
        "store[S].placement",
    );
    // ... and the PAC record a hash.
    let s = STORE_OK.replace("\"spread\"", "\"tagged\"").replace("\"hash\"", "\"set\"") + "role = \"pac-record\"\n";
    refused(&store(&s), CatalogErrorKind::RoleConstraint, 11, "store[S].type");
    let two = format!(
        "{}{}",
        store(&(STORE_OK.to_owned() + "role = \"pct\"\n")),
        store(&(STORE_OK.replace("\"S\"", "\"T\"").replace("\"s\"", "\"t\"") + "role = \"pct\"\n"))
    );
    refused(&two, CatalogErrorKind::DuplicateRole, 22, "layout[L].store[T].role");
}

#[test]
fn bad_names_and_epoch() {
    refused("\n[[layout]]\nname = \"a b\"\nepoch = 1\n", CatalogErrorKind::BadName, 9, "layout.name");
    refused("\n[[layout]]\nname = \"M\"\nepoch = \"  \"\n", CatalogErrorKind::BadEpoch, 10, "layout[M].epoch");
    refused(&store(&STORE_OK.replace("\"S\"", "\"\"")), CatalogErrorKind::BadName, 9, "store.name");
}

#[test]
fn bad_template() {
    refused(
        "\n[[layout]]\nname = \"M\"\nepoch = 2\nkey_prefix = \"{pac}_{version}\"\n",
        CatalogErrorKind::BadTemplate,
        11,
        "layout[M].key_prefix",
    );
}

#[test]
fn layouts_with_different_templates() {
    refused(
        "\n[[layout]]\nname = \"M\"\nepoch = 2\nkey_prefix = \"{pac}-{version}:\"\n",
        CatalogErrorKind::TemplateMismatch,
        11,
        "layout[M].key_prefix",
    );
}

#[test]
fn bad_extends() {
    let e = Catalog::from_toml_str("[catalog]\nextends = \"parent\"\n", "x.toml").unwrap_err();
    assert_eq!(e.kind(), CatalogErrorKind::Header);
    assert!(e.to_string().starts_with("x.toml:2:11: catalog.extends"), "{e}");
}

#[test]
fn mistakes_in_an_extending_file_name_that_file() {
    let e = Catalog::from_toml_str("[[version]]\nmatch = \"9.2\"\nlayout = \"ref-10\"\n", "site.toml").unwrap_err();
    assert_eq!(e.kind(), CatalogErrorKind::UnknownLayout);
    assert!(e.to_string().starts_with("site.toml:3:10: version[9.2].layout"), "{e}");
    assert!(e.to_string().contains("ref-9"), "lists known layouts: {e}");
}

#[test]
fn the_example_in_docs_parses() {
    let doc = include_str!("../../docs/layouts.md");
    let example = doc
        .split("## Example user file")
        .nth(1)
        .and_then(|s| s.split("```toml").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("docs/layouts.md has an example user file");
    let cat = Catalog::from_toml_str(example, "docs/layouts.md").unwrap();
    let l = cat.layout_for(&ver("10.0.3")).unwrap();
    assert_eq!(l.name, "acme-10");
    assert!(!cat.compatibility(&ver("9.0"), &ver("10.0")).unwrap().is_compatible());
}

// ---- refused when loaded, not later in create or sample (issue 9, item 10) ------------

#[test]
fn a_layout_a_version_uses_needs_a_pac_record_store() {
    let text = format!("{BASE_LAYOUT}{}\n[[version]]\nmatch = \"9.0\"\nlayout = \"L\"\n", store(STORE_OK));
    let e = Catalog::from_toml_str(&text, "site.toml").expect_err("no pac-record store");
    assert_eq!(e.kind(), CatalogErrorKind::RoleConstraint, "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with("site.toml:4:1: layout[L].store: "), "{msg}");
    assert!(msg.contains("pac-record"), "{msg}");
    // A layout no version uses is not checked (it is never used for a PAC).
    assert!(Catalog::from_toml_str(&format!("{BASE_LAYOUT}{}", store(STORE_OK)), "site.toml").is_ok());
}

#[test]
fn rename_store_from_a_store_no_layout_has_is_refused() {
    let s = STORE_OK.replace("\"fresh\"", "\"carry\"") + "transform = \"rename-store\"\nfrom_store = \"NOPE\"\n";
    let e = refused(&store(&s), CatalogErrorKind::BadTransformUse, 8, "layout[L].store[S].from_store");
    assert!(e.to_string().contains("\"NOPE\""), "{e}");
}

#[test]
fn a_float_epoch_is_refused_naming_the_field() {
    let e = refused("\n[[layout]]\nname = \"M\"\nepoch = 9.5\n", CatalogErrorKind::BadEpoch, 10, "layout[M].epoch");
    let msg = e.to_string();
    assert!(msg.contains("9.5") && !msg.contains("untagged"), "{msg}");
    refused("\n[[layout]]\nname = \"M\"\nepoch = true\n", CatalogErrorKind::BadEpoch, 10, "layout[M].epoch");
}
