//! The region's configuration on the command line: where `ES_PAC` and
//! `ES_SCALE_OUT_REPOS_n` come from (`--es-env FILE`, else the environment), which SOR is
//! the PSOR when neither `--psor` nor `PSOR_URL` is given, and the note saying so.
//!
//! Order, first wins: `--psor`, `PSOR_URL`, the `TMP` SOR of `--es-env FILE`, the `TMP` SOR
//! of `ES_SCALE_OUT_REPOS_1..9` in the environment. A file replaces the environment's SOR
//! list as a whole (lists are never merged); its `ES_PAC`, when it has one, wins over the
//! environment's.

use std::sync::OnceLock;

use anyhow::Result;
use psor_core::connect::{RegionEnv, SorEntry};
use serde::Serialize;

use crate::args::Global;

/// The SOR psor took as the PSOR from the region's configuration, for the stderr note and
/// `--json` (`psor_source`).
#[derive(Debug, Clone, Serialize)]
pub struct PsorSource {
    /// The variable, e.g. `ES_SCALE_OUT_REPOS_1`.
    pub var: String,
    /// `environment` or `FILE:LINE`.
    pub origin: String,
    /// The SOR's name.
    pub sor: String,
    /// The connection as the vendor writes it (`redis,host:port`).
    pub connection: String,
}

static SOURCE: OnceLock<PsorSource> = OnceLock::new();

/// The SOR taken as the PSOR in this run, if the PSOR came from the region's configuration.
pub fn psor_source() -> Option<&'static PsorSource> {
    SOURCE.get()
}

/// Records (once) the SOR taken as the PSOR and says so on stderr.
pub fn note_source(sor: &SorEntry) {
    let src = PsorSource {
        var: sor.var.clone(),
        origin: sor.origin.clone(),
        sor: sor.name.clone(),
        connection: sor.connection(),
    };
    if SOURCE.set(src).is_ok() {
        eprintln!("psor: PSOR from {} ({}): {}={}", sor.var, sor.origin, sor.name, sor.connection());
    }
}

/// The region's configuration: `--es-env FILE` (with the environment's `ES_PAC` when the
/// file has none), else the environment.
pub fn load(g: &Global) -> Result<RegionEnv> {
    let from_env = RegionEnv::from_vars(std::env::vars());
    let env = match &g.es_env {
        Some(path) => {
            let mut file = RegionEnv::from_file(path)?;
            if file.pac.is_none() {
                // Only ES_PAC is taken from the environment; its SOR list is not consulted, so a
                // malformed one there does not matter.
                file.pac = std::env::var(psor_core::connect::region_env::PAC_VAR)
                    .ok()
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty());
            }
            file
        }
        None => from_env?,
    };
    Ok(env)
}

/// Like [`load`], but only when the region's configuration has something to say; an
/// environment with no `ES_SCALE_OUT_REPOS_n` and no `--es-env` gives `None`.
pub fn load_sors(g: &Global) -> Result<Option<RegionEnv>> {
    let env = load(g)?;
    Ok((!env.is_empty()).then_some(env))
}

/// The region's `ES_PAC`, if any.
pub fn es_pac(g: &Global) -> Result<Option<String>> {
    if g.es_env.is_none() {
        // ES_PAC alone must not be spoilt by an unrelated malformed SOR line.
        return Ok(std::env::var(psor_core::connect::region_env::PAC_VAR)
            .ok()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty()));
    }
    Ok(load(g)?.pac)
}

/// Adds `psor_source` (the variable the PSOR was taken from) to a `--json` object, when the
/// PSOR came from the region's configuration.
pub fn add_source(v: &mut serde_json::Value) {
    if let (Some(src), Some(obj)) = (psor_source(), v.as_object_mut()) {
        obj.insert("psor_source".into(), serde_json::to_value(src).unwrap_or_default());
    }
}
