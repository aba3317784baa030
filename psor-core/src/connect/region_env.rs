//! The region's own configuration as a source of connections: `ES_PAC` and
//! `ES_SCALE_OUT_REPOS_1..9`, read from the environment a region runs in or from a file of
//! such lines an administrator copied from the region's definition.
//!
//! The grammar (the vendor's "PAC and SOR Environment Variables" page, see
//! `shared/reference/domain.md`):
//! `ES_SCALE_OUT_REPOS_n=sorName=sorType,connection##[TMP#][models]`, n = 1..9, sorType
//! `redis` or `redis_TLS`, the connection `host:port` or a comma-separated node list
//! (Sentinel or Cluster; for Sentinel the sorName names the master), `TMP` marking the PSOR,
//! models `TS=m[:m]#TD=m[:m]` (a leading `=` as the vendor's page writes it is accepted).
//!
//! This module is a pure parser: it opens no connection (`connect_sor` does). Every error
//! names the variable (and for a file, the line) and what is wrong, in one line.

use std::path::{Path, PathBuf};

use super::spec::{Endpoint, HostPort, PsorSpec};
use crate::error::Error;

/// The variable prefix of a SOR definition; `n` (1..9) follows.
pub const SOR_VAR_PREFIX: &str = "ES_SCALE_OUT_REPOS_";
/// The variable naming the region's PAC.
pub const PAC_VAR: &str = "ES_PAC";

/// What is wrong with a region's configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegionEnvError {
    /// One variable's value does not follow the grammar.
    #[error("{var}{}: {reason}", at.as_deref().map(|a| format!(" ({a})")).unwrap_or_default())]
    Malformed {
        /// The variable, e.g. `ES_SCALE_OUT_REPOS_2`.
        var: String,
        /// Where it was read (`FILE:LINE`), when from a file.
        at: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A line of an `--es-env` file that is not `NAME=VALUE`.
    #[error("{path}:{line}: not a NAME=VALUE line", path = path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// The line number (1-based).
        line: usize,
    },
    /// SORs are configured but none is marked `TMP`.
    #[error("no SOR is marked TMP (the PSOR) among {vars}; mark exactly one with ##TMP")]
    NoPsor {
        /// The variables read, comma-separated.
        vars: String,
    },
    /// More than one SOR is marked `TMP`.
    #[error("several SORs are marked TMP (the PSOR): {vars}; exactly one SOR of a region is the PSOR")]
    SeveralPsors {
        /// The variables marking `TMP`, comma-separated.
        vars: String,
    },
    /// The `--es-env` file could not be read.
    #[error("cannot read {path}: {source}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A queue resource type a model places.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum QueueType {
    /// Temporary storage queues.
    #[serde(rename = "TS")]
    Ts,
    /// Transient data queues.
    #[serde(rename = "TD")]
    Td,
}

impl QueueType {
    /// `TS` or `TD`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Ts => "TS",
            QueueType::Td => "TD",
        }
    }
    /// The longest queue name (and so model) of this type: 16 for TS, 4 for TD.
    pub fn max_len(self) -> usize {
        match self {
            QueueType::Ts => 16,
            QueueType::Td => 4,
        }
    }
}

/// One queue model: the queues whose names it matches are stored in its SOR.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct QueueModel {
    /// TS or TD.
    #[serde(rename = "type")]
    pub kind: QueueType,
    /// The pattern: `*` any string, `+` any one character.
    pub pattern: String,
}

impl QueueModel {
    /// True when `name` matches the pattern: `*` is any string, `+` any one character, and a
    /// trailing `+` also matches the end of a short name (TD `A` is `A+++`, so `A+++`
    /// matches `A`).
    pub fn matches(&self, name: &str) -> bool {
        fn go(p: &[u8], n: &[u8]) -> bool {
            match (p.first(), n.first()) {
                (None, None) => true,
                (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
                (Some(b'+'), None) => p.iter().all(|&c| c == b'+' || c == b'*'),
                (Some(b'+'), Some(_)) => go(&p[1..], &n[1..]),
                (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
                _ => false,
            }
        }
        go(self.pattern.as_bytes(), name.as_bytes())
    }
}

/// One `ES_SCALE_OUT_REPOS_n` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SorEntry {
    /// The variable it came from, e.g. `ES_SCALE_OUT_REPOS_1`.
    pub var: String,
    /// Where it was read: `environment` or `FILE:LINE`.
    pub origin: String,
    /// The SOR's name (for a Sentinel node list: the master's name).
    pub name: String,
    /// `redis_TLS`.
    pub tls: bool,
    /// The connection's nodes, as written.
    pub nodes: Vec<HostPort>,
    /// Marked `TMP`: this SOR is the PSOR.
    pub psor: bool,
    /// The TS/TD queue models placed in this SOR.
    pub models: Vec<QueueModel>,
}

impl SorEntry {
    /// The spec to connect to this SOR: one server for `host:port`, the vendor's node list
    /// (a cluster or sentinels, found out on connecting) otherwise. For sentinels, the master
    /// to ask for is [`SorEntry::name`] (pass it as `ConnectOptions::node_list_master`).
    pub fn spec(&self) -> PsorSpec {
        let endpoint = match self.nodes.as_slice() {
            [one] => Endpoint::Standalone(one.clone()),
            many => Endpoint::NodeList(many.to_vec()),
        };
        PsorSpec { endpoint, tls: self.tls, username: None, password: None, db: 0 }
    }

    /// The connection as the vendor writes it: `redis,h:p[,h:p]`.
    pub fn connection(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(ToString::to_string).collect();
        format!("{},{}", if self.tls { "redis_TLS" } else { "redis" }, nodes.join(","))
    }
}

/// A region's configuration: its PAC and its SORs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionEnv {
    /// `ES_PAC`, if set.
    pub pac: Option<String>,
    /// The SORs, in the order of `n`.
    pub sors: Vec<SorEntry>,
}

impl RegionEnv {
    /// Reads the configuration from `NAME=VALUE` pairs (the process environment:
    /// `RegionEnv::from_vars(std::env::vars())`). Other names are ignored; an
    /// `ES_SCALE_OUT_REPOS_` name with an `n` outside 1..9 is an error.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<RegionEnv, RegionEnvError> {
        let mut env = RegionEnv::default();
        for (name, value) in vars {
            env.add(&name, &value, "environment", None)?;
        }
        env.sors.sort_by(|a, b| a.var.cmp(&b.var));
        Ok(env)
    }

    /// Reads a file of `NAME=VALUE` lines (optionally `export NAME=VALUE` or `set
    /// NAME=VALUE`, values optionally in quotes); blank lines and lines starting with `#` or
    /// `REM` are skipped, other names ignored. A variable given twice is an error.
    pub fn from_file(path: &Path) -> Result<RegionEnv, RegionEnvError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| RegionEnvError::Read { path: path.into(), source })?;
        let mut env = RegionEnv::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.to_ascii_uppercase().starts_with("REM ") {
                continue;
            }
            let line = line
                .strip_prefix("export ")
                .or_else(|| line.strip_prefix("set "))
                .or_else(|| line.strip_prefix("SET "))
                .unwrap_or(line)
                .trim_start();
            let Some((name, value)) = line.split_once('=') else {
                return Err(RegionEnvError::BadLine { path: path.into(), line: i + 1 });
            };
            let (name, value) = (name.trim(), unquote(value.trim()));
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(RegionEnvError::BadLine { path: path.into(), line: i + 1 });
            }
            let at = format!("{}:{}", path.display(), i + 1);
            env.add(name, value, &at, Some(&at))?;
        }
        env.sors.sort_by(|a, b| a.var.cmp(&b.var));
        Ok(env)
    }

    fn add(&mut self, name: &str, value: &str, origin: &str, at: Option<&str>) -> Result<(), RegionEnvError> {
        let bad =
            |reason: String| RegionEnvError::Malformed { var: name.to_string(), at: at.map(str::to_string), reason };
        if name == PAC_VAR {
            if at.is_some() && self.pac.is_some() {
                return Err(bad("given twice".into()));
            }
            let pac = value.trim();
            self.pac = (!pac.is_empty()).then(|| pac.to_string());
            return Ok(());
        }
        let Some(n) = name.strip_prefix(SOR_VAR_PREFIX) else { return Ok(()) };
        if !matches!(n.as_bytes(), [b'1'..=b'9']) {
            return Err(bad(format!("`{n}` is not a SOR number: n is 1..9")));
        }
        if self.sors.iter().any(|s| s.var == name) {
            return Err(bad("given twice".into()));
        }
        let entry = parse_sor(name, value, origin).map_err(bad)?;
        self.sors.push(entry);
        Ok(())
    }

    /// True when no SOR is configured.
    pub fn is_empty(&self) -> bool {
        self.sors.is_empty()
    }

    /// The SOR marked `TMP`: exactly one must be.
    pub fn psor(&self) -> Result<&SorEntry, RegionEnvError> {
        let marked: Vec<&SorEntry> = self.sors.iter().filter(|s| s.psor).collect();
        let names = |list: &[&SorEntry]| list.iter().map(|s| s.var.as_str()).collect::<Vec<_>>().join(", ");
        match marked.as_slice() {
            [one] => Ok(one),
            [] => Err(RegionEnvError::NoPsor { vars: names(&self.sors.iter().collect::<Vec<_>>()) }),
            many => Err(RegionEnvError::SeveralPsors { vars: names(many) }),
        }
    }
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// Parses one value: `sorName=sorType,connection##[TMP#][models]`.
fn parse_sor(var: &str, value: &str, origin: &str) -> Result<SorEntry, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("it is empty; the form is sorName=sorType,host:port[,host:port...]##[TMP#][models]".into());
    }
    let (name, rest) = value
        .split_once('=')
        .ok_or("no `=` after the SOR name; the form is sorName=sorType,host:port[,host:port...]##[TMP#][models]")?;
    if name.is_empty() {
        return Err("the SOR name is empty".into());
    }
    if name.contains(char::is_whitespace) || name.contains(',') {
        return Err(format!("the SOR name `{name}` has a space or a comma"));
    }
    let (connection, tail) = match rest.split_once("##") {
        Some((c, t)) => (c, t),
        None => (rest, ""),
    };
    let (sor_type, nodes) = connection
        .split_once(',')
        .ok_or_else(|| format!("`{connection}` is not sorType,host:port (sorType redis or redis_TLS)"))?;
    let tls = match sor_type.trim() {
        t if t.eq_ignore_ascii_case("redis") => false,
        t if t.eq_ignore_ascii_case("redis_tls") => true,
        t => return Err(format!("unknown SOR type `{t}` (redis or redis_TLS)")),
    };
    let spec = PsorSpec::parse(&format!("{sor_type},{nodes}")).map_err(|e| match e {
        Error::BadSpec { reason, .. } => format!("connection `{nodes}`: {reason}"),
        other => other.to_string(),
    })?;
    let nodes = match spec.endpoint {
        Endpoint::Standalone(hp) => vec![hp],
        Endpoint::NodeList(list) => list,
        _ => return Err(format!("connection `{nodes}` is not host:port[,host:port...]")),
    };
    let (mut psor, mut models) = (false, Vec::new());
    for token in tail.split('#') {
        let token = token.trim();
        if token.is_empty() {
            continue;
        }
        if token.eq_ignore_ascii_case("TMP") {
            if psor {
                return Err("TMP is given twice".into());
            }
            psor = true;
            continue;
        }
        let token = token.strip_prefix('=').unwrap_or(token);
        let (kind, list) = token
            .split_once('=')
            .ok_or_else(|| format!("`{token}` is neither TMP nor a model list TS=model[:model] / TD=model[:model]"))?;
        let kind = match kind.trim() {
            k if k.eq_ignore_ascii_case("TS") => QueueType::Ts,
            k if k.eq_ignore_ascii_case("TD") => QueueType::Td,
            k => return Err(format!("unknown resource type `{k}` in `{token}` (TS or TD)")),
        };
        for pattern in list.split(':') {
            if pattern.is_empty() {
                return Err(format!("an empty {} model in `{token}`", kind.as_str()));
            }
            if pattern.len() > kind.max_len() {
                return Err(format!(
                    "the {} model `{pattern}` is longer than {} characters",
                    kind.as_str(),
                    kind.max_len()
                ));
            }
            if pattern.bytes().any(|b| !b.is_ascii_graphic() || b == b'=' || b == b',') {
                return Err(format!(
                    "the {} model `{pattern}` has a character a queue name cannot have",
                    kind.as_str()
                ));
            }
            models.push(QueueModel { kind, pattern: pattern.to_string() });
        }
    }
    Ok(SorEntry { var: var.to_string(), origin: origin.to_string(), name: name.to_string(), tls, nodes, psor, models })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Result<RegionEnv, RegionEnvError> {
        RegionEnv::from_vars(list.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort { host: host.into(), port }
    }

    #[test]
    fn parses_the_documented_shapes() {
        let env = vars(&[
            ("ES_PAC", "MyPAC"),
            ("ES_SCALE_OUT_REPOS_2", "QUEUES=redis,qhost:6379##TS=*#TD=*"),
            ("ES_SCALE_OUT_REPOS_1", "PSOR=redis,psorhost:6379##TMP"),
            ("ES_SCALE_OUT_REPOS_3", "mym=redis_TLS,h1:5000,h1:5001,h2:5000##=TS=AB+*:Q1#TD=A+++"),
            ("PATH", "/usr/bin"),
        ])
        .unwrap();
        assert_eq!(env.pac.as_deref(), Some("MyPAC"));
        assert_eq!(env.sors.len(), 3);
        let psor = env.psor().unwrap();
        assert_eq!(psor.var, "ES_SCALE_OUT_REPOS_1");
        assert_eq!(psor.spec().endpoint, Endpoint::Standalone(hp("psorhost", 6379)));
        assert!(psor.models.is_empty() && !psor.tls);
        let q = &env.sors[1];
        assert!(!q.psor);
        assert_eq!(
            q.models,
            vec![
                QueueModel { kind: QueueType::Ts, pattern: "*".into() },
                QueueModel { kind: QueueType::Td, pattern: "*".into() }
            ]
        );
        let s = &env.sors[2];
        assert!(s.tls);
        assert_eq!(s.name, "mym");
        assert_eq!(s.spec().endpoint, Endpoint::NodeList(vec![hp("h1", 5000), hp("h1", 5001), hp("h2", 5000)]));
        assert_eq!(s.models.len(), 3);
        assert_eq!(s.connection(), "redis_TLS,h1:5000,h1:5001,h2:5000");
        // No `##` at all, and TMP with models after it.
        let env = vars(&[("ES_SCALE_OUT_REPOS_1", "P=redis,h:1##TMP#TS=X*"), ("ES_SCALE_OUT_REPOS_2", "Q=redis,h:2")])
            .unwrap();
        assert!(env.sors[0].psor && env.sors[0].models.len() == 1);
        assert!(!env.sors[1].psor && env.sors[1].models.is_empty());
        assert!(vars(&[]).unwrap().is_empty());
    }

    #[test]
    fn malformed_values_name_the_variable_and_the_fault() {
        let cases: &[(&str, &str, &str)] = &[
            ("ES_SCALE_OUT_REPOS_1", "", "empty"),
            ("ES_SCALE_OUT_REPOS_1", "redis,h:1##TMP", "no `=`"),
            ("ES_SCALE_OUT_REPOS_1", "=redis,h:1##TMP", "name is empty"),
            ("ES_SCALE_OUT_REPOS_1", "P=mongo,h:1##TMP", "unknown SOR type `mongo`"),
            ("ES_SCALE_OUT_REPOS_1", "P=redis,h##TMP", "has no port"),
            ("ES_SCALE_OUT_REPOS_1", "P=redis,h:99999##TMP", "not a port"),
            ("ES_SCALE_OUT_REPOS_1", "P=redis##TMP", "not sorType,host:port"),
            ("ES_SCALE_OUT_REPOS_1", "P=redis,h:1##TMP#TMP", "twice"),
            ("ES_SCALE_OUT_REPOS_1", "P=redis,h:1##XX=A", "unknown resource type `XX`"),
            ("ES_SCALE_OUT_REPOS_1", "P=redis,h:1##TD=ABCDE", "longer than 4"),
            ("ES_SCALE_OUT_REPOS_1", "P=redis,h:1##TS=A::B", "empty TS model"),
            ("ES_SCALE_OUT_REPOS_1", "P=redis,h:1##TEMP", "neither TMP"),
            ("ES_SCALE_OUT_REPOS_0", "P=redis,h:1##TMP", "1..9"),
            ("ES_SCALE_OUT_REPOS_10", "P=redis,h:1##TMP", "1..9"),
        ];
        for (var, value, want) in cases {
            let err = vars(&[(var, value)]).unwrap_err();
            assert!(matches!(&err, RegionEnvError::Malformed { var: v, .. } if v == var), "{var}={value}: {err:?}");
            let text = err.to_string();
            assert!(text.starts_with(var) && text.contains(want), "{var}={value}: {text}");
            assert!(!text.contains('\n'));
        }
    }

    #[test]
    fn exactly_one_psor() {
        let none = vars(&[("ES_SCALE_OUT_REPOS_1", "A=redis,h:1"), ("ES_SCALE_OUT_REPOS_2", "B=redis,h:2")]).unwrap();
        let err = none.psor().unwrap_err();
        assert!(matches!(err, RegionEnvError::NoPsor { .. }));
        assert!(err.to_string().contains("ES_SCALE_OUT_REPOS_1, ES_SCALE_OUT_REPOS_2"), "{err}");
        let two = vars(&[("ES_SCALE_OUT_REPOS_1", "A=redis,h:1##TMP"), ("ES_SCALE_OUT_REPOS_4", "B=redis,h:2##TMP")])
            .unwrap();
        let err = two.psor().unwrap_err();
        assert!(matches!(err, RegionEnvError::SeveralPsors { .. }));
        assert!(err.to_string().contains("ES_SCALE_OUT_REPOS_1, ES_SCALE_OUT_REPOS_4"), "{err}");
    }

    #[test]
    fn reads_a_file_of_lines() {
        let dir = std::env::temp_dir().join(format!("psor-region-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("region.env");
        std::fs::write(
            &path,
            "# copied from the region\nexport ES_PAC=MyPAC\n\nES_SCALE_OUT_REPOS_1=\"P=redis,h:1##TMP\"\nset \
             ES_SCALE_OUT_REPOS_2=Q=redis,h:2##TS=*\nOTHER=1\n",
        )
        .unwrap();
        let env = RegionEnv::from_file(&path).unwrap();
        assert_eq!(env.pac.as_deref(), Some("MyPAC"));
        assert_eq!(env.psor().unwrap().origin, format!("{}:4", path.display()));
        assert_eq!(env.sors[1].models.len(), 1);
        std::fs::write(&path, "ES_SCALE_OUT_REPOS_1=P=redis,h:1##TMP\nES_SCALE_OUT_REPOS_1=P=redis,h:2##TMP\n")
            .unwrap();
        let err = RegionEnv::from_file(&path).unwrap_err();
        assert!(err.to_string().contains(":2") && err.to_string().contains("twice"), "{err}");
        std::fs::write(&path, "ES_PAC=MyPAC\njust words\n").unwrap();
        assert!(matches!(RegionEnv::from_file(&path), Err(RegionEnvError::BadLine { line: 2, .. })));
        std::fs::write(&path, "ES_SCALE_OUT_REPOS_3=P=redis,h##TMP\n").unwrap();
        let err = RegionEnv::from_file(&path).unwrap_err().to_string();
        assert!(err.starts_with("ES_SCALE_OUT_REPOS_3 (") && err.contains(":1)"), "{err}");
        assert!(matches!(RegionEnv::from_file(&dir.join("missing")), Err(RegionEnvError::Read { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn models_match_queue_names() {
        let m = |p: &str| QueueModel { kind: QueueType::Td, pattern: p.into() };
        assert!(m("*").matches("ANY"));
        assert!(m("A+++").matches("A") && m("A+++").matches("AB") && m("A+++").matches("ABCD"));
        assert!(!m("A+++").matches("BA"));
        assert!(m("Q*").matches("Q") && m("Q*").matches("Q123"));
        assert!(!m("Q1").matches("Q12"));
        assert!(m("+B*").matches("AB") && !m("+B*").matches("B"));
    }
}
