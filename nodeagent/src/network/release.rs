//! When an allocation's network is torn down, pure: once its runner ended with no task left
//! running, and, at an agent's start, for every saved network whose allocation the agent no
//! longer keeps (its runner ended, or the agent stopped, while the agent was away).

use std::collections::BTreeSet;

use caravan_schemas::NameMap;
use caravan_schemas::allocation::{TaskLifecycleState, TaskState};

/// Whether a runner that ended with `states` releases its allocation's network: not while a
/// task still runs in it.
pub fn on_runner_exit(states: &NameMap<TaskState>) -> bool {
    states
        .iter()
        .all(|(_, s)| s.state != TaskLifecycleState::Running)
}

/// The saved networks to release at start: those of allocations not among `kept` (the
/// allocations the agent restores), in the order given.
pub fn gone_at_start<'a>(
    saved: impl IntoIterator<Item = &'a str>,
    kept: &BTreeSet<String>,
) -> Vec<String> {
    saved
        .into_iter()
        .filter(|id| !kept.contains(*id))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(s: TaskLifecycleState) -> TaskState {
        TaskState {
            state: s,
            ..TaskState::default()
        }
    }

    #[test]
    fn a_network_outlives_no_allocation_but_never_a_running_task() {
        let dead: NameMap<TaskState> = [
            ("a".to_string(), state(TaskLifecycleState::Dead)),
            ("b".to_string(), state(TaskLifecycleState::Pending)),
        ]
        .into_iter()
        .collect();
        assert!(on_runner_exit(&dead));
        assert!(on_runner_exit(&NameMap::new()));
        let running: NameMap<TaskState> = [
            ("a".to_string(), state(TaskLifecycleState::Dead)),
            ("b".to_string(), state(TaskLifecycleState::Running)),
        ]
        .into_iter()
        .collect();
        assert!(!on_runner_exit(&running));
    }

    #[test]
    fn at_start_only_networks_of_allocations_no_longer_kept_go() {
        let kept: BTreeSet<String> = ["u1".to_string(), "u3".to_string()].into();
        assert_eq!(gone_at_start(["u1", "u2", "u3", "u4"], &kept), ["u2", "u4"]);
        assert!(gone_at_start([], &kept).is_empty());
    }
}
