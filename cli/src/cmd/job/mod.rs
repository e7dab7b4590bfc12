//! `caravan job run|plan|status|stop`: Nomad's job workflow over the Kubernetes-style API.
//!
//! `run` and `stop` write the Job, then follow the Evaluation the server creates for the new
//! version ([`monitor`], driven by `wait`); `plan` asks the server's plan endpoint (a
//! scheduler dry run on the server's state, Nomad's `Job.Plan`) and prints the answer as
//! Nomad's plan ([`diff`]); `status` is Nomad's layout ([`status`]). Exit codes are Nomad's:
//! see [`exit`].

pub mod diff;
pub mod format;
pub mod monitor;
mod plan;
mod run;
pub mod status;
mod wait;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::cmd::Context;

/// Arguments of `caravan job`.
#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(subcommand)]
    pub command: JobCommand,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Submit a job and follow its evaluation (exit 2 when placements failed).
    Run(RunArgs),
    /// Show what submitting a job would change, computed by the server (exit 0: no allocation
    /// changes, 1: allocations created, stopped or replaced, 255: error).
    Plan(PlanArgs),
    /// List jobs, or show one job's groups, evaluations and allocations.
    Status(StatusArgs),
    /// Stop a job's allocations (`spec.stop`), or delete it with `--purge`.
    Stop(StopArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The Job manifest (YAML or JSON), or `-` for standard input.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Return after submitting, without following the evaluation.
    #[arg(long)]
    pub detach: bool,
    /// How long to wait for the evaluation.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The Job manifest (YAML or JSON), or `-` for standard input.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Also list the fields of added and removed jobs, groups and tasks.
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A job name; without one, every job of the namespace is listed.
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// The job to stop.
    pub name: String,
    /// Delete the job instead of marking it stopped.
    #[arg(long)]
    pub purge: bool,
    /// Return after the write, without following the evaluation.
    #[arg(long)]
    pub detach: bool,
    /// How long to wait for the evaluation.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Runs a `job` subcommand; non-zero exit codes other than 1 end the process here.
pub async fn run(ctx: &Context, args: JobArgs) -> anyhow::Result<()> {
    let code = match args.command {
        JobCommand::Run(a) => run::run(ctx, a).await?,
        JobCommand::Stop(a) => run::stop(ctx, a).await?,
        JobCommand::Status(a) => {
            status::run(ctx, a).await?;
            0
        }
        JobCommand::Plan(a) => match plan::run(ctx, a).await {
            Ok(code) => code,
            Err(e) => {
                if let Some(message) = crate::report::render(&e) {
                    eprintln!("{message}");
                }
                exit::PLAN_ERROR
            }
        },
    };
    exit::with(code)
}

/// Nomad's exit codes, which the binary's `Result` cannot carry: 0 returns, 1 is an error
/// already printed, anything else exits the process.
pub mod exit {
    use std::io::Write as _;

    use crate::report::Reported;

    /// `job run`/`job stop`: some allocations could not be placed.
    pub const PLACEMENT_FAILED: i32 = 2;
    /// `job plan`: allocations would be created, stopped or replaced.
    pub const PLAN_CHANGES: i32 = 1;
    /// `job plan`: the plan could not be computed.
    pub const PLAN_ERROR: i32 = 255;

    /// Returns for 0, reports 1 as an already printed failure, exits for the rest.
    pub fn with(code: i32) -> anyhow::Result<()> {
        match code {
            0 => Ok(()),
            1 => Err(Reported(0).into()),
            code => {
                let _ = std::io::stdout().flush();
                std::process::exit(code)
            }
        }
    }
}
