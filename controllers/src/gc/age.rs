//! When an object last changed, from the timestamps it carries, and whether that is longer ago
//! than a threshold. Every time is a lower bound: a missing or unreadable time never makes an
//! object look older than it is.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use caravan_schemas::{Allocation, Deployment, Evaluation, Job, Node};

use crate::job_status::RUNNING_CONDITION;
use crate::scheduler::time::parse_rfc3339;

/// Where the liveness loop writes the time it marked a node down:
/// `missed its heartbeat TTL (last checked 2024-05-01T12:30:00Z)`.
const DOWN_MARKER: &str = "last checked ";

/// An RFC 3339 time, to the second.
pub(crate) fn time(raw: Option<&str>) -> Option<SystemTime> {
    let secs = u64::try_from(parse_rfc3339(raw?)?).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Whether `at` is at least `threshold` before `now`. A zero threshold holds for everything;
/// an unknown time (or one in the future) never passes another.
pub(crate) fn older(at: Option<SystemTime>, threshold: Duration, now: SystemTime) -> bool {
    threshold.is_zero()
        || at.is_some_and(|t| now.duration_since(t).is_ok_and(|age| age >= threshold))
}

/// When a down node went down: the time the liveness loop wrote in its `statusDescription`
/// when it marked it down; else its last heartbeat (written when it last became ready); else
/// its creation. The latest of those known is the best bound.
pub fn down_since(node: &Node) -> Option<SystemTime> {
    let status = node.status.as_ref();
    let marked = status
        .and_then(|s| s.status_description.as_deref())
        .and_then(|d| d.split_once(DOWN_MARKER))
        .and_then(|(_, rest)| time(rest.split(')').next()));
    let heartbeat = status.and_then(|s| time(s.last_heartbeat.as_deref()));
    let created = time(node.metadata.creation_timestamp.as_deref());
    [marked, heartbeat, created].into_iter().flatten().max()
}

/// When an allocation last changed: the node's last status report, its tasks' finish times,
/// or its creation. (The servers' own stops record no time.)
pub fn alloc_changed_at(alloc: &Allocation) -> Option<SystemTime> {
    let created = time(alloc.metadata.creation_timestamp.as_deref());
    let Some(status) = alloc.status.as_ref() else {
        return created;
    };
    status
        .task_states
        .values()
        .map(|t| time(t.finished_at.as_deref()))
        .chain([time(status.modify_time.as_deref()), created])
        .flatten()
        .max()
}

/// When an evaluation last changed. Evaluations record no completion time; they complete
/// within moments of their creation unless they were blocked.
pub fn eval_changed_at(eval: &Evaluation) -> Option<SystemTime> {
    time(eval.metadata.creation_timestamp.as_deref())
}

/// When a job last changed state: its creation, submission, or the last transition of its
/// `Running` condition, whichever is latest.
pub fn job_changed_at(job: &Job) -> Option<SystemTime> {
    let status = job.status.as_ref();
    let transition = status
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == RUNNING_CONDITION))
        .and_then(|c| time(c.last_transition_time.as_deref()));
    let submitted = status.and_then(|s| time(s.submit_time.as_deref()));
    let created = time(job.metadata.creation_timestamp.as_deref());
    [transition, submitted, created].into_iter().flatten().max()
}

/// When a deployment last changed: the newest transition of any of its conditions (the
/// deployment controller moves one at every change of state), else its creation.
pub fn deployment_changed_at(deployment: &Deployment) -> Option<SystemTime> {
    let created = time(deployment.metadata.creation_timestamp.as_deref());
    deployment
        .status
        .iter()
        .flat_map(|s| &s.conditions)
        .map(|c| time(c.last_transition_time.as_deref()))
        .chain([created])
        .flatten()
        .max()
}
