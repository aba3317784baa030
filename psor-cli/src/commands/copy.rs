//! `psor copy`: copy (or `--move`) every key under one prefix to another prefix, on the same
//! server or to `--target`.

use anyhow::Result;
use psor_core::engine::{self, CopyOptions};

use super::{connect, connect_to, engine_options, new_progress, prefix_arg};
use crate::args::{CopyArgs, Global};
use crate::exit::code_for_run;
use crate::ui::{confirm::confirm, output, progress::Bar};

pub fn run(g: &Global, a: &CopyArgs) -> Result<i32> {
    let from = prefix_arg("--prefix", &a.prefix)?;
    let to = prefix_arg("--to-prefix", &a.to_prefix)?;
    let source = connect(g)?;
    let target = a.target.as_deref().map(|t| connect_to(g, Some(t))).transpose()?;
    let mut engine = engine_options(g);
    engine.drop_field_ttls = a.drop_field_ttls;
    engine.max_payload = a.max_payload;
    let info = output::RunInfo {
        operation: if a.move_keys { "move" } else { "copy" },
        psor: source.spec().redacted(),
        prefix: from.to_string(),
        to_prefix: Some(to.to_string()),
        target: target.as_ref().map(|t| t.spec().redacted()),
    };
    let mut opts = CopyOptions {
        from: from.clone(),
        to: to.clone(),
        replace: a.replace,
        move_keys: a.move_keys,
        dry_run: true,
        sample: a.sample,
    };
    let destructive = a.replace || a.move_keys;
    if a.dry_run || (destructive && !g.yes) {
        let progress = new_progress();
        let bar = Bar::start(&progress, !g.no_progress, "would copy");
        let counted = engine::copy(&source, target.as_ref(), &opts, &engine, progress)?;
        drop(bar);
        if a.dry_run || counted.counts.matched == 0 {
            output::print_outcome(&mut crate::ui::stdout::out(), g.json, &info, &counted)?;
            return Ok(crate::exit::OK);
        }
        let mut what = format!("{} {} keys from {} to {}", info.operation, counted.counts.matched, from, to);
        if let Some(t) = &info.target {
            what.push_str(&format!(" on {t}"));
        }
        if a.replace {
            what.push_str(" (existing target keys are overwritten)");
        }
        if a.move_keys {
            what.push_str(" (source keys are deleted once copied)");
        }
        confirm(&what, &counted.sample[..counted.sample.len().min(5)], g.yes)?;
    }
    opts.dry_run = false;
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, if a.move_keys { "moved" } else { "copied" });
    let outcome = engine::copy(&source, target.as_ref(), &opts, &engine, progress)?;
    drop(bar);
    // `file:` PSORs are saved here (atomically); a save failure fails the command.
    if let Some(t) = &target {
        t.flush()?;
    }
    source.flush()?;
    let code = code_for_run(outcome.interrupted, outcome.counts.failed, outcome.counts.conflicts);
    if !a.verify || outcome.interrupted {
        output::print_outcome(&mut crate::ui::stdout::out(), g.json, &info, &outcome)?;
        return Ok(code);
    }
    let checked = super::verify::after_write(g, &source, target.as_ref(), None, &[(from, to)])?;
    let extra = g.json.then(|| serde_json::to_value(&checked)).transpose()?.map(|v| ("verify", v));
    output::print_outcome_with(&mut crate::ui::stdout::out(), g.json, &info, &outcome, extra)?;
    if !g.json {
        super::verify::print_after(&checked)?;
    }
    Ok(super::verify::combined_code(code, &checked))
}
