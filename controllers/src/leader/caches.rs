//! Caches of the kinds the scheduler reads, and scheduler snapshots cloned from the live state
//! they keep current (`live.rs`).

use std::sync::{Arc, Mutex, PoisonError};

use caravan_schemas::{Allocation, Deployment, Evaluation, Job, Kind, Node};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::scheduler::{MemState, State};
use crate::worker::{Snapshots, WorkerError};
use caravan_runtime::object_ref::resource_version_of;
use caravan_runtime::{Client, ClientError, ListQuery, Omit};
use caravan_runtime::{Event, Store, modify, reflector, store, watcher};

mod live;

/// The scheduler state every cache event is applied to; snapshots are clones of it.
type LiveState = Arc<Mutex<MemState>>;

/// The revision each cache has applied every change of its kind up to (jobs, nodes,
/// allocations, evaluations, deployments), from the progress BOOKMARKs and the objects' resourceVersions
/// (the revision before theirs: the other events of their commit may still be on the way).
/// Watches of different kinds run apart, so a snapshot is complete only up to the least.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Revisions([u64; 5]);

/// The cached kinds, in the order of their [`Revisions`] slots.
const CACHED: [Kind; 5] = [
    Kind::Job,
    Kind::Node,
    Kind::Allocation,
    Kind::Evaluation,
    Kind::Deployment,
];

/// The [`Revisions`] slot of a cached kind.
fn slot_of(kind: Kind) -> Option<usize> {
    CACHED.iter().position(|k| *k == kind)
}

impl Revisions {
    /// Every change of every kind up to this revision is cached.
    pub fn complete(&self) -> u64 {
        self.0.iter().copied().min().unwrap_or_default()
    }

    /// Every change of each of `kinds` up to this revision is cached (kinds not cached are
    /// ignored).
    pub fn complete_for(&self, kinds: &[Kind]) -> u64 {
        kinds
            .iter()
            .filter_map(|kind| slot_of(*kind))
            .map(|slot| self.0[slot])
            .min()
            .unwrap_or_else(|| self.complete())
    }

    /// Records that cache `slot` has applied everything up to `rv`; whether it moved.
    fn advance(&mut self, slot: usize, rv: u64) -> bool {
        let moved = rv > self.0[slot];
        self.0[slot] = self.0[slot].max(rv);
        moved
    }
}

/// Readers of the five caches, and the live scheduler state they keep. The watch tasks behind
/// them stop when the last clone is dropped (a leader that lost its leadership).
#[derive(Clone)]
pub struct Caches {
    pub jobs: Store<Job>,
    pub nodes: Store<Node>,
    pub allocations: Store<Allocation>,
    pub evaluations: Store<Evaluation>,
    pub deployments: Store<Deployment>,
    /// Nodes, jobs (with their recent versions) and allocations as the caches hold them.
    live: LiveState,
    /// How far each cache is complete; the snapshot index is the least of them.
    revisions: watch::Sender<Revisions>,
    _tasks: Arc<CacheTasks>,
}

/// The caches' watch tasks, aborted on drop.
struct CacheTasks(Vec<tokio::task::AbortHandle>);

impl Drop for CacheTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The event streams behind the caches, for the loops that react to changes.
pub(crate) struct Feeds {
    pub jobs: broadcast::Receiver<Event>,
    pub nodes: broadcast::Receiver<Event>,
    pub allocations: broadcast::Receiver<Event>,
    pub evaluations: broadcast::Receiver<Event>,
    /// The job controller's own receivers of the allocation and evaluation events (it
    /// reconciles the job of each), subscribed before the caches start so none is missed.
    pub job_triggers: [broadcast::Receiver<Event>; 2],
}

/// What no leader controller reads from an Allocation, dropped before the caches decode and
/// keep it: its placement metrics (about half of a decoded Allocation's memory) and its tasks'
/// event lists (their states, restarts and times stay). Both stay in the stored object, for
/// `caravan alloc status` and the API. The in-process client leaves them out while decoding.
const LEAN_ALLOCATION: Omit = &[
    &["status", "metrics"],
    &["status", "taskStates", "*", "events"],
];

/// Removes the fields at `paths` (key paths, `*` for any key) from `object`, for clients that
/// delivered them anyway.
fn remove_paths(object: &mut Value, paths: Omit) {
    for path in paths {
        remove_path(object, path);
    }
}

fn remove_path(object: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Some(map) = object.as_object_mut() else {
        return;
    };
    match (*first, rest.is_empty()) {
        ("*", true) => map.clear(),
        ("*", false) => map.values_mut().for_each(|v| remove_path(v, rest)),
        (key, true) => {
            map.remove(key);
        }
        (key, false) => {
            if let Some(v) = map.get_mut(key) {
                remove_path(v, rest);
            }
        }
    }
}

fn spawn_cache<C: Client, T>(
    client: &C,
    (kind, omit): (Kind, Omit),
    revisions: watch::Sender<Revisions>,
    (live, apply): (LiveState, live::Apply<T>),
) -> (
    Store<T>,
    [broadcast::Receiver<Event>; 2],
    tokio::task::AbortHandle,
)
where
    T: serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let slot = slot_of(kind).expect("a cached kind has a revision slot");
    let (reader, writer) = store::<T>();
    let (tx, rx) = broadcast::channel(65_536);
    let receivers = [rx, tx.subscribe()];
    let query = ListQuery {
        progress: true,
        omit,
        ..ListQuery::default()
    };
    let stream: BoxStream<'static, Result<Event, ClientError>> = reflector(
        writer,
        modify(watcher(client.clone(), kind, None, query), move |object| {
            remove_paths(object, omit)
        }),
    )
    .boxed();
    let typed = reader.clone();
    let task = tokio::spawn(async move {
        let mut stream = stream;
        while let Some(event) = stream.next().await {
            match event {
                // The cache, then the live state, are updated before the revision moves and
                // the event is passed on.
                Ok(event) => {
                    apply(
                        &mut live.lock().unwrap_or_else(PoisonError::into_inner),
                        &typed,
                        &event,
                    );
                    // Events of one commit share its revision and arrive one by one: an
                    // object at `rv` proves only what came before it; the progress BOOKMARK
                    // that ends the batch completes `rv`.
                    let rv = match &event {
                        Event::Progress(rv) => Some(*rv),
                        other => other
                            .object()
                            .and_then(resource_version_of)
                            .map(|rv| rv.saturating_sub(1)),
                    };
                    if let Some(rv) = rv {
                        revisions.send_if_modified(|revisions| revisions.advance(slot, rv));
                    }
                    if !matches!(event, Event::Progress(_)) {
                        let _ = tx.send(event);
                    }
                }
                Err(e) => tracing::warn!(kind = %kind, error = %e, "watch failed; retrying"),
            }
        }
    });
    (reader, receivers, task.abort_handle())
}

/// The first of a cache's receivers (the second, unused, is dropped).
fn first([rx, _]: [broadcast::Receiver<Event>; 2]) -> broadcast::Receiver<Event> {
    rx
}

impl Caches {
    pub(crate) fn start<C: Client>(client: C) -> (Caches, Feeds) {
        let revisions = watch::channel(Revisions::default()).0;
        let live = LiveState::default();
        let (jobs, jobs_rx, jobs_task) = spawn_cache(
            &client,
            (Kind::Job, &[]),
            revisions.clone(),
            (live.clone(), live::apply::<Job>),
        );
        let (nodes, nodes_rx, nodes_task) = spawn_cache(
            &client,
            (Kind::Node, &[]),
            revisions.clone(),
            (live.clone(), live::apply::<Node>),
        );
        let (allocations, [allocs_rx, allocs_trigger], allocs_task) = spawn_cache(
            &client,
            (Kind::Allocation, LEAN_ALLOCATION),
            revisions.clone(),
            (live.clone(), live::apply::<Allocation>),
        );
        let (evaluations, [evals_rx, evals_trigger], evals_task) = spawn_cache(
            &client,
            (Kind::Evaluation, &[]),
            revisions.clone(),
            (live.clone(), live::ignore),
        );
        let (deployments, _, deployments_task) = spawn_cache(
            &client,
            (Kind::Deployment, &[]),
            revisions.clone(),
            (live.clone(), live::apply::<Deployment>),
        );
        (
            Caches {
                jobs,
                nodes,
                allocations,
                evaluations,
                deployments,
                live,
                revisions,
                _tasks: Arc::new(CacheTasks(vec![
                    jobs_task,
                    nodes_task,
                    allocs_task,
                    evals_task,
                    deployments_task,
                ])),
            },
            Feeds {
                jobs: first(jobs_rx),
                nodes: first(nodes_rx),
                allocations: allocs_rx,
                evaluations: evals_rx,
                job_triggers: [allocs_trigger, evals_trigger],
            },
        )
    }

    /// Waits until every cache holds its first full list.
    pub async fn wait_until_ready(&self) {
        let _ = self.jobs.wait_until_ready().await;
        let _ = self.nodes.wait_until_ready().await;
        let _ = self.allocations.wait_until_ready().await;
        let _ = self.evaluations.wait_until_ready().await;
        let _ = self.deployments.wait_until_ready().await;
    }

    /// The revision the caches of `kinds` hold every change up to: what a decision over
    /// those caches alone may rely on.
    pub fn complete_for(&self, kinds: &[Kind]) -> u64 {
        self.revisions.borrow().complete_for(kinds)
    }

    /// A scheduler snapshot of the cached objects, at the revision every cache is complete up
    /// to (a plan's index is reached once its allocations arrived, and every job, node and
    /// evaluation change before it): an O(1) clone of the live state.
    pub fn snapshot(&self) -> Arc<dyn State> {
        // Read before cloning: everything up to `index` is in the live state already.
        let index = self.revisions.borrow().complete();
        let mut state = self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        state.set_index(index);
        Arc::new(state)
    }

    /// The cached allocations of one job, from the live state's job index (not a scan of
    /// every allocation).
    pub fn allocs_of_job(&self, namespace: &str, job: &str) -> Vec<Arc<Allocation>> {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .allocs_by_job(namespace, job)
    }

    /// Version `version` of a job, as the live state keeps the recent ones.
    pub fn job_version(&self, namespace: &str, job: &str, version: i64) -> Option<Arc<Job>> {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .job_by_version(namespace, job, version)
    }

    /// Snapshots for the workers.
    pub fn snapshots(&self) -> CacheSnapshots {
        CacheSnapshots(self.clone())
    }
}

/// Worker snapshots from the caches: waiting for an index watches the caches' revisions and
/// takes the snapshot once every cache reached it.
#[derive(Clone)]
pub struct CacheSnapshots(Caches);

impl Snapshots for CacheSnapshots {
    fn snapshot(&self) -> Arc<dyn State> {
        self.0.snapshot()
    }

    async fn wait_for_index(
        &self,
        index: u64,
        timeout: Duration,
    ) -> Result<Arc<dyn State>, WorkerError> {
        let mut receiver = self.0.revisions.subscribe();
        // The guard `wait_for` returns is dropped before the snapshot reads the channel again.
        let reached = tokio::time::timeout(
            timeout,
            receiver.wait_for(|revisions| revisions.complete() >= index),
        )
        .await
        .is_ok_and(|waited| waited.is_ok());
        if reached {
            Ok(self.0.snapshot())
        } else {
            Err(WorkerError::SnapshotTimeout {
                index,
                reached: self.0.revisions.borrow().complete(),
            })
        }
    }
}

#[cfg(test)]
mod tests;
