//! What a refused catalog says: the error, its kind, and the file, line and column it
//! names (byte offsets of the TOML text turned into locations).

#[allow(clippy::wildcard_imports)]
use super::*;

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
    pub(super) fn error(
        &self,
        kind: CatalogErrorKind,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> CatalogError {
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
pub(super) struct Src<'a> {
    pub(super) name: &'a str,
    pub(super) text: &'a str,
}

impl Src<'_> {
    pub(super) fn loc(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let before = &self.text.as_bytes()[..offset];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        Location { file: self.name.to_owned(), line, column }
    }
    pub(super) fn at<T>(&self, s: &Spanned<T>) -> Location {
        self.loc(s.span().start)
    }
}
