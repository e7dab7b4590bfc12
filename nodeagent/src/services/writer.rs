//! The writer: one loop per agent that makes the registry's writes through the `Client` — a
//! create carrying the checks' statuses, a delete, a merge patch of `…/status` — a few at a
//! time, and records how each went (a failed write is tried again after a backoff, up to
//! `MAX_BACKOFF` apart). At start and every [`RECONCILE_EVERY`] it lists the node's
//! registrations (`spec.nodeName=<node>`) and reconciles the registry with them. The
//! allocation runners never wait for it.

use std::time::{Duration, Instant};

use caravan_runtime::{Client, ClientError, ListQuery};
use caravan_schemas::service_registration::ServiceRegistrationStatus;
use caravan_schemas::{Kind, ServiceRegistration};
use futures::StreamExt;
use serde_json::{Value, json};

use super::Services;
use super::registry::{Done, Job};
use super::writes::Write;

/// How often the node's registrations are listed and reconciled.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(300);
/// The wait before trying again a list that failed.
const RELIST_AFTER: Duration = Duration::from_secs(5);
/// How long the writer lets changes gather after being woken.
const BATCH: Duration = Duration::from_millis(100);
/// Writes made at once.
const CONCURRENT_WRITES: usize = 16;

impl Services {
    /// Makes the registry's writes for node `node` forever.
    pub async fn run<C: Client>(self, client: C, node: String) {
        let mut reconcile_at = Instant::now();
        loop {
            if Instant::now() >= reconcile_at {
                reconcile_at = match self.reconcile(&client, &node).await {
                    Ok(()) => Instant::now() + RECONCILE_EVERY,
                    Err(e) => {
                        tracing::warn!(error = %e, "failed to list the node's service registrations; retrying");
                        Instant::now() + RELIST_AFTER
                    }
                };
            }
            let (jobs, wake) = self.lock().plan(Instant::now());
            if !jobs.is_empty() {
                let done: Vec<(String, Done)> = futures::stream::iter(jobs)
                    .map(|job| perform(&client, job))
                    .buffer_unordered(CONCURRENT_WRITES)
                    .collect()
                    .await;
                let mut registry = self.lock();
                let now = Instant::now();
                for (name, done) in done {
                    registry.finish(&name, done, now);
                }
                continue;
            }
            let until = wake.map_or(reconcile_at, |w| w.min(reconcile_at));
            tokio::select! {
                () = self.notify.notified() => tokio::time::sleep(BATCH).await,
                () = tokio::time::sleep_until(until.into()) => {}
            }
        }
    }

    async fn reconcile<C: Client>(&self, client: &C, node: &str) -> Result<(), ClientError> {
        let query = ListQuery {
            field_selector: Some(format!("spec.nodeName={node}")),
            ..ListQuery::default()
        };
        let list = client.list(Kind::ServiceRegistration, None, &query).await?;
        let existing: Vec<ServiceRegistration> = list
            .items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect();
        self.lock().reconcile(existing, Instant::now());
        Ok(())
    }
}

/// Makes one write; the registration's name and how it went.
async fn perform<C: Client>(client: &C, job: Job) -> (String, Done) {
    let (namespace, name) = (job.namespace.as_str(), job.name.as_str());
    let done = match job.write {
        Write::Create(object) => create(client, namespace, name, object).await,
        Write::Replace(object) => match delete(client, namespace, name).await {
            Done::Absent => create(client, namespace, name, object).await,
            other => other,
        },
        Write::PatchStatus(status) => {
            let patch = json!({ "status": status_patch(&status) });
            match client
                .patch_status(Kind::ServiceRegistration, namespace, name, patch)
                .await
            {
                Ok(_) => Done::StatusWritten(status),
                Err(ClientError::NotFound) => Done::Absent,
                Err(e) => Done::Failed(e),
            }
        }
        Write::Delete => delete(client, namespace, name).await,
    };
    if let Done::Failed(e) = &done {
        tracing::warn!(registration = %name, error = %e, "failed to write a service registration; retrying");
    }
    (job.name, done)
}

/// Creates the registration; one that exists already is taken as it is (the next plan replaces
/// or patches it if it differs).
async fn create<C: Client>(
    client: &C,
    namespace: &str,
    name: &str,
    object: Box<ServiceRegistration>,
) -> Done {
    let value = match serde_json::to_value(&object) {
        Ok(value) => value,
        Err(e) => return Done::Failed(ClientError::Invalid(e.to_string())),
    };
    match client.create(Kind::ServiceRegistration, value).await {
        Ok(_) => Done::Written {
            spec: Box::new(object.spec),
            status: object.status.unwrap_or_default(),
        },
        Err(ClientError::AlreadyExists) => {
            match client.get(Kind::ServiceRegistration, namespace, name).await {
                Ok(value) => match serde_json::from_value::<ServiceRegistration>(value) {
                    Ok(existing) => Done::Written {
                        spec: Box::new(existing.spec),
                        status: existing.status.unwrap_or_default(),
                    },
                    Err(e) => Done::Failed(ClientError::Invalid(e.to_string())),
                },
                Err(ClientError::NotFound) => Done::Absent,
                Err(e) => Done::Failed(e),
            }
        }
        Err(e) => Done::Failed(e),
    }
}

async fn delete<C: Client>(client: &C, namespace: &str, name: &str) -> Done {
    match client
        .delete(Kind::ServiceRegistration, namespace, name)
        .await
    {
        Ok(()) | Err(ClientError::NotFound) => Done::Absent,
        Err(e) => Done::Failed(e),
    }
}

/// The status as a merge patch: every check replaced, none left when there are none.
fn status_patch(status: &ServiceRegistrationStatus) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.entry("checks").or_insert(Value::Null);
    }
    value
}
