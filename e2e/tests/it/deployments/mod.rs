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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use caravan_e2e::Sandbox;
use caravan_e2e::cluster::field;
use caravan_e2e::command::Output;
use caravan_e2e::fixtures::to_yaml;
use caravan_e2e::http::{WatchStream, collection_path, object_path};
use serde_json::{Value, json};

mod canary;
mod failover;
mod failure;
mod history;
mod rolling;

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

// ----- the ordered watch of a rollout -----

/// Follows the allocations of one job through the ordered watch stream, from a list taken
/// before an update to version `new_version`, and keeps the extremes of what the update
/// promises over every committed state (events sharing a resourceVersion were applied
/// together in one Raft entry, so a state is checked only once the whole entry is in):
///
/// - new-version allocations placed as replacements and not yet healthy
///   (`status.deploymentStatus.healthy != true`) while wanted and not finished: at most
///   `maxParallel`;
/// - allocations serving (running and wanted: old-version ones, ones updated in place to the
///   new version while their health is judged again, and new ones once healthy): at least
///   `count − maxParallel`;
/// - new-version allocations wanted and not finished, and old-version ones running: for
///   canaries before promotion.
pub(super) struct Rollout {
    job: String,
    new_version: i64,
    watch: WatchStream,
    allocs: BTreeMap<String, Value>,
    /// The resourceVersion of the entry whose events are being applied.
    entry: Option<String>,
    pub(super) max_new_unhealthy: usize,
    pub(super) min_serving: usize,
    /// Allocations updated in place to a newer version (seen at an older one before): not
    /// replacements, they keep serving while their health is judged again.
    in_place: std::collections::BTreeSet<String>,
    pub(super) max_new_live: usize,
    pub(super) min_old_running: usize,
    /// The states at which the extremes were reached, for failure messages.
    at_max_new_unhealthy: String,
    at_min_serving: String,
    states: usize,
}

impl Rollout {
    /// Lists the allocations of `job` and opens the watch from that list.
    pub(super) async fn open(api: &Api<'_>, job: &str, new_version: i64) -> Rollout {
        let (items, rv) = api
            .list_of_job("allocations", job)
            .await
            .expect("the allocation list answered");
        let url = api.server.url(&format!(
            "{}?watch=1&fieldSelector=spec.jobName={job}&resourceVersion={rv}",
            collection_path("default", "allocations")
        ));
        let watch = WatchStream::open(api.http, &url)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let mut rollout = Rollout {
            job: job.to_owned(),
            new_version,
            watch,
            allocs: items
                .into_iter()
                .map(|a| (field(&a, "/metadata/name").to_owned(), a))
                .collect(),
            entry: None,
            max_new_unhealthy: 0,
            min_serving: usize::MAX,
            in_place: Default::default(),
            max_new_live: 0,
            min_old_running: usize::MAX,
            at_max_new_unhealthy: String::new(),
            at_min_serving: String::new(),
            states: 0,
        };
        rollout.check();
        rollout
    }

    /// Forgets the extremes seen so far: the next ones start from the current state, which
    /// must be complete (right after [`Rollout::catch_up`]).
    pub(super) fn reset(&mut self) {
        self.max_new_unhealthy = 0;
        self.min_serving = usize::MAX;
        self.max_new_live = 0;
        self.min_old_running = usize::MAX;
        self.check();
    }

    /// The current allocations.
    pub(super) fn allocs(&self) -> Vec<&Value> {
        self.allocs.values().collect()
    }

    fn check(&mut self) {
        self.states += 1;
        let in_place = |a: &&Value| self.in_place.contains(field(a, "/metadata/name"));
        let new = |a: &&Value| version(a) == self.new_version;
        let old = |a: &&Value| version(a) < self.new_version;
        let all = || self.allocs.values();
        let new_unhealthy = all()
            .filter(new)
            .filter(|a| !in_place(a))
            .filter(|a| live(a) && healthy(a) != Some(true))
            .count();
        let serving = all()
            .filter(|a| running(a) && (old(a) || in_place(a) || healthy(a) == Some(true)))
            .count();
        let new_live = all().filter(new).filter(|a| live(a)).count();
        let old_running = all().filter(old).filter(|a| running(a)).count();
        if new_unhealthy > self.max_new_unhealthy {
            self.max_new_unhealthy = new_unhealthy;
            self.at_max_new_unhealthy = summary(self.allocs.values());
        }
        if serving < self.min_serving {
            self.min_serving = serving;
            self.at_min_serving = summary(self.allocs.values());
        }
        self.max_new_live = self.max_new_live.max(new_live);
        self.min_old_running = self.min_old_running.min(old_running);
    }

    fn apply(&mut self, event: &Value) {
        let kind = event["type"].as_str().unwrap_or_default();
        let object = &event["object"];
        match kind {
            "ADDED" | "MODIFIED" | "DELETED" => {}
            "ERROR" => panic!("the allocation watch of {} failed: {event}", self.job),
            _ => return,
        }
        let rv = field(object, "/metadata/resourceVersion").to_owned();
        if self.entry.as_ref() != Some(&rv) {
            // The previous entry is complete: check the state it left.
            self.check();
            self.entry = Some(rv);
        }
        let name = field(object, "/metadata/name").to_owned();
        if let Some(before) = self.allocs.get(&name)
            && version(before) < version(object)
        {
            self.in_place.insert(name.clone());
        }
        if kind == "DELETED" {
            self.allocs.remove(&name);
        } else {
            self.allocs.insert(name, object.clone());
        }
    }

    /// Applies watch events until `cond` holds for the allocations. The state it holds for
    /// may be part of an entry: it is checked once the entry is known complete.
    pub(super) async fn follow_until(&mut self, what: &str, cond: impl Fn(&[&Value]) -> bool) {
        let deadline = Instant::now() + ROLLOUT;
        loop {
            if cond(&self.allocs()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {ROLLOUT:?} waiting until {what}; allocations of {} as \
                 watched:\n{}",
                self.job,
                summary(self.allocs.values())
            );
            match self.watch.next_event(Duration::from_millis(250)).await {
                Ok(Some(event)) => self.apply(&event),
                Ok(None) => panic!("the allocation watch of {} ended", self.job),
                Err(e) if e.to_string().contains("no watch event within") => {}
                Err(e) => panic!("the allocation watch of {} broke: {e:#}", self.job),
            }
        }
    }

    /// Applies watch events until every allocation the server lists now is seen at its listed
    /// resourceVersion or later, and checks that state: every entry seen is then complete (a
    /// list reflects whole entries), and the extremes cover every state up to now.
    pub(super) async fn catch_up(&mut self, api: &Api<'_>) {
        let (items, _) = api
            .list_of_job("allocations", &self.job)
            .await
            .expect("the allocation list answered");
        let listed: BTreeMap<String, u64> = items
            .iter()
            .map(|a| (field(a, "/metadata/name").to_owned(), rv_number(a)))
            .collect();
        self.follow_until("the watch has caught up with a list", |allocs| {
            listed.iter().all(|(name, rv)| {
                allocs
                    .iter()
                    .any(|a| field(a, "/metadata/name") == name && rv_number(a) >= *rv)
            })
        })
        .await;
        self.check();
    }

    /// Panics unless, over every state since the last reset, at most `max_parallel`
    /// new-version allocations were not yet healthy and at least `min_serving` served.
    #[track_caller]
    pub(super) fn assert_paced(&self, max_parallel: usize, min_serving: usize) {
        assert!(
            self.max_new_unhealthy <= max_parallel,
            "{} new-version allocations were not yet healthy at once (maxParallel \
             {max_parallel}), over {} states; then:\n{}",
            self.max_new_unhealthy,
            self.states,
            self.at_max_new_unhealthy
        );
        assert!(
            self.min_serving >= min_serving,
            "only {} allocations were serving at one point (at least {min_serving} should), \
             over {} states; then:\n{}",
            self.min_serving,
            self.states,
            self.at_min_serving
        );
    }
}
