//! The allocation manager: watches the node's own allocations
//! (`fieldSelector=spec.nodeName=<node>`), starts an allocation runner for each new one with
//! the job at the version the allocation runs, passes changes (a `desiredStatus` of stop, an
//! update in place into a new job version and deployment, deployment health set) to its runner,
//! and forgets an allocation once the servers deleted it. At start it re-creates the runners of
//! the allocations in the local state, which re-attach to their running tasks. Every runner is
//! opened in the node's service registry before it runs, so that the registrations a restored
//! one made before are kept until it says what it wants.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use caravan_runtime::watcher::{Event, watcher};
use caravan_runtime::{Client, ClientError, ListQuery};
use caravan_schemas::allocation::{AllocDeploymentStatus, ClientStatus, DesiredStatus};
use caravan_schemas::{Allocation, Job, JobVersion, Kind, NameMap, job_version};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::runner::alloc::{AllocRunner, Drivers};
use crate::runner::spec::SpecSettings;
use crate::runner::status::StatusBatcher;
use crate::services::{AllocKey, Services};
use crate::state::{LocalAlloc, LocalHealth, LocalState, LocalTask};

/// Versions of a job kept in the cache.
const CACHED_VERSIONS: usize = 4;

/// Jobs by namespace and name, then version, as last read.
type JobCache = HashMap<(String, String), BTreeMap<i64, Arc<Job>>>;

struct Entry {
    alloc: watch::Sender<Allocation>,
    /// The job at the version the allocation runs.
    job: watch::Sender<Arc<Job>>,
    runner: JoinHandle<()>,
}

/// Runs the allocations of one node.
#[derive(Clone)]
pub struct AllocManager<C: Client> {
    client: C,
    node: String,
    drivers: Drivers,
    settings: SpecSettings,
    max_kill_timeout: Duration,
    local: LocalState,
    status: StatusBatcher,
    services: Services,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    jobs: Arc<Mutex<JobCache>>,
}

fn uid_of(value: &Value) -> Option<String> {
    value["metadata"]["uid"].as_str().map(str::to_string)
}

impl<C: Client> AllocManager<C> {
    pub fn new(
        client: C,
        node: String,
        drivers: Drivers,
        settings: SpecSettings,
        max_kill_timeout: Duration,
        local: LocalState,
        status: StatusBatcher,
    ) -> Self {
        Self {
            client,
            node,
            drivers,
            settings,
            max_kill_timeout,
            local,
            status,
            services: Services::new(),
            entries: Arc::default(),
            jobs: Arc::default(),
        }
    }

    /// The node's service registrations, which the allocations' runners keep.
    pub fn services(&self) -> Services {
        self.services.clone()
    }

    /// Re-creates the runners of the allocations kept in the local state.
    pub async fn restore(&self) -> anyhow::Result<usize> {
        let saved = self.local.load()?;
        let count = saved.len();
        // Networks whose allocation is no longer kept (its runner ended, or was forgotten,
        // while no agent watched) go first.
        let kept = saved.iter().map(|(id, _, _)| id.clone()).collect();
        crate::network::release_gone(&self.settings.network, &self.local, &kept).await;
        for (id, local, tasks) in saved {
            if let Err(e) = crate::paths::alloc_uid(&id) {
                // Nothing was ever run or created for it: only the record goes.
                tracing::warn!(error = %e, "forgetting a local allocation with an unsafe uid");
                let _ = self.local.delete_alloc(&id);
                continue;
            }
            let (Ok(alloc), Ok(job)) = (
                serde_json::from_value::<Allocation>(local.alloc.clone()),
                serde_json::from_value::<Job>(local.job.clone()),
            ) else {
                tracing::warn!(alloc = %id, "forgetting an unreadable local allocation");
                let _ = self.local.delete_alloc(&id);
                continue;
            };
            let recovered: BTreeMap<String, LocalTask> = tasks.into_iter().collect();
            tracing::info!(alloc = %alloc.metadata.name(), tasks = recovered.len(), "re-attaching to a local allocation");
            self.spawn(id, alloc, Arc::new(job), recovered, local.health)
                .await;
        }
        Ok(count)
    }

    /// Watches the node's allocations forever.
    pub async fn run(self) {
        let query = ListQuery {
            field_selector: Some(format!("spec.nodeName={}", self.node)),
            ..ListQuery::default()
        };
        let mut events = Box::pin(watcher(self.client.clone(), Kind::Allocation, None, query));
        let mut listed: HashSet<String> = HashSet::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => listed.clear(),
                Ok(Event::InitApply(obj)) => {
                    if let Some(uid) = uid_of(&obj) {
                        listed.insert(uid);
                    }
                    self.apply(obj).await;
                }
                Ok(Event::InitDone) => {
                    let gone: Vec<String> = {
                        let entries = self.entries.lock().await;
                        entries
                            .keys()
                            .filter(|k| !listed.contains(*k))
                            .cloned()
                            .collect()
                    };
                    for uid in gone {
                        self.forget(&uid).await;
                    }
                }
                Ok(Event::Apply(obj)) => self.apply(obj).await,
                Ok(Event::Progress(_)) => {}
                Ok(Event::Delete(obj)) => {
                    if let Some(uid) = uid_of(&obj) {
                        self.forget(&uid).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "allocation watch failed; retrying"),
            }
        }
    }

    /// Stops every allocation and waits for their tasks to be dead.
    pub async fn stop_all(&self) {
        let entries: Vec<Entry> = self.entries.lock().await.drain().map(|(_, e)| e).collect();
        for entry in entries {
            drop(entry.alloc);
            let _ = entry.runner.await;
        }
    }

    async fn apply(&self, obj: Value) {
        let Some(uid) = uid_of(&obj) else { return };
        let alloc: Allocation = match serde_json::from_value(obj) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(alloc = %uid, error = %e, "ignoring an unreadable allocation");
                return;
            }
        };

        let known = {
            let entries = self.entries.lock().await;
            entries.get(&uid).map(|entry| {
                let current = entry.alloc.borrow();
                let changed = current.spec != alloc.spec
                    || deployment_status(&current) != deployment_status(&alloc);
                (changed, current.spec.job_version != alloc.spec.job_version)
            })
        };
        if let Some((changed, new_version)) = known {
            if changed {
                self.update_runner(&uid, alloc, new_version).await;
            }
            return;
        }
        let terminal = alloc.status.as_ref().is_some_and(|s| {
            matches!(
                s.client_status,
                ClientStatus::Complete | ClientStatus::Failed | ClientStatus::Lost
            )
        });
        let desired = alloc.spec.desired_status.unwrap_or_default();
        if terminal || desired != DesiredStatus::Run {
            return;
        }
        if let Err(e) = crate::paths::alloc_uid(&uid) {
            // Its directory would be `<alloc root>/<uid>`: never run (nor later remove) it.
            tracing::error!(error = %e, "refusing an allocation with an unsafe uid");
            self.fail(&alloc, format!("invalid allocation: {e}"));
            return;
        }
        let job = match self.job_for(&alloc).await {
            Ok(job) => job,
            Err(message) => {
                self.fail(&alloc, message);
                return;
            }
        };
        let local = LocalAlloc {
            alloc: serde_json::to_value(&alloc).unwrap_or(Value::Null),
            job: serde_json::to_value(job.as_ref()).unwrap_or(Value::Null),
            health: None,
        };
        if let Err(e) = self.local.put_alloc(&uid, &local) {
            tracing::error!(alloc = %uid, error = %e, "failed to save the allocation locally");
        }
        self.spawn(uid, alloc, job, BTreeMap::new(), None).await;
    }

    /// Passes a changed Allocation to its runner; an update in place into another job version
    /// passes that version's job first.
    async fn update_runner(&self, uid: &str, alloc: Allocation, new_version: bool) {
        let job = if new_version {
            match self.job_for(&alloc).await {
                Ok(job) => Some(job),
                Err(message) => {
                    tracing::warn!(alloc = %alloc.metadata.name(), error = %message, "the job of an updated allocation is unknown; keeping the one it runs");
                    None
                }
            }
        } else {
            None
        };
        let entries = self.entries.lock().await;
        let Some(entry) = entries.get(uid) else {
            return;
        };
        if let Some(job) = job {
            let _ = entry.job.send(job);
        }
        let _ = entry.alloc.send(alloc);
    }

    /// Reports the allocation failed without running anything.
    fn fail(&self, alloc: &Allocation, message: String) {
        let mut status = crate::runner::status::alloc_status(&NameMap::new());
        status.client_status = ClientStatus::Failed;
        status.client_description = Some(message);
        self.status
            .update(alloc.metadata.namespace(), alloc.metadata.name(), status);
    }

    /// The job at the version the allocation runs (`spec.jobVersion`), from a small cache or
    /// the servers: the current Job, or the JobVersion `<job>-v<N>` when the job moved on since.
    /// The current job when that version is not found.
    async fn job_for(&self, alloc: &Allocation) -> Result<Arc<Job>, String> {
        let namespace = alloc.metadata.namespace();
        let name = &alloc.spec.job_name;
        let wanted = alloc.spec.job_version;
        let key = (namespace.to_string(), name.clone());
        if let Some(job) = self
            .jobs
            .lock()
            .await
            .get(&key)
            .and_then(|versions| versions.get(&wanted))
        {
            return Ok(job.clone());
        }
        let value = self
            .get_retrying(Kind::Job, namespace, name)
            .await
            .map_err(|e| format!("failed to read job {name}: {e}"))?
            .ok_or_else(|| format!("job {name} not found"))?;
        let current: Job =
            serde_json::from_value(value).map_err(|e| format!("unreadable job {name}: {e}"))?;
        let current = Arc::new(current);
        let job = if current.version() == wanted {
            current
        } else {
            match self.job_at_version(&current, wanted).await {
                Some(job) => Arc::new(job),
                None => {
                    tracing::debug!(job = %name, version = wanted, "job version not found; using the current job");
                    current
                }
            }
        };
        let mut jobs = self.jobs.lock().await;
        let versions = jobs.entry(key).or_default();
        versions.insert(job.version(), job.clone());
        while versions.len() > CACHED_VERSIONS {
            versions.pop_first();
        }
        Ok(job)
    }

    /// Version `version` of `current`'s job, from its JobVersion; `None` when there is none
    /// (or it belongs to an earlier job of the same name, or the servers refuse to read it).
    async fn job_at_version(&self, current: &Job, version: i64) -> Option<Job> {
        let namespace = current.metadata.namespace();
        let name = job_version::name_for(current.metadata.name(), version);
        let value = match self.get_retrying(Kind::JobVersion, namespace, &name).await {
            Ok(value) => value?,
            Err(e) => {
                tracing::warn!(version = %name, error = %e, "failed to read a job version");
                return None;
            }
        };
        let stored: JobVersion = match serde_json::from_value(value) {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(version = %name, error = %e, "ignoring an unreadable job version");
                return None;
            }
        };
        let uid = current.metadata.uid.as_deref().unwrap_or_default();
        if !stored.spec.job_uid.is_empty() && !uid.is_empty() && stored.spec.job_uid != uid {
            return None;
        }
        let mut job = current.clone();
        job.metadata.generation = Some(version + 1);
        job.spec = stored.spec.job;
        job.status = None;
        Some(job)
    }

    /// An object from the servers, retried with a backoff while they are unavailable; `None`
    /// when not found.
    async fn get_retrying(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, ClientError> {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.client.get(kind, namespace, name).await {
                Ok(value) => return Ok(Some(value)),
                Err(ClientError::NotFound) => return Ok(None),
                Err(e @ ClientError::Unavailable(_)) => {
                    tracing::warn!(%kind, name = %name, error = %e, "failed to read; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn spawn(
        &self,
        uid: String,
        alloc: Allocation,
        job: Arc<Job>,
        recovered: BTreeMap<String, LocalTask>,
        health: Option<LocalHealth>,
    ) {
        let key = alloc_key(&alloc);
        self.services.open_alloc(key);
        let (tx, rx) = watch::channel(alloc);
        let (job_tx, job_rx) = watch::channel(job.clone());
        let runner = AllocRunner {
            alloc_id: uid.clone(),
            alloc: rx,
            job: job.as_ref().clone(),
            running_job: job_rx,
            drivers: self.drivers.clone(),
            settings: self.settings.clone(),
            max_kill_timeout: self.max_kill_timeout,
            local: self.local.clone(),
            recovered,
            health,
            status: self.status.clone(),
            services: self.services.clone(),
        };
        let handle = tokio::spawn(async move {
            runner.run().await;
        });
        self.entries.lock().await.insert(
            uid,
            Entry {
                alloc: tx,
                job: job_tx,
                runner: handle,
            },
        );
    }

    /// The servers deleted the allocation: stop what still runs, then drop its local state and
    /// directory.
    async fn forget(&self, uid: &str) {
        let Some(entry) = self.entries.lock().await.remove(uid) else {
            return;
        };
        let key = alloc_key(&entry.alloc.borrow());
        drop(entry.alloc);
        let local = self.local.clone();
        let services = self.services.clone();
        // Only runners of safe uids exist; checked again before anything is removed.
        let dir = crate::paths::alloc_dir(&self.settings.alloc_root, uid);
        let uid = uid.to_string();
        tokio::spawn(async move {
            let _ = entry.runner.await;
            // Done by the runner unless it panicked.
            services.close_alloc(&key);
            if let Err(e) = local.delete_alloc(&uid) {
                tracing::warn!(alloc = %uid, error = %e, "failed to forget the allocation");
            }
            let dir = match dir {
                Ok(dir) => dir,
                Err(e) => {
                    tracing::error!(error = %e, "not removing the directory of an unsafe uid");
                    return;
                }
            };
            remove_alloc_cgroups(&uid);
            if let Err(e) = tokio::fs::remove_dir_all(&dir).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(alloc = %uid, error = %e, "failed to remove the allocation directory");
            }
        });
    }
}

/// The allocation's key in the service registry.
fn alloc_key(alloc: &Allocation) -> AllocKey {
    AllocKey {
        namespace: alloc.metadata.namespace().to_string(),
        name: alloc.metadata.name().to_string(),
    }
}

/// The deployment health the Allocation carries.
fn deployment_status(alloc: &Allocation) -> Option<&AllocDeploymentStatus> {
    alloc.status.as_ref()?.deployment_status.as_ref()
}

/// Removes the allocation's (empty) parent cgroups, `caravan/<uid>` under every hierarchy;
/// deleting a container removes only its own leaf. `uid` has passed [`crate::paths::alloc_uid`].
fn remove_alloc_cgroups(uid: &str) {
    let root = std::path::Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![root.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(root) {
        hierarchies.extend(entries.flatten().map(|e| e.path()));
    }
    for hierarchy in hierarchies {
        let _ = std::fs::remove_dir(hierarchy.join("caravan").join(uid));
    }
}

#[cfg(test)]
mod tests;
