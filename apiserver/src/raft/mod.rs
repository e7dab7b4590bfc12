//! Consensus: openraft with the log and vote in redb, the state machine over [`State`], the
//! server-to-server network, and the group-commit proposer. [`Store`] is the handle the HTTP
//! layer uses.
//!
//! ```text
//! Store::write ─▶ proposer ─Request(ops)─▶ Raft ─append (1 fsync)─▶ log_store (redb)
//!                    ▲                       │ commit
//!                    └──── Response ◀─ state_machine ─▶ State + WatchCache
//!                                            │ every snapshot_threshold entries
//!                                            ▼
//!                                      snapshots/<id>.snap
//! ```
//!
//! Durability: a write is acknowledged only after its entry is applied, which happens after
//! the entry's append committed with an fsync; restart loads the newest snapshot and
//! re-applies the log after it.

mod log_store;
mod network;
mod proposer;
mod snapshot;
mod state_machine;
mod type_config;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLockReadGuard};
use std::time::Duration;

use anyhow::Context;
use openraft::{BasicNode, Raft, ServerState, SnapshotPolicy};

pub use log_store::{LogStore, LogStoreError};
pub use network::{HttpConnection, HttpNetwork, RAFT_PATH};
pub use proposer::Proposer;
pub use snapshot::{SnapshotBuilder, SnapshotDir, SnapshotError};
pub use state_machine::StateMachine;
pub use type_config::{NodeId, OpResult, Request, Response, TypeConfig};

use crate::store::{Op, OpError, OpOutcome, State, StoredObject, WatchCache};

/// How long `Store::open` waits for a leader and for the log to be applied.
const OPEN_TIMEOUT: Duration = Duration::from_secs(60);

/// How to open the store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// This server's Raft node id.
    pub node_id: u64,
    /// Where the Raft log, vote and snapshots live.
    pub data_dir: PathBuf,
    /// The HTTP address other servers reach this one at (`host:port`).
    pub advertise_addr: String,
    /// Build a snapshot after this many log entries since the last one.
    pub snapshot_threshold: u64,
    /// Events kept per kind in the watch cache.
    pub watch_cache_size: usize,
    /// Most operations grouped into one Raft entry.
    pub max_batch: usize,
    /// Most batches proposed and awaiting commit at once (see [`Proposer`]).
    pub max_in_flight: usize,
    /// Whether a brand-new directory initializes a one-member cluster. When false, a new node
    /// waits to be added by a leader (and `open` returns without waiting for one).
    pub bootstrap: bool,
}

impl StoreConfig {
    pub fn new(data_dir: PathBuf, advertise_addr: String) -> StoreConfig {
        StoreConfig {
            node_id: 1,
            data_dir,
            advertise_addr,
            snapshot_threshold: 10_000,
            watch_cache_size: 20_000,
            max_batch: 1024,
            max_in_flight: 1,
            bootstrap: true,
        }
    }
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The state machine checked the operation and refused it.
    #[error(transparent)]
    Rejected(#[from] OpError),
    /// This server is not the leader.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<String> },
    /// Raft could not commit the write (no quorum, shutting down, storage failure).
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// The replicated object store.
#[derive(Clone)]
pub struct Store {
    state: Arc<std::sync::RwLock<State>>,
    cache: Arc<WatchCache>,
    raft: Raft<TypeConfig>,
    proposer: Proposer,
    node_id: NodeId,
}

impl Store {
    /// Opens (or creates) the store in `config.data_dir`: loads the last snapshot, replays the
    /// log, starts Raft, and initializes a one-member cluster when the directory is new.
    pub async fn open(config: StoreConfig) -> anyhow::Result<Store> {
        let data_dir = config.data_dir.clone();
        let cache_size = config.watch_cache_size;
        let (log_store, state_machine) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("failed to create {}", data_dir.display()))?;
            let log_store = LogStore::open(&data_dir.join("raft.redb"))
                .context("failed to open the raft log")?;
            let state_machine = StateMachine::open(data_dir.join("snapshots"), cache_size)
                .context("failed to load the state machine snapshot")?;
            anyhow::Ok((log_store, state_machine))
        })
        .await??;
        let state = state_machine.state().clone();
        let cache = state_machine.cache().clone();

        let raft_config = openraft::Config {
            cluster_name: "caravan".to_owned(),
            heartbeat_interval: 250,
            election_timeout_min: 1000,
            election_timeout_max: 2000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_threshold.max(1)),
            // Logs kept after a snapshot, for followers that lag a little.
            max_in_snapshot_log_to_keep: config.snapshot_threshold.min(1000),
            purge_batch_size: config.snapshot_threshold.clamp(1, 256),
            snapshot_max_chunk_size: 4 * 1024 * 1024,
            ..Default::default()
        }
        .validate()
        .context("invalid raft config")?;
        let network = HttpNetwork::new().context("failed to build the raft http client")?;
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await
        .context("failed to start raft")?;

        if let Err(e) = start(&raft, &config).await {
            // Stop Raft so the log database is closed before the error is reported.
            if let Err(shutdown) = raft.shutdown().await {
                tracing::warn!(error = %shutdown, "raft did not shut down after a failed open");
            }
            return Err(e);
        }
        let node_id = config.node_id;
        let revision = state.read().map(|s| s.revision()).unwrap_or_default();
        tracing::info!(node_id, revision, "store open");

        let proposer = Proposer::spawn(raft.clone(), config.max_batch, config.max_in_flight);
        Ok(Store {
            state,
            cache,
            raft,
            proposer,
            node_id,
        })
    }

    /// Read access to the current state. Hold it briefly.
    pub fn state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().expect("state lock poisoned")
    }

    pub fn watch_cache(&self) -> &Arc<WatchCache> {
        &self.cache
    }

    /// Proposes one operation (grouped with concurrent ones into one Raft entry) and waits
    /// until it is committed and applied.
    pub async fn write(&self, op: Op) -> Result<Arc<StoredObject>, WriteError> {
        match self.proposer.propose(op).await? {
            OpOutcome::Object(object) => Ok(object),
            OpOutcome::Plan(_) => Err(WriteError::Unavailable(
                "a plan answers a PlanResult: write it with Store::write_outcome".to_owned(),
            )),
        }
    }

    /// Like [`Store::write`], for any operation: the outcome of a `Plan` is its `PlanResult`.
    pub async fn write_outcome(&self, op: Op) -> Result<OpOutcome, WriteError> {
        self.proposer.propose(op).await
    }

    /// Axum routes for the server-to-server Raft RPCs (under `/internal/raft/`). They carry
    /// their own state, so they merge into a router of any state type.
    pub fn raft_router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        network::router(self.raft.clone())
    }

    /// Whether this server is the Raft leader.
    pub fn is_leader(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics.state == ServerState::Leader && metrics.current_leader == Some(self.node_id)
    }

    /// The Raft node, for metrics and membership changes.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// Stops Raft and flushes.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        self.raft
            .shutdown()
            .await
            .context("raft did not shut down cleanly")?;
        tracing::info!(node_id = self.node_id, "store shut down");
        Ok(())
    }
}

/// Initializes a one-member cluster in a brand-new directory (when bootstrapping) and waits
/// until the node is ready; a new node that does not bootstrap returns at once.
async fn start(raft: &Raft<TypeConfig>, config: &StoreConfig) -> anyhow::Result<()> {
    let initialized = raft.is_initialized().await?;
    if !initialized && config.bootstrap {
        let members = BTreeMap::from([(
            config.node_id,
            BasicNode::new(config.advertise_addr.clone()),
        )]);
        raft.initialize(members)
            .await
            .context("failed to initialize the cluster")?;
        tracing::info!(
            node_id = config.node_id,
            "initialized a new one-member cluster"
        );
    }
    if initialized || config.bootstrap {
        wait_ready(raft, config.node_id).await?;
    }
    Ok(())
}

/// Waits until a leader is known (this node, when it is the only voter) and this node applied
/// its whole log, so reads after `open` see every acknowledged write.
async fn wait_ready(raft: &Raft<TypeConfig>, node_id: NodeId) -> anyhow::Result<()> {
    let sole_voter = {
        let metrics = raft.metrics().borrow().clone();
        let voters: Vec<_> = metrics.membership_config.membership().voter_ids().collect();
        voters == [node_id]
    };
    if sole_voter {
        // Nobody else can win: campaign now instead of after an election timeout.
        raft.trigger().elect().await?;
    }
    raft.wait(Some(OPEN_TIMEOUT))
        .metrics(
            |m| {
                let applied = m.last_applied.map(|id| id.index);
                m.current_leader.is_some()
                    && (!sole_voter || m.state == ServerState::Leader)
                    && applied >= m.last_log_index
            },
            "leader elected and log applied",
        )
        .await
        .context("raft did not become ready")?;
    Ok(())
}
