//! `psor rehearse`: the incompatible upgrade procedure on an embedded store, step by step,
//! with timings — on a sample PAC (no Redis needed: the README's first command), or on a
//! copy of a live PAC (`--from`), which is only ever read.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use psor_core::connect::{ConnectOptions, Psor, PsorSpec};
use psor_core::pac::{self, Observer, RehearsalSource, RehearseOptions, Step};
use psor_core::progress::Progress;

use super::pac_common::{catalog, outln, pac_name, print_json, print_version};
use super::{connect_to, engine_options};
use crate::args::{Global, RehearseArgs};
use crate::exit::CliError;
use crate::ui::progress::Bar;

/// Prints each step as it finishes, with a progress bar while it runs.
struct Console {
    json: bool,
    progress: bool,
    bar: Option<Bar>,
}

impl Observer for Console {
    fn start(&mut self, procedure_step: &'static str, name: &str) -> Arc<Progress> {
        let progress = crate::interrupt::progress();
        // On a terminal the step's name stands above its bar; elsewhere the done line says it all.
        if !self.json && self.progress && std::io::stderr().is_terminal() {
            eprintln!("{:>7}  {name} …", label(procedure_step));
            self.bar = Some(Bar::start(&progress, true, "done"));
        }
        progress
    }

    fn done(&mut self, step: &Step) {
        self.bar = None;
        if !self.json {
            let sim = if step.simulated { " (simulated)" } else { "" };
            // The observer cannot fail: a failed write is recorded, and `main` reports it.
            let _ = writeln!(
                crate::ui::stdout::out(),
                "{:>7}  {}{sim}  [{:.2} s]\n         {}\n         $ {}",
                label(step.procedure_step),
                step.name,
                step.seconds,
                step.summary,
                step.command
            );
        }
    }
}

fn label(procedure_step: &str) -> String {
    if procedure_step == "setup" {
        "setup".into()
    } else {
        format!("step {procedure_step}")
    }
}

pub fn run(g: &Global, a: &RehearseArgs) -> Result<i32> {
    let cat = catalog(&a.catalog)?;
    let pac = match &a.pac {
        Some(p) => pac_name(p)?,
        None => pac_name(&super::region::es_pac(g)?.unwrap_or_else(|| "MyPAC".into()))?,
    };
    let to = version(&a.to)?;
    let source = match &a.from {
        Some(spec) => RehearsalSource::Live(connect_to(g, Some(spec))?),
        None => RehearsalSource::Sample { version: version(&a.sample_version)?, keys: a.keys },
    };
    // The store: a fresh temporary file unless one is named.
    let temp = std::env::temp_dir().join(format!("psor-rehearse-{}", std::process::id()));
    let store_path = match &a.store {
        Some(p) => p.clone(),
        None => {
            std::fs::create_dir_all(&temp).map_err(|e| CliError::Usage(format!("{}: {e}", temp.display())))?;
            temp.join("psor.psnap")
        }
    };
    let backup = a.backup.clone().unwrap_or_else(|| sibling(&store_path, &format!("backup-{pac}.psnap")));
    let store_spec = PsorSpec::parse(&format!("file:{}", store_path.display()))?;
    let store = Psor::connect(&store_spec, &ConnectOptions::default())?;
    if !g.json {
        outln!("Rehearsing the incompatible upgrade of {pac} to {to} in {}", store_spec.redacted());
        if let RehearsalSource::Live(src) = &source {
            outln!("(a copy of {pac} from {}: the source is only read)", src.spec().redacted());
        }
    }
    let opts = RehearseOptions { store, pac, to, source, backup: backup.clone(), overwrite_backup: a.overwrite };
    let mut console = Console { json: g.json, progress: !g.no_progress, bar: None };
    let result = pac::rehearse(&opts, &cat, &engine_options(g), &mut console);
    drop(console);
    let cleanup = a.store.is_none() && !a.keep;
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            if cleanup {
                let _ = std::fs::remove_dir_all(&temp);
            }
            return Err(e.into());
        }
    };
    if g.json {
        print_json("rehearse", &r)?;
    } else {
        outln!("\nDone in {:.2} s. The PSOR now holds:", r.seconds);
        for p in &r.final_status.pacs {
            for v in &p.versions {
                print_version(v, "  ")?;
            }
        }
        outln!(
            "\nA real run does the same steps on the live PSOR; the timings above are this machine's, on this store."
        );
        if cleanup {
            outln!("(the rehearsal store and backup were temporary and are removed; --keep keeps them)");
        } else {
            outln!("store: {}   backup of {} {}: {}", store_path.display(), r.pac, r.from, r.backup.display());
        }
    }
    if cleanup {
        let _ = std::fs::remove_dir_all(&temp);
    }
    Ok(crate::exit::OK)
}

fn version(text: &str) -> Result<psor_core::layout::ProductVersion> {
    psor_core::layout::ProductVersion::new(text).map_err(|e| CliError::Usage(e.to_string()).into())
}

fn sibling(path: &std::path::Path, name: &str) -> PathBuf {
    path.parent().map(|d| d.join(name)).unwrap_or_else(|| PathBuf::from(name))
}
