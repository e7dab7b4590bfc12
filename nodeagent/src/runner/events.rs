//! Task events with Nomad's names, and the clock format they carry.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use caravan_schemas::allocation::{TaskEvent, TaskState};

use crate::driver::ExitResult;

/// Events kept per task (Nomad keeps 10).
pub const MAX_EVENTS: usize = 10;

pub const RECEIVED: &str = "Received";
pub const TASK_SETUP: &str = "Task Setup";
pub const STARTED: &str = "Started";
pub const TERMINATED: &str = "Terminated";
pub const RESTARTING: &str = "Restarting";
pub const RESTART_SIGNALED: &str = "Restart Signaled";
pub const KILLING: &str = "Killing";
pub const KILLED: &str = "Killed";
pub const NOT_RESTARTING: &str = "Not Restarting";
pub const DRIVER_FAILURE: &str = "Driver Failure";
pub const SETUP_FAILURE: &str = "Setup Failure";
pub const SIBLING_FAILED: &str = "Sibling Task Failed";

/// RFC 3339 time with milliseconds.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// A new event at `at`.
pub fn event(kind: &str, message: impl Into<String>, at: SystemTime) -> TaskEvent {
    TaskEvent {
        r#type: kind.to_string(),
        time: timestamp(at),
        message: message.into(),
        ..Default::default()
    }
}

/// The `Terminated` event of an exit. The code and signal travel in their own fields (the CLI
/// prints them); the message says what they cannot: an OOM kill or a lost task.
pub fn terminated(exit: &ExitResult, at: SystemTime) -> TaskEvent {
    let mut notes = Vec::new();
    let mut details = BTreeMap::new();
    details.insert("exit_code".to_string(), exit.exit_code.to_string());
    if let Some(signal) = exit.signal {
        details.insert("signal".to_string(), signal.to_string());
    }
    if exit.oom_killed {
        notes.push("OOM Killed".to_string());
        details.insert("oom_killed".to_string(), "true".to_string());
    }
    if let Some(error) = &exit.error {
        notes.push(error.clone());
    }
    TaskEvent {
        r#type: TERMINATED.to_string(),
        time: timestamp(at),
        message: notes.join("; "),
        exit_code: Some(exit.exit_code),
        signal: exit.signal,
        details,
    }
}

/// `Restarting` with the delay in the message.
pub fn restarting(delay: Duration, reason: &str, at: SystemTime) -> TaskEvent {
    let mut e = event(
        RESTARTING,
        format!(
            "{reason}; task restarting in {}",
            humantime::format_duration(Duration::from_millis(delay.as_millis() as u64))
        ),
        at,
    );
    e.details
        .insert("restart_delay_ms".into(), delay.as_millis().to_string());
    e
}

/// Appends an event, keeping the last [`MAX_EVENTS`].
pub fn push(state: &mut TaskState, event: TaskEvent) {
    state.events.push(event);
    if state.events.len() > MAX_EVENTS {
        let excess = state.events.len() - MAX_EVENTS;
        state.events.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminated_reports_code_signal_and_oom() {
        let exit = ExitResult {
            exit_code: 137,
            signal: Some(9),
            oom_killed: true,
            error: None,
        };
        let e = terminated(&exit, SystemTime::UNIX_EPOCH);
        assert_eq!(e.r#type, "Terminated");
        assert_eq!(e.exit_code, Some(137));
        assert_eq!(e.signal, Some(9));
        assert!(e.message.contains("OOM Killed"), "{}", e.message);
        assert_eq!(e.details["oom_killed"], "true");
        assert_eq!(e.time, "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn only_the_last_events_are_kept() {
        let mut state = TaskState::default();
        for i in 0..15 {
            push(&mut state, event(STARTED, i.to_string(), SystemTime::now()));
        }
        assert_eq!(state.events.len(), MAX_EVENTS);
        assert_eq!(state.events[0].message, "5");
    }
}
