//! The `Deployment` kind: the rollout of one job version.
//!
//! The leader's job controller creates one, named `<job>-v<version>` ([`name_for`]), for each
//! new version of a service job whose groups have an `update` block, and cancels the job's
//! older active deployments. The scheduler places canaries and paces the rolling update by it;
//! the deployment controller counts healthy allocations, promotes, fails, succeeds and
//! reverts. Operators act on it through three spec fields: `paused`, `promoted` and `failed`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
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
    /// Uid of that job: a job deleted and created again does not take over its deployments.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub job_uid: String,
    /// Version of the job being deployed.
    #[serde(default)]
    pub job_version: i64,
    /// Update settings of each group.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, UpdateStrategy>,
    /// Set by an operator (`caravan deployment pause`): no new allocations of this version
    /// are placed until it is cleared (`resume`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Set by an operator (`caravan deployment promote`): the canaries of every group are
    /// promoted and the rolling update goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted: Option<bool>,
    /// Set by an operator (`caravan deployment fail`): the deployment fails (and reverts when
    /// a group has `autoRevert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<bool>,
}

impl DeploymentSpec {
    /// Whether an operator paused the deployment.
    pub fn is_paused(&self) -> bool {
        self.paused.unwrap_or(false)
    }
    /// Whether an operator promoted the deployment.
    pub fn is_promoted(&self) -> bool {
        self.promoted.unwrap_or(false)
    }
    /// Whether an operator failed the deployment.
    pub fn is_failed(&self) -> bool {
        self.failed.unwrap_or(false)
    }
}

/// The name of the deployment of version `version` of job `job`: `<job>-v<version>`.
pub fn name_for(job: &str, version: i64) -> String {
    crate::job_version::name_for(job, version)
}

/// Descriptions of a deployment's status, as Nomad words them.
pub mod descriptions {
    /// Placing and waiting for healthy allocations.
    pub const RUNNING: &str = "Deployment is running";
    /// Canaries placed, waiting for `caravan deployment promote`.
    pub const NEEDS_PROMOTION: &str = "Deployment is running but requires manual promotion";
    /// Canaries placed, promoted once all are healthy.
    pub const AUTO_PROMOTION: &str = "Deployment is running pending automatic promotion";
    /// Paused by an operator.
    pub const PAUSED: &str = "Deployment is paused";
    /// Every group has its healthy allocations.
    pub const SUCCESSFUL: &str = "Deployment completed successfully";
    /// Failed by an operator.
    pub const FAILED_BY_USER: &str = "Deployment marked as failed";
    /// No progress before `requireProgressBy`.
    pub const FAILED_PROGRESS_DEADLINE: &str = "Failed due to progress deadline";
    /// An allocation became unhealthy where that fails the deployment.
    pub const FAILED_ALLOCATIONS: &str = "Failed due to unhealthy allocations";
    /// A newer version of the job was registered.
    pub const NEWER_JOB: &str = "Cancelled due to newer version of job";
    /// The job was stopped or deleted.
    pub const STOPPED_JOB: &str = "Cancelled because job is stopped";
}

/// Progress of a deployment: `running`, `paused`, `failed`, `successful`, `cancelled`,
/// `pending`, `blocked` or `unblocking`. The last two are Nomad's multi-region states,
/// which Caravan never sets.
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
    /// `Progressing` (reasons `NewDeployment`, `Running`, `Paused`, `Successful`,
    /// `ProgressDeadlineExceeded`, `UnhealthyAllocations`, `Failed`, `Cancelled`),
    /// `Available` (every group has its healthy allocations) and, with canaries, `Promoted`:
    /// for `kubectl wait --for=condition=…`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
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

impl DeploymentState {
    /// Whether the deployment still places and watches allocations.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            DeploymentState::Running
                | DeploymentState::Paused
                | DeploymentState::Pending
                | DeploymentState::Blocked
                | DeploymentState::Unblocking
        )
    }

    /// The lowercase name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::Running => "running",
            DeploymentState::Paused => "paused",
            DeploymentState::Failed => "failed",
            DeploymentState::Successful => "successful",
            DeploymentState::Cancelled => "cancelled",
            DeploymentState::Pending => "pending",
            DeploymentState::Blocked => "blocked",
            DeploymentState::Unblocking => "unblocking",
        }
    }
}

impl Deployment {
    /// The deployment's state; `pending` before the controller first wrote it.
    pub fn state(&self) -> DeploymentState {
        self.status.as_ref().map(|s| s.status).unwrap_or_default()
    }

    /// Whether the deployment still places and watches allocations.
    pub fn is_active(&self) -> bool {
        self.state().is_active()
    }

    /// The progress of `group`, when the status has it.
    pub fn group(&self, group: &str) -> Option<&DeploymentGroupState> {
        self.status.as_ref().and_then(|s| s.groups.get(group))
    }

    /// Whether the canaries of `group` were promoted (or it has none to promote).
    pub fn promoted(&self, group: &str) -> bool {
        self.group(group)
            .is_none_or(|g| g.desired_canaries == 0 || g.promoted)
    }
}
