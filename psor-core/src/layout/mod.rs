//! PAC store layouts: what a PAC's keys are called, what they hold, and which
//! product versions can share them.
//!
//! The vendor's real key names, types and compatibility rules are not public, so
//! psor treats them as *data*: a [`Catalog`] read from TOML (a built-in reference
//! catalog, extended or replaced by a site's own file). This module is pure: it
//! builds and parses key names and checks catalogs and PAC records, and never
//! talks to Redis. The file format and the reasoning behind the key grammar are in
//! `docs/layouts.md`.

pub mod catalog;
pub mod keys;
pub mod naming;
pub mod pac;
mod resource;

pub use catalog::{
    Catalog, CatalogError, CatalogErrorKind, Compat, Epoch, Extends, Layout, Placement, RedisType, Store, StoreRole,
    Upgrade, VersionMatch, VersionRule, DEFAULT_QUEUE_PREFIXES, TRANSFORMS,
};
pub use keys::{KeyError, PacKeys, ResourceTable};
pub use naming::{
    parse_key, KeyTemplate, NameError, PacName, PacVersionPrefix, ParsedKey, ProductVersion, RegionName, SubPrefix,
    DEFAULT_KEY_PREFIX_TEMPLATE,
};
pub use pac::{check_transition, PacMode, PacRecord, PacRecordError, TransitionError, TRANSITIONS};
