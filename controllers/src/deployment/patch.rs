//! The merge patches the controller writes: only what changed, with the `resourceVersion`
//! read as precondition (a concurrent writer makes the write fail and the reconcile retry).

use caravan_schemas::{DeploymentStatus, Job, JobSpec};
use serde_json::{Value, json};

use crate::job_status::merge_patch_diff;

/// The status-subresource patch from `old` to `new`, guarded by `resource_version`; `None`
/// when nothing changed.
pub fn status_patch(
    old: Option<&DeploymentStatus>,
    new: &DeploymentStatus,
    resource_version: Option<&str>,
) -> Option<Value> {
    let new = serde_json::to_value(new).ok()?;
    let diff = match old {
        Some(old) => merge_patch_diff(&serde_json::to_value(old).ok()?, &new)?,
        None => new,
    };
    Some(guarded(json!({ "status": diff }), resource_version))
}

/// The patch that replaces `job`'s spec with `target`, guarded by the job's
/// `resourceVersion`; `None` when they are equal.
pub fn spec_patch(job: &Job, target: &JobSpec) -> Option<Value> {
    let old = serde_json::to_value(&job.spec).ok()?;
    let new = serde_json::to_value(target).ok()?;
    let diff = merge_patch_diff(&old, &new)?;
    Some(guarded(
        json!({ "spec": diff }),
        job.metadata.resource_version.as_deref(),
    ))
}

fn guarded(mut patch: Value, resource_version: Option<&str>) -> Value {
    if let Some(rv) = resource_version {
        patch["metadata"] = json!({ "resourceVersion": rv });
    }
    patch
}
