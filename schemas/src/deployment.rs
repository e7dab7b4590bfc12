//! The `Deployment` kind: the rollout of one job version.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::job::UpdateStrategy;
use crate::meta::ObjectMeta;

/// A deployment: tracks the rollout of a job version, group by group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Versioned schema of this object: `caravan.dev/v1`.
    pub api_version: String,
    /// Kind of this object: `Deployment`.
    pub kind: String,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// The job version rolled out and its update settings.
    pub spec: DeploymentSpec,
    /// Progress of the rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DeploymentStatus>,
}

/// What a deployment rolls out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    /// Job being deployed, in the deployment's namespace.
    pub job_name: String,
    /// Version of the job being deployed.
    #[serde(default)]
    pub job_version: i64,
    /// Update settings of each group.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, UpdateStrategy>,
}

/// Progress of a deployment: `running`, `paused`, `failed`, `successful`, `cancelled`,
/// `pending`, `blocked` or `unblocking`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentState {
    Running,
    Paused,
    Failed,
    Successful,
    Cancelled,
    #[default]
    Pending,
    Blocked,
    Unblocking,
}

/// Progress of a deployment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    /// `running`, `paused`, `failed`, `successful`, `cancelled`, `pending`, `blocked` or `unblocking`.
    #[serde(default)]
    pub status: DeploymentState,
    /// Details of the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_description: Option<String>,
    /// Progress of each group.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, DeploymentGroupState>,
}

/// Progress of one group of a deployment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentGroupState {
    /// Allocations wanted for this version.
    #[serde(default)]
    pub desired_total: u32,
    /// Canaries wanted.
    #[serde(default)]
    pub desired_canaries: u32,
    /// Allocations placed.
    #[serde(default)]
    pub placed_allocs: u32,
    /// Placed allocations that became healthy.
    #[serde(default)]
    pub healthy_allocs: u32,
    /// Placed allocations that became unhealthy.
    #[serde(default)]
    pub unhealthy_allocs: u32,
    /// Names of the canary allocations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placed_canaries: Vec<String>,
    /// Whether the canaries were promoted.
    #[serde(default)]
    pub promoted: bool,
    /// Whether a failed deployment rolls back to the last stable version.
    #[serde(default)]
    pub auto_revert: bool,
    /// RFC 3339 time by which the group must make progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_progress_by: Option<String>,
}
