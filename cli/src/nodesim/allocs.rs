//! The allocations of one simulated node, handled as the agent's `AllocManager` handles them
//! (`nodeagent/src/agent/allocs.rs`): watch `fieldSelector=spec.nodeName=<node>` with the
//! controllers' re-listing watcher, start a runner for each new allocation that should run
//! (reading its Job once per version, per node), stop it when `desiredStatus` leaves `run`,
//! and forget it once the servers deleted it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use caravan_nodeagent::driver::Driver;
use caravan_nodeagent::runner::spec::{SpecSettings, restart_policy, task_spec};
use caravan_nodeagent::runner::status::{StatusBatcher, alloc_status};
use caravan_runtime::watcher::{Event, watcher};
use caravan_runtime::{Client as _, ClientError, ListQuery};
use caravan_schemas::allocation::ClientStatus;
use caravan_schemas::{Allocation, Job, Kind, NameMap};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::client::SimClient;
use super::runner::{AllocRun, TaskPlan};
use super::stats::SimStats;

/// Which job version a Job object is: namespace, name, uid and `metadata.generation` (its
/// `resourceVersion` moves with every status update, its generation only with the spec).
type JobKey = (String, String, String, i64);

/// Jobs parsed once per version for the whole simulator, so 5,000 nodes holding the same
/// jobs hold one copy. Every node still reads each job from the servers itself.
#[derive(Debug, Default)]
pub struct JobInterner {
    jobs: Mutex<HashMap<JobKey, Arc<Job>>>,
}

impl JobInterner {
    /// The job in `value`, shared with every node that read the same version.
    pub fn intern(&self, value: Value) -> Result<Arc<Job>, String> {
        let meta = |field: &str| {
            value
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let generation = value
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let key = (meta("namespace"), meta("name"), meta("uid"), generation);
        if let Some(job) = self.lock().get(&key) {
            return Ok(job.clone());
        }
        let job: Job =
            serde_json::from_value(value).map_err(|e| format!("unreadable job {}: {e}", key.1))?;
        Ok(self
            .lock()
            .entry(key)
            .or_insert_with(|| Arc::new(job))
            .clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobKey, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Settings the task specs are built with: no directory is ever created.
fn settings() -> SpecSettings {
    SpecSettings {
        alloc_root: "/nonexistent/caravan-nodesim/alloc".into(),
        pids_limit: 0,
        node: Default::default(),
        network: Default::default(),
    }
}

/// The tasks of `alloc`'s group, or why it cannot run.
pub fn plan_tasks(
    alloc: &Allocation,
    uid: &str,
    job: &Job,
    drivers: &BTreeMap<String, Arc<dyn Driver>>,
) -> Result<Vec<TaskPlan>, String> {
    let group = job
        .spec
        .groups
        .iter()
        .find(|g| g.name == alloc.spec.group)
        .ok_or_else(|| {
            format!(
                "job {} has no group {}",
                alloc.spec.job_name, alloc.spec.group
            )
        })?;
    let settings = settings();
    Ok(group
        .tasks
        .iter()
        .map(|task| {
            let mut spec = task_spec(job, alloc, uid, group, task, &settings);
            // The mock driver reads no environment; dropping it keeps a million tasks small.
            spec.env.clear();
            TaskPlan {
                spec,
                policy: restart_policy(job.spec.job_type(), group, task),
                driver: drivers.get(&task.driver).cloned(),
            }
        })
        .collect())
}

struct Entry {
    stop: watch::Sender<bool>,
    runner: JoinHandle<()>,
}

/// The allocations of one node.
pub struct NodeAllocs {
    client: SimClient,
    node: String,
    drivers: Arc<BTreeMap<String, Arc<dyn Driver>>>,
    status: StatusBatcher,
    interner: Arc<JobInterner>,
    entries: HashMap<String, Entry>,
    jobs: HashMap<(String, String), Arc<Job>>,
}

impl Drop for NodeAllocs {
    fn drop(&mut self) {
        for entry in self.entries.values() {
            entry.runner.abort();
        }
    }
}

fn uid_of(value: &Value) -> Option<String> {
    value["metadata"]["uid"].as_str().map(str::to_string)
}

impl NodeAllocs {
    pub fn new(
        client: SimClient,
        node: String,
        drivers: Arc<BTreeMap<String, Arc<dyn Driver>>>,
        status: StatusBatcher,
        interner: Arc<JobInterner>,
    ) -> NodeAllocs {
        NodeAllocs {
            client,
            node,
            drivers,
            status,
            interner,
            entries: HashMap::new(),
            jobs: HashMap::new(),
        }
    }

    /// Watches the node's allocations forever.
    pub async fn run(mut self) {
        let query = ListQuery {
            field_selector: Some(format!("spec.nodeName={}", self.node)),
            ..ListQuery::default()
        };
        let mut events = Box::pin(watcher(self.client.clone(), Kind::Allocation, None, query));
        let mut listed: HashSet<String> = HashSet::new();
        let mut lists = 0u64;
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => {
                    listed.clear();
                    lists += 1;
                    if lists > 1 {
                        SimStats::inc(&self.client.stats().relists);
                    }
                }
                Ok(Event::InitApply(obj)) => {
                    if let Some(uid) = uid_of(&obj) {
                        listed.insert(uid);
                    }
                    self.apply(obj).await;
                }
                Ok(Event::InitDone) => {
                    if lists == 1 {
                        SimStats::inc(&self.client.stats().watching);
                    }
                    let gone: Vec<String> = self
                        .entries
                        .keys()
                        .filter(|k| !listed.contains(*k))
                        .cloned()
                        .collect();
                    for uid in gone {
                        self.forget(&uid, None);
                    }
                }
                Ok(Event::Apply(obj)) => self.apply(obj).await,
                Ok(Event::Progress(_)) => {}
                Ok(Event::Delete(obj)) => {
                    if let Some(uid) = uid_of(&obj) {
                        self.forget(&uid, obj["metadata"]["name"].as_str());
                    }
                }
                Err(e) => {
                    SimStats::inc(&self.client.stats().watch_errors);
                    tracing::warn!(node = %self.node, error = %e, "allocation watch failed; retrying");
                }
            }
        }
    }

    async fn apply(&mut self, obj: Value) {
        let Some(uid) = uid_of(&obj) else { return };
        let runs = obj
            .pointer("/spec/desiredStatus")
            .and_then(Value::as_str)
            .is_none_or(|d| d == "run");
        if let Some(entry) = self.entries.get(&uid) {
            if !runs {
                entry
                    .stop
                    .send_if_modified(|stop| !std::mem::replace(stop, true));
            }
            return;
        }
        let terminal = matches!(
            obj.pointer("/status/clientStatus").and_then(Value::as_str),
            Some("complete" | "failed" | "lost")
        );
        if terminal || !runs {
            return;
        }
        let alloc: Allocation = match serde_json::from_value(obj) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(alloc = %uid, error = %e, "ignoring an unreadable allocation");
                return;
            }
        };
        let namespace = alloc.metadata.namespace().to_owned();
        let name = alloc.metadata.name().to_owned();
        let planned = match self.job_for(&alloc, &namespace).await {
            Ok(job) => plan_tasks(&alloc, &uid, &job, &self.drivers),
            Err(message) => Err(message),
        };
        let tasks = match planned {
            Ok(tasks) => tasks,
            Err(message) => {
                let mut status = alloc_status(&NameMap::new());
                status.client_status = ClientStatus::Failed;
                status.client_description = Some(message);
                self.status.update(&namespace, &name, status);
                return;
            }
        };
        SimStats::inc(&self.client.stats().allocs_started);
        let (stop, stop_rx) = watch::channel(false);
        let run = AllocRun {
            namespace,
            name,
            tasks,
            stop: stop_rx,
            status: self.status.clone(),
        };
        let runner = tokio::spawn(run.run());
        self.entries.insert(uid, Entry { stop, runner });
    }

    /// The job of an allocation, from this node's cache or the servers.
    async fn job_for(&mut self, alloc: &Allocation, namespace: &str) -> Result<Arc<Job>, String> {
        let key = (namespace.to_string(), alloc.spec.job_name.clone());
        if let Some(job) = self.jobs.get(&key)
            && job.version() >= alloc.spec.job_version
        {
            return Ok(job.clone());
        }
        let mut delay = Duration::from_millis(100);
        loop {
            match self
                .client
                .get(Kind::Job, namespace, &alloc.spec.job_name)
                .await
            {
                Ok(value) => {
                    let job = self.interner.intern(value)?;
                    self.jobs.insert(key, job.clone());
                    return Ok(job);
                }
                Err(ClientError::NotFound) => {
                    return Err(format!("job {} not found", alloc.spec.job_name));
                }
                Err(e) => {
                    tracing::warn!(job = %alloc.spec.job_name, error = %e, "failed to read the job; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// The servers deleted the allocation: its runner stops what still runs and ends.
    fn forget(&mut self, uid: &str, name: Option<&str>) {
        if let Some(entry) = self.entries.remove(uid) {
            drop(entry.stop);
        }
        if let Some(name) = name {
            self.client.forget(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use caravan_nodeagent::driver::mock;
    use serde_json::json;

    use super::*;

    fn job() -> Value {
        json!({
            "apiVersion": "caravan.dev/v1", "kind": "Job",
            "metadata": {"name": "web", "namespace": "default", "uid": "j1", "generation": 1,
                         "resourceVersion": "7"},
            "spec": {"type": "batch", "groups": [{"name": "g", "count": 1, "tasks": [
                {"name": "t", "driver": "mock", "config": {"runFor": "1s"}},
                {"name": "x", "driver": "raw_exec", "config": {"command": "true"}}
            ]}]}
        })
    }

    fn alloc(group: &str) -> Allocation {
        serde_json::from_value(json!({
            "apiVersion": "caravan.dev/v1", "kind": "Allocation",
            "metadata": {"name": "web-g-0-abcdef01", "namespace": "default", "uid": "u1"},
            "spec": {"jobName": "web", "group": group, "nodeName": "sim-00000"}
        }))
        .unwrap()
    }

    #[test]
    fn jobs_are_parsed_once_per_version() {
        let interner = JobInterner::default();
        let a = interner.intern(job()).unwrap();
        let mut status_update = job();
        status_update["metadata"]["resourceVersion"] = json!("9");
        let b = interner.intern(status_update).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "a status update is the same version");
        let mut newer = job();
        newer["metadata"]["generation"] = json!(2);
        assert!(!Arc::ptr_eq(&a, &interner.intern(newer).unwrap()));
        assert!(interner.intern(json!({"spec": 1})).is_err());
    }

    #[test]
    fn tasks_get_the_mock_driver_or_none() {
        let interner = JobInterner::default();
        let job = interner.intern(job()).unwrap();
        let mut drivers: BTreeMap<String, Arc<dyn Driver>> = BTreeMap::new();
        drivers.insert("mock".into(), mock::driver());
        let plans = plan_tasks(&alloc("g"), "u1", &job, &drivers).unwrap();
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0].spec.task_name, "t");
        assert_eq!(plans[0].spec.config["runFor"], "1s");
        assert!(plans[0].spec.env.is_empty());
        assert!(plans[0].driver.is_some());
        assert!(plans[1].driver.is_none(), "no raw_exec on a simulated node");
        assert_eq!(plans[0].policy.attempts, 3, "the batch default");
        let err = plan_tasks(&alloc("nope"), "u1", &job, &drivers).err();
        assert_eq!(err.as_deref(), Some("job web has no group nope"));
    }
}
