//! Reactions to node, allocation and job-deletion events: the evaluations they need and the
//! blocked evaluations they unblock.

use std::collections::HashMap;
use std::sync::Arc;

use caravan_schemas::job::JobType;
use caravan_schemas::{Allocation, Job, Node};
use serde::Deserialize;
use tokio::sync::broadcast;

use super::Shared;
use super::evals::{create, requeue};
use crate::client::Client;
use crate::evaluator::{
    AllocView, NodeView, alloc_needs_eval, deleted_job_eval, node_change_evals,
};
use crate::runtime::Event;
use crate::runtime::object_ref::resource_version_of;
use crate::scheduler::util::is_terminal;
use crate::scheduler::util::namespace;

/// The next event, or `None` when the feed closed. A lagging feed skips what it missed: the
/// caches are still right, only some triggers are lost (logged).
async fn next(events: &mut broadcast::Receiver<Event>, what: &str) -> Option<Event> {
    loop {
        match events.recv().await {
            Ok(event) => return Some(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, feed = what, "event feed lagged");
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
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
    while let Some(event) = next(&mut events, "nodes").await {
        let (Event::InitApply(value) | Event::Apply(value)) = &event else {
            continue;
        };
        let Ok(node) = Node::deserialize(value) else {
            continue;
        };
        let name = node.metadata.name.clone().unwrap_or_default();
        let old = seen.get(&name).cloned();
        let new = NodeView::of(&node);
        if old.as_ref() == Some(&new) {
            continue;
        }
        let allocs = shared.caches.allocations.state();
        let jobs = shared.caches.jobs.state();
        let on_node: Vec<Arc<Job>> = allocs
            .iter()
            .filter(|a| a.spec.node_name == name && !is_terminal(a))
            .filter_map(|a| {
                shared
                    .caches
                    .jobs
                    .get(namespace(&a.metadata), &a.spec.job_name)
            })
            .collect();
        let system: Vec<&Job> = jobs
            .iter()
            .filter(|j| {
                matches!(j.spec.job_type(), JobType::System | JobType::Sysbatch) && !j.spec.stop
            })
            .map(|j| j.as_ref())
            .collect();
        let rv = resource_version_of(value).unwrap_or_default().to_string();
        for req in node_change_evals(
            old.as_ref(),
            &node,
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
            let index = resource_version_of(value).unwrap_or_default();
            let unblocked = lock(&shared.blocked).unblock(class.as_deref(), index);
            requeue(&shared, unblocked).await;
        }
        seen.insert(name, new);
    }
}

/// Allocation changes: failed or lost allocations get an evaluation of their job; an
/// allocation that stopped using its node frees capacity for blocked evaluations.
pub(crate) async fn allocations<C: Client>(
    shared: Arc<Shared<C>>,
    mut events: broadcast::Receiver<Event>,
) {
    // What each allocation was, not a copy of it: the caches hold the allocations.
    let mut seen: HashMap<(String, String), AllocView> = HashMap::new();
    while let Some(event) = next(&mut events, "allocations").await {
        let (value, deleted) = match &event {
            Event::InitApply(v) | Event::Apply(v) => (v, false),
            Event::Delete(v) => (v, true),
            _ => continue,
        };
        let Ok(alloc) = Allocation::deserialize(value) else {
            continue;
        };
        let key = (
            namespace(&alloc.metadata).to_string(),
            alloc.metadata.name.clone().unwrap_or_default(),
        );
        let old = if deleted {
            seen.remove(&key)
        } else {
            seen.insert(key.clone(), AllocView::of(&alloc))
        };
        let job = shared.caches.jobs.get(&key.0, &alloc.spec.job_name);
        if !deleted
            && let Some(req) = alloc_needs_eval(old.as_ref(), &alloc, job.as_deref())
            && let Err(e) = create(&shared.client, &req, &["alloc", &key.1, "failed"]).await
        {
            tracing::warn!(alloc = %key.1, error = %e, "could not create an alloc-failure evaluation");
        }
        let freed = (deleted || is_terminal(&alloc)) && old.is_some_and(|o| !o.terminal);
        if freed {
            let index = resource_version_of(value).unwrap_or_default();
            let unblocked = lock(&shared.blocked).unblock(None, index);
            requeue(&shared, unblocked).await;
        }
    }
}

/// Deleted jobs get a deregister evaluation: their allocations are stopped. Jobs the garbage
/// collector deleted get none.
pub(crate) async fn deleted_jobs<C: Client>(
    shared: Arc<Shared<C>>,
    mut events: broadcast::Receiver<Event>,
) {
    while let Some(event) = next(&mut events, "jobs").await {
        let Event::Delete(value) = &event else {
            continue;
        };
        let Ok(job) = Job::deserialize(value) else {
            continue;
        };
        let req = deleted_job_eval(&job);
        let uid = job.metadata.uid.clone().unwrap_or_default();
        // A job the garbage collector deleted has nothing left to stop.
        if !shared.reaped_jobs.take(&uid)
            && let Err(e) = create(&shared.client, &req, &["deleted", &uid]).await
        {
            tracing::warn!(job = %req.job_name, error = %e, "could not create a deregister evaluation");
        }
        lock(&shared.blocked).untrack(&req.namespace, &req.job_name);
    }
}
