//! Reports for people (aligned tables on stdout) and for scripts (`--json`: one object).

use std::io::{self, Write};

use indicatif::HumanCount;
use psor_core::engine::Outcome;

/// What a run was, for the report's heading and JSON fields.
pub struct RunInfo {
    /// `delete`, `copy`, `move`.
    pub operation: &'static str,
    /// The PSOR, password redacted.
    pub psor: String,
    /// The prefix, escaped.
    pub prefix: String,
    /// Copy: the target prefix, escaped.
    pub to_prefix: Option<String>,
    /// Copy: the target server, password redacted.
    pub target: Option<String>,
}

/// Prints an outcome as a table or as one JSON object.
pub fn print_outcome(out: &mut impl Write, json: bool, info: &RunInfo, o: &Outcome) -> io::Result<()> {
    print_outcome_with(out, json, info, o, None)
}

/// [`print_outcome`], with one more field in the JSON object (`--verify`'s result).
pub fn print_outcome_with(
    out: &mut impl Write,
    json: bool,
    info: &RunInfo,
    o: &Outcome,
    extra: Option<(&str, serde_json::Value)>,
) -> io::Result<()> {
    if json {
        let mut v = serde_json::to_value(o).map_err(io::Error::other)?;
        let obj = v.as_object_mut().expect("an Outcome serializes to an object");
        obj.insert("operation".into(), info.operation.into());
        obj.insert("psor".into(), info.psor.clone().into());
        obj.insert("prefix".into(), info.prefix.clone().into());
        if let Some(p) = &info.to_prefix {
            obj.insert("to_prefix".into(), p.clone().into());
        }
        if let Some(t) = &info.target {
            obj.insert("target".into(), t.clone().into());
        }
        if let Some((k, extra)) = extra {
            obj.insert(k.into(), extra);
        }
        crate::commands::add_source(&mut v);
        serde_json::to_writer(&mut *out, &v).map_err(io::Error::other)?;
        return writeln!(out);
    }
    let dry = if o.dry_run { " (dry run: nothing written)" } else { "" };
    match (&info.to_prefix, &info.target) {
        (Some(to), Some(t)) => {
            writeln!(out, "{} {} on {} → {} on {}{dry}", info.operation, info.prefix, info.psor, to, t)?
        }
        (Some(to), None) => writeln!(out, "{} {} → {} on {}{dry}", info.operation, info.prefix, to, info.psor)?,
        _ => writeln!(out, "{} {} on {}{dry}", info.operation, info.prefix, info.psor)?,
    }
    let done_label = match (info.operation, o.dry_run) {
        ("delete", false) => "deleted",
        ("delete", true) => "would delete",
        ("copy", false) => "copied",
        ("move", false) => "moved",
        (_, true) => "would copy",
        _ => "done",
    };
    let mut rows: Vec<(&str, u64)> = vec![("matched", o.counts.matched), (done_label, o.counts.done)];
    for (label, n) in [
        ("unchanged", o.counts.unchanged),
        ("conflicts", o.counts.conflicts),
        ("vanished", o.counts.vanished),
        ("expired", o.counts.expired),
        ("failed", o.counts.failed),
    ] {
        if n > 0 {
            rows.push((label, n));
        }
    }
    for (label, n) in rows {
        writeln!(out, "  {label:<13}{:>14}", HumanCount(n).to_string())?;
    }
    let rate = if o.seconds > 0.0 { o.counts.matched as f64 / o.seconds } else { 0.0 };
    writeln!(out, "  {:<13}{:>14.2}   ({} keys/s)", "seconds", o.seconds, HumanCount(rate as u64))?;
    for line in read_from_lines(&o.read_from) {
        writeln!(out, "  {line}")?;
    }
    if o.paused_seconds > 0.0 {
        writeln!(out, "  {:<13}{:>14.2}   (waiting for --rate / --max-latency)", "paused", o.paused_seconds)?;
    }
    print_paths(out, &o.paths, "copied")?;
    // The sample is what --sample asked for (the engine keeps no more): all of it.
    list(out, "would be affected, first", &o.sample, o.sample.len(), o.counts.done)?;
    list(out, "conflicts (target exists with other content), first", &o.conflict_keys, 10, o.counts.conflicts)?;
    if !o.failures.is_empty() {
        writeln!(out, "failures, first {} of {}:", o.failures.len().min(10), o.counts.failed)?;
        for f in o.failures.iter().take(10) {
            writeln!(out, "  {} on {}: {}", f.key, f.node, f.error)?;
        }
    }
    if o.interrupted {
        writeln!(out, "{}", crate::interrupt::RERUN)?;
    }
    Ok(())
}

/// How many keys reached the target as they were, transcoded, or rebuilt (shown only when
/// some did not go as they were), and the hashes whose field expiries were dropped. `verb`:
/// "copied", "restored".
pub fn print_paths(out: &mut impl Write, p: &psor_core::engine::transcode::Paths, verb: &str) -> io::Result<()> {
    if p.transcoded + p.rebuilt + p.field_ttls_dropped > 0 {
        writeln!(
            out,
            "  paths: {} as they were, {} transcoded for the target, {} rebuilt",
            p.restore, p.transcoded, p.rebuilt
        )?;
    }
    if p.field_ttls_dropped > 0 {
        writeln!(out, "  {} hashes {verb} without their fields' expiries (--drop-field-ttls)", p.field_ttls_dropped)?;
    }
    Ok(())
}

fn list(out: &mut impl Write, title: &str, keys: &[String], limit: usize, total: u64) -> io::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    writeln!(out, "{title} {} of {}:", keys.len().min(limit), HumanCount(total))?;
    for k in keys.iter().take(limit) {
        writeln!(out, "  {k}")?;
    }
    Ok(())
}

/// Where each master was read (`--read-from replica…`), one line each, for every table:
/// `read master A on replica B`, or `read master A itself (no replica: why)`.
pub fn read_from_lines(read_from: &[psor_core::connect::ReadChoice]) -> Vec<String> {
    read_from
        .iter()
        .map(|r| match &r.fallback {
            Some(why) => format!("read master {} itself (no replica: {why})", r.master),
            None => format!("read master {} on replica {}", r.master, r.read_node),
        })
        .collect()
}
