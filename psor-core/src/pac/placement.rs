//! The procedure's one hard rule about placement, checked against the region's
//! configuration: **"TSQs and TDQs must be stored in separate SORs and not in the PSOR."**
//!
//! The incompatible upgrade creates the new PAC's stores in the PSOR (step 6) and removes
//! what remains of the old PAC's there (step 14, `caspac -aRemOldPAC`); queues that live in
//! the PSOR — or in a SOR that is only another name for the PSOR's server — are not carried
//! by step 6 and go with step 14. So [`placement_check`] warns when a TS/TD model is placed
//! in the SOR marked `TMP`, or in a SOR that is the same server as the PSOR (decided by the
//! servers' `run_id`s and cluster node ids, never by how the address is spelled), and when
//! queue models exist but no SOR other than the PSOR is configured.
//!
//! `placement_server_ids` is this check's own server identity; a general one
//! (`Psor::same_keyspace` by `run_id`) is meant to replace it.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::connect::{connect_sor, ConnectOptions, Psor, RegionEnv, SorEntry};

/// What kind of placement warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlacementKind {
    /// TS/TD models on the SOR marked `TMP` (the PSOR itself).
    QueuesInPsorSor,
    /// TS/TD models on a SOR that is the PSOR's server under another spelling.
    QueuesOnPsorServer,
    /// Queue models exist but no SOR other than the PSOR is configured.
    NoQueueSor,
    /// A SOR holding queue models could not be reached, so its placement is unchecked.
    SorUnreachable,
}

/// One placement warning: the variable, what was found, and what to do.
#[derive(Debug, Clone, Serialize)]
pub struct PlacementWarning {
    /// What kind.
    pub kind: PlacementKind,
    /// The variable concerned, e.g. `ES_SCALE_OUT_REPOS_2`.
    pub var: String,
    /// Where it was read (`environment` or `FILE:LINE`).
    pub origin: String,
    /// The SOR's name.
    pub sor: String,
    /// The models concerned, as `TS=pattern` / `TD=pattern`.
    pub models: Vec<String>,
    /// What was found, naming the step of the procedure it endangers.
    pub message: String,
    /// What to do.
    pub action: String,
}

const STEPS: &str = "step 6 (upgrade mode creates the new PAC's stores in the PSOR; queues there are not carried) \
                     and step 14 (caspac -aRemOldPAC removes what remains of the old PAC in the PSOR)";
const ACTION: &str = "move the TS/TD models to a SOR on another server: an ES_SCALE_OUT_REPOS_n without TMP, e.g. \
                      QUEUES=redis,qhost:6379##TS=*#TD=*, in every region of the PAC";

fn model_texts(sor: &SorEntry) -> Vec<String> {
    sor.models.iter().map(|m| format!("{}={}", m.kind.as_str(), m.pattern)).collect()
}

/// The identities of the servers behind `psor`: every master's `run_id` and, on a cluster,
/// every master's node id (`CLUSTER MYID`). Two PSORs share a server when the sets meet.
pub fn placement_server_ids(psor: &Psor) -> crate::Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    for node in psor.masters() {
        let mut con = node.connect()?;
        let (_, run_id) = con.identity()?;
        if !run_id.is_empty() {
            ids.insert(format!("run_id:{run_id}"));
        }
        if psor.is_cluster() {
            let id: String = con.retry("CLUSTER MYID", None, |c| redis::cmd("CLUSTER").arg("MYID").query(c))?;
            ids.insert(format!("node:{id}"));
        }
    }
    Ok(ids)
}

/// Checks the region's SOR placement against the connected `psor` (see the module docs).
/// Each SOR other than the `TMP` one that holds queue models is opened with `opts`
/// ([`connect_sor`]: its Sentinels asked for the master named after the SOR). Nothing is
/// written.
pub fn placement_check(psor: &Psor, env: &RegionEnv, opts: &ConnectOptions) -> Vec<PlacementWarning> {
    let mut out = Vec::new();
    let warn = |kind, sor: &SorEntry, message: String, action: &str| PlacementWarning {
        kind,
        var: sor.var.clone(),
        origin: sor.origin.clone(),
        sor: sor.name.clone(),
        models: model_texts(sor),
        message,
        action: action.to_string(),
    };
    for sor in env.sors.iter().filter(|s| s.psor && !s.models.is_empty()) {
        out.push(warn(
            PlacementKind::QueuesInPsorSor,
            sor,
            format!(
                "{} places TS/TD queues ({}) in the PSOR ({} is marked TMP); the procedure requires them in a \
                 separate SOR: this endangers {STEPS}",
                sor.var,
                model_texts(sor).join(" "),
                sor.name
            ),
            ACTION,
        ));
    }
    let others: Vec<&SorEntry> = env.sors.iter().filter(|s| !s.psor).collect();
    let any_models = env.sors.iter().any(|s| !s.models.is_empty());
    if any_models && others.is_empty() {
        let first = env.sors.iter().find(|s| !s.models.is_empty()).expect("a SOR with models");
        out.push(warn(
            PlacementKind::NoQueueSor,
            first,
            format!(
                "queue models are configured ({}) but no SOR other than the PSOR is: every TS/TD queue is in the \
                 PSOR, which endangers {STEPS}",
                first.var
            ),
            ACTION,
        ));
    }
    let with_models: Vec<&SorEntry> = others.into_iter().filter(|s| !s.models.is_empty()).collect();
    if with_models.is_empty() {
        return out;
    }
    let psor_ids = match placement_server_ids(psor) {
        Ok(ids) => ids,
        Err(e) => {
            for sor in with_models {
                out.push(warn(
                    PlacementKind::SorUnreachable,
                    sor,
                    format!("cannot tell whether {} is the PSOR's server: the PSOR's identity: {e}", sor.var),
                    "run psor status again when the PSOR answers",
                ));
            }
            return out;
        }
    };
    for sor in with_models {
        let ids = connect_sor(sor, opts).and_then(|p| placement_server_ids(&p));
        match ids {
            Ok(ids) if !psor_ids.is_disjoint(&ids) => out.push(warn(
                PlacementKind::QueuesOnPsorServer,
                sor,
                format!(
                    "{} places TS/TD queues ({}) in SOR {} at {}, which is the PSOR's server under another address \
                     (same run_id); queues there are in the PSOR, which endangers {STEPS}",
                    sor.var,
                    model_texts(sor).join(" "),
                    sor.name,
                    sor.connection()
                ),
                ACTION,
            )),
            Ok(_) => {}
            Err(e) => out.push(warn(
                PlacementKind::SorUnreachable,
                sor,
                format!(
                    "{} (SOR {} at {}) could not be reached, so whether its queues are outside the PSOR is \
                     unchecked: {e}",
                    sor.var,
                    sor.name,
                    sor.connection()
                ),
                "check the SOR is up and reachable with the same credentials and TLS settings as the PSOR",
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::PsorSpec;

    fn env(list: &[(&str, &str)]) -> RegionEnv {
        RegionEnv::from_vars(list.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
    }

    #[test]
    fn queues_on_the_tmp_sor_and_no_other_sor_are_warned_without_opening_anything() {
        let path = std::env::temp_dir().join(format!("psor-placement-{}.psnap", std::process::id()));
        let psor =
            Psor::connect(&PsorSpec::parse(&format!("file:{}", path.display())).unwrap(), &Default::default()).unwrap();
        let opts = ConnectOptions::default();
        let kinds = |e: &RegionEnv| placement_check(&psor, e, &opts).iter().map(|w| w.kind).collect::<Vec<_>>();
        // Clean: a PSOR, and no models anywhere.
        assert_eq!(kinds(&env(&[("ES_SCALE_OUT_REPOS_1", "P=redis,h:1##TMP")])), vec![]);
        // Models on the PSOR, no other SOR.
        let alone = env(&[("ES_SCALE_OUT_REPOS_1", "P=redis,h:1##TMP#TS=*")]);
        assert_eq!(kinds(&alone), vec![PlacementKind::QueuesInPsorSor, PlacementKind::NoQueueSor]);
        let w = &placement_check(&psor, &alone, &opts)[0];
        assert_eq!(
            (w.var.as_str(), w.origin.as_str(), w.models.as_slice()),
            ("ES_SCALE_OUT_REPOS_1", "environment", &["TS=*".to_string()][..])
        );
        assert!(w.message.contains("step 6") && w.message.contains("step 14"), "{}", w.message);
        // A SOR without models is never opened (h:2 does not resolve), so nothing more.
        let other = env(&[("ES_SCALE_OUT_REPOS_1", "P=redis,h:1##TMP#TD=A*"), ("ES_SCALE_OUT_REPOS_2", "Q=redis,h:2")]);
        assert_eq!(kinds(&other), vec![PlacementKind::QueuesInPsorSor]);
        let _ = std::fs::remove_file(&path);
    }
}
