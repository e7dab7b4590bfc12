//! Shared state of every HTTP handler.

use std::time::{Duration, Instant};

use super::metrics::Metrics;
use crate::raft::Store;

/// Tunables of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// The longest a watch runs when the client sets no `timeoutSeconds`.
    pub max_watch_timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            bookmark_interval: Duration::from_secs(10),
            max_watch_timeout: Duration::from_secs(1800),
        }
    }
}

/// What every handler can reach.
pub struct ApiContext {
    pub store: Store,
    pub config: ApiConfig,
    pub metrics: Metrics,
    pub started: Instant,
}

impl ApiContext {
    pub fn new(store: Store, config: ApiConfig) -> ApiContext {
        ApiContext {
            store,
            config,
            metrics: Metrics::new(),
            started: Instant::now(),
        }
    }
}
