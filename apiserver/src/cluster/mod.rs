//! Servers as a cluster: gossip finds the servers, Raft makes them one store.
//!
//! ```text
//! chitchat (UDP, LAN pool) ──▶ membership (pure) ──▶ bootstrap: initialize Raft with the
//!   name, raft id, http addr,      │                   first `bootstrapExpect` live servers
//!   region, expect, initialized    └──────────────▶ leader: add live non-members as learners,
//!                                                    then voters; force-leave, leave
//! ```
//!
//! A server with `bootstrapExpect = 1` and no seeds is a one-member cluster from the start
//! (the single-server and `--dev` case).
//!
//! `transfer.rs` hands leadership to another voter; `leave.rs` takes a stopping server out of
//! the voters first (a graceful leave). With a gossip keyring (`keyring.rs`), gossip runs over
//! `sealed.rs`: every packet encrypted and authenticated.

pub mod gossip;
pub mod keyring;
mod leave;
pub mod membership;
mod private_file;
pub mod sealed;
pub mod secret;
#[cfg(test)]
mod tests;
pub mod transfer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use openraft::{BasicNode, ChangeMembers, ServerState};
use serde::Serialize;
use tokio::sync::Mutex;

pub use gossip::{Gossip, GossipConfig, Identity};
pub use membership::{Member, MemberStatus};

use crate::raft::{NodeId, ReplicatedStore};

/// How often membership is reconciled.
const RECONCILE_INTERVAL: Duration = Duration::from_millis(500);
/// How far behind the leader's log a learner may be when it is promoted to voter.
const CATCH_UP_SLACK: u64 = 64;

/// One Raft member as `caravan operator raft list-peers` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    pub raft_id: u64,
    /// The member's name from gossip, when known.
    pub name: Option<String>,
    pub address: String,
    pub leader: bool,
    pub voter: bool,
}

/// The servers' cluster: gossip plus the Raft membership it drives.
#[derive(Clone)]
pub struct Cluster {
    identity: Identity,
    gossip: Arc<Mutex<Option<Gossip>>>,
    store: ReplicatedStore,
    /// Servers removed with force-leave (Raft id → gossip generation): not added back until
    /// they restart.
    removed: Arc<std::sync::Mutex<BTreeMap<NodeId, u64>>>,
    /// The gossip keys; `None`: gossip is plaintext.
    keyring: Option<keyring::SharedKeyring>,
}

impl Cluster {
    /// Starts gossip and the membership loop.
    pub async fn start(
        identity: Identity,
        config: GossipConfig,
        store: ReplicatedStore,
    ) -> anyhow::Result<Cluster> {
        let keyring = config.encryption.open()?;
        let gossip = match &keyring {
            Some(keys) => {
                let transport = sealed::SealedTransport::new(keys.clone());
                Gossip::start(&identity, &config, &transport).await?
            }
            None => Gossip::start(&identity, &config, &chitchat::transport::UdpTransport).await?,
        };
        let cluster = Cluster {
            identity,
            gossip: Arc::new(Mutex::new(Some(gossip))),
            store,
            removed: Arc::default(),
            keyring,
        };
        let looping = cluster.clone();
        tokio::spawn(async move { looping.run().await });
        Ok(cluster)
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The gossip keyring, when gossip is encrypted.
    pub fn keyring(&self) -> Option<&keyring::SharedKeyring> {
        self.keyring.as_ref()
    }

    /// Every server gossip knows, this one included.
    pub async fn members(&self) -> Vec<Member> {
        match self.gossip.lock().await.as_ref() {
            Some(g) => g.members().await,
            None => Vec::new(),
        }
    }

    /// Gossips with `addr` (`caravan server join`).
    pub async fn join(&self, addr: &str) -> anyhow::Result<()> {
        let resolved = tokio::net::lookup_host(addr)
            .await
            .with_context(|| format!("cannot resolve {addr}"))?
            .next()
            .with_context(|| format!("{addr} resolves to no address"))?;
        match self.gossip.lock().await.as_ref() {
            Some(g) => g.join(resolved),
            None => anyhow::bail!("this server has left"),
        }
    }

    /// The Raft configuration: voters and learners with their addresses.
    pub async fn peers(&self) -> Vec<Peer> {
        let names: BTreeMap<u64, String> = self
            .members()
            .await
            .into_iter()
            .map(|m| (m.raft_id, m.name))
            .collect();
        let metrics = self.store.raft().metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| Peer {
                raft_id: *id,
                name: names.get(id).cloned(),
                address: node.addr.clone(),
                leader: metrics.current_leader == Some(*id),
                voter: voters.contains(id),
            })
            .collect()
    }

    /// Removes the server named `name` from the Raft membership (this server must lead).
    pub async fn force_leave(&self, name: &str) -> anyhow::Result<u64> {
        let members = self.members().await;
        let id = match membership::raft_id_of(&members, name) {
            Some(id) => id,
            None => name
                .parse()
                .ok()
                .with_context(|| format!("no server named {name:?}"))?,
        };
        let generation = members
            .iter()
            .find(|m| m.raft_id == id)
            .map_or(0, |m| m.generation);
        self.removed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, generation);
        self.remove(id).await?;
        Ok(id)
    }

    async fn remove(&self, id: NodeId) -> anyhow::Result<()> {
        let raft = self.store.raft();
        let metrics = raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        if membership.voter_ids().any(|v| v == id) {
            raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
                .context("failed to remove the voter")?;
        }
        let metrics = raft.metrics().borrow().clone();
        if metrics
            .membership_config
            .membership()
            .get_node(&id)
            .is_some()
        {
            raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
                .context("failed to remove the learner")?;
        }
        tracing::info!(raft_id = id, "server removed from the raft membership");
        Ok(())
    }

    /// Graceful leave: tells gossip this server left; the leader removes it from the voters.
    pub async fn announce_leave(&self) {
        if let Some(g) = self.gossip.lock().await.as_ref() {
            g.set(membership::keys::LEFT, "true").await;
        }
    }

    /// Stops gossip.
    pub async fn shutdown(&self) {
        if let Some(g) = self.gossip.lock().await.take() {
            g.shutdown().await;
        }
    }

    async fn run(self) {
        let mut ticker = tokio::time::interval(RECONCILE_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut announced_initialized = false;
        loop {
            ticker.tick().await;
            if self.gossip.lock().await.is_none() {
                return;
            }
            let raft = self.store.raft();
            let initialized = match raft.is_initialized().await {
                Ok(i) => i,
                Err(_) => return,
            };
            if initialized && !announced_initialized {
                if let Some(g) = self.gossip.lock().await.as_ref() {
                    g.set(membership::keys::INITIALIZED, "true").await;
                }
                announced_initialized = true;
            }
            let members = self.members().await;
            if !initialized {
                if let Some(peers) = membership::bootstrap_peers(
                    self.identity.raft_id,
                    &self.identity.region,
                    self.identity.bootstrap_expect,
                    &members,
                ) {
                    let nodes: BTreeMap<NodeId, BasicNode> = peers
                        .into_iter()
                        .map(|(id, addr)| (id, BasicNode::new(addr)))
                        .collect();
                    tracing::info!(servers = nodes.len(), "bootstrapping the raft cluster");
                    if let Err(e) = raft.initialize(nodes).await {
                        tracing::warn!(error = %e, "bootstrap failed");
                    }
                }
                continue;
            }
            let metrics = raft.metrics().borrow().clone();
            if metrics.state != ServerState::Leader {
                continue;
            }
            if let Err(e) = self.reconcile_as_leader(&members).await {
                tracing::warn!(error = %e, "membership change failed; retrying");
            }
        }
    }

    /// On the leader: remove servers that left; add live servers that are not members as
    /// learners, and promote learners that caught up. Never waits on a slow or dead server.
    async fn reconcile_as_leader(&self, members: &[Member]) -> anyhow::Result<()> {
        let raft = self.store.raft();
        let metrics = raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        for m in members {
            let in_raft = membership.get_node(&m.raft_id).is_some();
            if m.status == MemberStatus::Left && in_raft && m.region == self.identity.region {
                self.remove(m.raft_id).await?;
                return Ok(());
            }
        }
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let removed = self
            .removed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let leader_last = metrics.last_log_index.unwrap_or_default();
        for (id, addr) in
            membership::servers_to_add(&self.identity.region, &voters, members, &removed)
        {
            if membership.get_node(&id).is_none() {
                tracing::info!(raft_id = id, addr = %addr, "adding a server: learner first");
                raft.add_learner(id, BasicNode::new(addr), false)
                    .await
                    .context("failed to add the learner")?;
                continue;
            }
            let matched = metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(&id).copied().flatten())
                .map(|log_id| log_id.index);
            if membership::caught_up(matched, leader_last, CATCH_UP_SLACK) {
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), true)
                    .await
                    .context("failed to promote the learner")?;
                tracing::info!(raft_id = id, "server is a voter");
            }
        }
        Ok(())
    }
}
