//! The layout catalog: product versions → layouts → compatibility epochs → stores.
//!
//! Which keys a PAC version owns, what type they are, and which product versions
//! may share a PAC are not published by the vendor, so psor reads them from TOML:
//! a built-in *reference* catalog (`reference.toml`, embedded) that follows the
//! documented shape, and a site's own file (`--layouts FILE` / `PSOR_LAYOUTS`) that
//! extends or replaces it. Because a wrong catalog leads to wrong deletions, a file
//! with a mistake is refused whole, and every refusal names the file, line, column
//! and field. The format is described in `docs/layouts.md`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::naming::{KeyTemplate, ParsedKey, ProductVersion, SubPrefix};
use super::resource::ResourceTable;

/// The built-in reference catalog's TOML text.
pub const BUILTIN_TOML: &str = include_str!("reference.toml");

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

/// What kind of mistake a catalog has; see [`CatalogError::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatalogErrorKind {
    /// TOML syntax, a missing field, an unknown field, or a value of the wrong type.
    Syntax,
    /// The `[catalog]` header is wrong (e.g. `extends` is neither `builtin` nor `none`).
    Header,
    /// A layout or store name outside its grammar.
    BadName,
    /// An epoch that is empty or not a string or integer.
    BadEpoch,
    /// A key-prefix template that would not give prefix-free keys.
    BadTemplate,
    /// Layouts of one catalog with different key-prefix templates.
    TemplateMismatch,
    /// Two layouts with one name in one file.
    DuplicateLayout,
    /// Two `[[version]]` entries with one `match` in one file.
    DuplicateVersion,
    /// A `[[version]]` naming a layout that does not exist.
    UnknownLayout,
    /// A `match` that is neither a version nor `<version>.*`.
    BadVersionPattern,
    /// Two stores with one name in one layout.
    DuplicateStore,
    /// Two stores with one sub-prefix in one layout.
    DuplicateSubPrefix,
    /// A sub-prefix that is a prefix of another store's in the same layout.
    OverlappingSubPrefix,
    /// A sub-prefix outside its grammar.
    BadSubPrefix,
    /// A `type`, `placement`, `upgrade` or `role` value that is not one of the known words.
    BadValue,
    /// Two stores with one role (other than `other`) in one layout.
    DuplicateRole,
    /// A role whose constraints are broken (e.g. an untagged PAC record).
    RoleConstraint,
    /// A `transform` that is not in [`TRANSFORMS`].
    UnknownTransform,
    /// A transform or `from_store` used where it does not belong.
    BadTransformUse,
    /// The catalog file could not be read.
    Read,
    /// A product version the catalog does not map.
    UnknownVersion,
}

/// A catalog that was refused, or a lookup that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A mistake in a catalog file, located by file, line, column and field.
    #[error("{file}:{line}:{column}: {field}: {message}")]
    Invalid {
        /// What kind of mistake.
        kind: CatalogErrorKind,
        /// The file (or source name) it is in.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// The field, as a path such as `layout[ref-9].store[PCT].sub_prefix`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The catalog file could not be read.
    #[error("cannot read layout catalog {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No `[[version]]` entry matches a product version.
    #[error(
        "product version {version} is not in the layout catalog (known: {known}); \
             add a [[version]] entry for it to your catalog (see `psor survey`)"
    )]
    UnknownVersion {
        /// The version looked up.
        version: String,
        /// The catalog's `match` entries, comma-separated.
        known: String,
    },
}

impl CatalogError {
    /// The kind of mistake, for callers and tests that branch on it.
    pub fn kind(&self) -> CatalogErrorKind {
        match self {
            CatalogError::Invalid { kind, .. } => *kind,
            CatalogError::Read { .. } => CatalogErrorKind::Read,
            CatalogError::UnknownVersion { .. } => CatalogErrorKind::UnknownVersion,
        }
    }
}

/// Where something was written: file, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The file or source name.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

impl Location {
    fn error(&self, kind: CatalogErrorKind, field: impl Into<String>, message: impl Into<String>) -> CatalogError {
        CatalogError::Invalid {
            kind,
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Turns byte offsets of one source text into locations.
struct Src<'a> {
    name: &'a str,
    text: &'a str,
}

impl Src<'_> {
    fn loc(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let before = &self.text.as_bytes()[..offset];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        Location { file: self.name.to_owned(), line, column }
    }
    fn at<T>(&self, s: &Spanned<T>) -> Location {
        self.loc(s.span().start)
    }
}

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
        let (store, rest) = match super::keys::match_store(self, &prefix, rest) {
            Some((s, r)) => (Some(s.name.clone()), r.to_vec()),
            None => (None, rest.to_vec()),
        };
        Some(ParsedKey { pac, version, store, rest })
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

// ---- raw TOML shape -------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    catalog: Option<RawHeader>,
    #[serde(default)]
    layout: Vec<Spanned<RawLayout>>,
    #[serde(default)]
    version: Vec<Spanned<RawVersion>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: Option<String>,
    extends: Option<Spanned<String>>,
    #[serde(default)]
    reference: bool,
    #[allow(dead_code)] // documentation for people; accepted and ignored
    description: Option<String>,
    /// Sub-prefixes (one segment each) that hold TS/TD queues; see `docs/layouts.md`.
    queue_prefixes: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    name: Spanned<String>,
    /// Any TOML value, so that a wrong one (`9.5`, `true`) is refused naming the field
    /// rather than by serde's "did not match any variant".
    epoch: Spanned<toml::Value>,
    key_prefix: Option<Spanned<String>>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    store: Vec<Spanned<RawStore>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    name: Spanned<String>,
    sub_prefix: Spanned<String>,
    #[serde(rename = "type")]
    redis_type: Spanned<String>,
    #[serde(default)]
    holds: String,
    role: Option<Spanned<String>>,
    placement: Spanned<String>,
    upgrade: Spanned<String>,
    transform: Option<Spanned<String>>,
    from_store: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVersion {
    #[serde(rename = "match")]
    matches: Spanned<String>,
    layout: Spanned<String>,
    #[serde(default)]
    note: String,
}

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

    // ---- parsing and validation -------------------------------------------

    fn parse_one(text: &str, source: &str) -> Result<(Catalog, Extends), CatalogError> {
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
    fn check_whole(&self) -> Result<(), CatalogError> {
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
