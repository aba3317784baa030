//! Parsing and validating a catalog: raw TOML to the model, every mistake refused with
//! its location, then the checks that need the whole (possibly merged) catalog.

#[allow(clippy::wildcard_imports)]
use super::*;

fn valid_item_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

const ITEM_NAME_GRAMMAR: &str = "1 to 64 letters, digits, '_', '-' or '.', starting with a letter or digit";

fn one_of<T: Copy>(table: &[(&str, T)], s: &Spanned<String>, src: &Src<'_>, field: &str) -> Result<T, CatalogError> {
    table.iter().find(|(n, _)| *n == s.get_ref()).map(|(_, t)| *t).ok_or_else(|| {
        let words: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        src.at(s).error(
            CatalogErrorKind::BadValue,
            field,
            format!("{:?} is not one of {}", s.get_ref(), words.join(", ")),
        )
    })
}

impl Catalog {
    pub(super) fn parse_one(text: &str, source: &str) -> Result<(Catalog, Extends), CatalogError> {
        let src = Src { name: source, text };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let loc = src.loc(span.start);
            let msg = e.message().to_owned();
            // serde names the field in backquotes ("missing field `epoch`"); the
            // TOML parser points its span at the offending key or value instead.
            let at_span = text.get(span).unwrap_or("").trim();
            let field = match msg.split('`').nth(1) {
                Some(f) => f.to_owned(),
                None if !at_span.is_empty() && at_span.len() <= 64 && !at_span.contains('\n') => at_span.to_owned(),
                None => "(toml)".to_owned(),
            };
            loc.error(CatalogErrorKind::Syntax, field, msg.trim_end().to_owned())
        })?;

        let mut queue_prefixes = None;
        if let Some(qs) = raw.catalog.as_ref().and_then(|h| h.queue_prefixes.as_ref()) {
            let mut v = Vec::new();
            for q in qs {
                let text = q.get_ref();
                let ok = SubPrefix::new(text).is_ok() && !text.contains(':');
                if !ok {
                    return Err(src.at(q).error(
                        CatalogErrorKind::BadSubPrefix,
                        "catalog.queue_prefixes",
                        format!(
                            "{text:?} is not one sub-prefix segment (a letter or digit followed by letters, \
                             digits, '_', '-' or '.', no ':')"
                        ),
                    ));
                }
                v.push(text.clone());
            }
            queue_prefixes = Some(v);
        }
        let (name, reference, extends) = match &raw.catalog {
            None => (source.to_owned(), false, Extends::Builtin),
            Some(h) => {
                let extends = match &h.extends {
                    None => Extends::Builtin,
                    Some(e) => {
                        one_of(&[("builtin", Extends::Builtin), ("none", Extends::None)], e, &src, "catalog.extends")
                            .map_err(|err| match err {
                                CatalogError::Invalid { file, line, column, field, message, .. } => {
                                    CatalogError::Invalid {
                                        kind: CatalogErrorKind::Header,
                                        file,
                                        line,
                                        column,
                                        field,
                                        message,
                                    }
                                }
                                other => other,
                            })?
                    }
                };
                (h.name.clone().unwrap_or_else(|| source.to_owned()), h.reference, extends)
            }
        };

        let mut layouts: Vec<Layout> = Vec::new();
        for rl in &raw.layout {
            let layout = Self::parse_layout(rl, &src)?;
            if let Some(prev) = layouts.iter().find(|l| l.name == layout.name) {
                return Err(src.at(&rl.get_ref().name).error(
                    CatalogErrorKind::DuplicateLayout,
                    format!("layout[{}].name", layout.name),
                    format!("layout {:?} is already defined at {}", layout.name, prev.defined_at),
                ));
            }
            layouts.push(layout);
        }

        let mut versions: Vec<VersionRule> = Vec::new();
        for rv in &raw.version {
            let r = rv.get_ref();
            let at = src.at(&r.matches);
            let matches = VersionMatch::parse(r.matches.get_ref()).map_err(|e| {
                at.error(
                    CatalogErrorKind::BadVersionPattern,
                    format!("version[{}].match", r.matches.get_ref()),
                    format!("{e}; a match is a version or a version followed by \".*\""),
                )
            })?;
            if let Some(prev) = versions.iter().find(|v| v.matches == matches) {
                return Err(at.error(
                    CatalogErrorKind::DuplicateVersion,
                    format!("version[{matches}].match"),
                    format!("{matches} is already mapped at {}", prev.defined_at),
                ));
            }
            versions.push(VersionRule {
                matches,
                layout: r.layout.get_ref().clone(),
                note: r.note.clone(),
                defined_at: src.at(&r.layout),
            });
        }
        let cat = Catalog { name, reference, sources: vec![source.to_owned()], layouts, versions, queue_prefixes };
        if extends == Extends::None {
            cat.check_whole()?;
        }
        Ok((cat, extends))
    }

    fn parse_layout(rl: &Spanned<RawLayout>, src: &Src<'_>) -> Result<Layout, CatalogError> {
        let r = rl.get_ref();
        let name = r.name.get_ref().clone();
        if !valid_item_name(&name) {
            return Err(src.at(&r.name).error(
                CatalogErrorKind::BadName,
                "layout.name",
                format!("{name:?} is not a layout name: {ITEM_NAME_GRAMMAR}"),
            ));
        }
        let f = |field: &str| format!("layout[{name}].{field}");
        let epoch = match r.epoch.get_ref() {
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::String(s) => s.trim().to_owned(),
            other => {
                return Err(src.at(&r.epoch).error(
                    CatalogErrorKind::BadEpoch,
                    f("epoch"),
                    format!(
                        "{other} is a {}, not an epoch: an epoch is an integer or a string (e.g. 9 or \"9\"; \
                         write \"9.5\" if you mean that text)",
                        other.type_str()
                    ),
                ))
            }
        };
        if epoch.is_empty() {
            return Err(src.at(&r.epoch).error(CatalogErrorKind::BadEpoch, f("epoch"), "the epoch is empty"));
        }
        let (key_prefix, key_prefix_at) = match &r.key_prefix {
            None => (KeyTemplate::default(), src.at(&r.name)),
            Some(t) => (
                KeyTemplate::new(t.get_ref())
                    .map_err(|e| src.at(t).error(CatalogErrorKind::BadTemplate, f("key_prefix"), e.to_string()))?,
                src.at(t),
            ),
        };
        let mut stores: Vec<Store> = Vec::new();
        for rs in &r.store {
            let s = Self::parse_store(rs, src, &name)?;
            let sat = src.at(&rs.get_ref().sub_prefix);
            if let Some(prev) = stores.iter().find(|p| p.name == s.name) {
                return Err(src.at(&rs.get_ref().name).error(
                    CatalogErrorKind::DuplicateStore,
                    format!("layout[{name}].store[{}].name", s.name),
                    format!("store {:?} is already defined at {}", s.name, prev.defined_at),
                ));
            }
            let field = format!("layout[{name}].store[{}].sub_prefix", s.name);
            for p in &stores {
                let (a, b) = (s.sub_prefix.as_str(), p.sub_prefix.as_str());
                if a == b {
                    return Err(sat.error(
                        CatalogErrorKind::DuplicateSubPrefix,
                        field,
                        format!("sub-prefix {a:?} is already used by store {:?} at {}", p.name, p.defined_at),
                    ));
                }
                if a.starts_with(b) || b.starts_with(a) {
                    return Err(sat.error(
                        CatalogErrorKind::OverlappingSubPrefix,
                        field,
                        format!(
                            "sub-prefix {a:?} and store {:?}'s sub-prefix {b:?} (at {}) are prefixes of one \
                             another; sub-prefixes of one layout must not be",
                            p.name, p.defined_at
                        ),
                    ));
                }
                if s.role != StoreRole::Other && s.role == p.role {
                    return Err(src.at(rs.get_ref().role.as_ref().unwrap_or(&rs.get_ref().name)).error(
                        CatalogErrorKind::DuplicateRole,
                        format!("layout[{name}].store[{}].role", s.name),
                        format!(
                            "role {:?} is already taken by store {:?} at {}",
                            s.role.as_str(),
                            p.name,
                            p.defined_at
                        ),
                    ));
                }
            }
            stores.push(s);
        }
        Ok(Layout {
            name,
            epoch: Epoch(epoch),
            key_prefix,
            description: r.description.clone(),
            stores,
            defined_at: src.loc(rl.span().start),
            key_prefix_at,
        })
    }

    fn parse_store(rs: &Spanned<RawStore>, src: &Src<'_>, layout: &str) -> Result<Store, CatalogError> {
        let r = rs.get_ref();
        let name = r.name.get_ref().clone();
        if !valid_item_name(&name) {
            return Err(src.at(&r.name).error(
                CatalogErrorKind::BadName,
                format!("layout[{layout}].store.name"),
                format!("{name:?} is not a store name: {ITEM_NAME_GRAMMAR}"),
            ));
        }
        let f = |field: &str| format!("layout[{layout}].store[{name}].{field}");
        let sub_prefix = SubPrefix::new(r.sub_prefix.get_ref())
            .map_err(|e| src.at(&r.sub_prefix).error(CatalogErrorKind::BadSubPrefix, f("sub_prefix"), e.to_string()))?;
        let redis_type = one_of(RedisType::ALL, &r.redis_type, src, &f("type"))?;
        let placement = one_of(
            &[("tagged", Placement::Tagged), ("spread", Placement::Spread)],
            &r.placement,
            src,
            &f("placement"),
        )?;
        let role = match &r.role {
            None => StoreRole::Other,
            Some(s) => StoreRole::parse(s.get_ref()).ok_or_else(|| {
                src.at(s).error(
                    CatalogErrorKind::BadValue,
                    f("role"),
                    format!(
                        "{:?} is not one of pac-record, region-registry, version-records, pct, fct, ppt, dct, \
                         tst, enqmodel, other",
                        s.get_ref()
                    ),
                )
            })?,
        };
        if role.is_metadata() && placement != Placement::Tagged {
            return Err(src.at(&r.placement).error(
                CatalogErrorKind::RoleConstraint,
                f("placement"),
                format!("a {} store must be \"tagged\" so the PAC metadata shares one cluster slot", role.as_str()),
            ));
        }
        if role == StoreRole::PacRecord && redis_type != RedisType::Hash {
            return Err(src.at(&r.redis_type).error(
                CatalogErrorKind::RoleConstraint,
                f("type"),
                "the pac-record store must be a \"hash\" (psor encodes the PAC record as one)",
            ));
        }
        #[derive(Clone, Copy, PartialEq)]
        enum Up {
            Fresh,
            Carry,
        }
        let up = one_of(&[("fresh", Up::Fresh), ("carry", Up::Carry)], &r.upgrade, src, &f("upgrade"))?;
        let upgrade = match up {
            Up::Fresh => {
                if let Some(t) = &r.transform {
                    return Err(src.at(t).error(
                        CatalogErrorKind::BadTransformUse,
                        f("transform"),
                        "a transform only applies to upgrade = \"carry\"",
                    ));
                }
                if let Some(t) = &r.from_store {
                    return Err(src.at(t).error(
                        CatalogErrorKind::BadTransformUse,
                        f("from_store"),
                        "from_store only applies to upgrade = \"carry\" with transform = \"rename-store\"",
                    ));
                }
                Upgrade::Fresh
            }
            Up::Carry => {
                let tname = r.transform.as_ref().map_or("identity", |t| t.get_ref().as_str());
                let info = transform(tname).ok_or_else(|| {
                    let t = r.transform.as_ref().expect("identity is known, so a transform was named");
                    let known: Vec<&str> = TRANSFORMS.iter().map(|t| t.name).collect();
                    src.at(t).error(
                        CatalogErrorKind::UnknownTransform,
                        f("transform"),
                        format!("unknown transform {tname:?}; known transforms: {}", known.join(", ")),
                    )
                })?;
                match (&r.from_store, info.needs_from_store) {
                    (None, true) => {
                        return Err(src.at(r.transform.as_ref().unwrap_or(&r.upgrade)).error(
                            CatalogErrorKind::BadTransformUse,
                            f("from_store"),
                            format!("transform {tname:?} needs from_store = \"<old store name>\""),
                        ))
                    }
                    (Some(fs), false) => {
                        return Err(src.at(fs).error(
                            CatalogErrorKind::BadTransformUse,
                            f("from_store"),
                            format!("transform {tname:?} takes no from_store"),
                        ))
                    }
                    (Some(fs), true) if !valid_item_name(fs.get_ref()) => {
                        return Err(src.at(fs).error(
                            CatalogErrorKind::BadName,
                            f("from_store"),
                            format!("{:?} is not a store name: {ITEM_NAME_GRAMMAR}", fs.get_ref()),
                        ))
                    }
                    _ => {}
                }
                Upgrade::Carry {
                    transform: tname.to_owned(),
                    from_store: r.from_store.as_ref().map(|s| s.get_ref().clone()),
                }
            }
        };
        Ok(Store {
            name,
            sub_prefix,
            redis_type,
            holds: r.holds.clone(),
            role,
            placement,
            upgrade,
            defined_at: src.loc(rs.span().start),
        })
    }

    /// Checks that need the whole (possibly merged) catalog.
    pub(super) fn check_whole(&self) -> Result<(), CatalogError> {
        for v in &self.versions {
            if self.layout(&v.layout).is_none() {
                let known: Vec<&str> = self.layouts.iter().map(|l| l.name.as_str()).collect();
                return Err(v.defined_at.error(
                    CatalogErrorKind::UnknownLayout,
                    format!("version[{}].layout", v.matches),
                    format!("no layout named {:?} (layouts: {})", v.layout, known.join(", ")),
                ));
            }
        }
        if let Some(first) = self.layouts.first() {
            for l in &self.layouts[1..] {
                if l.key_prefix != first.key_prefix {
                    return Err(l.key_prefix_at.error(
                        CatalogErrorKind::TemplateMismatch,
                        format!("layout[{}].key_prefix", l.name),
                        format!(
                            "key_prefix {:?} differs from layout {:?}'s {:?} (at {}); all layouts of a catalog \
                             must share one template so every key decodes without knowing its version",
                            l.key_prefix.as_str(),
                            first.name,
                            first.key_prefix.as_str(),
                            first.defined_at
                        ),
                    ));
                }
            }
        }
        for l in &self.layouts {
            for st in &l.stores {
                let Upgrade::Carry { transform, from_store: Some(from) } = &st.upgrade else { continue };
                if transform != "rename-store" {
                    continue;
                }
                let found = self.layouts.iter().any(|o| o.name != l.name && o.store(from).is_some());
                if !found {
                    return Err(st.defined_at.error(
                        CatalogErrorKind::BadTransformUse,
                        format!("layout[{}].store[{}].from_store", l.name, st.name),
                        format!(
                            "no other layout of the catalog has a store named {from:?}, so create would carry \
                             nothing and leave {} empty; name the store of the older layout it comes from",
                            st.name
                        ),
                    ));
                }
            }
        }
        // Every layout a version uses must say where the PAC record is: status, create,
        // set-mode and sample all need it.
        for v in &self.versions {
            let Some(l) = self.layout(&v.layout) else { continue };
            if l.store_with_role(StoreRole::PacRecord).is_none() {
                return Err(l.defined_at.error(
                    CatalogErrorKind::RoleConstraint,
                    format!("layout[{}].store", l.name),
                    format!(
                        "layout {:?} (used by version {} at {}) has no store with role = \"pac-record\": psor \
                         needs one to read and write the PAC record (a tagged hash; docs/layouts.md)",
                        l.name, v.matches, v.defined_at
                    ),
                ));
            }
        }
        Ok(())
    }
}
