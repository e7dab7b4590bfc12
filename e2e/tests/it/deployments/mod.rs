//! Deployments end to end: real servers and node agents run raw_exec tasks while a job's new
//! version rolls out. Rolling updates (`rolling.rs`), canaries and promotion (`canary.rs`), a
//! bad version failing at its progress deadline with and without auto-revert (`failure.rs`),
//! a rollout surviving the loss of its leader (`failover.rs`), and job history, revert and
//! scale (`history.rs`).
//!
//! The pacing of a rollout is checked on the ordered watch stream of the job's allocations
//! ([`Rollout`]): opened before the update, it sees every committed state in the order the
//! servers applied them, so "never more than `maxParallel` replacements in flight" is checked
//! against every state the cluster went through, not against samples.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use caravan_e2e::Sandbox;
use caravan_e2e::cluster::field;
use caravan_e2e::command::Output;
use caravan_e2e::fixtures::to_yaml;
use caravan_e2e::http::{collection_path, object_path};
use serde_json::{Value, json};

mod canary;
mod failover;
mod failure;
mod history;
mod rolling;
mod rollout;

pub(super) use rollout::Rollout;

/// How long one step of a rollout (a deployment reaching a state, allocations converging) may
/// take before the test fails: generous for a loaded two-core machine (a step takes seconds),
/// and short enough that a stuck step reports itself before the test runner's own limit.
pub(super) const ROLLOUT: Duration = Duration::from_secs(60);

/// A `caravan agent --dev` (server and node agent in one process) for one test, its node's
/// addresses loopback's: service checks (the README example has one) stay on loopback.
pub(super) fn dev(name: &str) -> Sandbox {
    Sandbox::builder()
        .name(name)
        .client()
        .arg("--network-interface")
        .arg("lo")
        .start()
        .unwrap_or_else(|e| panic!("failed to start the dev agent: {e:#}"))
}

/// A service job `name` of `count` allocations of group `g`, with the `update` block given
/// and a raw_exec task `t` that prints `greeting=<greeting>` (from its environment) and then
/// runs until stopped. Failed tasks are neither restarted nor rescheduled, so a bad version
/// fails at once and stays failed.
pub(super) fn service(name: &str, count: u32, update: Value, greeting: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "type": "service",
            "datacenters": ["*"],
            "groups": [{
                "name": "g",
                "count": count,
                "update": update,
                "restart": {"attempts": 0, "interval": "1m", "delay": "1s", "mode": "fail"},
                "reschedule": {"attempts": 0, "unlimited": false},
                "tasks": [{
                    "name": "t",
                    "driver": "raw_exec",
                    "config": {
                        "command": "/bin/sh",
                        "args": ["-c", "echo \"greeting=$GREETING\"; while true; do sleep 1; done"]
                    },
                    "env": {"GREETING": greeting},
                    "resources": {"cpu": 20, "memoryMB": 16},
                    "killTimeout": "1s"
                }]
            }]
        }
    })
}

/// `job` with its task's `GREETING` set to `greeting` (a destructive change).
pub(super) fn with_greeting(job: &Value, greeting: &str) -> Value {
    let mut job = job.clone();
    job["spec"]["groups"][0]["tasks"][0]["env"]["GREETING"] = greeting.into();
    job
}

/// `job` with a task that exits 1 at once.
pub(super) fn failing(job: &Value) -> Value {
    let mut job = job.clone();
    job["spec"]["groups"][0]["tasks"][0]["config"]["args"] = json!(["-c", "exit 1"]);
    job
}

/// `text` with its one occurrence of `from` replaced by `to`; panics when `from` does not occur
/// exactly once (an example file changed under the test).
pub(super) fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "expected one {from:?} in:\n{text}"
    );
    text.replace(from, to)
}

// ----- allocations -----

/// `spec.jobVersion` of an allocation.
pub(super) fn version(alloc: &Value) -> i64 {
    alloc
        .pointer("/spec/jobVersion")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// `status.deploymentStatus.healthy`, when set.
pub(super) fn healthy(alloc: &Value) -> Option<bool> {
    alloc
        .pointer("/status/deploymentStatus/healthy")
        .and_then(Value::as_bool)
}

/// `status.deploymentStatus.canary`.
pub(super) fn canary(alloc: &Value) -> bool {
    alloc.pointer("/status/deploymentStatus/canary") == Some(&json!(true))
}

fn desired_run(alloc: &Value) -> bool {
    matches!(field(alloc, "/spec/desiredStatus"), "" | "run")
}

fn client_terminal(alloc: &Value) -> bool {
    matches!(
        field(alloc, "/status/clientStatus"),
        "complete" | "failed" | "lost"
    )
}

/// Wanted by the servers and not finished on its node (pending or running).
pub(super) fn live(alloc: &Value) -> bool {
    desired_run(alloc) && !client_terminal(alloc)
}

/// Wanted by the servers and running on its node.
pub(super) fn running(alloc: &Value) -> bool {
    desired_run(alloc) && field(alloc, "/status/clientStatus") == "running"
}

/// Running at `version` and healthy in its deployment.
pub(super) fn running_healthy_at(alloc: &Value, v: i64) -> bool {
    running(alloc) && version(alloc) == v && healthy(alloc) == Some(true)
}

/// One line per allocation, for failure messages.
pub(super) fn summary<'a>(allocs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for a in allocs {
        let _ = writeln!(
            out,
            "  {} v{} desired={} client={} healthy={:?} canary={} deployment={}",
            field(a, "/metadata/name"),
            version(a),
            field(a, "/spec/desiredStatus"),
            field(a, "/status/clientStatus"),
            healthy(a),
            canary(a),
            field(a, "/spec/deploymentName"),
        );
    }
    out
}

fn rv_number(object: &Value) -> u64 {
    field(object, "/metadata/resourceVersion")
        .parse()
        .unwrap_or(0)
}

// ----- the API -----

/// Reads and writes through one server: its HTTP API and its `caravan` CLI.
#[derive(Clone, Copy)]
pub(super) struct Api<'a> {
    pub(super) server: &'a Sandbox,
    pub(super) http: &'a reqwest::Client,
}

impl<'a> Api<'a> {
    pub(super) fn new(server: &'a Sandbox, http: &'a reqwest::Client) -> Self {
        Api { server, http }
    }

    /// GETs `path`: the HTTP code (0 when the server did not answer) and the JSON body.
    pub(super) async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.server.url(path))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match resp {
            Ok(resp) => {
                let code = resp.status().as_u16();
                (code, resp.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// The object `plural/name` in namespace `default`, when the server answers it.
    pub(super) async fn object(&self, plural: &str, name: &str) -> Option<Value> {
        match self.get(&object_path("default", plural, name)).await {
            (200, v) => Some(v),
            _ => None,
        }
    }

    /// The objects of `plural` in namespace `default` with `spec.jobName=job`, and the
    /// list's resourceVersion; `None` when the server did not answer.
    pub(super) async fn list_of_job(&self, plural: &str, job: &str) -> Option<(Vec<Value>, u64)> {
        let path = format!(
            "{}?fieldSelector=spec.jobName={job}",
            collection_path("default", plural)
        );
        match self.get(&path).await {
            (200, list) => Some((
                list["items"].as_array().cloned().unwrap_or_default(),
                rv_number(&list),
            )),
            _ => None,
        }
    }

    /// Every allocation of `job` (empty when the server did not answer).
    pub(super) async fn allocs(&self, job: &str) -> Vec<Value> {
        self.list_of_job("allocations", job)
            .await
            .map(|(items, _)| items)
            .unwrap_or_default()
    }

    /// Polls the allocations of `job` until `cond` holds.
    pub(super) async fn wait_allocs(
        &self,
        job: &str,
        what: &str,
        cond: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + ROLLOUT;
        loop {
            let allocs = self.allocs(job).await;
            if cond(&allocs) {
                return allocs;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {ROLLOUT:?} waiting until {what}; allocations of {job}:\n{}",
                summary(&allocs)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls Deployment `name` until `cond` holds; returns it.
    pub(super) async fn wait_deployment(
        &self,
        name: &str,
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + ROLLOUT;
        loop {
            let deployment = self.object("deployments", name).await;
            if let Some(d) = deployment.as_ref().filter(|d| cond(d)) {
                return d.clone();
            }
            if Instant::now() >= deadline {
                let job = name.rsplit_once("-v").map_or(name, |(job, _)| job);
                panic!(
                    "timed out after {ROLLOUT:?} waiting until deployment {name} {what}: {:#}\n\
                     allocations:\n{}evaluations:\n{}",
                    deployment.unwrap_or(Value::Null),
                    summary(&self.allocs(job).await),
                    self.evaluations_summary(job).await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One line per evaluation of `job`, for failure messages.
    pub(super) async fn evaluations_summary(&self, job: &str) -> String {
        let mut evals = self
            .list_of_job("evaluations", job)
            .await
            .map(|(items, _)| items)
            .unwrap_or_default();
        evals.sort_by_key(rv_number);
        let mut out = String::new();
        for e in &evals {
            let _ = writeln!(
                out,
                "  {} v{} {} {} rv={} {}",
                field(e, "/metadata/name"),
                e["spec"]["jobVersion"],
                field(e, "/spec/triggeredBy"),
                field(e, "/status/status"),
                field(e, "/metadata/resourceVersion"),
                field(e, "/metadata/creationTimestamp"),
            );
        }
        out
    }

    /// Waits until Deployment `name` is `successful`; returns it.
    pub(super) async fn wait_successful(&self, name: &str) -> Value {
        self.wait_deployment(name, "is successful", |d| {
            field(d, "/status/status") == "successful"
        })
        .await
    }

    /// Polls until every evaluation of `job` is finished (complete, failed or canceled) and
    /// `cond` holds for them: what the scheduler was asked to do, it did.
    pub(super) async fn wait_evaluations_settled(
        &self,
        job: &str,
        what: &str,
        cond: impl Fn(&[Value]) -> bool,
    ) {
        let deadline = Instant::now() + ROLLOUT;
        loop {
            let evals = self
                .list_of_job("evaluations", job)
                .await
                .map(|(items, _)| items);
            let settled = evals.as_ref().is_some_and(|evals| {
                evals.iter().all(|e| {
                    matches!(
                        field(e, "/status/status"),
                        "complete" | "failed" | "canceled"
                    )
                }) && cond(evals)
            });
            if settled {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {ROLLOUT:?} waiting until the evaluations of {job} settle \
                 and {what}: {:#}",
                Value::from(evals.unwrap_or_default())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `spec.job` of JobVersion `<job>-v<version>`; panics when it is missing.
    pub(super) async fn version_spec(&self, job: &str, version: i64) -> Value {
        let name = format!("{job}-v{version}");
        let v = self
            .object("jobversions", &name)
            .await
            .unwrap_or_else(|| panic!("JobVersion {name} is missing"));
        v["spec"]["job"].clone()
    }

    /// Whether JobVersion `<job>-v<version>` is stable.
    pub(super) async fn version_stable(&self, job: &str, version: i64) -> bool {
        self.object("jobversions", &format!("{job}-v{version}"))
            .await
            .is_some_and(|v| v.pointer("/status/stable") == Some(&json!(true)))
    }

    /// Waits until JobVersion `<job>-v<version>` is stable. The deployment controller marks it
    /// with a write of its own after the one that makes the deployment `successful`.
    pub(super) async fn wait_stable(&self, job: &str, version: i64) {
        let deadline = Instant::now() + ROLLOUT;
        while !self.version_stable(job, version).await {
            assert!(
                Instant::now() < deadline,
                "timed out after {ROLLOUT:?} waiting until JobVersion {job}-v{version} is \
                 stable: {:#}\ndeployment: {:#}",
                self.object("jobversions", &format!("{job}-v{version}"))
                    .await
                    .unwrap_or_default()["status"],
                self.object("deployments", &format!("{job}-v{version}"))
                    .await
                    .unwrap_or_default()["status"],
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The job's version (`metadata.generation` − 1), or −1 when it cannot be read.
    pub(super) async fn job_version(&self, job: &str) -> i64 {
        self.object("jobs", job)
            .await
            .and_then(|j| j.pointer("/metadata/generation").and_then(Value::as_i64))
            .map_or(-1, |g| g - 1)
    }

    /// Writes `job` as YAML to `file` in the sandbox dir.
    pub(super) fn write(&self, file: &str, job: &Value) -> PathBuf {
        self.server.write_file(file, &to_yaml(job))
    }

    /// Runs the `caravan` CLI against this server.
    #[track_caller]
    pub(super) fn caravan(&self, args: &[&str]) -> Output {
        self.server.caravan(args)
    }

    /// `caravan job run --detach -f <file>` of `job`, which must succeed.
    #[track_caller]
    pub(super) fn submit(&self, file: &str, job: &Value) {
        let path = self.write(file, job);
        self.caravan(&["job", "run", "--detach", "-f", path.to_str().unwrap()])
            .assert_success();
    }

    /// The lines `caravan logs` prints for `alloc`'s task.
    pub(super) fn logs(&self, alloc: &str) -> String {
        let out = self.caravan(&["logs", alloc]);
        out.assert_success();
        out.stdout
    }
}
