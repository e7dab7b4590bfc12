//! `caravan agent`: a server, a client (node agent), or both in one process with `--dev`, as
//! `nomad agent` does.

mod args;
pub mod file;
mod servers;
mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use caravan_apiserver::raft::StoreConfig;
use caravan_apiserver::{ApiConfig, Server, ServerConfig};
use caravan_controllers::leader::LeaderConfig;
use caravan_nodeagent::agent::{Agent, ClientConfig, Shutdown};
use caravan_nodeagent::fingerprint::HostNetworkConfig;
use tokio::sync::watch;

pub use self::args::AgentArgs;

/// The settings after merging flags, the config file and defaults.
struct Settings {
    dev: bool,
    server: bool,
    client: bool,
    http_addr: SocketAddr,
    log_level: String,
    region: String,
    datacenter: String,
    /// HTTPS on the API.
    tls: bool,
}

fn parse_addr(flag: &str, value: &str) -> anyhow::Result<SocketAddr> {
    value
        .parse()
        .with_context(|| format!("invalid {flag} {value:?}: expected HOST:PORT"))
}

fn parse_meta(entries: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    entries
        .iter()
        .map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("invalid --meta {e:?}: expected KEY=VALUE"))
        })
        .collect()
}

/// The client's port settings: the dynamic range (Nomad's defaults unless given) and the
/// reserved ports, checked. An agent with settings it cannot use refuses to start.
struct Ports {
    min_dynamic: u16,
    max_dynamic: u16,
    reserved: Option<String>,
}

fn ports(args: &AgentArgs) -> anyhow::Result<Ports> {
    let ports = Ports {
        min_dynamic: args
            .min_dynamic_port
            .unwrap_or(caravan_schemas::ports::DEFAULT_MIN_DYNAMIC_PORT),
        max_dynamic: args
            .max_dynamic_port
            .unwrap_or(caravan_schemas::ports::DEFAULT_MAX_DYNAMIC_PORT),
        reserved: args.reserved_ports.clone(),
    };
    anyhow::ensure!(
        ports.min_dynamic <= ports.max_dynamic,
        "--min-dynamic-port ({}) is above --max-dynamic-port ({}) (config file: \
         client.minDynamicPort, client.maxDynamicPort)",
        ports.min_dynamic,
        ports.max_dynamic
    );
    if let Some(list) = &ports.reserved {
        caravan_schemas::ports::parse_port_list(list).map_err(|e| {
            anyhow::anyhow!(
                "invalid --reserved-ports {list:?} (config file: client.reserved.reservedPorts): \
                 {e}; expected ports and ranges such as 22,80,8000-8100"
            )
        })?;
    }
    // The node agent's own check, which it makes again when it starts.
    caravan_nodeagent::agent::config::check_ports(
        ports.min_dynamic,
        ports.max_dynamic,
        ports.reserved.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    Ok(ports)
}

/// The named host networks: the config file's `client.hostNetworks`, each replaced by a
/// `--host-network NAME=INTERFACE` of the same name, then the flags' others; checked. An agent
/// with host networks it cannot use refuses to start.
fn host_networks(args: &AgentArgs) -> anyhow::Result<Vec<HostNetworkConfig>> {
    let mut flags: Vec<HostNetworkConfig> = Vec::new();
    for entry in &args.host_network {
        let (name, interface) = entry
            .split_once('=')
            .filter(|(n, i)| !n.trim().is_empty() && !i.trim().is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!("invalid --host-network {entry:?}: expected NAME=INTERFACE")
            })?;
        flags.push(HostNetworkConfig {
            name: name.trim().to_string(),
            interface: Some(interface.trim().to_string()),
            ..Default::default()
        });
    }
    let mut blocks: Vec<HostNetworkConfig> = args
        .file_host_networks
        .iter()
        .filter(|b| !flags.iter().any(|f| f.name == b.name))
        .cloned()
        .collect();
    blocks.extend(flags);
    caravan_nodeagent::fingerprint::check_host_networks(&blocks, args.network_interface.as_deref())
        .map_err(|e| {
            anyhow::anyhow!(
                "invalid host networks (--host-network, config file: client.hostNetworks): {e}"
            )
        })?;
    Ok(blocks)
}

/// Whether these arguments (with their config file) run a client and no server. A config
/// file that cannot be read answers no here and fails in [`run`].
pub fn client_only(args: &AgentArgs) -> bool {
    let args = match &args.config {
        Some(path) => match file::read(path) {
            Ok(config) => file::merge(args.clone(), config),
            Err(_) => return false,
        },
        None => args.clone(),
    };
    args.client && !args.server && !args.dev
}

/// Runs the agent until SIGINT or SIGTERM.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let args = match &args.config {
        Some(path) => file::merge(args.clone(), file::read(path)?),
        None => args,
    };
    let settings = Settings {
        dev: args.dev,
        server: args.dev || args.server,
        client: args.dev || args.client,
        http_addr: parse_addr(
            "--http-addr",
            args.http_addr.as_deref().unwrap_or("127.0.0.1:4646"),
        )?,
        log_level: args.log_level.clone().unwrap_or_else(|| "info".into()),
        region: args.region.clone().unwrap_or_else(|| "global".into()),
        datacenter: args.datacenter.clone().unwrap_or_else(|| "dc1".into()),
        tls: args.tls.http,
    };
    init_logging(&settings.log_level);
    if !settings.server && !settings.client {
        anyhow::bail!("caravan agent needs --dev, --server or --client");
    }
    if settings.client && !settings.server && args.servers.is_empty() {
        anyhow::bail!("caravan agent --client needs --servers ADDR[,ADDR]");
    }
    // Before anything starts: settings the client could not use.
    ports(&args)?;
    host_networks(&args)?;
    if settings.client
        && let Some(iface) = &args.network_interface
    {
        caravan_nodeagent::fingerprint::check_network_interface(iface)
            .context("invalid --network-interface (config file: client.networkInterface)")?;
    }
    if !settings.client {
        crate::limits::raise_open_files();
    }
    // A dev agent without --data-dir keeps its state in a directory removed at exit.
    let (data_dir, temp) = match &args.data_dir {
        Some(dir) => (dir.clone(), None),
        None if settings.dev => {
            let temp = tempfile::Builder::new()
                .prefix("caravan-dev-")
                .tempdir()
                .context("failed to create a temporary data directory")?;
            (temp.path().to_path_buf(), Some(temp))
        }
        None => anyhow::bail!("caravan agent needs --data-dir (or --dev)"),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("failed to create the data directory {}", data_dir.display()))?;

    let tls = tls::start(&args.tls)?;
    let (stop_tx, stop_rx) = watch::channel(None::<Shutdown>);
    let server = if settings.server {
        Some(start_server(&args, &settings, &data_dir, tls.clone()).await?)
    } else {
        None
    };
    let agent = if settings.client {
        let servers = match &server {
            Some(s) => s.local_addr.to_string(),
            None => args.servers.join(","),
        };
        let mut config = client_config(&args, &settings, servers, &data_dir, temp.is_some())?;
        config.tls = tls.clone();
        Some(Agent::start(config).await?)
    } else {
        None
    };
    print_banner(&settings, server.as_ref(), agent.as_ref(), &data_dir);

    let client_task = agent.map(|agent| {
        let mut stop = stop_rx.clone();
        tokio::spawn(agent.run(async move {
            match stop.wait_for(Option::is_some).await {
                Ok(mode) => mode.unwrap_or_default(),
                Err(_) => Shutdown::Stop,
            }
        }))
    });
    match server {
        Some(server) => {
            // A Raft core that stopped on its own (a storage failure, a broken invariant)
            // cannot write again: exit non-zero, so that a supervisor restarts the agent.
            let store = server.store.clone();
            tokio::spawn(async move {
                let why = store.failed().await;
                tracing::error!(reason = %why, "the Raft core stopped: exiting");
                eprintln!(
                    "==> the Raft core stopped ({why}): exiting so that the agent is restarted"
                );
                std::process::exit(EXIT_RAFT_FAILED);
            });
            let leave_args = args.clone();
            let ctx = server.ctx.clone();
            let shutdown = async move {
                let signal = shutdown_signal().await;
                let mode = shutdown_mode(&leave_args, signal);
                let _ = stop_tx.send(Some(mode));
                // Let the client stop its tasks (dev) and report before the API goes away.
                if let Some(task) = client_task {
                    let _ = task.await;
                }
                if mode == Shutdown::Leave
                    && let Some(cluster) = ctx.cluster()
                {
                    cluster.leave_voters().await;
                }
            };
            server.serve(shutdown).await?;
        }
        None => {
            let signal = shutdown_signal().await;
            let _ = stop_tx.send(Some(shutdown_mode(&args, signal)));
            if let Some(task) = client_task {
                task.await??;
            }
        }
    }
    drop(temp);
    eprintln!("==> Caravan agent shut down gracefully");
    Ok(())
}

/// The exit code of an agent whose Raft core stopped on its own (`EX_SOFTWARE`).
const EXIT_RAFT_FAILED: i32 = 70;

async fn start_server(
    args: &AgentArgs,
    settings: &Settings,
    data_dir: &Path,
    tls: Option<std::sync::Arc<caravan_tls::Tls>>,
) -> anyhow::Result<Server> {
    let advertise = match &args.advertise_addr {
        Some(host) => format!("{host}:{}", settings.http_addr.port()),
        None => settings.http_addr.to_string(),
    };
    let mut store = StoreConfig::new(data_dir.join("raft"), advertise);
    // Bootstrap alone only as a lone server; otherwise gossip decides (see servers.rs).
    store.bootstrap = servers::bootstrap_expect(args) == 1 && args.join.is_empty();
    if let Some(timeout) = args.raft_election_timeout {
        store.election_timeout = timeout;
    }
    store.snapshot_threshold = args.snapshot_threshold.unwrap_or(10_000);
    store.watch_cache_size = args.watch_cache_size.unwrap_or(20_000);
    let joins_others =
        !args.join.is_empty() || !args.join_wan.is_empty() || servers::bootstrap_expect(args) > 1;
    if joins_others
        && args.cluster_secret.is_none()
        && !caravan_apiserver::cluster::secret::ClusterSecret::is_kept_in(data_dir)
    {
        anyhow::bail!(
            "the servers of a cluster share one secret: give every server the same \
             --cluster-secret (or CARAVAN_CLUSTER_SECRET, or server.clusterSecret in the config \
             file), e.g. from `head -c 32 /dev/urandom | base64`"
        );
    }
    // The leader runs the evaluator, the broker, the workers, the drainer and GC; they start
    // and stop with leadership.
    let leader_config = leader_config(args)?;
    let controllers = (!args.no_controllers)
        .then(|| servers::controllers(leader_config, tls.clone(), &settings.region));
    let mut api = ApiConfig::default();
    if let Some(ttl) = args.heartbeat_min_ttl {
        api.heartbeat.min_ttl = ttl;
    }
    if let Some(grace) = args.heartbeat_grace {
        api.heartbeat.grace = grace;
    }
    if let Some(kept) = args.job_tracked_versions {
        anyhow::ensure!(kept > 0, "--job-tracked-versions must be at least 1");
        api.job_versions_kept = kept;
    }
    api.acl = caravan_apiserver::acl::AclConfig {
        enabled: args.acl_enabled,
        bootstrap_reset_file: Some(data_dir.join("acl-bootstrap-reset")),
    };
    Server::start(ServerConfig {
        data_dir: data_dir.to_path_buf(),
        http_addr: settings.http_addr,
        store: Some(store),
        api,
        cluster: Some(servers::cluster_settings(
            args,
            settings,
            settings.http_addr,
        )?),
        cluster_secret: args.cluster_secret.clone(),
        controllers,
        tls,
    })
    .await
}

/// The leader's settings: garbage collection from the flags, the rest defaults.
fn leader_config(args: &AgentArgs) -> anyhow::Result<LeaderConfig> {
    let mut config = LeaderConfig::default();
    if let Some(n) = args.num_schedulers {
        config.workers = n;
    }
    let gc = &mut config.gc;
    if let Some(interval) = args.gc_interval {
        anyhow::ensure!(
            !interval.is_zero(),
            "--gc-interval must be longer than zero"
        );
        gc.interval = interval;
    }
    let thresholds = &mut gc.thresholds;
    for (flag, threshold) in [
        (args.node_gc_threshold, &mut thresholds.node),
        (args.job_gc_threshold, &mut thresholds.job),
        (args.eval_gc_threshold, &mut thresholds.eval),
        (args.batch_eval_gc_threshold, &mut thresholds.batch_eval),
        (args.deployment_gc_threshold, &mut thresholds.deployment),
    ] {
        if let Some(value) = flag {
            *threshold = value;
        }
    }
    Ok(config)
}

/// The drivers a client enables when it names none: Nomad's rule, `raw_exec` (a plain process
/// as the agent's user, no isolation) only on a dev agent; a client must enable it explicitly
/// (`--drivers raw_exec,exec,oci,mock`).
fn default_drivers(dev: bool) -> Vec<String> {
    let drivers: &[&str] = if dev {
        &["raw_exec", "exec", "oci", "mock"]
    } else {
        &["exec", "oci", "mock"]
    };
    drivers.iter().map(|d| (*d).to_string()).collect()
}

fn client_config(
    args: &AgentArgs,
    settings: &Settings,
    servers: String,
    data_dir: &Path,
    ephemeral: bool,
) -> anyhow::Result<ClientConfig> {
    let mut config = ClientConfig::new(servers, data_dir);
    config.name = args.name.clone();
    config.datacenter = settings.datacenter.clone();
    if let Some(pool) = &args.node_pool {
        config.node_pool = pool.clone();
    }
    config.node_class = args.node_class.clone();
    config.meta = parse_meta(&args.meta)?;
    config.reserved_cpu = args.reserved_cpu.unwrap_or(0);
    config.reserved_memory_mb = args.reserved_memory.unwrap_or(0);
    let ports = ports(args)?;
    config.min_dynamic_port = ports.min_dynamic;
    config.max_dynamic_port = ports.max_dynamic;
    config.reserved_ports = ports.reserved;
    config.network_interface = args.network_interface.clone();
    config.host_networks = host_networks(args)?;
    if let Some(subnet) = &args.bridge_network_subnet {
        config.bridge_network_subnet = subnet.clone();
    }
    config.region = settings.region.clone();
    if let Some(max) = args.max_kill_timeout {
        config.max_kill_timeout = max;
    }
    let default_http = if settings.server {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:4647"
    };
    config.http_addr = parse_addr(
        "--client-http-addr",
        args.client_http_addr.as_deref().unwrap_or(default_http),
    )?;
    if let Some(dir) = &args.image_dir {
        config.image_dir = dir.clone();
    }
    if !args.allow_caps.is_empty() {
        config.allow_caps =
            caravan_nodeagent::executor::capabilities::parse_allow_list(&args.allow_caps)
                .map_err(|e| anyhow::anyhow!("invalid --allow-caps (client.allowCaps): {e}"))?;
    }
    config.drivers = Some(if args.drivers.is_empty() {
        default_drivers(args.dev)
    } else {
        args.drivers.clone()
    });
    // A throw-away dev agent takes its tasks with it; any other agent leaves them running
    // for its next start to re-attach.
    config.stop_tasks_on_shutdown = ephemeral;
    if let Some(deadline) = args.leave_deadline {
        config.leave_deadline = deadline;
    }
    Ok(config)
}

fn print_banner(
    settings: &Settings,
    server: Option<&Server>,
    agent: Option<&Agent>,
    data_dir: &Path,
) {
    let mut advertise = Vec::new();
    if let Some(s) = server {
        advertise.push(format!("HTTP: {}", s.local_addr));
    }
    if let Some(a) = agent {
        advertise.push(format!("Client API: {}", a.http_addr()));
    }
    let mut rows = vec![
        ("Advertise Addrs", advertise.join("; ")),
        ("Client", agent.is_some().to_string()),
        ("Data Dir", data_dir.display().to_string()),
        ("Log Level", settings.log_level.to_uppercase()),
    ];
    if let Some(a) = agent {
        rows.push(("Node Name", a.node_name().to_string()));
    }
    rows.extend([
        (
            "Region",
            format!("{} (DC: {})", settings.region, settings.datacenter),
        ),
        ("Server", server.is_some().to_string()),
        ("Version", env!("CARGO_PKG_VERSION").to_string()),
    ]);
    let mode = if settings.dev {
        " (development mode)"
    } else {
        ""
    };
    println!("==> Caravan agent configuration{mode}:\n");
    for (k, v) in rows {
        println!("{k:>22}: {v}");
    }
    let api = server.map_or_else(
        || agent.map(|a| a.http_addr().to_string()).unwrap_or_default(),
        |s| s.local_addr.to_string(),
    );
    let scheme = if settings.tls { "https" } else { "http" };
    println!(
        "\n==> Caravan agent started! API at {scheme}://{api}; log data will stream in below:\n"
    );
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},openraft=warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The signal that stopped the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Interrupt,
    Terminate,
}

async fn shutdown_signal() -> Signal {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return Signal::Interrupt;
        }
    };
    tokio::select! {
        _ = ctrl_c => Signal::Interrupt,
        _ = term.recv() => Signal::Terminate,
    }
}

/// Whether the client leaves (drains itself) on `signal`, per `leave_on_interrupt` and
/// `leave_on_terminate`; otherwise it stops at once, as Nomad's agents do by default.
fn shutdown_mode(args: &AgentArgs, signal: Signal) -> Shutdown {
    let leave = match signal {
        Signal::Interrupt => args.leave_on_interrupt,
        Signal::Terminate => args.leave_on_terminate,
    };
    if leave {
        Shutdown::Leave
    } else {
        Shutdown::Stop
    }
}

#[cfg(test)]
mod tests;
