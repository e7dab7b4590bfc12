//! The job controller: one reconcile per job change creates the evaluation a new job version
//! needs, then writes the job's status (version, summary, state) from the caches.

use std::sync::Arc;

use caravan_schemas::{Job, Kind};
use futures::Stream;

use super::Shared;
use super::evals::create;
use crate::client::{Client, ClientError, ListQuery};
use crate::evaluator::job_needs_eval;
use crate::job_status::{status_patch, summarize};
use crate::runtime::object_ref::{name_of, namespace_of};
use crate::runtime::{Action, Controller, ControllerError, ObjectRef};
use crate::scheduler::util::{job_version, namespace};

/// The running controller, as a stream of reconcile results.
pub(crate) fn controller<C: Client>(
    shared: Arc<Shared<C>>,
) -> impl Stream<Item = Result<(ObjectRef, Action), ControllerError<ClientError>>> + Send {
    let by_job = |kind: Kind| {
        move |value: &serde_json::Value| {
            value
                .pointer("/spec/jobName")
                .and_then(serde_json::Value::as_str)
                .map(|job| vec![ObjectRef::new(Kind::Job, namespace_of(value), job)])
                .unwrap_or_default()
                .into_iter()
                .filter(|_| name_of(value).is_some() && kind != Kind::Job)
                .collect()
        }
    };
    Controller::<Job, C>::new(shared.client.clone(), Kind::Job, None, ListQuery::default())
        .watches(Kind::Allocation, by_job(Kind::Allocation))
        .watches(Kind::Evaluation, by_job(Kind::Evaluation))
        .run(reconcile, error_policy, shared)
}

async fn reconcile<C: Client>(
    job: Arc<Job>,
    shared: Arc<Shared<C>>,
) -> Result<Action, ClientError> {
    let ns = namespace(&job.metadata).to_string();
    let name = job.metadata.name.clone().unwrap_or_default();
    // The evaluation first: the status write below records the version as evaluated.
    if let Some(req) = job_needs_eval(&job) {
        let version = req.job_version.to_string();
        let uid = job.metadata.uid.clone().unwrap_or_default();
        create(&shared.client, &req, &["job", &uid, &version]).await?;
    }
    let allocs = shared.caches.allocs_of_job(&ns, &name);
    let evals: Vec<_> = shared
        .caches
        .evaluations
        .state()
        .into_iter()
        .filter(|e| e.spec.job_name == name && namespace(&e.metadata) == ns)
        .collect();
    let mut status = summarize(&job, &allocs, &evals);
    status.version = job_version(&job);
    if let Some(patch) = status_patch(&job.status, &status) {
        match shared
            .client
            .patch(Kind::Job, &ns, &name, patch, true)
            .await
        {
            Ok(_) | Err(ClientError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Action::await_change())
}

fn error_policy<C: Client>(job: Arc<Job>, error: &ClientError, _shared: Arc<Shared<C>>) -> Action {
    tracing::warn!(job = job.metadata.name.as_deref().unwrap_or(""), error = %error, "job reconcile failed; retrying");
    Action::requeue(std::time::Duration::from_secs(1))
}
