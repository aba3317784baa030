//! `psor delete`: delete every key under a prefix, after saying exactly what will go.

use anyhow::Result;
use psor_core::engine::{self, DeleteOptions};
use psor_core::keys::KeyPrefix;

use super::{connect, engine_options, new_progress};
use crate::args::{DeleteArgs, Global};
use crate::exit::code_for_run;
use crate::ui::{confirm::confirm, output, progress::Bar};

pub fn run(g: &Global, a: &DeleteArgs) -> Result<i32> {
    let prefix = KeyPrefix::parse_escaped(&a.prefix)?;
    let psor = connect(g)?;
    let engine = engine_options(g);
    let info = output::RunInfo {
        operation: "delete",
        psor: psor.spec().redacted(),
        prefix: prefix.to_string(),
        to_prefix: None,
        target: None,
    };
    let mut opts = DeleteOptions { prefix: prefix.clone(), dry_run: true, sample: a.sample };
    if a.dry_run || !g.yes {
        // Count first: a dry run is the report, and the prompt says how many keys will go.
        let progress = new_progress();
        let bar = Bar::start(&progress, !g.no_progress, "would delete");
        let counted = engine::delete(&psor, &opts, &engine, progress)?;
        drop(bar);
        if a.dry_run {
            output::print_outcome(&mut crate::ui::stdout::out(), g.json, &info, &counted)?;
            return Ok(crate::exit::OK);
        }
        if counted.counts.matched == 0 {
            output::print_outcome(&mut crate::ui::stdout::out(), g.json, &info, &counted)?;
            return Ok(crate::exit::OK);
        }
        let what = format!("delete {} keys under {} on {}", counted.counts.matched, prefix, info.psor);
        confirm(&what, &counted.sample[..counted.sample.len().min(5)], g.yes)?;
    }
    opts.dry_run = false;
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, "deleted");
    let outcome = engine::delete(&psor, &opts, &engine, progress)?;
    drop(bar);
    // A `file:` PSOR is saved here (atomically); a save failure fails the command.
    psor.flush()?;
    output::print_outcome(&mut crate::ui::stdout::out(), g.json, &info, &outcome)?;
    Ok(code_for_run(outcome.interrupted, outcome.counts.failed, outcome.counts.conflicts))
}
