//! Gossip to membership, pure: the servers the LAN pool knows, and what the Raft membership
//! should do about them — bootstrap once `bootstrapExpect` servers are alive, add live servers
//! that are not members yet (learner first, then voter).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// Keys each server publishes in its gossip state.
pub mod keys {
    pub const NAME: &str = "name";
    pub const RAFT_ID: &str = "raft_id";
    pub const HTTP_ADDR: &str = "http_addr";
    pub const REGION: &str = "region";
    pub const DATACENTER: &str = "dc";
    pub const EXPECT: &str = "bootstrap_expect";
    pub const INITIALIZED: &str = "raft_initialized";
    pub const VERSION: &str = "version";
    pub const LEFT: &str = "left";
}

/// Protocol version servers announce (raised when the gossip or Raft payloads change).
pub const PROTOCOL_VERSION: &str = "1";

/// A server as gossip knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub name: String,
    pub raft_id: u64,
    /// HTTP address other servers reach it at (also its Raft address).
    pub http_addr: String,
    pub gossip_addr: String,
    pub region: String,
    pub datacenter: String,
    /// `alive`, `failed` or `left`.
    pub status: MemberStatus,
    pub bootstrap_expect: usize,
    /// Whether its Raft node belongs to an initialized cluster.
    pub initialized: bool,
    pub protocol_version: String,
    /// Gossip generation: a restarted server gossips under a new one.
    #[serde(skip)]
    pub generation: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    Alive,
    Failed,
    Left,
}

/// Reads one server's gossip key-values; `None` when a required key is missing (a node that
/// is not a Caravan server, or one still starting).
pub fn member_from<'a>(
    gossip_addr: String,
    values: impl IntoIterator<Item = (&'a str, &'a str)>,
    alive: bool,
) -> Option<Member> {
    let values: BTreeMap<&str, &str> = values.into_iter().collect();
    let get = |k: &str| values.get(k).map(|v| v.to_string());
    let left = values.get(keys::LEFT) == Some(&"true");
    Some(Member {
        name: get(keys::NAME)?,
        raft_id: values.get(keys::RAFT_ID)?.parse().ok()?,
        http_addr: get(keys::HTTP_ADDR)?,
        gossip_addr,
        region: get(keys::REGION).unwrap_or_else(|| "global".into()),
        datacenter: get(keys::DATACENTER).unwrap_or_else(|| "dc1".into()),
        status: match (left, alive) {
            (true, _) => MemberStatus::Left,
            (false, true) => MemberStatus::Alive,
            (false, false) => MemberStatus::Failed,
        },
        bootstrap_expect: values
            .get(keys::EXPECT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        initialized: values.get(keys::INITIALIZED) == Some(&"true"),
        protocol_version: get(keys::VERSION).unwrap_or_default(),
        generation: 0,
    })
}

fn alive_in<'a>(members: &'a [Member], region: &'a str) -> impl Iterator<Item = &'a Member> {
    members
        .iter()
        .filter(move |m| m.region == region && m.status == MemberStatus::Alive)
}

/// The first Raft membership to initialize, when this (uninitialized) server should: `expect`
/// live servers of its region, none of them in a cluster yet, and this one among the
/// `expect` with the lowest Raft ids (every server computes the same set).
pub fn bootstrap_peers(
    self_id: u64,
    region: &str,
    expect: usize,
    members: &[Member],
) -> Option<BTreeMap<u64, String>> {
    if expect == 0 {
        return None;
    }
    let alive: Vec<&Member> = alive_in(members, region).collect();
    if alive.iter().any(|m| m.initialized) {
        return None;
    }
    let mut candidates: Vec<&Member> = alive
        .into_iter()
        .filter(|m| m.bootstrap_expect == expect)
        .collect();
    if candidates.len() < expect {
        return None;
    }
    candidates.sort_by_key(|m| m.raft_id);
    candidates.truncate(expect);
    candidates.iter().any(|m| m.raft_id == self_id).then(|| {
        candidates
            .iter()
            .map(|m| (m.raft_id, m.http_addr.clone()))
            .collect()
    })
}

/// Live servers of the region that the leader should add (as learners, then voters): every
/// alive member that is not a voter yet, in Raft id order — except servers removed with
/// force-leave (`removed`: Raft id → the gossip generation they had), until they restart.
pub fn servers_to_add(
    region: &str,
    voters: &BTreeSet<u64>,
    members: &[Member],
    removed: &BTreeMap<u64, u64>,
) -> Vec<(u64, String)> {
    let mut add: Vec<(u64, String)> = alive_in(members, region)
        .filter(|m| !voters.contains(&m.raft_id))
        .filter(|m| removed.get(&m.raft_id) != Some(&m.generation))
        .map(|m| (m.raft_id, m.http_addr.clone()))
        .collect();
    add.sort();
    add.dedup_by_key(|(id, _)| *id);
    add
}

/// The Raft id of the member named `name`.
pub fn raft_id_of(members: &[Member], name: &str) -> Option<u64> {
    members.iter().find(|m| m.name == name).map(|m| m.raft_id)
}

/// Whether a learner has caught up enough to become a voter: it matched the log up to
/// `slack` entries behind the leader's last one.
pub fn caught_up(matched: Option<u64>, leader_last: u64, slack: u64) -> bool {
    matched.is_some_and(|m| m + slack >= leader_last)
}
