//! Allocation runner tests over the mock driver: lifecycle order, sibling failure, stop, and
//! recovery from the local state.

use caravan_schemas::NameMap;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use caravan_schemas::allocation::{DesiredStatus, TaskLifecycleState, TaskState};
use caravan_schemas::{Allocation, Job};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::alloc::{AllocRunner, Drivers};
use super::events;
use super::spec::SpecSettings;
use super::status::{StatusBatcher, client_status};
use crate::driver::Driver;
use crate::state::{LocalState, LocalTask};

/// The uid of the allocation of the tests.
const U1: &str = "0b5f3c2e-8a4d-4f7e-9c1a-2d3e4f5a6b7c";

fn job(tasks: Value) -> Job {
    job_with_group("g", tasks)
}

fn job_with_group(group: &str, tasks: Value) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "caravan.dev/v1", "kind": "Job",
        "metadata": {"name": "j", "namespace": "default"},
        "spec": {"type": "batch", "groups": [{
            "name": group,
            "restart": {"attempts": 0, "interval": "1m", "delay": "10ms", "mode": "fail"},
            "tasks": tasks
        }]}
    }))
    .unwrap()
}

fn alloc() -> Allocation {
    alloc_of_group("g")
}

fn alloc_of_group(group: &str) -> Allocation {
    serde_json::from_value(json!({
        "apiVersion": "caravan.dev/v1", "kind": "Allocation",
        "metadata": {"name": "j-g-0-00000000", "namespace": "default", "uid": U1},
        "spec": {"jobName": "j", "group": group, "nodeName": "n1"}
    }))
    .unwrap()
}

fn mock(name: &str, config: Value, lifecycle: Option<Value>) -> Value {
    let mut task = json!({"name": name, "driver": "mock", "config": config});
    if let Some(l) = lifecycle {
        task["lifecycle"] = l;
    }
    task
}

struct Fixture {
    _dir: tempfile::TempDir,
    local: LocalState,
    settings: SpecSettings,
    drivers: Drivers,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalState::open(&dir.path().join("state.redb")).unwrap();
    let settings = SpecSettings {
        alloc_root: dir.path().join("alloc"),
        pids_limit: 0,
        node: Arc::default(),
        network: Default::default(),
    };
    let mut drivers: BTreeMap<String, Arc<dyn Driver>> = BTreeMap::new();
    drivers.insert("mock".into(), crate::driver::mock::driver());
    Fixture {
        _dir: dir,
        local,
        settings,
        drivers: Arc::new(drivers),
    }
}

impl Fixture {
    fn runner(
        &self,
        job: Job,
        alloc: watch::Receiver<Allocation>,
        recovered: BTreeMap<String, LocalTask>,
    ) -> AllocRunner {
        let (_, running_job) = watch::channel(Arc::new(job.clone()));
        AllocRunner {
            alloc_id: U1.into(),
            alloc,
            job,
            running_job,
            drivers: self.drivers.clone(),
            settings: self.settings.clone(),
            max_kill_timeout: caravan_schemas::limits::MAX_KILL_TIMEOUT,
            local: self.local.clone(),
            recovered,
            health: None,
            status: StatusBatcher::new(),
            services: crate::services::Services::new(),
        }
    }
}

fn time_of(state: &TaskState, kind: &str) -> String {
    state
        .events
        .iter()
        .find(|e| e.r#type == kind)
        .map(|e| e.time.clone())
        .unwrap_or_else(|| panic!("no {kind} event in {:?}", state.events))
}

async fn run(runner: AllocRunner) -> NameMap<TaskState> {
    tokio::time::timeout(Duration::from_secs(10), runner.run())
        .await
        .expect("the allocation runner finished")
}

#[tokio::test]
async fn hooks_run_in_lifecycle_order() {
    let f = fixture();
    let job = job(json!([
        mock("main", json!({"runFor": "50ms"}), None),
        mock(
            "init",
            json!({"runFor": "30ms"}),
            Some(json!({"hook": "prestart"}))
        ),
        mock(
            "after",
            json!({"runFor": "10ms"}),
            Some(json!({"hook": "poststop"}))
        ),
        mock(
            "side",
            json!({}),
            Some(json!({"hook": "prestart", "sidecar": true}))
        ),
    ]));
    let (_tx, rx) = watch::channel(alloc());
    let states = run(f.runner(job, rx, BTreeMap::new())).await;
    assert!(time_of(&states["init"], "Terminated") <= time_of(&states["main"], "Started"));
    assert!(time_of(&states["main"], "Terminated") <= time_of(&states["after"], "Started"));
    // The sidecar ran alongside and was stopped once the main task was done.
    assert!(time_of(&states["side"], "Started") <= time_of(&states["main"], "Started"));
    assert_eq!(states["side"].events.last().unwrap().r#type, "Killed");
    assert!(states.values().all(|s| s.state == TaskLifecycleState::Dead));
    assert_eq!(
        client_status(&states).0,
        caravan_schemas::allocation::ClientStatus::Complete
    );
}

#[tokio::test]
async fn a_failed_task_stops_its_siblings_and_fails_the_allocation() {
    let f = fixture();
    let job = job(json!([
        mock("bad", json!({"runFor": "20ms", "exitCode": 2}), None),
        mock("good", json!({}), None),
    ]));
    let (_tx, rx) = watch::channel(alloc());
    let states = run(f.runner(job, rx, BTreeMap::new())).await;
    assert!(states["bad"].failed);
    assert!(!states["good"].failed, "a killed sibling did not fail");
    let killing = states["good"]
        .events
        .iter()
        .find(|e| e.r#type == "Killing")
        .expect("the sibling was killed");
    assert_eq!(killing.message, "Sibling task failed");
    assert_eq!(
        client_status(&states).0,
        caravan_schemas::allocation::ClientStatus::Failed
    );
}

#[tokio::test]
async fn a_stop_from_the_servers_kills_every_task() {
    let f = fixture();
    let job = job(json!([mock("web", json!({}), None)]));
    let (tx, rx) = watch::channel(alloc());
    let runner = tokio::spawn(f.runner(job, rx, BTreeMap::new()).run());
    // Wait until the task runs (its state is saved), then ask for a stop.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let running = f
            .local
            .task(U1, "web")
            .unwrap()
            .is_some_and(|t| t.state.state == TaskLifecycleState::Running);
        if running {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the task never ran");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut stopped = alloc();
    stopped.spec.desired_status = Some(DesiredStatus::Stop);
    tx.send(stopped).unwrap();
    let states = tokio::time::timeout(Duration::from_secs(10), runner)
        .await
        .unwrap()
        .unwrap();
    let kinds: Vec<&str> = states["web"]
        .events
        .iter()
        .map(|e| e.r#type.as_str())
        .collect();
    assert_eq!(
        kinds,
        ["Received", "Task Setup", "Started", "Killing", "Killed"]
    );
    assert_eq!(
        client_status(&states).0,
        caravan_schemas::allocation::ClientStatus::Complete
    );
}

#[tokio::test]
async fn recovered_tasks_are_not_run_again() {
    let f = fixture();
    let job = job(json!([mock("done", json!({"runFor": "10ms"}), None)]));
    let mut finished = TaskState {
        state: TaskLifecycleState::Dead,
        ..Default::default()
    };
    finished.events.push(super::events::event(
        "Terminated",
        "",
        std::time::SystemTime::now(),
    ));
    let recovered = BTreeMap::from([(
        "done".to_string(),
        LocalTask {
            handle: None,
            state: finished.clone(),
        },
    )]);
    let (_tx, rx) = watch::channel(alloc());
    let states = run(f.runner(job, rx, recovered)).await;
    assert_eq!(states["done"], finished, "a dead task stays as it was");
}

/// Every path under `root`, relative to it.
fn tree(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path.clone());
            }
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn names_that_leave_the_allocation_directory_fail_it_and_create_nothing() {
    let f = fixture();
    let root = f._dir.path().to_path_buf();
    let absolute = root.join("abs").display().to_string();
    let cases: Vec<(&str, &str, Vec<String>)> = vec![
        (U1, "g", vec!["web".into(), "../x".into()]),
        (U1, "g", vec!["../../../../x".into()]),
        (U1, "g", vec![absolute.clone()]),
        (U1, "../g", vec!["web".into()]),
        ("../../u1", "g", vec!["web".into()]),
        ("u1", "g", vec!["web".into()]),
    ];
    for (uid, group, tasks) in cases {
        let tasks: Vec<Value> = tasks
            .iter()
            .map(|t| mock(t, json!({"runFor": "10ms"}), None))
            .collect();
        let job = job_with_group(group, Value::Array(tasks));
        let (_tx, rx) = watch::channel(alloc_of_group(group));
        let mut runner = f.runner(job, rx, BTreeMap::new());
        runner.alloc_id = uid.into();
        let status = runner.status.clone();
        let states = run(runner).await;
        let case = format!("uid {uid:?}, group {group:?}");
        assert_eq!(
            client_status(&states).0,
            caravan_schemas::allocation::ClientStatus::Failed,
            "{case}"
        );
        for (task, state) in states.iter() {
            assert!(state.failed, "{case}: {task}");
            let event = state.events.last().expect("an event");
            assert_eq!(event.r#type, "Setup Failure", "{case}: {task}");
            assert!(event.message.starts_with("invalid "), "{}", event.message);
        }
        let sent = status.take_pending();
        let (_, reported) = sent.first().expect("a status was reported");
        let description = reported.client_description.as_deref().unwrap_or_default();
        assert!(
            description.starts_with("invalid allocation: invalid "),
            "{case}: {description}"
        );
        // Nothing at all: not even the allocation directory.
        assert_eq!(
            tree(&root),
            [std::path::PathBuf::from("state.redb")],
            "{case}"
        );
    }
    assert!(!std::path::Path::new(&absolute).exists());
}

/// A driver whose start panics (a bug in a driver).
struct PanickingDriver;

impl Driver for PanickingDriver {
    fn name(&self) -> &'static str {
        "mock"
    }
    fn fingerprint(&self) -> caravan_schemas::node::DriverInfo {
        Default::default()
    }
    fn start(
        &self,
        _spec: crate::driver::TaskSpec,
    ) -> futures::future::BoxFuture<
        '_,
        Result<Box<dyn crate::driver::TaskHandle>, crate::driver::DriverError>,
    > {
        Box::pin(async { panic!("driver bug") })
    }
    fn recover(
        &self,
        spec: crate::driver::TaskSpec,
        _state: Value,
    ) -> futures::future::BoxFuture<
        '_,
        Result<Box<dyn crate::driver::TaskHandle>, crate::driver::DriverError>,
    > {
        self.start(spec)
    }
}

#[tokio::test]
async fn a_panicked_task_runner_fails_its_task_instead_of_hanging_the_allocation() {
    let mut f = fixture();
    let mut drivers: BTreeMap<String, Arc<dyn Driver>> = BTreeMap::new();
    drivers.insert("mock".into(), Arc::new(PanickingDriver));
    drivers.insert("other".into(), crate::driver::mock::driver());
    f.drivers = Arc::new(drivers);
    let mut sibling = mock("sibling", json!({}), None);
    sibling["driver"] = json!("other");
    let job = job(json!([mock("web", json!({}), None), sibling]));
    let (_tx, rx) = watch::channel(alloc());
    let states = run(f.runner(job, rx, BTreeMap::new())).await;
    assert!(states["web"].failed);
    assert_eq!(states["web"].state, TaskLifecycleState::Dead);
    let event = states["web"].events.last().unwrap();
    assert_eq!(event.r#type, "Driver Failure");
    assert!(event.message.contains("panicked"), "{}", event.message);
    assert_eq!(
        states["sibling"].events.last().unwrap().r#type,
        "Killed",
        "the sibling was stopped"
    );
    assert_eq!(
        client_status(&states).0,
        caravan_schemas::allocation::ClientStatus::Failed
    );
}

mod health;
mod services;
