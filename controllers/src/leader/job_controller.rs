//! The job controller: one reconcile per job change creates the evaluation a new job version
//! needs, then writes the job's status (version, summary, state) from the caches.

use std::sync::Arc;

use caravan_schemas::{Deployment, Job, Kind};
use futures::Stream;
use tokio::sync::broadcast;

use super::Shared;
use super::evals::create;
use crate::evaluator::deployment::{cancel_patch, deployment_changes};
use crate::evaluator::job_needs_eval;
use crate::job_status::{status_patch, summarize};
use caravan_runtime::object_ref::{name_of, namespace_of};
use caravan_runtime::watcher::Event;
use caravan_runtime::{Action, Controller, ControllerError, ObjectRef};
use caravan_runtime::{Client, ClientError, ListQuery};

/// The running controller, as a stream of reconcile results. It reconciles a job when the job
/// changes (its own watch) and when one of its allocations or evaluations does: those come
/// from the caches' feeds (`triggers`: allocations, evaluations), which already decode every
/// such event, instead of two more watches.
pub(crate) fn controller<C: Client>(
    shared: Arc<Shared<C>>,
    [allocations, evaluations]: [broadcast::Receiver<Event>; 2],
) -> impl Stream<Item = Result<(ObjectRef, Action), ControllerError<ClientError>>> + Send {
    let allocations = jobs_of(allocations, shared.clone(), "job controller allocations");
    let evaluations = jobs_of(evaluations, shared.clone(), "job controller evaluations");
    Controller::<Job, C>::new(shared.client.clone(), Kind::Job, None, ListQuery::default())
        .triggered_by(Kind::Allocation, allocations)
        .triggered_by(Kind::Evaluation, evaluations)
        .run(reconcile, error_policy, shared)
}

/// The job each event of a feed of allocations or evaluations belongs to. A feed that lagged
/// lost events: every cached job is reconciled then.
fn jobs_of<C: Client>(
    feed: broadcast::Receiver<Event>,
    shared: Arc<Shared<C>>,
    what: &'static str,
) -> impl Stream<Item = Vec<ObjectRef>> + Send + 'static {
    futures::stream::unfold(feed, move |mut feed| {
        let shared = shared.clone();
        async move {
            let refs = match feed.recv().await {
                Ok(event) => event.object().map(job_of).unwrap_or_default(),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        feed = what,
                        "event feed lagged; reconciling every job"
                    );
                    shared
                        .caches
                        .jobs
                        .state()
                        .iter()
                        .map(|job| {
                            ObjectRef::new(Kind::Job, job.metadata.namespace(), job.metadata.name())
                        })
                        .collect()
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((refs, feed))
        }
    })
}

/// The job an allocation or evaluation (`spec.jobName`) belongs to.
fn job_of(value: &serde_json::Value) -> Vec<ObjectRef> {
    match value
        .pointer("/spec/jobName")
        .and_then(serde_json::Value::as_str)
    {
        Some(job) if name_of(value).is_some() => {
            vec![ObjectRef::new(Kind::Job, namespace_of(value), job)]
        }
        _ => Vec::new(),
    }
}

async fn reconcile<C: Client>(
    job: Arc<Job>,
    shared: Arc<Shared<C>>,
) -> Result<Action, ClientError> {
    let ns = job.metadata.namespace().to_string();
    let name = job.metadata.name().to_string();
    let needs_eval = job_needs_eval(&job);
    let allocs = shared.caches.allocs_of_job(&ns, &name);
    // The deployment before the evaluation: the scheduler finds it in the snapshot it takes at
    // the evaluation's revision. Only a new version (or a stop) changes deployments.
    if needs_eval.is_some() {
        write_deployments(&shared, &job, &allocs).await?;
    }
    // The evaluation next: the status write below records the version as evaluated.
    if let Some(req) = needs_eval {
        let version = req.job_version.to_string();
        let uid = job.metadata.uid.clone().unwrap_or_default();
        create(&shared.client, &req, &["job", &uid, &version]).await?;
    }
    let evals: Vec<_> = shared
        .caches
        .evaluations
        .state()
        .into_iter()
        .filter(|e| e.spec.job_name == name && e.metadata.namespace() == ns)
        .collect();
    let mut status = summarize(&job, &allocs, &evals);
    status.version = job.version();
    if let Some(patch) = status_patch(&job.status, &status) {
        match shared
            .client
            .patch_status(Kind::Job, &ns, &name, patch)
            .await
        {
            Ok(_) | Err(ClientError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Action::await_change())
}

/// Creates the deployment of a new version and cancels the job's other active ones
/// ([`deployment_changes`]).
async fn write_deployments<C: Client>(
    shared: &Shared<C>,
    job: &Job,
    allocs: &[Arc<caravan_schemas::Allocation>],
) -> Result<(), ClientError> {
    let ns = job.metadata.namespace();
    let name = job.metadata.name();
    let deployments: Vec<Arc<Deployment>> = shared
        .caches
        .deployments
        .state()
        .into_iter()
        .filter(|d| d.spec.job_name == name && d.metadata.namespace() == ns)
        .collect();
    let versions = |version: i64| shared.caches.job_version(ns, name, version);
    let now = now_unix();
    let changes = deployment_changes(job, &deployments, allocs, &versions, now);
    if let Some(stale) = &changes.delete_stale {
        match shared.client.delete(Kind::Deployment, ns, stale).await {
            Ok(()) | Err(ClientError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    for (cancel, why) in &changes.cancel {
        let Some(deployment) = deployments.iter().find(|d| d.metadata.name() == cancel) else {
            continue;
        };
        let patch = cancel_patch(deployment, why, now);
        match shared
            .client
            .patch_status(Kind::Deployment, ns, cancel, patch)
            .await
        {
            Ok(_) => {
                tracing::info!(deployment = %cancel, reason = why, "deployment cancelled");
            }
            Err(ClientError::NotFound) => {}
            // A conflict (its status changed since the cache read it) fails the reconcile,
            // which the error policy retries from fresher caches.
            Err(e) => return Err(e),
        }
    }
    if let Some(deployment) = changes.create {
        let object =
            serde_json::to_value(&deployment).map_err(|e| ClientError::Invalid(e.to_string()))?;
        match shared.client.create(Kind::Deployment, object).await {
            Ok(_) => {
                tracing::info!(
                    deployment = deployment.metadata.name(),
                    "deployment created"
                );
            }
            Err(ClientError::AlreadyExists) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn error_policy<C: Client>(job: Arc<Job>, error: &ClientError, _shared: Arc<Shared<C>>) -> Action {
    tracing::warn!(job = job.metadata.name(), error = %error, "job reconcile failed; retrying");
    Action::requeue(std::time::Duration::from_secs(1))
}

#[cfg(test)]
mod tests;
