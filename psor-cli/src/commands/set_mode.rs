//! `psor set-mode PAC running|quiesce --product-version V` (`caspac -aSetMode=...`): legal
//! transitions only, changed atomically, before and after shown.

use anyhow::Result;
use psor_core::layout::PacMode;
use psor_core::pac;

use super::pac_common::{catalog, outln, pac_or_es_pac, print_json, product_version};
use super::{connect, engine_options, new_progress};
use crate::args::{Global, SetModeArgs};
use crate::exit::CliError;

pub fn run(g: &Global, a: &SetModeArgs) -> Result<i32> {
    let cat = catalog(&a.catalog)?;
    // `set-mode PAC MODE`, or `set-mode MODE` with the PAC from ES_PAC.
    let (pac, mode) = match (&a.pac, &a.mode) {
        (Some(p), Some(m)) => (pac_or_es_pac(g, Some(p))?, m.as_str()),
        (Some(m), None) => (pac_or_es_pac(g, None)?, m.as_str()),
        _ => return Err(CliError::Usage("set-mode needs the mode: running or quiesce".into()).into()),
    };
    let v = product_version(&a.product)?;
    let mode: PacMode = mode.parse().map_err(|e: psor_core::layout::PacRecordError| CliError::Usage(e.to_string()))?;
    if !pac::settable_mode(mode) {
        return Err(
            CliError::Usage("set-mode takes running or quiesce; Upgrade is set only by `psor create`".into()).into()
        );
    }
    let psor = connect(g)?;
    let o = pac::set_mode(
        &psor,
        &cat,
        &pac,
        &v,
        pac::SetModeOptions { mode, dry_run: a.dry_run },
        &engine_options(g),
        new_progress(),
    )?;
    // A file store saves here, so a failed save fails the command (servers: nothing to do).
    psor.flush()?;
    if g.json {
        print_json("set-mode", &o)?;
    } else {
        let dry = if o.dry_run { " (dry run: nothing written)" } else { "" };
        outln!(
            "PAC {} version {} (for product version {}), record {}{dry}",
            o.pac,
            o.version,
            o.product_version,
            o.key
        );
        outln!("  before: mode {}", o.before.mode);
        outln!("  after:  mode {}{}", o.after.mode, if o.changed { "" } else { " (unchanged: already in that mode)" });
    }
    Ok(crate::exit::OK)
}
