//! The raw TOML shape of a catalog file, as serde reads it (spans kept, so that every
//! refusal can name its line and column); [`super::validate`] turns it into the model.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) catalog: Option<RawHeader>,
    #[serde(default)]
    pub(super) layout: Vec<Spanned<RawLayout>>,
    #[serde(default)]
    pub(super) version: Vec<Spanned<RawVersion>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeader {
    pub(super) name: Option<String>,
    pub(super) extends: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) reference: bool,
    #[allow(dead_code)] // documentation for people; accepted and ignored
    pub(super) description: Option<String>,
    /// Sub-prefixes (one segment each) that hold TS/TD queues; see `docs/layouts.md`.
    pub(super) queue_prefixes: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLayout {
    pub(super) name: Spanned<String>,
    /// Any TOML value, so that a wrong one (`9.5`, `true`) is refused naming the field
    /// rather than by serde's "did not match any variant".
    pub(super) epoch: Spanned<toml::Value>,
    pub(super) key_prefix: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) store: Vec<Spanned<RawStore>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) name: Spanned<String>,
    pub(super) sub_prefix: Spanned<String>,
    #[serde(rename = "type")]
    pub(super) redis_type: Spanned<String>,
    #[serde(default)]
    pub(super) holds: String,
    pub(super) role: Option<Spanned<String>>,
    pub(super) placement: Spanned<String>,
    pub(super) upgrade: Spanned<String>,
    pub(super) transform: Option<Spanned<String>>,
    pub(super) from_store: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVersion {
    #[serde(rename = "match")]
    pub(super) matches: Spanned<String>,
    pub(super) layout: Spanned<String>,
    #[serde(default)]
    pub(super) note: String,
}
