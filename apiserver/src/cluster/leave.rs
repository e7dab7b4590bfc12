//! A server's graceful leave (`caravan agent` stopped with leave): announce it by gossip and
//! wait until the leader removed it from the voters (or a timeout), so the remaining servers
//! keep their quorum.
//!
//! ```text
//! leave_voters ─▶ one voter or none? ─▶ done
//!      │ announce_leave (gossip: left=true)
//!      ▼
//!  every 100 ms until LEAVE_TIMEOUT: still in the Raft configuration, as this server sees
//!  it and as the leader reports it (raft/network.rs)? ─ no ─▶ left
//! ```

use std::time::Duration;

use super::Cluster;
use crate::raft::NodeId;

/// Longest a leaving server waits to be out of the voter set.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(15);

impl Cluster {
    /// Leaves the voter set gracefully (see the module docs); returns once out of it, or
    /// after `LEAVE_TIMEOUT`.
    pub async fn leave_voters(&self) {
        let id = self.store.node_id();
        let voters = || -> usize {
            self.store
                .raft()
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .voter_ids()
                .count()
        };
        if voters() <= 1 {
            return;
        }
        tracing::info!("leaving: asking the leader to remove this server from the voters");
        self.announce_leave().await;
        let deadline = tokio::time::Instant::now() + LEAVE_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if !self.still_a_member(id).await {
                tracing::info!("left the voter set");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!("leaving: still a voter after {LEAVE_TIMEOUT:?}; stopping anyway");
    }

    /// Whether the Raft configuration still holds `id`: as this server sees it, and as the
    /// leader reports it (a removed follower may never receive the entry that removed it).
    async fn still_a_member(&self, id: NodeId) -> bool {
        let local = self
            .store
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .is_some();
        if !local {
            return false;
        }
        let store = &self.store;
        let Some(leader) = store.leader_addr().filter(|_| !store.is_leader()) else {
            return true;
        };
        match crate::raft::raft_members(&leader, store.secret()).await {
            Ok(members) => members.contains(&id),
            Err(_) => true,
        }
    }
}
