//! The CICS resource tables a PSOR holds: what a catalog's `role = "pct"` names
//! ([`super::catalog`]) and what a resource key is built for ([`super::keys`]). Its own file
//! so that neither of those two imports the other for it.

use serde::Serialize;

/// The CICS resource tables the PSOR holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceTable {
    /// Transactions (status is PAC-wide).
    Pct,
    /// Files (open/close is PAC-wide).
    Fct,
    /// Programs; binaries may be held here, so values can be large.
    Ppt,
    /// TD queue definitions.
    Dct,
    /// TS models.
    Tst,
    /// ENQ models.
    Enqmodel,
}

impl ResourceTable {
    /// All tables.
    pub const ALL: [ResourceTable; 6] = [
        ResourceTable::Pct,
        ResourceTable::Fct,
        ResourceTable::Ppt,
        ResourceTable::Dct,
        ResourceTable::Tst,
        ResourceTable::Enqmodel,
    ];

    /// The word used for it in a catalog's `role = "..."`, e.g. `pct`.
    pub fn role_name(self) -> &'static str {
        match self {
            ResourceTable::Pct => "pct",
            ResourceTable::Fct => "fct",
            ResourceTable::Ppt => "ppt",
            ResourceTable::Dct => "dct",
            ResourceTable::Tst => "tst",
            ResourceTable::Enqmodel => "enqmodel",
        }
    }

    pub(crate) fn from_role_name(s: &str) -> Option<ResourceTable> {
        Self::ALL.into_iter().find(|t| t.role_name() == s)
    }
}
