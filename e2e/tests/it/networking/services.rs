//! Services end to end: the node agent registers each service instance as a
//! `ServiceRegistration` with its address, port and check results; a failing check turns it
//! critical and, with `checkRestart`, restarts the task; registrations go with their
//! allocation, and the leader removes those of a node marked down.

use std::time::{Duration, Instant};

use caravan_e2e::ClientAgent;
use caravan_e2e::cluster::{Cluster, field};
use caravan_e2e::http::collection_path;
use serde_json::{Value, json};

use super::{http_job, ports_of, running, wait_answers};
use crate::deployments::{Api, dev};

/// How long a registration may take to reach a state.
const SETTLE: Duration = Duration::from_secs(60);

/// [`http_job`] with a task service `name` on port `http` checked over HTTP every second.
fn served(job: &str, count: u32, service: &str) -> Value {
    let mut job = http_job(job, count, json!({"ports": [{"label": "http"}]}));
    job["spec"]["groups"][0]["tasks"][0]["services"] = json!([{
        "name": service,
        "port": "http",
        "tags": ["v1", "index-${NOMAD_ALLOC_INDEX}"],
        "checks": [{"type": "http", "path": "/", "interval": "1s", "timeout": "1s"}]
    }]);
    job
}

/// The registrations of service `name` (path to GET through `get`).
fn registrations_path(name: &str) -> String {
    format!(
        "{}?fieldSelector=spec.serviceName={name}",
        collection_path("default", "serviceregistrations")
    )
}

async fn registrations(api: &Api<'_>, name: &str) -> Vec<Value> {
    match api.get(&registrations_path(name)).await {
        (200, list) => list["items"].as_array().cloned().unwrap_or_default(),
        _ => Vec::new(),
    }
}

async fn wait_registrations(
    api: &Api<'_>,
    name: &str,
    what: &str,
    cond: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let found = registrations(api, name).await;
        if cond(&found) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {SETTLE:?} waiting until {what}; registrations of {name}: {:#}",
            Value::from(found)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn status(registration: &Value) -> &str {
    field(registration, "/status/status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_register_with_passing_checks_and_go_with_their_allocations() {
    let server = dev("services");
    let http = caravan_e2e::http::client();
    let api = Api::new(&server, &http);
    api.submit("web.yaml", &served("web", 2, "web"));
    let allocs = api
        .wait_allocs("web", "both allocations run", |a| {
            a.iter().filter(|a| running(a)).count() == 2
        })
        .await;
    let registered = wait_registrations(&api, "web", "two instances pass", |r| {
        r.len() == 2 && r.iter().all(|r| status(r) == "passing")
    })
    .await;
    for alloc in &allocs {
        let name = field(alloc, "/metadata/name");
        let port = ports_of(alloc)[0].1;
        wait_answers(port).await;
        let ip = field(alloc, "/spec/allocatedResources/shared/ports/0/hostIp");
        assert_eq!(ip, "127.0.0.1");
        let mine = registered
            .iter()
            .find(|r| field(r, "/spec/allocName") == name)
            .unwrap_or_else(|| panic!("no registration of {name}: {registered:#?}"));
        assert_eq!(mine["spec"]["port"], json!(port), "{mine:#}");
        assert_eq!(field(mine, "/spec/address"), ip, "{mine:#}");
        assert_eq!(field(mine, "/spec/jobName"), "web");
        assert_eq!(field(mine, "/spec/taskName"), "t");
        let index = name.rsplit('-').nth(1).unwrap();
        assert_eq!(
            mine["spec"]["tags"],
            json!(["v1", format!("index-{index}")]),
            "tags are interpolated"
        );
        assert_eq!(
            field(mine, "/status/checks/0/status"),
            "passing",
            "{mine:#}"
        );
    }

    let info = api.caravan(&["service", "info", "web"]);
    info.assert_success();
    for alloc in &allocs {
        let ip = field(alloc, "/spec/allocatedResources/shared/ports/0/hostIp");
        let port = ports_of(alloc)[0].1;
        assert!(
            info.stdout.contains(&format!("{ip}:{port}")),
            "service info lists {ip}:{port}:\n{}",
            info.stdout
        );
    }
    assert!(info.stdout.contains("passing"), "{}", info.stdout);
    let list = api.caravan(&["service", "list"]);
    list.assert_success();
    assert!(list.stdout.contains("web"), "{}", list.stdout);

    // Stopping the job stops its allocations, and their registrations go with them.
    api.caravan(&["job", "stop", "--detach", "web"])
        .assert_success();
    wait_registrations(&api, "web", "none is left", |r| r.is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_check_turns_critical_and_check_restart_restarts_the_task() {
    let server = dev("check-restart");
    let http = caravan_e2e::http::client();
    let api = Api::new(&server, &http);
    // The task marks itself healthy when it starts; the script check passes while the mark
    // is there. The test removes it: the check fails (exit 2: critical; exit 1 would be a
    // warning), and after three failures the task is restarted, which marks it healthy again.
    let job = json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": "flaky", "namespace": "default"},
        "spec": {
            "type": "service",
            "datacenters": ["*"],
            "groups": [{
                "name": "g",
                "count": 1,
                "restart": {"attempts": 5, "interval": "10m", "delay": "1s", "mode": "fail"},
                "tasks": [{
                    "name": "t",
                    "driver": "raw_exec",
                    "config": {
                        "command": "/bin/sh",
                        "args": ["-c", "touch \"$CARAVAN_TASK_DIR/healthy\"; exec sleep 3600"]
                    },
                    "services": [{
                        "name": "flaky",
                        "port": 9,
                        "checks": [{
                            "type": "script",
                            "command": "/bin/sh",
                            "args": ["-c", "test -f \"$CARAVAN_TASK_DIR/healthy\" || exit 2"],
                            "interval": "1s",
                            "timeout": "1s",
                            "checkRestart": {"limit": 3, "grace": "1s"}
                        }]
                    }],
                    "resources": {"cpu": 20, "memoryMB": 16},
                    "killTimeout": "1s"
                }]
            }]
        }
    });
    api.submit("flaky.yaml", &job);
    let allocs = api
        .wait_allocs("flaky", "the allocation runs", |a| a.iter().any(running))
        .await;
    let uid = field(&allocs[0], "/metadata/uid").to_string();
    let alloc_name = field(&allocs[0], "/metadata/name").to_string();
    wait_registrations(&api, "flaky", "the instance passes", |r| {
        r.len() == 1 && status(&r[0]) == "passing"
    })
    .await;

    let mark = server
        .data_dir()
        .join("alloc")
        .join(&uid)
        .join("t/local/healthy");
    std::fs::remove_file(&mark).unwrap_or_else(|e| panic!("removing {}: {e}", mark.display()));
    wait_registrations(&api, "flaky", "the instance is critical", |r| {
        r.iter().any(|r| status(r) == "critical")
    })
    .await;

    let deadline = Instant::now() + SETTLE;
    loop {
        let alloc = api
            .object("allocations", &alloc_name)
            .await
            .unwrap_or_default();
        let restarts = alloc
            .pointer("/status/taskStates/t/restarts")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if restarts >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the task was not restarted: {:#}",
            alloc["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_registrations(&api, "flaky", "the restarted task passes again", |r| {
        r.len() == 1 && status(&r[0]) == "passing"
    })
    .await;
    assert!(
        mark.exists(),
        "the restarted task marked itself healthy again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_registrations_are_removed_when_it_is_marked_down() {
    let cluster = Cluster::start("services-down", &[]);
    let mut client = ClientAgent::start(
        &cluster.server,
        "svc-client",
        &["--network-interface", "lo"],
    )
    .unwrap();
    cluster.wait_node("svc-client", "ready").await;
    let http = caravan_e2e::http::client();
    let api = Api::new(&cluster.server, &http);
    api.submit("db.yaml", &served("db", 1, "db"));
    wait_registrations(&api, "db", "the instance passes", |r| {
        r.len() == 1 && status(&r[0]) == "passing"
    })
    .await;

    client.kill_9();
    cluster.wait_node("svc-client", "down").await;
    wait_registrations(&api, "db", "the down node's instance is removed", |r| {
        r.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_whose_check_fails_fails_its_deployment() {
    let server = dev("check-deploy");
    let http = caravan_e2e::http::client();
    let api = Api::new(&server, &http);
    // Two instances replaced one at a time: when the first new one fails, the other old one
    // is still serving.
    let mut job = served("chk", 2, "chk");
    job["spec"]["groups"][0]["update"] = json!({
        "maxParallel": 1,
        "minHealthyTime": "1s",
        "healthyDeadline": "5s",
        "progressDeadline": "10s"
    });
    api.submit("chk.yaml", &job);
    api.wait_successful("chk-v0").await;

    // Version 1 serves from elsewhere (a destructive change) and checks a path that is not
    // there: its HTTP check answers 404, critical, so the allocation is never healthy.
    let task = &mut job["spec"]["groups"][0]["tasks"][0];
    task["env"] = json!({"VERSION": "1"});
    task["services"][0]["checks"][0]["path"] = json!("/missing");
    api.submit("chk2.yaml", &job);
    let failed = api
        .wait_deployment("chk-v1", "fails", |d| {
            field(d, "/status/status") == "failed"
        })
        .await;
    let allocs = api.allocs("chk").await;
    let new = allocs
        .iter()
        .find(|a| a["spec"]["jobVersion"] == json!(1))
        .unwrap_or_else(|| panic!("no allocation of version 1: {failed:#}"));
    assert_eq!(
        new.pointer("/status/deploymentStatus/healthy"),
        Some(&json!(false)),
        "{new:#}"
    );
    let critical = registrations(&api, "chk").await.iter().any(|r| {
        field(r, "/spec/allocName") == field(new, "/metadata/name") && status(r) == "critical"
    });
    assert!(critical, "the new allocation's instance is critical");
    assert!(
        allocs
            .iter()
            .any(|a| a["spec"]["jobVersion"] == json!(0) && running(a)),
        "the old allocation keeps serving: {}",
        crate::deployments::summary(&allocs)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_in_place_is_judged_by_its_new_checks() {
    let server = dev("check-in-place");
    let http = caravan_e2e::http::client();
    let api = Api::new(&server, &http);
    let mut job = served("inplace", 1, "inplace");
    job["spec"]["groups"][0]["update"] = json!({
        "maxParallel": 1,
        "minHealthyTime": "1s",
        "healthyDeadline": "5s",
        "progressDeadline": "10s"
    });
    api.submit("inplace.yaml", &job);
    api.wait_successful("inplace-v0").await;
    let before = api.allocs("inplace").await;
    assert_eq!(before.len(), 1);

    // Only the check changes: the allocation is updated in place (same allocation, version
    // 1), joins deployment inplace-v1, and its health is judged again, by the new check, which
    // fails. The health it had in inplace-v0 does not count.
    job["spec"]["groups"][0]["tasks"][0]["services"][0]["checks"][0]["path"] = json!("/missing");
    api.submit("inplace2.yaml", &job);
    api.wait_deployment("inplace-v1", "fails", |d| {
        field(d, "/status/status") == "failed"
    })
    .await;
    let after = api.allocs("inplace").await;
    assert_eq!(after.len(), 1, "{}", crate::deployments::summary(&after));
    assert_eq!(
        field(&after[0], "/metadata/name"),
        field(&before[0], "/metadata/name"),
        "updated in place"
    );
    assert_eq!(after[0]["spec"]["jobVersion"], json!(1));
    assert_eq!(
        after[0].pointer("/status/deploymentStatus/healthy"),
        Some(&json!(false)),
        "{:#}",
        after[0]
    );
}
