//! The allocation manager: watches the node's own allocations
//! (`fieldSelector=spec.nodeName=<node>`), starts an allocation runner for each new one, passes
//! changes (a `desiredStatus` of stop) to its runner, and forgets an allocation once the
//! servers deleted it. At start it re-creates the runners of the allocations in the local
//! state, which re-attach to their running tasks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use caravan_runtime::watcher::{Event, watcher};
use caravan_runtime::{Client, ClientError, ListQuery};
use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::{Allocation, Job, Kind, NameMap};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::runner::alloc::{AllocRunner, Drivers};
use crate::runner::spec::SpecSettings;
use crate::runner::status::StatusBatcher;
use crate::state::{LocalAlloc, LocalState, LocalTask};

/// Jobs by namespace and name, as last read.
type JobCache = HashMap<(String, String), Arc<Job>>;

struct Entry {
    alloc: watch::Sender<Allocation>,
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
            entries: Arc::default(),
            jobs: Arc::default(),
        }
    }

    /// Re-creates the runners of the allocations kept in the local state.
    pub async fn restore(&self) -> anyhow::Result<usize> {
        let saved = self.local.load()?;
        let count = saved.len();
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
            self.spawn(id, alloc, Arc::new(job), recovered).await;
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

        {
            let entries = self.entries.lock().await;
            if let Some(entry) = entries.get(&uid) {
                let changed = entry.alloc.borrow().spec != alloc.spec;
                if changed {
                    let _ = entry.alloc.send(alloc);
                }
                return;
            }
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
        };
        if let Err(e) = self.local.put_alloc(&uid, &local) {
            tracing::error!(alloc = %uid, error = %e, "failed to save the allocation locally");
        }
        self.spawn(uid, alloc, job, BTreeMap::new()).await;
    }

    /// Reports the allocation failed without running anything.
    fn fail(&self, alloc: &Allocation, message: String) {
        let mut status = crate::runner::status::alloc_status(&NameMap::new());
        status.client_status = ClientStatus::Failed;
        status.client_description = Some(message);
        self.status
            .update(alloc.metadata.namespace(), alloc.metadata.name(), status);
    }

    /// The job of an allocation, from a small cache or the servers.
    async fn job_for(&self, alloc: &Allocation) -> Result<Arc<Job>, String> {
        let namespace = alloc.metadata.namespace().to_string();
        let key = (namespace.clone(), alloc.spec.job_name.clone());
        if let Some(job) = self.jobs.lock().await.get(&key)
            && job.version() >= alloc.spec.job_version
        {
            return Ok(job.clone());
        }
        let mut delay = Duration::from_millis(100);
        loop {
            match self
                .client
                .get(Kind::Job, &namespace, &alloc.spec.job_name)
                .await
            {
                Ok(value) => {
                    let job: Job = serde_json::from_value(value)
                        .map_err(|e| format!("unreadable job {}: {e}", alloc.spec.job_name))?;
                    let job = Arc::new(job);
                    self.jobs.lock().await.insert(key, job.clone());
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

    async fn spawn(
        &self,
        uid: String,
        alloc: Allocation,
        job: Arc<Job>,
        recovered: BTreeMap<String, LocalTask>,
    ) {
        let (tx, rx) = watch::channel(alloc);
        let runner = AllocRunner {
            alloc_id: uid.clone(),
            alloc: rx,
            job: job.as_ref().clone(),
            drivers: self.drivers.clone(),
            settings: self.settings.clone(),
            max_kill_timeout: self.max_kill_timeout,
            local: self.local.clone(),
            recovered,
            status: self.status.clone(),
        };
        let handle = tokio::spawn(async move {
            runner.run().await;
        });
        self.entries.lock().await.insert(
            uid,
            Entry {
                alloc: tx,
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
        drop(entry.alloc);
        let local = self.local.clone();
        // Only runners of safe uids exist; checked again before anything is removed.
        let dir = crate::paths::alloc_dir(&self.settings.alloc_root, uid);
        let uid = uid.to_string();
        tokio::spawn(async move {
            let _ = entry.runner.await;
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
