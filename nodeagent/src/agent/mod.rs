//! The node agent in client mode: fingerprint, register the Node, heartbeat at the TTL the
//! servers return, run the node's allocations, serve task logs.
//!
//! ```text
//!  fingerprint ─▶ register Node (spec + status) ─▶ heartbeat loop (TTL from the leader)
//!  local state (redb) ─▶ restore runners (re-attach) ─▶ watch spec.nodeName=<node> ─▶ runners
//!  runners ─▶ StatusBatcher ─▶ PATCH allocations/<name>/status
//!  runners ─▶ Services (checks) ─▶ serviceregistrations: create, delete, PATCH …/status
//! ```

pub mod allocs;
pub mod config;
mod leave;
pub mod node;
mod orphans;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use caravan_runtime::{Client, ClientError};
use caravan_schemas::Kind;
use caravan_schemas::node::DriverInfo;
use serde_json::json;

pub use self::allocs::AllocManager;
pub use self::config::ClientConfig;
pub use self::leave::Shutdown;
use crate::driver::Driver;
use crate::fingerprint::{
    Fingerprint, FingerprintSettings, fingerprint, load_or_create_node_id, load_or_create_secret_id,
};
use crate::runner::alloc::Drivers;
use crate::runner::spec::SpecSettings;
use crate::runner::status::StatusBatcher;
use crate::state::LocalState;

/// A started node agent.
pub struct Agent {
    config: ClientConfig,
    client: caravan_client::HttpClient,
    node_name: String,
    node_id: String,
    /// The hash of the node's secret id, registered in `spec.secretIdHash`.
    secret_id_hash: String,
    http_addr: SocketAddr,
    advertised: String,
    fingerprint: Fingerprint,
    drivers: Drivers,
    manager: AllocManager<caravan_client::HttpClient>,
    status: StatusBatcher,
    listener: Option<tokio::net::TcpListener>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("node", &self.node_name)
            .field("http_addr", &self.http_addr)
            .finish()
    }
}

/// The drivers this agent offers.
pub fn build_drivers(config: &ClientConfig) -> Drivers {
    let mut drivers: BTreeMap<String, Arc<dyn Driver>> = BTreeMap::new();
    for driver in crate::driver::executor::all(config) {
        if config.driver_enabled(driver.name()) {
            drivers.insert(driver.name().to_string(), driver);
        }
    }
    if config.driver_enabled("mock") {
        drivers.insert("mock".into(), crate::driver::mock::driver());
    }
    Arc::new(drivers)
}

impl Agent {
    /// Fingerprints the machine, opens the local state, binds the agent's API and re-attaches
    /// to the tasks of an earlier run. Nothing talks to the servers yet.
    pub async fn start(config: ClientConfig) -> anyhow::Result<Agent> {
        config.check().map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "failed to create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let client = caravan_client::HttpClient::new(&config.servers)
            .with_context(|| format!("invalid server addresses {:?}", config.servers))?;
        let data_dir = config.data_dir.clone();
        let fingerprint_settings = FingerprintSettings {
            network_interface: config.network_interface.clone(),
            host_networks: config.host_networks.clone(),
        };
        let fingerprint =
            tokio::task::spawn_blocking(move || fingerprint(&data_dir, &fingerprint_settings))
                .await??;
        let node_id = load_or_create_node_id(&config.data_dir)?;
        let node_name = config
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| fingerprint.hostname.to_ascii_lowercase());
        anyhow::ensure!(!node_name.is_empty(), "no node name: pass --name");
        // Every request speaks for this node with its secret id (the servers check it when
        // they enforce ACLs); the Node carries the secret's hash.
        let secret_id = load_or_create_secret_id(&config.data_dir)?;
        let client = client.with_node_secret(&node_name, &secret_id);
        let client = match &config.tls {
            Some(tls) => client.with_tls(
                tls,
                caravan_tls::Peer::Server {
                    region: config.region.clone(),
                },
            )?,
            None => client,
        };
        let secret_id_hash = caravan_schemas::acl::secret_hash(&secret_id);
        let local = LocalState::open(&config.client_dir().join("state.redb"))?;
        let drivers = build_drivers(&config);
        let listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("failed to bind the agent API on {}", config.http_addr))?;
        let http_addr = listener.local_addr()?;
        let advertised = node::advertised_http_addr(&config, http_addr, &fingerprint);
        let status = StatusBatcher::new();
        // What tasks interpolate: the node as it registers (attributes, meta, datacenter …),
        // known before any runner, restored ones included, builds a task spec.
        let driver_infos = driver_infos(&drivers);
        let settings = SpecSettings {
            alloc_root: config.alloc_root(),
            pids_limit: config.pids_limit,
            node: Arc::new(node::node_vars(
                &node_name,
                &node_id,
                &fingerprint,
                &driver_infos,
                &config,
            )),
            network: crate::network::NetworkSettings {
                bridge_subnet: config.bridge_network_subnet.clone(),
                ..Default::default()
            },
        };
        // Before any task starts: delete containers whose executor died (they would block
        // forever with their cgroups).
        let container_root = config.container_root();
        let removed =
            tokio::task::spawn_blocking(move || orphans::cleanup(&container_root)).await?;
        if !removed.is_empty() {
            tracing::warn!(containers = ?removed, "deleted orphaned containers");
        }
        let manager = AllocManager::new(
            client.clone(),
            node_name.clone(),
            drivers.clone(),
            settings,
            config.max_kill_timeout,
            local,
            status.clone(),
        );
        let restored = manager.restore().await?;
        if restored > 0 {
            tracing::info!(
                allocations = restored,
                "restored allocations from the local state"
            );
        }
        Ok(Agent {
            config,
            client,
            node_name,
            node_id,
            secret_id_hash,
            http_addr,
            advertised,
            fingerprint,
            drivers,
            manager,
            status,
            listener: Some(listener),
        })
    }

    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Where the agent's API listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The drivers' health, as reported in the Node's status.
    pub fn driver_infos(&self) -> BTreeMap<String, DriverInfo> {
        driver_infos(&self.drivers)
    }

    /// Registers the Node, then heartbeats, runs allocations and serves the agent API until
    /// `shutdown` resolves; with [`Shutdown::Leave`] the node is drained first, so its work
    /// migrates before the agent exits.
    pub async fn run(mut self, shutdown: impl Future<Output = Shutdown>) -> anyhow::Result<()> {
        let listener = self.listener.take().context("agent already running")?;
        let router = crate::http::router(self.config.alloc_root());
        let tls = self.config.tls.clone();
        let server = tokio::spawn(caravan_tls::serve::serve(
            listener,
            router,
            tls,
            caravan_schemas::limits::HEADER_READ_TIMEOUT,
            std::future::pending(),
        ));
        let batcher = tokio::spawn(
            self.status
                .clone()
                .run(self.client.clone(), self.config.status_batch_window),
        );
        let registered = Arc::new(tokio::sync::Notify::new());
        let heartbeats = tokio::spawn(heartbeat_loop(
            self.client.clone(),
            self.node_name.clone(),
            self.registration(),
            registered.clone(),
        ));
        let manager = self.manager.clone();
        let services = self.manager.services();
        let (client, node) = (self.client.clone(), self.node_name.clone());
        let watch = tokio::spawn(async move {
            registered.notified().await;
            // Registrations are written (and those of allocations gone meanwhile deleted) once
            // the node is known and the restored runners are open.
            let writer = tokio::spawn(services.run(client, node));
            let _writer = AbortOnDrop(writer.abort_handle());
            manager.run().await;
        });
        if shutdown.await == Shutdown::Leave {
            // Heartbeats and the allocation watch go on while the servers move the work away.
            if let Err(e) =
                leave::leave(&self.client, &self.node_name, self.config.leave_deadline).await
            {
                tracing::warn!(error = %e, "leaving failed; stopping without handing work over");
            }
            self.flush_statuses().await;
        }
        heartbeats.abort();
        watch.abort();
        let services = self.manager.services();
        let writer = self.config.stop_tasks_on_shutdown.then(|| {
            // Deletes the registrations of the tasks stopped below.
            tokio::spawn(
                services
                    .clone()
                    .run(self.client.clone(), self.node_name.clone()),
            )
        });
        if self.config.stop_tasks_on_shutdown {
            tracing::info!("stopping every task before exiting");
            self.manager.stop_all().await;
            self.flush_statuses().await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while services.backlog() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if let Some(writer) = writer {
            writer.abort();
        }
        batcher.abort();
        server.abort();
        Ok(())
    }

    /// Gives the last statuses a moment to reach the servers.
    async fn flush_statuses(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while self.status.backlog() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn registration(&self) -> Registration {
        Registration {
            node: node::node_object(
                &self.node_name,
                &self.node_id,
                &self.config,
                &self.advertised,
                &self.secret_id_hash,
            ),
            status: node::node_status(
                &self.fingerprint,
                &self.node_id,
                &self.driver_infos(),
                &self.config,
            ),
        }
    }
}

/// Ends a spawned task when dropped (with the task that owns it).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The drivers' health, by name.
fn driver_infos(drivers: &Drivers) -> BTreeMap<String, DriverInfo> {
    drivers
        .iter()
        .map(|(name, d)| (name.clone(), d.fingerprint()))
        .collect()
}

/// What the agent writes to register its Node.
#[derive(Clone, Debug)]
struct Registration {
    node: serde_json::Value,
    status: serde_json::Value,
}

/// Creates the Node or updates its spec, then writes the fingerprint into its status. Also
/// used by the node simulator, which registers the way an agent does.
pub async fn register_node<C: Client>(
    client: &C,
    name: &str,
    node: &serde_json::Value,
    status: &serde_json::Value,
) -> Result<(), ClientError> {
    match client.create(Kind::Node, node.clone()).await {
        Ok(_) => {}
        Err(ClientError::AlreadyExists) => {
            let patch = json!({
                "metadata": {"labels": node["metadata"]["labels"]},
                "spec": node["spec"],
            });
            client.patch(Kind::Node, "", name, patch).await?;
        }
        Err(e) => return Err(e),
    }
    client
        .patch_status(Kind::Node, "", name, json!({ "status": status }))
        .await?;
    Ok(())
}

/// Registers, then heartbeats at the TTL the servers return; re-registers when the Node is
/// gone; retries with a backoff while the servers are unreachable.
async fn heartbeat_loop(
    client: caravan_client::HttpClient,
    name: String,
    reg: Registration,
    registered: Arc<tokio::sync::Notify>,
) {
    let mut backoff = Duration::from_millis(250);
    let mut need_register = true;
    loop {
        if need_register {
            match register_node(&client, &name, &reg.node, &reg.status).await {
                Ok(()) => {
                    tracing::info!(node = %name, "node registered");
                    need_register = false;
                    registered.notify_one();
                }
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "registration failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            }
        }
        match client.heartbeat(&name).await {
            Ok(ttl) => {
                backoff = Duration::from_millis(250);
                tokio::time::sleep(ttl).await;
            }
            Err(e) if e.is_not_found() => {
                tracing::warn!(node = %name, "the servers do not know this node; registering again");
                need_register = true;
            }
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "heartbeat failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
