//! `caravan deployment promote|fail|pause|resume NAME` and `caravan job promote JOB`: an
//! operator's intent, written as a merge patch of the Deployment's spec (`promoted: true`,
//! `failed: true`, `paused: true|false`) for the deployment controller to act on. What to
//! write is decided by [`decide`], from the deployment as read.

use anyhow::{Context as _, bail};
use caravan_client::PatchParams;
use caravan_schemas::deployment::DeploymentState;
use caravan_schemas::{Deployment, Job, Kind};
use serde_json::{Value, json};

use super::format::description;
use crate::cmd::Context;
use crate::cmd::job::status::list;

/// What an operator asks of a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Promote the canaries of every group: the rolling update goes on.
    Promote,
    /// Fail the deployment (and revert, where a group has `autoRevert`).
    Fail,
    /// Place no new allocations of this version until resumed.
    Pause,
    /// Go on after a pause.
    Resume,
}

impl Operation {
    /// The verb, as typed: `promote`.
    pub fn verb(self) -> &'static str {
        match self {
            Operation::Promote => "promote",
            Operation::Fail => "fail",
            Operation::Pause => "pause",
            Operation::Resume => "resume",
        }
    }

    /// What the deployment is once done: `promoted`.
    pub fn done(self) -> &'static str {
        match self {
            Operation::Promote => "promoted",
            Operation::Fail => "marked as failed",
            Operation::Pause => "paused",
            Operation::Resume => "resumed",
        }
    }

    /// The merge patch of the deployment's spec that asks for it.
    pub fn patch(self) -> Value {
        match self {
            Operation::Promote => json!({"spec": {"promoted": true}}),
            Operation::Fail => json!({"spec": {"failed": true}}),
            Operation::Pause => json!({"spec": {"paused": true}}),
            Operation::Resume => json!({"spec": {"paused": false}}),
        }
    }
}

/// What to do about an operation on a deployment.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Write this merge patch.
    Patch(Value),
    /// Nothing to write: the deployment already is as asked; the message says so.
    AlreadyDone(String),
}

/// Decides `op` on `deployment`: refused (the message says why) when the deployment is no
/// longer active, when there are no canaries to promote or they are not all healthy yet (as
/// Nomad refuses); nothing to write when it already is as asked.
pub fn decide(deployment: &Deployment, op: Operation) -> Result<Decision, String> {
    let name = deployment.metadata.name();
    let state = deployment.state();
    if !state.is_active() {
        let why = match description(deployment) {
            "" => String::new(),
            text => format!(" ({text})"),
        };
        return Err(format!(
            "cannot {} deployment {name:?}: it is {}{why}, no longer active",
            op.verb(),
            state.as_str()
        ));
    }
    let spec = &deployment.spec;
    let already = |what: &str| Ok(Decision::AlreadyDone(format!("Deployment {name:?} {what}")));
    match op {
        Operation::Promote if spec.is_promoted() => return already("is already promoted"),
        Operation::Promote => check_promotable(deployment)?,
        Operation::Fail if spec.is_failed() => return already("is already marked as failed"),
        Operation::Pause if spec.is_paused() || state == DeploymentState::Paused => {
            return already("is already paused");
        }
        Operation::Resume if !spec.is_paused() && state != DeploymentState::Paused => {
            return already("is not paused");
        }
        _ => {}
    }
    Ok(Decision::Patch(op.patch()))
}

/// Whether the deployment has canaries, all of them healthy. Before the controller wrote the
/// groups' progress, the spec's `canary` settings tell whether there are any.
fn check_promotable(deployment: &Deployment) -> Result<(), String> {
    let name = deployment.metadata.name();
    let groups = deployment
        .status
        .as_ref()
        .map(|s| &s.groups)
        .filter(|g| !g.is_empty());
    let has_canaries = match groups {
        Some(groups) => groups.values().any(|g| g.desired_canaries > 0),
        None => deployment
            .spec
            .groups
            .values()
            .any(|u| u.canary.unwrap_or(0) > 0),
    };
    if !has_canaries {
        return Err(format!("deployment {name:?} has no canaries to promote"));
    }
    for (group, g) in groups.into_iter().flatten() {
        if g.desired_canaries > 0 && !g.promoted && g.healthy_allocs < g.desired_canaries {
            return Err(format!(
                "cannot promote deployment {name:?}: task group {group:?} has {}/{} healthy \
                 canaries; promote once they are healthy",
                g.healthy_allocs, g.desired_canaries
            ));
        }
    }
    Ok(())
}

/// Whether a failed deployment rolls the job back: some group has `autoRevert`.
pub fn reverts(deployment: &Deployment) -> bool {
    deployment
        .status
        .iter()
        .flat_map(|s| s.groups.values())
        .any(|g| g.auto_revert)
        || deployment
            .spec
            .groups
            .values()
            .any(|u| u.auto_revert.unwrap_or(false))
}

/// The line printed once the operation is written.
pub fn done_line(deployment: &Deployment, op: Operation) -> String {
    let name = deployment.metadata.name();
    let mut line = format!("Deployment {name:?} {}", op.done());
    if op == Operation::Fail && reverts(deployment) {
        line.push_str(": the job reverts to its latest stable version (autoRevert)");
    }
    line
}

/// Whether `deployment` is of this incarnation of `job` (a job deleted and created again
/// under the same name does not own the old one's deployments).
pub fn belongs_to(deployment: &Deployment, job: &Job) -> bool {
    let uid = job.metadata.uid.as_deref().unwrap_or("");
    deployment.spec.job_name == job.metadata.name()
        && (uid.is_empty() || deployment.spec.job_uid.is_empty() || deployment.spec.job_uid == uid)
}

/// The job's deployment of its newest version, if any (`job status`'s `Latest Deployment`).
pub fn latest<'a>(deployments: &'a [Deployment], job: &Job) -> Option<&'a Deployment> {
    deployments
        .iter()
        .filter(|d| belongs_to(d, job))
        .max_by_key(|d| d.spec.job_version)
}

/// The job's newest active deployment, the one `caravan job promote` promotes.
pub fn latest_active<'a>(deployments: &'a [Deployment], job: &Job) -> Option<&'a Deployment> {
    deployments
        .iter()
        .filter(|d| belongs_to(d, job) && d.is_active())
        .max_by_key(|d| d.spec.job_version)
}

/// Reads deployment `name` in the `-n` namespace.
pub async fn get(ctx: &Context, name: &str) -> anyhow::Result<Deployment> {
    let value = ctx.api(Kind::Deployment).get(name).await?;
    serde_json::from_value(value).context("the server returned an undecodable Deployment")
}

/// The deployments of job `job` in the `-n` namespace.
pub async fn of_job(ctx: &Context, job: &str) -> anyhow::Result<Vec<Deployment>> {
    list(ctx, Kind::Deployment, Some(&format!("spec.jobName={job}"))).await
}

/// `caravan deployment promote|fail|pause|resume NAME`.
pub async fn run(ctx: &Context, name: &str, op: Operation) -> anyhow::Result<()> {
    let deployment = get(ctx, name).await?;
    apply(ctx, &deployment, op).await
}

/// `caravan job promote JOB`: promotes the job's newest active deployment.
pub async fn promote_job(ctx: &Context, job: &str) -> anyhow::Result<()> {
    let value = ctx.api(Kind::Job).get(job).await?;
    let job: Job =
        serde_json::from_value(value).context("the server returned an undecodable Job")?;
    let deployments = of_job(ctx, job.metadata.name()).await?;
    let Some(deployment) = latest_active(&deployments, &job) else {
        bail!(
            "job {:?} has no active deployment to promote",
            job.metadata.name()
        );
    };
    apply(ctx, deployment, Operation::Promote).await
}

async fn apply(ctx: &Context, deployment: &Deployment, op: Operation) -> anyhow::Result<()> {
    let name = deployment.metadata.name();
    let patch = match decide(deployment, op) {
        Err(refusal) => bail!("{refusal}"),
        Ok(Decision::AlreadyDone(message)) => {
            println!("{message}");
            return Ok(());
        }
        Ok(Decision::Patch(patch)) => patch,
    };
    ctx.api(Kind::Deployment)
        .patch_merge(name, &patch, &PatchParams::default())
        .await
        .with_context(|| format!("error trying to {} deployment {name:?}", op.verb()))?;
    println!("{}", done_line(deployment, op));
    Ok(())
}

#[cfg(test)]
mod tests;
