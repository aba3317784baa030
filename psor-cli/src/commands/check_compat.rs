//! `psor check-compat PAC --product-version V` (`caspac -aCheckCompat`): which upgrade
//! process applies. Exit 0 compatible, 4 incompatible, 5 unknown PAC or version.

use anyhow::Result;
use psor_core::pac;

use super::pac_common::{catalog, outln, pac_name, print_json, product_version};
use super::{connect, engine_options, new_progress};
use crate::args::{CheckCompatArgs, Global};

pub fn run(g: &Global, a: &CheckCompatArgs) -> Result<i32> {
    let cat = catalog(&a.catalog)?;
    let pac = pac_name(&a.pac)?;
    let v = product_version(&a.product)?;
    let psor = connect(g)?;
    let r = pac::check_compat(&psor, &cat, &pac, &v, &engine_options(g), new_progress())?;
    if g.json {
        print_json("check-compat", &r)?;
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
    }
    Ok(if r.compatible { crate::exit::OK } else { crate::exit::INCOMPATIBLE })
}
