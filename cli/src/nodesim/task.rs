//! A simulated task's state changes, with the events the real task runner records
//! (`nodeagent/src/runner/task.rs`). Pure: the caller passes the time.

use std::time::SystemTime;

use caravan_nodeagent::driver::{DriverError, ExitResult};
use caravan_nodeagent::runner::events;
use caravan_nodeagent::runner::restart::{Decision, Outcome};
use caravan_schemas::allocation::{TaskLifecycleState, TaskState};

/// A task just received: pending, with `Received` and `Task Setup`.
pub fn received(now: SystemTime) -> TaskState {
    let mut state = TaskState::default();
    events::push(
        &mut state,
        events::event(events::RECEIVED, "Task received by client", now),
    );
    events::push(
        &mut state,
        events::event(events::TASK_SETUP, "Building Task Directory", now),
    );
    state
}

/// The driver started the task.
pub fn started(state: &mut TaskState, now: SystemTime) {
    state.state = TaskLifecycleState::Running;
    state.started_at = Some(events::timestamp(now));
    state.finished_at = None;
    events::push(
        state,
        events::event(events::STARTED, "Task started by client", now),
    );
}

/// The driver could not start the task; what the restart policy is told.
pub fn start_failed(state: &mut TaskState, error: &DriverError, now: SystemTime) -> Outcome {
    events::push(
        state,
        events::event(events::DRIVER_FAILURE, error.to_string(), now),
    );
    match error {
        DriverError::InvalidConfig(_) => Outcome::Unrecoverable,
        _ => Outcome::StartFailed,
    }
}

/// The task exited by itself; what the restart policy is told.
pub fn exited(state: &mut TaskState, exit: &ExitResult, now: SystemTime) -> Outcome {
    events::push(state, events::terminated(exit, now));
    if exit.successful() {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    }
}

/// Applies the restart policy's decision; true when the task is dead.
pub fn decided(state: &mut TaskState, decision: &Decision, now: SystemTime) -> bool {
    match decision {
        Decision::Terminated => {
            state.state = TaskLifecycleState::Dead;
            state.finished_at = Some(events::timestamp(now));
            true
        }
        Decision::NotRestarting { reason } => {
            state.state = TaskLifecycleState::Dead;
            state.failed = true;
            state.finished_at = Some(events::timestamp(now));
            events::push(state, events::event(events::NOT_RESTARTING, reason, now));
            true
        }
        Decision::Restart { delay, reason } => {
            state.state = TaskLifecycleState::Pending;
            state.restarts += 1;
            state.last_restart = Some(events::timestamp(now));
            events::push(state, events::restarting(*delay, reason, now));
            false
        }
    }
}

/// A running task is being stopped for `reason`.
pub fn killing(state: &mut TaskState, reason: &str, now: SystemTime) {
    events::push(state, events::event(events::KILLING, reason, now));
}

/// The task is dead after a stop; `exit` is how a running one ended.
pub fn killed(state: &mut TaskState, exit: Option<&ExitResult>, now: SystemTime) {
    if let Some(exit) = exit {
        let mut event = events::event(events::KILLED, "Task successfully killed", now);
        event.exit_code = Some(exit.exit_code);
        event.signal = exit.signal;
        events::push(state, event);
    }
    state.state = TaskLifecycleState::Dead;
    state.finished_at = Some(events::timestamp(now));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use caravan_nodeagent::runner::status::client_status;
    use caravan_schemas::NameMap;
    use caravan_schemas::allocation::ClientStatus;

    use super::*;

    fn types(state: &TaskState) -> Vec<&str> {
        state.events.iter().map(|e| e.r#type.as_str()).collect()
    }

    fn status_of(state: &TaskState) -> ClientStatus {
        let mut tasks = NameMap::new();
        tasks.insert("t".to_string(), state.clone());
        client_status(&tasks).0
    }

    #[test]
    fn a_task_runs_then_completes() {
        let now = SystemTime::UNIX_EPOCH;
        let mut state = received(now);
        assert_eq!(status_of(&state), ClientStatus::Pending);
        started(&mut state, now);
        assert_eq!(status_of(&state), ClientStatus::Running);
        let exit = ExitResult::default();
        assert_eq!(exited(&mut state, &exit, now), Outcome::Succeeded);
        assert!(decided(&mut state, &Decision::Terminated, now));
        assert_eq!(status_of(&state), ClientStatus::Complete);
        assert_eq!(
            types(&state),
            ["Received", "Task Setup", "Started", "Terminated"]
        );
        assert_eq!(
            state.started_at.as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert!(state.finished_at.is_some());
    }

    #[test]
    fn a_failing_task_restarts_then_gives_up() {
        let now = SystemTime::UNIX_EPOCH;
        let mut state = received(now);
        started(&mut state, now);
        let exit = ExitResult {
            exit_code: 3,
            ..Default::default()
        };
        assert_eq!(exited(&mut state, &exit, now), Outcome::Failed);
        let restart = Decision::Restart {
            delay: Duration::from_secs(1),
            reason: "Restart within policy".into(),
        };
        assert!(!decided(&mut state, &restart, now));
        assert_eq!(
            (state.state, state.restarts),
            (TaskLifecycleState::Pending, 1)
        );
        let give_up = Decision::NotRestarting {
            reason: "Policy allows no restarts".into(),
        };
        assert!(decided(&mut state, &give_up, now));
        assert_eq!(status_of(&state), ClientStatus::Failed);
        assert_eq!(types(&state).last(), Some(&"Not Restarting"));
        assert_eq!(state.events[3].exit_code, Some(3));
    }

    #[test]
    fn start_errors_and_kills_are_recorded() {
        let now = SystemTime::UNIX_EPOCH;
        let mut state = received(now);
        let bad = DriverError::InvalidConfig("mock driver config: bad".into());
        assert_eq!(start_failed(&mut state, &bad, now), Outcome::Unrecoverable);
        let flaky = DriverError::Start("boom".into());
        assert_eq!(start_failed(&mut state, &flaky, now), Outcome::StartFailed);
        assert_eq!(types(&state)[2], "Driver Failure");

        let mut running = received(now);
        started(&mut running, now);
        killing(&mut running, "Allocation stopped by the servers", now);
        let exit = ExitResult {
            exit_code: 130,
            signal: Some(2),
            ..Default::default()
        };
        killed(&mut running, Some(&exit), now);
        assert_eq!(status_of(&running), ClientStatus::Complete);
        let last = running.events.last().unwrap();
        assert_eq!((last.r#type.as_str(), last.signal), ("Killed", Some(2)));
        let mut never_started = received(now);
        killed(&mut never_started, None, now);
        assert_eq!(types(&never_started), ["Received", "Task Setup"]);
        assert_eq!(never_started.state, TaskLifecycleState::Dead);
    }
}
