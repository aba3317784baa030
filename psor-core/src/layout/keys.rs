//! Building the exact Redis keys of one (PAC, version), so the rest of psor never
//! formats a key by hand.
//!
//! Key shapes (default template, PAC `MyPAC`, version `9.0`):
//!
//! ```text
//! spread store entry   <prefix><sub>:<entry>           MyPAC_9.0:pct:TXN1
//! tagged store key     <prefix><sub>:{<tag>}           MyPAC_9.0:pac:{MyPAC_9.0}
//! tagged store entry   <prefix><sub>:{<tag>}:<entry>   MyPAC_9.0:version:{MyPAC_9.0}:REGION1
//! ```
//!
//! `<tag>` is the prefix without its terminator. Since neither the prefix nor a
//! sub-prefix may contain `{` or `}`, the first `{` of a tagged key opens *our*
//! tag and Redis Cluster hashes every tagged key of one (PAC, version) to one
//! slot. Spread-store entries are arbitrary bytes; a `{...}` inside one only moves
//! that key to another slot, it cannot join the metadata's slot by accident
//! unless it spells the tag, which is harmless for correctness.

use super::catalog::{Layout, Placement, Store, StoreRole};
use super::naming::{PacName, PacVersionPrefix, ProductVersion, RegionName, STORE_SEPARATOR};
pub use super::resource::ResourceTable;

/// A key that cannot be built from a layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The layout has no store with this role.
    #[error("layout {layout:?} has no store with role {role:?}")]
    NoStoreWithRole {
        /// The layout.
        layout: String,
        /// The role asked for.
        role: &'static str,
    },
    /// The layout has no store with this name.
    #[error("layout {layout:?} has no store named {store:?}")]
    UnknownStore {
        /// The layout.
        layout: String,
        /// The store asked for.
        store: String,
    },
    /// A single-key form was asked of a spread store (only tagged stores have one).
    #[error("store {store:?} is spread, so it has no single tagged key")]
    NotTagged {
        /// The store.
        store: String,
    },
    /// An empty entry name for a tagged store (it would be ambiguous).
    #[error("store {store:?} is tagged; its entry names must not be empty")]
    EmptyEntry {
        /// The store.
        store: String,
    },
}

/// The key builder of one (PAC, version) under one layout.
#[derive(Debug, Clone)]
pub struct PacKeys<'a> {
    layout: &'a Layout,
    prefix: PacVersionPrefix,
}

impl Layout {
    /// The key builder for `pac` at `version` under this layout.
    pub fn keys(&self, pac: &PacName, version: &ProductVersion) -> PacKeys<'_> {
        PacKeys { layout: self, prefix: self.key_prefix.prefix(pac, version) }
    }
}

impl<'a> PacKeys<'a> {
    /// The layout.
    pub fn layout(&self) -> &'a Layout {
        self.layout
    }

    /// The (PAC, version) prefix, e.g. `MyPAC_9.0:`.
    pub fn prefix(&self) -> &PacVersionPrefix {
        &self.prefix
    }

    /// The hash tag of tagged stores, e.g. `{MyPAC_9.0}`.
    pub fn hash_tag(&self) -> String {
        self.prefix.hash_tag()
    }

    fn store(&self, name: &str) -> Result<&'a Store, KeyError> {
        self.layout
            .store(name)
            .ok_or_else(|| KeyError::UnknownStore { layout: self.layout.name.clone(), store: name.to_owned() })
    }

    fn role(&self, role: StoreRole) -> Result<&'a Store, KeyError> {
        self.layout
            .store_with_role(role)
            .ok_or_else(|| KeyError::NoStoreWithRole { layout: self.layout.name.clone(), role: role.as_str() })
    }

    /// Every key of store `name` starts with this, e.g. `MyPAC_9.0:pct:`.
    pub fn store_prefix(&self, name: &str) -> Result<Vec<u8>, KeyError> {
        Ok(self.prefix.store_prefix(&self.store(name)?.sub_prefix))
    }

    fn tagged_base(&self, s: &Store) -> Vec<u8> {
        let mut k = self.prefix.store_prefix(&s.sub_prefix);
        k.extend_from_slice(self.hash_tag().as_bytes());
        k
    }

    fn single(&self, s: &Store) -> Result<Vec<u8>, KeyError> {
        match s.placement {
            Placement::Tagged => Ok(self.tagged_base(s)),
            Placement::Spread => Err(KeyError::NotTagged { store: s.name.clone() }),
        }
    }

    fn entry(&self, s: &Store, entry: &[u8]) -> Result<Vec<u8>, KeyError> {
        match s.placement {
            Placement::Spread => {
                let mut k = self.prefix.store_prefix(&s.sub_prefix);
                k.extend_from_slice(entry);
                Ok(k)
            }
            Placement::Tagged => {
                if entry.is_empty() {
                    return Err(KeyError::EmptyEntry { store: s.name.clone() });
                }
                let mut k = self.tagged_base(s);
                k.push(STORE_SEPARATOR);
                k.extend_from_slice(entry);
                Ok(k)
            }
        }
    }

    /// The single key of tagged store `name`, e.g. `MyPAC_9.0:pac:{MyPAC_9.0}`.
    pub fn single_key(&self, name: &str) -> Result<Vec<u8>, KeyError> {
        self.single(self.store(name)?)
    }

    /// The key of `entry` in store `name` (see the module documentation).
    pub fn entry_key(&self, name: &str, entry: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.entry(self.store(name)?, entry)
    }

    /// The PAC record (a hash), e.g. `MyPAC_9.0:pac:{MyPAC_9.0}`.
    pub fn pac_record_key(&self) -> Result<Vec<u8>, KeyError> {
        self.single(self.role(StoreRole::PacRecord)?)
    }

    /// The region registry, e.g. `MyPAC_9.0:regions:{MyPAC_9.0}`.
    pub fn region_registry_key(&self) -> Result<Vec<u8>, KeyError> {
        self.single(self.role(StoreRole::RegionRegistry)?)
    }

    /// One region's version record, e.g. `MyPAC_9.0:version:{MyPAC_9.0}:REGION1`.
    pub fn region_version_key(&self, region: &RegionName) -> Result<Vec<u8>, KeyError> {
        self.entry(self.role(StoreRole::VersionRecords)?, region.as_str().as_bytes())
    }

    /// One entry of a resource table, e.g. `MyPAC_9.0:pct:TXN1`. `name` is raw bytes.
    pub fn resource_key(&self, table: ResourceTable, name: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.entry(self.role(StoreRole::Resource(table))?, name)
    }

    /// The prefix every key of a resource table starts with, e.g. `MyPAC_9.0:pct:`.
    pub fn resource_prefix(&self, table: ResourceTable) -> Result<Vec<u8>, KeyError> {
        Ok(self.prefix.store_prefix(&self.role(StoreRole::Resource(table))?.sub_prefix))
    }
}
