use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chitchat::transport::ChannelTransport;

use super::gossip::{Gossip, GossipConfig, Identity};
use super::membership::{
    Member, MemberStatus, bootstrap_peers, caught_up, member_from, servers_to_add,
};

fn member(name: &str, id: u64, expect: usize) -> Member {
    Member {
        name: name.into(),
        raft_id: id,
        http_addr: format!("10.0.0.{id}:4646"),
        gossip_addr: format!("10.0.0.{id}:4648"),
        region: "global".into(),
        datacenter: "dc1".into(),
        status: MemberStatus::Alive,
        bootstrap_expect: expect,
        initialized: false,
        protocol_version: "1".into(),
        generation: 1,
    }
}

#[test]
fn gossip_values_become_a_member() {
    let values = [
        ("name", "s1"),
        ("raft_id", "42"),
        ("http_addr", "10.0.0.1:4646"),
        ("region", "east"),
        ("bootstrap_expect", "3"),
        ("raft_initialized", "true"),
    ];
    let m = member_from("10.0.0.1:4648".into(), values, true).unwrap();
    assert_eq!(
        (m.name.as_str(), m.raft_id, m.region.as_str()),
        ("s1", 42, "east")
    );
    assert_eq!(m.bootstrap_expect, 3);
    assert!(m.initialized);
    assert_eq!(m.status, MemberStatus::Alive);
    let dead = member_from("x".into(), values, false).unwrap();
    assert_eq!(dead.status, MemberStatus::Failed);
    let left = member_from(
        "x".into(),
        values.into_iter().chain([("left", "true")]),
        true,
    )
    .unwrap();
    assert_eq!(left.status, MemberStatus::Left);
    // Not a Caravan server (or still starting): no Raft id.
    assert!(member_from("x".into(), [("name", "s1")], true).is_none());
}

#[test]
fn bootstrap_waits_for_expect_servers_and_every_server_picks_the_same_set() {
    let two = [member("a", 30, 3), member("b", 10, 3)];
    assert_eq!(bootstrap_peers(30, "global", 3, &two), None);
    let four = [
        member("a", 30, 3),
        member("b", 10, 3),
        member("c", 20, 3),
        member("d", 40, 3),
    ];
    let from_a = bootstrap_peers(30, "global", 3, &four).unwrap();
    assert_eq!(from_a.keys().copied().collect::<Vec<_>>(), [10, 20, 30]);
    assert_eq!(bootstrap_peers(10, "global", 3, &four), Some(from_a));
    // The fourth is not in the first set: it waits to be added by the leader.
    assert_eq!(bootstrap_peers(40, "global", 3, &four), None);
}

#[test]
fn no_bootstrap_once_a_cluster_exists_or_with_other_regions_or_dead_servers() {
    let mut members = vec![member("a", 1, 3), member("b", 2, 3), member("c", 3, 3)];
    members[2].initialized = true;
    assert_eq!(bootstrap_peers(1, "global", 3, &members), None);
    members[2].initialized = false;
    members[2].region = "west".into();
    assert_eq!(bootstrap_peers(1, "global", 3, &members), None);
    members[2].region = "global".into();
    members[2].status = MemberStatus::Failed;
    assert_eq!(bootstrap_peers(1, "global", 3, &members), None);
    members[2].status = MemberStatus::Alive;
    assert!(bootstrap_peers(1, "global", 3, &members).is_some());
    // Servers that disagree on bootstrapExpect do not count.
    members[2].bootstrap_expect = 5;
    assert_eq!(bootstrap_peers(1, "global", 3, &members), None);
}

#[test]
fn the_leader_adds_live_servers_of_its_region_that_are_not_voters() {
    let mut members = vec![
        member("a", 1, 3),
        member("b", 2, 3),
        member("c", 3, 3),
        member("d", 4, 3),
        member("e", 5, 3),
    ];
    members[3].status = MemberStatus::Failed;
    members[4].region = "west".into();
    let voters = BTreeSet::from([1, 2]);
    let none = BTreeMap::new();
    assert_eq!(
        servers_to_add("global", &voters, &members, &none),
        [(3, "10.0.0.3:4646".to_string())]
    );
    // Removed with force-leave: not added back, until it restarts (a new generation).
    let removed = BTreeMap::from([(3, 1)]);
    assert!(servers_to_add("global", &voters, &members, &removed).is_empty());
    members[2].generation = 2;
    assert_eq!(
        servers_to_add("global", &voters, &members, &removed).len(),
        1
    );
}

#[test]
fn a_learner_is_promoted_once_it_matched_the_log_closely() {
    assert!(!caught_up(None, 100, 10));
    assert!(!caught_up(Some(50), 100, 10));
    assert!(caught_up(Some(90), 100, 10));
    assert!(caught_up(Some(100), 100, 0));
}

fn identity(name: &str, id: u64) -> Identity {
    Identity {
        name: name.into(),
        raft_id: id,
        http_addr: format!("127.0.0.1:{}", 4000 + id),
        region: "global".into(),
        datacenter: "dc1".into(),
        bootstrap_expect: 3,
    }
}

fn gossip_config(port: u16, seeds: &[u16]) -> GossipConfig {
    let addr = ([127, 0, 0, 1], port).into();
    GossipConfig {
        bind: addr,
        advertise: addr,
        seeds: seeds.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
        interval: Duration::from_millis(20),
        failure_timeout: Duration::from_millis(400),
        encryption: Default::default(),
    }
}

async fn wait_for(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn servers_find_each_other_through_one_seed_and_see_a_failure() {
    let transport = ChannelTransport::default();
    let a = Gossip::start(&identity("a", 1), &gossip_config(11001, &[]), &transport)
        .await
        .unwrap();
    let b = Gossip::start(
        &identity("b", 2),
        &gossip_config(11002, &[11001]),
        &transport,
    )
    .await
    .unwrap();
    let c = Gossip::start(
        &identity("c", 3),
        &gossip_config(11003, &[11001]),
        &transport,
    )
    .await
    .unwrap();
    // c learns of b through a, its only seed.
    wait_for("every server sees three alive", async || {
        let mut all = true;
        for g in [&a, &b, &c] {
            let members = g.members().await;
            all &= members
                .iter()
                .filter(|m| m.status == MemberStatus::Alive)
                .count()
                == 3;
        }
        all
    })
    .await;
    let members = c.members().await;
    let b_seen = members.iter().find(|m| m.name == "b").unwrap();
    assert_eq!(b_seen.raft_id, 2);
    assert_eq!(b_seen.http_addr, "127.0.0.1:4002");

    // b announces it joined a cluster; everyone sees it.
    b.set(super::membership::keys::INITIALIZED, "true").await;
    wait_for("a sees b initialized", async || {
        a.members()
            .await
            .iter()
            .any(|m| m.name == "b" && m.initialized)
    })
    .await;

    // c stops: the others report it failed.
    c.shutdown().await;
    wait_for("a sees c failed", async || {
        a.members()
            .await
            .iter()
            .any(|m| m.name == "c" && m.status == MemberStatus::Failed)
    })
    .await;
}
