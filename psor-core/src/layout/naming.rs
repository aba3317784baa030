//! Key naming: the grammar of PAC names, product versions and key prefixes.
//!
//! Every command that touches a PSOR must agree on which keys belong to which
//! (PAC, version), because `rem-old`-style deletions are decided by prefix. This
//! module is the one place where names are validated and prefixes are built and
//! parsed back, so that the encoding stays *injective* (one prefix per pair) and
//! *prefix-free* (no pair's prefix is a prefix of another pair's keys). The
//! argument is written out in `docs/layouts.md` and checked by property tests in
//! `psor-core/tests/layout_naming.rs`.
//!
//! Grammar (ASCII, case-sensitive, like Redis keys):
//!
//! ```text
//! pac-name    = ALPHA *63( ALPHA / DIGIT / "_" / "-" )        ; 1..=64 chars
//! version     = component *3( "." component )                  ; 1..=4 components
//! component   = "0" / ( %x31-39 *8DIGIT )                      ; no leading zeros, < 10^9
//! region-name = 1*64( ALPHA / DIGIT / "_" / "-" / "$" / "#" / "@" )
//! sub-prefix  = segment *( ":" segment )                       ; at most 64 chars
//! segment     = ( ALPHA / DIGIT ) *( ALPHA / DIGIT / "_" / "-" / "." )
//! ```
//!
//! The default key-prefix template is `{pac}_{version}:`, e.g. `MyPAC_9.0:`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// The default key-prefix template: `<PAC>_<version>:`.
pub const DEFAULT_KEY_PREFIX_TEMPLATE: &str = "{pac}_{version}:";

/// The longest PAC name accepted.
pub const PAC_NAME_MAX_LEN: usize = 64;

/// The most components a product version may have (`10.0.1.7`).
pub const VERSION_MAX_COMPONENTS: usize = 4;

/// The separator between a store's sub-prefix and what follows it in a key.
pub const STORE_SEPARATOR: u8 = b':';

/// Grammar of a PAC name, quoted in error messages.
pub const PAC_NAME_GRAMMAR: &str =
    "a letter followed by at most 63 letters, digits, '_' or '-' ([A-Za-z][A-Za-z0-9_-]{0,63})";
/// Grammar of a product version, quoted in error messages.
pub const VERSION_GRAMMAR: &str = "1 to 4 dot-separated decimal components without leading zeros, \
     each below 10^9 (e.g. 9.0, 9.0.2, 10.0.1.7; not 9.01, 9., .9)";
/// Grammar of a region name, quoted in error messages.
pub const REGION_NAME_GRAMMAR: &str = "1 to 64 letters, digits, '_', '-', '$', '#' or '@' ([A-Za-z0-9_$#@-]{1,64})";
/// Grammar of a store sub-prefix, quoted in error messages.
pub const SUB_PREFIX_GRAMMAR: &str = "':'-separated segments, each a letter or digit followed by \
     letters, digits, '_', '-' or '.', at most 64 chars in all (e.g. pct, res:pct)";

/// A name or template that does not follow the grammar; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// A PAC name outside the grammar.
    #[error("invalid PAC name {input:?}: {problem}; a PAC name is {}", PAC_NAME_GRAMMAR)]
    PacName {
        /// The refused text.
        input: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A product version outside the grammar.
    #[error("invalid product version {input:?}: {problem}; a version is {}", VERSION_GRAMMAR)]
    Version {
        /// The refused text.
        input: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A region name outside the grammar.
    #[error("invalid region name {input:?}: {problem}; a region name is {}", REGION_NAME_GRAMMAR)]
    RegionName {
        /// The refused text.
        input: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A store sub-prefix outside the grammar.
    #[error("invalid store sub-prefix {input:?}: {problem}; a sub-prefix is {}", SUB_PREFIX_GRAMMAR)]
    SubPrefix {
        /// The refused text.
        input: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A key-prefix template that would not give injective, prefix-free prefixes.
    #[error("invalid key-prefix template {input:?}: {problem}")]
    Template {
        /// The refused text.
        input: String,
        /// What is wrong with it.
        problem: String,
    },
}

fn is_pac_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_version_char(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.'
}

macro_rules! string_newtype_common {
    ($t:ty) => {
        impl $t {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl FromStr for $t {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                <$t>::new(s)
            }
        }
        impl TryFrom<&str> for $t {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                <$t>::new(s)
            }
        }
    };
}

/// A validated PAC name (the `ES_PAC` of its regions), e.g. `MyPAC`.
///
/// Case-sensitive: `MyPAC` and `mypac` are different PACs, as they are different
/// Redis keys. `_` is allowed, `.` and `:` are not; that asymmetry with
/// [`ProductVersion`] is what makes `<PAC>_<version>:` decodable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacName(String);

impl PacName {
    /// Validate `s` against the PAC-name grammar.
    pub fn new(s: &str) -> Result<Self, NameError> {
        let err = |problem: &str| NameError::PacName { input: s.to_owned(), problem: problem.to_owned() };
        let b = s.as_bytes();
        if b.is_empty() {
            return Err(err("it is empty"));
        }
        if b.len() > PAC_NAME_MAX_LEN {
            return Err(err("it is longer than 64 characters"));
        }
        if !b[0].is_ascii_alphabetic() {
            return Err(err("it does not start with a letter"));
        }
        if let Some(c) = s.chars().find(|c| !c.is_ascii() || !is_pac_char(*c as u8)) {
            return Err(err(&format!("it contains {c:?}")));
        }
        Ok(PacName(s.to_owned()))
    }
}
string_newtype_common!(PacName);

/// A validated region name, e.g. `REGION1`; used in per-region version record keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionName(String);

impl RegionName {
    /// Validate `s` against the region-name grammar.
    pub fn new(s: &str) -> Result<Self, NameError> {
        let err = |problem: &str| NameError::RegionName { input: s.to_owned(), problem: problem.to_owned() };
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s.len() > 64 {
            return Err(err("it is longer than 64 characters"));
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$' | '#' | '@'))) {
            return Err(err(&format!("it contains {c:?}")));
        }
        Ok(RegionName(s.to_owned()))
    }
}
string_newtype_common!(RegionName);

/// A validated store sub-prefix, e.g. `pct` (keys `<PAC>_<version>:pct:...`).
///
/// Braces are refused so that a sub-prefix can never open a Redis Cluster hash
/// tag of its own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubPrefix(String);

impl SubPrefix {
    /// Validate `s` against the sub-prefix grammar.
    pub fn new(s: &str) -> Result<Self, NameError> {
        let err = |problem: &str| NameError::SubPrefix { input: s.to_owned(), problem: problem.to_owned() };
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s.len() > 64 {
            return Err(err("it is longer than 64 characters"));
        }
        for seg in s.split(':') {
            let b = seg.as_bytes();
            if b.is_empty() {
                return Err(err("it has an empty ':'-separated segment"));
            }
            if !b[0].is_ascii_alphanumeric() {
                return Err(err(&format!("segment {seg:?} does not start with a letter or digit")));
            }
            if let Some(c) = seg.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
                return Err(err(&format!("it contains {c:?}")));
            }
        }
        Ok(SubPrefix(s.to_owned()))
    }
}
string_newtype_common!(SubPrefix);

/// A validated product version such as `9.0` or `9.0.2`.
///
/// Components compare numerically (`9.0 < 9.0.2 < 10.0`); a version that is a
/// component-prefix of another sorts first (`9 < 9.0`). The string is canonical:
/// leading zeros are refused (`9.01` is not a version), so equality of versions
/// is equality of their text, and `9` and `9.0` are *different* versions (they
/// give different key prefixes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProductVersion {
    text: String,
    parts: Vec<u32>,
}

impl ProductVersion {
    /// Validate `s` against the version grammar.
    pub fn new(s: &str) -> Result<Self, NameError> {
        let err = |problem: &str| NameError::Version { input: s.to_owned(), problem: problem.to_owned() };
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        let mut parts = Vec::new();
        for comp in s.split('.') {
            if comp.is_empty() {
                return Err(err("it has an empty component"));
            }
            if let Some(c) = comp.chars().find(|c| !c.is_ascii_digit()) {
                return Err(err(&format!("it contains {c:?}")));
            }
            if comp.len() > 1 && comp.starts_with('0') {
                return Err(err(&format!("component {comp:?} has a leading zero")));
            }
            if comp.len() > 9 {
                return Err(err(&format!("component {comp:?} is too large")));
            }
            let n: u32 = comp.parse().map_err(|_| err(&format!("component {comp:?} is not a number")))?;
            parts.push(n);
        }
        if parts.len() > VERSION_MAX_COMPONENTS {
            return Err(err("it has more than 4 components"));
        }
        Ok(ProductVersion { text: s.to_owned(), parts })
    }

    /// The canonical text, e.g. `9.0.2`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The numeric components, e.g. `[9, 0, 2]`.
    pub fn components(&self) -> &[u32] {
        &self.parts
    }

    /// Whether `prefix`'s components are the first components of `self`
    /// (`9.0.2` starts with `9.0` and with `9.0.2`, not with `9.1`).
    pub fn starts_with(&self, prefix: &ProductVersion) -> bool {
        self.parts.starts_with(&prefix.parts)
    }
}

impl Ord for ProductVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts.cmp(&other.parts)
    }
}
impl PartialOrd for ProductVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl fmt::Display for ProductVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
impl Serialize for ProductVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}
impl FromStr for ProductVersion {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        ProductVersion::new(s)
    }
}

/// Which placeholder comes first in a [`KeyTemplate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    PacFirst,
    VersionFirst,
}

/// A validated key-prefix template such as `{pac}_{version}:`.
///
/// A template is `head {A} sep {B} tail` where `{A}`/`{B}` are `{pac}` and
/// `{version}` in either order, each exactly once. It is accepted only if:
///
/// * it is printable ASCII without spaces, and contains no `{` or `}` other than
///   the two placeholders (so it cannot open a Redis Cluster hash tag);
/// * `sep` is non-empty and has no character a version may contain (`0-9`, `.`),
///   so the version's end (or start) is found by scanning;
/// * its last character, the *terminator*, is a literal that neither a PAC name
///   nor a version may contain (not `A-Za-z0-9_-.`) and that occurs nowhere else
///   in the template.
///
/// Then a prefix contains the terminator exactly once, at its end, so no prefix
/// is a proper prefix of another's keys; and the split between PAC and version
/// is unique, so the encoding is injective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    text: String,
    order: Order,
    head: String,
    sep: String,
    tail: String,
}

impl Default for KeyTemplate {
    fn default() -> Self {
        KeyTemplate::new(DEFAULT_KEY_PREFIX_TEMPLATE).expect("the default template is valid")
    }
}

impl Serialize for KeyTemplate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl fmt::Display for KeyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl KeyTemplate {
    /// Validate a template (see the type's documentation for the rules).
    pub fn new(s: &str) -> Result<Self, NameError> {
        let err = |problem: &str| NameError::Template { input: s.to_owned(), problem: problem.to_owned() };
        if let Some(c) = s.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(err(&format!("it contains {c:?}; only printable ASCII without spaces is allowed")));
        }
        let (p, v) = (s.find("{pac}"), s.find("{version}"));
        let (Some(p), Some(v)) = (p, v) else {
            return Err(err("it must contain both {pac} and {version}"));
        };
        if s.matches("{pac}").count() != 1 || s.matches("{version}").count() != 1 {
            return Err(err("{pac} and {version} must each appear exactly once"));
        }
        let (order, first, first_len, second, second_len) =
            if p < v { (Order::PacFirst, p, 5, v, 9) } else { (Order::VersionFirst, v, 9, p, 5) };
        let head = &s[..first];
        let sep = &s[first + first_len..second];
        let tail = &s[second + second_len..];
        for lit in [head, sep, tail] {
            if lit.contains(['{', '}']) {
                return Err(err("it contains '{' or '}' outside the placeholders"));
            }
        }
        if sep.is_empty() {
            return Err(err("{pac} and {version} must be separated by a literal such as '_'"));
        }
        if let Some(c) = sep.bytes().find(|b| is_version_char(*b)) {
            return Err(err(&format!("the separator {sep:?} contains {:?}, which a version may contain", c as char)));
        }
        let Some(&term) = tail.as_bytes().last() else {
            return Err(err("it must end with a terminator such as ':' after the last placeholder"));
        };
        if is_pac_char(term) || is_version_char(term) {
            return Err(err(&format!(
                "its terminator {:?} may occur in a PAC name or version; use e.g. ':'",
                term as char
            )));
        }
        if s.as_bytes()[..s.len() - 1].contains(&term) {
            return Err(err(&format!("its terminator {:?} occurs before the end", term as char)));
        }
        Ok(KeyTemplate { text: s.to_owned(), order, head: head.to_owned(), sep: sep.to_owned(), tail: tail.to_owned() })
    }

    /// The template text, e.g. `{pac}_{version}:`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The terminator byte (the template's last character), e.g. `:`.
    pub fn terminator(&self) -> u8 {
        *self.tail.as_bytes().last().expect("validated: tail ends with the terminator")
    }

    /// The prefix of one (PAC, version), e.g. `MyPAC_9.0:`.
    pub fn prefix(&self, pac: &PacName, version: &ProductVersion) -> PacVersionPrefix {
        let (a, b) = match self.order {
            Order::PacFirst => (pac.as_str(), version.as_str()),
            Order::VersionFirst => (version.as_str(), pac.as_str()),
        };
        let text = format!("{}{}{}{}{}", self.head, a, self.sep, b, self.tail);
        PacVersionPrefix { pac: pac.clone(), version: version.clone(), text }
    }

    /// Split `key` into (PAC, version, rest) if it starts with a prefix of this
    /// template whose PAC name and version are valid. Binary-safe: `rest` is
    /// whatever bytes follow; a prefix that is not UTF-8 simply does not parse.
    pub fn parse_prefix<'k>(&self, key: &'k [u8]) -> Option<(PacName, ProductVersion, &'k [u8])> {
        let term = self.terminator();
        let end = key.iter().position(|b| *b == term)? + 1;
        let prefix = std::str::from_utf8(&key[..end]).ok()?;
        let middle = prefix.strip_prefix(self.head.as_str())?.strip_suffix(self.tail.as_str())?;
        let (pac, version) = match self.order {
            Order::PacFirst => {
                let vstart = middle.len() - middle.bytes().rev().take_while(|b| is_version_char(*b)).count();
                let (left, v) = middle.split_at(vstart);
                (left.strip_suffix(self.sep.as_str())?, v)
            }
            Order::VersionFirst => {
                let vend = middle.bytes().take_while(|b| is_version_char(*b)).count();
                let (v, right) = middle.split_at(vend);
                (right.strip_prefix(self.sep.as_str())?, v)
            }
        };
        let pac = PacName::new(pac).ok()?;
        let version = ProductVersion::new(version).ok()?;
        Some((pac, version, &key[end..]))
    }
}

/// The key prefix shared by every key of one (PAC, version), e.g. `MyPAC_9.0:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PacVersionPrefix {
    pac: PacName,
    version: ProductVersion,
    text: String,
}

impl PacVersionPrefix {
    /// The prefix under the default template `{pac}_{version}:`.
    pub fn new(pac: &PacName, version: &ProductVersion) -> Self {
        KeyTemplate::default().prefix(pac, version)
    }

    /// The PAC name.
    pub fn pac(&self) -> &PacName {
        &self.pac
    }

    /// The version.
    pub fn version(&self) -> &ProductVersion {
        &self.version
    }

    /// The prefix text, e.g. `MyPAC_9.0:`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The prefix bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// The Redis Cluster hash tag of this (PAC, version): the prefix without its
    /// terminator, in braces, e.g. `{MyPAC_9.0}`. Every key carrying it hashes to
    /// one slot, so WATCH/MULTI and scripts over the metadata work in a cluster.
    pub fn hash_tag(&self) -> String {
        format!("{{{}}}", &self.text[..self.text.len() - 1])
    }

    /// Whether `key` belongs to this (PAC, version).
    pub fn matches(&self, key: &[u8]) -> bool {
        key.starts_with(self.text.as_bytes())
    }

    /// The prefix of one store, e.g. `MyPAC_9.0:pct:`.
    pub fn store_prefix(&self, sub: &SubPrefix) -> Vec<u8> {
        let mut k = self.text.as_bytes().to_vec();
        k.extend_from_slice(sub.as_str().as_bytes());
        k.push(STORE_SEPARATOR);
        k
    }
}

impl fmt::Display for PacVersionPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A key split back into its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedKey {
    /// The PAC the key belongs to.
    pub pac: PacName,
    /// The version in the key's prefix (the version that created those stores).
    pub version: ProductVersion,
    /// The store the key belongs to, when it was matched against a layout and
    /// one of its stores claims it.
    pub store: Option<String>,
    /// The bytes after the store part (the entry name) when `store` is set, else
    /// everything after the (PAC, version) prefix.
    pub rest: Vec<u8>,
}

/// Parse `key` under the default template `{pac}_{version}:`, without a layout
/// (so `store` is `None`). Returns `None` for keys that are not PAC keys,
/// including non-UTF-8 prefixes and prefixes with invalid names or versions.
pub fn parse_key(key: &[u8]) -> Option<ParsedKey> {
    let (pac, version, rest) = KeyTemplate::default().parse_prefix(key)?;
    Some(ParsedKey { pac, version, store: None, rest: rest.to_vec() })
}
