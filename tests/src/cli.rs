//! Running the `psor` binary in tests: a clean environment (no `PSOR_*`, `REDISCLI_AUTH`,
//! `ES_PAC` or `ES_SCALE_OUT_REPOS_n` from the developer's shell), no standard input (so prompts refuse, as without a
//! terminal), captured output, and `--json` output parsed.
//!
//! The binary's path comes from the calling test crate (`env!("CARGO_BIN_EXE_psor")`), since
//! cargo hands it only to the crate that owns the binary.

use std::process::{Command, Output, Stdio};

/// Variables that would change what psor does.
const ENV: &[&str] = &[
    "PSOR_URL",
    "PSOR_PASSWORD",
    "REDISCLI_AUTH",
    "PSOR_PRODUCT_VERSION",
    "PSOR_LAYOUTS",
    "ES_PAC",
    "PSOR_SENTINEL_PASSWORD",
    "ES_SCALE_OUT_REPOS_1",
    "ES_SCALE_OUT_REPOS_2",
    "ES_SCALE_OUT_REPOS_3",
    "ES_SCALE_OUT_REPOS_4",
    "ES_SCALE_OUT_REPOS_5",
    "ES_SCALE_OUT_REPOS_6",
    "ES_SCALE_OUT_REPOS_7",
    "ES_SCALE_OUT_REPOS_8",
    "ES_SCALE_OUT_REPOS_9",
];

/// `bin args…` with a clean environment and no standard input.
pub fn command(bin: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args).stdin(Stdio::null());
    for var in ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// `bin --psor url --no-progress args…`, as [`command`] makes it.
pub fn command_at(bin: &str, url: &str, args: &[&str]) -> Command {
    let mut cmd = command(bin, &["--psor", url, "--no-progress"]);
    cmd.args(args);
    cmd
}

/// Writes `n` strings `{prefix}{i:06}` = `value {i}` through `con`, pipelined in chunks.
///
/// # Panics
/// If the server refuses them.
pub fn set_numbered(con: &mut dyn redis::ConnectionLike, prefix: &str, n: u64) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(5_000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("SET").arg(format!("{prefix}{i:06}")).arg(format!("value {i}")).ignore();
        }
        pipe.query::<()>(con).expect("SET pipeline");
    }
}

/// Runs `cmd`: (exit code, stdout, stderr).
///
/// # Panics
/// If the binary cannot be started.
pub fn output(cmd: &mut Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = cmd.output().expect("psor runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Parses stdout as the one JSON object psor prints with `--json`.
///
/// # Panics
/// If it is not exactly one JSON value.
pub fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"))
}
