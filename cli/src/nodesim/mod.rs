//! `caravan nodesim`: many simulated client nodes in one process (Nomad's `nomad-nodesim`).
//! Each node does over HTTP what `caravan agent --client` does, so the servers cannot tell
//! them apart: it registers its Node, heartbeats at the TTL the servers return, watches its own
//! allocations (`fieldSelector=spec.nodeName=<node>`), runs their tasks with the mock
//! driver's semantics and reports their status through the agent's status batcher.
//!
//! ```text
//!  Simulator ─ one tokio runtime, one HTTP connection pool, nodes started at --register-rate
//!    node i ─▶ heartbeat.rs (register, heartbeat)        ─┐
//!           ─▶ allocs.rs (watch own allocations) ─▶ runner.rs (mock tasks) ─▶ StatusBatcher
//!           ─▶ client.rs (counts into stats.rs)          ─┘   PATCH allocations/{name}/status
//! ```
//!
//! What differs from a real agent: no agent API (the Node's `httpAddr` is a synthetic address,
//! so `caravan logs` cannot reach a simulated task), no local state (a restarted simulator
//! does not re-attach to its tasks), lifecycle hooks start together with the main tasks, and
//! only the mock driver exists.

mod allocs;
mod client;
mod heartbeat;
pub mod node;
mod runner;
pub mod stats;
mod task;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use caravan_nodeagent::driver::Driver;
use caravan_nodeagent::runner::status::StatusBatcher;
use clap::Args;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use self::allocs::{JobInterner, NodeAllocs};
use self::client::SimClient;
use self::node::{Identity, Shape};
use self::stats::{SimStats, Snapshot};

/// Arguments of `caravan nodesim`.
#[derive(Debug, Clone, Args)]
pub struct NodesimArgs {
    /// Servers to register with, comma-separated `host:port` or URLs.
    #[arg(long, env = "CARAVAN_SERVERS")]
    pub servers: String,
    /// Simulated nodes to run.
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Datacenters the nodes are spread over, in turn.
    #[arg(long, value_delimiter = ',', default_value = "dc1")]
    pub datacenters: Vec<String>,
    /// CPU of each node in MHz.
    #[arg(long, default_value_t = 8000)]
    pub cpu: u64,
    /// CPU cores of each node.
    #[arg(long, default_value_t = 4)]
    pub cores: u32,
    /// Memory of each node in MB.
    #[arg(long, default_value_t = 16384)]
    pub memory: u64,
    /// Disk of each node in MB.
    #[arg(long, default_value_t = 100_000)]
    pub disk: u64,
    /// Stop after this long (e.g. `10m`); without it, run until interrupted.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub run_for: Option<Duration>,
    /// Nodes are named `<prefix>-00000`, `<prefix>-00001`, …
    #[arg(long, default_value = "sim")]
    pub name_prefix: String,
    /// Nodes started per second (each registers at once); 0 starts them all together.
    #[arg(long, default_value_t = 500.0)]
    pub register_rate: f64,
    /// How long each node collects allocation status changes before sending them (the agent's
    /// default).
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    pub status_batch_window: Duration,
    /// Print the counters this often.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub report_every: Duration,
}

impl NodesimArgs {
    /// The settings of a simulator of `nodes` nodes against `servers`, defaults elsewhere.
    pub fn new(servers: &str, nodes: usize) -> NodesimArgs {
        NodesimArgs {
            servers: servers.to_string(),
            nodes,
            datacenters: vec!["dc1".into()],
            cpu: 8000,
            cores: 4,
            memory: 16384,
            disk: 100_000,
            run_for: None,
            name_prefix: "sim".into(),
            register_rate: 500.0,
            status_batch_window: Duration::from_millis(20),
            report_every: Duration::from_secs(10),
        }
    }

    fn shape(&self) -> Shape {
        Shape {
            cpu_mhz: self.cpu,
            cores: self.cores,
            memory_mb: self.memory,
            disk_mb: self.disk,
        }
    }
}

/// Running simulated nodes; dropping it stops them.
pub struct Simulator {
    stats: Arc<SimStats>,
    handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
    starter: JoinHandle<()>,
}

impl Simulator {
    /// Starts the nodes in the current tokio runtime, `register_rate` per second.
    pub fn start(args: &NodesimArgs) -> anyhow::Result<Simulator> {
        anyhow::ensure!(!args.datacenters.is_empty(), "--datacenters is empty");
        let http = caravan_client::HttpClient::new(&args.servers)
            .with_context(|| format!("invalid server addresses {:?}", args.servers))?;
        let stats = Arc::new(SimStats::default());
        let handles: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let mut drivers: BTreeMap<String, Arc<dyn Driver>> = BTreeMap::new();
        drivers.insert("mock".into(), caravan_nodeagent::driver::mock::driver());
        let shared = Shared {
            http,
            stats: stats.clone(),
            drivers: Arc::new(drivers),
            interner: Arc::default(),
            window: args.status_batch_window,
        };
        let args = args.clone();
        let starter = {
            let handles = handles.clone();
            tokio::spawn(async move {
                let began = tokio::time::Instant::now();
                for i in 0..args.nodes {
                    if args.register_rate > 0.0 {
                        let at = began + Duration::from_secs_f64(i as f64 / args.register_rate);
                        tokio::time::sleep_until(at).await;
                    }
                    let identity = node::identity(&args.name_prefix, i, &args.datacenters);
                    let handle = tokio::spawn(run_node(shared.clone(), identity, args.clone()));
                    handles
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(handle);
                }
            })
        };
        Ok(Simulator {
            stats,
            handles,
            starter,
        })
    }

    pub fn stats(&self) -> Snapshot {
        self.stats.snapshot()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stats.stopping.store(true, Ordering::Relaxed);
        self.starter.abort();
        for handle in self
            .handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            handle.abort();
        }
    }
}

/// What every node of a simulator shares.
#[derive(Clone)]
struct Shared {
    http: caravan_client::HttpClient,
    stats: Arc<SimStats>,
    drivers: Arc<BTreeMap<String, Arc<dyn Driver>>>,
    interner: Arc<JobInterner>,
    window: Duration,
}

/// Aborts the tasks when dropped (when the node's own task is aborted).
struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

/// One node: registration and heartbeats, the status batcher, then the allocation watch.
async fn run_node(shared: Shared, identity: Identity, args: NodesimArgs) {
    let client = SimClient::new(shared.http.clone(), shared.stats.clone());
    let reg = node::registration(&args.servers, &identity, &args.shape());
    let status = StatusBatcher::new();
    let (registered_tx, registered) = oneshot::channel();
    let _children = AbortOnDrop(vec![
        tokio::spawn(status.clone().run(client.clone(), shared.window)),
        tokio::spawn(heartbeat::heartbeat_loop(
            client.clone(),
            identity.name.clone(),
            reg,
            registered_tx,
        )),
    ]);
    if registered.await.is_err() {
        return;
    }
    NodeAllocs::new(
        client,
        identity.name,
        shared.drivers,
        status,
        shared.interner,
    )
    .run()
    .await;
}

/// Runs `caravan nodesim` until `--run-for` has passed or the process is interrupted.
pub async fn run(args: NodesimArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes > 0, "--nodes must be at least 1");
    let started = Instant::now();
    let sim = Simulator::start(&args)?;
    println!(
        "nodesim: {} nodes ({}-00000 …) against {}, {} MHz / {} MB each, datacenters {}",
        args.nodes,
        args.name_prefix,
        args.servers,
        args.cpu,
        args.memory,
        args.datacenters.join(",")
    );
    let deadline = args.run_for.map(|d| tokio::time::Instant::now() + d);
    let mut ticker = tokio::time::interval(args.report_every);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                println!("[{:>7.1}s] {}", started.elapsed().as_secs_f64(), sim.stats());
            }
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => futures::future::pending().await,
                }
            } => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    println!(
        "[{:>7.1}s] {}",
        started.elapsed().as_secs_f64(),
        sim.stats()
    );
    drop(sim);
    Ok(())
}
