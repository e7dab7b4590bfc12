//! Services through the allocation runner: registrations while the task runs, deployment
//! health waiting for the checks, and a check restarting its task.

use caravan_runtime::fake::{FakeClient, wait_for};
use caravan_schemas::Kind;
use caravan_schemas::allocation::{AllocDeploymentStatus, AllocationStatus};
use tokio::net::TcpListener;

use super::*;

fn service_job(update: Value, restart: Value, task: Value) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "caravan.dev/v1", "kind": "Job",
        "metadata": {"name": "j", "namespace": "default"},
        "spec": {"type": "service", "groups": [{
            "name": "g",
            "restart": restart,
            "update": update,
            "network": {"ports": [{"label": "http"}]},
            "tasks": [task]
        }]}
    }))
    .unwrap()
}

/// The allocation within deployment `j-v0`, its port `http` on 127.0.0.1:`port`.
fn placed(port: u16) -> Allocation {
    let mut alloc = alloc();
    alloc.spec.deployment_name = Some("j-v0".into());
    alloc.spec.allocated_resources = Some(
        serde_json::from_value(json!({"shared": {"ports": [
            {"label": "http", "value": port, "hostIp": "127.0.0.1"}
        ]}}))
        .unwrap(),
    );
    alloc.status = Some(AllocationStatus {
        deployment_status: Some(AllocDeploymentStatus::default()),
        ..Default::default()
    });
    alloc
}

fn registrations(client: &FakeClient) -> Vec<Value> {
    client.objects(Kind::ServiceRegistration)
}

fn time(value: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339_weak(value.as_str().expect("a time")).unwrap()
}

#[tokio::test]
async fn a_running_task_is_registered_and_healthy_once_its_checks_pass() {
    let f = fixture();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let job = service_job(
        json!({"healthCheck": "checks", "minHealthyTime": "100ms", "healthyDeadline": "10s"}),
        json!({"attempts": 0, "interval": "1m", "delay": "10ms", "mode": "fail"}),
        json!({"name": "web", "driver": "mock", "config": {},
               "services": [{"name": "web", "port": "http", "tags": ["i-${NOMAD_ALLOC_INDEX}"],
                             "checks": [{"type": "tcp", "interval": "1s", "timeout": "1s"}]}]}),
    );
    let client = FakeClient::new();
    client.seed(
        Kind::Allocation,
        serde_json::to_value(placed(port)).unwrap(),
    );
    let (tx, rx) = watch::channel(placed(port));
    let runner = f.runner(job, rx, BTreeMap::new());
    tokio::spawn(
        runner
            .status
            .clone()
            .run(client.clone(), Duration::from_millis(5)),
    );
    tokio::spawn(runner.services.clone().run(client.clone(), "n1".into()));
    runner.services.open_alloc(crate::services::AllocKey {
        namespace: "default".into(),
        name: "j-g-0-00000000".into(),
    });
    let runner = tokio::spawn(runner.run());

    let stored = || {
        client
            .object(Kind::Allocation, "default", "j-g-0-00000000")
            .unwrap()
    };
    wait_for("the allocation is healthy", || {
        stored()["status"]["deploymentStatus"]["healthy"] == true
    })
    .await;
    let regs = registrations(&client);
    assert_eq!(regs.len(), 1);
    let reg = &regs[0];
    assert_eq!(reg["spec"]["serviceName"], "web");
    assert_eq!(reg["spec"]["taskName"], "web");
    assert_eq!(reg["spec"]["allocName"], "j-g-0-00000000");
    assert_eq!(reg["spec"]["address"], "127.0.0.1");
    assert_eq!(reg["spec"]["port"], port);
    assert_eq!(reg["spec"]["tags"], json!(["i-0"]));
    assert_eq!(reg["status"]["status"], "passing");
    let passed = time(&reg["status"]["checks"][0]["timestamp"]);
    let started = time(&stored()["status"]["taskStates"]["web"]["startedAt"]);
    assert!(passed >= started);
    assert_eq!(
        time(&stored()["status"]["deploymentStatus"]["timestamp"]),
        passed + Duration::from_millis(100),
        "healthy once the check passed for the minimum healthy time"
    );

    let mut stopped = placed(port);
    stopped.spec.desired_status = Some(DesiredStatus::Stop);
    tx.send(stopped).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runner)
        .await
        .unwrap()
        .unwrap();
    wait_for("the registration is deleted", || {
        registrations(&client).is_empty()
    })
    .await;
}

#[tokio::test]
async fn an_unhealthy_check_restarts_its_task_within_the_restart_policy() {
    let f = fixture();
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let job = service_job(
        json!({"healthCheck": "task_states"}),
        json!({"attempts": 1, "interval": "1m", "delay": "10ms", "mode": "fail"}),
        json!({"name": "web", "driver": "mock", "config": {},
               "services": [{"name": "web", "port": "http",
                             "checks": [{"type": "tcp", "interval": "1s", "timeout": "1s",
                                         "checkRestart": {"limit": 1, "grace": "0s"}}]}]}),
    );
    let (_tx, rx) = watch::channel(placed(port));
    let states = run(f.runner(job, rx, BTreeMap::new())).await;
    let web = &states["web"];
    assert!(web.failed, "the second restart exceeds the policy: {web:?}");
    assert_eq!(web.restarts, 1);
    let signaled: Vec<&str> = web
        .events
        .iter()
        .filter(|e| e.r#type == events::RESTART_SIGNALED)
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(
        signaled,
        ["healthcheck: check \"service: \\\"web\\\" check\" unhealthy"; 2]
    );
    let kinds: Vec<&str> = web.events.iter().map(|e| e.r#type.as_str()).collect();
    assert!(
        kinds.ends_with(&["Restart Signaled", "Terminated", "Not Restarting"]),
        "{kinds:?}"
    );
}
