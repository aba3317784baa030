//! Key prefixes, glob escaping, and printing keys binary-safe.
//!
//! Keys are arbitrary bytes. A prefix goes into `SCAN ... MATCH` only glob-escaped, and every
//! key SCAN returns is checked again with a byte comparison, so a prefix can never match a
//! neighbour's keys (`MyPAC_8.0:` does not match `MyPAC_8.01:` nor `MyPAC_8.0`).

pub use crate::display::display_key;
use crate::error::{Error, Result};

/// A non-empty key prefix (arbitrary bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPrefix(Vec<u8>);

impl KeyPrefix {
    /// A prefix; an empty one is refused, since it would select every key of the database.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Err(Error::Refused(
                "an empty prefix selects every key in the database; give a non-empty --prefix".into(),
            ));
        }
        Ok(KeyPrefix(bytes))
    }

    /// Parses a prefix given on a command line: `\xHH`, `\n`, `\r`, `\t`, `\0` and `\\` escapes
    /// let a user name any byte.
    pub fn parse_escaped(text: &str) -> Result<Self> {
        Self::new(unescape(text)?)
    }

    /// The prefix bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True when `key` starts with this prefix.
    pub fn matches(&self, key: &[u8]) -> bool {
        key.starts_with(&self.0)
    }

    /// The `SCAN ... MATCH` pattern: the escaped prefix followed by `*`.
    pub fn match_pattern(&self) -> Vec<u8> {
        let mut pattern = glob_escape(&self.0);
        pattern.push(b'*');
        pattern
    }

    /// True when one prefix is a prefix of the other (their key sets may overlap).
    pub fn overlaps(&self, other: &KeyPrefix) -> bool {
        self.0.starts_with(&other.0) || other.0.starts_with(&self.0)
    }

    /// `key` with this prefix replaced by `to`. The caller guarantees `self.matches(key)`.
    pub fn rewrite(&self, key: &[u8], to: &KeyPrefix) -> Vec<u8> {
        debug_assert!(self.matches(key));
        let mut out = Vec::with_capacity(key.len() - self.0.len() + to.0.len());
        out.extend_from_slice(&to.0);
        out.extend_from_slice(&key[self.0.len()..]);
        out
    }
}

impl std::fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&display_key(&self.0))
    }
}

/// Escapes the glob metacharacters Redis's `stringmatchlen` knows (`* ? [ ] \`), so the
/// bytes match only themselves.
pub fn glob_escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 4);
    for &b in bytes {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// Undoes the escapes a user may type in a prefix: `\\`, `\n`, `\r`, `\t`, `\0`, `\xHH`.
/// Any other backslash sequence is refused, so a typo never silently selects other keys.
pub fn unescape(text: &str) -> Result<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let bad = || Error::Refused(format!("bad escape in `{text}`: use \\\\, \\n, \\r, \\t, \\0 or \\xHH"));
        match bytes.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'0') => out.push(0),
            Some(b'x') => {
                let hex = bytes.get(i + 2..i + 4).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 2;
            }
            _ => return Err(bad()),
        }
        i += 2;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_glob_metacharacter() {
        assert_eq!(glob_escape(b"a*b?c[d]e\\f"), b"a\\*b\\?c\\[d\\]e\\\\f".to_vec());
    }

    #[test]
    fn empty_prefix_is_refused() {
        assert!(matches!(KeyPrefix::new(Vec::new()), Err(Error::Refused(_))));
    }

    #[test]
    fn display_round_trips_through_unescape_for_plain_escapes() {
        assert_eq!(display_key(b"MyPAC_8.0:pct"), "MyPAC_8.0:pct");
        assert_eq!(display_key(b"a b\n\x00\xff\"\\"), "\"a b\\n\\x00\\xff\\\"\\\\\"");
        assert_eq!(unescape("a\\x00\\n\\\\").unwrap(), b"a\x00\n\\".to_vec());
        assert!(matches!(unescape("a\\q"), Err(Error::Refused(_))));
        assert!(matches!(unescape("a\\x4"), Err(Error::Refused(_))));
    }

    #[test]
    fn overlap_is_symmetric() {
        let a = KeyPrefix::new(&b"MyPAC_8.0:"[..]).unwrap();
        let b = KeyPrefix::new(&b"MyPAC_8.0:x"[..]).unwrap();
        let c = KeyPrefix::new(&b"MyPAC_8.01:"[..]).unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use psor_embedded::glob::matches;

    use super::KeyPrefix;

    proptest! {
        /// The pattern psor sends for a prefix selects exactly the keys that start with it,
        /// whatever metacharacters or bytes either holds (matched as Redis matches, by the
        /// embedded store's copy of `stringmatchlen`).
        #[test]
        fn escaped_prefix_pattern_is_exact(
            prefix in proptest::collection::vec(prop_oneof![Just(b'*'), Just(b'?'), Just(b'['), Just(b']'), Just(b'\\'), Just(b'^'), Just(b'-'), any::<u8>()], 1..8),
            rest in proptest::collection::vec(any::<u8>(), 0..6),
            other in proptest::collection::vec(prop_oneof![Just(b'*'), Just(b'['), Just(b'\\'), any::<u8>()], 0..10),
        ) {
            let p = KeyPrefix::new(prefix.clone()).unwrap();
            let pattern = p.match_pattern();
            let mut key = prefix.clone();
            key.extend_from_slice(&rest);
            prop_assert!(matches(&pattern, &key));
            prop_assert_eq!(matches(&pattern, &other), other.starts_with(&prefix));
        }
    }
}
