//! Leadership transfer (`caravan operator raft transfer-leadership`). openraft 0.9 has none
//! built in, so the leader arranges one from what it has:
//!
//! ```text
//! leader: choose the target (a voter, by name or Raft id, or the first other voter)
//!   ─▶ wait until the target has every log entry
//!   ─▶ stop sending heartbeats
//!   ─▶ wait out the followers' leader lease (election_timeout_max)
//!   ─▶ POST /internal/raft/campaign on the target (raft/network.rs): it starts an election
//!   ─▶ wait until the target leads ─▶ heartbeats back on (also on failure)
//! ```
//!
//! A follower grants votes only once the lease expired, and campaigns on its own only after
//! the lease plus its own election timeout: the target, campaigning just after the lease with a
//! log as long as the leader's, is first and wins. Writes during the transfer are replicated
//! and renew the lease, so under a steady write load the transfer can time out; then nothing
//! changed and it can be retried.

use std::time::Duration;

use anyhow::{Context, bail, ensure};

use super::{Cluster, Peer};

/// The peer to hand leadership to: `to` (a name or a Raft id) when given, else the first
/// voter other than `me`.
pub fn choose(peers: &[Peer], me: u64, to: Option<&str>) -> anyhow::Result<Peer> {
    let target = match to {
        Some(to) => peers
            .iter()
            .find(|p| p.name.as_deref() == Some(to) || p.raft_id.to_string() == to)
            .with_context(|| format!("no server named {to:?} in the Raft configuration"))?,
        None => peers
            .iter()
            .find(|p| p.voter && p.raft_id != me)
            .context("no other voter to hand leadership to")?,
    };
    ensure!(target.raft_id != me, "this server already leads");
    ensure!(
        target.voter,
        "{} is not a voter",
        target.name.as_deref().unwrap_or(&target.address)
    );
    Ok(target.clone())
}

impl Cluster {
    /// Hands leadership to `to` (see the module docs); returns the new leader.
    pub async fn transfer_leadership(&self, to: Option<&str>) -> anyhow::Result<Peer> {
        let raft = self.store.raft();
        let me = self.store.node_id();
        ensure!(
            raft.metrics().borrow().current_leader == Some(me),
            "this server does not lead"
        );
        let target = choose(&self.peers().await, me, to)?;
        let lease = Duration::from_millis(raft.config().election_timeout_max);
        raft.runtime_config().heartbeat(false);
        let handed = self.hand_over(&target, lease).await;
        raft.runtime_config().heartbeat(true);
        handed.map(|()| target)
    }

    async fn hand_over(&self, target: &Peer, lease: Duration) -> anyhow::Result<()> {
        let raft = self.store.raft();
        let mut metrics = raft.metrics();
        let caught_up = tokio::time::timeout(
            lease * 4,
            metrics.wait_for(|m| {
                let last = m.last_log_index.unwrap_or_default();
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&target.raft_id).copied().flatten())
                    .map(|log_id| log_id.index);
                matched.is_some_and(|matched| matched >= last)
            }),
        )
        .await
        .is_ok_and(|waited| waited.is_ok());
        if !caught_up {
            bail!("the target did not catch up with the leader's log in time");
        }
        tokio::time::sleep(lease + Duration::from_millis(50)).await;
        crate::raft::request_campaign(&target.address, self.store.secret()).await?;
        let led = tokio::time::timeout(
            lease * 3 + Duration::from_secs(2),
            metrics.wait_for(|m| m.current_leader == Some(target.raft_id)),
        )
        .await
        .is_ok_and(|waited| waited.is_ok());
        if !led {
            bail!(
                "the target did not become the leader in time (writes during the transfer renew \
                 the old leader's lease); leadership may have moved elsewhere or stayed"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: u64, name: &str, voter: bool) -> Peer {
        Peer {
            raft_id: id,
            name: Some(name.into()),
            address: format!("127.0.0.1:{}", 4700 + id),
            leader: id == 1,
            voter,
        }
    }

    #[test]
    fn the_target_is_a_named_voter_or_the_first_other_one() {
        let peers = [
            peer(1, "s1", true),
            peer(2, "s2", false),
            peer(3, "s3", true),
        ];
        assert_eq!(choose(&peers, 1, Some("s3")).unwrap().raft_id, 3);
        assert_eq!(choose(&peers, 1, Some("3")).unwrap().raft_id, 3);
        assert_eq!(choose(&peers, 1, None).unwrap().raft_id, 3);
        let learner = choose(&peers, 1, Some("s2")).unwrap_err().to_string();
        assert!(learner.contains("not a voter"), "{learner}");
        assert!(choose(&peers, 1, Some("s1")).is_err(), "already leads");
        assert!(choose(&peers, 1, Some("s9")).is_err(), "unknown");
        assert!(choose(&peers[..2], 1, None).is_err(), "no other voter");
    }
}
