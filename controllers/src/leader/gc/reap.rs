//! Carrying out a [`Garbage`] decision through the [`Client`]. Each object is deleted only
//! while it still has the `resourceVersion` the decision saw (a delete precondition, checked
//! by the store when it applies the delete); objects already gone or changed since are
//! skipped. A job goes first and its evaluations and allocations only after
//! it: the job's status is computed from them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use caravan_schemas::Kind;
use futures::StreamExt;
use futures::stream;
use serde_json::Value;

use caravan_schemas::gc::GcSummary;

use crate::gc::decide::{Garbage, JobGarbage, Target};
use caravan_runtime::{Client, ClientError};

/// Deletions in flight at once.
const PARALLEL: usize = 16;

/// Uids of the jobs this collector deleted: such a deletion needs no deregister evaluation,
/// nothing of the job runs any more.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReapedJobs(Arc<Mutex<HashSet<String>>>);

impl ReapedJobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, uid: &str) {
        self.lock().insert(uid.to_string());
    }

    fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// Whether the job of `uid` was deleted by the collector (asked once per deletion).
    pub(crate) fn take(&self, uid: &str) -> bool {
        self.lock().remove(uid)
    }
}

/// What happened to one object.
enum Reaped {
    Deleted,
    /// Gone already, or changed since the decision: the next pass looks again.
    Skipped,
}

/// The object as it is now, if it is still the one the decision saw.
async fn unchanged<C: Client>(
    client: &C,
    kind: Kind,
    target: &Target,
) -> Result<Option<Value>, ClientError> {
    match client.get(kind, &target.namespace, &target.name).await {
        Ok(value) => {
            let now = value
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str);
            Ok(
                (target.resource_version.is_none() || now == target.resource_version.as_deref())
                    .then_some(value),
            )
        }
        Err(ClientError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn delete<C: Client>(client: &C, kind: Kind, target: &Target) -> Result<Reaped, ClientError> {
    let deleted = match &target.resource_version {
        Some(rv) => {
            client
                .delete_at(kind, &target.namespace, &target.name, rv)
                .await
        }
        None => client.delete(kind, &target.namespace, &target.name).await,
    };
    match deleted {
        Ok(()) => Ok(Reaped::Deleted),
        Err(ClientError::NotFound | ClientError::Conflict(_)) => Ok(Reaped::Skipped),
        Err(e) => Err(e),
    }
}

/// Deletes one object unless it changed since the decision (no read first: the delete's
/// precondition is the check).
async fn reap_one<C: Client>(
    client: &C,
    kind: Kind,
    target: &Target,
) -> Result<Reaped, ClientError> {
    delete(client, kind, target).await
}

/// One object's outcome.
type Record = (Kind, Target, Result<Reaped, ClientError>);

/// Deletes a job, then (only if it went) its allocations and evaluations.
async fn reap_job<C: Client>(client: C, job: JobGarbage, reaped: ReapedJobs) -> Vec<Record> {
    let value = match unchanged(&client, Kind::Job, &job.job).await {
        Ok(Some(value)) => value,
        Ok(None) => return Vec::new(),
        Err(e) => return vec![(Kind::Job, job.job, Err(e))],
    };
    let uid = value
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    reaped.insert(&uid);
    let outcome = delete(&client, Kind::Job, &job.job).await;
    let deleted = matches!(outcome, Ok(Reaped::Deleted));
    let mut records = vec![(Kind::Job, job.job, outcome)];
    if !deleted {
        reaped.forget(&uid);
        return records;
    }
    for alloc in job.allocations {
        let outcome = reap_one(&client, Kind::Allocation, &alloc).await;
        records.push((Kind::Allocation, alloc, outcome));
    }
    for eval in job.evaluations {
        let outcome = reap_one(&client, Kind::Evaluation, &eval).await;
        records.push((Kind::Evaluation, eval, outcome));
    }
    records
}

/// Deletes every object of `targets`, a few at a time.
async fn reap_all<C: Client>(client: &C, kind: Kind, targets: Vec<Target>) -> Vec<Record> {
    stream::iter(targets)
        .map(|target| {
            let client = client.clone();
            async move {
                let outcome = reap_one(&client, kind, &target).await;
                (kind, target, outcome)
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await
}

/// Deletes what `garbage` holds: jobs with what belongs to them, then allocations,
/// evaluations, deployments and nodes. Returns what was deleted and what failed.
pub(crate) async fn reap<C: Client>(
    client: &C,
    garbage: Garbage,
    reaped: &ReapedJobs,
) -> GcSummary {
    let mut records: Vec<Record> = stream::iter(garbage.jobs)
        .map(|job| reap_job(client.clone(), job, reaped.clone()))
        .buffer_unordered(PARALLEL)
        .flat_map(stream::iter)
        .collect()
        .await;
    records.extend(reap_all(client, Kind::Allocation, garbage.allocations).await);
    records.extend(reap_all(client, Kind::Evaluation, garbage.evaluations).await);
    records.extend(reap_all(client, Kind::Deployment, garbage.deployments).await);
    records.extend(reap_all(client, Kind::Node, garbage.nodes).await);
    let mut summary = GcSummary::default();
    for (kind, target, outcome) in records {
        record(&mut summary, kind, &target, outcome);
    }
    sort(&mut summary);
    summary
}

fn record(
    summary: &mut GcSummary,
    kind: Kind,
    target: &Target,
    outcome: Result<Reaped, ClientError>,
) {
    match outcome {
        Ok(Reaped::Deleted) => {
            let deleted = match kind {
                Kind::Job => &mut summary.jobs,
                Kind::Evaluation => &mut summary.evaluations,
                Kind::Allocation => &mut summary.allocations,
                Kind::Deployment => &mut summary.deployments,
                _ => &mut summary.nodes,
            };
            deleted.count += 1;
            deleted.names.push(target.display());
        }
        Ok(Reaped::Skipped) => {}
        Err(e) => {
            tracing::warn!(kind = %kind, object = %target.display(), error = %e, "garbage collection could not delete");
            summary
                .errors
                .push(format!("{} {}: {e}", kind.name(), target.display()));
        }
    }
}

fn sort(summary: &mut GcSummary) {
    for deleted in [
        &mut summary.nodes,
        &mut summary.jobs,
        &mut summary.evaluations,
        &mut summary.allocations,
        &mut summary.deployments,
    ] {
        deleted.names.sort();
    }
    summary.errors.sort();
}
