//! Deployments in Nomad's layouts: the `deployment list` table, the `deployment status` block
//! with its per-group `Deployed` table, and the `Latest Deployment` section of `job status`.
//!
//! ```text
//! ID          = web-v3
//! Job ID      = web
//! Job Version = 3
//! Status      = running
//! Description = Deployment is running but requires manual promotion
//!
//! Deployed
//! Task Group  Promoted  Desired  Canaries  Placed  Healthy  Unhealthy  Progress Deadline
//! web         false     3        1         1       1        0          2026-01-02T15:14:05Z
//! ```

use std::cmp::Reverse;
use std::time::SystemTime;

use caravan_schemas::Deployment;

use crate::cmd::job::format::{columns, kv};

/// The deployment's status description, `""` before the controller wrote one.
pub fn description(deployment: &Deployment) -> &str {
    deployment
        .status
        .as_ref()
        .and_then(|s| s.status_description.as_deref())
        .unwrap_or("")
}

/// When the deployment was created, for ordering; `None` when absent or unparsable.
fn created(deployment: &Deployment) -> Option<SystemTime> {
    let at = deployment.metadata.creation_timestamp.as_deref()?;
    humantime::parse_rfc3339_weak(at).ok()
}

/// Sorts deployments newest first: by creation time, then by job version (a job's versions
/// are deployed in order), then by name.
pub fn sort_newest_first(deployments: &mut [&Deployment]) {
    deployments.sort_by(|a, b| {
        let key = |d: &Deployment| (Reverse(created(d)), Reverse(d.spec.job_version));
        key(a)
            .cmp(&key(b))
            .then_with(|| a.metadata.name().cmp(b.metadata.name()))
    });
}

/// `ID  Job ID  Job Version  Status  Description`, newest first (Nomad's `deployment list`).
pub fn deployments_table(deployments: &[Deployment]) -> String {
    let mut sorted: Vec<&Deployment> = deployments.iter().collect();
    sort_newest_first(&mut sorted);
    let header = ["ID", "Job ID", "Job Version", "Status", "Description"];
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for d in sorted {
        rows.push(vec![
            d.metadata.name().to_owned(),
            d.spec.job_name.clone(),
            d.spec.job_version.to_string(),
            d.state().as_str().to_owned(),
            description(d).to_owned(),
        ]);
    }
    columns(&rows)
}

/// One deployment in Nomad's `deployment status` layout: its fields, then `Deployed` and the
/// per-group table once the controller wrote the groups' progress.
pub fn deployment_status(deployment: &Deployment) -> String {
    let fields = kv(&[
        ("ID", deployment.metadata.name().to_owned()),
        ("Job ID", deployment.spec.job_name.clone()),
        ("Job Version", deployment.spec.job_version.to_string()),
        ("Status", deployment.state().as_str().to_owned()),
        ("Description", description(deployment).to_owned()),
    ]);
    with_groups(fields, deployment)
}

/// The body of `job status`'s `Latest Deployment` section: ID, status and description, then
/// the per-group table.
pub fn latest_deployment(deployment: &Deployment) -> String {
    let fields = kv(&[
        ("ID", deployment.metadata.name().to_owned()),
        ("Status", deployment.state().as_str().to_owned()),
        ("Description", description(deployment).to_owned()),
    ]);
    with_groups(fields, deployment)
}

fn with_groups(mut out: String, deployment: &Deployment) -> String {
    if let Some(groups) = groups_table(deployment) {
        out.push_str("\nDeployed\n");
        out.push_str(&groups);
    }
    out
}

/// `Task Group  [Auto Revert]  [Promoted]  Desired  [Canaries]  Placed  Healthy  Unhealthy
/// Progress Deadline`: as Nomad, `Auto Revert` only when a group reverts automatically, and
/// `Promoted` and `Canaries` only when a group has canaries (`N/A` in the groups without).
/// `None` before the controller wrote any group's progress.
pub fn groups_table(deployment: &Deployment) -> Option<String> {
    let groups = &deployment.status.as_ref()?.groups;
    if groups.is_empty() {
        return None;
    }
    let auto_revert = groups.values().any(|g| g.auto_revert);
    let canaries = groups.values().any(|g| g.desired_canaries > 0);
    let mut header = vec!["Task Group"];
    if auto_revert {
        header.push("Auto Revert");
    }
    if canaries {
        header.push("Promoted");
    }
    header.push("Desired");
    if canaries {
        header.push("Canaries");
    }
    header.extend(["Placed", "Healthy", "Unhealthy", "Progress Deadline"]);
    let mut rows = vec![header.into_iter().map(str::to_owned).collect::<Vec<_>>()];
    for (name, g) in groups {
        let mut row = vec![name.clone()];
        if auto_revert {
            row.push(g.auto_revert.to_string());
        }
        if canaries {
            row.push(if g.desired_canaries > 0 {
                g.promoted.to_string()
            } else {
                "N/A".into()
            });
        }
        row.push(g.desired_total.to_string());
        if canaries {
            row.push(g.desired_canaries.to_string());
        }
        row.extend([
            g.placed_allocs.to_string(),
            g.healthy_allocs.to_string(),
            g.unhealthy_allocs.to_string(),
            g.require_progress_by
                .clone()
                .unwrap_or_else(|| "N/A".into()),
        ]);
        rows.push(row);
    }
    Some(columns(&rows))
}

#[cfg(test)]
mod tests;
