//! The `caravan` binary: parses the command line and dispatches.

use std::process::ExitCode;

use caravan::args::{Cli, Command};
use caravan::bench::{BenchArgs, BenchCommand};
use clap::Parser;

/// glibc malloc spends a large share of the API server's time consolidating chunks under
/// load (measured in docs/benchmarks.md); mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Agent(args) if caravan::agent::client_only(args) => {
            caravan::limits::exec_with_lean_allocator();
        }
        // Simulated nodes churn through buffers as a server does: many short-lived decoded
        // events and requests, each 2 MiB huge page zeroed at first touch otherwise.
        Command::Agent(_)
        | Command::Nodesim(_)
        | Command::Bench(BenchArgs {
            command: BenchCommand::C1m(_),
        }) => caravan::limits::disable_transparent_huge_pages(),
        _ => {}
    }
    // The executor forks containers (libcontainer's clone3) and must stay small: it runs
    // before, and without, any tokio runtime, on this single thread.
    if let Command::Executor(args) = cli.command {
        let code = caravan_nodeagent::executor::run(args);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    run(cli)
}

#[tokio::main]
async fn run(cli: Cli) -> ExitCode {
    // reqwest is built without a default TLS crypto provider; https addresses need one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = match cli.command {
        Command::Agent(mut args) => {
            // `--region` is global: for the agent it names the region it runs in.
            args.region = cli.global.region.clone();
            caravan::agent::run(*args).await
        }
        command => {
            if matches!(command, Command::Bench(_) | Command::Nodesim(_)) {
                caravan::limits::raise_open_files();
            }
            init_client_logging();
            caravan::cmd::run(cli.global, command).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(message) = caravan::report::render(&err) {
                eprintln!("{message}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Client commands log warnings to stderr; `RUST_LOG` raises the level.
fn init_client_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
