//! Deployments in given states, for the tests of the layouts, the operations and the monitor.

use std::collections::BTreeMap;

use caravan_schemas::deployment::{DeploymentGroupState, DeploymentState};
use caravan_schemas::{Deployment, DeploymentSpec, DeploymentStatus, ObjectMeta, deployment};

/// Deployment `<job>-v<version>` in `state`, described by `description`, without groups.
pub fn deployment(
    job: &str,
    version: i64,
    state: DeploymentState,
    description: &str,
) -> Deployment {
    Deployment {
        api_version: caravan_schemas::API_VERSION.into(),
        kind: "Deployment".into(),
        metadata: ObjectMeta {
            name: Some(deployment::name_for(job, version)),
            namespace: Some("default".into()),
            creation_timestamp: Some(format!("2026-01-02T15:0{version}:00Z")),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            job_name: job.into(),
            job_version: version,
            ..DeploymentSpec::default()
        },
        status: Some(DeploymentStatus {
            status: state,
            status_description: (!description.is_empty()).then(|| description.to_owned()),
            ..DeploymentStatus::default()
        }),
    }
}

/// A group's progress: `desired` wanted, `placed` placed, `healthy` and `unhealthy` of them.
pub fn group(desired: u32, placed: u32, healthy: u32, unhealthy: u32) -> DeploymentGroupState {
    DeploymentGroupState {
        desired_total: desired,
        placed_allocs: placed,
        healthy_allocs: healthy,
        unhealthy_allocs: unhealthy,
        require_progress_by: Some("2026-01-02T15:14:05Z".into()),
        ..DeploymentGroupState::default()
    }
}

/// `deployment` with these groups' progress.
pub fn with_groups(
    mut deployment: Deployment,
    groups: impl IntoIterator<Item = (&'static str, DeploymentGroupState)>,
) -> Deployment {
    let status = deployment.status.get_or_insert_with(Default::default);
    status.groups = groups
        .into_iter()
        .map(|(name, g)| (name.to_owned(), g))
        .collect::<BTreeMap<_, _>>();
    deployment
}
