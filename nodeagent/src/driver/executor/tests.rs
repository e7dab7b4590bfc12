use super::*;

#[test]
fn raw_exec_fingerprints_healthy() {
    let driver = ExecutorDriver::new(
        DriverKind::RawExec,
        vec!["caravan".into(), "executor".into()],
        ExecutorSettings::new("/tmp/c", "/tmp/i"),
    );
    let info = driver.fingerprint();
    assert!(info.detected && info.healthy, "{info:?}");
    assert_eq!(driver.name(), "raw_exec");
}

#[test]
fn container_drivers_report_why_they_are_unhealthy() {
    let driver = ExecutorDriver::new(
        DriverKind::Exec,
        vec!["caravan".into()],
        ExecutorSettings::new("/tmp/c", "/tmp/i"),
    );
    let info = driver.fingerprint();
    let expected = nix::unistd::geteuid().is_root() && cgroups_mounted();
    assert_eq!(info.healthy, expected, "{info:?}");
    assert!(info.health_description.is_some());
}

#[test]
fn handle_state_round_trips() {
    let state = HandleState {
        task_dir: "/data/alloc/a/t".into(),
        driver: "raw_exec".into(),
        executor: ExecutorState {
            executor_pid: 10,
            executor_start_ticks: 5,
            task_pid: Some(11),
            task_start_ticks: Some(6),
            started_at: Some("2026-01-01T00:00:00Z".into()),
            error: None,
        },
    };
    let value = serde_json::to_value(&state).unwrap();
    assert_eq!(value["taskDir"], "/data/alloc/a/t");
    assert_eq!(value["taskPid"], 11);
    assert_eq!(serde_json::from_value::<HandleState>(value).unwrap(), state);
}
