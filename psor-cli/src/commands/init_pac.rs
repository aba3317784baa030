//! `psor init-pac PAC --product-version V` (`caspac -aInitPac`): remove every store of the
//! PAC (all versions) and write a fresh record in mode Running. A cold start.

use anyhow::Result;
use psor_core::pac::{self, InitPacOptions, InitPacOutcome};

use super::pac_common::{catalog, outln, pac_or_es_pac, print_json, print_version, product_version, removal_lines};
use super::{connect, engine_options, new_progress};
use crate::args::{Global, InitPacArgs};
use crate::exit::{code_for_run, IN_USE};
use crate::ui::{confirm::confirm, progress::Bar};

pub fn run(g: &Global, a: &InitPacArgs) -> Result<i32> {
    let cat = catalog(&a.catalog)?;
    let pac = pac_or_es_pac(g, a.pac.as_deref())?;
    let v = product_version(&a.product)?;
    let psor = connect(g)?;
    let engine = engine_options(g);
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, "PAC keys");
    let plan_opts = InitPacOptions { dry_run: true, force: a.force, expect: None };
    let plan = pac::init_pac(&psor, &cat, &pac, &v, &plan_opts, &engine, progress)?;
    drop(bar);
    let blocked = !plan.blockers.is_empty() && !a.force;
    if a.dry_run {
        report(g, &plan)?;
        return Ok(if blocked { IN_USE } else { crate::exit::OK });
    }
    if blocked {
        return Err(pac::Error::InUse { pac, blockers: plan.blockers }.into());
    }
    if !plan.blockers.is_empty() {
        eprintln!("psor: WARNING: --force: initialising PAC {pac} although regions are registered:");
        for b in &plan.blockers {
            eprintln!("psor: WARNING:   {b}");
        }
    }
    let what = format!(
        "initialise PAC {pac} at version {v}: remove all {} of its keys ({} version(s)) and write a fresh record in mode Running",
        plan.remove.iter().map(|v| v.keys).sum::<u64>(),
        plan.remove.len()
    );
    confirm(&what, &removal_lines(&plan.deleted), g.yes)?;
    let opts = InitPacOptions {
        dry_run: false,
        force: a.force,
        expect: Some(plan.remove.iter().map(|v| v.version.clone()).collect()),
    };
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, "deleted");
    let o = pac::init_pac(&psor, &cat, &pac, &v, &opts, &engine, progress)?;
    // A file store saves here, so a failed save fails the command (servers: nothing to do).
    psor.flush()?;
    drop(bar);
    report(g, &o)?;
    Ok(code_for_run(o.interrupted, o.deleted.iter().map(|d| d.counts.failed).sum(), 0))
}

fn report(g: &Global, o: &InitPacOutcome) -> Result<()> {
    if g.json {
        return print_json("init-pac", o);
    }
    let dry = if o.dry_run { " (dry run: nothing written)" } else { "" };
    outln!(
        "init-pac PAC {} at version {} (layout {}, epoch {}){dry}",
        o.pac,
        o.version.version,
        o.version.layout,
        o.version.epoch
    );
    if o.remove.is_empty() {
        outln!("  no stores of {} found", o.pac);
    } else {
        outln!("  {}:", if o.dry_run { "would remove" } else { "removed" });
        for v in &o.remove {
            print_version(v, "    ")?;
        }
    }
    for b in &o.blockers {
        outln!("  {}: {b}", if o.forced { "overridden (--force)" } else { "blocked" });
    }
    if let Some(r) = &o.record {
        outln!("  record written: version {} mode {}", r.version, r.mode);
    }
    for d in o.deleted.iter().filter(|_| o.interrupted) {
        outln!("  {}: {} deleted, {} vanished, {} failed", d.prefix, d.counts.done, d.counts.vanished, d.counts.failed);
    }
    if o.interrupted {
        outln!("{}", crate::interrupt::RERUN);
    }
    Ok(())
}
