//! Sentinels with credentials of their own (issue 14), in front of a password-protected
//! master: Sentinel `requirepass`, and an ACL user on the Sentinel. psor asks them with the
//! Sentinel credentials (never the data password), finds the master, follows a failover, and
//! without the credentials says how to give them. Also the vendor node list whose SOR name
//! names the master (`ES_SCALE_OUT_REPOS_n`), which needs no `SENTINEL MASTERS`.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use psor_core::connect::{ConnectOptions, Psor, PsorSpec, Secret};
use psor_core::engine::{self, DeleteOptions, EngineOptions, Pacing};
use psor_core::keys::KeyPrefix;
use psor_core::progress::Progress;
use psor_tests::{unique_prefix, RedisSentinel, RedisServer};

const MASTER_PW: &str = "mpw";

fn master_and_replica() -> (RedisServer, RedisServer) {
    let master = RedisServer::builder().password(MASTER_PW).config("masterauth", MASTER_PW).start();
    let replica = RedisServer::builder()
        .password(MASTER_PW)
        .config("masterauth", MASTER_PW)
        .config("replicaof", &format!("127.0.0.1 {}", master.port()))
        .start();
    (master, replica)
}

fn fill(conn: &mut redis::Connection, prefix: &str, n: usize) {
    let mut pipe = redis::pipe();
    for i in 0..n {
        let k = format!("{prefix}{i}");
        pipe.cmd("SET").arg(&k).arg(&k).ignore();
    }
    pipe.query::<()>(conn).unwrap();
}

fn count(conn: &mut redis::Connection, prefix: &str) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query(conn).unwrap();
    keys.len()
}

fn opts(user: Option<&str>, pass: Option<&str>) -> ConnectOptions {
    ConnectOptions {
        sentinel_username: user.map(str::to_string),
        sentinel_password: pass.map(Secret::new),
        ..ConnectOptions::default()
    }
}

/// Deletes 6,000 keys through `spec`, with a Sentinel failover in the middle of the run;
/// the run ends on the new master with nothing under the prefix left and the neighbours kept.
fn delete_through_a_failover(
    spec: &str,
    o: &ConnectOptions,
    master: &RedisServer,
    replica: &RedisServer,
    s: &RedisSentinel,
) {
    let ns = unique_prefix("sentauth");
    let (target, neighbour) = (format!("{ns}a:"), format!("{ns}b:"));
    fill(&mut master.admin_conn(), &target, 6_000);
    fill(&mut master.admin_conn(), &neighbour, 100);
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&mut replica.admin_conn(), &target) < 6_000 {
        assert!(Instant::now() < deadline, "the replica did not catch up");
        thread::sleep(Duration::from_millis(50));
    }
    let psor = Psor::connect(&PsorSpec::parse(spec).unwrap(), o).unwrap();
    assert_eq!(psor.masters()[0].addr(), format!("{} ({})", master.addr(), s.name()));
    let engine = EngineOptions {
        scan_count: 200,
        batch_size: 200,
        writers: 2,
        pacing: Pacing { rate: Some(3_000), max_latency: None },
        ..EngineOptions::default()
    };
    let del = DeleteOptions { prefix: KeyPrefix::new(target.as_bytes()).unwrap(), dry_run: false, sample: 0 };
    let run = thread::spawn(move || engine::delete(&psor, &del, &engine, Arc::new(Progress::new())));
    thread::sleep(Duration::from_millis(500));
    let _: () = redis::cmd("SENTINEL").arg("FAILOVER").arg(s.name()).query(&mut s.conn()).unwrap();
    let out = run.join().unwrap().unwrap();
    assert_eq!(s.master_addr(s.name()), Some(("127.0.0.1".to_string(), replica.port())), "no failover happened");
    assert_eq!(out.counts.failed, 0);
    let mut now_master = replica.admin_conn();
    assert_eq!(count(&mut now_master, &target), 0);
    assert_eq!(count(&mut now_master, &neighbour), 100);
}

#[test]
fn a_sentinel_with_requirepass_in_front_of_a_password_master() {
    let (master, replica) = master_and_replica();
    let sentinel = RedisSentinel::start_secured(&master, "mym", "spw", None);
    let spec = format!("redis+sentinel://:{MASTER_PW}@{}/mym", sentinel.addr());

    // Without the Sentinel's password: refused, with a hint, and the password is not printed.
    let err = Psor::connect(&PsorSpec::parse(&spec).unwrap(), &ConnectOptions::default()).unwrap_err();
    assert!(matches!(err, psor_core::Error::Refused(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("PSOR_SENTINEL_PASSWORD") && text.contains(&sentinel.addr()), "{text}");
    assert!(!text.contains(MASTER_PW), "{text}");
    // A wrong one: refused too.
    let err = Psor::connect(&PsorSpec::parse(&spec).unwrap(), &opts(None, Some("nope"))).unwrap_err();
    assert!(matches!(err, psor_core::Error::Refused(_)), "{err:?}");

    // The vendor's node list (one master watched) finds it too, with the Sentinel password.
    let listed = format!("redis,{0},{0}", sentinel.addr());
    let o = ConnectOptions { password: Some(Secret::new(MASTER_PW)), ..opts(None, Some("spw")) };
    let psor = Psor::connect(&PsorSpec::parse(&listed).unwrap(), &o).unwrap();
    assert!(!psor.is_cluster());

    delete_through_a_failover(&spec, &opts(None, Some("spw")), &master, &replica, &sentinel);
}

#[test]
fn an_acl_user_on_the_sentinel_in_front_of_a_password_master() {
    let (master, replica) = master_and_replica();
    let sentinel = RedisSentinel::start_secured(&master, "aclm", "sadmin", Some(("psorsent", "upw")));
    let spec = format!("redis+sentinel://:{MASTER_PW}@{}/aclm", sentinel.addr());

    // The user's password without the user name is the default user's: refused.
    let err = Psor::connect(&PsorSpec::parse(&spec).unwrap(), &opts(None, Some("upw"))).unwrap_err();
    assert!(matches!(err, psor_core::Error::Refused(_)), "{err:?}");

    // A node list whose master is named by the SOR (ES_SCALE_OUT_REPOS_n: sorName=redis,nodes).
    let listed = format!("redis,{0},{0}", sentinel.addr());
    let o = ConnectOptions {
        password: Some(Secret::new(MASTER_PW)),
        node_list_master: Some("aclm".into()),
        ..opts(Some("psorsent"), Some("upw"))
    };
    let psor = Psor::connect(&PsorSpec::parse(&listed).unwrap(), &o).unwrap();
    assert_eq!(psor.masters()[0].addr(), format!("{} (aclm)", master.addr()));

    delete_through_a_failover(&spec, &opts(Some("psorsent"), Some("upw")), &master, &replica, &sentinel);
}
