//! `psor scan`: list or count the keys under a prefix.

use std::io::Write;

use anyhow::Result;
use psor_core::engine;
use psor_core::keys::{display_key, KeyPrefix};

use super::{connect, engine_options, new_progress};
use crate::args::{Global, ScanArgs};
use crate::ui::progress::Bar;

pub fn run(g: &Global, a: &ScanArgs) -> Result<i32> {
    let prefix = KeyPrefix::parse_escaped(&a.prefix)?;
    let psor = connect(g)?;
    let progress = new_progress();
    let started = std::time::Instant::now();
    let bar = Bar::start(&progress, !g.no_progress, "listed");
    let stream = engine::scan(&psor, &prefix, &engine_options(g), progress.clone())?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, crate::ui::stdout::out());
    let sep: &[u8] = if a.null { b"\0" } else { b"\n" };
    let mut count: u64 = 0;
    let mut first = true;
    if g.json && !a.count_only {
        out.write_all(b"{\"keys\":[")?;
    }
    for batch in stream {
        for key in batch? {
            count += 1;
            if a.count_only {
                continue;
            }
            if g.json {
                if !first {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut out, &display_key(&key))?;
            } else if g.raw || a.null {
                // `-0` is for `xargs -0`, which wants the keys' own bytes, not escapes.
                out.write_all(&key)?;
                out.write_all(sep)?;
            } else {
                out.write_all(display_key(&key).as_bytes())?;
                out.write_all(sep)?;
            }
            first = false;
        }
    }
    drop(bar);
    let seconds = started.elapsed().as_secs_f64();
    if g.json {
        if a.count_only {
            out.write_all(b"{")?;
        } else {
            out.write_all(b"],")?;
        }
        let mut tail = serde_json::json!({ "operation": "scan", "psor": psor.spec().redacted(),
            "prefix": prefix.to_string(), "matched": count, "seconds": seconds });
        super::region::add_source(&mut tail);
        // Splice the closing fields into the streamed object.
        let tail = tail.to_string();
        out.write_all(&tail.as_bytes()[1..])?;
        out.write_all(b"\n")?;
    } else if a.count_only {
        writeln!(out, "{count}")?;
    }
    out.flush()?;
    Ok(crate::exit::OK)
}
