//! JobVersions in the service layer: the version a Job write stores with it, and the writes
//! clients may not make.
//!
//! A write of a Job whose `metadata.generation` changed (a create, or a spec change through
//! replace or any patch) carries the JobVersion `<job>-v<generation - 1>` in its `Op::Put`;
//! the state machine stores it, and trims the job's versions, only when the Job put itself
//! succeeds (`store/state/versions.rs`). Clients read, list and watch JobVersions and write
//! their status (`stable`); nothing else.

use std::collections::BTreeMap;
use std::time::SystemTime;

use caravan_runtime::Subresource;
use caravan_schemas::job_version::{JOB_LABEL, name_for};
use caravan_schemas::{API_VERSION, Job, JobVersion, JobVersionSpec, Kind, ObjectMeta};
use serde::Deserialize;

use super::error::Error;
use super::prepare::timestamp;
use crate::context::ApiContext;
use crate::store::object::VersionPut;
use crate::store::{ObjectJson, StoredObject};

/// Whether clients may create, replace, patch and delete objects of `kind` (their status
/// subresource aside): [`Kind::client_writable`].
pub fn client_writable(kind: Kind) -> bool {
    kind.client_writable()
}

/// Refuses a client's `verb` (`create`, `update`, `patch`, `delete`) on `subresource` of
/// `kind` when only the servers write it.
pub(super) fn check_client_write(
    kind: Kind,
    subresource: Subresource,
    verb: &str,
) -> Result<(), Error> {
    if subresource == Subresource::Status && kind.has_status() && !kind.client_writes_status() {
        return Err(Error::MethodNotAllowed(format!(
            "{verb} is not allowed on the status of {}.{}: it holds the hash of the secret the \
             servers made",
            kind.plural(),
            caravan_schemas::GROUP,
        )));
    }
    if client_writable(kind) || subresource == Subresource::Status {
        return Ok(());
    }
    Err(Error::MethodNotAllowed(format!(
        "{verb} is not allowed on {}.{}: JobVersions are written by the servers when a Job's \
         spec changes, and deleted with the Job; clients may get, list and watch them and \
         write their status",
        kind.plural(),
        caravan_schemas::GROUP,
    )))
}

/// The version a write of `object` of `kind` over `previous` (`None` for a create) stores
/// with it: for a Job whose generation changed, a new JobVersion with a fresh uid, created
/// `now`, with the server's retention setting.
pub(super) fn version_put(
    ctx: &ApiContext,
    kind: Kind,
    object: &ObjectJson,
    previous: Option<&StoredObject>,
    now: SystemTime,
) -> Result<Option<Box<VersionPut>>, Error> {
    if kind != Kind::Job {
        return Ok(None);
    }
    let uid = uuid::Uuid::new_v4().to_string();
    let keep = ctx.config.job_versions_kept;
    derive(object.get(), previous.map(|p| &p.json[..]), &uid, now, keep)
        .map(|version| version.map(Box::new))
}

/// The JobVersion of the Job `job` (its JSON, as about to be stored) when its generation
/// differs from that of `previous` (the stored Job's JSON; `None` for a create): named
/// `<job>-v<version>`, labelled with the job, its spec the job's admitted spec.
pub fn derive(
    job: &str,
    previous: Option<&[u8]>,
    uid: &str,
    now: SystemTime,
    keep: u32,
) -> Result<Option<VersionPut>, Error> {
    if let Some(previous) = previous
        && generation(job.as_bytes()) == generation(previous)
    {
        return Ok(None);
    }
    let job: Job = serde_json::from_str(job)
        .map_err(|e| Error::Internal(format!("an admitted Job did not decode: {e}")))?;
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let version = job.version();
    let object = JobVersion {
        api_version: API_VERSION.to_owned(),
        kind: Kind::JobVersion.name().to_owned(),
        metadata: ObjectMeta {
            name: Some(name_for(&job_name, version)),
            namespace: job.metadata.namespace.clone(),
            uid: Some(uid.to_owned()),
            generation: Some(1),
            creation_timestamp: Some(timestamp(now)),
            labels: BTreeMap::from([(JOB_LABEL.to_owned(), job_name.clone())]),
            ..ObjectMeta::default()
        },
        spec: JobVersionSpec {
            job_name,
            job_uid: job.metadata.uid.clone().unwrap_or_default(),
            version,
            job: job.spec,
        },
        status: None,
    };
    let object = ObjectJson::serialize(&object)
        .map_err(|e| Error::Internal(format!("a JobVersion did not serialize: {e}")))?;
    Ok(Some(VersionPut { object, keep }))
}

/// `metadata.generation` of an object's JSON; `None` when absent or unreadable.
fn generation(json: &[u8]) -> Option<i64> {
    #[derive(Deserialize)]
    struct Object {
        metadata: Meta,
    }
    #[derive(Deserialize)]
    struct Meta {
        #[serde(default)]
        generation: Option<i64>,
    }
    serde_json::from_slice::<Object>(json)
        .ok()
        .and_then(|o| o.metadata.generation)
}

#[cfg(test)]
mod tests;
