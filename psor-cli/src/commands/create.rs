//! `psor create PAC --product-version V` (what `casstart /s:u` does to the PSOR): the new
//! version's stores next to the old ones, in mode Upgrade. Rerunning finishes an
//! interrupted run.

use anyhow::Result;
use psor_core::pac::{self, CreateOptions};

use super::pac_common::{catalog, outln, pac_or_es_pac, print_json, product_version};
use super::{connect, engine_options, new_progress};
use crate::args::{CreateArgs, Global};
use crate::exit::code_for_run;
use crate::ui::progress::Bar;

pub fn run(g: &Global, a: &CreateArgs) -> Result<i32> {
    let cat = catalog(&a.catalog)?;
    let pac = pac_or_es_pac(g, a.pac.as_deref())?;
    let v = product_version(&a.product)?;
    let psor = connect(g)?;
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, if a.dry_run { "would copy" } else { "copied" });
    let o = pac::create(
        &psor,
        &cat,
        &pac,
        &v,
        &CreateOptions { dry_run: a.dry_run, allow_downgrade: a.allow_downgrade },
        &engine_options(g),
        progress,
    )?;
    // A file store saves here, so a failed save fails the command (servers: nothing to do).
    psor.flush()?;
    drop(bar);
    // --verify: every carried store against its source (only once the copy is complete).
    let checked = if a.verify && o.complete {
        let stores = pac::carried_stores(&cat, &pac, &o.from.version, &o.to.version)?;
        let pairs: Vec<_> = stores.into_iter().map(|s| (s.from, s.to)).collect();
        Some(super::verify::after_write(g, &psor, None, None, &pairs)?)
    } else {
        None
    };
    if g.json {
        let mut v = serde_json::to_value(&o)?;
        if let (Some(obj), Some(c)) = (v.as_object_mut(), &checked) {
            obj.insert("verify".into(), serde_json::to_value(c)?);
        }
        print_json("create", &v)?;
    } else if o.already_complete {
        outln!(
            "create PAC {} version {}: the version already exists (mode {}) and its create is complete; nothing to do, \
             nothing written",
            o.pac,
            o.to.version,
            o.record.as_ref().map(|r| r.mode.to_string()).unwrap_or_else(|| "Upgrade".into())
        );
    } else {
        let dry = if o.dry_run { " (dry run: nothing written)" } else { "" };
        outln!(
            "create PAC {} version {} (layout {}, epoch {}) from {} (layout {}, epoch {}){}{dry}",
            o.pac,
            o.to.version,
            o.to.layout,
            o.to.epoch,
            o.from.version,
            o.from.layout,
            o.from.epoch,
            if o.resumed { ", resuming" } else { "" }
        );
        outln!(
            "  {:<10} {:<24} {:<24} {:>9} {:>9} {:>9} {:>9}",
            "store",
            "from",
            "to",
            "matched",
            "copied",
            "unchanged",
            "conflicts"
        );
        for c in &o.carried {
            outln!(
                "  {:<10} {:<24} {:<24} {:>9} {:>9} {:>9} {:>9}{}",
                c.store,
                c.from_prefix,
                c.to_prefix,
                c.counts.matched,
                c.counts.done,
                c.counts.unchanged,
                c.counts.conflicts,
                c.note.as_deref().map(|n| format!("  ({n})")).unwrap_or_default()
            );
        }
        if !o.fresh.is_empty() {
            outln!("  created empty (fresh): {}", o.fresh.join(", "));
        }
        for k in o.conflict_keys.iter().take(10) {
            outln!("  conflict (left alone): {k}");
        }
        for f in o.failures.iter().take(10) {
            outln!("  failed: {} on {}: {}", f.key, f.node, f.error);
        }
        if let Some(r) = &o.record {
            outln!(
                "  record: version {} mode {}{}",
                r.version,
                r.mode,
                if o.complete || o.dry_run { "" } else { " (create incomplete: rerun)" }
            );
        }
        if o.interrupted {
            outln!("{}", crate::interrupt::RERUN);
        }
    }
    let code = code_for_run(o.interrupted, o.counts.failed, o.counts.conflicts);
    match &checked {
        Some(c) => {
            if !g.json {
                super::verify::print_after(c)?;
            }
            Ok(super::verify::combined_code(code, c))
        }
        None => Ok(code),
    }
}
