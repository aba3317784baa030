//! `psor inspect`: what a snapshot file holds, without a server.

use std::io::Write;

use anyhow::Result;
use indicatif::{HumanBytes, HumanCount};
use psor_core::snapshot::{self, InspectOptions, Inspection, SelectionInfo};

use super::snapshot_error;
use crate::args::{Global, InspectArgs};

pub fn run(g: &Global, a: &InspectArgs) -> Result<i32> {
    if let Some(key) = &a.key {
        return run_key(g, a, &psor_core::keys::unescape(key)?);
    }
    let opts = InspectOptions { path: a.file.clone(), depth: a.depth, top: a.top };
    let i = snapshot::inspect(&opts).map_err(snapshot_error)?;
    let mut out = crate::ui::stdout::out();
    if g.json {
        serde_json::to_writer(&mut out, &i)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &i)?;
    }
    Ok(crate::exit::OK)
}

/// `inspect FILE --key K`: one key, found without reading the whole file when it is sorted.
fn run_key(g: &Global, a: &InspectArgs, key: &[u8]) -> Result<i32> {
    let l = snapshot::lookup(&a.file, key).map_err(snapshot_error)?;
    let mut out = crate::ui::stdout::out();
    if g.json {
        serde_json::to_writer(&mut out, &l)?;
        writeln!(out)?;
    } else {
        match &l.record {
            Some(r) => {
                writeln!(out, "{}: {}", l.path.display(), l.key)?;
                writeln!(out, "  type          {}", r.kind)?;
                writeln!(out, "  expires       {}", r.expires.as_deref().unwrap_or("never"))?;
                writeln!(out, "  RDB version   {}", r.rdb_version)?;
                writeln!(out, "  payload       {}", HumanBytes(r.payload_bytes))?;
            }
            None => writeln!(out, "{}: no key {}", l.path.display(), l.key)?,
        }
        if !l.sorted {
            writeln!(
                out,
                "  note: the file is not sorted by key (written before format 1.1): {} of {} frames were read to look",
                l.frames_read, l.frames
            )?;
        }
    }
    Ok(if l.record.is_some() { crate::exit::OK } else { crate::exit::UNKNOWN })
}

fn print_table(out: &mut impl Write, i: &Inspection) -> std::io::Result<()> {
    let selection = match &i.selection {
        SelectionInfo::Prefix { prefix } => format!("prefix {prefix}"),
        SelectionInfo::Pac { pac, version } => format!("PAC {pac} version {version}"),
    };
    writeln!(out, "{}: psor snapshot format {}, {}", i.path.display(), i.format_version, HumanBytes(i.file_bytes))?;
    writeln!(out, "  created       {}", i.created)?;
    writeln!(out, "  source        {} at {}", i.server, i.spec)?;
    writeln!(out, "  selection     {selection}")?;
    let rdb: Vec<String> = i.rdb_versions.iter().map(|(v, n)| format!("{v} ({n})")).collect();
    writeln!(out, "  RDB versions  {}", if rdb.is_empty() { "-".into() } else { rdb.join(", ") })?;
    writeln!(out)?;
    writeln!(out, "  {:<14}{:>14}  {:>12}", "type", "keys", "bytes")?;
    for (kind, s) in i.per_type.iter().filter(|(_, s)| s.keys > 0) {
        writeln!(
            out,
            "  {kind:<14}{:>14}  {:>12}",
            HumanCount(s.keys).to_string(),
            HumanBytes(s.payload_bytes).to_string()
        )?;
    }
    writeln!(
        out,
        "  {:<14}{:>14}  {:>12}",
        "total",
        HumanCount(i.keys).to_string(),
        HumanBytes(i.payload_bytes).to_string()
    )?;
    writeln!(out, "  {:<14}{:>14}", "with expiry", HumanCount(i.with_ttl).to_string())?;
    if i.expired_now > 0 {
        writeln!(
            out,
            "  {:<14}{:>14}   (expiry already past: an import skips them)",
            "expired now",
            HumanCount(i.expired_now).to_string()
        )?;
    }
    writeln!(out)?;
    writeln!(out, "  top {} of {} prefixes (depth {}) by bytes:", i.prefixes.len(), HumanCount(i.groups), i.depth)?;
    for p in &i.prefixes {
        writeln!(
            out,
            "  {:>14}  {:>12}  {}",
            HumanCount(p.keys).to_string(),
            HumanBytes(p.payload_bytes).to_string(),
            p.prefix
        )?;
    }
    if i.other_groups > 0 {
        writeln!(
            out,
            "  {:>14}  keys in further prefixes (too many to count apart)",
            HumanCount(i.other_groups).to_string()
        )?;
    }
    Ok(())
}
