//! `caravan bench`: load generators for the API (`api`) and for watch fan-out (`watch`), and
//! the in-memory scheduler speed test (`scheduler`); on a node, one container's cost against
//! runc (`container`) and the time from a job's create to its task running (`startup`).
//!
//! `api` and `watch` run against a live server and check their own counts at the end: a
//! benchmark that loses or duplicates an object fails instead of printing a number.

mod api;
mod c1m;
mod container;
mod payload;
mod placement;
mod report;
pub mod scheduler;
mod startup;
mod target;
mod watch;

use std::time::Duration;

use clap::{Args, Subcommand};

/// Arguments of `caravan bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Create, update, get and list Jobs from many concurrent clients and report throughput
    /// and latency per operation (or drive etcd's JSON gateway the same way with `--etcd`).
    Api(ApiBenchArgs),
    /// Open many watches, write Jobs, and report the delivery latency to every watcher and the
    /// server's memory per watcher (or the same against etcd with `--etcd`).
    Watch(WatchBenchArgs),
    /// Run the service scheduler on an in-memory cluster (no server) and report placements/s.
    Scheduler(SchedulerBenchArgs),
    /// Register nodes, submit jobs, and measure placements committed per second end to end.
    Placement(PlacementBenchArgs),
    /// Run one container to its exit through the oci driver and through `runc run`, and
    /// compare (root, runc, busybox-static).
    Container(ContainerBenchArgs),
    /// Create batch jobs one at a time against a dev agent and time each from the create
    /// request to its task running.
    Startup(StartupBenchArgs),
    /// Nomad's C1M: many jobs of many allocations on simulated nodes; time to placed and to
    /// running, evaluation latency, server memory and CPU (starts its own server and nodes
    /// unless told otherwise).
    C1m(c1m::C1mBenchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ApiBenchArgs {
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 256)]
    pub clients: usize,
    /// Approximate size of each Job as JSON (e.g. 1KiB, 512B, 4KiB).
    #[arg(long, default_value = "1KiB", value_parser = payload::parse_size)]
    pub size: usize,
    /// How long to run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Total requests per second to offer (open loop, latency measured from the scheduled
    /// send time); unlimited when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// The operations to measure, one phase of `--duration` each, in this order. Updates and
    /// gets use the objects the clients created (a few are created first when there are none).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "create,update,get,list"
    )]
    pub ops: Vec<api::Op>,
    /// Drive the etcd member at this URL (its v3 JSON gateway, e.g. http://127.0.0.1:2379)
    /// instead of Caravan, with the same documents and clients.
    #[arg(long, value_name = "URL")]
    pub etcd: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct WatchBenchArgs {
    /// Concurrent watch streams.
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    /// Jobs written while the watches run.
    #[arg(long, default_value_t = 2000)]
    pub events: usize,
    /// Writes per second.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Approximate size of each Job as JSON.
    #[arg(long, default_value = "1KiB", value_parser = payload::parse_size)]
    pub size: usize,
    /// Watch the etcd member at this URL (its v3 JSON gateway) instead of Caravan.
    #[arg(long, value_name = "URL")]
    pub etcd: Option<String>,
    /// Carry this many watches per connection as HTTP/2 streams (cleartext, prior knowledge),
    /// as Kubernetes clients multiplex their watches; by default every watch has its own
    /// HTTP/1.1 connection.
    #[arg(long, value_name = "N")]
    pub streams_per_connection: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct PlacementBenchArgs {
    /// Nodes to register (4,000 MHz and 16 GiB each).
    #[arg(long, default_value_t = 5000)]
    pub nodes: usize,
    /// Jobs to submit.
    #[arg(long, default_value_t = 100)]
    pub jobs: usize,
    /// Allocations per job (100 MHz, 64 MB each).
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Args)]
pub struct SchedulerBenchArgs {
    /// Nodes in the in-memory cluster (4000 MHz, 8 GiB each).
    #[arg(long, default_value_t = 5000)]
    pub nodes: usize,
    /// Allocations of the service job to place.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Measured runs, after one warm-up run.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Dynamic host ports each allocation asks for.
    #[arg(long, default_value_t = 0)]
    pub ports: usize,
}

#[derive(Debug, Clone, Args)]
pub struct ContainerBenchArgs {
    /// Measured runs of each side.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// Runs of each side before measuring, not counted.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
}

#[derive(Debug, Clone, Args)]
pub struct StartupBenchArgs {
    /// The task's driver.
    #[arg(long, default_value = "raw_exec", value_parser = ["raw_exec", "oci", "mock"])]
    pub driver: String,
    /// Jobs to create, one after the other.
    #[arg(long, default_value_t = 30)]
    pub jobs: usize,
    /// Image of `oci` tasks (a name in the node's image store).
    #[arg(long, default_value = "busybox")]
    pub image: String,
    /// Give up on a job whose task is not running after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
}

/// Runs a benchmark against `address` (the first of a comma-separated list).
/// What `bench api` presents to a server with ACLs and TLS: the global `--token`, and
/// `--ca-cert` (with `--client-cert`/`--client-key`) for an `https://` address.
#[derive(Clone, Default)]
pub struct Credentials {
    pub token: Option<String>,
    pub tls: Option<std::sync::Arc<caravan_tls::Tls>>,
    pub server_name: Option<String>,
}

impl Credentials {
    /// `builder` presenting these credentials.
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> anyhow::Result<reqwest::ClientBuilder> {
        let mut builder = builder;
        if let Some(token) = &self.token {
            let mut headers = reqwest::header::HeaderMap::new();
            let mut value: reqwest::header::HeaderValue = format!("Bearer {token}").parse()?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
            builder = builder.default_headers(headers);
        }
        if let Some(tls) = &self.tls {
            builder = builder.use_preconfigured_tls(
                tls.client_config(caravan_tls::Peer::Named(self.server_name.clone())),
            );
        }
        Ok(builder)
    }
}

pub async fn run(address: &str, args: BenchArgs, credentials: Credentials) -> anyhow::Result<()> {
    let base = address
        .split(',')
        .next()
        .unwrap_or(address)
        .trim_end_matches('/')
        .to_string();
    match args.command {
        BenchCommand::Api(a) => api::run(&base, a, &credentials).await,
        BenchCommand::Watch(w) => watch::run(&base, w).await,
        BenchCommand::Scheduler(s) => scheduler::run(s).await,
        BenchCommand::Placement(p) => placement::run(&base, p).await,
        BenchCommand::Container(c) => container::run(c).await,
        BenchCommand::Startup(s) => startup::run(&base, s).await,
        BenchCommand::C1m(c) => c1m::run(c).await,
    }
}
