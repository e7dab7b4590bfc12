//! Shared state of every HTTP handler.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::metrics::Metrics;
use crate::heartbeat::{HeartbeatConfig, HeartbeatTracker};
use crate::raft::Store;

/// Tunables of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// The longest a watch runs when the client sets no `timeoutSeconds`.
    pub max_watch_timeout: Duration,
    /// Heartbeat TTLs and grace of nodes.
    pub heartbeat: HeartbeatConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            bookmark_interval: Duration::from_secs(10),
            max_watch_timeout: Duration::from_secs(1800),
            heartbeat: HeartbeatConfig::default(),
        }
    }
}

/// What every handler can reach.
pub struct ApiContext {
    pub store: Store,
    pub config: ApiConfig,
    pub metrics: Metrics,
    pub started: Instant,
    /// Last heartbeats of nodes (meaningful on the leader only).
    pub heartbeats: Arc<HeartbeatTracker>,
}

impl ApiContext {
    pub fn new(store: Store, config: ApiConfig) -> ApiContext {
        ApiContext {
            heartbeats: Arc::new(HeartbeatTracker::new(config.heartbeat.clone())),
            store,
            config,
            metrics: Metrics::new(),
            started: Instant::now(),
        }
    }
}
