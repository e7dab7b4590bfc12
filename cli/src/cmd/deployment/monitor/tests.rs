//! Monitor lines and the decision to stop, from sequences of deployment states.

use caravan_schemas::deployment::DeploymentGroupState;

use super::*;
use crate::cmd::deployment::fixtures::{deployment, group, with_groups};

fn state(state: DeploymentState, description: &str, web: DeploymentGroupState) -> Deployment {
    with_groups(deployment("web", 1, state, description), [("web", web)])
}

fn texts(lines: &[Line]) -> Vec<&str> {
    lines.iter().map(Line::text).collect()
}

#[test]
fn a_rollout_is_followed_until_it_succeeds() {
    use DeploymentState::*;
    let mut pending = deployment("web", 1, Pending, "");
    pending.status = None;
    let sequence = [
        pending,
        state(Running, descriptions::RUNNING, group(3, 1, 0, 0)),
        state(Running, descriptions::RUNNING, group(3, 1, 0, 0)),
        state(Running, descriptions::RUNNING, group(3, 2, 1, 0)),
        state(Paused, descriptions::PAUSED, group(3, 2, 1, 0)),
        state(Running, descriptions::RUNNING, group(3, 3, 3, 0)),
        state(Successful, descriptions::SUCCESSFUL, group(3, 3, 3, 0)),
    ];
    let mut monitor = Monitor::new("web-v1");
    let mut printed = Vec::new();
    for (i, d) in sequence.iter().enumerate() {
        assert!(!monitor.done(), "stopped early, before state {i}");
        printed.push(monitor.observe(d));
    }
    assert!(monitor.done());
    assert_eq!(
        monitor.outcome(),
        Some(Outcome {
            state: Successful,
            description: descriptions::SUCCESSFUL.into()
        })
    );
    assert_eq!(texts(&printed[0]), ["Monitoring deployment \"web-v1\""]);
    assert_eq!(
        texts(&printed[1]),
        [
            "Task group \"web\": 1/3 placed, 0 healthy, 0 unhealthy",
            "Deployment status changed: \"pending\" -> \"running\" (Deployment is running)",
        ]
    );
    assert!(printed[2].is_empty(), "nothing changed: {:?}", printed[2]);
    assert_eq!(
        texts(&printed[3]),
        ["Task group \"web\": 2/3 placed, 1 healthy, 0 unhealthy"]
    );
    assert_eq!(
        texts(&printed[4]),
        ["Deployment status changed: \"running\" -> \"paused\" (Deployment is paused)"]
    );
    assert_eq!(
        texts(&printed[5]),
        [
            "Task group \"web\": 3/3 placed, 3 healthy, 0 unhealthy",
            "Deployment status changed: \"paused\" -> \"running\" (Deployment is running)",
        ]
    );
    let end = texts(&printed[6]);
    assert_eq!(
        end[..2],
        [
            "Deployment status changed: \"running\" -> \"successful\" (Deployment completed \
             successfully)",
            "Deployment \"web-v1\" successful",
        ]
    );
    assert!(matches!(printed[6][1], Line::Header(_)));
    assert!(end.contains(&"Status      = successful"), "{end:?}");
    assert!(
        end.contains(&"web         3        3       3        0          2026-01-02T15:14:05Z"),
        "{end:?}"
    );
}

#[test]
fn a_failure_stops_with_its_description_and_later_states_are_ignored() {
    let mut reverting = group(3, 2, 1, 1);
    reverting.auto_revert = true;
    let mut monitor = Monitor::new("web-v1");
    monitor.observe(&state(
        DeploymentState::Running,
        descriptions::RUNNING,
        group(3, 1, 0, 0),
    ));
    let lines = monitor.observe(&state(
        DeploymentState::Failed,
        descriptions::FAILED_ALLOCATIONS,
        reverting,
    ));
    assert!(monitor.done());
    let outcome = monitor.outcome().unwrap();
    assert!(!outcome.succeeded());
    assert_eq!(outcome.description, descriptions::FAILED_ALLOCATIONS);
    let text = texts(&lines);
    assert!(
        text.contains(&"Deployment \"web-v1\" failed: Failed due to unhealthy allocations"),
        "{text:?}"
    );
    assert!(
        text.iter().any(|l| l.starts_with("The job reverts")),
        "{text:?}"
    );
    let after = monitor.observe(&state(
        DeploymentState::Running,
        descriptions::RUNNING,
        group(3, 3, 3, 0),
    ));
    assert!(after.is_empty());
    assert!(monitor.done());
}

#[test]
fn a_cancelled_deployment_ends_the_monitor() {
    let mut monitor = Monitor::new("web-v1");
    monitor.observe(&deployment(
        "web",
        1,
        DeploymentState::Cancelled,
        descriptions::NEWER_JOB,
    ));
    assert_eq!(
        monitor.outcome(),
        Some(Outcome {
            state: DeploymentState::Cancelled,
            description: descriptions::NEWER_JOB.into()
        })
    );
}

#[test]
fn canaries_waiting_for_promotion_get_a_hint_once() {
    let canary = DeploymentGroupState {
        desired_canaries: 1,
        placed_canaries: vec!["web-web-3-aa".into()],
        ..group(3, 1, 1, 0)
    };
    let mut monitor = Monitor::new("web-v1");
    let first = monitor.observe(&state(
        DeploymentState::Running,
        descriptions::NEEDS_PROMOTION,
        canary.clone(),
    ));
    assert_eq!(
        texts(&first)[1..],
        [
            "Task group \"web\": 1/3 placed, 1 healthy, 0 unhealthy, canaries 1/1 (not promoted)",
            "Deployment status changed: \"pending\" -> \"running\" (Deployment is running but \
             requires manual promotion)",
            "Promote the canaries once healthy: caravan deployment promote web-v1",
        ]
    );
    let again = monitor.observe(&state(
        DeploymentState::Running,
        descriptions::NEEDS_PROMOTION,
        canary.clone(),
    ));
    assert!(again.is_empty());
    assert!(
        !monitor.done(),
        "a deployment awaiting promotion is still active"
    );
    let promoted = DeploymentGroupState {
        promoted: true,
        ..canary
    };
    let after = monitor.observe(&state(
        DeploymentState::Running,
        descriptions::RUNNING,
        promoted,
    ));
    assert_eq!(
        texts(&after),
        [
            "Task group \"web\": 1/3 placed, 1 healthy, 0 unhealthy, canaries 1/1 (promoted)",
            "Deployment is running",
        ]
    );
}

#[test]
fn other_deployments_are_not_followed() {
    let mut monitor = Monitor::new("web-v2");
    let lines = monitor.observe(&deployment(
        "web",
        1,
        DeploymentState::Successful,
        descriptions::SUCCESSFUL,
    ));
    assert!(lines.is_empty());
    assert!(!monitor.seen() && !monitor.done());
}
