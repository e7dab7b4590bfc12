//! The `Evaluation` kind: a request to the scheduler to reconcile one job.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::allocation::AllocMetrics;
use crate::meta::ObjectMeta;

/// An evaluation: the scheduler's unit of work, created whenever desired or actual state changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// Versioned schema of this object: `caravan.dev/v1`.
    pub api_version: String,
    /// Kind of this object: `Evaluation`.
    pub kind: String,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// What is to be evaluated.
    pub spec: EvaluationSpec,
    /// Outcome of the evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EvaluationStatus>,
}

/// Why an evaluation was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TriggeredBy {
    #[default]
    JobRegister,
    JobDeregister,
    JobScaling,
    NodeUpdate,
    NodeDrain,
    AllocFailure,
    AllocStop,
    PeriodicJob,
    RollingUpdate,
    DeploymentWatcher,
    FailedFollowUp,
    MaxPlanAttempts,
    QueuedAllocs,
    Preemption,
    Scheduled,
    MaxDisconnectTimeout,
    ReconnectAllocs,
}

/// Scheduler that handles an evaluation: a job type, or `_core` for garbage collection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EvaluationType {
    #[default]
    Service,
    Batch,
    System,
    Sysbatch,
    #[serde(rename = "_core")]
    Core,
}

/// What an evaluation is about.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationSpec {
    /// Job to evaluate, in the evaluation's namespace.
    pub job_name: String,
    /// Version of the job when the evaluation was created.
    #[serde(default)]
    pub job_version: i64,
    /// Why the evaluation was created, e.g. `job-register` or `node-update`.
    pub triggered_by: TriggeredBy,
    /// Priority, from the job. Defaults to 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub priority: Option<i32>,
    /// Scheduler to run: `service`, `batch`, `system`, `sysbatch` or `_core`. Defaults to `service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<EvaluationType>,
    /// Node whose change triggered the evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// RFC 3339 time before which the evaluation must not run (delayed reschedules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_until: Option<String>,
    /// Evaluation that created this one as a follow-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_eval: Option<String>,
}

/// Progress of an evaluation: `pending`, `blocked`, `complete`, `failed` or `canceled`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EvaluationState {
    #[default]
    Pending,
    Blocked,
    Complete,
    Failed,
    Canceled,
}

/// The outcome of an evaluation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationStatus {
    /// `pending`, `blocked`, `complete`, `failed` or `canceled`.
    #[serde(default)]
    pub status: EvaluationState,
    /// Details of the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_description: Option<String>,
    /// Placement metrics of each group that could not be placed in full.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_group_allocs: BTreeMap<String, AllocMetrics>,
    /// Allocations still to be placed, per group.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub queued_allocations: BTreeMap<String, u64>,
    /// Blocked evaluation created for the placements that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_eval: Option<String>,
    /// Follow-up evaluation, e.g. for a delayed reschedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_eval: Option<String>,
    /// Whether each computed node class was eligible, for unblocking.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub class_eligibility: BTreeMap<String, bool>,
    /// Whether a constraint escaped the computed node class.
    #[serde(default)]
    pub escaped_computed_class: bool,
    /// Store revision the scheduler's snapshot was taken at.
    #[serde(default)]
    pub snapshot_index: u64,
}
