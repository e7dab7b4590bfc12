//! The agent's local state in redb (`<data>/client/state.redb`): every allocation it runs, the
//! job it runs it from, the health it decided for it within a deployment, and per task the driver
//! handle and the last reported state. A restarted agent reads it back to re-attach to its tasks
//! instead of restarting them, and to never decide an allocation's health twice.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use caravan_schemas::allocation::{AllocDeploymentStatus, TaskState};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const ALLOCS: TableDefinition<&str, &[u8]> = TableDefinition::new("allocs");
const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
/// Per allocation uid, what tearing its network down needs (see `crate::network`).
const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");

/// An allocation as the agent keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalAlloc {
    /// The Allocation object as last seen.
    pub alloc: Value,
    /// The Job object the allocation's tasks come from.
    pub job: Value,
    /// The health this agent decided for the allocation, once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<LocalHealth>,
}

/// The health an agent decided for an allocation within one deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalHealth {
    /// The deployment the decision is for (the allocation's `spec.deploymentName` then).
    pub deployment: String,
    /// What was decided, as written to `status.deploymentStatus`.
    pub status: AllocDeploymentStatus,
}

/// A task as the agent keeps it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalTask {
    /// The driver's handle state of the running task (see `TaskHandle::state`).
    #[serde(default)]
    pub handle: Option<Value>,
    /// The task's state as last reported.
    #[serde(default)]
    pub state: TaskState,
}

/// An allocation read back from the state: its uid, itself and its tasks by name.
pub type SavedAlloc = (String, LocalAlloc, Vec<(String, LocalTask)>);

/// Handle on the state database; cheap to clone.
#[derive(Clone)]
pub struct LocalState {
    db: Arc<Database>,
}

impl std::fmt::Debug for LocalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalState")
    }
}

fn task_key(alloc_id: &str, task: &str) -> String {
    format!("{alloc_id}/{task}")
}

impl LocalState {
    /// Opens (or creates) the database at `path`, readable by the agent's user only (0600: it
    /// holds the jobs, environments included).
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        make_private(path)
            .with_context(|| format!("failed to protect the agent state {}", path.display()))?;
        let db = Database::create(path)
            .with_context(|| format!("failed to open the agent state {}", path.display()))?;
        let txn = db.begin_write()?;
        txn.open_table(ALLOCS)?;
        txn.open_table(TASKS)?;
        txn.open_table(NETWORKS)?;
        txn.commit()?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Every allocation with its tasks.
    pub fn load(&self) -> anyhow::Result<Vec<SavedAlloc>> {
        let txn = self.db.begin_read()?;
        let allocs = txn.open_table(ALLOCS)?;
        let tasks = txn.open_table(TASKS)?;
        let mut out = Vec::new();
        for entry in allocs.iter()? {
            let (key, value) = entry?;
            let id = key.value().to_string();
            let alloc: LocalAlloc = match serde_json::from_slice(value.value()) {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(alloc = %id, error = %e, "skipping unreadable local allocation");
                    continue;
                }
            };
            let prefix = format!("{id}/");
            let mut local_tasks = Vec::new();
            for entry in tasks.range(prefix.as_str()..)? {
                let (key, value) = entry?;
                let Some(task) = key.value().strip_prefix(&prefix) else {
                    break;
                };
                if let Ok(t) = serde_json::from_slice::<LocalTask>(value.value()) {
                    local_tasks.push((task.to_string(), t));
                }
            }
            out.push((id, alloc, local_tasks));
        }
        Ok(out)
    }

    /// One task as saved, if it was.
    pub fn task(&self, alloc_id: &str, task: &str) -> anyhow::Result<Option<LocalTask>> {
        let txn = self.db.begin_read()?;
        let tasks = txn.open_table(TASKS)?;
        let Some(value) = tasks.get(task_key(alloc_id, task).as_str())? else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_slice(value.value())?))
    }

    /// Saves an allocation (durably, before returning).
    pub fn put_alloc(&self, id: &str, alloc: &LocalAlloc) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(alloc)?;
        let txn = self.db.begin_write()?;
        txn.open_table(ALLOCS)?.insert(id, bytes.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Records the health decided for a saved allocation (durably, before returning); nothing
    /// for an allocation that is not saved.
    pub fn put_health(&self, id: &str, health: &LocalHealth) -> anyhow::Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut allocs = txn.open_table(ALLOCS)?;
            let saved = match allocs.get(id)? {
                Some(value) => serde_json::from_slice::<LocalAlloc>(value.value())?,
                None => return Ok(()),
            };
            let bytes = serde_json::to_vec(&LocalAlloc {
                health: Some(health.clone()),
                ..saved
            })?;
            allocs.insert(id, bytes.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Saves a task (durably, before returning).
    pub fn put_task(&self, alloc_id: &str, task: &str, state: &LocalTask) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(state)?;
        let txn = self.db.begin_write()?;
        txn.open_table(TASKS)?
            .insert(task_key(alloc_id, task).as_str(), bytes.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Saves what tearing an allocation's network down needs (durably, before returning).
    pub fn put_network(&self, alloc_id: &str, network: &Value) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(network)?;
        let txn = self.db.begin_write()?;
        txn.open_table(NETWORKS)?
            .insert(alloc_id, bytes.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Every saved network, by allocation uid (unreadable ones as `Null`).
    pub fn networks(&self) -> anyhow::Result<Vec<(String, Value)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(NETWORKS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let network = serde_json::from_slice(value.value()).unwrap_or(Value::Null);
            out.push((key.value().to_string(), network));
        }
        Ok(out)
    }

    /// The saved network of an allocation.
    pub fn network(&self, alloc_id: &str) -> anyhow::Result<Option<Value>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(NETWORKS)?;
        let Some(value) = table.get(alloc_id)? else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_slice(value.value())?))
    }

    /// Forgets an allocation's network (after it was torn down).
    pub fn delete_network(&self, alloc_id: &str) -> anyhow::Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(NETWORKS)?.remove(alloc_id)?;
        txn.commit()?;
        Ok(())
    }

    /// Forgets an allocation and its tasks.
    pub fn delete_alloc(&self, id: &str) -> anyhow::Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(ALLOCS)?.remove(id)?;
        {
            let mut tasks = txn.open_table(TASKS)?;
            let start = format!("{id}/");
            let end = format!("{id}0"); // '0' follows '/' in ASCII
            tasks.retain_in(start.as_str()..end.as_str(), |_, _| false)?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// Creates `path` empty with mode 0600 when it does not exist (redb initialises an empty file),
/// and sets 0600 on one an earlier agent created.
fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client/state.redb");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        drop(LocalState::open(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        // A database an earlier agent left readable is closed down too, and still opens.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let state = LocalState::open(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        state.put_task("u1", "web", &LocalTask::default()).unwrap();
        assert!(state.task("u1", "web").unwrap().is_some());
    }

    fn health() -> LocalHealth {
        LocalHealth {
            deployment: "j-v1".into(),
            status: AllocDeploymentStatus {
                healthy: Some(true),
                canary: true,
                timestamp: Some("2027-01-15T08:00:00.000Z".into()),
            },
        }
    }

    #[test]
    fn allocations_and_tasks_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client/state.redb");
        {
            let state = LocalState::open(&path).unwrap();
            let alloc = LocalAlloc {
                alloc: serde_json::json!({"metadata": {"name": "a1"}}),
                job: serde_json::json!({"metadata": {"name": "j"}}),
                health: None,
            };
            state.put_alloc("u1", &alloc).unwrap();
            state.put_alloc("u2", &alloc).unwrap();
            state.put_health("u1", &health()).unwrap();
            state.put_health("u3", &health()).unwrap();
            let task = LocalTask {
                handle: Some(serde_json::json!({"pid": 42})),
                ..Default::default()
            };
            state.put_task("u1", "web", &task).unwrap();
            state.put_task("u1", "sidecar", &task).unwrap();
            state.put_task("u2", "web", &task).unwrap();
            state.delete_alloc("u2").unwrap();
            state
                .put_network("u1", &serde_json::json!({"netns": "/run/x"}))
                .unwrap();
            state.put_network("u2", &serde_json::json!({})).unwrap();
            state.delete_network("u2").unwrap();
        }
        let state = LocalState::open(&path).unwrap();
        let loaded = state.load().unwrap();
        assert_eq!(loaded.len(), 1);
        let (id, alloc, tasks) = &loaded[0];
        assert_eq!(id, "u1");
        assert_eq!(alloc.health, Some(health()));
        assert_eq!(alloc.job["metadata"]["name"], "j", "kept beside the health");
        let names: Vec<_> = tasks.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["sidecar", "web"]);
        assert_eq!(tasks[0].1.handle, Some(serde_json::json!({"pid": 42})));
        assert_eq!(state.task("u1", "web").unwrap(), Some(tasks[1].1.clone()));
        assert_eq!(
            state.task("u2", "web").unwrap(),
            None,
            "deleted with its allocation"
        );
        let networks = state.networks().unwrap();
        assert_eq!(networks.len(), 1);
        assert_eq!(networks[0].0, "u1");
        assert_eq!(
            state.network("u1").unwrap(),
            Some(serde_json::json!({"netns": "/run/x"}))
        );
        assert_eq!(state.network("u2").unwrap(), None);
    }
}
