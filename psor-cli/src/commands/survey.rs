//! `psor survey`: the keyspace as a prefix tree (keys, bytes, types, TTLs, biggest keys
//! per prefix), as a table for people or `--json` (schema in `docs/survey.md`), and
//! optionally a draft layout catalog.

use std::io::Write;

use anyhow::{Context, Result};
use indicatif::{HumanBytes, HumanCount, HumanDuration};
use psor_core::keys::unescape;
use psor_core::survey::{self, Survey, SurveyNode, SurveyOptions};

use super::{connect, new_progress};
use crate::args::{Global, SurveyArgs};
use crate::exit::{CliError, FAILED, OK};
use crate::ui::progress::Bar;

pub fn run(g: &Global, a: &SurveyArgs) -> Result<i32> {
    let opts = SurveyOptions {
        prefix: unescape(&a.prefix)?,
        delimiter: unescape(&a.delimiter)?,
        depth: a.depth as usize,
        top: a.top as usize,
        types: !a.no_types,
        sample_every: a.sample_every,
        max_children: a.max_children as usize,
        max_nodes: a.max_nodes as usize,
        scan_count: g.tuning.scan_count as usize,
        workers: g.tuning.writers as usize,
        pacing: super::engine_options(g).pacing,
        read_from: super::engine_options(g).read_from,
        replica_wait: super::engine_options(g).replica_wait,
        ..SurveyOptions::default()
    };
    opts.check()?;
    if let Some(path) = &a.suggest_layout {
        if path.exists() && !g.yes {
            return Err(CliError::Usage(format!(
                "{} exists; give another --suggest-layout file, or --yes to overwrite it",
                path.display()
            ))
            .into());
        }
    }
    let psor = connect(g)?;
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, "counted");
    let result = survey::survey(&psor, &opts, progress.clone());
    drop(bar);
    let report = result?;
    let psor_text = psor.spec().redacted();

    let mut code = OK;
    let mut suggestion = None;
    if let Some(path) = &a.suggest_layout {
        let generated_by = format!("psor survey --delimiter : --depth {} on {psor_text}", a.depth);
        match survey::suggest_layout(&report, &generated_by) {
            Some(s) => {
                std::fs::write(path, &s.toml).with_context(|| format!("writing {}", path.display()))?;
                if s.problem.is_some() {
                    code = FAILED;
                }
                suggestion = Some((path.display().to_string(), s));
            }
            None => code = FAILED,
        }
    }

    let mut out = std::io::BufWriter::new(crate::ui::stdout::out());
    if g.json {
        let mut v = serde_json::to_value(&report)?;
        let obj = v.as_object_mut().expect("a Survey serializes to an object");
        obj.insert("operation".into(), "survey".into());
        obj.insert("psor".into(), psor_text.clone().into());
        obj.insert("server".into(), super::server_json(&psor.server()));
        if a.suggest_layout.is_some() {
            let s = match &suggestion {
                Some((file, s)) => serde_json::json!({
                    "file": file, "pac_prefixes": s.pac_prefixes, "layouts": s.layouts, "stores": s.stores,
                    "problem": s.problem.as_ref().map(|p| p.to_string()),
                }),
                None => serde_json::json!({ "file": null, "problem": no_pac_prefixes(&opts) }),
            };
            obj.insert("suggested_layout".into(), s);
        }
        super::region::add_source(&mut v);
        serde_json::to_writer(&mut out, &v)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &format!("{psor_text} ({})", psor.server()), &report)?;
        match (&a.suggest_layout, &suggestion) {
            (Some(_), Some((file, s))) => {
                writeln!(
                    out,
                    "\ndraft catalog written to {file}: {} layout(s), {} store(s) from {} PAC prefix(es); review it before use",
                    s.layouts,
                    s.stores,
                    s.pac_prefixes.len()
                )?;
                if let Some(p) = &s.problem {
                    writeln!(out, "the draft does not load as a catalog yet, fix it by hand: {p}")?;
                }
            }
            (Some(path), None) => {
                writeln!(out, "\nno draft written to {}: {}", path.display(), no_pac_prefixes(&opts))?;
            }
            _ => {}
        }
    }
    out.flush()?;
    Ok(code)
}

fn no_pac_prefixes(opts: &SurveyOptions) -> String {
    let mut m = "no prefix looks like <PAC>_<version>: with <store>: under it".to_string();
    if opts.delimiter != b":" {
        m.push_str(" (the draft needs --delimiter :)");
    }
    m
}

fn print_table(out: &mut impl Write, psor: &str, r: &Survey) -> std::io::Result<()> {
    let what = if r.prefix == "\"\"" { "the whole keyspace".to_string() } else { format!("prefix {}", r.prefix) };
    writeln!(
        out,
        "survey of {what} on {psor}: {} keys on {} master(s) in {:.1} s",
        HumanCount(r.keys),
        r.masters,
        r.seconds
    )?;
    for line in crate::ui::output::read_from_lines(&r.read_from) {
        writeln!(out, "{line}")?;
    }
    match r.sample_every {
        0 => writeln!(out, "bytes not measured (--sample-every 0)")?,
        1 => writeln!(out, "bytes measured on every key ({} keys)", HumanCount(r.sampled_keys))?,
        k => writeln!(
            out,
            "bytes estimated from {} sampled keys (MEMORY USAGE on 1 key in {k}, and on one key of each prefix that had none); biggest keys are among those sampled",
            HumanCount(r.sampled_keys)
        )?,
    }
    if r.folded_keys > 0 {
        writeln!(
            out,
            "{} keys under prefixes beyond the tree's caps ({} per prefix, {} in all) are counted in (other) rows",
            HumanCount(r.folded_keys),
            r.max_children,
            r.max_nodes
        )?;
    }
    if r.vanished > 0 {
        writeln!(out, "{} keys vanished during the survey and are not counted", HumanCount(r.vanished))?;
    }
    if r.keys == 0 {
        return Ok(());
    }
    let mut rows = Vec::new();
    collect_rows(r.root(), &mut rows, r.types);
    let width = rows.iter().map(|row| row[0].chars().count()).max().unwrap_or(6).clamp(6, 70);
    writeln!(out)?;
    writeln!(out, "{:<width$}  {:>13}  {:>11}  {:<26}  TTL", "PREFIX", "KEYS", "BYTES", "TYPES")?;
    for row in rows {
        writeln!(out, "{:<width$}  {:>13}  {:>11}  {:<26}  {}", row[0], row[1], row[2], row[3], row[4])?;
    }
    let biggest = &r.root().biggest;
    if !biggest.is_empty() {
        writeln!(out, "\nbiggest sampled keys:")?;
        for b in biggest {
            writeln!(out, "  {:>11}  {}", HumanBytes(b.bytes).to_string(), b.key)?;
        }
    }
    Ok(())
}

fn collect_rows(n: &SurveyNode, rows: &mut Vec<[String; 5]>, types: bool) {
    let label = if n.depth == 0 && n.prefix == "\"\"" { "(all)".to_string() } else { n.prefix.clone() };
    let est = if n.sampled_keys < n.keys && n.bytes > 0 { "~" } else { "" };
    let bytes =
        if n.sampled_keys == 0 && n.bytes == 0 { "-".to_string() } else { format!("{est}{}", HumanBytes(n.bytes)) };
    rows.push([
        format!("{}{label}", "  ".repeat(n.depth)),
        HumanCount(n.keys).to_string(),
        bytes,
        if types { type_mix(n) } else { "-".into() },
        if types { ttl_text(n) } else { "-".into() },
    ]);
    for c in &n.children {
        collect_rows(c, rows, types);
    }
}

fn type_mix(n: &SurveyNode) -> String {
    let Some(types) = &n.types else { return "-".into() };
    let total: u64 = types.values().sum();
    let mut v: Vec<(&String, &u64)> = types.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    if v.len() == 1 {
        return v[0].0.clone();
    }
    let mut parts: Vec<String> = v.iter().take(2).map(|(t, c)| format!("{t} {}", percent(**c, total))).collect();
    if v.len() > 2 {
        parts.push(format!("+{}", v.len() - 2));
    }
    parts.join(", ")
}

fn ttl_text(n: &SurveyNode) -> String {
    let Some(t) = &n.ttl else { return "-".into() };
    match (t.expiring, t.soonest_ms) {
        (0, _) => "none".into(),
        (e, Some(ms)) => format!(
            "{} expiring, soonest in {}",
            HumanCount(e),
            HumanDuration(std::time::Duration::from_millis(ms.max(0) as u64))
        ),
        (e, None) => format!("{} expiring", HumanCount(e)),
    }
}

fn percent(n: u64, total: u64) -> String {
    match (n * 100 + total / 2) / total.max(1) {
        0 => "<1%".into(),
        100 if n < total => ">99%".into(),
        p => format!("{p}%"),
    }
}
