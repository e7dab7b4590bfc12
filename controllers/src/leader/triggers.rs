//! Reactions to node, allocation and job-deletion events: the evaluations they need and the
//! blocked evaluations they unblock.

use std::collections::HashMap;
use std::sync::Arc;

use caravan_schemas::job::JobType;
use caravan_schemas::{Allocation, Job, Kind, Node};
use serde::Deserialize;
use tokio::sync::broadcast;

use super::Shared;
use super::evals::{create, requeue};
use crate::evaluator::{
    AllocView, NodeView, alloc_needs_eval, deleted_job_eval, node_change_evals,
};
use caravan_runtime::Event;
use caravan_runtime::object_ref::resource_version_of;
use caravan_runtime::{Client, ClientError};

/// What a feed delivers next.
enum Next {
    Event(Event),
    /// The feed dropped events: the reaction recomputes from the caches, so that no trigger
    /// (a failed allocation's reschedule, a node's evaluations, a deleted job's deregister)
    /// is lost.
    Lagged,
}

/// The next event, or `None` when the feed closed.
async fn next(events: &mut broadcast::Receiver<Event>, what: &str) -> Option<Next> {
    match events.recv().await {
        Ok(event) => Some(Next::Event(event)),
        Err(broadcast::error::RecvError::Lagged(missed)) => {
            tracing::warn!(
                missed,
                feed = what,
                "event feed lagged; recomputing from the caches"
            );
            Some(Next::Lagged)
        }
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Node registrations and changes: evaluations of the jobs on the node and of system jobs,
/// and unblocking when the node can take work.
pub(crate) async fn nodes<C: Client>(
    shared: Arc<Shared<C>>,
    mut events: broadcast::Receiver<Event>,
) {
    let mut seen: HashMap<String, NodeView> = HashMap::new();
    while let Some(next) = next(&mut events, "nodes").await {
        match next {
            Next::Event(Event::InitApply(value) | Event::Apply(value)) => {
                let Ok(node) = Node::deserialize(&value) else {
                    continue;
                };
                let rv = resource_version_of(&value).unwrap_or_default();
                node_changed(&shared, &mut seen, &node, rv).await;
            }
            Next::Event(_) => {}
            Next::Lagged => {
                for node in shared.caches.nodes.state() {
                    let rv = node_rv(&node);
                    node_changed(&shared, &mut seen, &node, rv).await;
                }
            }
        }
    }
}

fn node_rv(node: &Node) -> u64 {
    node.metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or_default()
}

/// The evaluations and unblocking a node's new state calls for, against what was `seen`.
async fn node_changed<C: Client>(
    shared: &Shared<C>,
    seen: &mut HashMap<String, NodeView>,
    node: &Node,
    index: u64,
) {
    let name = node.metadata.name().to_string();
    let old = seen.get(&name).cloned();
    let new = NodeView::of(node);
    if old.as_ref() == Some(&new) {
        return;
    }
    let allocs = shared.caches.allocations.state();
    let jobs = shared.caches.jobs.state();
    let on_node: Vec<Arc<Job>> = allocs
        .iter()
        .filter(|a| a.spec.node_name == name && !a.is_terminal())
        .filter_map(|a| {
            shared
                .caches
                .jobs
                .get(a.metadata.namespace(), &a.spec.job_name)
        })
        .collect();
    let system: Vec<&Job> = jobs
        .iter()
        .filter(|j| {
            matches!(j.spec.job_type(), JobType::System | JobType::Sysbatch) && !j.spec.stop
        })
        .map(|j| j.as_ref())
        .collect();
    let rv = index.to_string();
    for req in node_change_evals(
        old.as_ref(),
        node,
        on_node.iter().map(|j| j.as_ref()),
        system,
    ) {
        if let Err(e) = create(&shared.client, &req, &["node", &name, &rv]).await {
            tracing::warn!(node = %name, error = %e, "could not create a node evaluation");
        }
    }
    let ready = new.status == Some(caravan_schemas::node::NodeState::Ready) && new.eligible;
    if ready {
        let class = node.spec.node_class.clone();
        let unblocked = lock(&shared.blocked).unblock(class.as_deref(), index);
        requeue(shared, unblocked).await;
    }
    seen.insert(name, new);
}

/// Allocation changes: failed or lost allocations get an evaluation of their job; an
/// allocation that stopped using its node frees capacity for blocked evaluations.
pub(crate) async fn allocations<C: Client>(
    shared: Arc<Shared<C>>,
    mut events: broadcast::Receiver<Event>,
) {
    // What each allocation was, not a copy of it: the caches hold the allocations.
    let mut seen: HashMap<(String, String), AllocView> = HashMap::new();
    while let Some(next) = next(&mut events, "allocations").await {
        match next {
            Next::Event(event) => {
                let (value, deleted) = match &event {
                    Event::InitApply(v) | Event::Apply(v) => (v, false),
                    Event::Delete(v) => (v, true),
                    _ => continue,
                };
                let Ok(alloc) = Allocation::deserialize(value) else {
                    continue;
                };
                let index = resource_version_of(value).unwrap_or_default();
                alloc_changed(&shared, &mut seen, &alloc, index, deleted).await;
            }
            Next::Lagged => {
                // Every allocation against what was seen of it; the ones gone were deleted,
                // which frees capacity: blocked evaluations are retried.
                let cached = shared.caches.allocations.state();
                let mut present = std::collections::HashSet::with_capacity(cached.len());
                let mut index = 0;
                for alloc in &cached {
                    let key = alloc_key(alloc);
                    let rv = alloc
                        .metadata
                        .resource_version
                        .as_deref()
                        .and_then(|rv| rv.parse().ok())
                        .unwrap_or_default();
                    index = index.max(rv);
                    alloc_changed(&shared, &mut seen, alloc, rv, false).await;
                    present.insert(key);
                }
                let before = seen.len();
                seen.retain(|key, _| present.contains(key));
                if seen.len() < before {
                    let unblocked = lock(&shared.blocked).unblock(None, index);
                    requeue(&shared, unblocked).await;
                }
            }
        }
    }
}

fn alloc_key(alloc: &Allocation) -> (String, String) {
    (
        alloc.metadata.namespace().to_string(),
        alloc.metadata.name().to_string(),
    )
}

/// The evaluation a changed (or deleted) allocation needs, and the blocked evaluations its
/// freed capacity unblocks, against what was `seen` of it.
async fn alloc_changed<C: Client>(
    shared: &Shared<C>,
    seen: &mut HashMap<(String, String), AllocView>,
    alloc: &Allocation,
    index: u64,
    deleted: bool,
) {
    let key = alloc_key(alloc);
    let old = if deleted {
        seen.remove(&key)
    } else {
        seen.insert(key.clone(), AllocView::of(alloc))
    };
    let job = shared.caches.jobs.get(&key.0, &alloc.spec.job_name);
    if !deleted
        && let Some(req) = alloc_needs_eval(old.as_ref(), alloc, job.as_deref())
        && let Err(e) = create(&shared.client, &req, &["alloc", &key.1, "failed"]).await
    {
        tracing::warn!(alloc = %key.1, error = %e, "could not create an alloc-failure evaluation");
    }
    let freed = (deleted || alloc.is_terminal()) && old.is_some_and(|o| !o.terminal);
    if freed {
        let unblocked = lock(&shared.blocked).unblock(None, index);
        requeue(shared, unblocked).await;
    }
}

/// Deleted jobs get a deregister evaluation: their allocations are stopped. Jobs the garbage
/// collector deleted get none.
pub(crate) async fn deleted_jobs<C: Client>(
    shared: Arc<Shared<C>>,
    mut events: broadcast::Receiver<Event>,
) {
    // The jobs the cache held, to tell after a lag which were deleted meanwhile.
    let mut known: HashMap<(String, String), Arc<Job>> = HashMap::new();
    while let Some(next) = next(&mut events, "jobs").await {
        match next {
            Next::Event(Event::InitApply(value) | Event::Apply(value)) => {
                let ns = value
                    .pointer("/metadata/namespace")
                    .and_then(|v| v.as_str());
                let name = value.pointer("/metadata/name").and_then(|v| v.as_str());
                if let (Some(ns), Some(name)) = (ns, name)
                    && let Some(job) = shared.caches.jobs.get(ns, name)
                {
                    known.insert((ns.to_string(), name.to_string()), job);
                }
            }
            Next::Event(Event::Delete(value)) => {
                let Ok(job) = Job::deserialize(&value) else {
                    continue;
                };
                known.remove(&(job.metadata.namespace().to_string(), util_name(&job)));
                job_deleted(&shared, &job).await;
            }
            Next::Event(_) => {}
            Next::Lagged => {
                let cached: HashMap<(String, String), Arc<Job>> = shared
                    .caches
                    .jobs
                    .state()
                    .into_iter()
                    .map(|job| ((job.metadata.namespace().to_string(), util_name(&job)), job))
                    .collect();
                let gone: Vec<Arc<Job>> = known
                    .iter()
                    .filter(|(key, _)| !cached.contains_key(*key))
                    .map(|(_, job)| job.clone())
                    .collect();
                for job in gone {
                    job_deleted(&shared, &job).await;
                }
                known = cached;
            }
        }
    }
}

fn util_name(job: &Job) -> String {
    job.metadata.name().to_string()
}

/// A deleted job's deregister evaluation, unless the garbage collector deleted it.
async fn job_deleted<C: Client>(shared: &Shared<C>, job: &Job) {
    let req = deleted_job_eval(job);
    let uid = job.metadata.uid.clone().unwrap_or_default();
    // A job the garbage collector deleted has nothing left to stop.
    if !shared.reaped_jobs.take(&uid)
        && let Err(e) = create(&shared.client, &req, &["deleted", &uid]).await
    {
        tracing::warn!(job = %req.job_name, error = %e, "could not create a deregister evaluation");
    }
    lock(&shared.blocked).untrack(&req.namespace, &req.job_name);
    // Its deployments go with it (its versions went in the same write as the job).
    let deployments = shared.caches.deployments.state().into_iter().filter(|d| {
        d.spec.job_name == req.job_name
            && d.metadata.namespace() == req.namespace
            && d.spec.job_uid == uid
    });
    for deployment in deployments {
        let name = deployment.metadata.name();
        match shared
            .client
            .delete(Kind::Deployment, &req.namespace, name)
            .await
        {
            Ok(()) | Err(ClientError::NotFound) => {}
            Err(e) => {
                tracing::warn!(deployment = name, error = %e, "could not delete the deployment of a deleted job");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::allocation::ClientStatus;
    use caravan_schemas::{Kind, mock};

    use super::*;
    use crate::blocked::BlockedEvals;
    use crate::broker::{BrokerConfig, EvalBroker};
    use crate::leader::Caches;
    use caravan_runtime::fake::{FakeClient, wait_for};

    /// An allocation failed while the feed dropped events: its evaluation is still created,
    /// from the caches, when the reaction learns that it lagged.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_lost_in_a_lagging_feed_still_gets_its_evaluation() {
        let fake = FakeClient::new();
        let job = mock::job("web");
        let node = mock::node("n1");
        let mut alloc = mock::allocation("web-1", &job, &node);
        alloc
            .status
            .get_or_insert_with(Default::default)
            .client_status = ClientStatus::Failed;
        fake.seed(Kind::Job, serde_json::to_value(&job).unwrap());
        fake.seed(Kind::Node, serde_json::to_value(&node).unwrap());
        fake.seed(Kind::Allocation, serde_json::to_value(&alloc).unwrap());
        let (caches, _feeds) = Caches::start(fake.clone());
        caches.wait_until_ready().await;
        let shared = Arc::new(Shared {
            client: fake.clone(),
            caches,
            broker: EvalBroker::new(BrokerConfig::default()),
            blocked: std::sync::Mutex::new(BlockedEvals::new()),
            reaped_jobs: Default::default(),
        });
        // A feed of one slot that two events overran: the failure's event is lost.
        let (tx, rx) = broadcast::channel(1);
        tx.send(Event::Apply(serde_json::to_value(&alloc).unwrap()))
            .unwrap();
        tx.send(Event::Progress(1)).unwrap();
        let task = tokio::spawn(allocations(shared, rx));
        wait_for("an alloc-failure evaluation", || {
            fake.objects(Kind::Evaluation).iter().any(|e| {
                e.pointer("/spec/triggeredBy").and_then(|t| t.as_str()) == Some("alloc-failure")
            })
        })
        .await;
        task.abort();
    }
}
