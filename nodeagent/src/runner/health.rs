//! Allocation health within a deployment (Nomad's alloc health tracker, `task_states` and
//! `checks` rules): pure decisions from the tasks' states, the services' checks, the group's
//! `update` block and the clock.
//!
//! ```text
//!  any task failed ─────────────────────────────────────────────▶ Unhealthy (at once)
//!  every main and sidecar task running, prestart hooks completed
//!      (with `checks`: and every check of the services passing)
//!      since T (the latest of their starts and of the checks' passing, at the earliest the
//!      tracking start) and T + minHealthyTime ≤ now ────────────▶ Healthy at T + min
//!  not Healthy by tracking start + healthyDeadline ──────────────▶ Unhealthy at the deadline
//!  otherwise ──────────────────────────────────────────────────────▶ Pending: look again at
//!                                                     min(T + minHealthyTime, deadline)
//! ```
//!
//! A restart moves a task's start forward, so a task that restarts inside the window starts
//! the window again; so does a check that stops passing. Tasks already running when tracking
//! starts (an allocation updated in place into a new deployment) count from the tracking
//! start, as Nomad's tracker does. Poststop hooks are not looked at; poststart hooks that are
//! not sidecars only must not fail. A failing check never makes the allocation unhealthy
//! before the deadline. `manual` health is set by the operator, not tracked here. Which
//! allocations are tracked with which rules is in `rules.rs`, task states become
//! [`TaskView`]s in `tasks.rs`, checks [`checks::CheckView`]s in `checks.rs`, and `tracker.rs`
//! follows one allocation from its start to its decision.

use std::time::{Duration, SystemTime};

use caravan_schemas::allocation::TaskLifecycleState;

use self::checks::CheckView;
use super::spec::Phase;

pub mod checks;
pub mod rules;
pub mod tasks;
pub mod tracker;

/// What a task must do for its allocation to be healthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskRole {
    /// A main task or a sidecar: must be running.
    Running,
    /// A prestart hook that is not a sidecar: must have completed successfully.
    Completes,
    /// A poststart hook that is not a sidecar: must not fail.
    MustNotFail,
    /// A poststop hook: runs after the allocation stops, so not looked at.
    Ignored,
}

impl TaskRole {
    /// The role of a task in its lifecycle phase.
    pub fn of(phase: Phase) -> TaskRole {
        match phase {
            Phase::Main { .. }
            | Phase::Prestart { sidecar: true }
            | Phase::Poststart { sidecar: true } => TaskRole::Running,
            Phase::Prestart { sidecar: false } => TaskRole::Completes,
            Phase::Poststart { sidecar: false } => TaskRole::MustNotFail,
            Phase::Poststop => TaskRole::Ignored,
        }
    }
}

/// One task as the health rules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskView {
    pub name: String,
    pub role: TaskRole,
    pub state: TaskLifecycleState,
    pub failed: bool,
    /// When the task last started (its last restart included); `None` before it ever ran.
    pub started_at: Option<SystemTime>,
    /// When the task finished, for a dead task.
    pub finished_at: Option<SystemTime>,
}

/// The group's health settings (its `update` block, with defaults applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthRules {
    /// How long every task must have been running before the allocation is healthy.
    pub min_healthy_time: Duration,
    /// How long the allocation has to become healthy, from when tracking started.
    pub healthy_deadline: Duration,
    /// Whether the services' checks must pass too (`healthCheck: checks`).
    pub checks: bool,
}

/// The health of an allocation at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Not decided yet: decide again at `recheck_at` (or when a task changes).
    Pending {
        recheck_at: SystemTime,
    },
    Healthy {
        at: SystemTime,
    },
    Unhealthy {
        at: SystemTime,
        reason: String,
    },
}

/// Decides the health of an allocation whose tracking started at `tracking_since`, from its
/// tasks only.
pub fn decide(
    rules: HealthRules,
    tracking_since: SystemTime,
    tasks: &[TaskView],
    now: SystemTime,
) -> Health {
    decide_with_checks(rules, tracking_since, tasks, &[], now)
}

/// Decides the health of an allocation whose tracking started at `tracking_since`, from its
/// tasks and (when the rules ask) its services' checks.
pub fn decide_with_checks(
    rules: HealthRules,
    tracking_since: SystemTime,
    tasks: &[TaskView],
    checks: &[CheckView],
    now: SystemTime,
) -> Health {
    let deadline = tracking_since
        .checked_add(rules.healthy_deadline)
        .unwrap_or(tracking_since);
    if let Some(task) = tasks
        .iter()
        .find(|t| t.role != TaskRole::Ignored && t.failed)
    {
        return Health::Unhealthy {
            at: task.finished_at.unwrap_or(now).min(now),
            reason: format!("task {} failed", task.name),
        };
    }
    let checks_since = if rules.checks {
        checks::passing_since(checks)
    } else {
        Ok(SystemTime::UNIX_EPOCH)
    };
    let ready_since = match (ready_since(tasks), checks_since) {
        (Some(tasks), Ok(checks)) => Some(tasks.max(checks).max(tracking_since)),
        _ => None,
    };
    if let Some(since) = ready_since {
        let healthy_at = since.checked_add(rules.min_healthy_time).unwrap_or(since);
        if healthy_at <= now && healthy_at <= deadline {
            return Health::Healthy { at: healthy_at };
        }
    }
    if deadline <= now {
        let reason = match (waiting_for(tasks), checks_since) {
            (Some(task), _) => format!("task {task} is not running by the healthy deadline"),
            (None, Err(check)) => format!("check {check} is not passing by the healthy deadline"),
            (None, Ok(_)) => {
                "the tasks did not run for the minimum healthy time by the healthy deadline"
                    .to_string()
            }
        };
        return Health::Unhealthy {
            at: deadline,
            reason,
        };
    }
    let recheck_at = ready_since
        .and_then(|since| since.checked_add(rules.min_healthy_time))
        .map_or(deadline, |healthy_at| healthy_at.min(deadline));
    Health::Pending { recheck_at }
}

/// Since when every task has been what its role asks, if it is now.
fn ready_since(tasks: &[TaskView]) -> Option<SystemTime> {
    let mut since = SystemTime::UNIX_EPOCH;
    for task in tasks {
        let ready = match task.role {
            TaskRole::Running => match (task.state, task.started_at) {
                (TaskLifecycleState::Running, Some(started)) => Some(started),
                _ => None,
            },
            TaskRole::Completes => match task.state {
                TaskLifecycleState::Dead => Some(task.finished_at.unwrap_or(since)),
                _ => None,
            },
            TaskRole::MustNotFail | TaskRole::Ignored => Some(since),
        };
        since = since.max(ready?);
    }
    Some(since)
}

/// The first task that keeps the allocation from being ready.
fn waiting_for(tasks: &[TaskView]) -> Option<&str> {
    tasks
        .iter()
        .find(|t| match t.role {
            TaskRole::Running => t.state != TaskLifecycleState::Running,
            TaskRole::Completes => t.state != TaskLifecycleState::Dead,
            TaskRole::MustNotFail | TaskRole::Ignored => false,
        })
        .map(|t| t.name.as_str())
}

#[cfg(test)]
mod tests;
