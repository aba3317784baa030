//! Asking before destructive work: on a terminal the user types `yes`; without a terminal
//! the command refuses unless `--yes` was given.

use std::io::{BufRead, IsTerminal, Write};

use crate::exit::CliError;

/// Returns Ok when the work may go ahead. `what` says in one line what will be done;
/// `details` (a sample of keys…) is shown only with the prompt.
pub fn confirm(what: &str, details: &[String], yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(CliError::Usage(format!(
            "refusing to {what} without a terminal to ask on: rerun with --yes (or --dry-run to look first)"
        )));
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "psor will {what}.");
    for d in details {
        let _ = writeln!(err, "  {d}");
    }
    let _ = write!(err, "Type `yes` to go ahead: ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| CliError::Usage(e.to_string()))?;
    // A Ctrl-C at the prompt (the handler keeps psor alive to report) means no.
    if answer.trim() == "yes" && !crate::interrupt::requested() {
        Ok(())
    } else {
        Err(CliError::Declined)
    }
}
