//! One file per command. Each turns its clap arguments into psor-core options, calls the
//! library, and prints the report; `run` dispatches and returns the exit code.

mod copy;
mod delete;
mod export;
mod import;
mod inspect;
mod scan;
mod survey;
mod verify;

// The PAC lifecycle (issue 4).
mod caspac;
mod check_compat;
mod create;
mod init_pac;
mod layouts;
mod pac_common;
mod region;
mod rehearse;
mod rem_old_pac;
mod sample;
mod set_mode;
mod status;

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use clap::CommandFactory;
use psor_core::connect::{ConnectOptions, Psor, PsorSpec, ReadFrom, Secret};
use psor_core::engine::{EngineOptions, Pacing};
use psor_core::progress::Progress;

use crate::args::{Cli, Command, Global};
use crate::exit::CliError;
pub use region::add_source;

/// Runs the command; returns the exit code of a run that finished.
pub fn run(cli: Cli) -> Result<i32> {
    let g = &cli.global;
    match &cli.command {
        Command::Scan(a) => scan::run(g, a),
        Command::Delete(a) => delete::run(g, a),
        Command::Copy(a) => copy::run(g, a),
        Command::Export(a) => export::run(g, a),
        Command::Import(a) => import::run(g, a),
        Command::Inspect(a) => inspect::run(g, a),
        Command::Survey(a) => survey::run(g, a),
        Command::Verify(a) => verify::run(g, a),
        Command::Layouts(a) => layouts::run(g, a),
        Command::Status(a) => status::run(g, a),
        Command::Rehearse(a) => rehearse::run(g, a),
        Command::InitPac(a) => init_pac::run(g, a),
        Command::CheckCompat(a) => check_compat::run(g, a),
        Command::Create(a) => create::run(g, a),
        Command::SetMode(a) => set_mode::run(g, a),
        Command::RemOldPac(a) => rem_old_pac::run(g, a),
        Command::Sample(a) => sample::run(g, a),
        Command::Caspac(a) => caspac::run(g, a),
        Command::Completions { shell } => {
            // Generated into memory (clap_complete panics on a failed write), then written once.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "psor", &mut script);
            crate::ui::stdout::write_all(&script)?;
            Ok(crate::exit::OK)
        }
    }
}

/// The PSOR spec from `--psor` / `PSOR_URL`.
fn spec_from(text: Option<&str>) -> Result<PsorSpec> {
    let text = text.ok_or_else(|| {
        CliError::Usage(format!(
            "no PSOR given: use --psor SPEC, set PSOR_URL, or run where ES_SCALE_OUT_REPOS_n marks a SOR TMP \
             (or give --es-env FILE) ({})",
            psor_core::connect::ACCEPTED_FORMS
        ))
    })?;
    Ok(PsorSpec::parse(text)?)
}

/// The PSOR's spec and, when it came from the region's configuration, its SOR: `--psor`,
/// `PSOR_URL`, then the SOR marked TMP in `--es-env FILE` or `ES_SCALE_OUT_REPOS_n`.
fn resolve_psor(g: &Global) -> Result<(PsorSpec, Option<psor_core::connect::SorEntry>)> {
    if g.psor.is_some() {
        return Ok((spec_from(g.psor.as_deref())?, None));
    }
    match region::load_sors(g)? {
        Some(env) => {
            let sor = env.psor()?.clone();
            Ok((sor.spec(), Some(sor)))
        }
        None => Ok((spec_from(None)?, None)),
    }
}

/// Where the password for a spec comes from.
enum PasswordSource<'a> {
    /// `--password-file FILE` (its first line).
    File(&'a Path),
    /// The URL's own (it stays in the spec).
    Url,
    /// `PSOR_PASSWORD` or `REDISCLI_AUTH`, by name.
    Env(&'static str),
}

impl PasswordSource<'_> {
    /// How an error names it.
    fn label(&self) -> &'static str {
        match self {
            PasswordSource::File(_) => "--password-file",
            PasswordSource::Url => "the URL",
            PasswordSource::Env(name) => name,
        }
    }
}

/// Where the password for `spec` comes from, first match wins: --password-file, the URL,
/// PSOR_PASSWORD, REDISCLI_AUTH; `None` when there is none.
fn password_source<'a>(g: &'a Global, spec: &PsorSpec) -> Option<PasswordSource<'a>> {
    if let Some(path) = &g.password_file {
        return Some(PasswordSource::File(path));
    }
    if spec.password.is_some() {
        return Some(PasswordSource::Url);
    }
    // A PSOR_PASSWORD that is set but empty means no password (REDISCLI_AUTH is not read).
    let (name, value) = match std::env::var("PSOR_PASSWORD") {
        Ok(v) => ("PSOR_PASSWORD", v),
        Err(_) => ("REDISCLI_AUTH", std::env::var("REDISCLI_AUTH").ok()?),
    };
    (!value.is_empty()).then_some(PasswordSource::Env(name))
}

/// Connection options from the global flags and the environment, the password from
/// [`password_source`] (a URL's own password stays in the spec).
fn connect_options(g: &Global, spec: &PsorSpec) -> Result<ConnectOptions> {
    let password = match password_source(g, spec) {
        Some(PasswordSource::File(path)) => Some(read_password_file(path)?),
        Some(PasswordSource::Env(name)) => std::env::var(name).ok().map(Secret::new),
        Some(PasswordSource::Url) | None => None,
    };
    let sentinel_password = match &g.sentinel_password_file {
        Some(path) => Some(read_password_file(path)?),
        None => std::env::var("PSOR_SENTINEL_PASSWORD").ok().filter(|p| !p.is_empty()).map(Secret::new),
    };
    Ok(ConnectOptions {
        password,
        sentinel_username: g.sentinel_user.clone(),
        sentinel_password,
        tls_ca: g.tls_ca.clone(),
        tls_cert: g.tls_cert.clone(),
        tls_key: g.tls_key.clone(),
        tls_insecure: g.tls_insecure,
        connect_timeout: std::time::Duration::from_secs(g.connect_timeout),
        read_timeout: std::time::Duration::from_secs(g.timeout),
        ..ConnectOptions::default()
    })
}

fn read_password_file(path: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| psor_core::Error::ReadFile { path: path.to_path_buf(), source })?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(CliError::Usage(format!("{}: the password file is empty", path.display())).into());
    }
    Ok(Secret::new(line))
}

/// The server's product and versions for `--json` reports: `{"product": "valkey",
/// "version": "9.1.2", "redis_version": "7.2.4", "rdb_version": 80, "name": "Valkey 9.1.2"}`.
fn server_json(s: &psor_core::connect::ServerInfo) -> serde_json::Value {
    serde_json::json!({
        "product": s.product,
        "version": s.version.to_string(),
        "redis_version": s.redis_version.to_string(),
        "rdb_version": s.rdb_version(),
        "name": s.to_string(),
    })
}

/// Connects to the PSOR named by the global flags (or the region's configuration: see
/// [`resolve_psor`]).
fn connect(g: &Global) -> Result<Psor> {
    let (spec, sor) = resolve_psor(g)?;
    let opts = connect_options(g, &spec)?;
    match &sor {
        Some(sor) => {
            region::note_source(sor);
            // For Sentinels (a node list or a single one), the SOR's name names the master.
            psor_core::connect::connect_sor(sor, &opts).map_err(|e| connect_failed(g, &spec, e))
        }
        None => Psor::connect(&spec, &opts).map_err(|e| connect_failed(g, &spec, e)),
    }
}

/// Connects to `spec_text` with the global TLS and password options.
fn connect_to(g: &Global, spec_text: Option<&str>) -> Result<Psor> {
    let spec = spec_from(spec_text)?;
    let opts = connect_options(g, &spec)?;
    Psor::connect(&spec, &opts).map_err(|e| connect_failed(g, &spec, e))
}

/// A failed connection, named by its spec; a refusal for want of the right credentials also
/// says which credentials psor sent, where the password came from, and how to give one.
fn connect_failed(g: &Global, spec: &PsorSpec, e: psor_core::Error) -> anyhow::Error {
    let hint = if e.is_auth_refusal() {
        let user = spec.username.as_deref();
        match (user, password_source(g, spec)) {
            (Some(user), None) => format!(
                " (user `{user}` with no password, sent as AUTH {user} \"\", which only a nopass user \
                 accepts: give its password in the URL, redis://{user}:PASSWORD@HOST:PORT, with \
                 --password-file FILE, or in PSOR_PASSWORD)"
            ),
            (None, None) => " (no password was given: give it with --password-file FILE, in the URL \
                 or in PSOR_PASSWORD, and the ACL user in the URL, redis://USER@HOST:PORT)"
                .to_string(),
            (user, Some(source)) => format!(
                " (the server refused {} with the password from {}; the password sources are, first match \
                 wins: --password-file, the URL, PSOR_PASSWORD, REDISCLI_AUTH)",
                user.map_or("the default user".to_string(), |u| format!("user `{u}`")),
                source.label()
            ),
        }
    } else {
        String::new()
    };
    anyhow::Error::new(e).context(format!("connecting to {}{hint}", spec.redacted()))
}

/// The prefix given with `flag`; an empty one is refused naming that flag (the library's
/// own message cannot know which flag the text came from).
fn prefix_arg(flag: &str, text: &str) -> Result<psor_core::keys::KeyPrefix> {
    if text.is_empty() {
        return Err(CliError::Usage(format!(
            "{flag} is empty: an empty prefix selects every key in the database; give a non-empty {flag}"
        ))
        .into());
    }
    Ok(psor_core::keys::KeyPrefix::parse_escaped(text)?)
}

/// The placement warnings for the region's configuration (none without one), checked
/// against the connected PSOR. The SORs are opened with the PSOR's password and TLS settings.
fn placement(g: &Global, psor: &Psor) -> Result<Vec<psor_core::pac::PlacementWarning>> {
    let Some(env) = region::load_sors(g)? else { return Ok(Vec::new()) };
    env.psor()?;
    let mut opts = connect_options(g, psor.spec())?;
    if opts.password.is_none() {
        opts.password = psor.spec().password.clone();
    }
    Ok(psor_core::pac::placement_check(psor, &env, &opts))
}

fn engine_options(g: &Global) -> EngineOptions {
    EngineOptions {
        scan_count: g.tuning.scan_count as usize,
        batch_size: g.tuning.batch as usize,
        writers: g.tuning.writers as usize,
        pacing: Pacing { rate: g.tuning.rate, max_latency: g.tuning.max_latency.map(std::time::Duration::from_millis) },
        // clap allows only the names `ReadFrom::parse` knows.
        read_from: ReadFrom::parse(&g.read_from).unwrap_or_default(),
        replica_wait: std::time::Duration::from_secs(g.replica_wait),
        ..EngineOptions::default()
    }
}

/// Counters for one run, stopped by the first Ctrl-C (see [`crate::interrupt`]).
fn new_progress() -> Arc<Progress> {
    crate::interrupt::progress()
}

/// A snapshot error as the CLI reports it: bad input (a damaged, truncated, foreign or newer
/// file; a refused request) becomes usage (exit 2); Redis failures keep their core error so
/// `exit::code_for` decides as for every other command.
fn snapshot_error(e: psor_core::snapshot::Error) -> anyhow::Error {
    match e {
        psor_core::snapshot::Error::Core(core) => core.into(),
        e if e.is_usage() => CliError::Usage(e.to_string()).into(),
        e => e.into(),
    }
}
