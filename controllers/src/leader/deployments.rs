//! The deployment controller: one reconcile per deployment change or change of one of its
//! allocations (from the caches' allocation feed, `spec.deploymentName`) carries out what
//! [`crate::deployment::decide`] decides: the JobVersion marked stable (on success, before the
//! status says so), the status, then the follow-ups — the evaluation, the job reverted — and a
//! look again at the next deadline.
//!
//! The status is written first, with the `resourceVersion` read as precondition, so the
//! scheduler that the evaluation wakes sees it. Follow-ups left undone by an error are kept
//! and retried before the deployment's next reconcile. A new leader cannot know which
//! follow-ups the last one left undone when it lost its leadership between the status and
//! them, so the first reconcile of each deployment in a leadership term does them again
//! (each is idempotent): an evaluation for an active deployment, the stable mark of a
//! successful one, the revert of a failed one whose job is still at its version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use caravan_schemas::{Allocation, Deployment, Job, JobSpec, JobVersion, Kind, job_version};
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::Shared;
use super::evals::create;
use crate::deployment::{
    RevertTarget, decide, describe_revert, evaluation_request, job_matches, revert_target,
    spec_patch, status_patch,
};
use crate::evaluator::EvalRequest;
use caravan_runtime::object_ref::namespace_of;
use caravan_runtime::watcher::Event;
use caravan_runtime::{Action, Client, ClientError, Controller, ControllerError};
use caravan_runtime::{ListQuery, ObjectRef, Store};

/// How soon a deployment waiting for its job (not cached yet) is looked at again.
const JOB_WAIT: Duration = Duration::from_secs(5);
/// How soon a deployment whose status write lost a race is looked at again, should the
/// change that won not reach the controller first.
const CONFLICT_RETRY: Duration = Duration::from_secs(1);
/// Attempts at reverting a job whose `resourceVersion` keeps moving (status writes).
const REVERT_ATTEMPTS: usize = 5;

/// A write that follows a status write, retried until done.
#[derive(Clone, Debug)]
enum FollowUp {
    /// Mark the deployment's JobVersion stable.
    Stable { namespace: String, name: String },
    /// Create the evaluation, named from the change that asks for it.
    Evaluate {
        request: EvalRequest,
        key: [String; 3],
    },
    /// Give the deployment's job the spec of a stable version, if it is still at the
    /// deployment's version.
    Revert {
        deployment: Arc<Deployment>,
        spec: Box<JobSpec>,
    },
}

/// What the reconciles share: the leader's caches and client, the controller's cache of
/// deployments, and the follow-ups not done yet.
pub(crate) struct Context<C> {
    shared: Arc<Shared<C>>,
    deployments: Store<Deployment>,
    follow_ups: Mutex<HashMap<ObjectRef, Vec<FollowUp>>>,
    /// Deployments reconciled in this leadership term.
    seen: Mutex<std::collections::HashSet<ObjectRef>>,
}

/// The running controller, as a stream of reconcile results.
pub(crate) fn controller<C: Client>(
    shared: Arc<Shared<C>>,
    allocations: broadcast::Receiver<Event>,
) -> impl Stream<Item = Result<(ObjectRef, Action), ControllerError<ClientError>>> + Send {
    let controller = Controller::<Deployment, C>::new(
        shared.client.clone(),
        Kind::Deployment,
        None,
        ListQuery::default(),
    );
    let deployments = controller.store();
    let triggers = deployments_of(allocations, deployments.clone());
    let context = Arc::new(Context {
        shared,
        deployments,
        follow_ups: Mutex::default(),
        seen: Mutex::default(),
    });
    controller
        .triggered_by(Kind::Allocation, triggers)
        .run(reconcile, error_policy, context)
}

/// The deployment each allocation event names. A feed that lagged lost events: every active
/// deployment is reconciled then.
fn deployments_of(
    feed: broadcast::Receiver<Event>,
    deployments: Store<Deployment>,
) -> impl Stream<Item = Vec<ObjectRef>> + Send + 'static {
    futures::stream::unfold(feed, move |mut feed| {
        let deployments = deployments.clone();
        async move {
            let refs = match feed.recv().await {
                Ok(event) => event.object().map(deployment_of).unwrap_or_default(),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "allocation feed lagged; reconciling every deployment"
                    );
                    deployments
                        .state()
                        .iter()
                        .filter(|d| d.is_active())
                        .map(|d| key_of(d))
                        .collect()
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((refs, feed))
        }
    })
}

/// The deployment an allocation (`spec.deploymentName`) was placed under.
fn deployment_of(alloc: &Value) -> Vec<ObjectRef> {
    alloc
        .pointer("/spec/deploymentName")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .map(|name| vec![ObjectRef::new(Kind::Deployment, namespace_of(alloc), name)])
        .unwrap_or_default()
}

fn key_of(deployment: &Deployment) -> ObjectRef {
    let meta = &deployment.metadata;
    ObjectRef::new(Kind::Deployment, meta.namespace(), meta.name())
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

async fn reconcile<C: Client>(
    deployment: Arc<Deployment>,
    ctx: Arc<Context<C>>,
) -> Result<Action, ClientError> {
    let key = key_of(&deployment);
    let (ns, name) = (deployment.metadata.namespace(), deployment.metadata.name());
    if ctx.deployments.get(ns, name).is_none() {
        ctx.pending().remove(&key);
        return Ok(Action::await_change());
    }
    let shared = &ctx.shared;
    let _ = shared.caches.jobs.wait_until_ready().await;
    let _ = shared.caches.allocations.wait_until_ready().await;
    let job_name = &deployment.spec.job_name;
    let job = shared.caches.jobs.get(ns, job_name);
    if ctx.first_sight(&key) {
        let redo = redo_follow_ups(&shared.client, &deployment, job.as_deref()).await?;
        ctx.pending().entry(key.clone()).or_default().extend(redo);
    }
    ctx.flush(&key).await?;
    if !deployment.is_active() {
        return Ok(Action::await_change());
    }
    let allocs = shared.caches.allocs_of_job(ns, job_name);
    let allocs: Vec<&Allocation> = allocs.iter().map(AsRef::as_ref).collect();
    let now = now_unix();
    let decision = decide(&deployment, job.as_deref(), &allocs, now);
    let Some(mut status) = decision.status else {
        return Ok(match deployment.status {
            None => Action::requeue(JOB_WAIT),
            Some(_) => look_again(decision.requeue_at, now),
        });
    };
    let mut revert_to = None;
    if decision.revert
        && let Some(job) = job.as_deref()
    {
        let target = revert_target(&deployment, job, &job_versions(&shared.client, job).await?);
        let previous = deployment.status.as_ref().map(|s| s.conditions.as_slice());
        describe_revert(&mut status, &target, previous.unwrap_or_default(), now);
        if let RevertTarget::To(version) = target {
            revert_to = Some(Box::new(version.spec.job));
        }
    }
    let rv = deployment.metadata.resource_version.as_deref();
    // A version is stable before its deployment shows successful: whoever waits for the one
    // finds the other.
    if decision.mark_stable {
        ctx.carry_out(&FollowUp::Stable {
            namespace: ns.to_string(),
            name: job_version::name_for(job_name, deployment.spec.job_version),
        })
        .await?;
    }
    if let Some(patch) = status_patch(deployment.status.as_ref(), &status, rv) {
        match shared
            .client
            .patch_status(Kind::Deployment, ns, name, patch)
            .await
        {
            Ok(_) => {
                tracing::debug!(deployment = %key, status = status.status.as_str(), "deployment status written")
            }
            Err(ClientError::NotFound) => return Ok(Action::await_change()),
            // Read before a newer write, whose change comes back and reconciles again.
            Err(ClientError::Conflict(_)) => return Ok(Action::requeue(CONFLICT_RETRY)),
            Err(e) => return Err(e),
        }
    }
    let mut follow_ups = Vec::new();
    if decision.evaluate
        && let Some(job) = job.as_deref()
    {
        let uid = deployment.metadata.uid.clone().unwrap_or_default();
        follow_ups.push(FollowUp::Evaluate {
            request: evaluation_request(job),
            key: [uid, name.to_string(), rv.unwrap_or_default().to_string()],
        });
    }
    if let Some(spec) = revert_to {
        follow_ups.push(FollowUp::Revert {
            deployment: deployment.clone(),
            spec,
        });
    }
    ctx.pending()
        .entry(key.clone())
        .or_default()
        .extend(follow_ups);
    ctx.flush(&key).await?;
    Ok(look_again(decision.requeue_at, now))
}

/// Requeue just after the next deadline, if any.
fn look_again(at: Option<i64>, now: i64) -> Action {
    match at {
        Some(at) => {
            let wait = u64::try_from(at.saturating_sub(now)).unwrap_or_default();
            Action::requeue(Duration::from_secs(wait.saturating_add(1)))
        }
        None => Action::await_change(),
    }
}

fn error_policy<C: Client>(
    deployment: Arc<Deployment>,
    error: &ClientError,
    _ctx: Arc<Context<C>>,
) -> Action {
    tracing::warn!(deployment = deployment.metadata.name(), error = %error, "deployment reconcile failed; retrying");
    Action::requeue(Duration::from_secs(1))
}

/// The versions of `job` (none when the servers keep no versions).
async fn job_versions<C: Client>(client: &C, job: &Job) -> Result<Vec<JobVersion>, ClientError> {
    let query = ListQuery {
        field_selector: Some(format!("spec.jobName={}", job.metadata.name())),
        ..ListQuery::default()
    };
    match client
        .list(Kind::JobVersion, Some(job.metadata.namespace()), &query)
        .await
    {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect()),
        Err(ClientError::NotFound) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The follow-ups a deployment's last status may have left undone when the leader that wrote
/// it lost its leadership (see the module's doc).
async fn redo_follow_ups<C: Client>(
    client: &C,
    deployment: &Arc<Deployment>,
    job: Option<&Job>,
) -> Result<Vec<FollowUp>, ClientError> {
    let (ns, name) = (deployment.metadata.namespace(), deployment.metadata.name());
    let job_name = &deployment.spec.job_name;
    let Some(job) = job.filter(|job| job_matches(deployment, job)) else {
        return Ok(Vec::new());
    };
    let state = deployment.state();
    Ok(if deployment.is_active() {
        let uid = deployment.metadata.uid.clone().unwrap_or_default();
        let rv = deployment
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        // Keyed apart from the evaluation of a health change, which is keyed by the same
        // resourceVersion when it is the first change this leader sees.
        vec![FollowUp::Evaluate {
            request: evaluation_request(job),
            key: [uid, format!("{name}/new-leader"), rv],
        }]
    } else if state == caravan_schemas::deployment::DeploymentState::Successful {
        vec![FollowUp::Stable {
            namespace: ns.to_string(),
            name: job_version::name_for(job_name, deployment.spec.job_version),
        }]
    } else if state == caravan_schemas::deployment::DeploymentState::Failed
        && deployment
            .status
            .as_ref()
            .is_some_and(|s| s.groups.values().any(|g| g.auto_revert))
    {
        match revert_target(deployment, job, &job_versions(client, job).await?) {
            RevertTarget::To(version) => vec![FollowUp::Revert {
                deployment: deployment.clone(),
                spec: Box::new(version.spec.job),
            }],
            _ => Vec::new(),
        }
    } else {
        Vec::new()
    })
}

impl<C: Client> Context<C> {
    /// Whether this is the deployment's first reconcile in this leadership term.
    fn first_sight(&self, key: &ObjectRef) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef, Vec<FollowUp>>> {
        self.follow_ups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Carries out the deployment's pending follow-ups in order; the first that fails stays,
    /// with those after it.
    async fn flush(&self, key: &ObjectRef) -> Result<(), ClientError> {
        let Some(mut queue) = self.pending().remove(key) else {
            return Ok(());
        };
        while let Some(next) = queue.first() {
            if let Err(e) = self.carry_out(next).await {
                self.pending().insert(key.clone(), queue);
                return Err(e);
            }
            queue.remove(0);
        }
        Ok(())
    }

    async fn carry_out(&self, follow_up: &FollowUp) -> Result<(), ClientError> {
        let client = &self.shared.client;
        match follow_up {
            FollowUp::Stable { namespace, name } => {
                let patch = json!({ "status": { "stable": true } });
                match client
                    .patch_status(Kind::JobVersion, namespace, name, patch)
                    .await
                {
                    Ok(_) | Err(ClientError::NotFound) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            FollowUp::Evaluate { request, key } => {
                let key: Vec<&str> = ["deployment"]
                    .into_iter()
                    .chain(key.iter().map(String::as_str))
                    .collect();
                create(client, request, &key).await
            }
            FollowUp::Revert { deployment, spec } => revert(client, deployment, spec).await,
        }
    }
}

/// Writes `spec` into the deployment's job while the job is still at the deployment's
/// version, re-reading it when a concurrent write (its status) moved its `resourceVersion`.
async fn revert<C: Client>(
    client: &C,
    deployment: &Deployment,
    spec: &JobSpec,
) -> Result<(), ClientError> {
    let ns = deployment.metadata.namespace();
    let name = &deployment.spec.job_name;
    for _ in 0..REVERT_ATTEMPTS {
        let job: Job = match client.get(Kind::Job, ns, name).await {
            Ok(value) => {
                serde_json::from_value(value).map_err(|e| ClientError::Invalid(e.to_string()))?
            }
            Err(ClientError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        if !job_matches(deployment, &job) {
            return Ok(());
        }
        let Some(patch) = spec_patch(&job, spec) else {
            return Ok(());
        };
        match client.patch(Kind::Job, ns, name, patch).await {
            Ok(_) => {
                tracing::info!(job = %name, deployment = deployment.metadata.name(), "job reverted to a stable version");
                return Ok(());
            }
            Err(ClientError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ClientError::Conflict(format!("job {name} kept changing")))
}

#[cfg(test)]
mod tests;
