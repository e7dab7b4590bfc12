//! `caravan agent`: runs a server (and, in later releases, a node agent) until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use caravan_apiserver::http::LocalClient;
use caravan_apiserver::raft::StoreConfig;
use caravan_apiserver::{Server, ServerConfig};
use caravan_controllers::leader::LeaderConfig;

/// Arguments of `caravan agent`.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// Run a single-node development cluster with its state in a temporary directory.
    #[arg(long)]
    pub dev: bool,
    /// Run as a server (implied by --dev).
    #[arg(long)]
    pub server: bool,
    /// Directory holding the Raft log, snapshots and local state (kept across restarts).
    #[arg(long, env = "CARAVAN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address the HTTP API listens on.
    #[arg(long, default_value = "127.0.0.1:4646", env = "CARAVAN_HTTP_ADDR")]
    pub http_addr: String,
    /// Log level: trace, debug, info, warn or error.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Build a Raft snapshot after this many log entries.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_threshold: u64,
    /// Events kept per kind for watches to resume from.
    #[arg(long, default_value_t = 20_000)]
    pub watch_cache_size: usize,
    /// Region of this agent.
    #[arg(long, default_value = "global")]
    pub region: String,
    /// Datacenter of this agent.
    #[arg(long, default_value = "dc1")]
    pub datacenter: String,
    /// Serve only the API and the store: no evaluator, broker or scheduler workers (for
    /// controllers run out of process, and for benchmarking the API alone).
    #[arg(long)]
    pub no_controllers: bool,
}

/// Runs the agent until SIGINT or SIGTERM.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    init_logging(&args.log_level);
    if !args.dev && !args.server {
        anyhow::bail!(
            "caravan agent needs --dev or --server (client mode comes with the node agent)"
        );
    }
    let http_addr: SocketAddr = args.http_addr.parse().with_context(|| {
        format!(
            "invalid --http-addr {:?}: expected HOST:PORT",
            args.http_addr
        )
    })?;
    // A dev agent without --data-dir keeps its state in a directory removed at exit.
    let (data_dir, _temp) = match &args.data_dir {
        Some(dir) => (dir.clone(), None),
        None if args.dev => {
            let temp = tempfile::Builder::new()
                .prefix("caravan-dev-")
                .tempdir()
                .context("failed to create a temporary data directory")?;
            (temp.path().to_path_buf(), Some(temp))
        }
        None => anyhow::bail!("caravan agent --server needs --data-dir"),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("failed to create the data directory {}", data_dir.display()))?;
    let mut store = StoreConfig::new(data_dir.join("raft"), http_addr.to_string());
    store.snapshot_threshold = args.snapshot_threshold;
    store.watch_cache_size = args.watch_cache_size;
    let server = Server::start(ServerConfig {
        data_dir: data_dir.clone(),
        http_addr,
        store: Some(store),
        api: Default::default(),
    })
    .await?;
    print_banner(&args, &server, &data_dir);
    // A single server is always the leader: it runs the evaluator, the broker and the workers.
    let leader = (!args.no_controllers).then(|| {
        tokio::spawn(caravan_controllers::leader::run(
            LocalClient::new(server.ctx.clone()),
            LeaderConfig::default(),
        ))
    });
    let served = server.serve(shutdown_signal()).await;
    if let Some(leader) = leader {
        leader.abort();
    }
    served?;
    eprintln!("==> Caravan agent shut down gracefully");
    Ok(())
}

fn print_banner(args: &AgentArgs, server: &Server, data_dir: &std::path::Path) {
    let addr = server.local_addr;
    let rows = [
        ("Advertise Addrs", format!("HTTP: {addr}")),
        ("Bind Addrs", format!("HTTP: {addr}")),
        ("Client", "false".to_string()),
        ("Data Dir", data_dir.display().to_string()),
        ("Log Level", args.log_level.to_uppercase()),
        (
            "Region",
            format!("{} (DC: {})", args.region, args.datacenter),
        ),
        ("Server", "true".to_string()),
        ("Version", env!("CARGO_PKG_VERSION").to_string()),
    ];
    let mode = if args.dev { " (development mode)" } else { "" };
    println!("==> Caravan agent configuration{mode}:\n");
    for (k, v) in rows {
        println!("{k:>22}: {v}");
    }
    println!("\n==> Caravan agent started! API at http://{addr}; log data will stream in below:\n");
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},openraft=warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
