//! What the PAC commands share: the catalog in force, the product version psor acts for,
//! validated PAC names, and printing a report as one JSON object.

use anyhow::Result;

/// `println!` through [`crate::ui::stdout`]: a closed stdout is an error returned (which
/// `main` treats as success), never a panic.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!($crate::ui::stdout::out(), $($t)*)?
    }};
}
pub(crate) use outln;
use psor_core::layout::{Catalog, PacName, ProductVersion};
use psor_core::pac::{DeleteReport, VersionStatus};
use serde::Serialize;

use crate::args::{CatalogArgs, Global, ProductArgs};
use crate::exit::CliError;

/// The catalog: `--layouts FILE` / `PSOR_LAYOUTS`, else the built-in reference catalog.
pub fn catalog(a: &CatalogArgs) -> Result<Catalog> {
    Ok(match &a.layouts {
        // An empty PSOR_LAYOUTS (or --layouts "") is unset, as an empty PSOR_PRODUCT_VERSION is.
        Some(path) if !path.as_os_str().is_empty() => Catalog::load_file(path)?,
        _ => Catalog::builtin(),
    })
}

/// The product version from `--product-version` / `PSOR_PRODUCT_VERSION`.
pub fn product_version(a: &ProductArgs) -> Result<ProductVersion> {
    let text = a.product_version.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| {
        CliError::Usage(
            "no product version: give --product-version V or set PSOR_PRODUCT_VERSION (the installed product's version)"
                .into(),
        )
    })?;
    ProductVersion::new(text).map_err(|e| CliError::Usage(e.to_string()).into())
}

/// The PAC a command acts on: the one given, else the region's `ES_PAC` (from `--es-env
/// FILE` or the environment).
pub fn pac_or_es_pac(g: &Global, given: Option<&str>) -> Result<PacName> {
    match given {
        Some(p) => pac_name(p),
        None => match super::region::es_pac(g)? {
            Some(p) => pac_name(&p),
            None => Err(CliError::Usage(
                "no PAC given: name it, or set ES_PAC to the PAC's name as in the region's environment (or give \
                 --es-env FILE with an ES_PAC line)"
                    .into(),
            )
            .into()),
        },
    }
}

/// A PAC name from the command line.
pub fn pac_name(text: &str) -> Result<PacName> {
    PacName::new(text).map_err(|e| CliError::Usage(e.to_string()).into())
}

/// Prints `value` as one JSON object on stdout, with `operation` added.
pub fn print_json(operation: &str, value: &impl Serialize) -> Result<()> {
    let mut v = serde_json::to_value(value)?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert("operation".into(), operation.into());
    }
    super::region::add_source(&mut v);
    outln!("{v}");
    Ok(())
}

/// `Running`, or `(no record)`.
pub fn mode_text(v: &VersionStatus) -> String {
    match (&v.record, &v.record_error) {
        (Some(r), _) if r.creating => format!("{} (create incomplete)", r.record.mode),
        (Some(r), _) => r.record.mode.to_string(),
        (None, Some(_)) => "(damaged record)".into(),
        (None, None) => "(no record)".into(),
    }
}

/// One version's stores and key counts, indented, for tables.
pub fn print_version(v: &VersionStatus, indent: &str) -> Result<()> {
    let layout = v.layout.as_deref().unwrap_or("(version not in catalog)");
    outln!(
        "{indent}{:<10} {:<28} layout {:<10} {:>10} keys   regions: {}",
        v.version,
        mode_text(v),
        layout,
        v.keys,
        if v.region_count == 0 { "none".to_string() } else { format!("{} ({})", v.region_count, v.regions.join(", ")) }
    );
    if let Some(e) = &v.record_error {
        outln!("{indent}  record: {e}");
    }
    for s in &v.stores {
        outln!("{indent}    {:<14} {:<36} {:>10}", s.store, s.prefix, s.keys);
    }
    Ok(())
}

/// The versions a destructive command will remove, for the prompt.
pub fn removal_lines(deleted: &[DeleteReport]) -> Vec<String> {
    deleted.iter().map(|d| format!("{} ({} keys)", d.prefix, d.counts.matched)).collect()
}
