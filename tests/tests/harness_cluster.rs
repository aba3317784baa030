//! Tests of the cluster part of the harness: creation, routing, digest, slot migration,
//! failover.

use psor_tests::{keyspace_digest_cluster, populate_all_types, unique_prefix, RedisCluster};
use redis::Commands;

#[test]
fn three_master_cluster_serves_keys_and_migrates_a_slot() {
    let cluster = RedisCluster::start(3, 0);
    assert_eq!(cluster.seeds().len(), 3);
    assert_eq!(cluster.masters().len(), 3);
    assert!(cluster.replicas().is_empty());
    assert_eq!(cluster.url(), format!("redis+cluster://{}", cluster.seeds().join(",")));
    for node in cluster.nodes() {
        let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut node.admin_conn()).unwrap();
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
    }

    let mut conn = cluster.cluster_conn();
    let _: () = conn.set("harness:key", "value").unwrap();
    let got: String = conn.get("harness:key").unwrap();
    assert_eq!(got, "value");

    let prefix = unique_prefix("cluster");
    let keys = populate_all_types(&mut conn, prefix.as_bytes(), 30);
    let digest = keyspace_digest_cluster(&cluster, prefix.as_bytes());
    assert_eq!(digest.len(), keys.len());

    // Move the slot of one key to another master; the digest must not change and the key
    // must still be readable through the cluster client.
    let key = &keys[0];
    let slot = cluster.slot_of(key);
    let from = cluster.node_for_slot(slot);
    let to = cluster.masters().into_iter().find(|m| m.port() != from.port()).unwrap();
    cluster.migrate_slot(slot, from, to);
    assert_eq!(cluster.node_for_slot(slot).port(), to.port());
    assert_eq!(keyspace_digest_cluster(&cluster, prefix.as_bytes()), digest);
    let mut fresh = cluster.cluster_conn();
    let exists: bool = fresh.exists(key.as_slice()).unwrap();
    assert!(exists);
}

#[test]
fn cluster_with_replicas_fails_over() {
    let cluster = RedisCluster::start(3, 1);
    assert_eq!(cluster.nodes().len(), 6);
    assert_eq!(cluster.masters().len(), 3);
    let replicas = cluster.replicas();
    assert_eq!(replicas.len(), 3);
    let replica = replicas[0];
    cluster.failover(replica);
    assert!(cluster.masters().iter().any(|m| m.port() == replica.port()));
    assert_eq!(cluster.masters().len(), 3);
}

#[test]
fn tls_cluster_with_replicas_replicates_and_fails_over_over_tls() {
    if psor_tests::skip_without_tls("tls_cluster_with_replicas_replicates_and_fails_over_over_tls") {
        return;
    }
    // Replicas attach (tls-replication) and the bus agrees (tls-cluster), or start_tls
    // would not have returned.
    let cluster = RedisCluster::start_tls(3, 1);
    assert!(cluster.is_tls());
    assert_eq!((cluster.masters().len(), cluster.replicas().len()), (3, 3));
    assert!(cluster.url().starts_with("rediss+cluster://"));
    let (ca, cert, key) = cluster.tls_files();
    assert!(ca.is_file() && cert.is_file() && key.is_file());
    for node in cluster.nodes() {
        assert!(node.is_tls());
        let port: String =
            redis::cmd("CONFIG").arg("GET").arg("port").query::<Vec<String>>(&mut node.admin_conn()).unwrap().remove(1);
        assert_eq!(port, "0", "node {} also serves plain text", node.addr());
    }

    let mut conn = cluster.cluster_conn();
    let prefix = unique_prefix("tlsharness");
    let keys = populate_all_types(&mut conn, prefix.as_bytes(), 30);
    let digest = keyspace_digest_cluster(&cluster, prefix.as_bytes());
    assert_eq!(digest.len(), keys.len());

    // A failover over the TLS bus keeps every key.
    let slot = cluster.slot_of(&keys[0]);
    let master_port = cluster.node_for_slot(slot).port();
    let replica = cluster
        .replicas()
        .into_iter()
        .find(|r| {
            let info: String = redis::cmd("INFO").arg("replication").query(&mut r.admin_conn()).unwrap();
            info.contains(&format!("master_port:{master_port}\r\n"))
        })
        .expect("a replica of the key's master");
    // Wait for the replica to have the data before promoting it.
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut cluster.node_for_slot(slot).admin_conn()).unwrap();
    cluster.failover(replica);
    assert_eq!(cluster.node_for_slot(slot).port(), replica.port());
    assert_eq!(keyspace_digest_cluster(&cluster, prefix.as_bytes()), digest);
}
