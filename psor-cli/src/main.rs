//! `psor`: parses the command line, calls [`commands::run`], and maps the result to an exit
//! code. Everything on stdout goes through [`ui::stdout`]: a closed stdout (`psor scan … |
//! head`) is success, not an error, and any other stdout failure is one line and exit 1.
//! With `--json` anywhere on the command line (also among `caspac`'s arguments), every
//! outcome is one JSON object on stdout, usage errors from clap included.

mod alloc;
mod args;
mod commands;
mod exit;
mod interrupt;
mod ui;

use std::ffi::OsString;
use std::io::{ErrorKind, Write};

use clap::error::ErrorKind as ClapKind;
use clap::Parser;

use crate::ui::stdout;

fn main() {
    alloc::tune();
    let argv: Vec<OsString> = std::env::args_os().collect();
    // Detected in argv rather than from the parsed flags, so that it holds when parsing
    // fails and when it is written among caspac's arguments (`caspac -aRemOldPAC=P --json`).
    let json = argv.iter().skip(1).any(|a| a == "--json");
    // `reported`: the run ended in an error that is already reported (stderr, and JSON when
    // asked); a stdout failure after that (the JSON line could not be written) keeps its code.
    let (code, reported) = match args::Cli::try_parse_from(&argv) {
        Ok(cli) => {
            // Commands that only read a local file or print keep the default Ctrl-C (stop at
            // once); every command that works on a PSOR stops cleanly and reports.
            if !matches!(
                cli.command,
                args::Command::Inspect(_) | args::Command::Layouts(_) | args::Command::Completions { .. }
            ) {
                interrupt::install();
            }
            match commands::run(cli) {
                Ok(code) => (code, false),
                // The error came from writing to stdout: decided below from what the write said.
                Err(_) if stdout::failure().is_some() => (exit::FAILED, false),
                Err(err) => {
                    // Ctrl-C in a command that has no partial report (export, survey, status…).
                    let interrupted = !matches!(err.downcast_ref(), Some(exit::CliError::Declined));
                    (failed(json, exit::code_for(&err), &one_line(&err), interrupted), true)
                }
            }
        }
        Err(e) if matches!(e.kind(), ClapKind::DisplayHelp | ClapKind::DisplayVersion) => e.exit(),
        Err(e) => {
            let code = e.exit_code();
            if json {
                json_error(&clap_message(&e), code);
            }
            // clap's own rendering (with usage) on stderr, as without --json.
            let _ = e.print();
            (code, true)
        }
    };
    stdout::flush();
    let code = match stdout::failure() {
        Some((kind, text)) if reported => {
            if kind != ErrorKind::BrokenPipe {
                eprintln!("psor: writing to stdout: {text}");
            }
            code
        }
        None if reported => code,
        // The reader went away (`| head`): what it wanted it got; end quietly.
        Some((ErrorKind::BrokenPipe, _)) => exit::OK,
        Some((_, text)) => {
            eprintln!("psor: writing to stdout: {text}");
            exit::FAILED
        }
        None => code,
    };
    std::process::exit(code);
}

/// Reports a run that ended in an error: one line on stderr, and with `--json` one object
/// on stdout. Returns `code`.
fn failed(json: bool, code: i32, message: &str, not_declined: bool) -> i32 {
    if json {
        let mut v = serde_json::json!({ "error": message, "exit_code": code });
        if code == exit::INTERRUPTED && not_declined {
            v["interrupted"] = true.into();
        }
        let _ = stdout::out().write_all(format!("{v}\n").as_bytes());
    }
    eprintln!("psor: {message}");
    code
}

fn json_error(message: &str, code: i32) {
    let line = format!("{}\n", serde_json::json!({ "error": message, "exit_code": code }));
    let _ = stdout::out().write_all(line.as_bytes());
}

/// clap's error as one line: its first paragraph without `error: ` (the usage that
/// follows is for people, on stderr).
fn clap_message(e: &clap::Error) -> String {
    if e.kind() == ClapKind::DisplayHelpOnMissingArgumentOrSubcommand {
        return "no command given: see `psor --help`".into();
    }
    let text = e.render().to_string();
    let para: Vec<&str> =
        text.lines().skip_while(|l| l.trim().is_empty()).take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    let line = para.join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    if line.is_empty() {
        "bad usage: see `psor --help`".into()
    } else {
        line.to_string()
    }
}

/// The error and its causes on one line, outermost first, leaving out a cause whose text
/// the line already holds (library errors often repeat their source in their message).
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        for part in text.split(": ") {
            if !line.contains(part) {
                if !line.is_empty() {
                    line.push_str(": ");
                }
                line.push_str(part);
            }
        }
    }
    line.replace('\n', " ")
}
