//! Running an API server: open the store, join the cluster, follow leadership (`leadership.rs`:
//! the `default` namespace, node liveness and the controllers start and stop with it), serve
//! HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::cluster::secret::ClusterSecret;
use crate::cluster::{Cluster, GossipConfig, Identity};
use crate::context::{ApiConfig, ApiContext};
use crate::heartbeat::HeartbeatTracker;
use crate::http;
use crate::leadership::{Controllers, Leadership};
use crate::raft::{ReplicatedStore, StoreConfig};

/// Everything needed to run a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    pub store: Option<StoreConfig>,
    pub api: ApiConfig,
    /// Gossip with other servers; `None` runs no gossip (a lone server).
    pub cluster: Option<ClusterSettings>,
    /// The secret the cluster's servers share (`--cluster-secret`); `None` uses the one kept in
    /// the data dir, or generates one there.
    pub cluster_secret: Option<String>,
    /// The scheduling duties that follow leadership; `None` runs no controllers
    /// (`--no-controllers`).
    pub controllers: Option<Controllers>,
    /// HTTPS on the API and mutual TLS to the other servers and node agents; `None`: plain
    /// HTTP.
    pub tls: Option<Arc<caravan_tls::Tls>>,
}

/// Who this server is among servers, and how it gossips.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    pub name: String,
    pub region: String,
    pub datacenter: String,
    /// Servers to wait for before forming the first Raft cluster (0: never bootstrap; join
    /// an existing cluster).
    pub bootstrap_expect: usize,
    pub gossip: GossipConfig,
    /// Fail to start when gossip cannot bind (else run without it).
    pub required: bool,
}

/// A running server.
pub struct Server {
    pub store: ReplicatedStore,
    pub local_addr: SocketAddr,
    pub ctx: Arc<ApiContext>,
    listener: TcpListener,
    leadership: Leadership,
    tls: Option<Arc<caravan_tls::Tls>>,
}

impl Server {
    /// Binds the HTTP address, opens the store and follows leadership (a server that leads
    /// already has the `default` namespace when this returns); nothing is served until
    /// [`Server::serve`].
    pub async fn start(config: ServerConfig) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("failed to bind the HTTP address {}", config.http_addr))?;
        let local_addr = listener.local_addr()?;
        let region = config
            .cluster
            .as_ref()
            .map_or("global", |c| c.region.as_str());
        crate::peers::configure(config.tls.clone(), region);
        let store_config = config.store.clone().unwrap_or_else(|| {
            StoreConfig::new(config.data_dir.join("raft"), local_addr.to_string())
        });
        // An unspecified bind address cannot be dialled: advertise the bound one then.
        let advertise = match store_config.advertise_addr.parse::<SocketAddr>() {
            Ok(a) if a.ip().is_unspecified() || a.port() == 0 => local_addr.to_string(),
            _ => store_config.advertise_addr.clone(),
        };
        let secret =
            ClusterSecret::load_or_create(&config.data_dir, config.cluster_secret.as_deref())?;
        let store_config = StoreConfig {
            advertise_addr: advertise.clone(),
            secret,
            ..store_config
        };
        let store = ReplicatedStore::open(store_config).await.with_context(|| {
            format!("failed to open the store in {}", config.data_dir.display())
        })?;
        let ctx = Arc::new(ApiContext::new(store.clone(), config.api.clone()));
        if let Some(settings) = &config.cluster {
            let identity = Identity {
                name: settings.name.clone(),
                raft_id: store.node_id(),
                http_addr: advertise.clone(),
                region: settings.region.clone(),
                datacenter: settings.datacenter.clone(),
                bootstrap_expect: settings.bootstrap_expect,
            };
            match Cluster::start(identity, settings.gossip.clone(), store.clone()).await {
                Ok(cluster) => ctx.set_cluster(cluster),
                Err(e) if !settings.required => {
                    tracing::warn!(error = %format!("{e:#}"), "running without gossip");
                }
                Err(e) => return Err(e),
            }
        }
        let leadership = Leadership::start(ctx.clone(), config.controllers.clone()).await?;
        Ok(Server {
            store,
            local_addr,
            ctx,
            listener,
            leadership,
            tls: config.tls.clone(),
        })
    }

    /// The leader's in-memory record of node heartbeats, read by the liveness loop that marks silent nodes down.
    pub fn heartbeats(&self) -> Arc<HeartbeatTracker> {
        self.ctx.heartbeats.clone()
    }

    /// Serves until `shutdown` resolves, then stops the duties that follow leadership, gossip
    /// and Raft.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = http::router(self.ctx.clone());
        caravan_tls::serve::serve(
            self.listener,
            app,
            self.tls,
            caravan_schemas::limits::HEADER_READ_TIMEOUT,
            shutdown,
        )
        .await;
        self.leadership.stop().await;
        if let Some(cluster) = self.ctx.cluster() {
            cluster.shutdown().await;
        }
        self.store.shutdown().await
    }
}
