//! The allocation runner's side of deployment health: builds the allocation's [`Tracker`]
//! from the job version it runs, feeds it the task states and the clock, saves a decision in
//! the local state before it is sent (so that a restarted agent never decides it again), and
//! turns the tracker's next look into a timer deadline.

use std::collections::BTreeMap;
use std::time::SystemTime;

use caravan_schemas::allocation::TaskState;
use caravan_schemas::{Allocation, NameMap};

use super::AllocRunner;
use crate::runner::health::checks::CheckView;
use crate::runner::health::rules::group_update;
use crate::runner::health::tasks::{task_views, tracking_since};
use crate::runner::health::tracker::Tracker;
use crate::runner::spec::Phase;

/// The tracker of an allocation the runner starts, its tasks' states as an earlier agent
/// process left them (none for a new allocation): tracked from when its tasks started.
pub(super) fn tracker(
    runner: &mut AllocRunner,
    alloc: &Allocation,
    group: &str,
    states: &NameMap<TaskState>,
) -> Tracker {
    let mut tracker = Tracker::new(runner.health.take());
    let job = runner.running_job.borrow().clone();
    tracker.follow(
        alloc,
        group_update(&job, group),
        tracking_since(states, SystemTime::now()),
    );
    tracker
}

/// Follows the Allocation as the servers changed it: a new deployment (an update in place,
/// its job version already in `running_job`) is tracked from now.
pub(super) fn follow(runner: &AllocRunner, tracker: &mut Tracker, group: &str) {
    let alloc = runner.alloc.borrow().clone();
    let job = runner.running_job.borrow().clone();
    tracker.follow(&alloc, group_update(&job, group), SystemTime::now());
}

/// Decides from the task states and the services' checks now, while tracking; a decision is
/// logged and saved locally (it goes out with the next status the runner reports).
pub(super) fn check(
    runner: &AllocRunner,
    alloc_name: &str,
    tracker: &mut Tracker,
    phases: &BTreeMap<String, Phase>,
    states: &NameMap<TaskState>,
    checks: &[CheckView],
) {
    if !tracker.is_tracking() {
        return;
    }
    let tasks = task_views(phases, states);
    let Some(verdict) = tracker.observe_with_checks(&tasks, checks, SystemTime::now()) else {
        return;
    };
    let health = &verdict.health;
    match &verdict.reason {
        None => {
            tracing::info!(alloc = %alloc_name, deployment = %health.deployment, "allocation healthy")
        }
        Some(reason) => {
            tracing::info!(alloc = %alloc_name, deployment = %health.deployment, reason = %reason, "allocation unhealthy")
        }
    }
    if let Err(e) = runner.local.put_health(&runner.alloc_id, health) {
        tracing::error!(alloc = %alloc_name, error = %e, "failed to save the allocation's health");
    }
}

/// When the tracker wants to decide again, as a timer deadline.
pub(super) fn recheck_deadline(tracker: &Tracker) -> Option<tokio::time::Instant> {
    let at = tracker.recheck_at()?;
    let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
    Some(tokio::time::Instant::now() + wait)
}
