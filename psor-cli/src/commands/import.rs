//! `psor import`: a snapshot file back into the PSOR. The whole file is checked before the
//! first write; existing keys are conflicts unless `--replace`, which asks first.

use std::io::Write;

use anyhow::Result;
use indicatif::HumanCount;
use psor_core::snapshot::{self, ImportOptions, ImportOutcome, Rename};

use super::{connect, engine_options, new_progress, snapshot_error};
use crate::args::{Global, ImportArgs};
use crate::exit::code_for_outcome;
use crate::ui::{confirm::confirm, progress::Bar};

pub fn run(g: &Global, a: &ImportArgs) -> Result<i32> {
    let rename = a.rename.as_deref().map(Rename::parse).transpose()?;
    let psor = connect(g)?;
    let mut engine = engine_options(g);
    engine.drop_field_ttls = a.drop_field_ttls;
    engine.max_payload = a.max_payload;
    let target = psor.spec().redacted();
    let mut opts = ImportOptions { path: a.file.clone(), rename, replace: a.replace, dry_run: true, sample: a.sample };
    if a.dry_run || (a.replace && !g.yes) {
        // Count first: a dry run is the report, and the prompt says how many keys it replaces.
        let progress = new_progress();
        let bar = Bar::start(&progress, !g.no_progress, "would restore");
        let counted = snapshot::import(&psor, &opts, &engine, progress).map_err(snapshot_error)?;
        drop(bar);
        if a.dry_run || counted.counts.done == 0 {
            report(g.json, &target, &counted)?;
            return Ok(crate::exit::OK);
        }
        let what = format!(
            "restore {} keys from {} into {target}, overwriting keys that exist",
            counted.counts.done,
            a.file.display()
        );
        confirm(&what, &counted.sample[..counted.sample.len().min(5)], g.yes)?;
    }
    opts.dry_run = false;
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, "restored");
    let outcome = snapshot::import(&psor, &opts, &engine, progress).map_err(snapshot_error)?;
    // A `file:` PSOR is saved here (atomically); a save failure fails the command.
    psor.flush()?;
    drop(bar);
    report(g.json, &target, &outcome)?;
    Ok(code_for_outcome(outcome.counts.failed, outcome.counts.conflicts))
}

fn report(json: bool, target: &str, o: &ImportOutcome) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let mut v = serde_json::to_value(o)?;
        let obj = v.as_object_mut().expect("an ImportOutcome serializes to an object");
        obj.insert("operation".into(), "import".into());
        obj.insert("psor".into(), target.into());
        serde_json::to_writer(&mut out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    let dry = if o.dry_run { " (dry run: nothing written)" } else { "" };
    writeln!(
        out,
        "import {} ({}, {}) into {target}{dry}",
        o.path.display(),
        o.selection,
        psor_core::connect::describe_version(&o.source_server_version)
    )?;
    let c = &o.counts;
    let done = if o.dry_run { "would restore" } else { "restored" };
    let mut rows = vec![("in file", c.matched), (done, c.done)];
    for (label, n) in
        [("unchanged", c.unchanged), ("conflicts", c.conflicts), ("expired", c.expired), ("failed", c.failed)]
    {
        if n > 0 {
            rows.push((label, n));
        }
    }
    for (label, n) in rows {
        writeln!(out, "  {label:<14}{:>14}", HumanCount(n).to_string())?;
    }
    let rate = if o.seconds > 0.0 { c.matched as f64 / o.seconds } else { 0.0 };
    writeln!(out, "  {:<14}{:>14.2}   ({} keys/s)", "seconds", o.seconds, HumanCount(rate as u64))?;
    if o.paths.transcoded + o.paths.rebuilt + o.paths.field_ttls_dropped > 0 {
        writeln!(
            out,
            "  paths: {} as they were, {} transcoded for the target, {} rebuilt",
            o.paths.restore, o.paths.transcoded, o.paths.rebuilt
        )?;
    }
    if o.paths.field_ttls_dropped > 0 {
        writeln!(
            out,
            "  {} hashes restored without their fields' expiries (--drop-field-ttls)",
            o.paths.field_ttls_dropped
        )?;
    }
    list(&mut out, "would be restored, first", &o.sample, c.done)?;
    list(&mut out, "conflicts (key exists with other content, left alone), first", &o.conflict_keys, c.conflicts)?;
    list(&mut out, "expired (expiry already past, not restored), first", &o.expired_keys, c.expired)?;
    if !o.failures.is_empty() {
        writeln!(out, "failures, first {} of {}:", o.failures.len().min(10), c.failed)?;
        for f in o.failures.iter().take(10) {
            writeln!(out, "  {} on {}: {}", f.key, f.node, f.error)?;
        }
    }
    Ok(())
}

fn list(out: &mut impl Write, title: &str, keys: &[String], total: u64) -> std::io::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    writeln!(out, "{title} {} of {}:", keys.len().min(10), HumanCount(total))?;
    for k in keys.iter().take(10) {
        writeln!(out, "  {k}")?;
    }
    Ok(())
}
