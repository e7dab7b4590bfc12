//! The `Job` kind: a Nomad job (groups of tasks) as a declarative object.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::meta::ObjectMeta;

pub mod defaults;
pub mod group;
mod network;
pub mod placement;
pub mod policy;
pub mod service;
mod service_checks;
pub mod task;
pub(crate) mod validate;

pub use group::{EphemeralDisk, NetworkMode, NetworkResource, Port, TaskGroup};
pub use placement::{Affinity, Constraint, Operator, Spread, SpreadTarget};
pub use policy::{
    DelayFunction, HealthCheck, MigrateStrategy, ParameterizedConfig, PayloadMode, PeriodicConfig,
    ReschedulePolicy, RestartMode, RestartPolicy, UpdateStrategy,
};
pub use service::{
    AddressMode, CheckRestart, CheckStatus, CheckType, Service, ServiceCheck, ServicePort,
};
pub use task::{
    DeviceRequest, Lifecycle, LifecycleHook, LogConfig, Resources, Task, valid_task_name,
};

/// A job: the desired state of a workload, made of task groups that the scheduler places on nodes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Versioned schema of this object: `caravan.dev/v1`.
    pub api_version: String,
    /// Kind of this object: `Job`.
    pub kind: String,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// Desired state of the job.
    pub spec: JobSpec,
    /// Observed state of the job, written by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
}

/// Scheduler that places a job: `service`, `batch`, `system` or `sysbatch`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum JobType {
    #[default]
    Service,
    Batch,
    System,
    Sysbatch,
}

impl JobType {
    /// The type as written in a spec, e.g. `sysbatch`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::Service => "service",
            JobType::Batch => "batch",
            JobType::System => "system",
            JobType::Sysbatch => "sysbatch",
        }
    }
}

/// The desired state of a job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// Scheduler: `service`, `batch`, `system` or `sysbatch`. Defaults to `service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<JobType>,
    /// Scheduling priority, from 1 to 100. Defaults to 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub priority: Option<i32>,
    /// Region the job runs in. Defaults to `global`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Datacenters the job may run in; glob patterns allowed. Defaults to `["*"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
    /// Node pool the job runs in. Defaults to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_pool: Option<String>,
    /// Placement rules for every group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    /// Placement preferences for every group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affinities: Vec<Affinity>,
    /// Spreads for every group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spreads: Vec<Spread>,
    /// Rolling update settings inherited by groups (service and system jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateStrategy>,
    /// Reschedule policy inherited by groups (service and batch jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reschedule: Option<ReschedulePolicy>,
    /// Migration settings inherited by groups (service jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<MigrateStrategy>,
    /// Launch the job on a cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic: Option<PeriodicConfig>,
    /// Make the job a template launched by dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameterized: Option<ParameterizedConfig>,
    /// Free-form key/value metadata, inherited by groups and tasks.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// Stop every allocation of the job while keeping the job (Nomad's `job stop`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stop: bool,
    /// Task groups; at least one.
    #[schemars(length(min = 1))]
    pub groups: Vec<TaskGroup>,
}

impl JobSpec {
    /// The job type, `service` when unset.
    pub fn job_type(&self) -> JobType {
        self.r#type.unwrap_or_default()
    }
}

/// Lifecycle of a job: `pending`, `running` or `dead`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    #[default]
    Pending,
    Running,
    Dead,
}

/// The observed state of a job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// Version of the spec, incremented on every spec change.
    #[serde(default)]
    pub version: i64,
    /// `pending`, `running` or `dead`.
    #[serde(default)]
    pub status: JobState,
    /// Allocation counts per group and client status.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub summary: BTreeMap<String, GroupSummary>,
    /// Current conditions of the job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Whether this version was deployed successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<bool>,
    /// RFC 3339 time this version was submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit_time: Option<String>,
}

/// Allocation counts of one group, by state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupSummary {
    /// Allocations waiting for placement.
    #[serde(default)]
    pub queued: u32,
    /// Allocations placed but not running yet.
    #[serde(default)]
    pub starting: u32,
    /// Allocations running.
    #[serde(default)]
    pub running: u32,
    /// Allocations that failed.
    #[serde(default)]
    pub failed: u32,
    /// Allocations that completed.
    #[serde(default)]
    pub complete: u32,
    /// Allocations lost with their node.
    #[serde(default)]
    pub lost: u32,
    /// Allocations on disconnected nodes.
    #[serde(default)]
    pub unknown: u32,
}
