//! Caches of the kinds the scheduler reads, and scheduler snapshots built from them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use caravan_schemas::{Allocation, Evaluation, Job, Kind, Node};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use crate::client::{Client, ClientError, ListQuery};
use crate::runtime::{Event, Store, reflector, store, watcher};
use crate::scheduler::util::{job_version, namespace};
use crate::scheduler::{MemState, State};

/// Job versions kept per job for telling in-place from destructive updates (Nomad keeps 6).
const TRACKED_VERSIONS: usize = 6;

/// Earlier versions of each job, as seen by snapshots.
type VersionHistory = BTreeMap<(String, String), BTreeMap<i64, Arc<Job>>>;

/// Readers of the four caches, and the job versions seen so far.
#[derive(Clone)]
pub struct Caches {
    pub jobs: Store<Job>,
    pub nodes: Store<Node>,
    pub allocations: Store<Allocation>,
    pub evaluations: Store<Evaluation>,
    history: Arc<Mutex<VersionHistory>>,
}

/// The event streams behind the caches, for the loops that react to changes.
pub(crate) struct Feeds {
    pub jobs: broadcast::Receiver<Event>,
    pub nodes: broadcast::Receiver<Event>,
    pub allocations: broadcast::Receiver<Event>,
    pub evaluations: broadcast::Receiver<Event>,
}

fn spawn_cache<C: Client, T>(client: &C, kind: Kind) -> (Store<T>, broadcast::Receiver<Event>)
where
    T: serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = store::<T>();
    let (tx, rx) = broadcast::channel(65_536);
    let stream: BoxStream<'static, Result<Event, ClientError>> = reflector(
        writer,
        watcher(client.clone(), kind, None, ListQuery::default()),
    )
    .boxed();
    tokio::spawn(async move {
        let mut stream = stream;
        while let Some(event) = stream.next().await {
            match event {
                // The cache is updated before the event is passed on.
                Ok(event) => {
                    let _ = tx.send(event);
                }
                Err(e) => tracing::warn!(kind = %kind, error = %e, "watch failed; retrying"),
            }
        }
    });
    (reader, rx)
}

impl Caches {
    pub(crate) fn start<C: Client>(client: C) -> (Caches, Feeds) {
        let (jobs, jobs_rx) = spawn_cache(&client, Kind::Job);
        let (nodes, nodes_rx) = spawn_cache(&client, Kind::Node);
        let (allocations, allocs_rx) = spawn_cache(&client, Kind::Allocation);
        let (evaluations, evals_rx) = spawn_cache(&client, Kind::Evaluation);
        (
            Caches {
                jobs,
                nodes,
                allocations,
                evaluations,
                history: Arc::default(),
            },
            Feeds {
                jobs: jobs_rx,
                nodes: nodes_rx,
                allocations: allocs_rx,
                evaluations: evals_rx,
            },
        )
    }

    /// Waits until every cache holds its first full list.
    pub async fn wait_until_ready(&self) {
        let _ = self.jobs.wait_until_ready().await;
        let _ = self.nodes.wait_until_ready().await;
        let _ = self.allocations.wait_until_ready().await;
        let _ = self.evaluations.wait_until_ready().await;
    }

    /// A scheduler snapshot of the cached objects. Its index is the highest resourceVersion
    /// cached, which reaches a plan's index once the plan's allocations arrived.
    pub fn snapshot(&self) -> Arc<dyn State> {
        let mut state = MemState::new();
        let mut index = 0u64;
        let mut seen = |rv: Option<&String>| {
            if let Some(rv) = rv.and_then(|r| r.parse::<u64>().ok()) {
                index = index.max(rv);
            }
        };
        for node in self.nodes.state() {
            seen(node.metadata.resource_version.as_ref());
            state.upsert_node(node);
        }
        let jobs = self.jobs.state();
        {
            // Older versions first: the current one is upserted last and stays current.
            let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
            for job in &jobs {
                let key = (
                    namespace(&job.metadata).to_string(),
                    job.metadata.name.clone().unwrap_or_default(),
                );
                let versions = history.entry(key).or_default();
                versions.insert(job_version(job), job.clone());
                while versions.len() > TRACKED_VERSIONS {
                    versions.pop_first();
                }
                for old in versions.values() {
                    state.upsert_job(old.clone());
                }
            }
        }
        for job in jobs {
            seen(job.metadata.resource_version.as_ref());
            state.upsert_job(job);
        }
        for alloc in self.allocations.state() {
            seen(alloc.metadata.resource_version.as_ref());
            state.upsert_alloc(alloc);
        }
        for eval in self.evaluations.state() {
            seen(eval.metadata.resource_version.as_ref());
        }
        state.set_index(index);
        Arc::new(state)
    }

    /// Snapshots for the workers.
    pub fn snapshots(&self) -> impl Fn() -> Arc<dyn State> + Send + Sync + 'static {
        let caches = self.clone();
        move || caches.snapshot()
    }
}
