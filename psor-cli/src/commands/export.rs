//! `psor export`: every key under a prefix into a snapshot file, atomically renamed into
//! place once complete and synced.

use std::io::Write;

use anyhow::Result;
use indicatif::{HumanBytes, HumanCount};
use psor_core::keys::KeyPrefix;
use psor_core::snapshot::{self, ExportOptions, ExportOutcome, ExportSelection};

use super::{connect, engine_options, new_progress, snapshot_error};
use crate::args::{ExportArgs, Global};
use crate::exit::code_for_outcome;
use crate::ui::progress::Bar;

pub fn run(g: &Global, a: &ExportArgs) -> Result<i32> {
    let prefix = KeyPrefix::parse_escaped(&a.prefix)?;
    let psor = connect(g)?;
    let opts = ExportOptions {
        selection: ExportSelection::prefix(prefix.clone()),
        path: a.output.clone(),
        overwrite: a.overwrite,
    };
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, "exported");
    let outcome = snapshot::export(&psor, &opts, &engine_options(g), progress).map_err(snapshot_error)?;
    drop(bar);
    let mut out = crate::ui::stdout::out();
    if g.json {
        let mut v = serde_json::to_value(&outcome)?;
        let obj = v.as_object_mut().expect("an ExportOutcome serializes to an object");
        obj.insert("operation".into(), "export".into());
        obj.insert("psor".into(), psor.spec().redacted().into());
        obj.insert("prefix".into(), prefix.to_string().into());
        super::region::add_source(&mut v);
        serde_json::to_writer(&mut out, &v)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &psor.spec().redacted(), &prefix, &outcome)?;
    }
    Ok(code_for_outcome(outcome.failed, 0))
}

fn print_table(out: &mut impl Write, psor: &str, prefix: &KeyPrefix, o: &ExportOutcome) -> std::io::Result<()> {
    writeln!(
        out,
        "export {prefix} on {psor} ({}) → {}",
        psor_core::connect::describe_version(&o.server_version),
        o.path.display()
    )?;
    writeln!(
        out,
        "  {:<13}{:>14}  {:>12}",
        "keys",
        HumanCount(o.keys).to_string(),
        HumanBytes(o.payload_bytes).to_string()
    )?;
    for (kind, s) in o.per_type.iter().filter(|(_, s)| s.keys > 0) {
        writeln!(
            out,
            "    {kind:<11}{:>14}  {:>12}",
            HumanCount(s.keys).to_string(),
            HumanBytes(s.payload_bytes).to_string()
        )?;
    }
    for (label, n) in
        [("with expiry", o.with_ttl), ("vanished", o.vanished), ("duplicates", o.duplicates), ("failed", o.failed)]
    {
        if n > 0 || label == "with expiry" {
            writeln!(out, "  {label:<13}{:>14}", HumanCount(n).to_string())?;
        }
    }
    writeln!(out, "  {:<13}{:>14}", "file", HumanBytes(o.file_bytes).to_string())?;
    let rate = if o.seconds > 0.0 { o.keys as f64 / o.seconds } else { 0.0 };
    writeln!(out, "  {:<13}{:>14.2}   ({} keys/s)", "seconds", o.seconds, HumanCount(rate as u64))?;
    for line in crate::ui::output::read_from_lines(&o.read_from) {
        writeln!(out, "  {line}")?;
    }
    if !o.failures.is_empty() {
        writeln!(out, "failures, first {} of {}:", o.failures.len().min(10), o.failed)?;
        for f in o.failures.iter().take(10) {
            writeln!(out, "  {} on {}: {}", f.key, f.node, f.error)?;
        }
    }
    Ok(())
}
