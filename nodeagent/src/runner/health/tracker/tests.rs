use std::time::{Duration, UNIX_EPOCH};

use caravan_schemas::allocation::{AllocationStatus, TaskLifecycleState};
use caravan_schemas::job::HealthCheck;

use super::*;
use crate::runner::health::TaskRole;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn alloc(deployment: Option<&str>, status: Option<AllocDeploymentStatus>) -> Allocation {
    let mut alloc: Allocation = serde_json::from_value(serde_json::json!({
        "apiVersion": "caravan.dev/v1", "kind": "Allocation",
        "metadata": {"name": "j-g-0-00000000", "namespace": "default"},
        "spec": {"jobName": "j", "group": "g", "nodeName": "n1"}
    }))
    .unwrap();
    alloc.spec.deployment_name = deployment.map(str::to_string);
    alloc.status = status.map(|s| AllocationStatus {
        deployment_status: Some(s),
        ..Default::default()
    });
    alloc
}

fn canary() -> Option<AllocDeploymentStatus> {
    Some(AllocDeploymentStatus {
        canary: true,
        ..Default::default()
    })
}

fn update(check: HealthCheck) -> UpdateStrategy {
    UpdateStrategy {
        health_check: Some(check),
        min_healthy_time: Some("10s".into()),
        healthy_deadline: Some("5m".into()),
        ..Default::default()
    }
}

fn running_since(secs: u64) -> Vec<TaskView> {
    vec![TaskView {
        name: "web".into(),
        role: TaskRole::Running,
        state: TaskLifecycleState::Running,
        failed: false,
        started_at: Some(at(secs)),
        finished_at: None,
    }]
}

fn decided(healthy: bool, secs: u64, canary: bool) -> AllocDeploymentStatus {
    AllocDeploymentStatus {
        healthy: Some(healthy),
        canary,
        timestamp: Some(events::timestamp(at(secs))),
    }
}

#[test]
fn healthy_is_decided_once_with_the_canary_flag_kept() {
    let mut tracker = Tracker::new(None);
    let update = update(HealthCheck::TaskStates);
    tracker.follow(&alloc(Some("j-v1"), canary()), Some(&update), at(0));
    assert!(tracker.is_tracking());
    assert_eq!(tracker.observe(&running_since(2), at(5)), None);
    assert_eq!(tracker.recheck_at(), Some(at(12)));
    assert!(!tracker.has_unsent());
    let verdict = tracker.observe(&running_since(2), at(12)).expect("decided");
    assert_eq!(
        verdict,
        Verdict {
            health: LocalHealth {
                deployment: "j-v1".into(),
                status: decided(true, 12, true),
            },
            reason: None,
        }
    );
    assert_eq!(tracker.take_unsent(), Some(decided(true, 12, true)));
    assert_eq!(tracker.take_unsent(), None, "sent once");
    // Nothing changes it afterwards: not a failure, not the servers' echo of it.
    let mut failed = running_since(2);
    failed[0].failed = true;
    assert_eq!(tracker.observe(&failed, at(20)), None);
    tracker.follow(
        &alloc(Some("j-v1"), Some(decided(true, 12, true))),
        Some(&update),
        at(20),
    );
    assert_eq!(tracker.observe(&failed, at(21)), None);
    assert!(!tracker.has_unsent());
    assert_eq!(tracker.recheck_at(), None);
}

#[test]
fn a_failed_task_is_unhealthy_with_its_reason() {
    let mut tracker = Tracker::new(None);
    tracker.follow(
        &alloc(Some("j-v1"), None),
        Some(&update(HealthCheck::Checks)),
        at(0),
    );
    let mut failed = running_since(1);
    failed[0].state = TaskLifecycleState::Dead;
    failed[0].failed = true;
    failed[0].finished_at = Some(at(3));
    let verdict = tracker.observe(&failed, at(4)).expect("decided");
    assert_eq!(verdict.health.status, decided(false, 3, false));
    assert_eq!(verdict.reason.as_deref(), Some("task web failed"));
}

#[test]
fn untracked_allocations() {
    let tracked = update(HealthCheck::TaskStates);
    let cases = [
        ("no deployment", alloc(None, None), Some(tracked.clone())),
        ("no update block", alloc(Some("j-v1"), None), None),
        (
            "manual",
            alloc(Some("j-v1"), None),
            Some(update(HealthCheck::Manual)),
        ),
        (
            "health already set",
            alloc(Some("j-v1"), Some(decided(true, 1, false))),
            Some(tracked),
        ),
    ];
    for (case, alloc, update) in cases {
        let mut tracker = Tracker::new(None);
        tracker.follow(&alloc, update.as_ref(), at(0));
        assert!(!tracker.is_tracking(), "{case}");
        assert_eq!(tracker.observe(&running_since(0), at(100)), None, "{case}");
        assert!(!tracker.has_unsent(), "{case}");
    }
}

#[test]
fn health_set_elsewhere_while_tracking_ends_tracking() {
    let mut tracker = Tracker::new(None);
    let update = update(HealthCheck::TaskStates);
    tracker.follow(&alloc(Some("j-v1"), None), Some(&update), at(0));
    tracker.follow(
        &alloc(Some("j-v1"), Some(decided(false, 1, false))),
        Some(&update),
        at(2),
    );
    assert!(!tracker.is_tracking());
    assert_eq!(tracker.observe(&running_since(0), at(100)), None);
    assert!(!tracker.has_unsent());
}

#[test]
fn a_stopped_allocation_is_not_tracked() {
    let mut tracker = Tracker::new(None);
    let update = update(HealthCheck::TaskStates);
    tracker.follow(&alloc(Some("j-v1"), None), Some(&update), at(0));
    tracker.stop();
    assert_eq!(tracker.observe(&running_since(0), at(100)), None);
    tracker.follow(&alloc(Some("j-v2"), None), Some(&update), at(100));
    assert!(!tracker.is_tracking(), "stopped for good");
}

#[test]
fn a_recovered_decision_is_sent_again_for_its_deployment_only() {
    let recovered = LocalHealth {
        deployment: "j-v2".into(),
        status: decided(true, 30, true),
    };
    let update = update(HealthCheck::TaskStates);
    // The saved Allocation predates the in-place update to j-v2: track j-v1 until the
    // servers' copy arrives, then take the decision made for j-v2.
    let mut tracker = Tracker::new(Some(recovered.clone()));
    tracker.follow(&alloc(Some("j-v1"), None), Some(&update), at(0));
    assert!(tracker.is_tracking());
    tracker.follow(&alloc(Some("j-v2"), canary()), Some(&update), at(50));
    assert!(!tracker.is_tracking());
    assert_eq!(tracker.take_unsent(), Some(recovered.status.clone()));
    assert_eq!(tracker.observe(&running_since(0), at(100)), None);
    assert!(!tracker.has_unsent());
}

#[test]
fn a_new_deployment_is_tracked_from_when_it_is_seen() {
    let mut tracker = Tracker::new(None);
    let update = update(HealthCheck::TaskStates);
    tracker.follow(&alloc(Some("j-v1"), None), Some(&update), at(0));
    assert!(tracker.observe(&running_since(0), at(10)).is_some());
    tracker.take_unsent();
    // Updated in place into j-v2 at 100: the tasks ran all along, the window starts at 100.
    tracker.follow(&alloc(Some("j-v2"), None), Some(&update), at(100));
    assert!(tracker.is_tracking());
    assert_eq!(tracker.observe(&running_since(0), at(105)), None);
    assert_eq!(tracker.recheck_at(), Some(at(110)));
    let verdict = tracker
        .observe(&running_since(0), at(110))
        .expect("decided");
    assert_eq!(verdict.health.deployment, "j-v2");
    assert_eq!(verdict.health.status, decided(true, 110, false));
}
