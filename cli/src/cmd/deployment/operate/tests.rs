//! What each operation writes, refuses or leaves alone.

use caravan_schemas::deployment::{DeploymentGroupState, DeploymentState, descriptions};
use caravan_schemas::job::UpdateStrategy;
use caravan_schemas::mock;

use super::*;
use crate::cmd::deployment::fixtures::{deployment, group, with_groups};

fn running() -> Deployment {
    with_groups(
        deployment("web", 2, DeploymentState::Running, descriptions::RUNNING),
        [("web", group(3, 1, 0, 0))],
    )
}

fn with_canaries(healthy: u32) -> Deployment {
    let canary = DeploymentGroupState {
        desired_canaries: 1,
        placed_canaries: vec!["web-web-0-aa".into()],
        ..group(3, 1, healthy, 0)
    };
    with_groups(
        deployment(
            "web",
            2,
            DeploymentState::Running,
            descriptions::NEEDS_PROMOTION,
        ),
        [("web", canary)],
    )
}

#[test]
fn each_operation_patches_its_spec_field() {
    let d = running();
    assert_eq!(
        decide(&d, Operation::Fail),
        Ok(Decision::Patch(json!({"spec": {"failed": true}})))
    );
    assert_eq!(
        decide(&d, Operation::Pause),
        Ok(Decision::Patch(json!({"spec": {"paused": true}})))
    );
    assert_eq!(
        decide(&with_canaries(1), Operation::Promote),
        Ok(Decision::Patch(json!({"spec": {"promoted": true}})))
    );
    let mut paused = running();
    paused.spec.paused = Some(true);
    paused.status.as_mut().unwrap().status = DeploymentState::Paused;
    assert_eq!(
        decide(&paused, Operation::Resume),
        Ok(Decision::Patch(json!({"spec": {"paused": false}})))
    );
}

#[test]
fn a_finished_deployment_is_refused() {
    let done = deployment(
        "web",
        2,
        DeploymentState::Successful,
        descriptions::SUCCESSFUL,
    );
    for op in [
        Operation::Promote,
        Operation::Fail,
        Operation::Pause,
        Operation::Resume,
    ] {
        let refusal = decide(&done, op).unwrap_err();
        assert_eq!(
            refusal,
            format!(
                "cannot {} deployment \"web-v2\": it is successful (Deployment completed \
                 successfully), no longer active",
                op.verb()
            )
        );
    }
}

#[test]
fn what_is_already_so_is_not_written_again() {
    let mut d = running();
    assert_eq!(
        decide(&d, Operation::Resume),
        Ok(Decision::AlreadyDone(
            "Deployment \"web-v2\" is not paused".into()
        ))
    );
    d.spec.paused = Some(true);
    d.spec.failed = Some(true);
    assert!(matches!(
        decide(&d, Operation::Pause),
        Ok(Decision::AlreadyDone(_))
    ));
    assert!(matches!(
        decide(&d, Operation::Fail),
        Ok(Decision::AlreadyDone(_))
    ));
    let mut promoted = with_canaries(1);
    promoted.spec.promoted = Some(true);
    assert!(matches!(
        decide(&promoted, Operation::Promote),
        Ok(Decision::AlreadyDone(_))
    ));
}

#[test]
fn promotion_needs_healthy_canaries() {
    assert_eq!(
        decide(&running(), Operation::Promote).unwrap_err(),
        "deployment \"web-v2\" has no canaries to promote"
    );
    assert_eq!(
        decide(&with_canaries(0), Operation::Promote).unwrap_err(),
        "cannot promote deployment \"web-v2\": task group \"web\" has 0/1 healthy canaries; \
         promote once they are healthy"
    );
    // Before the controller wrote the groups' progress, the spec tells there are canaries.
    let mut pending = deployment("web", 2, DeploymentState::Pending, "");
    pending.status = None;
    pending.spec.groups.insert(
        "web".into(),
        UpdateStrategy {
            canary: Some(2),
            ..UpdateStrategy::default()
        },
    );
    assert!(matches!(
        decide(&pending, Operation::Promote),
        Ok(Decision::Patch(_))
    ));
}

#[test]
fn failing_says_when_the_job_reverts() {
    let mut d = running();
    assert_eq!(
        done_line(&d, Operation::Fail),
        "Deployment \"web-v2\" marked as failed"
    );
    d.status
        .as_mut()
        .unwrap()
        .groups
        .get_mut("web")
        .unwrap()
        .auto_revert = true;
    assert_eq!(
        done_line(&d, Operation::Fail),
        "Deployment \"web-v2\" marked as failed: the job reverts to its latest stable version \
         (autoRevert)"
    );
    assert_eq!(
        done_line(&d, Operation::Pause),
        "Deployment \"web-v2\" paused"
    );
}

#[test]
fn the_latest_deployments_are_the_jobs_newest_versions() {
    let mut job = mock::job("web");
    job.metadata.uid = Some("u2".into());
    let mut old_job = deployment("web", 9, DeploymentState::Running, "");
    old_job.spec.job_uid = "u1".into();
    let mut active = deployment("web", 3, DeploymentState::Running, "");
    active.spec.job_uid = "u2".into();
    let mut newest = deployment("web", 4, DeploymentState::Failed, "");
    newest.spec.job_uid = "u2".into();
    let other = deployment("api", 5, DeploymentState::Running, "");
    let all = [old_job, active, newest, other];
    assert_eq!(latest(&all, &job).unwrap().metadata.name(), "web-v4");
    assert_eq!(latest_active(&all, &job).unwrap().metadata.name(), "web-v3");
    assert!(latest_active(&all[2..], &job).is_none());
}
