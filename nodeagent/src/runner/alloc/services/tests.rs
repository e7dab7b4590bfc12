use caravan_schemas::allocation::TaskLifecycleState::{Dead, Pending, Running};
use serde_json::json;

use super::*;

fn phases() -> BTreeMap<String, Phase> {
    BTreeMap::from([
        ("init".to_string(), Phase::Prestart { sidecar: false }),
        ("proxy".to_string(), Phase::Prestart { sidecar: true }),
        ("web".to_string(), Phase::Main { leader: false }),
        ("after".to_string(), Phase::Poststop),
    ])
}

fn states(list: &[(&str, TaskLifecycleState, &str)]) -> NameMap<TaskState> {
    list.iter()
        .map(|(name, state, started)| {
            let state = TaskState {
                state: *state,
                started_at: Some(started.to_string()).filter(|s| !s.is_empty()),
                ..Default::default()
            };
            (name.to_string(), state)
        })
        .collect()
}

fn owner(task: Option<&str>, run: Option<&str>) -> (Option<String>, Option<String>) {
    (task.map(str::to_string), run.map(str::to_string))
}

#[test]
fn running_tasks_own_their_services_and_the_group_follows_the_first_main_task() {
    let phases = phases();
    // Prestart: the hook and the sidecar run; the group waits for a main task.
    let before = states(&[("init", Running, "t1"), ("proxy", Running, "t2")]);
    let (o, group_on) = owners(true, false, &phases, &before);
    assert_eq!(
        o,
        Owners::from([
            owner(Some("init"), Some("t1")),
            owner(Some("proxy"), Some("t2"))
        ])
    );
    assert!(!group_on);
    // The main task runs: the hook is done, the group is on.
    let main = states(&[
        ("init", Dead, "t1"),
        ("proxy", Running, "t2"),
        ("web", Running, "t3"),
    ]);
    let (o, group_on) = owners(true, false, &phases, &main);
    assert_eq!(
        o,
        Owners::from([
            owner(None, None),
            owner(Some("proxy"), Some("t2")),
            owner(Some("web"), Some("t3"))
        ])
    );
    assert!(group_on);
    // The main task restarts: its services go, the group's stay.
    let restarting = states(&[("proxy", Running, "t2"), ("web", Pending, "t3")]);
    let (o, still) = owners(true, group_on, &phases, &restarting);
    assert_eq!(
        o,
        Owners::from([owner(None, None), owner(Some("proxy"), Some("t2"))])
    );
    assert!(still);
    // Stopping: nothing.
    let (o, off) = owners(false, true, &phases, &main);
    assert!(o.is_empty());
    assert!(!off);
}

#[test]
fn health_expects_the_checks_of_the_group_and_of_tasks_that_must_run() {
    let group: TaskGroup = serde_json::from_value(json!({
        "name": "g",
        "services": [{"name": "g", "checks": [
            {"type": "tcp", "port": 1, "interval": "1s", "timeout": "1s"}]}],
        "tasks": [
            {"name": "init", "driver": "mock", "lifecycle": {"hook": "prestart"},
             "services": [{"name": "i", "checks": [
                 {"type": "tcp", "port": 1, "interval": "1s", "timeout": "1s"}]}]},
            {"name": "proxy", "driver": "mock", "lifecycle": {"hook": "prestart", "sidecar": true},
             "services": [{"name": "p"}]},
            {"name": "web", "driver": "mock", "services": [
                {"name": "w", "checks": [
                    {"type": "tcp", "port": 1, "interval": "1s", "timeout": "1s"},
                    {"type": "http", "port": 1, "interval": "1s", "timeout": "1s"}]},
                {"name": "x", "checks": [
                    {"type": "tcp", "port": 2, "interval": "1s", "timeout": "1s"}]}
            ]}
        ]
    }))
    .unwrap();
    assert_eq!(
        expected_checks(&group, &phases()),
        BTreeMap::from([(None, 1), (Some("web".to_string()), 3)]),
        "a prestart hook's checks and a service without checks count for nothing"
    );
}

#[test]
fn restarts_go_to_the_run_a_check_watched_or_every_running_task() {
    let states = states(&[
        ("proxy", Running, "t2"),
        ("web", Running, "t3"),
        ("init", Dead, "t1"),
    ]);
    let running = || ["init", "proxy", "web"].into_iter();
    assert_eq!(
        restart_targets(Some("web"), Some("t3"), &states, running()),
        ["web"]
    );
    assert!(
        restart_targets(Some("web"), Some("t0"), &states, running()).is_empty(),
        "an earlier run's check"
    );
    assert_eq!(
        restart_targets(None, None, &states, running()),
        ["proxy", "web"],
        "a group service restarts every running task"
    );
}
