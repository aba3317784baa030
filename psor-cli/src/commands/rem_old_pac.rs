//! `psor rem-old-pac PAC` (`caspac -aRemOldPAC`): remove the stores of every version other
//! than the Running one, after saying which and how many keys.

use anyhow::Result;
use psor_core::pac::{self, RemOldPacOptions, RemOldPacOutcome};
use psor_core::snapshot;

use super::pac_common::{catalog, outln, pac_or_es_pac, print_json, print_version, removal_lines};
use super::{connect, engine_options, new_progress, snapshot_error};
use crate::args::{Global, RemOldPacArgs};
use crate::exit::{code_for_run, IN_USE};
use crate::ui::{confirm::confirm, progress::Bar};

pub fn run(g: &Global, a: &RemOldPacArgs) -> Result<i32> {
    let cat = catalog(&a.catalog)?;
    let pac = pac_or_es_pac(g, a.pac.as_deref())?;
    let psor = connect(g)?;
    if let Some(path) = &a.backup {
        // Before the prompt and before anything is written: the backup's file must be free.
        let in_use: Vec<_> = psor.store_path().into_iter().collect();
        snapshot::check_output_path(path, a.overwrite, &in_use).map_err(snapshot_error)?;
    }
    let engine = engine_options(g);
    let plan_opts = RemOldPacOptions { dry_run: true, force: a.force, expect: None };
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, "PAC keys");
    let plan = pac::rem_old_pac(&psor, &cat, &pac, &plan_opts, &engine, progress)?;
    drop(bar);
    let blocked = !plan.blockers.is_empty() && !a.force;
    if a.dry_run || plan.remove.is_empty() {
        report(g, &plan)?;
        return Ok(if blocked && !plan.remove.is_empty() { IN_USE } else { crate::exit::OK });
    }
    if blocked {
        return Err(pac::Error::InUse { pac, blockers: plan.blockers }.into());
    }
    if !plan.blockers.is_empty() {
        eprintln!("psor: WARNING: --force: removing stores that may be in use:");
        for b in &plan.blockers {
            eprintln!("psor: WARNING:   {b}");
        }
    }
    let what = format!(
        "remove the stores of PAC {} version(s) {} ({} keys), keeping {}",
        pac,
        plan.remove.iter().map(|v| v.version.to_string()).collect::<Vec<_>>().join(", "),
        plan.remove.iter().map(|v| v.keys).sum::<u64>(),
        plan.keep.version
    );
    let what = match &a.backup {
        Some(path) => format!("{what}, after backing them up to {}", path.display()),
        None => what,
    };
    confirm(&what, &removal_lines(&plan.deleted), g.yes)?;
    let versions: Vec<_> = plan.remove.iter().map(|v| v.version.clone()).collect();
    let backup = match &a.backup {
        Some(path) => {
            let progress = new_progress();
            let bar = Bar::start(&progress, !g.no_progress, "backed up");
            let b = pac::backup(&psor, &cat, &pac, &versions, path, a.overwrite, &engine, progress)?;
            drop(bar);
            if !g.json {
                outln!(
                    "backup: {} keys of version(s) {} written and verified: {}",
                    b.keys,
                    versions.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                    b.path.display()
                );
            }
            // The backup against the live keys, content and all: nothing goes if they differ.
            let template = cat.key_template();
            let pairs = versions
                .iter()
                .map(|v| {
                    psor_core::keys::KeyPrefix::new(template.prefix(&pac, v).as_bytes().to_vec())
                        .map(|p| (p.clone(), p))
                })
                .collect::<psor_core::Result<Vec<_>>>()?;
            let checked = super::verify::after_write(g, &psor, None, Some(path), &pairs)?;
            if !checked.is_same() {
                if g.json {
                    let v = serde_json::json!({ "removed": false, "backup": b, "verify": checked });
                    print_json("rem-old-pac", &v)?;
                } else {
                    super::verify::print_after(&checked)?;
                    eprintln!("psor: the backup {} differs from the live keys; nothing was removed", path.display());
                }
                return Ok(super::verify::combined_code(crate::exit::OK, &checked));
            }
            if !g.json {
                outln!("backup: verified against the live keys: {} the same", checked.counts.same);
            }
            Some(b)
        }
        None => None,
    };
    let opts = RemOldPacOptions { dry_run: false, force: a.force, expect: Some(versions) };
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, "deleted");
    let o = pac::rem_old_pac(&psor, &cat, &pac, &opts, &engine, progress)?;
    // A file store saves here, so a failed save fails the command (servers: nothing to do).
    psor.flush()?;
    drop(bar);
    if g.json {
        let mut v = serde_json::to_value(&o)?;
        if let (Some(obj), Some(b)) = (v.as_object_mut(), &backup) {
            obj.insert("backup".into(), serde_json::to_value(b)?);
        }
        print_json("rem-old-pac", &v)?;
    } else {
        report(g, &o)?;
    }
    let failed = o.deleted.iter().map(|d| d.counts.failed).sum();
    Ok(code_for_run(o.interrupted, failed, 0))
}

fn report(g: &Global, o: &RemOldPacOutcome) -> Result<()> {
    if g.json {
        return print_json("rem-old-pac", o);
    }
    // With nothing to remove there is no dry run to speak of: say so instead.
    let dry = if o.dry_run && !o.remove.is_empty() { " (dry run: nothing deleted)" } else { "" };
    outln!(
        "rem-old-pac PAC {}: keeping version {} ({}){dry}",
        o.pac,
        o.keep.version,
        super::pac_common::mode_text(&o.keep)
    );
    if o.remove.is_empty() {
        outln!("  no other version: nothing to remove");
        return Ok(());
    }
    outln!("  {}:", if o.dry_run { "would remove" } else { "removed" });
    for v in &o.remove {
        print_version(v, "    ")?;
    }
    for d in &o.deleted {
        if !o.dry_run {
            outln!(
                "  {}: {} deleted, {} vanished, {} failed",
                d.prefix,
                d.counts.done,
                d.counts.vanished,
                d.counts.failed
            );
        }
    }
    for b in &o.blockers {
        outln!("  {}: {b}", if o.forced { "overridden (--force)" } else { "blocked" });
    }
    if o.interrupted {
        outln!("{}", crate::interrupt::RERUN);
    }
    Ok(())
}
