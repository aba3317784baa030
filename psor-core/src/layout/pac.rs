//! The PAC record and the PAC's mode, as pure data.
//!
//! The incompatible upgrade moves a new PAC version from `Upgrade` to `Running`
//! and the old one from `Running` to `Quiesce` (`caspac -aSetMode=...`). psor
//! keeps the legal moves as a table so every command checks the same rules, and
//! encodes the PAC record as a Redis hash with pure functions, so the Redis layer
//! only ships field/value pairs.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::catalog::Epoch;
use super::naming::{PacName, ProductVersion};

/// The mode of one PAC version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PacMode {
    /// Created by a region started in upgrade mode; takes no batch work.
    Upgrade,
    /// Takes batch work (`caspac -aSetMode=Running`).
    Running,
    /// Takes no new batch work; its regions drain (`caspac -aSetMode=Quiesce`).
    Quiesce,
}

impl PacMode {
    /// The text stored in the PAC record and used by `caspac`: `Upgrade`, `Running`, `Quiesce`.
    pub fn as_str(self) -> &'static str {
        match self {
            PacMode::Upgrade => "Upgrade",
            PacMode::Running => "Running",
            PacMode::Quiesce => "Quiesce",
        }
    }
}

impl fmt::Display for PacMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PacMode {
    type Err = PacRecordError;
    /// Case-insensitive, so `running` from a command line is accepted; the
    /// record always stores the canonical spelling.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [PacMode::Upgrade, PacMode::Running, PacMode::Quiesce]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| PacRecordError::BadValue {
                field: "mode",
                value: s.to_owned(),
                expected: "Upgrade, Running or Quiesce",
            })
    }
}

/// The legal mode changes. Setting a mode a PAC already has is also accepted (a
/// no-op, so a repeated `SetMode` is harmless).
///
/// * `Upgrade → Running`: step 10 of the procedure, the new PAC takes batch work.
/// * `Running → Quiesce`: step 12, the old PAC stops taking batch work.
/// * `Quiesce → Running`: backing out; while the old PAC's stores still exist its
///   regions can be given batch work again.
///
/// Nothing returns to `Upgrade`: upgrade mode only exists for a PAC version whose
/// stores were just created.
pub const TRANSITIONS: &[(PacMode, PacMode)] =
    &[(PacMode::Upgrade, PacMode::Running), (PacMode::Running, PacMode::Quiesce), (PacMode::Quiesce, PacMode::Running)];

/// A mode change that [`TRANSITIONS`] does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a PAC in mode {from} cannot be set to {to}; allowed from {from}: {allowed}")]
pub struct TransitionError {
    /// The current mode.
    pub from: PacMode,
    /// The mode asked for.
    pub to: PacMode,
    /// The modes allowed from `from`, for the message.
    pub allowed: String,
}

/// Check that a PAC in mode `from` may be set to `to`.
pub fn check_transition(from: PacMode, to: PacMode) -> Result<(), TransitionError> {
    if from == to || TRANSITIONS.contains(&(from, to)) {
        return Ok(());
    }
    let allowed: Vec<&str> = TRANSITIONS.iter().filter(|(f, _)| *f == from).map(|(_, t)| t.as_str()).collect();
    Err(TransitionError {
        from,
        to,
        allowed: if allowed.is_empty() { "nothing".to_owned() } else { allowed.join(", ") },
    })
}

/// A PAC record that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacRecordError {
    /// A required field is absent.
    #[error("PAC record has no field {0:?}")]
    MissingField(&'static str),
    /// A field appears twice.
    #[error("PAC record has field {0:?} twice")]
    DuplicateField(String),
    /// A field's value is not what it should be.
    #[error("PAC record field {field:?} has value {value:?}; expected {expected}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// Its value (lossily decoded).
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

/// The record of one PAC version, stored as a hash at the layout's `pac-record` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacRecord {
    /// The PAC.
    pub pac: PacName,
    /// The product version that created these stores (the key prefix's version).
    pub version: ProductVersion,
    /// Its mode.
    pub mode: PacMode,
    /// The catalog layout it was created with.
    pub layout: String,
    /// That layout's compatibility epoch.
    pub epoch: Epoch,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Last change, milliseconds since the Unix epoch.
    pub updated_ms: u64,
}

/// The hash fields of a PAC record, in encoding order.
pub const PAC_RECORD_FIELDS: [&str; 7] = ["pac", "version", "mode", "layout", "epoch", "created_ms", "updated_ms"];

impl PacRecord {
    /// The field/value pairs to `HSET`.
    pub fn to_hash(&self) -> Vec<(&'static str, String)> {
        vec![
            ("pac", self.pac.to_string()),
            ("version", self.version.to_string()),
            ("mode", self.mode.to_string()),
            ("layout", self.layout.clone()),
            ("epoch", self.epoch.to_string()),
            ("created_ms", self.created_ms.to_string()),
            ("updated_ms", self.updated_ms.to_string()),
        ]
    }

    /// Decode the field/value pairs of `HGETALL`. Unknown fields are ignored, so a
    /// newer psor may add fields; a missing, repeated or malformed field is an error.
    pub fn from_hash<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<PacRecord, PacRecordError> {
        let mut vals: [Option<String>; 7] = Default::default();
        for (k, v) in pairs {
            let k = k.as_ref();
            let Some(i) = PAC_RECORD_FIELDS.iter().position(|f| f.as_bytes() == k) else {
                continue;
            };
            if vals[i].is_some() {
                return Err(PacRecordError::DuplicateField(PAC_RECORD_FIELDS[i].to_owned()));
            }
            vals[i] = Some(String::from_utf8_lossy(v.as_ref()).into_owned());
        }
        let mut take = |i: usize| vals[i].take().ok_or(PacRecordError::MissingField(PAC_RECORD_FIELDS[i]));
        let bad = |field: &'static str, value: &str, expected: &'static str| PacRecordError::BadValue {
            field,
            value: value.to_owned(),
            expected,
        };
        let pac = take(0)?;
        let pac = PacName::new(&pac).map_err(|_| bad("pac", &pac, "a PAC name"))?;
        let version = take(1)?;
        let version = ProductVersion::new(&version).map_err(|_| bad("version", &version, "a product version"))?;
        let mode: PacMode = take(2)?.parse()?;
        let layout = take(3)?;
        let epoch = take(4)?;
        if epoch.is_empty() {
            return Err(bad("epoch", &epoch, "a non-empty epoch"));
        }
        let created = take(5)?;
        let created_ms =
            created.parse().map_err(|_| bad("created_ms", &created, "milliseconds as a decimal integer"))?;
        let updated = take(6)?;
        let updated_ms =
            updated.parse().map_err(|_| bad("updated_ms", &updated, "milliseconds as a decimal integer"))?;
        Ok(PacRecord { pac, version, mode, layout, epoch: Epoch::new(epoch), created_ms, updated_ms })
    }

    /// This record with its mode changed to `to` at `now_ms`, if the change is legal.
    pub fn with_mode(&self, to: PacMode, now_ms: u64) -> Result<PacRecord, TransitionError> {
        check_transition(self.mode, to)?;
        Ok(PacRecord { mode: to, updated_ms: now_ms.max(self.updated_ms), ..self.clone() })
    }
}
