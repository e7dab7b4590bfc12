//! Auto-revert: which stable version of the job a failed deployment goes back to, and how
//! its description says so (Nomad's wording).

use caravan_schemas::{Deployment, DeploymentStatus, Job, JobVersion};

use super::conditions::set_conditions;
use caravan_schemas::condition::Condition;

/// Where a failed deployment with `autoRevert` takes its job.
#[derive(Clone, Debug, PartialEq)]
pub enum RevertTarget {
    /// Back to this stable version's spec.
    To(Box<JobVersion>),
    /// The newest stable version has the job's current spec: reverting would change nothing
    /// (and could loop), so the job stays.
    Unchanged(i64),
    /// No stable version older than the deployment's.
    NoStable,
}

/// Whether `job` is the job `deployment` rolls out, still at the deployment's version.
pub fn job_matches(deployment: &Deployment, job: &Job) -> bool {
    let spec = &deployment.spec;
    let uid = job.metadata.uid.as_deref().unwrap_or_default();
    job.metadata.name() == spec.job_name
        && job.metadata.namespace() == deployment.metadata.namespace()
        && (spec.job_uid.is_empty() || uid.is_empty() || uid == spec.job_uid)
        && job.version() == spec.job_version
}

/// The newest stable version of the job older than the deployment's (Nomad's
/// `latestStableJob`), unless its spec is the job's current one.
pub fn revert_target(deployment: &Deployment, job: &Job, versions: &[JobVersion]) -> RevertTarget {
    let spec = &deployment.spec;
    let newest = versions
        .iter()
        .filter(|v| v.spec.job_name == spec.job_name && v.is_stable())
        .filter(|v| {
            spec.job_uid.is_empty() || v.spec.job_uid.is_empty() || v.spec.job_uid == spec.job_uid
        })
        .filter(|v| v.spec.version < spec.job_version)
        .max_by_key(|v| v.spec.version);
    match newest {
        None => RevertTarget::NoStable,
        Some(version) if version.spec.job == job.spec => {
            RevertTarget::Unchanged(version.spec.version)
        }
        Some(version) => RevertTarget::To(Box::new(version.clone())),
    }
}

/// The failure description `base` extended with what the revert did, as Nomad words it.
pub fn revert_description(base: &str, target: &RevertTarget) -> String {
    match target {
        RevertTarget::To(version) => {
            format!(
                "{base} - rolling back to job version {}",
                version.spec.version
            )
        }
        RevertTarget::Unchanged(version) => format!(
            "{base} - not rolling back to stable job version {version} as current job has same specification"
        ),
        RevertTarget::NoStable => format!("{base} - no stable job version to auto revert to"),
    }
}

/// Records in a failed `status` what the revert did: its description and conditions.
pub fn describe_revert(
    status: &mut DeploymentStatus,
    target: &RevertTarget,
    previous: &[Condition],
    now: i64,
) {
    let base = status.status_description.clone().unwrap_or_default();
    status.status_description = Some(revert_description(&base, target));
    set_conditions(status, previous, now);
}
