//! `psor status [PAC]`: the PACs in the PSOR, their versions, modes, regions (with their
//! product versions), per store keys, estimated bytes, types and TTLs; then the orphans and
//! warnings, each with what to do. Exit 7 when there are any (see `exit::FINDINGS`).

use std::time::Duration;

use anyhow::Result;
use indicatif::{HumanBytes, HumanCount, HumanDuration};
use psor_core::pac::{self, PlacementWarning, StatusOptions, StatusReport, StoreCount, VersionStatus};

use super::pac_common::{catalog, mode_text, outln, pac_name, print_json};
use super::{connect, engine_options, new_progress, placement};
use crate::args::{Global, StatusArgs};
use crate::exit::CliError;
use crate::ui::progress::Bar;

pub fn run(g: &Global, a: &StatusArgs) -> Result<i32> {
    let cat = catalog(&a.catalog)?;
    let given = match &a.pac {
        Some(p) => Some(p.clone()),
        None => super::region::es_pac(g)?,
    };
    let pac = given.as_deref().map(pac_name).transpose()?;
    if !(a.upgrade_warn_hours.is_finite() && a.upgrade_warn_hours >= 0.0) {
        return Err(
            CliError::Usage(format!("--upgrade-warn-hours {} is not a number of hours", a.upgrade_warn_hours)).into()
        );
    }
    let sopts = StatusOptions {
        detail: !a.no_types,
        sample_every: a.sample_every,
        upgrade_warn_ms: (a.upgrade_warn_hours * 3_600_000.0) as u64,
        ..StatusOptions::default()
    };
    let psor = connect(g)?;
    let progress = new_progress();
    let bar = Bar::start(&progress, !g.no_progress, "PAC keys");
    let report = pac::status_with(&psor, &cat, pac.as_ref(), &sopts, &engine_options(g), progress)?;
    drop(bar);
    if let Some(p) = &pac {
        if report.pacs.is_empty() {
            return Err(pac::Error::UnknownPac { pac: p.clone(), known: Vec::new() }.into());
        }
    }
    let placement = placement(g, &psor)?;
    let findings = report.has_findings() || !placement.is_empty();
    let code = if findings { crate::exit::FINDINGS } else { crate::exit::OK };
    if g.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("placement".into(), serde_json::to_value(&placement)?);
            obj.insert("server".into(), super::server_json(&psor.server()));
        }
        print_json("status", &v)?;
        return Ok(code);
    }
    print_table(&format!("{} ({})", psor.spec().redacted(), psor.server()), &report, &placement)?;
    Ok(code)
}

/// The placement warnings, for status and check-compat tables.
pub(crate) fn print_placement(placement: &[PlacementWarning]) -> Result<()> {
    if placement.is_empty() {
        return Ok(());
    }
    outln!("");
    outln!("placement warnings ({}):", placement.len());
    for w in placement {
        let kind = serde_json::to_value(w.kind)?;
        outln!("  {:<22} {} ({}): {}", kind.as_str().unwrap_or("?"), w.var, w.origin, w.message);
        outln!("      what to do: {}", w.action);
    }
    Ok(())
}

fn print_table(psor: &str, r: &StatusReport, placement: &[PlacementWarning]) -> Result<()> {
    outln!("{psor}: {} PAC(s), {} PAC keys of {} keys", r.pacs.len(), HumanCount(r.pac_keys), HumanCount(r.total_keys));
    for line in crate::ui::output::read_from_lines(&r.read_from) {
        outln!("{line}");
    }
    match r.sample_every {
        0 => outln!("bytes not measured (--sample-every 0)"),
        1 => outln!("bytes measured on every key"),
        k => outln!("bytes (~) estimated: MEMORY USAGE on 1 key in {k}, and on one key of each store that had none"),
    }
    for p in &r.pacs {
        outln!("");
        outln!("{}", p.pac);
        for v in &p.versions {
            print_version(v, r.detail)?;
        }
    }
    if !r.orphans.is_empty() {
        outln!("");
        outln!("orphans ({}):", r.orphans.len());
        for o in &r.orphans {
            let kind = serde_json::to_value(o.kind)?;
            outln!(
                "  {:<16} {} {:<10} {:<32} {:>8} keys",
                kind.as_str().unwrap_or("?"),
                o.pac,
                o.version,
                o.prefix,
                HumanCount(o.keys)
            );
            outln!("      what to do: {}", o.action);
        }
    }
    if !r.warnings.is_empty() {
        outln!("");
        outln!("warnings ({}):", r.warnings.len());
        for w in &r.warnings {
            let kind = serde_json::to_value(w.kind)?;
            outln!("  {:<20} {} {:<10} {}", kind.as_str().unwrap_or("?"), w.pac, w.version, w.message);
            outln!("      what to do: {}", w.action);
        }
    }
    print_placement(placement)?;
    if !r.has_findings() && placement.is_empty() {
        outln!("");
        outln!("no orphans, no warnings");
    }
    Ok(())
}

fn bytes_text(b: Option<u64>, exact: bool) -> String {
    match b {
        None => "-".into(),
        Some(b) => format!("{}{}", if exact { "" } else { "~" }, HumanBytes(b)),
    }
}

fn print_version(v: &VersionStatus, detail: bool) -> Result<()> {
    let layout = v.layout.as_deref().unwrap_or("(version not in catalog)");
    let exact = v.stores.iter().all(|s| s.sampled_keys == s.keys);
    outln!(
        "  {:<10} {:<28} layout {:<10} {:>10} keys {:>12}",
        v.version,
        mode_text(v),
        layout,
        HumanCount(v.keys).to_string(),
        bytes_text(v.bytes, exact)
    );
    let regions = if v.region_count == 0 {
        "none".to_string()
    } else if detail && !v.region_versions.is_empty() {
        let rs: Vec<String> = v
            .region_versions
            .iter()
            .map(|r| format!("{} {}", r.region, r.product_version.as_deref().unwrap_or("(no version record)")))
            .collect();
        format!("{} ({})", v.region_count, rs.join(", "))
    } else {
        format!("{} ({})", v.region_count, v.regions.join(", "))
    };
    outln!("    regions: {regions}");
    if let Some(e) = &v.record_error {
        outln!("    record: {e}");
    }
    outln!("    {:<14} {:<36} {:>10} {:>12}  {:<28} ttl", "store", "prefix", "keys", "bytes", "types");
    for s in &v.stores {
        outln!(
            "    {:<14} {:<36} {:>10} {:>12}  {:<28} {}",
            if s.known { s.store.clone() } else { format!("{} (?)", s.store) },
            s.prefix,
            HumanCount(s.keys).to_string(),
            bytes_text(s.bytes, s.sampled_keys == s.keys),
            types_text(s),
            ttl_text(s)
        );
    }
    Ok(())
}

fn types_text(s: &StoreCount) -> String {
    if s.types.is_empty() {
        return "-".into();
    }
    s.types.iter().map(|(t, n)| format!("{t}:{n}")).collect::<Vec<_>>().join(" ")
}

fn ttl_text(s: &StoreCount) -> String {
    match &s.ttl {
        None => "-".into(),
        Some(t) if t.expiring == 0 => "none".into(),
        Some(t) => {
            let soonest = t.soonest_ms.map(|ms| HumanDuration(Duration::from_millis(ms.max(0) as u64)).to_string());
            format!("{} expiring, soonest in {}", t.expiring, soonest.unwrap_or_else(|| "?".into()))
        }
    }
}
