//! `psor sample PAC --product-version V [--keys N]`: a realistic PAC for demos, tests and
//! rehearsals.

use anyhow::Result;
use psor_core::layout::PacMode;
use psor_core::pac::{self, SampleOptions};

use super::pac_common::{catalog, outln, pac_or_es_pac, print_json, product_version};
use super::{connect, new_progress};
use crate::args::{Global, SampleArgs};
use crate::exit::CliError;
use crate::ui::progress::Bar;

pub fn run(g: &Global, a: &SampleArgs) -> Result<i32> {
    let cat = catalog(&a.catalog)?;
    let pac = pac_or_es_pac(g, a.pac.as_deref())?;
    let v = product_version(&a.product)?;
    let mode: PacMode =
        a.mode.parse().map_err(|e: psor_core::layout::PacRecordError| CliError::Usage(e.to_string()))?;
    let psor = connect(g)?;
    let opts = SampleOptions { keys: a.keys, regions: a.regions, mode, large_values: a.large_values };
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, "written");
    let o = pac::sample(&psor, &cat, &pac, &v, &opts, progress)?;
    // A file store saves here, so a failed save fails the command (servers: nothing to do).
    psor.flush()?;
    drop(bar);
    if g.json {
        print_json("sample", &o)?;
        return Ok(crate::exit::OK);
    }
    outln!(
        "sample PAC {} version {} (layout {}) under {}: {} keys, {} with a TTL, {} large PPT values, regions {}",
        o.pac,
        o.version,
        o.layout,
        o.prefix,
        o.keys,
        o.with_ttl,
        o.large_values,
        if o.regions.is_empty() { "none".into() } else { o.regions.join(", ") }
    );
    for (store, n) in &o.stores {
        outln!("  {store:<12} {n:>8}");
    }
    Ok(crate::exit::OK)
}
