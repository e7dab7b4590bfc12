//! From an allocation's task states (as reported, RFC 3339 times) to what the health rules
//! look at: one [`TaskView`] per task, and when tracking started for an allocation that an
//! earlier agent process was already running. Pure.

use std::collections::BTreeMap;
use std::time::SystemTime;

use caravan_schemas::NameMap;
use caravan_schemas::allocation::TaskState;

use super::{TaskRole, TaskView};
use crate::runner::spec::Phase;

/// Every task of the allocation, in name order; a task without a state yet is pending.
pub fn task_views(phases: &BTreeMap<String, Phase>, states: &NameMap<TaskState>) -> Vec<TaskView> {
    phases
        .iter()
        .map(|(name, phase)| {
            let state = states.get(name);
            TaskView {
                name: name.clone(),
                role: TaskRole::of(*phase),
                state: state.map(|s| s.state).unwrap_or_default(),
                failed: state.is_some_and(|s| s.failed),
                started_at: state.and_then(|s| time(s.started_at.as_deref())),
                finished_at: state.and_then(|s| time(s.finished_at.as_deref())),
            }
        })
        .collect()
}

/// When the allocation started on this node, from its tasks' states: the earliest time they
/// record (the tasks' first events, when they were received, or their starts), `now` for tasks
/// that record none (a new allocation). A restarted agent resumes tracking from there rather
/// than from its own start.
pub fn tracking_since(states: &NameMap<TaskState>, now: SystemTime) -> SystemTime {
    states
        .values()
        .flat_map(|s| {
            s.events
                .iter()
                .map(|e| e.time.as_str())
                .chain(s.started_at.as_deref())
        })
        .filter_map(|t| time(Some(t)))
        .fold(now, SystemTime::min)
}

fn time(value: Option<&str>) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(value?).ok()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use caravan_schemas::allocation::TaskLifecycleState;

    use super::*;
    use crate::runner::events::{self, timestamp};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn views_read_the_reported_times_and_roles() {
        let phases = BTreeMap::from([
            ("init".to_string(), Phase::Prestart { sidecar: false }),
            ("web".to_string(), Phase::Main { leader: false }),
        ]);
        let mut states = NameMap::new();
        states.insert(
            "web".to_string(),
            TaskState {
                state: TaskLifecycleState::Running,
                started_at: Some(timestamp(at(5))),
                ..Default::default()
            },
        );
        let views = task_views(&phases, &states);
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].name, "init");
        assert_eq!(views[0].role, TaskRole::Completes);
        assert_eq!(views[0].state, TaskLifecycleState::Pending);
        assert_eq!(views[0].started_at, None);
        assert_eq!(views[1].role, TaskRole::Running);
        assert_eq!(views[1].started_at, Some(at(5)));
    }

    #[test]
    fn tracking_resumes_from_when_the_tasks_were_received() {
        assert_eq!(tracking_since(&NameMap::new(), at(100)), at(100));
        let mut received = TaskState {
            state: TaskLifecycleState::Running,
            started_at: Some(timestamp(at(9))),
            ..Default::default()
        };
        events::push(&mut received, events::event(events::RECEIVED, "", at(7)));
        let restarted = TaskState {
            started_at: Some(timestamp(at(40))),
            ..Default::default()
        };
        let mut states = NameMap::new();
        states.insert("a".to_string(), restarted);
        states.insert("b".to_string(), received);
        assert_eq!(tracking_since(&states, at(100)), at(7));
    }
}
