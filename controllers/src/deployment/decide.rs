//! The deployment's state machine: from the deployment, its job and its allocations at `now`,
//! what to write (Nomad's `deploymentwatcher` rules, decided on a snapshot instead of events).

use std::collections::BTreeMap;

use caravan_schemas::deployment::{DeploymentGroupState, DeploymentState, descriptions};
use caravan_schemas::evaluation::TriggeredBy;
use caravan_schemas::job::UpdateStrategy;
use caravan_schemas::{Allocation, Deployment, DeploymentStatus, Job};

use super::conditions::set_conditions;
use super::groups::{
    Tally, deadline, deadline_after, group_count, initial_group, is_complete, progress_deadline,
    tally,
};
use super::revert::job_matches;
use crate::evaluator::{EvalRequest, eval_type};
use crate::scheduler::time::parse_rfc3339;

/// What a reconcile of a deployment writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// The deployment's new status, when it differs from the stored one.
    pub status: Option<DeploymentStatus>,
    /// The scheduler has something to do: a health count changed, the canaries were promoted,
    /// the deployment was resumed or failed.
    pub evaluate: bool,
    /// The deployment succeeded: its job version is stable.
    pub mark_stable: bool,
    /// The deployment failed and a group has `autoRevert`: go back to the newest stable
    /// version of the job.
    pub revert: bool,
    /// When to look again even if nothing changes (Unix seconds): the earliest progress
    /// deadline that still applies.
    pub requeue_at: Option<i64>,
}

/// The terminal state a rule moved the deployment to.
enum Outcome {
    Failed(&'static str),
    Successful,
}

/// Decides what becomes of `deployment` given its `job` (as it is now), the job's allocations
/// (those of other deployments are ignored) and the time `now` (Unix seconds).
///
/// Terminal deployments (failed, successful, cancelled) never change. A deployment without a
/// status yet starts running with its groups taken from its spec and the job, when the job is
/// still at the deployment's version.
pub fn decide(
    deployment: &Deployment,
    job: Option<&Job>,
    allocs: &[&Allocation],
    now: i64,
) -> Decision {
    let state = deployment.state();
    if !matches!(
        state,
        DeploymentState::Pending | DeploymentState::Running | DeploymentState::Paused
    ) {
        return Decision::default();
    }
    let job = job.filter(|job| job_matches(deployment, job));
    if state == DeploymentState::Pending && job.is_none() {
        return Decision::default();
    }
    let spec = &deployment.spec;
    let mut status = deployment.status.clone().unwrap_or_default();
    if state == DeploymentState::Pending {
        status.status = DeploymentState::Running;
    }
    let start = deployment
        .metadata
        .creation_timestamp
        .as_deref()
        .and_then(parse_rfc3339)
        .unwrap_or(now);
    for (name, update) in &spec.groups {
        status.groups.entry(name.clone()).or_insert_with(|| {
            let count = job.and_then(|job| group_count(&job.spec, name));
            initial_group(update, count, start)
        });
    }
    let tallies = tally(
        deployment.metadata.name(),
        &spec.groups,
        allocs.iter().copied(),
    );
    let health_changed = count(&mut status, &spec.groups, &tallies);

    let mut promoted = false;
    let mut resumed = false;
    let outcome = if spec.is_failed() {
        Some(Outcome::Failed(descriptions::FAILED_BY_USER))
    } else if failed_allocations(&spec.groups, &tallies) {
        Some(Outcome::Failed(descriptions::FAILED_ALLOCATIONS))
    } else {
        if requires_promotion(&status, &spec.groups)
            && (spec.is_promoted() || auto_promote_ready(&status, &spec.groups, &tallies))
        {
            promote(&mut status, &spec.groups, now);
            promoted = true;
        }
        match (status.status, spec.is_paused()) {
            (DeploymentState::Running, true) => {
                status.status = DeploymentState::Paused;
                reset_deadlines(&mut status, &spec.groups, now);
            }
            (DeploymentState::Paused, false) => {
                status.status = DeploymentState::Running;
                reset_deadlines(&mut status, &spec.groups, now);
                resumed = true;
            }
            _ => {}
        }
        if every_group(&status, &spec.groups, |g, _, t| is_complete(g, t), &tallies) {
            Some(Outcome::Successful)
        } else if status.status == DeploymentState::Running
            && next_deadline(&status, &spec.groups, &tallies).is_some_and(|by| now > by)
        {
            Some(Outcome::Failed(descriptions::FAILED_PROGRESS_DEADLINE))
        } else {
            None
        }
    };
    let (failed, succeeded) = match outcome {
        Some(Outcome::Failed(description)) => {
            status.status = DeploymentState::Failed;
            status.status_description = Some(description.into());
            (true, false)
        }
        Some(Outcome::Successful) => {
            status.status = DeploymentState::Successful;
            status.status_description = Some(descriptions::SUCCESSFUL.into());
            (false, true)
        }
        None => {
            let description = match status.status {
                DeploymentState::Paused => descriptions::PAUSED,
                _ => running_description(&status, &spec.groups),
            };
            status.status_description = Some(description.into());
            (false, false)
        }
    };
    let previous = deployment
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    set_conditions(&mut status, previous, now);
    let requeue_at = (status.status == DeploymentState::Running)
        .then(|| next_deadline(&status, &spec.groups, &tallies))
        .flatten();
    let auto_revert = status.groups.values().any(|g| g.auto_revert);
    Decision {
        evaluate: health_changed || promoted || resumed || failed,
        mark_stable: succeeded,
        revert: failed && auto_revert && job.is_some(),
        requeue_at,
        status: (deployment.status.as_ref() != Some(&status)).then_some(status),
    }
}

/// The evaluation a deployment asks of the scheduler for `job`.
pub fn evaluation_request(job: &Job) -> EvalRequest {
    EvalRequest {
        namespace: job.metadata.namespace().to_string(),
        job_name: job.metadata.name().to_string(),
        job_version: job.version(),
        job_type: eval_type(job.spec.job_type()),
        priority: job.priority(),
        triggered_by: TriggeredBy::DeploymentWatcher,
        node_name: None,
    }
}

/// Writes the tallies into the groups' counts and moves each group's deadline to
/// `progressDeadline` after its latest healthy allocation (never earlier); whether a health
/// count changed.
fn count(
    status: &mut DeploymentStatus,
    groups: &BTreeMap<String, UpdateStrategy>,
    tallies: &BTreeMap<String, Tally>,
) -> bool {
    let mut changed = false;
    for (name, group) in &mut status.groups {
        let (Some(update), Some(tally)) = (groups.get(name), tallies.get(name)) else {
            continue;
        };
        changed |=
            group.healthy_allocs != tally.healthy || group.unhealthy_allocs != tally.unhealthy;
        group.placed_allocs = tally.placed;
        group.healthy_allocs = tally.healthy;
        group.unhealthy_allocs = tally.unhealthy;
        group.placed_canaries.clone_from(&tally.canaries);
        group.auto_revert = update.auto_revert.unwrap_or_default();
        let current = group.require_progress_by.as_deref().and_then(parse_rfc3339);
        let moved = tally
            .last_healthy
            .and_then(|at| deadline_after(at, progress_deadline(update)));
        let later = moved
            .as_deref()
            .and_then(parse_rfc3339)
            .is_some_and(|by| current.is_none_or(|current| by > current));
        if later {
            group.require_progress_by = moved;
        }
    }
    changed
}

/// An unhealthy canary, or an unhealthy allocation of a group without a progress deadline.
fn failed_allocations(
    groups: &BTreeMap<String, UpdateStrategy>,
    tallies: &BTreeMap<String, Tally>,
) -> bool {
    groups.iter().any(|(name, update)| {
        tallies.get(name).is_some_and(|t| {
            t.unhealthy_canary || (progress_deadline(update) == 0 && t.unhealthy > 0)
        })
    })
}

/// Whether `check` holds for every group of the spec.
fn every_group(
    status: &DeploymentStatus,
    groups: &BTreeMap<String, UpdateStrategy>,
    check: impl Fn(&DeploymentGroupState, &UpdateStrategy, &Tally) -> bool,
    tallies: &BTreeMap<String, Tally>,
) -> bool {
    groups.iter().all(
        |(name, update)| match (status.groups.get(name), tallies.get(name)) {
            (Some(group), Some(tally)) => check(group, update, tally),
            _ => false,
        },
    )
}

/// The groups of the spec that still wait for their canaries to be promoted.
fn awaiting<'a>(
    status: &'a DeploymentStatus,
    groups: &'a BTreeMap<String, UpdateStrategy>,
) -> impl Iterator<Item = (&'a DeploymentGroupState, &'a UpdateStrategy)> {
    groups.iter().filter_map(|(name, update)| {
        status
            .groups
            .get(name)
            .filter(|g| g.desired_canaries > 0 && !g.promoted)
            .map(|g| (g, update))
    })
}

fn requires_promotion(
    status: &DeploymentStatus,
    groups: &BTreeMap<String, UpdateStrategy>,
) -> bool {
    awaiting(status, groups).next().is_some()
}

/// Nomad's auto-promotion: every group with canaries has `autoPromote` and all its canaries
/// placed and healthy.
fn auto_promote_ready(
    status: &DeploymentStatus,
    groups: &BTreeMap<String, UpdateStrategy>,
    tallies: &BTreeMap<String, Tally>,
) -> bool {
    every_group(
        status,
        groups,
        |group, update, tally| {
            let wanted = group.desired_canaries;
            wanted == 0
                || (update.auto_promote.unwrap_or_default()
                    && tally.canaries.len() >= usize::try_from(wanted).unwrap_or(usize::MAX)
                    && tally.live_healthy_canaries >= wanted)
        },
        tallies,
    )
}

/// Promotes every group (Nomad promotes them all at once) and gives each its full progress
/// deadline again.
fn promote(status: &mut DeploymentStatus, groups: &BTreeMap<String, UpdateStrategy>, now: i64) {
    for (name, group) in &mut status.groups {
        if groups.contains_key(name) {
            group.promoted = true;
        }
    }
    reset_deadlines(status, groups, now);
}

/// Every group with a progress deadline must make progress `progressDeadline` after `now`
/// (a promotion, a pause or a resume, as Nomad).
fn reset_deadlines(
    status: &mut DeploymentStatus,
    groups: &BTreeMap<String, UpdateStrategy>,
    now: i64,
) {
    for (name, group) in &mut status.groups {
        if let Some(update) = groups.get(name) {
            let seconds = progress_deadline(update);
            if seconds > 0 {
                group.require_progress_by = deadline_after(now, seconds);
            }
        }
    }
}

/// The earliest deadline of a group it still applies to.
fn next_deadline(
    status: &DeploymentStatus,
    groups: &BTreeMap<String, UpdateStrategy>,
    tallies: &BTreeMap<String, Tally>,
) -> Option<i64> {
    groups
        .iter()
        .filter_map(|(name, update)| {
            let group = status.groups.get(name)?;
            deadline(update, group, tallies.get(name)?)
        })
        .min()
}

/// The description of a running deployment: whether it waits for a promotion, and which.
fn running_description(
    status: &DeploymentStatus,
    groups: &BTreeMap<String, UpdateStrategy>,
) -> &'static str {
    let mut waiting = awaiting(status, groups).peekable();
    if waiting.peek().is_none() {
        descriptions::RUNNING
    } else if waiting.all(|(_, update)| update.auto_promote.unwrap_or_default()) {
        descriptions::AUTO_PROMOTION
    } else {
        descriptions::NEEDS_PROMOTION
    }
}
