//! Deployment health through the allocation runner: the mock driver's tasks, statuses written
//! by the status batcher to the fake client, and every `deploymentStatus` a write carried
//! recorded on the way.

use std::sync::Mutex;
use std::time::SystemTime;

use caravan_runtime::fake::{FakeClient, wait_for};
use caravan_runtime::{Client, ClientError, EventStream, ListQuery, ObjectList, Subresource};
use caravan_schemas::Kind;
use caravan_schemas::allocation::{AllocDeploymentStatus, AllocationStatus};
use caravan_schemas::plan::{Plan, PlanResult};

use super::*;
use crate::runner::events;
use crate::state::{LocalAlloc, LocalHealth};

/// The fake client, recording the `deploymentStatus` of every status write that carries one.
#[derive(Clone)]
struct Recorder {
    inner: FakeClient,
    health_writes: Arc<Mutex<Vec<Value>>>,
}

impl Client for Recorder {
    async fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Value, ClientError> {
        self.inner.get(kind, namespace, name).await
    }

    async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
    ) -> Result<ObjectList, ClientError> {
        self.inner.list(kind, namespace, query).await
    }

    async fn watch(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
        resource_version: u64,
    ) -> Result<EventStream, ClientError> {
        self.inner
            .watch(kind, namespace, query, resource_version)
            .await
    }

    async fn create(&self, kind: Kind, object: Value) -> Result<Value, ClientError> {
        self.inner.create(kind, object).await
    }

    async fn patch_subresource(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: Value,
        subresource: Subresource,
    ) -> Result<Value, ClientError> {
        if let Some(health) = patch.pointer("/status/deploymentStatus") {
            self.health_writes.lock().unwrap().push(health.clone());
        }
        self.inner
            .patch_subresource(kind, namespace, name, patch, subresource)
            .await
    }

    async fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Result<(), ClientError> {
        self.inner.delete(kind, namespace, name).await
    }

    async fn delete_at(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> Result<(), ClientError> {
        self.inner
            .delete_at(kind, namespace, name, resource_version)
            .await
    }

    async fn submit_plan(&self, plan: Plan) -> Result<PlanResult, ClientError> {
        self.inner.submit_plan(plan).await
    }
}

/// The servers' side: the Allocation stored in the fake client, statuses written to it.
struct Servers {
    client: FakeClient,
    health_writes: Arc<Mutex<Vec<Value>>>,
    status: StatusBatcher,
}

impl Servers {
    fn start(alloc: &Allocation) -> Servers {
        let client = FakeClient::new();
        client.seed(Kind::Allocation, serde_json::to_value(alloc).unwrap());
        let recorder = Recorder {
            inner: client.clone(),
            health_writes: Arc::default(),
        };
        let health_writes = recorder.health_writes.clone();
        let status = StatusBatcher::new();
        tokio::spawn(status.clone().run(recorder, Duration::from_millis(5)));
        Servers {
            client,
            health_writes,
            status,
        }
    }

    fn stored(&self) -> Value {
        self.client
            .object(Kind::Allocation, "default", "j-g-0-00000000")
            .expect("the allocation")
    }

    /// Waits until the stored client status is `status` (every earlier write is then done).
    async fn wait_client_status(&self, status: &str) {
        wait_for(&format!("the client status is {status}"), || {
            self.stored()["status"]["clientStatus"] == status && self.status.backlog() == 0
        })
        .await;
    }

    fn health_writes(&self) -> Vec<Value> {
        self.health_writes.lock().unwrap().clone()
    }
}

fn service_job(update: Value, task: Value) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "caravan.dev/v1", "kind": "Job",
        "metadata": {"name": "j", "namespace": "default"},
        "spec": {"type": "service", "groups": [{
            "name": "g",
            "restart": {"attempts": 0, "interval": "1m", "delay": "10ms", "mode": "fail"},
            "update": update,
            "tasks": [task]
        }]}
    }))
    .unwrap()
}

/// The allocation, placed by the scheduler within deployment `j-v0`.
fn deployed(canary: bool) -> Allocation {
    let mut alloc = alloc();
    alloc.spec.deployment_name = Some("j-v0".into());
    alloc.status = Some(AllocationStatus {
        deployment_status: Some(AllocDeploymentStatus {
            canary,
            ..Default::default()
        }),
        ..Default::default()
    });
    alloc
}

fn time(value: &Value) -> SystemTime {
    humantime::parse_rfc3339_weak(value.as_str().expect("a time")).unwrap()
}

#[tokio::test]
async fn a_task_running_for_the_minimum_time_is_healthy_once_and_stays_a_canary() {
    let f = fixture();
    let job = service_job(
        json!({"healthCheck": "task_states", "minHealthyTime": "300ms", "healthyDeadline": "10s"}),
        mock("web", json!({}), None),
    );
    let servers = Servers::start(&deployed(true));
    let saved = LocalAlloc {
        alloc: serde_json::to_value(deployed(true)).unwrap(),
        job: serde_json::to_value(&job).unwrap(),
        health: None,
    };
    f.local.put_alloc(U1, &saved).unwrap();
    let (tx, rx) = watch::channel(deployed(true));
    let mut runner = f.runner(job, rx, BTreeMap::new());
    runner.status = servers.status.clone();
    let runner = tokio::spawn(runner.run());

    wait_for("the allocation is healthy", || {
        servers.stored()["status"]["deploymentStatus"]["healthy"] == true
    })
    .await;
    let stored = servers.stored();
    let health = &stored["status"]["deploymentStatus"];
    assert_eq!(health["canary"], true, "as the scheduler set it");
    let started = time(&stored["status"]["taskStates"]["web"]["startedAt"]);
    assert_eq!(
        time(&health["timestamp"]),
        started + Duration::from_millis(300),
        "healthy once running for the minimum healthy time"
    );
    let (_, saved, _) = f.local.load().unwrap().remove(0);
    assert_eq!(
        saved
            .health
            .map(|h| (h.deployment, serde_json::to_value(h.status).unwrap())),
        Some(("j-v0".to_string(), health.clone())),
        "saved for a restarted agent"
    );

    // Stopped by the servers: the allocation completes, its health unchanged.
    let mut stopped = deployed(true);
    stopped.spec.desired_status = Some(DesiredStatus::Stop);
    tx.send(stopped).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runner)
        .await
        .unwrap()
        .unwrap();
    servers.wait_client_status("complete").await;
    assert_eq!(
        servers.health_writes(),
        std::slice::from_ref(health),
        "written once"
    );
    assert_eq!(&servers.stored()["status"]["deploymentStatus"], health);
}

#[tokio::test]
async fn a_task_exiting_1_is_unhealthy_at_once() {
    let f = fixture();
    let job = service_job(
        json!({"minHealthyTime": "10s", "healthyDeadline": "5m"}),
        mock("web", json!({"runFor": "50ms", "exitCode": 1}), None),
    );
    let servers = Servers::start(&deployed(false));
    let (_tx, rx) = watch::channel(deployed(false));
    let mut runner = f.runner(job, rx, BTreeMap::new());
    runner.status = servers.status.clone();
    let states = run(runner).await;
    assert!(states["web"].failed);
    servers.wait_client_status("failed").await;
    let finished = states["web"].finished_at.clone().expect("finished");
    assert_eq!(
        servers.health_writes(),
        [json!({"healthy": false, "canary": false, "timestamp": finished})],
        "unhealthy when the task failed, long before the deadline"
    );
}

#[tokio::test]
async fn manual_health_is_never_written_by_the_agent() {
    let f = fixture();
    let job = service_job(
        json!({"healthCheck": "manual", "minHealthyTime": "10ms"}),
        mock("web", json!({"runFor": "300ms"}), None),
    );
    let servers = Servers::start(&deployed(true));
    let (_tx, rx) = watch::channel(deployed(true));
    let mut runner = f.runner(job, rx, BTreeMap::new());
    runner.status = servers.status.clone();
    run(runner).await;
    // The task ran for 30 times the minimum healthy time, and every status is written.
    servers.wait_client_status("complete").await;
    assert_eq!(servers.health_writes(), Vec::<Value>::new());
    assert_eq!(
        servers.stored()["status"]["deploymentStatus"],
        json!({"canary": true})
    );
}

#[tokio::test]
async fn a_restarted_agent_tracks_from_when_the_tasks_started() {
    let f = fixture();
    let job = service_job(
        json!({"minHealthyTime": "400ms", "healthyDeadline": "10s"}),
        mock("web", json!({}), None),
    );
    // The task an earlier agent process started 200 ms ago (to the millisecond, as reported),
    // still running.
    let started_ms = (SystemTime::now() - Duration::from_millis(200))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let started = std::time::UNIX_EPOCH + Duration::from_millis(started_ms);
    let mut state = TaskState {
        state: TaskLifecycleState::Running,
        started_at: Some(events::timestamp(started)),
        ..Default::default()
    };
    events::push(&mut state, events::event(events::RECEIVED, "", started));
    let recovered = BTreeMap::from([(
        "web".to_string(),
        LocalTask {
            handle: Some(json!({"startedUnixMs": started_ms, "config": {}})),
            state,
        },
    )]);
    let servers = Servers::start(&deployed(false));
    let (tx, rx) = watch::channel(deployed(false));
    let mut runner = f.runner(job, rx, recovered);
    runner.status = servers.status.clone();
    let restarted = SystemTime::now();
    let runner = tokio::spawn(runner.run());
    wait_for("the allocation is healthy", || {
        servers.stored()["status"]["deploymentStatus"]["healthy"] == true
    })
    .await;
    let healthy_at = time(&servers.stored()["status"]["deploymentStatus"]["timestamp"]);
    assert_eq!(
        healthy_at,
        started + Duration::from_millis(400),
        "from the task's start, not the agent's"
    );
    assert!(healthy_at < restarted + Duration::from_millis(400));
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), runner)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn health_decided_before_a_restart_is_sent_again_and_never_decided_anew() {
    let f = fixture();
    let job = service_job(
        json!({"minHealthyTime": "10ms", "healthyDeadline": "10s"}),
        mock("web", json!({"runFor": "100ms", "exitCode": 1}), None),
    );
    let decided = AllocDeploymentStatus {
        healthy: Some(true),
        canary: false,
        timestamp: Some("2027-01-15T08:00:00.000Z".into()),
    };
    let servers = Servers::start(&deployed(false));
    let (_tx, rx) = watch::channel(deployed(false));
    let mut runner = f.runner(job, rx, BTreeMap::new());
    runner.status = servers.status.clone();
    runner.health = Some(LocalHealth {
        deployment: "j-v0".into(),
        status: decided.clone(),
    });
    let states = run(runner).await;
    assert!(states["web"].failed, "the task failed after the decision");
    servers.wait_client_status("failed").await;
    assert_eq!(
        servers.health_writes(),
        [serde_json::to_value(&decided).unwrap()]
    );
}
