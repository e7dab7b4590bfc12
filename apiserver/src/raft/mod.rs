//! Consensus: openraft with the log and vote in redb, the state machine over [`State`], the
//! server-to-server network, and the group-commit proposer. [`Store`] is the handle the HTTP
//! layer uses.
//!
//! SKELETON: the signatures of `Store` are the contract used by the HTTP layer.

use std::path::PathBuf;
use std::sync::{Arc, RwLockReadGuard};

use crate::store::{Op, OpError, State, StoredObject, WatchCache};

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
}

impl Store {
    /// Opens (or creates) the store in `config.data_dir`: loads the last snapshot, replays the
    /// log, starts Raft, and initializes a one-member cluster when the directory is new.
    pub async fn open(config: StoreConfig) -> anyhow::Result<Store> {
        let _ = config;
        unimplemented!()
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
        let _ = op;
        unimplemented!()
    }

    /// Axum routes for the server-to-server Raft RPCs (under `/internal/raft/`).
    pub fn raft_router(&self) -> axum::Router {
        unimplemented!()
    }

    /// Whether this server is the Raft leader.
    pub fn is_leader(&self) -> bool {
        unimplemented!()
    }

    /// Stops Raft and flushes.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        unimplemented!()
    }
}
