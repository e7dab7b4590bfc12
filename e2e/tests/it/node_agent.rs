//! The node agent end to end: a real `caravan agent --dev` (server and client in one process)
//! runs jobs with the `oci`, `exec` and `raw_exec` drivers on this machine; logs come back
//! through `caravan logs`; memory limits, restart policies and an agent killed with `kill -9`
//! behave as an operator expects.

use std::time::Duration;

use caravan_e2e::Sandbox;
use caravan_e2e::http::{self, collection_path};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

struct Node {
    sandbox: Sandbox,
    client: reqwest::Client,
    /// The agent's image store (`CARAVAN_IMAGE_DIR`).
    images: tempfile::TempDir,
}

impl Node {
    /// A dev agent whose image store holds a busybox image built for the test.
    fn start(name: &str) -> Node {
        let images = tempfile::Builder::new()
            .prefix("caravan-e2e-images-")
            .tempdir()
            .unwrap();
        let sandbox = Sandbox::builder()
            .name(name)
            .client()
            .env("CARAVAN_IMAGE_DIR", images.path().to_str().unwrap())
            .start()
            .unwrap_or_else(|e| panic!("failed to start the sandbox: {e:#}"));
        Node {
            sandbox,
            client: http::client(),
            images,
        }
    }

    /// Builds busybox as an OCI image layout with umoci and imports it with
    /// `caravan image import`.
    fn import_busybox(&self) {
        caravan_e2e::images::import_busybox(&self.sandbox, self.images.path())
            .assert_stdout_contains("busybox:latest");
    }

    fn apply(&self, job: &Value) {
        let path = self.sandbox.write_file(
            &format!("{}.yaml", job["metadata"]["name"].as_str().unwrap()),
            &caravan_e2e::fixtures::to_yaml(job),
        );
        self.sandbox
            .caravan(&["apply", "-f", path.to_str().unwrap()])
            .assert_success();
    }

    async fn allocs_of(&self, job: &str) -> Vec<Value> {
        let url = self.sandbox.url(&format!(
            "{}?fieldSelector=spec.jobName={job}",
            collection_path("default", "allocations")
        ));
        let Ok(resp) = self.client.get(url).send().await else {
            return Vec::new();
        };
        let list: Value = resp.json().await.unwrap_or(Value::Null);
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the job has one allocation satisfying `cond`, and returns it.
    async fn wait_alloc(&self, job: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + DEADLINE;
        let mut interval = Duration::from_millis(10);
        loop {
            let allocs = self.allocs_of(job).await;
            if let Some(found) = allocs.iter().find(|a| cond(a)) {
                return found.clone();
            }
            if std::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {DEADLINE:?} waiting until {what}\nallocations: {}\n{}",
                    serde_json::to_string_pretty(&allocs).unwrap(),
                    self.sandbox.logs()
                );
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(Duration::from_millis(200));
        }
    }
}

fn client_status(alloc: &Value) -> &str {
    alloc["status"]["clientStatus"].as_str().unwrap_or("")
}

fn task_state<'a>(alloc: &'a Value, task: &str) -> &'a Value {
    &alloc["status"]["taskStates"][task]
}

fn events_of(alloc: &Value, task: &str) -> Vec<String> {
    task_state(alloc, task)["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["type"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn batch_job(name: &str, task: Value, restart: Value) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "type": "batch",
            "groups": [{"name": "g", "restart": restart, "tasks": [task]}]
        }
    })
}

fn alloc_name(alloc: &Value) -> &str {
    alloc["metadata"]["name"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_job_runs_its_logs_show_and_its_exit_code_is_reported() {
    if !is_root() {
        eprintln!("skipped: the oci driver needs root");
        return;
    }
    let node = Node::start("oci");
    node.import_busybox();
    node.apply(&batch_job(
        "hello",
        json!({
            "name": "hello",
            "driver": "oci",
            "config": {
                "image": "busybox",
                "command": "sh",
                "args": ["-c", "echo hello from busybox; echo oops >&2; exit 3"]
            },
            "resources": {"cpu": 100, "memoryMB": 32}
        }),
        json!({"attempts": 0}),
    ));
    let alloc = node
        .wait_alloc("hello", "the oci task failed with its exit code", |a| {
            client_status(a) == "failed"
        })
        .await;
    let events = task_state(&alloc, "hello")["events"].as_array().unwrap();
    let terminated = events
        .iter()
        .find(|e| e["type"] == "Terminated")
        .expect("a Terminated event");
    assert_eq!(terminated["exitCode"], 3, "{alloc:#}");
    assert_eq!(
        events_of(&alloc, "hello"),
        [
            "Received",
            "Task Setup",
            "Started",
            "Terminated",
            "Not Restarting"
        ]
    );
    let name = alloc_name(&alloc);
    node.sandbox
        .caravan(&["logs", name])
        .assert_success()
        .assert_stdout_contains("hello from busybox");
    node.sandbox
        .caravan(&["logs", name, "hello", "--stderr"])
        .assert_success()
        .assert_stdout_contains("oops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_over_its_memory_limit_is_killed_with_an_oom_event() {
    if !is_root() {
        eprintln!("skipped: the oci driver needs root");
        return;
    }
    let node = Node::start("oom");
    node.import_busybox();
    node.apply(&batch_job(
        "hog",
        json!({
            "name": "hog",
            "driver": "oci",
            "config": {
                "image": "busybox",
                "command": "sh",
                "args": ["-c", "a=$(head -c 64000000 /dev/zero | tr '\\0' x); echo survived"]
            },
            "resources": {"cpu": 100, "memoryMB": 16}
        }),
        json!({"attempts": 0}),
    ));
    let alloc = node
        .wait_alloc("hog", "the memory hog was killed", |a| {
            client_status(a) == "failed"
        })
        .await;
    let events = task_state(&alloc, "hog")["events"].as_array().unwrap();
    let terminated = events
        .iter()
        .find(|e| e["type"] == "Terminated")
        .expect("a Terminated event");
    assert_eq!(terminated["details"]["oom_killed"], "true", "{alloc:#}");
    assert!(
        terminated["message"]
            .as_str()
            .unwrap()
            .contains("OOM Killed")
    );
    assert_eq!(terminated["signal"], 9);
    let logs = node.sandbox.caravan(&["logs", alloc_name(&alloc)]);
    assert!(!logs.stdout.contains("survived"), "{}", logs.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_follows_its_restart_policy() {
    let node = Node::start("restart");
    node.apply(&batch_job(
        "flaky",
        json!({
            "name": "flaky",
            "driver": "raw_exec",
            "config": {"command": "/bin/sh", "args": ["-c", "echo attempt; exit 1"]},
            "resources": {"cpu": 50, "memoryMB": 16}
        }),
        json!({"attempts": 2, "interval": "10m", "delay": "200ms", "mode": "fail"}),
    ));
    let alloc = node
        .wait_alloc("flaky", "the task gave up after its attempts", |a| {
            client_status(a) == "failed"
        })
        .await;
    let state = task_state(&alloc, "flaky");
    assert_eq!(state["restarts"], 2, "{alloc:#}");
    assert_eq!(state["failed"], true);
    assert_eq!(state["state"], "dead");
    let events = events_of(&alloc, "flaky");
    assert_eq!(
        events.iter().filter(|e| *e == "Started").count(),
        3,
        "{events:?} in {alloc:#}"
    );
    assert_eq!(events.iter().filter(|e| *e == "Restarting").count(), 2);
    assert_eq!(events.last().map(String::as_str), Some("Not Restarting"));
    let logs = node.sandbox.caravan(&["logs", alloc_name(&alloc)]);
    logs.assert_success();
    assert_eq!(logs.stdout.matches("attempt").count(), 3, "{}", logs.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_reattaches_to_its_running_task() {
    let mut node = Node::start("reattach");
    node.apply(&json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": "forever"},
        "spec": {"groups": [{"name": "g", "tasks": [{
            "name": "t",
            "driver": "raw_exec",
            "config": {"command": "/bin/sh", "args": ["-c", "echo pid $$; exec sleep 3600"]},
            "resources": {"cpu": 50, "memoryMB": 16}
        }]}]}
    }));
    let alloc = node
        .wait_alloc("forever", "the task runs", |a| {
            client_status(a) == "running"
        })
        .await;
    let name = alloc_name(&alloc).to_string();
    let mut pid = None;
    caravan_e2e::wait_until(DEADLINE, "the task printed its pid", || {
        let out = node.sandbox.caravan(&["logs", &name]);
        pid = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("pid "))
            .and_then(|p| p.trim().parse::<u32>().ok());
        pid.is_some()
    })
    .unwrap();
    let pid = pid.unwrap();
    assert!(caravan_e2e::tasks::pid_alive(pid));

    node.sandbox.kill_9();
    assert!(
        caravan_e2e::tasks::pid_alive(pid),
        "the task must outlive its agent"
    );
    node.sandbox.restart().unwrap();

    // The restarted agent reports the same task, still running, never restarted.
    let rv_before: u64 = alloc["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let alloc = node
        .wait_alloc("forever", "the restarted agent reported the task", |a| {
            let rv: u64 = a["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            client_status(a) == "running" && rv > rv_before
        })
        .await;
    let state = task_state(&alloc, "t");
    assert_eq!(state["state"], "running", "{alloc:#}");
    assert_eq!(state["restarts"], 0);
    assert_eq!(
        events_of(&alloc, "t")
            .iter()
            .filter(|e| *e == "Started")
            .count(),
        1
    );
    assert!(
        caravan_e2e::tasks::pid_alive(pid),
        "re-attaching must not restart the task"
    );

    // Stopping the job reaches the same process: the agent really owns it again.
    node.sandbox
        .caravan(&["job", "stop", "forever", "--detach"])
        .assert_success();
    node.wait_alloc("forever", "the task was stopped", |a| {
        client_status(a) == "complete"
    })
    .await;
    caravan_e2e::wait_until(DEADLINE, "the task process exited", || {
        !caravan_e2e::tasks::pid_alive(pid)
    })
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_exec_and_exec_jobs_run_with_their_environment() {
    let node = Node::start("drivers");
    node.apply(&batch_job(
        "raw",
        json!({
            "name": "env",
            "driver": "raw_exec",
            "config": {"command": "/bin/sh", "args": ["-c", "env | grep ^CARAVAN_ | sort; grep ^THP_enabled /proc/self/status || true"]},
            "env": {"CARAVAN_EXTRA": "yes"},
            "resources": {"cpu": 50, "memoryMB": 16}
        }),
        json!({"attempts": 0}),
    ));
    let alloc = node
        .wait_alloc("raw", "the raw_exec task completed", |a| {
            client_status(a) == "complete"
        })
        .await;
    let uid = alloc["metadata"]["uid"].as_str().unwrap();
    let out = node.sandbox.caravan(&["logs", alloc_name(&alloc)]);
    out.assert_success();
    for expected in [
        format!("CARAVAN_ALLOC_ID={uid}"),
        "CARAVAN_JOB_NAME=raw".to_string(),
        "CARAVAN_GROUP_NAME=g".to_string(),
        "CARAVAN_TASK_NAME=env".to_string(),
        "CARAVAN_CPU_LIMIT=50".to_string(),
        "CARAVAN_MEMORY_LIMIT=16".to_string(),
        "CARAVAN_EXTRA=yes".to_string(),
    ] {
        assert!(
            out.stdout.contains(&expected),
            "{expected} in {}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("CARAVAN_ALLOC_DIR=/"), "{}", out.stdout);
    assert!(out.stdout.contains("CARAVAN_TASK_DIR=/"), "{}", out.stdout);
    // The agent keeps transparent huge pages off for itself; its tasks get them back.
    if out.stdout.contains("THP_enabled") {
        assert!(out.stdout.contains("THP_enabled:\t1"), "{}", out.stdout);
    }

    if !is_root() {
        eprintln!("skipped the exec part: it needs root");
        return;
    }
    node.apply(&batch_job(
        "isolated",
        json!({
            "name": "t",
            "driver": "exec",
            "config": {"command": "/bin/sh", "args": ["-c", "echo pid $$; ls /local && echo cwd $(pwd)"]},
            "resources": {"cpu": 50, "memoryMB": 32}
        }),
        json!({"attempts": 0}),
    ));
    let alloc = node
        .wait_alloc("isolated", "the exec task completed", |a| {
            client_status(a) == "complete"
        })
        .await;
    let out = node.sandbox.caravan(&["logs", alloc_name(&alloc)]);
    out.assert_success();
    // Its own pid namespace: the shell is pid 1.
    assert!(out.stdout.contains("pid 1\n"), "{}", out.stdout);
    assert!(out.stdout.contains("cwd /"), "{}", out.stdout);
}
