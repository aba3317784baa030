//! `psor status [PAC]`: the PACs in the PSOR, their versions, modes, regions, stores and key
//! counts.

use anyhow::Result;
use psor_core::pac;

use super::pac_common::{outln, catalog, pac_name, print_json, print_version};
use super::{connect, engine_options, new_progress};
use crate::args::{Global, StatusArgs};
use crate::ui::progress::Bar;

pub fn run(g: &Global, a: &StatusArgs) -> Result<i32> {
    let cat = catalog(&a.catalog)?;
    let pac = a.pac.as_deref().map(pac_name).transpose()?;
    let psor = connect(g)?;
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, "PAC keys");
    let report = pac::status(&psor, &cat, pac.as_ref(), &engine_options(g), progress)?;
    drop(bar);
    if let Some(p) = &pac {
        if report.pacs.is_empty() {
            return Err(pac::Error::UnknownPac { pac: p.clone(), known: Vec::new() }.into());
        }
    }
    if g.json {
        print_json("status", &report)?;
        return Ok(crate::exit::OK);
    }
    outln!(
        "{}: {} PAC(s), {} PAC keys of {} keys",
        psor.spec().redacted(),
        report.pacs.len(),
        report.pac_keys,
        report.total_keys
    );
    for p in &report.pacs {
        outln!("{}", p.pac);
        for v in &p.versions {
            print_version(v, "  ")?;
        }
    }
    Ok(crate::exit::OK)
}
