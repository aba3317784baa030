//! `check-compat`: whether two versions of a PAC can share the PSOR, from the catalog.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What `check-compat` found.
#[derive(Debug, Clone, Serialize)]
pub struct CompatReport {
    /// The PAC.
    pub pac: PacName,
    /// The PAC's current version (the `Running` one, else the highest with a record).
    pub current: VersionSide,
    /// The product version psor acts for.
    pub product: VersionSide,
    /// True when both layouts share an epoch.
    pub compatible: bool,
    /// `compatible` or `incompatible`: which upgrade process applies.
    pub process: &'static str,
    /// The catalog's answer, naming both layouts and epochs.
    pub verdict: Compat,
}

/// `caspac -aCheckCompat=PAC`: is `product` compatible with the PAC's current version?
/// Unknown PAC or version is an error ([`Error::is_unknown`]); incompatible is an answer.
pub fn check_compat(
    psor: &Psor,
    catalog: &Catalog,
    pac: &PacName,
    product: &ProductVersion,
    engine: &EngineOptions,
    progress: Arc<Progress>,
) -> Result<CompatReport> {
    // The product version first: an unknown version is an answer without a scan.
    let product_side = side(catalog, product, None)?;
    let st = require_pac(pac_status(psor, catalog, pac, engine, progress)?)?;
    let cur = current(&st).ok_or_else(|| Error::State {
        pac: pac.clone(),
        reason: format!("no version has a PAC record (versions: {}); run `psor init-pac`", st.describe_versions()),
    })?;
    let current_side = side(catalog, &cur.version, cur.mode())?;
    let verdict = catalog.compatibility(&cur.version, product)?;
    let compatible = verdict.is_compatible();
    Ok(CompatReport {
        pac: pac.clone(),
        current: current_side,
        product: product_side,
        compatible,
        process: if compatible { "compatible" } else { "incompatible" },
        verdict,
    })
}
