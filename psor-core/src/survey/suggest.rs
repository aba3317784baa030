//! A draft layout catalog from a survey, for a person to review.
//!
//! The vendor's key layout is not public, so a site writes its own catalog
//! (`docs/layouts.md`). This module reads the surveyed tree for prefixes that look like
//! `<PAC>_<version>:` (the default key-prefix template) with store prefixes
//! `<sub>:` one level below, and writes the catalog those keys suggest: one layout per
//! product version (the union of the stores seen under every PAC of that version), each
//! store's type (the commonest), placement (`tagged` when every key of the store carries a
//! hash tag right after the store prefix), a role and upgrade rule guessed from the
//! reference store names, and a `[[version]]` entry per version. Guesses are written as
//! comments next to the values; the draft is parsed back with
//! [`Catalog::from_toml_str`] and any problem is reported, never hidden.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::tree::{KeyType, SurveyNode, TypeCounts};
use super::Survey;
use crate::layout::{Catalog, CatalogError, KeyTemplate, PacName, ProductVersion, SubPrefix};

/// A draft catalog and what it was made from.
#[derive(Debug)]
pub struct SuggestedCatalog {
    /// The TOML text.
    pub toml: String,
    /// The (PAC, version) prefixes found, e.g. `MyPAC_9.0:`.
    pub pac_prefixes: Vec<String>,
    /// Layouts in the draft (one per version).
    pub layouts: usize,
    /// Stores in the draft, over all layouts.
    pub stores: usize,
    /// Why the draft does not load as a catalog, if it does not (a person must fix it).
    pub problem: Option<CatalogError>,
}

#[derive(Default)]
struct StoreDraft {
    keys: u64,
    tagged: u64,
    types: TypeCounts,
    pacs: BTreeSet<String>,
}

/// Builds a draft catalog from `survey`, or `None` when no prefix looks like
/// `<PAC>_<version>:` followed by stores (the survey's delimiter must be `:` and its depth
/// must reach the stores).
pub fn suggest_layout(survey: &Survey, generated_by: &str) -> Option<SuggestedCatalog> {
    let template = KeyTemplate::default();
    let mut pac_prefixes = Vec::new();
    let mut by_version: BTreeMap<ProductVersion, BTreeMap<String, StoreDraft>> = BTreeMap::new();
    let mut pending: Vec<&SurveyNode> = survey.nodes.iter().collect();
    while let Some(node) = pending.pop() {
        if node.other {
            continue;
        }
        pending.extend(node.children.iter());
        let Some((pac, version, rest)) = template.parse_prefix(&node.prefix_bytes) else { continue };
        if !rest.is_empty() {
            continue;
        }
        let stores = stores_under(node);
        if stores.is_empty() {
            continue;
        }
        pac_prefixes.push(node.prefix.clone());
        let layout = by_version.entry(version).or_default();
        for (sub, child) in stores {
            let d = layout.entry(sub).or_default();
            d.keys += child.keys;
            d.tagged += child.tagged_keys;
            for (acc, n) in d.types.iter_mut().zip(child.type_counts) {
                *acc += n;
            }
            d.pacs.insert(pac_name(&pac));
        }
    }
    if by_version.is_empty() {
        return None;
    }
    pac_prefixes.sort();
    let mut t = String::new();
    let _ = writeln!(t, "# DRAFT layout catalog written by `{generated_by}`.");
    let _ = writeln!(t, "# It is a guess from the keys psor saw: review every value before giving it to psor");
    let _ = writeln!(t, "# with --layouts (docs/layouts.md). Roles, upgrade rules and epochs are guessed from");
    let _ = writeln!(t, "# the reference catalog's store names and the major version; the vendor's real");
    let _ = writeln!(t, "# compatibility rules are not public.");
    let _ = writeln!(t, "# PAC prefixes surveyed: {}", pac_prefixes.join(", "));
    let _ = writeln!(t, "\n[catalog]\nname = \"surveyed\"");
    let _ = writeln!(t, "extends = \"none\"   # \"builtin\" lays this file over the reference catalog instead");
    let mut stores_total = 0;
    for (version, stores) in &by_version {
        let layout = format!("surveyed-{version}");
        let epoch = version.components()[0];
        let _ = writeln!(t, "\n[[layout]]\nname = \"{layout}\"");
        let _ = writeln!(t, "epoch = \"{epoch}\"   # guess: the major version; layouts with one epoch are compatible");
        let _ = writeln!(t, "key_prefix = \"{}\"", template.as_str());
        let subs: Vec<&String> = stores.keys().collect();
        for (sub, d) in stores {
            // Sub-prefixes of one layout must not be prefixes of one another (docs/layouts.md).
            if let Some(longer) = subs.iter().find(|o| *o != &sub && o.starts_with(sub.as_str())) {
                let _ = writeln!(
                    t,
                    "\n# store \"{sub}\" ({} keys) left out: its sub-prefix is a prefix of \"{longer}\"'s",
                    d.keys
                );
                continue;
            }
            let Some(ty) = catalog_type(&d.types) else {
                let _ = writeln!(
                    t,
                    "\n# store \"{sub}\" ({} keys) left out: its keys' type is unknown or a module type",
                    d.keys
                );
                continue;
            };
            let tagged = d.keys > 0 && d.tagged == d.keys;
            let placement = if tagged { "tagged" } else { "spread" };
            let (role, role_note) = role_for(sub, ty, tagged);
            let metadata = matches!(role, "pac-record" | "region-registry" | "version-records");
            stores_total += 1;
            let _ = writeln!(t, "\n[[layout.store]]");
            let _ = writeln!(t, "name = \"{sub}\"");
            let _ = writeln!(t, "sub_prefix = \"{sub}\"");
            let mixed = d.types.iter().filter(|&&n| n > 0).count() > 1;
            let _ = writeln!(
                t,
                "type = \"{ty}\"{}",
                if mixed { format!("   # mixed types seen: {}", type_list(&d.types)) } else { String::new() }
            );
            let _ = writeln!(t, "role = \"{role}\"{role_note}");
            let _ = writeln!(
                t,
                "placement = \"{placement}\"   # {} of {} keys carry a hash tag after the store prefix",
                d.tagged, d.keys
            );
            if metadata {
                let _ = writeln!(t, "upgrade = \"fresh\"   # guess: PAC metadata starts empty in a new version");
            } else {
                let _ = writeln!(t, "upgrade = \"carry\"   # guess: copied from the old version");
                let _ = writeln!(t, "transform = \"identity\"");
            }
            let pacs: Vec<&str> = d.pacs.iter().map(String::as_str).collect();
            let _ = writeln!(t, "holds = \"surveyed: {} keys under PAC(s) {}\"", d.keys, pacs.join(", "));
        }
    }
    for version in by_version.keys() {
        let _ = writeln!(
            t,
            "\n[[version]]\nmatch = \"{version}.*\"   # {version} and its compatible updates ({version}.x) share the {version} prefix\nlayout = \"surveyed-{version}\""
        );
    }
    let problem = Catalog::from_toml_str(&t, "suggested catalog").err();
    Some(SuggestedCatalog { toml: t, pac_prefixes, layouts: by_version.len(), stores: stores_total, problem })
}

fn pac_name(p: &PacName) -> String {
    p.as_str().to_string()
}

/// The children of a (PAC, version) node that are store prefixes `<sub>:`.
fn stores_under(node: &SurveyNode) -> Vec<(String, &SurveyNode)> {
    node.children
        .iter()
        .filter(|c| !c.other)
        .filter_map(|c| {
            let seg = c.prefix_bytes.get(node.prefix_bytes.len()..)?.strip_suffix(b":")?;
            let sub = std::str::from_utf8(seg).ok()?;
            // One level only: nested stores (`res:pct`) are for a person to spot.
            (!sub.contains(':') && SubPrefix::new(sub).is_ok()).then(|| (sub.to_string(), c))
        })
        .collect()
}

const CATALOG_TYPES: [(KeyType, &str); 6] = [
    (KeyType::String, "string"),
    (KeyType::Hash, "hash"),
    (KeyType::List, "list"),
    (KeyType::Set, "set"),
    (KeyType::Zset, "zset"),
    (KeyType::Stream, "stream"),
];

/// The catalog type of the commonest key type, if it is one a catalog can name.
fn catalog_type(types: &TypeCounts) -> Option<&'static str> {
    let (best, n) = CATALOG_TYPES.iter().map(|&(t, name)| (name, types[t as usize])).max_by_key(|&(_, n)| n)?;
    (n > 0 && n >= types[KeyType::Other as usize]).then_some(best)
}

fn type_list(types: &TypeCounts) -> String {
    super::TYPE_NAMES
        .iter()
        .zip(types)
        .filter(|(_, n)| **n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The role the reference catalog gives a store of this sub-prefix, when the store fits
/// that role's constraints; otherwise `other`, with a comment saying why.
fn role_for(sub: &str, ty: &str, tagged: bool) -> (&'static str, String) {
    let role = match sub {
        "pac" => "pac-record",
        "regions" => "region-registry",
        "version" => "version-records",
        "pct" => "pct",
        "fct" => "fct",
        "ppt" => "ppt",
        "dct" => "dct",
        "tst" => "tst",
        "enqmodel" => "enqmodel",
        _ => return ("other", "   # no reference store has this name: name its role".into()),
    };
    let metadata = matches!(role, "pac-record" | "region-registry" | "version-records");
    if metadata && !tagged {
        return (
            "other",
            format!("   # named like the reference's {role} store, but its keys are not all hash-tagged"),
        );
    }
    if role == "pac-record" && ty != "hash" {
        return ("other", format!("   # named like the reference's pac-record store, but its keys are {ty}s"));
    }
    (role, "   # guess from the reference catalog's store name".into())
}
