//! `caravan bench c1m`: Nomad's million container challenge, scaled to taste. Submits
//! `--jobs` service jobs of `--count` mock tasks to a cluster of `--nodes` simulated nodes and
//! reports the time until every allocation is placed and until every one is reported running,
//! placements per second, evaluation latency, plan rejections, and the server's memory and CPU.
//!
//! ```text
//!  no --servers: caravan agent --server (child, temp dir)   ┐
//!  no --external-nodes: nodesim::Simulator (this process)   ┴─▶ wait: nodes ready + watching
//!  evaluation watch ─▶ submit jobs ─▶ poll /metrics (placed) + simulator (running) ─▶ check
//! ```
//!
//! The run ends with a check on what the server holds: exactly `jobs × count` allocations,
//! one per (job, group, index), all meant to run and reported running. A run that loses or
//! duplicates an allocation fails instead of printing a number.

mod check;
mod evals;
mod jobs;
mod measure;
mod server;

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use caravan_client::HttpClient;
use clap::Args;

use self::evals::EvalWatch;
use self::jobs::{JobShape, RUN_LABEL};
use self::measure::{Sources, Timeline};
use self::server::LocalServer;
use super::report::summary;
use crate::nodesim::{NodesimArgs, Simulator};
use caravan_apiserver::procfs::{self, gib};

#[derive(Debug, Clone, Args)]
pub struct C1mBenchArgs {
    /// Jobs to submit.
    #[arg(long, default_value_t = 1000)]
    pub jobs: usize,
    /// Allocations per job.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Simulated nodes.
    #[arg(long, default_value_t = 5000)]
    pub nodes: usize,
    /// A running cluster's servers; without it the bench starts `caravan agent --server`
    /// itself, with its state in a temporary directory.
    #[arg(long)]
    pub servers: Option<String>,
    /// Pid of the server given with --servers, when it runs on this machine: its RSS and CPU
    /// are then reported.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The nodes are simulated by another process (`caravan nodesim`): wait for --nodes ready
    /// nodes instead of simulating them here, and check the running count on the server.
    #[arg(long)]
    pub external_nodes: bool,
    /// Hard constraints on every job (a different tenth of the nodes excluded per job).
    #[arg(long)]
    pub constraints: bool,
    /// A spread over the nodes' racks on every job.
    #[arg(long)]
    pub spread: bool,
    /// Datacenters of the nodes and the jobs.
    #[arg(long, value_delimiter = ',', default_value = "dc1")]
    pub datacenters: Vec<String>,
    /// CPU of each node in MHz.
    #[arg(long, default_value_t = 8000)]
    pub cpu: u64,
    /// Memory of each node in MB.
    #[arg(long, default_value_t = 16384)]
    pub memory: u64,
    /// CPU of each task in MHz.
    #[arg(long, default_value_t = 20)]
    pub task_cpu: u64,
    /// Memory of each task in MB.
    #[arg(long, default_value_t = 32)]
    pub task_memory: u64,
    /// Simulated nodes started per second.
    #[arg(long, default_value_t = 500.0)]
    pub register_rate: f64,
    /// Job create requests in flight.
    #[arg(long, default_value_t = 16)]
    pub submit_concurrency: usize,
    /// Jobs submitted per second [default: as fast as the server takes them]. Below the
    /// placement rate, evaluations do not queue and their latency is the scheduling's own.
    #[arg(long)]
    pub submit_rate: Option<f64>,
    /// Give up when the allocations are not all running after this long.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Give up when the server's RSS passes this many MiB.
    #[arg(long, default_value_t = 16 * 1024)]
    pub max_server_rss_mb: u64,
    /// An extra flag for the server the bench starts, e.g. `--server-arg=--watch-cache-size=100000`
    /// (repeatable).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
}

/// Runs the benchmark.
pub async fn run(args: C1mBenchArgs) -> anyhow::Result<()> {
    ensure!(
        args.jobs > 0 && args.count > 0 && args.nodes > 0,
        "--jobs, --count and --nodes must be at least 1"
    );
    let count = u32::try_from(args.count).context("--count is too large")?;
    let mut local = match &args.servers {
        None => Some(LocalServer::start(&args.server_args).await?),
        Some(_) => None,
    };
    let address = match (&local, &args.servers) {
        (Some(server), _) => server.address().to_string(),
        (None, Some(servers)) => servers.clone(),
        (None, None) => unreachable!("a server was started above"),
    };
    let base = address.split(',').next().unwrap_or(&address).to_string();
    let base = if base.contains("://") {
        base
    } else {
        format!("http://{base}")
    };
    let server_pid = local.as_ref().map(LocalServer::pid).or(args.server_pid);
    let client = HttpClient::new(&address)?;
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
            & 0xff_ffff
    );
    let shape = JobShape {
        count: args.count,
        task_cpu: args.task_cpu,
        task_memory_mb: args.task_memory,
        datacenters: args.datacenters.clone(),
        constraints: args.constraints,
        spread: args.spread,
    };
    let total = args.jobs as u64 * u64::from(count);
    println!(
        "bench c1m: {} jobs × {} allocations = {total} (service, mock driver, {} MHz / {} MB \
         each, variant {}) on {} nodes ({} MHz / {} MB), server {} ({})",
        args.jobs,
        args.count,
        args.task_cpu,
        args.task_memory,
        shape.variant(),
        args.nodes,
        args.cpu,
        args.memory,
        base,
        if local.is_some() {
            "started by the bench: caravan agent --server"
        } else {
            "given with --servers"
        },
    );

    let sim = if args.external_nodes {
        None
    } else {
        let mut sim_args = NodesimArgs::new(&address, args.nodes);
        sim_args.datacenters = args.datacenters.clone();
        sim_args.cpu = args.cpu;
        sim_args.memory = args.memory;
        sim_args.register_rate = args.register_rate;
        if local.is_none() {
            sim_args.name_prefix = format!("c1m-{run_id}");
        }
        Some(Simulator::start(&sim_args)?)
    };
    let t = Instant::now();
    let ready = measure::wait_nodes(&client, sim.as_ref(), args.nodes as u64, args.timeout).await?;
    println!(
        "nodes: {ready} ready in {:.1} s{}",
        t.elapsed().as_secs_f64(),
        if sim.is_some() {
            format!(
                ", each watching its allocations ({} simulated here)",
                args.nodes
            )
        } else {
            String::new()
        }
    );

    let http = reqwest::Client::new();
    let before = measure::allocation_count(&http, &base).await?;
    let evals = EvalWatch::start(&client, &format!("c1m-{run_id}-")).await?;
    let job_names: Vec<String> = (0..args.jobs).map(|i| jobs::job_name(&run_id, i)).collect();
    let server_start = server_pid.and_then(|p| procfs::sample(Some(p)));
    let self_start = procfs::sample(None);
    let started = Instant::now();
    let pace = (args.submit_concurrency, args.submit_rate);
    measure::submit(&client, &run_id, &shape, args.jobs, pace).await?;
    println!(
        "jobs: {} submitted in {:.2} s (label {RUN_LABEL}={run_id})",
        args.jobs,
        started.elapsed().as_secs_f64()
    );
    let mut sources = Sources {
        client: &client,
        http,
        base: base.clone(),
        sim: sim.as_ref(),
        server: local.as_mut(),
        server_pid,
        evals: &evals,
        before,
        job_names: &job_names,
        count,
    };
    let timeline = measure::follow(
        &mut sources,
        started,
        args.timeout,
        args.max_server_rss_mb << 20,
    )
    .await?;
    let wall = started.elapsed();
    let server_end = server_pid.and_then(|p| procfs::sample(Some(p)));
    let self_end = procfs::sample(None);
    // Evaluations finish once their plan is committed: give the last events a moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    while evals.stats().finished < args.jobs as u64 && evals.watching() && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let rows = check::fetch(&client, &job_names).await?;
    let report = check::check(&job_names, count, &rows);
    print_results(&args, total, &timeline, &evals, local.as_ref());
    let cpu_line = |start: Option<procfs::Sample>, end: Option<procfs::Sample>| match (start, end) {
        (Some(s), Some(e)) => {
            let cpu = e.cpu.saturating_sub(s.cpu);
            // Per allocation: what bounds the rate on a machine of a given size.
            format!(
                "RSS {} at the end (peak {}), CPU {:.1} s over the {:.1} s run = {:.2} cores, \
                 {:.0} µs per allocation",
                gib(e.rss_bytes),
                gib(e.peak_rss_bytes),
                cpu.as_secs_f64(),
                wall.as_secs_f64(),
                cpu.as_secs_f64() / wall.as_secs_f64(),
                cpu.as_secs_f64() * 1e6 / total.max(1) as f64
            )
        }
        _ => "not measured (give --server-pid for a local server)".to_string(),
    };
    println!("server: {}", cpu_line(server_start, server_end));
    if let Some(sim) = &sim {
        println!(
            "simulator (this process): {}",
            cpu_line(self_start, self_end)
        );
        println!("simulator: {}", sim.stats());
    }
    let started_by_sim = sim.as_ref().map(|s| s.stats().allocs_started);
    println!("check: {report}");
    ensure!(report.passed(), "the count check failed");
    if let Some(n) = started_by_sim {
        ensure!(
            n == total,
            "the simulated nodes started {n} allocations, not {total}: one was delivered twice"
        );
    }
    if local.is_none() {
        println!(
            "note: the jobs stay on the cluster (label {RUN_LABEL}={run_id}); simulated nodes \
             stop heartbeating now and will be marked down"
        );
    }
    Ok(())
}

fn print_results(
    args: &C1mBenchArgs,
    total: u64,
    timeline: &Timeline,
    evals: &EvalWatch,
    local: Option<&LocalServer>,
) {
    let rate = |d: Option<Duration>| match d {
        Some(d) => format!(
            "in {:.2} s = {:.0}/s",
            d.as_secs_f64(),
            total as f64 / d.as_secs_f64()
        ),
        None => "never".into(),
    };
    println!("placed: {total} allocations {}", rate(timeline.placed));
    println!(
        "running: {total} allocations reported running {}",
        rate(timeline.running)
    );
    let e = evals.stats();
    println!(
        "evaluations: {} of {} finished ({} blocked, {} failed); latency {}",
        e.finished,
        args.jobs,
        e.blocked,
        e.failed,
        summary(&e.latency)
    );
    match local {
        Some(server) => {
            let r = server.rejections();
            println!(
                "plan rejections: {} node parts rejected, {} plans partly rejected",
                r.node_parts, r.plans
            );
        }
        None => println!("plan rejections: not observable on a server the bench did not start"),
    }
    if timeline.peak_server_rss > 0 {
        println!("server peak RSS sampled: {}", gib(timeline.peak_server_rss));
    }
}
