//! The servers' LAN gossip pool over chitchat (UDP): each server publishes who it is (name,
//! Raft id, HTTP address, region, datacenter, `bootstrapExpect`, whether it is in a cluster)
//! and reads the others'.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use chitchat::transport::Transport;
use chitchat::{ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig, spawn_chitchat};

use super::membership::{Member, PROTOCOL_VERSION, keys, member_from};

/// Who this server is, as gossiped.
#[derive(Clone, Debug)]
pub struct Identity {
    pub name: String,
    pub raft_id: u64,
    pub http_addr: String,
    pub region: String,
    pub datacenter: String,
    pub bootstrap_expect: usize,
}

/// Gossip settings.
#[derive(Clone, Debug)]
pub struct GossipConfig {
    /// UDP address to listen on.
    pub bind: SocketAddr,
    /// Address other servers gossip to (the bind address unless it is unspecified).
    pub advertise: SocketAddr,
    /// Other servers' gossip addresses (`host:port`) to join through.
    pub seeds: Vec<String>,
    pub interval: Duration,
    /// Time after which a silent server is reported failed (roughly).
    pub failure_timeout: Duration,
    /// How packets are sealed: the `--encrypt` key and where the keyring is kept (none:
    /// plaintext).
    pub encryption: super::keyring::Encryption,
}

/// A running gossip member.
pub struct Gossip {
    handle: ChitchatHandle,
}

impl Gossip {
    pub async fn start(
        identity: &Identity,
        config: &GossipConfig,
        transport: &dyn Transport,
    ) -> anyhow::Result<Gossip> {
        let generation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let chitchat_config = ChitchatConfig {
            chitchat_id: ChitchatId::new(identity.name.clone(), generation, config.advertise),
            // One pool for every region (Nomad's servers share one WAN serf pool); Raft
            // membership only ever takes servers of its own region.
            cluster_id: "caravan".to_string(),
            gossip_interval: config.interval,
            listen_addr: config.bind,
            seed_nodes: config.seeds.clone(),
            failure_detector_config: FailureDetectorConfig {
                // phi ≈ elapsed / mean interval × log10(e): a threshold of 8 is about 18 mean
                // intervals; the interval samples are capped to keep detection bounded.
                max_interval: config.failure_timeout / 4,
                initial_interval: config.interval,
                dead_node_grace_period: Duration::from_secs(24 * 3600),
                ..FailureDetectorConfig::default()
            },
            marked_for_deletion_grace_period: Duration::from_secs(3600),
            catchup_callback: None,
            extra_liveness_predicate: None,
            protocol_version: chitchat::ProtocolVersion::V0,
        };
        let values = vec![
            (keys::NAME.to_string(), identity.name.clone()),
            (keys::RAFT_ID.to_string(), identity.raft_id.to_string()),
            (keys::HTTP_ADDR.to_string(), identity.http_addr.clone()),
            (keys::REGION.to_string(), identity.region.clone()),
            (keys::DATACENTER.to_string(), identity.datacenter.clone()),
            (
                keys::EXPECT.to_string(),
                identity.bootstrap_expect.to_string(),
            ),
            (keys::VERSION.to_string(), PROTOCOL_VERSION.to_string()),
        ];
        let handle = spawn_chitchat(chitchat_config, values, transport)
            .await
            .with_context(|| format!("failed to start gossip on {}", config.bind))?;
        Ok(Gossip { handle })
    }

    /// Every server gossip knows, alive or not.
    pub async fn members(&self) -> Vec<Member> {
        let chitchat = self.handle.chitchat();
        let chitchat = chitchat.lock().await;
        let live: std::collections::HashSet<&ChitchatId> = chitchat.live_nodes().collect();
        // A restarted server gossips under a new generation: keep its newest one.
        let mut newest: std::collections::BTreeMap<String, (u64, Member)> = Default::default();
        for (id, state) in chitchat.node_states() {
            let Some(member) = member_from(
                id.gossip_advertise_addr.to_string(),
                state.key_values(),
                live.contains(id),
            ) else {
                continue;
            };
            let member = Member {
                generation: id.generation_id,
                ..member
            };
            match newest.get(&member.name) {
                Some((generation, _)) if *generation > id.generation_id => {}
                _ => {
                    newest.insert(member.name.clone(), (id.generation_id, member));
                }
            }
        }
        newest.into_values().map(|(_, m)| m).collect()
    }

    /// Sets one of this server's gossiped values.
    pub async fn set(&self, key: &str, value: &str) {
        let chitchat = self.handle.chitchat();
        let mut chitchat = chitchat.lock().await;
        chitchat.self_node_state().set(key, value);
    }

    /// Gossips with `addr` now (`caravan server join`).
    pub fn join(&self, addr: SocketAddr) -> anyhow::Result<()> {
        self.handle.gossip(addr)
    }

    /// Stops gossiping.
    pub async fn shutdown(self) {
        if let Err(e) = self.handle.shutdown().await {
            tracing::debug!(error = %e, "gossip shut down with an error");
        }
    }
}
