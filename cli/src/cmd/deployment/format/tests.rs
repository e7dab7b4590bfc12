//! Deployment layouts from fixed deployments.

use caravan_schemas::deployment::{DeploymentGroupState, DeploymentState, descriptions};

use super::*;
use crate::cmd::deployment::fixtures::{deployment, group, with_groups};

#[test]
fn the_list_is_newest_first_with_nomads_columns() {
    let old = deployment(
        "web",
        1,
        DeploymentState::Successful,
        descriptions::SUCCESSFUL,
    );
    let new = deployment("web", 2, DeploymentState::Running, descriptions::RUNNING);
    let api = deployment(
        "api",
        1,
        DeploymentState::Cancelled,
        descriptions::NEWER_JOB,
    );
    assert_eq!(
        deployments_table(&[old, api, new]),
        "\
ID      Job ID  Job Version  Status      Description
web-v2  web     2            running     Deployment is running
api-v1  api     1            cancelled   Cancelled due to newer version of job
web-v1  web     1            successful  Deployment completed successfully
"
    );
}

#[test]
fn status_shows_fields_then_the_groups() {
    let d = with_groups(
        deployment("web", 3, DeploymentState::Running, descriptions::RUNNING),
        [("web", group(3, 2, 1, 0)), ("cache", group(1, 0, 0, 0))],
    );
    assert_eq!(
        deployment_status(&d),
        "\
ID          = web-v3
Job ID      = web
Job Version = 3
Status      = running
Description = Deployment is running

Deployed
Task Group  Desired  Placed  Healthy  Unhealthy  Progress Deadline
cache       1        0       0        0          2026-01-02T15:14:05Z
web         3        2       1        0          2026-01-02T15:14:05Z
"
    );
}

#[test]
fn canary_and_auto_revert_columns_appear_only_when_used() {
    let canaries = DeploymentGroupState {
        desired_canaries: 1,
        auto_revert: true,
        require_progress_by: None,
        ..group(3, 1, 1, 0)
    };
    let d = with_groups(
        deployment(
            "web",
            3,
            DeploymentState::Running,
            descriptions::NEEDS_PROMOTION,
        ),
        [("web", canaries), ("cache", group(2, 0, 0, 0))],
    );
    assert_eq!(
        groups_table(&d).unwrap(),
        "\
Task Group  Auto Revert  Promoted  Desired  Canaries  Placed  Healthy  Unhealthy  Progress Deadline
cache       false        N/A       2        0         0       0        0          2026-01-02T15:14:05Z
web         true         false     3        1         1       1        0          N/A
"
    );
}

#[test]
fn a_pending_deployment_has_no_groups_yet() {
    let mut d = deployment("web", 0, DeploymentState::Pending, "");
    d.status = None;
    assert_eq!(groups_table(&d), None);
    assert_eq!(
        latest_deployment(&d),
        "ID          = web-v0\nStatus      = pending\nDescription =\n"
    );
}
