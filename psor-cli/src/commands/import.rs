//! `psor import`: a snapshot file back into the PSOR. The whole file is checked before the
//! first write; existing keys are conflicts unless `--replace`, which asks first.

use std::io::Write;

use anyhow::Result;
use indicatif::HumanCount;
use psor_core::snapshot::{self, ImportOptions, ImportOutcome, Rename};

use super::{connect, engine_options, new_progress, snapshot_error};
use crate::args::{Global, ImportArgs};
use crate::exit::{code_for_run, CliError};
use crate::ui::{confirm::confirm, progress::Bar};

pub fn run(g: &Global, a: &ImportArgs) -> Result<i32> {
    if let Some((old, new)) = a.rename.as_deref().and_then(|r| r.split_once('=')) {
        // Named here, where the flag is known: the library would speak of a prefix.
        if old.is_empty() || new.is_empty() {
            return Err(CliError::Usage(format!(
                "--rename `{old}={new}`: {} is empty; --rename takes OLD=NEW, two non-empty key prefixes",
                if old.is_empty() { "OLD" } else { "NEW" }
            ))
            .into());
        }
    }
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
        if a.dry_run || counted.counts.done == 0 || counted.interrupted {
            report(g.json, &target, &counted, None)?;
            return Ok(code_for_run(counted.interrupted, 0, 0));
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
    let code = code_for_run(outcome.interrupted, outcome.counts.failed, outcome.counts.conflicts);
    if !a.verify || outcome.interrupted {
        report(g.json, &target, &outcome, None)?;
        return Ok(code);
    }
    // The live prefix and the file's: the rename, or the file's keys' common prefix.
    let pair = match &opts.rename {
        Some(r) => (r.to.clone(), r.from.clone()),
        None => {
            let p = psor_core::verify::common_prefix(&a.file).map_err(snapshot_error)?;
            (p.clone(), p)
        }
    };
    let checked = super::verify::after_write(g, &psor, None, Some(&a.file), &[pair])?;
    report(g.json, &target, &outcome, Some(serde_json::to_value(&checked)?))?;
    if !g.json {
        super::verify::print_after(&checked)?;
    }
    Ok(super::verify::combined_code(code, &checked))
}

fn report(json: bool, target: &str, o: &ImportOutcome, verify: Option<serde_json::Value>) -> Result<()> {
    let mut out = crate::ui::stdout::out();
    if json {
        let mut v = serde_json::to_value(o)?;
        let obj = v.as_object_mut().expect("an ImportOutcome serializes to an object");
        obj.insert("operation".into(), "import".into());
        obj.insert("psor".into(), target.into());
        if let Some(verify) = verify {
            obj.insert("verify".into(), verify);
        }
        super::region::add_source(&mut v);
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
    crate::ui::output::print_paths(&mut out, &o.paths, "restored")?;
    // The sample is what --sample asked for (the engine keeps no more): all of it.
    list(&mut out, "would be restored, first", &o.sample, o.sample.len(), c.done)?;
    list(&mut out, "conflicts (key exists with other content, left alone), first", &o.conflict_keys, 10, c.conflicts)?;
    list(&mut out, "expired (expiry already past, not restored), first", &o.expired_keys, 10, c.expired)?;
    if !o.failures.is_empty() {
        writeln!(out, "failures, first {} of {}:", o.failures.len().min(10), c.failed)?;
        for f in o.failures.iter().take(10) {
            writeln!(out, "  {} on {}: {}", f.key, f.node, f.error)?;
        }
    }
    if o.interrupted {
        writeln!(out, "{}", crate::interrupt::RERUN)?;
    }
    Ok(())
}

fn list(out: &mut impl Write, title: &str, keys: &[String], limit: usize, total: u64) -> std::io::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    writeln!(out, "{title} {} of {}:", keys.len().min(limit), HumanCount(total))?;
    for k in keys.iter().take(limit) {
        writeln!(out, "  {k}")?;
    }
    Ok(())
}
