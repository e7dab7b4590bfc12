//! `caravan deployment list|status|promote|fail|pause|resume`: Nomad's deployment commands
//! over the Deployment objects the leader's controllers write.
//!
//! `list` and `status` print Nomad's layouts ([`format`](mod@format)); `promote`, `fail`,
//! `pause` and `resume` write the operator's intent into the Deployment's spec
//! ([`operate`]). [`follow`] and [`monitor`] follow a deployment to its end for `job run`,
//! `job revert` and `job scale`.

pub mod follow;
pub mod format;
pub mod monitor;
pub mod operate;

#[cfg(test)]
pub(crate) mod fixtures;

use clap::{Args, Subcommand};

use crate::cmd::Context;
use crate::cmd::job::status::list;
use caravan_schemas::{Deployment, Kind};
use operate::Operation;

/// Arguments of `caravan deployment`.
#[derive(Debug, Args)]
pub struct DeploymentArgs {
    #[command(subcommand)]
    pub command: DeploymentCommand,
}

#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// List deployments, newest first.
    List(ListArgs),
    /// Show one deployment and the progress of each group.
    Status(NameArgs),
    /// Promote the canaries of an active deployment: the rolling update goes on.
    Promote(NameArgs),
    /// Mark an active deployment as failed (groups with `autoRevert` roll back).
    Fail(NameArgs),
    /// Pause an active deployment: no new allocations of its version are placed.
    Pause(NameArgs),
    /// Resume a paused deployment.
    Resume(NameArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the deployments of this job.
    #[arg(long)]
    pub job: Option<String>,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// The deployment's name, `<job>-v<version>`.
    pub name: String,
}

/// Runs a `deployment` subcommand.
pub async fn run(ctx: &Context, args: DeploymentArgs) -> anyhow::Result<()> {
    let op = match args.command {
        DeploymentCommand::List(a) => {
            let selector = a.job.map(|job| format!("spec.jobName={job}"));
            let deployments: Vec<Deployment> =
                list(ctx, Kind::Deployment, selector.as_deref()).await?;
            if deployments.is_empty() {
                println!("No deployments found");
            } else {
                print!("{}", format::deployments_table(&deployments));
            }
            return Ok(());
        }
        DeploymentCommand::Status(a) => {
            let deployment = operate::get(ctx, &a.name).await?;
            print!("{}", format::deployment_status(&deployment));
            return Ok(());
        }
        DeploymentCommand::Promote(a) => (a, Operation::Promote),
        DeploymentCommand::Fail(a) => (a, Operation::Fail),
        DeploymentCommand::Pause(a) => (a, Operation::Pause),
        DeploymentCommand::Resume(a) => (a, Operation::Resume),
    };
    let (a, op) = op;
    operate::run(ctx, &a.name, op).await
}
