//! Parsing where psor connects: `--psor SPEC` / `PSOR_URL`.
//!
//! One parser for every form, so the CLI, the library and the vendor's `caspac -s` syntax
//! agree. A spec that does not parse is a one-line error that names the accepted forms;
//! the password is redacted before the spec appears in any message.

use crate::error::{Error, Result};

pub use crate::display::ACCEPTED_FORMS;

/// A secret (password) that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that sends it to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `host:port` of one server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Which kind of deployment a spec points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// One Redis server.
    Standalone(HostPort),
    /// Seeds of a Redis Cluster.
    Cluster(Vec<HostPort>),
    /// Sentinels and the name of the master they watch.
    Sentinel {
        /// The sentinels.
        sentinels: Vec<HostPort>,
        /// The master's name.
        master: String,
    },
    /// The vendor's node list (`redis,h1:p1,h2:p2`): a cluster or sentinels, found out on
    /// connecting.
    NodeList(Vec<HostPort>),
    /// A snapshot file used as an in-process store (`file:PATH`), created on first save if
    /// it does not exist.
    File(std::path::PathBuf),
}

/// A parsed `--psor` spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsorSpec {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// TLS (`rediss://`, `redis_TLS,`).
    pub tls: bool,
    /// ACL user name, if any.
    pub username: Option<String>,
    /// Password, if given in the spec.
    pub password: Option<Secret>,
    /// Database number (standalone only).
    pub db: i64,
}

impl PsorSpec {
    /// Parses any accepted form.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let bad = |reason: &str| Error::BadSpec { spec: redact(text), reason: reason.to_string() };
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        if let Some(path) = text.strip_prefix("file:") {
            // `file:PATH` and `file://PATH` (an absolute path) alike.
            let path = path.strip_prefix("//").filter(|p| p.starts_with('/')).unwrap_or(path);
            if path.is_empty() {
                return Err(bad("file: needs a path"));
            }
            return Ok(PsorSpec {
                endpoint: Endpoint::File(path.into()),
                tls: false,
                username: None,
                password: None,
                db: 0,
            });
        }
        if let Some((scheme, rest)) = text.split_once("://") {
            let (tls, kind) = match scheme.to_ascii_lowercase().as_str() {
                "redis" => (false, Kind::Standalone),
                "rediss" => (true, Kind::Standalone),
                "redis+cluster" => (false, Kind::Cluster),
                "rediss+cluster" => (true, Kind::Cluster),
                "redis+sentinel" => (false, Kind::Sentinel),
                "rediss+sentinel" => (true, Kind::Sentinel),
                _ => return Err(bad(&format!("unknown scheme `{scheme}`"))),
            };
            return parse_url(rest, tls, kind).map_err(|r| bad(&r));
        }
        if let Some((sor_type, nodes)) = text.split_once(',') {
            if nodes.contains('@') {
                return Err(bad(
                    "the caspac form takes no user or password (use redis://user:pass@host:port, or PSOR_PASSWORD)",
                ));
            }
            let tls = match sor_type.to_ascii_lowercase().as_str() {
                "redis" => false,
                "redis_tls" => true,
                _ => return Err(bad(&format!("unknown SOR type `{sor_type}` (redis or redis_TLS)"))),
            };
            let nodes = parse_hosts(nodes, false).map_err(|r| bad(&r))?;
            let endpoint = if nodes.len() == 1 {
                Endpoint::Standalone(nodes.into_iter().next().expect("one node"))
            } else {
                Endpoint::NodeList(nodes)
            };
            return Ok(PsorSpec { endpoint, tls, username: None, password: None, db: 0 });
        }
        Err(bad("no scheme and no SOR type"))
    }

    /// The spec as text with the password redacted: safe for logs, errors and snapshots.
    pub fn redacted(&self) -> String {
        if let Endpoint::File(path) = &self.endpoint {
            return format!("file:{}", path.display());
        }
        let scheme = match (&self.endpoint, self.tls) {
            (Endpoint::Standalone(_), false) => "redis",
            (Endpoint::Standalone(_), true) => "rediss",
            (Endpoint::Cluster(_) | Endpoint::NodeList(_), false) => "redis+cluster",
            (Endpoint::Cluster(_) | Endpoint::NodeList(_), true) => "rediss+cluster",
            (Endpoint::Sentinel { .. }, false) => "redis+sentinel",
            (Endpoint::Sentinel { .. }, true) => "rediss+sentinel",
            (Endpoint::File(_), _) => "file",
        };
        let auth = match (&self.username, &self.password) {
            (Some(u), Some(_)) => format!("{u}:***@"),
            (Some(u), None) => format!("{u}@"),
            (None, Some(_)) => ":***@".to_string(),
            (None, None) => String::new(),
        };
        let join = |hs: &[HostPort]| hs.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        match &self.endpoint {
            Endpoint::Standalone(h) if self.db != 0 => format!("{scheme}://{auth}{h}/{}", self.db),
            Endpoint::Standalone(h) => format!("{scheme}://{auth}{h}"),
            Endpoint::Cluster(hs) | Endpoint::NodeList(hs) => format!("{scheme}://{auth}{}", join(hs)),
            Endpoint::Sentinel { sentinels, master } => {
                format!("{scheme}://{auth}{}/{master}", join(sentinels))
            }
            Endpoint::File(path) => format!("file:{}", path.display()),
        }
    }
}

enum Kind {
    Standalone,
    Cluster,
    Sentinel,
}

fn parse_url(rest: &str, tls: bool, kind: Kind) -> std::result::Result<PsorSpec, String> {
    // Credentials end at the last '@', even when the password holds a '/' (or an '@'): what
    // follows is hosts and path, which hold neither.
    let (userinfo, after) = match rest.rfind('@') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let (hosts, path) = match after.find('/') {
        Some(i) => (&after[..i], Some(&after[i + 1..])),
        None => (after, None),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, pass) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            let user = percent_decode(user)?;
            let pass = pass.map(percent_decode).transpose()?;
            ((!user.is_empty()).then_some(user), pass.filter(|p| !p.is_empty()).map(Secret))
        }
    };
    let path = path.map(|p| p.split(['?', '#']).next().unwrap_or("")).filter(|p| !p.is_empty());
    let (endpoint, db) = match kind {
        Kind::Standalone => {
            let mut nodes = parse_hosts(hosts, true)?;
            if nodes.len() != 1 {
                return Err("a redis:// URL names one server; use redis+cluster:// for several".into());
            }
            let db = match path {
                None => 0,
                Some(p) => p.parse::<i64>().map_err(|_| format!("`{p}` is not a database number"))?,
            };
            (Endpoint::Standalone(nodes.remove(0)), db)
        }
        Kind::Cluster => {
            if path.is_some() {
                return Err("a cluster has only database 0; drop the /path".into());
            }
            (Endpoint::Cluster(parse_hosts(hosts, true)?), 0)
        }
        Kind::Sentinel => {
            let master = path.ok_or("the master name is missing: redis+sentinel://host:port/MASTER")?;
            let (master, db) = match master.split_once('/') {
                Some((m, d)) => (m, d.parse::<i64>().map_err(|_| format!("`{d}` is not a database number"))?),
                None => (master, 0),
            };
            (Endpoint::Sentinel { sentinels: parse_hosts(hosts, true)?, master: master.to_string() }, db)
        }
    };
    Ok(PsorSpec { endpoint, tls, username, password, db })
}

fn parse_hosts(text: &str, default_port: bool) -> std::result::Result<Vec<HostPort>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err("an empty host in the node list".into());
        }
        let (host, port) = if let Some(rest) = part.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or("an IPv6 address is missing its `]`")?;
            (h, after.strip_prefix(':'))
        } else {
            match part.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (part, None),
            }
        };
        if host.is_empty() {
            return Err(format!("`{part}` has no host"));
        }
        check_host(host, part)?;
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or(format!("`{p}` is not a port"))?,
            None if default_port => 6379,
            None => return Err(format!("`{part}` has no port (host:port)")),
        };
        out.push(HostPort { host: host.to_string(), port });
    }
    Ok(out)
}

/// A host psor may hand to the resolver: an IPv6 address (it came in brackets), an IPv4
/// address or a DNS name. Anything else (a second `:port`, a space, an `@`…) is a bad spec,
/// never a DNS lookup.
fn check_host(host: &str, part: &str) -> std::result::Result<(), String> {
    if host.contains(':') {
        return match host.parse::<std::net::Ipv6Addr>() {
            Ok(_) if part.starts_with('[') => Ok(()),
            Ok(_) => Err(format!("`{part}`: an IPv6 address goes in brackets, as [{host}]:6379")),
            Err(_) => Err(format!("`{part}` is not host:port (one host, one port)")),
        };
    }
    let name_ok = host.len() <= 253
        && !host.starts_with(['-', '.'])
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !name_ok {
        return Err(format!("`{part}` does not name a host (letters, digits, `.`, `-` and `_` only)"));
    }
    Ok(())
}

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a bad %-escape in the user or password")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the user or password is not UTF-8".to_string())
}

/// Masks whatever could be a secret in a spec that did not parse: in the URL forms,
/// everything between `//` and the last `@` (user and password alike, since one cannot tell
/// where one ends); in the caspac form, everything between the SOR type and the last `@`.
fn redact(text: &str) -> String {
    if let Some((scheme, rest)) = text.split_once("://") {
        return match rest.rfind('@') {
            Some(at) => format!("{scheme}://***{}", &rest[at..]),
            None => text.to_string(),
        };
    }
    match text.rfind('@') {
        Some(at) => {
            let keep = match text[..at].split_once(',') {
                Some((sor, _)) if sor.eq_ignore_ascii_case("redis") || sor.eq_ignore_ascii_case("redis_tls") => {
                    &text[..sor.len() + 1]
                }
                _ => "",
            };
            format!("{keep}***{}", &text[at..])
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort { host: host.into(), port }
    }

    #[test]
    fn parses_urls() {
        let s = PsorSpec::parse("redis://psor:s3cret@10.0.0.1:7000/2").unwrap();
        assert_eq!(s.endpoint, Endpoint::Standalone(hp("10.0.0.1", 7000)));
        assert_eq!(s.username.as_deref(), Some("psor"));
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("s3cret"));
        assert_eq!(s.db, 2);
        assert!(!s.tls);
        assert_eq!(s.redacted(), "redis://psor:***@10.0.0.1:7000/2");
        let s = PsorSpec::parse("rediss://:p%40ss@[::1]:6380").unwrap();
        assert!(s.tls);
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("p@ss"));
        assert_eq!(s.endpoint, Endpoint::Standalone(hp("::1", 6380)));
        assert_eq!(PsorSpec::parse("redis://h").unwrap().endpoint, Endpoint::Standalone(hp("h", 6379)));
    }

    #[test]
    fn parses_caspac_forms() {
        let s = PsorSpec::parse("redis,127.0.0.1:6379").unwrap();
        assert_eq!(s.endpoint, Endpoint::Standalone(hp("127.0.0.1", 6379)));
        let s = PsorSpec::parse("redis_TLS,h1:5000,h1:5001,h2:5000").unwrap();
        assert!(s.tls);
        assert_eq!(s.endpoint, Endpoint::NodeList(vec![hp("h1", 5000), hp("h1", 5001), hp("h2", 5000)]));
        assert!(matches!(PsorSpec::parse("redis,h1"), Err(Error::BadSpec { .. })));
    }

    #[test]
    fn parses_cluster_and_sentinel() {
        let s = PsorSpec::parse("redis+cluster://a:1,b:2").unwrap();
        assert_eq!(s.endpoint, Endpoint::Cluster(vec![hp("a", 1), hp("b", 2)]));
        let s = PsorSpec::parse("redis+sentinel://a:26379,b:26379/mymaster").unwrap();
        assert_eq!(
            s.endpoint,
            Endpoint::Sentinel { sentinels: vec![hp("a", 26379), hp("b", 26379)], master: "mymaster".into() }
        );
    }

    #[test]
    fn parses_files() {
        let s = PsorSpec::parse("file:prod copy.psnap").unwrap();
        assert_eq!(s.endpoint, Endpoint::File("prod copy.psnap".into()));
        assert_eq!(s.redacted(), "file:prod copy.psnap");
        assert_eq!(PsorSpec::parse("file:///tmp/x.psnap").unwrap().endpoint, Endpoint::File("/tmp/x.psnap".into()));
        assert!(matches!(PsorSpec::parse("file:"), Err(Error::BadSpec { .. })));
        assert!(ACCEPTED_FORMS.contains("file:PATH"));
    }

    #[test]
    fn passwords_may_hold_slashes_and_ats() {
        let s = PsorSpec::parse("redis://carol:Sup3r/S3cret@127.0.0.1:21002").unwrap();
        assert_eq!(s.endpoint, Endpoint::Standalone(hp("127.0.0.1", 21002)));
        assert_eq!(s.username.as_deref(), Some("carol"));
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("Sup3r/S3cret"));
        assert_eq!(s.redacted(), "redis://carol:***@127.0.0.1:21002");
        let s = PsorSpec::parse("redis://u:a@b/c@h:1/3").unwrap();
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("a@b/c"));
        assert_eq!(s.db, 3);
        let s = PsorSpec::parse("redis+sentinel://u:p/q@s1:26379,s2:26379/mymaster").unwrap();
        assert!(matches!(s.endpoint, Endpoint::Sentinel { ref master, .. } if master == "mymaster"));
    }

    #[test]
    fn hosts_that_are_not_hosts_are_bad_specs() {
        for bad in [
            "redis://127.0.0.1:21001:21002",
            "redis://my host:1",
            "redis+cluster://a:1,b c:2",
            "redis,h!:1",
            "redis://::1",
            "redis://-h:1",
        ] {
            assert!(matches!(PsorSpec::parse(bad), Err(Error::BadSpec { .. })), "{bad}");
        }
        assert_eq!(PsorSpec::parse("redis://[::1]:7").unwrap().endpoint, Endpoint::Standalone(hp("::1", 7)));
        assert_eq!(
            PsorSpec::parse("redis://my-host_1.example:7").unwrap().endpoint,
            Endpoint::Standalone(hp("my-host_1.example", 7))
        );
    }

    #[test]
    fn unparsable_specs_mask_what_could_be_secret() {
        for (bad, secret) in [
            ("redis://carol:Sup3r/S3cret@127.0.0.1:notaport", "Sup3r"),
            ("redis://carol:Sup3r/S3cret@127.0.0.1:notaport", "S3cret"),
            ("redis://carol:Sup3r/S3cret@127.0.0.1:notaport", "carol"),
            ("redis,user:S3cretPW@127.0.0.1:21001", "S3cretPW"),
            ("redis_TLS,h:1,u:pw@h:2", "pw"),
            ("foo:topsecret@h:1", "topsecret"),
            ("redis://a:b@c@d/x@h:zz", "b@c"),
        ] {
            let Err(err) = PsorSpec::parse(bad) else { panic!("{bad} parsed") };
            let text = err.to_string();
            assert!(matches!(err, Error::BadSpec { .. }), "{text}");
            assert!(!text.contains(secret), "{text}");
        }
        let err = PsorSpec::parse("redis,user:S3cretPW@127.0.0.1:21001").unwrap_err().to_string();
        assert!(err.contains("`redis,***@127.0.0.1:21001`"), "{err}");
    }

    #[test]
    fn bad_specs_name_the_forms_and_hide_the_password() {
        for bad in ["", "mysql://x", "redis://u:topsecret@h:notaport", "redis://a:1,b:2", "foo,h:1", "h:1"] {
            let err = PsorSpec::parse(bad).unwrap_err().to_string();
            assert!(err.contains("Accepted forms"), "{err}");
            assert!(!err.contains("topsecret"), "{err}");
        }
    }
}
