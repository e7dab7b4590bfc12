//! `caravan bench`: load generators for the API (`api`) and for watch fan-out (`watch`).
//!
//! Both run against a live server and check their own counts at the end: a benchmark that
//! loses or duplicates an object fails instead of printing a number.

mod api;
mod payload;
mod report;
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
    /// Create Jobs from many concurrent clients and report throughput and latency.
    Api(ApiBenchArgs),
    /// Open many watches, write Jobs, and report the delivery latency to every watcher.
    Watch(WatchBenchArgs),
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
}

/// Runs a benchmark against `address` (the first of a comma-separated list).
pub async fn run(address: &str, args: BenchArgs) -> anyhow::Result<()> {
    let base = address
        .split(',')
        .next()
        .unwrap_or(address)
        .trim_end_matches('/')
        .to_string();
    match args.command {
        BenchCommand::Api(a) => api::run(&base, a).await,
        BenchCommand::Watch(w) => watch::run(&base, w).await,
    }
}
