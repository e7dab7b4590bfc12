//! Allocation health within a deployment (Nomad's alloc health tracker, `task_states` rules):
//! pure decisions from the tasks' states, the group's `update` block and the clock.
//!
//! ```text
//!  any task failed ─────────────────────────────────────────────▶ Unhealthy (at once)
//!  every main and sidecar task running, prestart hooks completed
//!      since T (the latest of their starts, at the earliest the tracking start)
//!      and T + minHealthyTime ≤ now ─────────────────────────────▶ Healthy at T + min
//!  not Healthy by tracking start + healthyDeadline ──────────────▶ Unhealthy at the deadline
//!  otherwise ──────────────────────────────────────────────────────▶ Pending: look again at
//!                                                     min(T + minHealthyTime, deadline)
//! ```
//!
//! A restart moves a task's start forward, so a task that restarts inside the window starts
//! the window again. Tasks already running when tracking starts (an allocation updated in place
//! into a new deployment) count from the tracking start, as Nomad's tracker does. Poststop
//! hooks are not looked at; poststart hooks that are not sidecars only must not fail. `checks`
//! behaves as `task_states` until services bring checks; `manual` health is set by the
//! operator, not tracked here. Which allocations are tracked with which rules is in
//! `rules.rs`, task states become [`TaskView`]s in `tasks.rs`, and `tracker.rs` follows one
//! allocation from its start to its decision.

use std::time::{Duration, SystemTime};

use caravan_schemas::allocation::TaskLifecycleState;

use super::spec::Phase;

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

/// Decides the health of an allocation whose tracking started at `tracking_since`.
pub fn decide(
    rules: HealthRules,
    tracking_since: SystemTime,
    tasks: &[TaskView],
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
    let ready_since = ready_since(tasks).map(|since| since.max(tracking_since));
    if let Some(since) = ready_since {
        let healthy_at = since.checked_add(rules.min_healthy_time).unwrap_or(since);
        if healthy_at <= now && healthy_at <= deadline {
            return Health::Healthy { at: healthy_at };
        }
    }
    if deadline <= now {
        let reason = match waiting_for(tasks) {
            Some(task) => format!("task {task} is not running by the healthy deadline"),
            None => "the tasks did not run for the minimum healthy time by the healthy deadline"
                .to_string(),
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
