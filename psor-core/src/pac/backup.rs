//! A verified backup of PAC versions before they are removed (`rem-old-pac --backup`, and the
//! rehearsal's step 14): export their stores to a snapshot file, then read the file back and
//! check every frame before anyone deletes anything.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::{Error, Result};
use crate::connect::Psor;
use crate::engine::EngineOptions;
use crate::keys::KeyPrefix;
use crate::layout::{Catalog, PacName, ProductVersion};
use crate::progress::Progress;
use crate::snapshot::{self, ExportOptions, ExportSelection};

/// What the backup holds.
#[derive(Clone, Debug, Serialize)]
pub struct Backup {
    /// The file.
    pub path: PathBuf,
    /// The versions in it.
    pub versions: Vec<ProductVersion>,
    /// Keys written, and read back with every checksum verified.
    pub keys: u64,
    /// Size of the file.
    pub file_bytes: u64,
}

/// Exports every key of `versions` of `pac` to `path` and verifies the file. An existing
/// file is replaced only when `overwrite` and only if it is an older-or-equal psor snapshot;
/// never the file of `psor`'s own store ([`snapshot::check_output_path`]). An error means no
/// usable backup: do not delete.
#[allow(clippy::too_many_arguments)]
pub fn backup(
    psor: &Psor,
    catalog: &Catalog,
    pac: &PacName,
    versions: &[ProductVersion],
    path: &Path,
    overwrite: bool,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<Backup> {
    let template = catalog.key_template();
    let prefixes = versions
        .iter()
        .map(|v| KeyPrefix::new(template.prefix(pac, v).as_bytes().to_vec()))
        .collect::<crate::Result<Vec<_>>>()?;
    let names = versions.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let selection = ExportSelection::pac_version(pac.as_str(), names, prefixes)?;
    let opts = ExportOptions { selection, path: path.to_path_buf(), overwrite };
    let exported = snapshot::export(psor, &opts, engine, progress)?;
    if exported.failed > 0 {
        return Err(Error::State {
            pac: pac.clone(),
            reason: format!(
                "{} keys could not be backed up to {}; nothing was removed",
                exported.failed,
                path.display()
            ),
        });
    }
    let unusable = |e: &dyn std::fmt::Display| Error::State {
        pac: pac.clone(),
        reason: format!("the backup {} does not verify ({e}); nothing was removed", path.display()),
    };
    let file =
        std::fs::File::open(path).map_err(|source| crate::Error::ReadFile { path: path.to_path_buf(), source })?;
    let mut reader = psor_formats::SnapshotReader::open(std::io::BufReader::new(file)).map_err(|e| unusable(&e))?;
    let totals = reader.verify_all().map_err(|e| unusable(&e))?;
    if totals.keys != exported.keys {
        return Err(unusable(&format!("it holds {} keys, the export wrote {}", totals.keys, exported.keys)));
    }
    Ok(Backup {
        path: path.to_path_buf(),
        versions: versions.to_vec(),
        keys: totals.keys,
        file_bytes: exported.file_bytes,
    })
}
