//! A deployment's `status.conditions`, for `kubectl wait --for=condition=…`: `Progressing`,
//! `Available` and, with canaries, `Promoted`.

use caravan_schemas::DeploymentStatus;
use caravan_schemas::condition::{Condition, ConditionStatus};
use caravan_schemas::deployment::{DeploymentState, descriptions};

use crate::scheduler::time::format_rfc3339;

/// `Progressing`: true while the deployment runs (or is paused) and once it succeeded.
pub const PROGRESSING: &str = "Progressing";
/// `Available`: every group has its healthy allocations.
pub const AVAILABLE: &str = "Available";
/// `Promoted`: the canaries were promoted (only on deployments with canaries).
pub const PROMOTED: &str = "Promoted";

/// Sets the conditions `status` implies. A condition whose status did not change keeps its
/// `lastTransitionTime` from `previous`; the others take `now`.
pub fn set_conditions(status: &mut DeploymentStatus, previous: &[Condition], now: i64) {
    let description = status.status_description.clone().unwrap_or_default();
    let mut conditions = vec![progressing(status, &description)];
    conditions.push(available(status));
    if status.groups.values().any(|g| g.desired_canaries > 0) {
        conditions.push(promoted(status, &description));
    }
    for condition in &mut conditions {
        let kept = previous
            .iter()
            .find(|p| p.r#type == condition.r#type && p.status == condition.status)
            .and_then(|p| p.last_transition_time.clone());
        condition.last_transition_time = kept.or_else(|| Some(format_rfc3339(now)));
    }
    status.conditions = conditions;
}

fn condition(kind: &str, status: ConditionStatus, reason: &str, message: &str) -> Condition {
    Condition {
        r#type: kind.into(),
        status,
        reason: reason.into(),
        message: message.into(),
        last_transition_time: None,
    }
}

fn progressing(status: &DeploymentStatus, description: &str) -> Condition {
    let (state, reason) = match status.status {
        DeploymentState::Successful => (ConditionStatus::True, "Successful"),
        DeploymentState::Paused => (ConditionStatus::True, "Paused"),
        DeploymentState::Cancelled => (ConditionStatus::False, "Cancelled"),
        DeploymentState::Failed => (ConditionStatus::False, failure_reason(description)),
        _ if status.groups.values().all(|g| g.placed_allocs == 0) => {
            (ConditionStatus::True, "NewDeployment")
        }
        _ => (ConditionStatus::True, "Running"),
    };
    condition(PROGRESSING, state, reason, description)
}

/// The reason of a failure, from its description (which a revert may have extended).
fn failure_reason(description: &str) -> &'static str {
    if description.starts_with(descriptions::FAILED_PROGRESS_DEADLINE) {
        "ProgressDeadlineExceeded"
    } else if description.starts_with(descriptions::FAILED_ALLOCATIONS) {
        "UnhealthyAllocations"
    } else {
        "Failed"
    }
}

fn available(status: &DeploymentStatus) -> Condition {
    let (healthy, wanted) = status.groups.values().fold((0u64, 0u64), |(h, w), g| {
        let healthy = g.healthy_allocs.min(g.desired_total);
        (
            h.saturating_add(u64::from(healthy)),
            w.saturating_add(u64::from(g.desired_total)),
        )
    });
    let message = format!("{healthy} of {wanted} allocations healthy");
    if status
        .groups
        .values()
        .all(|g| g.healthy_allocs >= g.desired_total)
    {
        condition(
            AVAILABLE,
            ConditionStatus::True,
            "AllocationsHealthy",
            &message,
        )
    } else {
        condition(
            AVAILABLE,
            ConditionStatus::False,
            "AllocationsNotHealthy",
            &message,
        )
    }
}

fn promoted(status: &DeploymentStatus, description: &str) -> Condition {
    let waiting = status
        .groups
        .values()
        .any(|g| g.desired_canaries > 0 && !g.promoted);
    if !waiting {
        condition(
            PROMOTED,
            ConditionStatus::True,
            "Promoted",
            "Canaries promoted",
        )
    } else if description == descriptions::AUTO_PROMOTION {
        condition(
            PROMOTED,
            ConditionStatus::False,
            "AutoPromotionPending",
            "Canaries are promoted once all are healthy",
        )
    } else {
        condition(
            PROMOTED,
            ConditionStatus::False,
            "PromotionRequired",
            "Canaries wait for a promotion",
        )
    }
}
