//! Opening a SOR of the region's configuration ([`SorEntry`]): the vendor writes one
//! `host:port` for a server and a node list for a cluster or Sentinels, but a single Sentinel
//! is one `host:port` too. So a one-node SOR that answers as a Sentinel (or refuses the data
//! credentials and accepts the Sentinel ones) is asked for the master its SOR name names.

use super::region_env::SorEntry;
use super::{info_field, ConnectOptions, Endpoint, Psor, PsorSpec};
use crate::error::Result;

/// Connects to `sor`: a server, a cluster, or the master its Sentinels call by the SOR's
/// name (for a node list of Sentinels and for a single Sentinel alike).
pub fn connect_sor(sor: &SorEntry, opts: &ConnectOptions) -> Result<Psor> {
    let mut opts = opts.clone();
    opts.node_list_master = Some(sor.name.clone());
    let spec = sor.spec();
    if sor.nodes.len() > 1 {
        return Psor::connect(&spec, &opts);
    }
    let as_sentinel = PsorSpec {
        endpoint: Endpoint::Sentinel { sentinels: sor.nodes.clone(), master: sor.name.clone() },
        ..spec.clone()
    };
    match Psor::connect(&spec, &opts) {
        Ok(psor) if is_sentinel(&psor) => Psor::connect(&as_sentinel, &opts),
        Ok(psor) => Ok(psor),
        // Refused as a server (e.g. a Sentinel with a password of its own): try it as a
        // Sentinel; if that fails too, the first error is the one to report.
        Err(e) => Psor::connect(&as_sentinel, &opts).map_err(|_| e),
    }
}

fn is_sentinel(psor: &Psor) -> bool {
    let Some(node) = psor.masters().first() else { return false };
    let Ok(mut con) = node.connect() else { return false };
    let info: Result<String> = con.retry("INFO server", None, |c| redis::cmd("INFO").arg("server").query(c));
    info.ok().is_some_and(|i| info_field(&i, "redis_mode") == Some("sentinel"))
}
