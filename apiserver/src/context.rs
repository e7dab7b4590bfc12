//! What a server's API shares: the store, the tunables, metrics, node heartbeats and what the
//! leader's duties hand the API (the eval broker, the garbage collection trigger), reached by
//! the service layer (`api/`), the HTTP handlers and the leader's duties alike.

use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use caravan_controllers::broker::EvalBroker;
use caravan_controllers::gc::GcTrigger;

use crate::acl::{AclCache, AclConfig};
use crate::cluster::Cluster;
use crate::heartbeat::{HeartbeatConfig, HeartbeatTracker};
use crate::metrics::Metrics;
use crate::raft::ReplicatedStore;

/// How many versions of each job the servers keep by default, besides its newest stable one
/// (Nomad's `job_tracked_versions`).
pub const DEFAULT_JOB_VERSIONS_KEPT: u32 = 6;

/// Tunables of the API: watches, node heartbeats and job versions.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// The longest a watch runs when the client sets no `timeoutSeconds`.
    pub max_watch_timeout: Duration,
    /// Heartbeat TTLs and grace of nodes.
    pub heartbeat: HeartbeatConfig,
    /// How many of a job's newest versions (JobVersions) are kept when a new one is written;
    /// its newest stable version is kept too. At least 1 (0 counts as 1).
    pub job_versions_kept: u32,
    /// Whether requests are authenticated and authorized, and how bootstrap is reset.
    pub acl: AclConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            bookmark_interval: Duration::from_secs(10),
            max_watch_timeout: Duration::from_secs(1800),
            heartbeat: HeartbeatConfig::default(),
            job_versions_kept: DEFAULT_JOB_VERSIONS_KEPT,
            acl: AclConfig::default(),
        }
    }
}

/// What every service call, HTTP handler and leader duty can reach.
pub struct ApiContext {
    pub store: ReplicatedStore,
    pub config: ApiConfig,
    pub metrics: Metrics,
    pub started: Instant,
    /// Last heartbeats of nodes (meaningful on the leader only).
    pub heartbeats: Arc<HeartbeatTracker>,
    /// The tokens and policies, compiled (used when ACLs are enabled).
    pub acls: AclCache,
    /// Runs garbage collection on request; set where the leader's controllers run.
    gc: OnceLock<GcTrigger>,
    /// Gossip and Raft membership, once started.
    cluster: OnceLock<Cluster>,
    /// The eval broker of the leader's controllers, while this server leads.
    broker: RwLock<Option<EvalBroker>>,
}

impl ApiContext {
    pub fn new(store: ReplicatedStore, config: ApiConfig) -> ApiContext {
        ApiContext {
            heartbeats: Arc::new(HeartbeatTracker::new(config.heartbeat.clone())),
            store,
            config,
            metrics: Metrics::new(),
            acls: AclCache::default(),
            started: Instant::now(),
            gc: OnceLock::new(),
            cluster: OnceLock::new(),
            broker: RwLock::new(None),
        }
    }

    /// Hands `POST /v1/system/gc` the trigger of the garbage collection loop (once).
    pub fn set_gc_trigger(&self, trigger: GcTrigger) {
        let _ = self.gc.set(trigger);
    }

    /// Serves `broker` to followers' workers (`/v1/eval-broker/…`); `None` stops serving.
    pub fn set_broker(&self, broker: Option<EvalBroker>) {
        *self.broker.write().unwrap_or_else(PoisonError::into_inner) = broker;
    }

    /// The leader's eval broker, while this server leads with controllers.
    pub fn broker(&self) -> Option<EvalBroker> {
        self.broker
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Hands the membership endpoints the cluster (once).
    pub fn set_cluster(&self, cluster: Cluster) {
        let _ = self.cluster.set(cluster);
    }

    /// This server's region (`global` without gossip).
    pub fn region(&self) -> &str {
        self.cluster()
            .map_or("global", |c| c.identity().region.as_str())
    }

    /// The cluster, when gossip runs.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.get()
    }

    /// The garbage collection trigger, when controllers run in this process.
    pub fn gc_trigger(&self) -> Option<&GcTrigger> {
        self.gc.get()
    }
}
