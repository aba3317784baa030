//! `psor check-compat PAC --product-version V` (`caspac -aCheckCompat`): which upgrade
//! process applies. Exit 0 compatible, 4 incompatible, 5 unknown PAC or version.

use anyhow::Result;
use psor_core::pac;

use super::pac_common::{catalog, outln, pac_or_es_pac, print_json, product_version};
use super::{connect, engine_options, new_progress, placement};
use crate::args::{CheckCompatArgs, Global};

pub fn run(g: &Global, a: &CheckCompatArgs) -> Result<i32> {
    let cat = catalog(&a.catalog)?;
    let pac = pac_or_es_pac(g, a.pac.as_deref())?;
    let v = product_version(&a.product)?;
    let psor = connect(g)?;
    let r = pac::check_compat(&psor, &cat, &pac, &v, &engine_options(g), new_progress())?;
    // The procedure's placement rule, before an upgrade starts: a warning, not an exit code.
    let placement = placement(g, &psor)?;
    if g.json {
        let mut v = serde_json::to_value(&r)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("placement_warnings".into(), serde_json::to_value(&placement)?);
        }
        print_json("check-compat", &v)?;
    } else {
        let mode = r.current.mode.map(|m| format!(", mode {m}")).unwrap_or_default();
        outln!(
            "PAC {}: version {} (layout {}, epoch {}{mode})",
            r.pac,
            r.current.version,
            r.current.layout,
            r.current.epoch
        );
        outln!("product version {}: layout {}, epoch {}", r.product.version, r.product.layout, r.product.epoch);
        if r.compatible {
            outln!("COMPATIBLE: use the compatible upgrade process (upgrade host by host; no new stores)");
        } else {
            outln!(
                "INCOMPATIBLE: use the incompatible upgrade process (`psor create {} --product-version {}`, then set-mode, rem-old-pac)",
                r.pac, r.product.version
            );
        }
        for w in &placement {
            let kind = serde_json::to_value(w.kind)?;
            outln!("WARNING {} ({}, {}): {}", kind.as_str().unwrap_or("?"), w.var, w.origin, w.message);
            outln!("  what to do: {}", w.action);
        }
    }
    Ok(if r.compatible { crate::exit::OK } else { crate::exit::INCOMPATIBLE })
}
