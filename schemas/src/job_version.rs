//! The `JobVersion` kind: one spec of a Job, kept when the spec changed.
//!
//! The servers write a JobVersion in the same Raft entry as every Job write that changes the
//! spec (a new `metadata.generation`), and delete a job's versions with the job. Clients read,
//! list and watch them, and the deployment controller marks a version `stable` through the
//! status subresource once a deployment of it succeeded; nobody else creates, replaces or
//! deletes them. The servers keep the newest versions of each job (Nomad keeps 6) and the
//! newest stable one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::job::JobSpec;
use crate::meta::ObjectMeta;

/// One version of a job's spec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobVersion {
    /// Versioned schema of this object: `caravan.dev/v1`.
    pub api_version: String,
    /// Kind of this object: `JobVersion`.
    pub kind: String,
    /// Standard object metadata; the name is `<job>-v<version>` ([`name_for`]).
    pub metadata: ObjectMeta,
    /// The job, its version and the spec it had then.
    pub spec: JobVersionSpec,
    /// Whether a deployment of this version succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobVersionStatus>,
}

/// A job's spec at one version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobVersionSpec {
    /// Job this is a version of, in the same namespace.
    pub job_name: String,
    /// Uid of that job: a job deleted and created again starts its versions anew.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub job_uid: String,
    /// The version: the job's `metadata.generation` minus one.
    #[serde(default)]
    pub version: i64,
    /// The job's spec at this version, defaults applied.
    pub job: JobSpec,
}

/// What happened to a version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobVersionStatus {
    /// A deployment of this version succeeded: `caravan job revert` and auto-revert go back
    /// to stable versions.
    #[serde(default)]
    pub stable: bool,
}

impl JobVersion {
    /// Whether a deployment of this version succeeded.
    pub fn is_stable(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.stable)
    }
}

/// The name of version `version` of job `job`: `<job>-v<version>`. Job names are at most 63
/// characters (a label value), so this stays a valid DNS subdomain.
pub fn name_for(job: &str, version: i64) -> String {
    format!("{job}-v{version}")
}

/// The label every JobVersion and Deployment of a job carries, with the job's name as value.
pub const JOB_LABEL: &str = "caravan.dev/job";
