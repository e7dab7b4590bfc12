//! `caravan job run|plan|status|stop|history|revert|inspect|scale|promote`: Nomad's job
//! workflow over the Kubernetes-style API.
//!
//! `run`, `stop`, `revert` and `scale` write the Job, then follow the Evaluation the server
//! creates for the new version ([`monitor`], driven by `wait`) and, for `run`, `revert` and
//! `scale`, the version's Deployment to its end when it gets one (`follow`); `plan` asks the
//! server's plan endpoint (a scheduler dry run on the server's state, Nomad's `Job.Plan`) and
//! prints the answer as Nomad's plan ([`diff`]); `status` is Nomad's layout ([`status`]);
//! `history`, `revert` and `inspect --version` read the JobVersions the servers keep
//! (`versions`); `promote` promotes the job's latest active deployment. Exit codes are
//! Nomad's: see [`exit`].

pub mod diff;
mod follow;
pub mod format;
mod history;
mod inspect;
pub mod monitor;
mod plan;
pub mod progress;
mod revert;
mod run;
mod scale;
pub mod status;
mod versions;
mod wait;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::cmd::Context;

/// Arguments of `caravan job`.
#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(subcommand)]
    pub command: JobCommand,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Submit a job and follow its evaluation (exit 2 when placements failed), then its
    /// deployment to the end (exit 1 when it fails or is cancelled).
    Run(RunArgs),
    /// Show what submitting a job would change, computed by the server (exit 0: no allocation
    /// changes, 1: allocations created, stopped or replaced, 255: error).
    Plan(PlanArgs),
    /// List jobs, or show one job's groups, evaluations and allocations.
    Status(StatusArgs),
    /// Stop a job's allocations (`spec.stop`), or delete it with `--purge`.
    Stop(StopArgs),
    /// List the job's kept versions, newest first; `-p` shows what each one changed.
    History(HistoryArgs),
    /// Give the job the spec of an earlier version, then follow the rollout.
    #[command(disable_version_flag = true)]
    Revert(RevertArgs),
    /// Print the job, or one of its kept versions, as YAML or JSON.
    #[command(disable_version_flag = true)]
    Inspect(InspectArgs),
    /// Set a group's count, then follow the rollout.
    Scale(ScaleArgs),
    /// Promote the canaries of the job's latest active deployment.
    Promote(PromoteArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The Job manifest (YAML or JSON), or `-` for standard input.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Return after submitting, without following the evaluation and deployment.
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

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The job.
    pub name: String,
    /// Show the changes of each version from the one before it.
    #[arg(short = 'p', long = "diff")]
    pub diff: bool,
}

#[derive(Debug, Args)]
pub struct RevertArgs {
    /// The job.
    pub name: String,
    /// The version whose spec the job takes again (`caravan job history` lists them).
    pub version: i64,
    /// Return after the write, without following the evaluation and deployment.
    #[arg(long)]
    pub detach: bool,
    /// How long to wait for the evaluation.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Output formats of `job inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The job.
    pub name: String,
    /// Show this kept version instead of the current job.
    #[arg(long)]
    pub version: Option<i64>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    pub output: InspectFormat,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The job.
    pub name: String,
    /// The group (optional when the job has one) and its new count.
    #[arg(value_name = "[GROUP] COUNT", num_args = 1..=2, required = true)]
    pub rest: Vec<String>,
    /// Return after the write, without following the evaluation and deployment.
    #[arg(long)]
    pub detach: bool,
    /// How long to wait for the evaluation.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The job whose latest active deployment to promote.
    pub name: String,
}

/// Runs a `job` subcommand; non-zero exit codes other than 1 end the process here.
pub async fn run(ctx: &Context, args: JobArgs) -> anyhow::Result<()> {
    let code = match args.command {
        JobCommand::Run(a) => run::run(ctx, a).await?,
        JobCommand::Stop(a) => run::stop(ctx, a).await?,
        JobCommand::Revert(a) => revert::run(ctx, a).await?,
        JobCommand::Scale(a) => scale::run(ctx, a).await?,
        JobCommand::History(a) => {
            history::run(ctx, a).await?;
            0
        }
        JobCommand::Inspect(a) => {
            inspect::run(ctx, a).await?;
            0
        }
        JobCommand::Promote(a) => {
            crate::cmd::deployment::operate::promote_job(ctx, &a.name).await?;
            0
        }
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
