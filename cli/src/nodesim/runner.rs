//! Runs one allocation of a simulated node: its tasks through the real mock driver
//! (`caravan_nodeagent::driver::mock`: `runFor`, `exitCode`, `startError`, `killAfter`) with
//! the group's restart policy, every state change reported through the node's status batcher.
//!
//! Simpler than the agent's allocation runner in one way: lifecycle hooks are not ordered, every
//! task starts at once. As in the agent, a failed task stops its siblings, a `desiredStatus`
//! other than `run` stops them all, and the allocation ends when every task is dead.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use caravan_nodeagent::driver::{Driver, ExitResult, TaskHandle, TaskSpec, parse_signal};
use caravan_nodeagent::runner::events;
use caravan_nodeagent::runner::restart::{Decision, Policy, Tracker};
use caravan_nodeagent::runner::status::{StatusBatcher, alloc_status};
use caravan_schemas::NameMap;
use caravan_schemas::allocation::{TaskLifecycleState, TaskState};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::{Notify, watch};

use super::task;

const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;

/// One task to run.
pub struct TaskPlan {
    pub spec: TaskSpec,
    pub policy: Policy,
    /// `None` when the node has no such driver.
    pub driver: Option<Arc<dyn Driver>>,
}

/// One allocation to run.
pub struct AllocRun {
    pub namespace: String,
    pub name: String,
    pub tasks: Vec<TaskPlan>,
    /// Becomes true when the servers want the allocation stopped.
    pub stop: watch::Receiver<bool>,
    pub status: StatusBatcher,
}

/// The task states of one allocation: written by its tasks, reported by the allocation.
#[derive(Default)]
struct Board {
    states: Mutex<NameMap<TaskState>>,
    changed: Notify,
}

impl Board {
    fn set(&self, task: &str, state: &TaskState) {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(task, TaskState::default)
            .clone_from(state);
        self.changed.notify_one();
    }
}

impl AllocRun {
    /// Runs the tasks until every one is dead.
    pub async fn run(mut self) {
        let now = SystemTime::now();
        let (kill_tx, kill_rx) = watch::channel(None::<String>);
        let board = Arc::new(Board {
            states: Mutex::new(
                self.tasks
                    .iter()
                    .map(|t| (t.spec.task_name.clone(), task::received(now)))
                    .collect(),
            ),
            changed: Notify::new(),
        });
        let mut running: FuturesUnordered<BoxFuture<'static, bool>> = self
            .tasks
            .drain(..)
            .map(|plan| -> BoxFuture<'static, bool> {
                Box::pin(run_task(plan, kill_rx.clone(), board.clone()))
            })
            .collect();
        self.report(&board);
        let mut stopping = false;
        while !running.is_empty() {
            tokio::select! {
                () = board.changed.notified() => self.report(&board),
                Some(failed) = running.next() => {
                    if failed && !stopping {
                        stopping = true;
                        let _ = kill_tx.send(Some("Sibling task failed".into()));
                    }
                    self.report(&board);
                }
                changed = self.stop.changed(), if !stopping => {
                    if changed.is_err() || *self.stop.borrow() {
                        stopping = true;
                        let _ = kill_tx.send(Some("Allocation stopped by the servers".into()));
                    }
                }
            }
        }
        self.report(&board);
    }

    fn report(&self, board: &Board) {
        let status = alloc_status(&board.states.lock().unwrap_or_else(PoisonError::into_inner));
        self.status.update(&self.namespace, &self.name, status);
    }
}

/// Runs one task until it is dead, keeping its state on the board; true when it failed.
async fn run_task(
    plan: TaskPlan,
    mut kill: watch::Receiver<Option<String>>,
    board: Arc<Board>,
) -> bool {
    let name = plan.spec.task_name.clone();
    let report = |state: &TaskState| board.set(&name, state);
    let finish = |state: TaskState| {
        board.set(&name, &state);
        state.failed
    };
    let mut state = task::received(SystemTime::now());
    let Some(driver) = plan.driver.clone() else {
        let message = format!(
            "driver {:?} is not available on this node",
            plan.spec.driver
        );
        events::push(
            &mut state,
            events::event(events::DRIVER_FAILURE, message, SystemTime::now()),
        );
        state.state = TaskLifecycleState::Dead;
        state.failed = true;
        return finish(state);
    };
    let mut tracker = Tracker::new(plan.policy, Instant::now());
    loop {
        if kill.borrow().is_some() {
            task::killed(&mut state, None, SystemTime::now());
            return finish(state);
        }
        let outcome = match driver.start(plan.spec.clone()).await {
            Ok(handle) => {
                task::started(&mut state, SystemTime::now());
                report(&state);
                let exit = tokio::select! {
                    exit = handle.wait() => exit,
                    reason = wait_kill(&mut kill) => {
                        task::killing(&mut state, &reason, SystemTime::now());
                        report(&state);
                        let exit = stop(handle.as_ref(), &plan.spec).await;
                        handle.destroy().await;
                        task::killed(&mut state, Some(&exit), SystemTime::now());
                        return finish(state);
                    }
                };
                handle.destroy().await;
                task::exited(&mut state, &exit, SystemTime::now())
            }
            Err(e) => task::start_failed(&mut state, &e, SystemTime::now()),
        };
        let decision = tracker.next(outcome, Instant::now(), jitter());
        if task::decided(&mut state, &decision, SystemTime::now()) {
            return finish(state);
        }
        report(&state);
        if let Decision::Restart { delay, .. } = decision {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = wait_kill(&mut kill) => {
                    task::killed(&mut state, None, SystemTime::now());
                    return finish(state);
                }
            }
        }
    }
}

/// The task's kill signal, then SIGKILL after its kill timeout.
async fn stop(handle: &dyn TaskHandle, spec: &TaskSpec) -> ExitResult {
    let signal = parse_signal(&spec.kill_signal).unwrap_or(SIGINT);
    let _ = handle.signal(signal).await;
    match tokio::time::timeout(spec.kill_timeout, handle.wait()).await {
        Ok(exit) => exit,
        Err(_) => {
            let _ = handle.signal(SIGKILL).await;
            handle.wait().await
        }
    }
}

/// Resolves with the reason once a stop is requested.
async fn wait_kill(kill: &mut watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(reason) = kill.borrow_and_update().clone() {
            return reason;
        }
        if kill.changed().await.is_err() {
            futures::future::pending::<()>().await;
        }
    }
}

/// A draw in [0, 1) for the restart delay's jitter.
fn jitter() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .subsec_nanos();
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use caravan_runtime::Client as _;
    use caravan_runtime::fake::FakeClient;
    use caravan_schemas::{Allocation, Kind};
    use serde_json::{Value, json};

    use super::super::allocs::{JobInterner, plan_tasks};
    use super::*;

    /// Runs an allocation of a one-group job with `tasks` against a fake server; returns the
    /// stop switch, the runner and the client.
    async fn start(
        job_type: &str,
        tasks: Value,
    ) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>, FakeClient) {
        let client = FakeClient::default();
        let alloc = json!({
            "apiVersion": "caravan.dev/v1", "kind": "Allocation",
            "metadata": {"name": "a1", "namespace": "default", "uid": "u1"},
            "spec": {"jobName": "j", "group": "g", "nodeName": "sim-00000"}
        });
        client
            .create(Kind::Allocation, alloc.clone())
            .await
            .unwrap();
        let job = json!({
            "apiVersion": "caravan.dev/v1", "kind": "Job",
            "metadata": {"name": "j", "namespace": "default", "resourceVersion": "1"},
            "spec": {"type": job_type, "groups": [{"name": "g", "count": 1,
                "restart": {"attempts": 0}, "tasks": tasks}]}
        });
        let job = JobInterner::default().intern(job).unwrap();
        let alloc: Allocation = serde_json::from_value(alloc).unwrap();
        let mut drivers: BTreeMap<String, Arc<dyn Driver>> = BTreeMap::new();
        drivers.insert("mock".into(), caravan_nodeagent::driver::mock::driver());
        let status = StatusBatcher::new();
        tokio::spawn(status.clone().run(client.clone(), Duration::from_millis(5)));
        let (stop, stop_rx) = watch::channel(false);
        let run = AllocRun {
            namespace: "default".into(),
            name: "a1".into(),
            tasks: plan_tasks(&alloc, "u1", &job, &drivers).unwrap(),
            stop: stop_rx,
            status,
        };
        (stop, tokio::spawn(run.run()), client)
    }

    /// Waits until the allocation's status satisfies `ok`.
    async fn wait_status(client: &FakeClient, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let obj = client.object(Kind::Allocation, "default", "a1").unwrap();
            if ok(&obj["status"]) {
                return obj["status"].clone();
            }
            assert!(Instant::now() < deadline, "status never matched: {obj}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn event_types(status: &Value, task: &str) -> Vec<String> {
        status["taskStates"][task]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn a_task_that_runs_for_a_while_completes() {
        let tasks = json!([{"name": "t", "driver": "mock", "config": {"runFor": "30ms"}}]);
        let (_stop, runner, client) = start("batch", tasks).await;
        wait_status(&client, |s| s["clientStatus"] == "running").await;
        runner.await.unwrap();
        let status = wait_status(&client, |s| s["clientStatus"] == "complete").await;
        assert_eq!(
            event_types(&status, "t"),
            ["Received", "Task Setup", "Started", "Terminated"]
        );
    }

    #[tokio::test]
    async fn the_servers_stop_a_running_task() {
        let tasks = json!([{"name": "t", "driver": "mock", "config": {}}]);
        let (stop, runner, client) = start("service", tasks).await;
        wait_status(&client, |s| s["clientStatus"] == "running").await;
        stop.send_replace(true);
        runner.await.unwrap();
        let status = wait_status(&client, |s| s["clientStatus"] == "complete").await;
        let types = event_types(&status, "t");
        assert_eq!(types[types.len() - 2..], ["Killing", "Killed"]);
        assert_eq!(
            status["taskStates"]["t"]["events"][3]["message"],
            "Allocation stopped by the servers"
        );
    }

    #[tokio::test]
    async fn a_failed_task_stops_its_sibling_and_fails_the_allocation() {
        let tasks = json!([
            {"name": "bad", "driver": "mock", "config": {"runFor": "20ms", "exitCode": 3}},
            {"name": "ok", "driver": "mock", "config": {}},
        ]);
        let (_stop, runner, client) = start("service", tasks).await;
        runner.await.unwrap();
        // The failure can be reported in one status write and the sibling's end in the next.
        let status = wait_status(&client, |s| {
            s["clientStatus"] == "failed" && s["taskStates"]["ok"]["state"] == "dead"
        })
        .await;
        assert_eq!(status["taskStates"]["bad"]["failed"], true);
        assert_eq!(
            event_types(&status, "bad").last().map(String::as_str),
            Some("Not Restarting")
        );
        assert_eq!(status["taskStates"]["ok"]["state"], "dead");
        assert_eq!(
            status["taskStates"]["ok"]["events"][3]["message"],
            "Sibling task failed"
        );

        let tasks = json!([{"name": "gone", "driver": "docker", "config": {}}]);
        let (_stop, runner, client) = start("service", tasks).await;
        runner.await.unwrap();
        let status = wait_status(&client, |s| s["clientStatus"] == "failed").await;
        assert_eq!(
            status["taskStates"]["gone"]["events"][2]["type"],
            "Driver Failure"
        );
    }
}
