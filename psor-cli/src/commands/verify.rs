//! `psor verify`: compare the keys under a prefix with their copy — another prefix, another
//! server (`--target`) or a snapshot file (`--snapshot`) — or every store a PAC upgrade
//! carries. Reads only; exit 0 when the same, 8 when anything differs, 1 when keys failed.
//! Under the global `--read-from replica…` both sides read on their replicas (the re-read of a
//! key that differed on the masters: `psor_core::verify`), the report says where each master
//! was read, and `replica-only` without a usable replica stops with exit 9.

use std::io::Write;

use anyhow::Result;
use indicatif::HumanCount;
use psor_core::connect::Psor;
use psor_core::keys::KeyPrefix;
use psor_core::verify::{self, Kind, VerifyOptions, VerifyOutcome};

use super::pac_common::{catalog, pac_name};
use super::{connect, connect_to, engine_options, new_progress, snapshot_error};
use crate::args::{Global, VerifyArgs};
use crate::exit::{code_for_verify, CliError};
use crate::ui::progress::Bar;

pub fn run(g: &Global, a: &VerifyArgs) -> Result<i32> {
    let live = connect(g)?;
    if let Some(pac) = &a.pac {
        return run_pac(g, a, &live, pac);
    }
    let from = KeyPrefix::parse_escaped(a.prefix.as_deref().unwrap_or_default())?;
    let to = match &a.to_prefix {
        Some(t) => KeyPrefix::parse_escaped(t)?,
        None => from.clone(),
    };
    let opts = options(a, from.clone(), to.clone());
    let target = a.target.as_deref().map(|t| connect_to(g, Some(t))).transpose()?;
    let other = match (&a.snapshot, &target) {
        (Some(f), _) => format!("snapshot {}", f.display()),
        (None, Some(t)) => t.spec().redacted(),
        (None, None) => live.spec().redacted(),
    };
    let outcome = verify_one(g, &live, target.as_ref(), a.snapshot.as_deref(), &opts, true)?;
    let mut out = std::io::stdout().lock();
    if g.json {
        let mut v = serde_json::to_value(&outcome)?;
        let obj = v.as_object_mut().expect("an outcome is an object");
        obj.insert("operation".into(), "verify".into());
        obj.insert("psor".into(), live.spec().redacted().into());
        obj.insert("prefix".into(), from.to_string().into());
        obj.insert("to_prefix".into(), to.to_string().into());
        obj.insert("other".into(), other.into());
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "verify {from} on {} against {to} on {other}{}", live.spec().redacted(), quick(a))?;
        print_outcome(&mut out, &outcome)?;
    }
    Ok(code_for_verify(&outcome))
}

fn quick(a: &VerifyArgs) -> &'static str {
    if a.quick {
        " (--quick: type, expiry and size only)"
    } else {
        ""
    }
}

fn options(a: &VerifyArgs, from: KeyPrefix, to: KeyPrefix) -> VerifyOptions {
    VerifyOptions { quick: a.quick, ttl_tolerance_ms: a.ttl_tolerance, show: a.show, ..VerifyOptions::new(from, to) }
}

/// Runs one verify with a progress bar. `partial`: an interrupted run returns what it
/// compared, marked `interrupted` (for `psor verify`'s report); otherwise it is an error
/// (a `--verify` after a write, which a deletion may depend on).
fn verify_one(
    g: &Global,
    live: &Psor,
    target: Option<&Psor>,
    snapshot: Option<&std::path::Path>,
    opts: &VerifyOptions,
    partial: bool,
) -> Result<VerifyOutcome> {
    let engine = engine_options(g);
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, "verified");
    let outcome = match (snapshot, partial) {
        (Some(path), true) => {
            verify::verify_snapshot_report(live, path, opts, &engine, progress).map_err(snapshot_error)?
        }
        (Some(path), false) => verify::verify_snapshot(live, path, opts, &engine, progress).map_err(snapshot_error)?,
        (None, true) => verify::verify_report(live, target, opts, &engine, progress)?,
        (None, false) => verify::verify(live, target, opts, &engine, progress)?,
    };
    drop(bar);
    Ok(outcome)
}

/// Every store the catalog carries from one version to the other, on the same PSOR.
fn run_pac(g: &Global, a: &VerifyArgs, live: &Psor, pac: &str) -> Result<i32> {
    let pac = pac_name(pac)?;
    let version = |v: &Option<String>, flag: &str| -> Result<psor_core::layout::ProductVersion> {
        let text = v.as_deref().ok_or_else(|| CliError::Usage(format!("{flag} V is needed with a PAC")))?;
        psor_core::layout::ProductVersion::new(text).map_err(|e| CliError::Usage(e.to_string()).into())
    };
    let (from_v, to_v) = (version(&a.from_version, "--from-version")?, version(&a.to_version, "--to-version")?);
    let stores = psor_core::pac::carried_stores(&catalog(&a.catalog)?, &pac, &from_v, &to_v)?;
    let mut total = VerifyOutcome { quick: a.quick, ..VerifyOutcome::default() };
    let mut per_store = Vec::new();
    for s in &stores {
        let o = verify_one(g, live, None, None, &options(a, s.from.clone(), s.to.clone()), true)?;
        total.counts.add(&o.counts);
        total.same_by_payload += o.same_by_payload;
        total.differences.extend(o.differences.iter().cloned());
        total.failures.extend(o.failures.iter().cloned());
        total.seconds += o.seconds;
        total.interrupted |= o.interrupted;
        merge_reads(&mut total, &o);
        per_store.push((s, o));
        // Interrupted: the stores not reached are not verified (the report says so).
        if total.interrupted {
            break;
        }
    }
    let mut out = std::io::stdout().lock();
    if g.json {
        let stores: Vec<serde_json::Value> = per_store
            .iter()
            .map(|(s, o)| {
                let mut v = serde_json::to_value(o).unwrap_or_default();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("store".into(), s.store.clone().into());
                    obj.insert("from_store".into(), s.from_store.clone().into());
                    obj.insert("prefix".into(), s.from.to_string().into());
                    obj.insert("to_prefix".into(), s.to.to_string().into());
                }
                v
            })
            .collect();
        let mut v = serde_json::to_value(&total)?;
        let obj = v.as_object_mut().expect("an outcome is an object");
        obj.insert("operation".into(), "verify".into());
        obj.insert("psor".into(), live.spec().redacted().into());
        obj.insert("pac".into(), pac.to_string().into());
        obj.insert("from_version".into(), from_v.to_string().into());
        obj.insert("to_version".into(), to_v.to_string().into());
        obj.insert("stores".into(), stores.into());
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "verify {pac} {from_v} → {to_v} on {}{}: {} carried stores",
            live.spec().redacted(),
            quick(a),
            stores.len()
        )?;
        for (s, o) in &per_store {
            let differ = o.counts.differences();
            let (same, store) = (HumanCount(o.counts.same), &s.store);
            writeln!(out, "  {store:<12} {} → {}   {same} the same, {differ} differ", s.from, s.to)?;
        }
        keep_first(&mut total, a.show);
        print_outcome(&mut out, &total)?;
    }
    Ok(code_for_verify(&total))
}

/// Differing keys of each kind a `--verify` report names (`psor verify --show`'s default).
const AFTER_WRITE_SHOW: usize = 10;

/// `--verify` of `copy`, `import` and `create`: compares each pair (prefix on `live`, prefix on
/// side B: `target`, or `live` itself, or the snapshot `file`) and adds up the outcomes.
pub fn after_write(
    g: &Global,
    live: &Psor,
    target: Option<&Psor>,
    file: Option<&std::path::Path>,
    pairs: &[(KeyPrefix, KeyPrefix)],
) -> Result<VerifyOutcome> {
    let mut total = VerifyOutcome::default();
    for (from, to) in pairs {
        let opts = VerifyOptions::new(from.clone(), to.clone());
        let o = verify_one(g, live, target, file, &opts, false)?;
        merge_reads(&mut total, &o);
        total.counts.add(&o.counts);
        total.same_by_payload += o.same_by_payload;
        total.differences.extend(o.differences);
        total.failures.extend(o.failures);
        total.seconds += o.seconds;
        total.paused_seconds += o.paused_seconds;
    }
    keep_first(&mut total, AFTER_WRITE_SHOW);
    Ok(total)
}

/// Adds where one run read (`read_from`, `target_read_from`) to a total over several runs:
/// one entry per master, a fall back to the master in any run kept.
fn merge_reads(total: &mut VerifyOutcome, o: &VerifyOutcome) {
    for (into, from) in [(&mut total.read_from, &o.read_from), (&mut total.target_read_from, &o.target_read_from)] {
        for c in from {
            match into.iter_mut().find(|t| t.master == c.master) {
                Some(t) if t.fallback.is_none() => *t = c.clone(),
                Some(_) => {}
                None => into.push(c.clone()),
            }
        }
    }
}

/// Keeps the first `show` differing keys of each kind (an outcome added up over stores).
fn keep_first(o: &mut VerifyOutcome, show: usize) {
    let mut seen = [0usize; 5];
    o.differences.retain(|d| {
        let i = Kind::ALL.iter().position(|k| *k == d.kind).unwrap_or(0);
        seen[i] += 1;
        seen[i] <= show
    });
}

/// Prints a `--verify` result after the command's own table (people only; `--json` puts it in
/// the command's object as `"verify"`).
pub fn print_after(o: &VerifyOutcome) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "verify (what was written, both directions):")?;
    print_outcome(&mut out, o)?;
    Ok(())
}

/// The exit code of a command that wrote (`written`) and then verified.
pub fn combined_code(written: i32, o: &VerifyOutcome) -> i32 {
    if written != crate::exit::OK {
        written
    } else {
        code_for_verify(o)
    }
}

/// The counts table and the first differing keys of each kind.
pub fn print_outcome(out: &mut impl Write, o: &VerifyOutcome) -> std::io::Result<()> {
    let c = &o.counts;
    for (label, n, always) in [
        ("same", c.same, true),
        ("missing", c.missing, true),
        ("extra", c.extra, true),
        ("type", c.type_, true),
        ("content", c.content, true),
        ("expiry", c.expiry, true),
        ("changed", c.changed, c.changed > 0),
        ("failed", c.failed, c.failed > 0),
    ] {
        if always {
            writeln!(out, "  {label:<13}{:>14}", HumanCount(n).to_string())?;
        }
    }
    writeln!(out, "  {:<13}{:>14.2}", "seconds", o.seconds)?;
    if o.paused_seconds > 0.0 {
        writeln!(out, "  {:<13}{:>14.2}   (waiting for --rate / --max-latency)", "paused", o.paused_seconds)?;
    }
    // `--read-from replica…`: where each side's masters were read (keys that differed were
    // read again on the masters).
    for line in crate::ui::output::read_from_lines(&o.read_from) {
        writeln!(out, "  {line}")?;
    }
    for line in crate::ui::output::read_from_lines(&o.target_read_from) {
        writeln!(out, "  target: {line}")?;
    }
    for kind in Kind::ALL {
        let shown: Vec<_> = o.differences.iter().filter(|d| d.kind == kind).collect();
        if shown.is_empty() {
            continue;
        }
        let total = match kind {
            Kind::Missing => c.missing,
            Kind::Extra => c.extra,
            Kind::Type => c.type_,
            Kind::Content => c.content,
            Kind::Expiry => c.expiry,
        };
        writeln!(out, "{}, first {} of {}:", kind.as_str(), shown.len(), HumanCount(total))?;
        for d in shown {
            if d.key == d.other {
                writeln!(out, "  {}: {}", d.key, d.detail)?;
            } else {
                writeln!(out, "  {} → {}: {}", d.key, d.other, d.detail)?;
            }
        }
    }
    if !o.failures.is_empty() {
        writeln!(out, "failures, first {} of {}:", o.failures.len().min(10), c.failed)?;
        for f in o.failures.iter().take(10) {
            writeln!(out, "  {} on {}: {}", f.key, f.node, f.error)?;
        }
    }
    if o.interrupted {
        writeln!(out, "interrupted: stopped before the end; only the keys counted above were compared, the rest is not verified; rerun it to verify every key")?;
    } else if o.is_same() {
        writeln!(out, "the same")?;
    }
    Ok(())
}
