//! Allocation status as Nomad derives it from task states, and the batcher that sends the
//! latest status of every changed allocation to the servers through the `status` subresource.
//! A status carries the allocation's deployment health (`deploymentStatus`) once, when the
//! runner decided it: the batcher keeps it through newer statuses and retries until sent.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use caravan_runtime::{Client, ClientError};
use caravan_schemas::allocation::{AllocationStatus, ClientStatus, TaskLifecycleState, TaskState};
use caravan_schemas::{Kind, NameMap};
use futures::StreamExt;
use tokio::sync::Notify;

use super::events;

/// The allocation's client status from its tasks' states (Nomad's `getClientStatus`).
pub fn client_status(tasks: &NameMap<TaskState>) -> (ClientStatus, &'static str) {
    let (mut pending, mut running, mut dead, mut failed) = (false, false, false, false);
    for state in tasks.values() {
        match state.state {
            TaskLifecycleState::Running => running = true,
            TaskLifecycleState::Pending => pending = true,
            TaskLifecycleState::Dead if state.failed => failed = true,
            TaskLifecycleState::Dead => dead = true,
        }
    }
    if failed {
        (ClientStatus::Failed, "Failed tasks")
    } else if running {
        (ClientStatus::Running, "Tasks are running")
    } else if pending {
        (ClientStatus::Pending, "No tasks have started")
    } else if dead {
        (ClientStatus::Complete, "All tasks have completed")
    } else {
        (ClientStatus::Pending, "No tasks")
    }
}

/// The status an allocation reports for these task states.
pub fn alloc_status(tasks: &NameMap<TaskState>) -> AllocationStatus {
    let (status, description) = client_status(tasks);
    AllocationStatus {
        client_status: status,
        client_description: Some(description.to_string()),
        task_states: tasks.clone(),
        modify_time: Some(events::timestamp(SystemTime::now())),
        ..Default::default()
    }
}

type Key = (String, String);

#[derive(Default)]
struct Pending {
    latest: HashMap<Key, AllocationStatus>,
}

impl Pending {
    /// Queues `status`, `newer` than a queued one or (a status to retry) older; the queued
    /// status wins unless `newer`, and a deployment health either carries is kept.
    fn queue(&mut self, key: Key, mut status: AllocationStatus, newer: bool) {
        match self.latest.entry(key) {
            Entry::Vacant(entry) => {
                entry.insert(status);
            }
            Entry::Occupied(mut entry) => {
                let queued = entry.get_mut();
                if newer {
                    std::mem::swap(queued, &mut status);
                }
                if queued.deployment_status.is_none() {
                    queued.deployment_status = status.deployment_status;
                }
            }
        }
    }
}

/// Coalesces status updates: each flush sends the latest status of every allocation that
/// changed since the previous flush, concurrently, then waits `window` before the next.
#[derive(Clone)]
pub struct StatusBatcher {
    pending: Arc<Mutex<Pending>>,
    notify: Arc<Notify>,
}

impl std::fmt::Debug for StatusBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusBatcher")
    }
}

impl Default for StatusBatcher {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusBatcher {
    pub fn new() -> Self {
        Self {
            pending: Arc::default(),
            notify: Arc::new(Notify::new()),
        }
    }

    /// Queues the allocation's latest status (replacing an unsent one, whose deployment
    /// health it keeps when it carries none).
    pub fn update(&self, namespace: &str, name: &str, status: AllocationStatus) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.queue((namespace.to_string(), name.to_string()), status, true);
        drop(pending);
        self.notify.notify_one();
    }

    /// Number of allocations with an unsent status.
    pub fn backlog(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .latest
            .len()
    }

    /// Takes the unsent statuses (what the next batch would send).
    #[cfg(test)]
    pub(crate) fn take_pending(&self) -> Vec<(Key, AllocationStatus)> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.latest.drain().collect()
    }

    /// Sends batches forever.
    pub async fn run<C: Client>(self, client: C, window: Duration) {
        let mut failures = 0u32;
        loop {
            self.notify.notified().await;
            tokio::time::sleep(window).await;
            let batch: Vec<(Key, AllocationStatus)> = {
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                pending.latest.drain().collect()
            };
            let results: Vec<(Key, AllocationStatus, Result<(), ClientError>)> =
                futures::stream::iter(batch)
                    .map(|(key, status)| {
                        let client = client.clone();
                        async move {
                            let patch = serde_json::json!({ "status": status });
                            let result = client
                                .patch_status(Kind::Allocation, &key.0, &key.1, patch)
                                .await
                                .map(|_| ());
                            (key, status, result)
                        }
                    })
                    .buffer_unordered(32)
                    .collect()
                    .await;
            let mut retry = false;
            for (key, status, result) in results {
                match result {
                    Ok(()) | Err(ClientError::NotFound) => {}
                    Err(ClientError::Invalid(e)) => {
                        tracing::error!(alloc = %key.1, error = %e, "the server refused an allocation status");
                    }
                    Err(e) => {
                        tracing::warn!(alloc = %key.1, error = %e, "allocation status not sent; retrying");
                        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                        pending.queue(key, status, false);
                        retry = true;
                    }
                }
            }
            if retry {
                failures = failures.saturating_add(1);
                let backoff = Duration::from_millis(250 * u64::from(failures.min(20)));
                tokio::time::sleep(backoff).await;
                self.notify.notify_one();
            } else {
                failures = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(s: TaskLifecycleState, failed: bool) -> TaskState {
        TaskState {
            state: s,
            failed,
            ..Default::default()
        }
    }

    #[test]
    fn client_status_follows_nomad() {
        use TaskLifecycleState::*;
        let cases = [
            (vec![state(Pending, false)], ClientStatus::Pending),
            (
                vec![state(Running, false), state(Pending, false)],
                ClientStatus::Running,
            ),
            (
                vec![state(Dead, false), state(Dead, false)],
                ClientStatus::Complete,
            ),
            (
                vec![state(Dead, true), state(Running, false)],
                ClientStatus::Failed,
            ),
        ];
        for (tasks, want) in cases {
            let map: NameMap<_> = tasks
                .into_iter()
                .enumerate()
                .map(|(i, s)| (i.to_string(), s))
                .collect();
            assert_eq!(client_status(&map).0, want);
        }
    }

    #[test]
    fn a_deployment_health_survives_newer_statuses_and_retries() {
        let batcher = StatusBatcher::new();
        let health = caravan_schemas::allocation::AllocDeploymentStatus {
            healthy: Some(true),
            canary: true,
            timestamp: Some("2027-01-15T08:00:00.000Z".into()),
        };
        let mut tasks = NameMap::new();
        tasks.insert("t".to_string(), state(TaskLifecycleState::Running, false));
        let mut decided = alloc_status(&tasks);
        decided.deployment_status = Some(health.clone());
        batcher.update("default", "a1", decided.clone());
        tasks.insert("t".to_string(), state(TaskLifecycleState::Dead, true));
        batcher.update("default", "a1", alloc_status(&tasks));
        let sent = batcher.take_pending();
        assert_eq!(sent.len(), 1);
        let (_, latest) = &sent[0];
        assert_eq!(
            latest.client_status,
            ClientStatus::Failed,
            "the newest status"
        );
        assert_eq!(latest.deployment_status.as_ref(), Some(&health));
        // A failed send queued again behind a newer status: the newer one, with the health.
        batcher.update("default", "a1", alloc_status(&tasks));
        batcher
            .pending
            .lock()
            .unwrap()
            .queue(("default".into(), "a1".into()), decided, false);
        let (_, retried) = &batcher.take_pending()[0];
        assert_eq!(retried.client_status, ClientStatus::Failed);
        assert_eq!(retried.deployment_status.as_ref(), Some(&health));
    }

    #[tokio::test]
    async fn the_batcher_sends_only_the_latest_status() {
        use caravan_runtime::fake::FakeClient;
        let client = FakeClient::default();
        let alloc = serde_json::json!({
            "apiVersion": "caravan.dev/v1", "kind": "Allocation",
            "metadata": {"name": "a1", "namespace": "default"},
            "spec": {"jobName": "j", "group": "g", "nodeName": "n1"}
        });
        client.create(Kind::Allocation, alloc).await.unwrap();
        let batcher = StatusBatcher::new();
        let mut tasks = NameMap::new();
        tasks.insert("t".to_string(), state(TaskLifecycleState::Pending, false));
        batcher.update("default", "a1", alloc_status(&tasks));
        tasks.insert("t".to_string(), state(TaskLifecycleState::Running, false));
        batcher.update("default", "a1", alloc_status(&tasks));
        assert_eq!(batcher.backlog(), 1);
        tokio::spawn(
            batcher
                .clone()
                .run(client.clone(), Duration::from_millis(5)),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let obj = client.get(Kind::Allocation, "default", "a1").await.unwrap();
            if obj["status"]["clientStatus"] == "running" {
                assert_eq!(obj["status"]["taskStates"]["t"]["state"], "running");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "status never arrived: {obj}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
