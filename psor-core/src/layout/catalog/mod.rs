//! The layout catalog: product versions → layouts → compatibility epochs → stores.
//!
//! Which keys a PAC version owns, what type they are, and which product versions
//! may share a PAC are not published by the vendor, so psor reads them from TOML:
//! a built-in *reference* catalog (`reference.toml`, embedded) that follows the
//! documented shape, and a site's own file (`--layouts FILE` / `PSOR_LAYOUTS`) that
//! extends or replaces it. Because a wrong catalog leads to wrong deletions, a file
//! with a mistake is refused whole, and every refusal names the file, line, column
//! and field. The format is described in `docs/layouts.md`.
//!
//! This file is the model and its queries; `raw.rs` the TOML shape serde reads,
//! `validate.rs` the parsing and checks, `error.rs` the errors and their locations.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::naming::{KeyTemplate, PacVersionPrefix, ParsedKey, ProductVersion, SubPrefix, STORE_SEPARATOR};
use super::resource::ResourceTable;

/// The built-in reference catalog's TOML text.
pub const BUILTIN_TOML: &str = include_str!("../reference.toml");

/// The source name the built-in catalog reports in errors.
pub const BUILTIN_SOURCE: &str = "<builtin reference.toml>";

/// A named transform applied when a store is carried across an incompatible
/// upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TransformInfo {
    /// The name used in `transform = "..."`.
    pub name: &'static str,
    /// Whether the store must name `from_store` (the old layout's store to read).
    pub needs_from_store: bool,
    /// What it does.
    pub description: &'static str,
}

/// The registry of transforms a catalog may name. The copying itself lives in the
/// upgrade engine; the catalog only refers to these by name.
pub const TRANSFORMS: &[TransformInfo] = &[
    TransformInfo {
        name: "identity",
        needs_from_store: false,
        description: "copy each key of the old version's store of the same name, \
                      re-prefixed, value unchanged",
    },
    TransformInfo {
        name: "rename-store",
        needs_from_store: true,
        description: "copy each key of the old version's store named by `from_store` \
                      (whose sub-prefix may differ), re-prefixed, value unchanged",
    },
];

/// Look a transform up by name.
pub fn transform(name: &str) -> Option<&'static TransformInfo> {
    TRANSFORMS.iter().find(|t| t.name == name)
}

mod error;
mod raw;
mod validate;

use error::Src;
pub use error::{CatalogError, CatalogErrorKind, Location};
use raw::*;

/// A compatibility epoch: product versions whose layouts share one are compatible.
/// Written as a string or an integer; `9` and `"9"` are the same epoch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Epoch(String);

impl Epoch {
    /// An epoch from its text (`9` and `"9"` in a catalog both give `Epoch::new("9")`).
    pub fn new(s: impl Into<String>) -> Epoch {
        Epoch(s.into())
    }

    /// The epoch's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Redis type a store's keys are expected to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisType {
    /// `string`
    String,
    /// `hash`
    Hash,
    /// `list`
    List,
    /// `set`
    Set,
    /// `zset`
    Zset,
    /// `stream`
    Stream,
}

impl RedisType {
    const ALL: &'static [(&'static str, RedisType)] = &[
        ("string", RedisType::String),
        ("hash", RedisType::Hash),
        ("list", RedisType::List),
        ("set", RedisType::Set),
        ("zset", RedisType::Zset),
        ("stream", RedisType::Stream),
    ];
    /// The name Redis' `TYPE` command answers.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, t)| *t == self).map(|(n, _)| *n).unwrap_or("?")
    }
}

/// Whether a store's keys share the (PAC, version) hash tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Keys carry `{<PAC>_<version>}` and live in one cluster slot: small metadata
    /// that must change atomically together.
    Tagged,
    /// Keys carry no hash tag and spread across slots: large resource tables.
    Spread,
}

/// What an incompatible upgrade does with a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "action")]
pub enum Upgrade {
    /// The new version's store is created empty.
    Fresh,
    /// The new version's store is copied from the old version's store.
    Carry {
        /// The transform's name (one of [`TRANSFORMS`]); `identity` by default.
        transform: String,
        /// For `rename-store`: the old layout's store to read.
        #[serde(skip_serializing_if = "Option::is_none")]
        from_store: Option<String>,
    },
}

/// What a store is for, so the rest of psor can find e.g. "the PAC record"
/// without knowing its sub-prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreRole {
    /// The PAC record (mode, version, timestamps): a tagged hash.
    PacRecord,
    /// The registry of member regions: tagged.
    RegionRegistry,
    /// Per-region version records (product version, OS, bitness): tagged.
    VersionRecords,
    /// One of the CICS resource tables.
    Resource(ResourceTable),
    /// Anything else.
    Other,
}

impl StoreRole {
    fn parse(s: &str) -> Option<StoreRole> {
        Some(match s {
            "pac-record" => StoreRole::PacRecord,
            "region-registry" => StoreRole::RegionRegistry,
            "version-records" => StoreRole::VersionRecords,
            "other" => StoreRole::Other,
            other => StoreRole::Resource(ResourceTable::from_role_name(other)?),
        })
    }
    /// The word used in the catalog's `role = "..."`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreRole::PacRecord => "pac-record",
            StoreRole::RegionRegistry => "region-registry",
            StoreRole::VersionRecords => "version-records",
            StoreRole::Resource(t) => t.role_name(),
            StoreRole::Other => "other",
        }
    }
    /// Whether this role is PAC metadata, which must be tagged.
    pub fn is_metadata(self) -> bool {
        matches!(self, StoreRole::PacRecord | StoreRole::RegionRegistry | StoreRole::VersionRecords)
    }
}

/// One store of a layout: a family of keys under `<prefix><sub_prefix>:`.
#[derive(Debug, Clone, Serialize)]
pub struct Store {
    /// The store's name, e.g. `PCT`.
    pub name: String,
    /// Its sub-prefix, e.g. `pct`.
    pub sub_prefix: SubPrefix,
    /// The Redis type of its keys.
    #[serde(rename = "type")]
    pub redis_type: RedisType,
    /// What it holds, for people.
    pub holds: String,
    /// What it is for.
    pub role: StoreRole,
    /// Tagged or spread.
    pub placement: Placement,
    /// What an incompatible upgrade does with it.
    pub upgrade: Upgrade,
    /// Where it was defined.
    pub defined_at: Location,
}

/// A store layout: the stores of one family of compatible product versions.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    /// The layout's name, e.g. `ref-9`.
    pub name: String,
    /// Its compatibility epoch.
    pub epoch: Epoch,
    /// Its key-prefix template.
    pub key_prefix: KeyTemplate,
    /// For people.
    pub description: String,
    /// Its stores, in file order.
    pub stores: Vec<Store>,
    /// Where it was defined.
    pub defined_at: Location,
    #[serde(skip)]
    key_prefix_at: Location,
}

impl Layout {
    /// The store with this name.
    pub fn store(&self, name: &str) -> Option<&Store> {
        self.stores.iter().find(|s| s.name == name)
    }

    /// The store with this role (roles other than `other` are unique per layout).
    pub fn store_with_role(&self, role: StoreRole) -> Option<&Store> {
        self.stores.iter().find(|s| s.role == role)
    }

    /// Parse `key` under this layout's template and match it to one of its stores.
    /// See [`super::keys`] for the key shapes.
    pub fn parse_key(&self, key: &[u8]) -> Option<ParsedKey> {
        let (pac, version, rest) = self.key_prefix.parse_prefix(key)?;
        let prefix = self.key_prefix.prefix(&pac, &version);
        let (store, rest) = match self.match_store(&prefix, rest) {
            Some((s, r)) => (Some(s.name.clone()), r.to_vec()),
            None => (None, rest.to_vec()),
        };
        Some(ParsedKey { pac, version, store, rest })
    }

    /// Match the part of a key after its (PAC, version) prefix to one of this layout's
    /// stores; returns the store and the entry bytes (empty for a tagged store's single key).
    /// The inverse of the key builders of [`super::keys`] (it lives here, beside the model it
    /// reads, so the catalog does not import the module built on it).
    pub(crate) fn match_store<'l, 'k>(
        &'l self,
        prefix: &PacVersionPrefix,
        rest: &'k [u8],
    ) -> Option<(&'l Store, &'k [u8])> {
        let tag = prefix.hash_tag();
        for s in &self.stores {
            let Some(after) =
                rest.strip_prefix(s.sub_prefix.as_str().as_bytes()).and_then(|r| r.strip_prefix(&[STORE_SEPARATOR]))
            else {
                continue;
            };
            return match s.placement {
                Placement::Spread => Some((s, after)),
                Placement::Tagged => {
                    let after_tag = after.strip_prefix(tag.as_bytes())?;
                    if after_tag.is_empty() {
                        Some((s, after_tag))
                    } else {
                        let entry = after_tag.strip_prefix(&[STORE_SEPARATOR])?;
                        (!entry.is_empty()).then_some((s, entry))
                    }
                }
            };
        }
        None
    }
}

/// The `match` of a `[[version]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "version")]
pub enum VersionMatch {
    /// Exactly this version (`9.0`).
    Exact(ProductVersion),
    /// This version and every version it is a component-prefix of (`9.0.*`:
    /// 9.0, 9.0.2, 9.0.2.1; not 9.1 or 9.00).
    Series(ProductVersion),
}

impl VersionMatch {
    /// Parse `9.0` or `9.0.*`.
    pub fn parse(s: &str) -> Result<VersionMatch, super::naming::NameError> {
        match s.strip_suffix(".*") {
            Some(base) => ProductVersion::new(base).map(VersionMatch::Series),
            None => ProductVersion::new(s).map(VersionMatch::Exact),
        }
    }

    /// Whether `v` is matched.
    pub fn matches(&self, v: &ProductVersion) -> bool {
        match self {
            VersionMatch::Exact(e) => e == v,
            VersionMatch::Series(base) => v.starts_with(base),
        }
    }

    /// Precedence when several entries match: exact beats every pattern, and a
    /// longer pattern (more components) beats a shorter one.
    pub fn precedence(&self) -> usize {
        match self {
            VersionMatch::Exact(_) => usize::MAX,
            VersionMatch::Series(base) => base.components().len(),
        }
    }
}

impl fmt::Display for VersionMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionMatch::Exact(v) => write!(f, "{v}"),
            VersionMatch::Series(v) => write!(f, "{v}.*"),
        }
    }
}

/// One `[[version]]` entry: which layout some product versions use.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRule {
    /// Which versions.
    #[serde(rename = "match")]
    pub matches: VersionMatch,
    /// The layout's name.
    pub layout: String,
    /// For people.
    pub note: String,
    /// Where it was defined.
    pub defined_at: Location,
}

/// How a catalog file relates to the built-in one (`[catalog] extends = ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Extends {
    /// `extends = "builtin"` (the default): the file's layouts and versions are laid
    /// over the built-in catalog, replacing entries with the same layout name or
    /// the same `match` text.
    Builtin,
    /// `extends = "none"`: the file stands alone.
    None,
}

/// The answer of [`Catalog::compatibility`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "verdict")]
pub enum Compat {
    /// Both layouts share an epoch: regions of both versions may share one PAC.
    Compatible {
        /// The shared epoch.
        epoch: Epoch,
        /// The first version's layout.
        layout_a: String,
        /// The second version's layout.
        layout_b: String,
    },
    /// Different epochs: the incompatible upgrade procedure applies.
    Incompatible {
        /// The first version's epoch.
        epoch_a: Epoch,
        /// The second version's epoch.
        epoch_b: Epoch,
        /// The first version's layout.
        layout_a: String,
        /// The second version's layout.
        layout_b: String,
    },
}

impl Compat {
    /// Whether this is [`Compat::Compatible`].
    pub fn is_compatible(&self) -> bool {
        matches!(self, Compat::Compatible { .. })
    }
}

/// One row of [`Catalog::entries`]: a version entry with its layout resolved.
#[derive(Debug, Clone, Serialize)]
pub struct CatalogEntry<'a> {
    /// The `match` of the entry.
    #[serde(rename = "match")]
    pub matches: &'a VersionMatch,
    /// The layout it maps to (with its epoch and stores).
    pub layout: &'a Layout,
}

/// A validated layout catalog. See the module documentation.
#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    name: String,
    reference: bool,
    sources: Vec<String>,
    layouts: Vec<Layout>,
    versions: Vec<VersionRule>,
    /// `[catalog] queue_prefixes`, when the file says; `None`: [`DEFAULT_QUEUE_PREFIXES`].
    queue_prefixes: Option<Vec<String>>,
}

/// The store names `psor status` takes for TS/TD queues when a catalog does not say
/// (`[catalog] queue_prefixes`): compared, ignoring case, with the sub-prefix of a store
/// and with the first segment of keys no store claims.
pub const DEFAULT_QUEUE_PREFIXES: &[&str] =
    &["ts", "td", "tsq", "tdq", "tsqs", "tdqs", "tsqueue", "tdqueue", "tsqueues", "tdqueues"];

impl Catalog {
    /// The built-in reference catalog. It follows the documented shape of a PSOR;
    /// the vendor's real layout is not public, so sites should run `psor survey`
    /// and supply their own.
    pub fn builtin() -> Catalog {
        Self::parse_one(BUILTIN_TOML, BUILTIN_SOURCE)
            .and_then(|(c, _)| {
                c.check_whole()?;
                Ok(c)
            })
            .expect("the built-in reference catalog is valid (tested)")
    }

    /// Parse and validate a catalog file's text. `source` names it in errors. If
    /// the file says `extends = "builtin"` (the default) the result is the
    /// built-in catalog with the file laid over it (see [`Catalog::extend`]).
    pub fn from_toml_str(text: &str, source: &str) -> Result<Catalog, CatalogError> {
        let (file, extends) = Self::parse_one(text, source)?;
        let mut cat = match extends {
            Extends::Builtin => {
                let mut base = Catalog::builtin();
                base.extend(file)?;
                base
            }
            Extends::None => file,
        };
        cat.check_whole()?;
        cat.sources.dedup();
        Ok(cat)
    }

    /// Read, parse and validate a catalog file (see [`Catalog::from_toml_str`]).
    pub fn load_file(path: &Path) -> Result<Catalog, CatalogError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| CatalogError::Read { path: path.to_owned(), source })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Lay `over` on top of `self`: a layout of `over` replaces the one of `self`
    /// with the same name, a version entry replaces the one with the same `match`
    /// text, and everything else is added. The result is validated as a whole
    /// (every version names a layout; all layouts share one key-prefix template).
    pub fn extend(&mut self, over: Catalog) -> Result<(), CatalogError> {
        for l in over.layouts {
            match self.layouts.iter_mut().find(|x| x.name == l.name) {
                Some(x) => *x = l,
                None => self.layouts.push(l),
            }
        }
        for v in over.versions {
            match self.versions.iter_mut().find(|x| x.matches == v.matches) {
                Some(x) => *x = v,
                None => self.versions.push(v),
            }
        }
        self.sources.extend(over.sources);
        if over.queue_prefixes.is_some() {
            self.queue_prefixes = over.queue_prefixes;
        }
        if !over.reference {
            self.reference = false;
        }
        self.name = over.name;
        self.check_whole()
    }

    /// The catalog's name (`[catalog] name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is (only) the reference catalog rather than a site's own.
    pub fn is_reference(&self) -> bool {
        self.reference
    }

    /// The sources it was read from, base first.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// The layouts, in definition order.
    pub fn layouts(&self) -> &[Layout] {
        &self.layouts
    }

    /// The version entries, in definition order.
    pub fn versions(&self) -> &[VersionRule] {
        &self.versions
    }

    /// The sub-prefixes that mark a TS/TD queue store (`[catalog] queue_prefixes`, else
    /// [`DEFAULT_QUEUE_PREFIXES`]). `psor status` warns about such stores in the PSOR.
    pub fn queue_prefixes(&self) -> Vec<&str> {
        match &self.queue_prefixes {
            Some(v) => v.iter().map(String::as_str).collect(),
            None => DEFAULT_QUEUE_PREFIXES.to_vec(),
        }
    }

    /// Whether a store with this sub-prefix (or an unclaimed first key segment) is a TS/TD
    /// queue by [`Catalog::queue_prefixes`] (ASCII case ignored).
    pub fn is_queue_prefix(&self, segment: &str) -> bool {
        self.queue_prefixes().iter().any(|q| q.eq_ignore_ascii_case(segment))
    }

    /// The layout with this name.
    pub fn layout(&self, name: &str) -> Option<&Layout> {
        self.layouts.iter().find(|l| l.name == name)
    }

    /// The key-prefix template all layouts share.
    pub fn key_template(&self) -> KeyTemplate {
        self.layouts.first().map(|l| l.key_prefix.clone()).unwrap_or_default()
    }

    /// The version entry that decides `v`: an exact entry if there is one, else the
    /// matching pattern with the most components.
    pub fn rule_for(&self, v: &ProductVersion) -> Result<&VersionRule, CatalogError> {
        self.versions.iter().filter(|r| r.matches.matches(v)).max_by_key(|r| r.matches.precedence()).ok_or_else(|| {
            CatalogError::UnknownVersion {
                version: v.to_string(),
                known: self.versions.iter().map(|r| r.matches.to_string()).collect::<Vec<_>>().join(", "),
            }
        })
    }

    /// The layout of product version `v` (see [`Catalog::rule_for`] for precedence).
    pub fn layout_for(&self, v: &ProductVersion) -> Result<&Layout, CatalogError> {
        let rule = self.rule_for(v)?;
        Ok(self.layout(&rule.layout).expect("validated: every version names a layout"))
    }

    /// Whether product versions `a` and `b` are compatible (their layouts share an
    /// epoch), naming the layouts and epochs either way.
    pub fn compatibility(&self, a: &ProductVersion, b: &ProductVersion) -> Result<Compat, CatalogError> {
        let (la, lb) = (self.layout_for(a)?, self.layout_for(b)?);
        Ok(if la.epoch == lb.epoch {
            Compat::Compatible { epoch: la.epoch.clone(), layout_a: la.name.clone(), layout_b: lb.name.clone() }
        } else {
            Compat::Incompatible {
                epoch_a: la.epoch.clone(),
                epoch_b: lb.epoch.clone(),
                layout_a: la.name.clone(),
                layout_b: lb.name.clone(),
            }
        })
    }

    /// Every version entry with its layout (and through it, epoch and stores), in
    /// version order, for `psor layouts`.
    pub fn entries(&self) -> impl Iterator<Item = CatalogEntry<'_>> + '_ {
        let mut rules: Vec<&VersionRule> = self.versions.iter().collect();
        rules.sort_by(|a, b| {
            let key = |m: &VersionMatch| match m {
                VersionMatch::Exact(v) => (v.clone(), 0),
                VersionMatch::Series(v) => (v.clone(), 1),
            };
            key(&a.matches).cmp(&key(&b.matches))
        });
        rules.into_iter().map(move |r| CatalogEntry {
            matches: &r.matches,
            layout: self.layout(&r.layout).expect("validated: every version names a layout"),
        })
    }

    /// Parse a key under the catalog's template and, if its version is in the
    /// catalog, match it to a store of that version's layout.
    pub fn parse_key(&self, key: &[u8]) -> Option<ParsedKey> {
        let (pac, version, rest) = self.key_template().parse_prefix(key)?;
        if let Ok(layout) = self.layout_for(&version) {
            return layout.parse_key(key);
        }
        Some(ParsedKey { pac, version, store: None, rest: rest.to_vec() })
    }
}
