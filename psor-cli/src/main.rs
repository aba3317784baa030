//! `psor`: parses the command line, calls [`commands::run`], and maps the result to an exit
//! code. A closed stdout (`psor scan … | head`) is success, not an error.

mod args;
mod commands;
mod exit;
mod interrupt;
mod ui;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    // Commands that only read a local file or print keep the default Ctrl-C (stop at once);
    // every command that works on a PSOR stops cleanly and reports.
    if !matches!(cli.command, args::Command::Inspect(_) | args::Command::Layouts(_) | args::Command::Completions { .. })
    {
        interrupt::install();
    }
    let json = cli.global.json;
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => exit::OK,
        Err(err) => {
            let code = exit::code_for(&err);
            let message = one_line(&err);
            if json {
                let mut v = serde_json::json!({ "error": message, "exit_code": code });
                // Ctrl-C in a command that has no partial report (export, survey, status…).
                if code == exit::INTERRUPTED && !matches!(err.downcast_ref(), Some(exit::CliError::Declined)) {
                    v["interrupted"] = true.into();
                }
                println!("{v}");
            }
            eprintln!("psor: {message}");
            code
        }
    };
    std::process::exit(code);
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
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
