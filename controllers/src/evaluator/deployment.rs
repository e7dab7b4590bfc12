//! Pure decisions of the job controller about a job's deployments: the [`Deployment`] a new
//! version of a service job with an `update` block gets, and the older deployments that
//! version (or stopping the job) cancels.

use std::collections::BTreeMap;
use std::sync::Arc;

use caravan_schemas::condition::ConditionStatus;
use caravan_schemas::deployment::{
    DeploymentGroupState, DeploymentSpec, DeploymentState, DeploymentStatus, descriptions, name_for,
};
use caravan_schemas::job::{JobType, TaskGroup};
use caravan_schemas::job_version::JOB_LABEL;
use caravan_schemas::{API_VERSION, Allocation, Condition, Deployment, Job, Kind, ObjectMeta};
use serde_json::{Value, json};

use crate::deployment::progress_deadline;
use crate::scheduler::reconcile::tasks_updated;
use crate::scheduler::time::format_rfc3339;

/// What the job controller writes about a job's deployments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeploymentChanges {
    /// A deployment left by a job of the same name deleted before: deleted first.
    pub delete_stale: Option<String>,
    /// The deployment of the job's new version.
    pub create: Option<Deployment>,
    /// Active deployments to cancel, with the status description.
    pub cancel: Vec<(String, &'static str)>,
}

/// Whether a job's versions are rolled out by deployments: a service job, not stopped, with
/// a group whose `update` block has a `maxParallel` above 0 (Nomad).
pub fn needs_deployment(job: &Job) -> bool {
    job.spec.job_type() == JobType::Service && !job.spec.stop && job.spec.groups.iter().any(rolls)
}

fn rolls(group: &TaskGroup) -> bool {
    group
        .update
        .as_ref()
        .and_then(|u| u.max_parallel)
        .is_some_and(|n| n > 0)
}

/// What a new version of `job` (its current one, not evaluated yet) needs done with
/// `deployments`, the job's deployments. Asked only for a new version, so that a deployment
/// garbage collected after it ended is not made again. `allocs` are the job's allocations and
/// `job_version` finds its earlier versions, to tell which groups have destructive changes to
/// roll out (canaries are placed only for those).
pub fn deployment_changes(
    job: &Job,
    deployments: &[Arc<Deployment>],
    allocs: &[Arc<Allocation>],
    job_version: &dyn Fn(i64) -> Option<Arc<Job>>,
    now_unix: i64,
) -> DeploymentChanges {
    let mut changes = DeploymentChanges::default();
    let name = name_for(job.metadata.name(), job.version());
    let uid = job.metadata.uid.as_deref().unwrap_or_default();
    let mut current = None;
    for deployment in deployments {
        let own = deployment.metadata.name() == name;
        if own && deployment.spec.job_uid != uid {
            changes.delete_stale = Some(name.clone());
        } else if own {
            current = Some(deployment);
        }
        if deployment.is_active() && (!own || job.spec.stop) {
            let why = if job.spec.stop {
                descriptions::STOPPED_JOB
            } else {
                descriptions::NEWER_JOB
            };
            changes
                .cancel
                .push((deployment.metadata.name().to_owned(), why));
        }
    }
    if current.is_none() && needs_deployment(job) {
        changes.create = Some(new_deployment(job, allocs, job_version, now_unix));
    }
    changes
}

/// The deployment of `job`'s current version, running: per group the count to reach and the
/// canaries wanted (the group's `canary` when live allocations of an older version have
/// changed tasks), and the first progress deadline.
pub fn new_deployment(
    job: &Job,
    allocs: &[Arc<Allocation>],
    job_version: &dyn Fn(i64) -> Option<Arc<Job>>,
    now_unix: i64,
) -> Deployment {
    let job_name = job.metadata.name();
    let version = job.version();
    let mut groups = BTreeMap::new();
    let mut states = BTreeMap::new();
    for group in job.spec.groups.iter().filter(|g| rolls(g)) {
        let Some(update) = group.update.clone() else {
            continue;
        };
        let canaries = if destructive_changes(job, group, allocs, job_version) {
            update.canary.unwrap_or(0)
        } else {
            0
        };
        let deadline = progress_deadline(&update);
        states.insert(
            group.name.clone(),
            DeploymentGroupState {
                desired_total: group.count.unwrap_or(1),
                desired_canaries: canaries,
                auto_revert: update.auto_revert.unwrap_or(false),
                require_progress_by: (deadline > 0)
                    .then(|| format_rfc3339(now_unix.saturating_add(deadline))),
                ..DeploymentGroupState::default()
            },
        );
        groups.insert(group.name.clone(), update);
    }
    let description = if states.values().all(|g| g.desired_canaries == 0) {
        descriptions::RUNNING
    } else if groups.values().all(|u| u.auto_promote.unwrap_or(false)) {
        descriptions::AUTO_PROMOTION
    } else {
        descriptions::NEEDS_PROMOTION
    };
    Deployment {
        api_version: API_VERSION.to_owned(),
        kind: Kind::Deployment.name().to_owned(),
        metadata: ObjectMeta {
            name: Some(name_for(job_name, version)),
            namespace: Some(job.metadata.namespace().to_owned()),
            labels: [(JOB_LABEL.to_owned(), job_name.to_owned())].into(),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            job_name: job_name.to_owned(),
            job_uid: job.metadata.uid.clone().unwrap_or_default(),
            job_version: version,
            groups,
            ..DeploymentSpec::default()
        },
        status: Some(DeploymentStatus {
            status: DeploymentState::Running,
            status_description: Some(description.to_owned()),
            groups: states,
            conditions: vec![Condition {
                r#type: "Progressing".to_owned(),
                status: ConditionStatus::True,
                reason: "NewDeployment".to_owned(),
                message: format!("Rolling out version {version} of job {job_name}"),
                last_transition_time: Some(format_rfc3339(now_unix)),
            }],
        }),
    }
}

/// Whether live allocations of `group` run an older version whose tasks differ (or whose
/// version is no longer known).
fn destructive_changes(
    job: &Job,
    group: &TaskGroup,
    allocs: &[Arc<Allocation>],
    job_version: &dyn Fn(i64) -> Option<Arc<Job>>,
) -> bool {
    let version = job.version();
    allocs
        .iter()
        .filter(|a| a.spec.group == group.name && !a.is_terminal())
        .filter(|a| a.spec.job_version != version)
        .any(|alloc| {
            let old_job = job_version(alloc.spec.job_version);
            let old_group = old_job.as_deref().and_then(|j| {
                j.spec
                    .groups
                    .iter()
                    .find(|g| g.name == group.name)
                    .map(|g| (j, g))
            });
            old_group
                .is_none_or(|(old_job, old_group)| tasks_updated(old_job, old_group, job, group))
        })
}

/// The status patch that cancels `deployment` with `description`: its `Progressing` condition
/// turns False (reason `Cancelled`), the others stay. It holds the `resourceVersion` read:
/// a status the deployment controller wrote since (a failure, a success) is not overwritten.
pub fn cancel_patch(deployment: &Deployment, description: &str, now_unix: i64) -> Value {
    let mut conditions: Vec<Condition> = deployment
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    conditions.retain(|c| c.r#type != "Progressing");
    conditions.push(Condition {
        r#type: "Progressing".to_owned(),
        status: ConditionStatus::False,
        reason: "Cancelled".to_owned(),
        message: description.to_owned(),
        last_transition_time: Some(format_rfc3339(now_unix)),
    });
    json!({
        "metadata": {"resourceVersion": deployment.metadata.resource_version},
        "status": {
            "status": DeploymentState::Cancelled.as_str(),
            "statusDescription": description,
            "conditions": conditions,
        }
    })
}

#[cfg(test)]
mod tests;
