//! `psor caspac ARGS...`: the vendor's own syntax, so existing runbooks keep working.
//!
//! `-aInitPac=P`, `-aCheckCompat=P`, `-aSetMode=Running|Quiesce`, `-aRemOldPAC=P` and
//! `-s<sorType>,<host>:<port>[,...]` are mapped onto `init-pac`, `check-compat`,
//! `set-mode` and `rem-old-pac`. As in the procedure, `-aSetMode` names no PAC and no
//! version: the PAC comes from `ES_PAC` (the region's environment) and the version from
//! `--product-version` / `PSOR_PRODUCT_VERSION` (the installed product).

use anyhow::Result;

use crate::args::{CaspacArgs, CheckCompatArgs, Global, InitPacArgs, RemOldPacArgs, SetModeArgs};
use crate::exit::CliError;

/// A caspac action, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// `-aInitPac=P`
    InitPac(String),
    /// `-aCheckCompat=P`
    CheckCompat(String),
    /// `-aSetMode=Running|Quiesce`
    SetMode(String),
    /// `-aRemOldPAC=P`
    RemOldPac(String),
}

/// Parses caspac arguments into the action and the `-s` PSOR spec (if given).
pub fn parse(args: &[String]) -> Result<(Action, Option<String>), CliError> {
    let usage = |m: String| {
        CliError::Usage(format!(
            "{m}; psor caspac takes -aInitPac=PAC, -aCheckCompat=PAC, -aSetMode=Running|Quiesce, -aRemOldPAC=PAC \
             and -s<sorType>,<host>:<port>[,...]"
        ))
    };
    let (mut action, mut spec) = (None, None);
    for arg in args {
        if let Some(s) = arg.strip_prefix("-s") {
            if s.is_empty() || spec.replace(s.to_owned()).is_some() {
                return Err(usage(format!("bad or repeated -s in `{arg}`")));
            }
        } else if let Some(a) = arg.strip_prefix("-a") {
            let (name, value) = a.split_once('=').unwrap_or((a, ""));
            let need = |what: &str| {
                if value.is_empty() {
                    Err(usage(format!("`{arg}` needs ={what}")))
                } else {
                    Ok(value.to_owned())
                }
            };
            let parsed = match name.to_ascii_lowercase().as_str() {
                "initpac" => Action::InitPac(need("PAC")?),
                "checkcompat" => Action::CheckCompat(need("PAC")?),
                "setmode" => Action::SetMode(need("Running|Quiesce")?),
                "remoldpac" => Action::RemOldPac(need("PAC")?),
                _ => return Err(usage(format!("caspac action `{arg}` is not supported"))),
            };
            if action.replace(parsed).is_some() {
                return Err(usage("give one -a action".into()));
            }
        } else {
            return Err(usage(format!("unknown caspac argument `{arg}`")));
        }
    }
    let action = action.ok_or_else(|| usage("no -a action".into()))?;
    Ok((action, spec))
}

/// psor's own flags written among the caspac arguments (`caspac -aInitPac=P --yes`): a
/// caspac argument starts with one dash, psor's with two.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mixed {
    yes: bool,
    json: bool,
    dry_run: bool,
    force: bool,
    no_progress: bool,
    product_version: Option<String>,
    layouts: Option<String>,
}

/// Splits `args` into caspac arguments and psor's own flags.
pub fn split_mixed(args: &[String]) -> Result<(Vec<String>, Mixed), CliError> {
    let (mut rest, mut m) = (Vec::new(), Mixed::default());
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |flag: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| CliError::Usage(format!("{flag} needs a value")))
        };
        match name {
            "--yes" | "-y" => m.yes = true,
            "--json" => m.json = true,
            "--dry-run" | "-n" => m.dry_run = true,
            "--force" => m.force = true,
            "--no-progress" => m.no_progress = true,
            "--product-version" => m.product_version = Some(value(name)?),
            "--layouts" => m.layouts = Some(value(name)?),
            n if n.starts_with("--") => {
                return Err(CliError::Usage(format!(
                    "`{arg}` is not accepted among caspac arguments; put it before `caspac`"
                )))
            }
            _ => rest.push(arg.clone()),
        }
    }
    Ok((rest, m))
}

pub fn run(g: &Global, a: &CaspacArgs) -> Result<i32> {
    let (args, mixed) = split_mixed(&a.args)?;
    let (action, spec) = parse(&args)?;
    let mut g = g.clone();
    if let Some(spec) = spec {
        g.psor = Some(spec);
    }
    g.yes |= mixed.yes;
    g.json |= mixed.json;
    g.no_progress |= mixed.no_progress;
    let mut a = CaspacArgs {
        product: a.product.clone(),
        catalog: a.catalog.clone(),
        dry_run: a.dry_run || mixed.dry_run,
        force: a.force || mixed.force,
        args: Vec::new(),
    };
    if mixed.product_version.is_some() {
        a.product.product_version = mixed.product_version;
    }
    if let Some(l) = mixed.layouts {
        a.catalog.layouts = Some(l.into());
    }
    let (product, catalog) = (a.product.clone(), a.catalog.clone());
    match action {
        Action::InitPac(pac) => super::init_pac::run(
            &g,
            &InitPacArgs { pac: Some(pac), product, catalog, dry_run: a.dry_run, force: a.force },
        ),
        Action::CheckCompat(pac) => super::check_compat::run(&g, &CheckCompatArgs { pac: Some(pac), product, catalog }),
        Action::SetMode(mode) => {
            let pac = super::region::es_pac(&g)?.ok_or_else(|| {
                CliError::Usage(
                    "-aSetMode names no PAC: set ES_PAC to the PAC's name, as in the region's environment (or give \
                     --es-env FILE with an ES_PAC line)"
                        .into(),
                )
            })?;
            super::set_mode::run(
                &g,
                &SetModeArgs { pac: Some(pac), mode: Some(mode), product, catalog, dry_run: a.dry_run },
            )
        }
        Action::RemOldPac(pac) => super::rem_old_pac::run(
            &g,
            &RemOldPacArgs {
                pac: Some(pac),
                catalog,
                dry_run: a.dry_run,
                force: a.force,
                backup: None,
                overwrite: false,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_procedure_lines() {
        assert_eq!(
            parse(&args(&["-aCheckCompat=MyPAC", "-sredis,h:6379"])).unwrap(),
            (Action::CheckCompat("MyPAC".into()), Some("redis,h:6379".into()))
        );
        assert_eq!(parse(&args(&["-aSetMode=Running"])).unwrap(), (Action::SetMode("Running".into()), None));
        assert_eq!(
            parse(&args(&["-sredis_TLS,a:1,b:2", "-aremoldpac=P"])).unwrap(),
            (Action::RemOldPac("P".into()), Some("redis_TLS,a:1,b:2".into()))
        );
        assert!(matches!(parse(&args(&["-aLoad=x"])), Err(CliError::Usage(_))));
        assert!(matches!(parse(&args(&["-aInitPac"])), Err(CliError::Usage(_))));
        assert!(matches!(parse(&args(&["-sredis,h:1"])), Err(CliError::Usage(_))));
        assert!(matches!(parse(&args(&["-aInitPac=P", "-aRemOldPAC=P"])), Err(CliError::Usage(_))));
        assert!(matches!(parse(&args(&["MyPAC"])), Err(CliError::Usage(_))));
    }

    #[test]
    fn psor_flags_among_caspac_arguments_are_psor_s() {
        let (rest, m) = split_mixed(&args(&[
            "-aInitPac=P",
            "--yes",
            "--product-version",
            "9.0",
            "-sredis,h:1",
            "--layouts=f.toml",
        ]))
        .unwrap();
        assert_eq!(rest, args(&["-aInitPac=P", "-sredis,h:1"]));
        assert!(m.yes && !m.force);
        assert_eq!((m.product_version.as_deref(), m.layouts.as_deref()), (Some("9.0"), Some("f.toml")));
        assert!(matches!(split_mixed(&args(&["--product-version"])), Err(CliError::Usage(_))));
        assert!(matches!(split_mixed(&args(&["--psor", "x"])), Err(CliError::Usage(_))));
    }
}
