//! `psor layouts`: the catalog in force, versions → layouts → epochs → stores.

use anyhow::Result;

use super::pac_common::{catalog, outln, print_json};
use crate::args::{Global, LayoutsArgs};

pub fn run(g: &Global, a: &LayoutsArgs) -> Result<i32> {
    let cat = catalog(&a.catalog)?;
    if g.json {
        let entries: Vec<_> = cat.entries().collect();
        print_json(
            "layouts",
            &serde_json::json!({
                "catalog": cat.name(), "reference": cat.is_reference(), "sources": cat.sources(),
                "key_prefix": cat.key_template().to_string(), "versions": entries, "layouts": cat.layouts(),
            }),
        )?;
        return Ok(crate::exit::OK);
    }
    outln!("catalog {} (from {}), key prefix {}", cat.name(), cat.sources().join(" + "), cat.key_template());
    if cat.is_reference() {
        outln!("  REFERENCE catalog: not the vendor's layout; supply your own with --layouts FILE (docs/layouts.md)");
    }
    for e in cat.entries() {
        outln!("version {:<10} → layout {:<10} epoch {}", e.matches.to_string(), e.layout.name, e.layout.epoch);
    }
    for l in cat.layouts() {
        outln!(
            "layout {} (epoch {}){}",
            l.name,
            l.epoch,
            if l.description.is_empty() { String::new() } else { format!(": {}", l.description) }
        );
        for s in &l.stores {
            let upgrade = match &s.upgrade {
                psor_core::layout::Upgrade::Fresh => "fresh".to_string(),
                psor_core::layout::Upgrade::Carry { transform, from_store: Some(f) } => {
                    format!("carry {transform} from {f}")
                }
                psor_core::layout::Upgrade::Carry { transform, .. } => format!("carry {transform}"),
            };
            outln!(
                "    {:<10} {:<10} {:<7} {:<16} {:<7} {}",
                s.name,
                s.sub_prefix.as_str(),
                s.redis_type.as_str(),
                s.role.as_str(),
                match s.placement {
                    psor_core::layout::Placement::Tagged => "tagged",
                    psor_core::layout::Placement::Spread => "spread",
                },
                upgrade
            );
        }
    }
    Ok(crate::exit::OK)
}
