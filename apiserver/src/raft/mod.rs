//! Consensus: openraft with the log and vote in redb, the state machine over [`State`], the
//! server-to-server network, and the group-commit proposer. [`ReplicatedStore`] is the handle the HTTP
//! layer uses.
//!
//! ```text
//! ReplicatedStore::write ─▶ proposer ─Request(ops)─▶ Raft ─append (1 fsync)─▶ log_store (redb)
//!                    ▲                       │ commit
//!                    └──── Response ◀─ state_machine ─▶ State + WatchCache
//!                                            │ snapshot_policy: after snapshot_threshold
//!                                            ▼ entries and half a snapshot's worth of writes
//!                                      snapshots/<id>.snap (streamed, low CPU priority)
//! ```
//!
//! Durability: a write is acknowledged only after its entry is applied, which happens after
//! the entry's append committed with an fsync; restart loads the newest snapshot and
//! re-applies the log after it.

mod log_store;
mod network;
mod proposer;
mod snapshot;
mod snapshot_policy;
mod state_machine;
mod type_config;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLockReadGuard};
use std::time::Duration;

use anyhow::Context;
use openraft::{BasicNode, Raft, ServerState, SnapshotPolicy};

pub use log_store::{LogStore, LogStoreError};
pub use network::{HttpConnection, HttpNetwork, RAFT_PATH, raft_members, request_campaign};
pub use proposer::Proposer;
pub use snapshot::{SnapshotBuilder, SnapshotDir, SnapshotError};
pub use state_machine::StateMachine;
pub use type_config::{NodeId, OpResult, Request, Response, TypeConfig};

use crate::cluster::secret::ClusterSecret;
use crate::store::{Op, OpError, OpOutcome, State, StoredObject, WatchCache};

/// How long `ReplicatedStore::open` waits for a leader and for the log to be applied.
const OPEN_TIMEOUT: Duration = Duration::from_secs(60);

/// How to open the store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// This server's Raft node id; 0 reads it from (or creates it in) `data_dir/server-id`.
    pub node_id: u64,
    /// Where the Raft log, vote and snapshots live.
    pub data_dir: PathBuf,
    /// The HTTP address other servers reach this one at (`host:port`).
    pub advertise_addr: String,
    /// Build a snapshot after this many log entries since the last one, once the objects they
    /// wrote add up to half the last snapshot's size (`snapshot_policy`).
    pub snapshot_threshold: u64,
    /// Events kept per kind in the watch cache.
    pub watch_cache_size: usize,
    /// Most operations grouped into one Raft entry.
    pub max_batch: usize,
    /// Most batches proposed and awaiting commit at once (see [`Proposer`]).
    pub max_in_flight: usize,
    /// Raft election timeout, lower bound (the upper bound is twice it; heartbeats go every
    /// quarter of it).
    pub election_timeout: Duration,
    /// Whether a brand-new directory initializes a one-member cluster. When false, a new node
    /// waits to be added by a leader (and `open` returns without waiting for one).
    pub bootstrap: bool,
    /// What this server's RPCs carry to prove it is a member (a new random one by default).
    pub secret: ClusterSecret,
}

impl StoreConfig {
    pub fn new(data_dir: PathBuf, advertise_addr: String) -> StoreConfig {
        StoreConfig {
            node_id: 0,
            data_dir,
            advertise_addr,
            snapshot_threshold: 10_000,
            watch_cache_size: 20_000,
            max_batch: 1024,
            max_in_flight: 1,
            election_timeout: Duration::from_millis(1000),
            bootstrap: true,
            secret: ClusterSecret::generate(),
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
pub struct ReplicatedStore {
    state: Arc<std::sync::RwLock<State>>,
    cache: Arc<WatchCache>,
    raft: Raft<TypeConfig>,
    proposer: Proposer,
    node_id: NodeId,
    secret: ClusterSecret,
}

impl ReplicatedStore {
    /// Opens (or creates) the store in `config.data_dir`: loads the last snapshot, replays the
    /// log, starts Raft, and initializes a one-member cluster when the directory is new.
    pub async fn open(mut config: StoreConfig) -> anyhow::Result<ReplicatedStore> {
        if config.node_id == 0 {
            config.node_id = load_or_create_node_id(&config.data_dir)?;
        }
        let data_dir = config.data_dir.clone();
        let cache_size = config.watch_cache_size;
        let (log_store, state_machine) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("failed to create {}", data_dir.display()))?;
            let log_path = data_dir.join("raft.redb");
            let log_store = LogStore::open(&log_path).context("failed to open the raft log")?;
            // The log holds every object, secrets in task configs included: its owner's only.
            keep_private(&data_dir, 0o700)?;
            keep_private(&log_path, 0o600)?;
            let state_machine = StateMachine::open(data_dir.join("snapshots"), cache_size)
                .context("failed to load the state machine snapshot")?;
            anyhow::Ok((log_store, state_machine))
        })
        .await??;
        let state = state_machine.state().clone();
        let cache = state_machine.cache().clone();
        let gauge = state_machine.gauge().clone();

        let election_ms = u64::try_from(config.election_timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(50);
        let raft_config = openraft::Config {
            cluster_name: "caravan".to_owned(),
            heartbeat_interval: (election_ms / 4).max(10),
            election_timeout_min: election_ms,
            election_timeout_max: election_ms * 2,
            // Triggered by `snapshot_policy` instead: entries and bytes written.
            snapshot_policy: SnapshotPolicy::Never,
            // Logs kept after a snapshot, for followers that lag a little.
            max_in_snapshot_log_to_keep: config.snapshot_threshold.min(1000),
            purge_batch_size: config.snapshot_threshold.clamp(1, 256),
            snapshot_max_chunk_size: 4 * 1024 * 1024,
            ..Default::default()
        }
        .validate()
        .context("invalid raft config")?;
        let network =
            HttpNetwork::new(&config.secret).context("failed to build the raft http client")?;
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
        snapshot_policy::spawn(raft.clone(), gauge, config.snapshot_threshold);
        let node_id = config.node_id;
        let revision = state.read().map(|s| s.revision()).unwrap_or_default();
        tracing::info!(node_id, revision, "store open");

        let proposer = Proposer::spawn(raft.clone(), config.max_batch, config.max_in_flight);
        Ok(ReplicatedStore {
            state,
            cache,
            raft,
            proposer,
            node_id,
            secret: config.secret.clone(),
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
                "a plan answers a PlanResult: write it with ReplicatedStore::write_outcome"
                    .to_owned(),
            )),
        }
    }

    /// Like [`ReplicatedStore::write`], for any operation: the outcome of a `Plan` is its `PlanResult`.
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

    /// The HTTP address of the current leader, when one is known.
    pub fn leader_addr(&self) -> Option<String> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let leader = metrics.current_leader?;
        metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
    }

    /// The secret server-to-server requests carry.
    pub fn secret(&self) -> &ClusterSecret {
        &self.secret
    }

    /// Why the Raft core stopped, once it has (a storage failure, a broken invariant): the
    /// server can no longer write and must be restarted.
    pub fn fatal(&self) -> Option<String> {
        fatal_reason(&self.raft.metrics().borrow().running_state)
    }

    /// Resolves once the Raft core has stopped on its own (see [`ReplicatedStore::fatal`]), with why;
    /// never after a [`ReplicatedStore::shutdown`].
    pub async fn failed(&self) -> String {
        let mut metrics = self.raft.metrics();
        loop {
            if let Some(why) = fatal_reason(&metrics.borrow_and_update().running_state) {
                return why;
            }
            if metrics.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// This server's Raft node id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
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

/// Sets `path`'s permission bits to `mode`.
fn keep_private(path: &std::path::Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to restrict the permissions of {}", path.display()))
}

/// Why the core stopped, unless it was asked to.
fn fatal_reason(state: &Result<(), openraft::error::Fatal<NodeId>>) -> Option<String> {
    match state {
        Ok(()) | Err(openraft::error::Fatal::Stopped) => None,
        Err(fatal) => Some(fatal.to_string()),
    }
}

/// This server's Raft node id, kept in `dir/server-id`: random for a new directory, 1 for a
/// directory a single server created before ids were kept (its log already says 1).
pub fn load_or_create_node_id(dir: &std::path::Path) -> anyhow::Result<NodeId> {
    let path = dir.join("server-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return text
                .trim()
                .parse()
                .with_context(|| format!("{} does not hold a server id", path.display()));
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("failed to read {}", path.display()));
        }
        Err(_) => {}
    }
    let id = if dir.join("raft.redb").exists() {
        1
    } else {
        // Uuid v4 bits; never 0, which means "unset".
        (uuid::Uuid::new_v4().as_u128() as u64).max(2)
    };
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let temp = dir.join("server-id.tmp");
    std::fs::write(&temp, id.to_string())
        .and_then(|()| std::fs::File::open(&temp)?.sync_all())
        .and_then(|()| std::fs::rename(&temp, &path))
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(id)
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
    // A member of a larger cluster catches up once it serves the Raft RPCs: waiting here for
    // a leader would wait forever, since the HTTP server starts after the store opens.
    // Asked of the Raft core itself: its metrics may not show the loaded membership yet.
    let voters: Vec<NodeId> = raft
        .with_raft_state(|st| {
            st.membership_state
                .effective()
                .membership()
                .voter_ids()
                .collect()
        })
        .await?;
    let sole_voter = voters == [config.node_id];
    if (initialized || config.bootstrap) && sole_voter {
        wait_ready(raft, config.node_id).await?;
    }
    Ok(())
}

/// Waits until this node, the only voter, leads and has applied its whole log, so reads after
/// `open` see every acknowledged write.
async fn wait_ready(raft: &Raft<TypeConfig>, node_id: NodeId) -> anyhow::Result<()> {
    // Nobody else can win: campaign now instead of after an election timeout.
    raft.trigger().elect().await?;
    raft.wait(Some(OPEN_TIMEOUT))
        .metrics(
            |m| {
                let applied = m.last_applied.map(|id| id.index);
                m.current_leader == Some(node_id)
                    && m.state == ServerState::Leader
                    && applied >= m.last_log_index
            },
            "leader elected and log applied",
        )
        .await
        .context("raft did not become ready")?;
    Ok(())
}
