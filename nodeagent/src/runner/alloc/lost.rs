//! A task runner that ended without returning its task's state: cancelled with the agent, or
//! panicked.

use std::time::SystemTime;

use caravan_schemas::allocation::{TaskLifecycleState, TaskState};
use tokio::task::JoinError;

use crate::runner::events;

/// A task runner whose join failed. Cancelled (the runtime is shutting down with the agent,
/// and the task lives on for the next agent to re-attach): `None`, nothing to record, and no
/// alarm. Panicked: the task is dead and failed, so the allocation does not wait for it.
pub(super) fn lost_runner(
    alloc: &str,
    task: &str,
    mut state: TaskState,
    error: &JoinError,
    now: SystemTime,
) -> Option<TaskState> {
    if error.is_cancelled() {
        tracing::debug!(alloc = %alloc, task = %task, "a task runner was cancelled");
        return None;
    }
    tracing::error!(alloc = %alloc, task = %task, error = %error, "a task runner panicked");
    events::push(
        &mut state,
        events::event(
            events::DRIVER_FAILURE,
            format!("the task runner failed: {error}"),
            now,
        ),
    );
    state.state = TaskLifecycleState::Dead;
    state.failed = true;
    state.finished_at = Some(events::timestamp(now));
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancelled_task_runner_is_not_a_panic() {
        let now = SystemTime::now();
        let running = TaskState {
            state: TaskLifecycleState::Running,
            ..Default::default()
        };
        // Aborted, as the runtime does to every task when the agent shuts down.
        let aborted = tokio::spawn(futures::future::pending::<()>());
        aborted.abort();
        let cancelled = aborted.await.unwrap_err();
        assert!(cancelled.is_cancelled());
        assert_eq!(
            lost_runner("a", "web", running.clone(), &cancelled, now),
            None,
            "nothing recorded: the task lives on for the next agent"
        );
        let panicked = tokio::spawn(async { panic!("bug") }).await.unwrap_err();
        let state = lost_runner("a", "web", running, &panicked, now).expect("a dead task");
        assert_eq!(state.state, TaskLifecycleState::Dead);
        assert!(state.failed);
        assert!(state.events[0].message.contains("panicked"), "{state:?}");
    }
}
