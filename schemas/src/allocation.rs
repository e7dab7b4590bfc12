//! The `Allocation` kind: one instance of a task group placed on a node.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::ObjectMeta;
use crate::name_map::NameMap;

/// An allocation: a task group of a job version placed on a node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    /// Versioned schema of this object: `caravan.dev/v1`.
    pub api_version: String,
    /// Kind of this object: `Allocation`.
    pub kind: String,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// What the scheduler decided.
    pub spec: AllocationSpec,
    /// What the node reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AllocationStatus>,
}

/// What the servers want done with an allocation: `run`, `stop` or `evict`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DesiredStatus {
    #[default]
    Run,
    Stop,
    Evict,
}

/// The scheduler's decision for an allocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocationSpec {
    /// Name of the job, in the allocation's namespace.
    pub job_name: String,
    /// Version of the job the allocation runs.
    #[serde(default)]
    pub job_version: i64,
    /// Task group of the job.
    pub group: String,
    /// Node the allocation is placed on.
    pub node_name: String,
    /// `run`, `stop` or `evict`. Defaults to `run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_status: Option<DesiredStatus>,
    /// Why the desired status was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_description: Option<String>,
    /// Allocation this one replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_allocation: Option<String>,
    /// Allocation that replaced this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_allocation: Option<String>,
    /// Deployment that created the allocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_name: Option<String>,
    /// Evaluation that created the allocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_name: Option<String>,
    /// Resources reserved on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated_resources: Option<AllocatedResources>,
    /// Earlier reschedules of the allocations this one replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reschedule_tracker: Option<RescheduleTracker>,
    /// Transitions the servers asked for: the drainer sets `migrate` on allocations it moves
    /// off a draining node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_transition: Option<DesiredTransition>,
}

/// Transitions asked of an allocation (Nomad's `DesiredTransition`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesiredTransition {
    /// Move the allocation off its draining node: the scheduler stops it and places a
    /// replacement elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<bool>,
}

impl AllocationSpec {
    /// Whether the drainer asked for this allocation to migrate.
    pub fn should_migrate(&self) -> bool {
        self.desired_transition
            .as_ref()
            .and_then(|t| t.migrate)
            .unwrap_or(false)
    }
}

/// Resources reserved on the node for an allocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocatedResources {
    /// Resources per task.
    #[serde(default, skip_serializing_if = "NameMap::is_empty")]
    pub tasks: NameMap<AllocatedTaskResources>,
    /// Resources shared by the tasks.
    #[serde(default)]
    pub shared: AllocatedSharedResources,
}

/// Resources reserved for one task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocatedTaskResources {
    /// CPU in MHz.
    #[serde(default)]
    pub cpu: u64,
    /// Memory in MB.
    #[serde(default, rename = "memoryMB")]
    pub memory_mb: u64,
    /// Memory limit in MB, when oversubscription applies.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "memoryMaxMB"
    )]
    pub memory_max_mb: Option<u64>,
    /// Ids of the reserved CPU cores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cores: Vec<u32>,
    /// Devices reserved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<AllocatedDevice>,
}

/// Devices of one type reserved for a task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocatedDevice {
    /// Device name as `<vendor>/<type>/<model>`.
    pub name: String,
    /// Ids of the reserved device instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
}

/// Resources shared by the tasks of an allocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocatedSharedResources {
    /// Ephemeral disk in MB.
    #[serde(default, rename = "diskMB")]
    pub disk_mb: u64,
    /// Ports assigned on the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<AllocatedPort>,
}

/// A port assigned to an allocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocatedPort {
    /// Label of the port in the group's network.
    pub label: String,
    /// Port on the host.
    pub value: u32,
    /// Port inside the allocation's network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u32>,
    /// Host address the port is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
}

/// Reschedules that led to an allocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RescheduleTracker {
    /// One event per earlier reschedule, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<RescheduleEvent>,
}

/// One reschedule of an allocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RescheduleEvent {
    /// RFC 3339 time of the reschedule.
    pub reschedule_time: String,
    /// Allocation that was replaced.
    pub prev_alloc_name: String,
    /// Node the replaced allocation ran on.
    pub prev_node_name: String,
    /// Delay applied before the reschedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
}

/// What the node reports: `pending`, `running`, `complete`, `failed`, `lost` or `unknown`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientStatus {
    #[default]
    Pending,
    Running,
    Complete,
    Failed,
    Lost,
    Unknown,
}

/// The observed state of an allocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocationStatus {
    /// `pending`, `running`, `complete`, `failed`, `lost` or `unknown`.
    #[serde(default)]
    pub client_status: ClientStatus,
    /// Details of the client status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_description: Option<String>,
    /// State of each task.
    #[serde(default, skip_serializing_if = "NameMap::is_empty")]
    pub task_states: NameMap<TaskState>,
    /// Health of the allocation within its deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_status: Option<AllocDeploymentStatus>,
    /// How the scheduler chose the node.
    // Boxed: the servers' decoded copies mostly go without it, and inline it would make
    // every status 216 bytes larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Box<AllocMetrics>>,
    /// RFC 3339 time of the last status change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modify_time: Option<String>,
}

/// Lifecycle of a task: `pending`, `running` or `dead`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskLifecycleState {
    #[default]
    Pending,
    Running,
    Dead,
}

/// The state of one task of an allocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskState {
    /// `pending`, `running` or `dead`.
    #[serde(default)]
    pub state: TaskLifecycleState,
    /// Whether the task failed.
    #[serde(default)]
    pub failed: bool,
    /// Times the task was restarted.
    #[serde(default)]
    pub restarts: u64,
    /// RFC 3339 time of the last restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restart: Option<String>,
    /// RFC 3339 time the task last started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// RFC 3339 time the task finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Recent events, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<TaskEvent>,
}

/// Something that happened to a task, e.g. `Received`, `Started`, `Terminated`, `Restarting`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskEvent {
    /// Event type, e.g. `Started` or `Terminated`.
    pub r#type: String,
    /// RFC 3339 time of the event.
    pub time: String,
    /// Human-readable details.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Exit code, for a terminated task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Signal that ended the task, for a terminated task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Extra key/value details.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// Health of an allocation within a deployment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocDeploymentStatus {
    /// Whether the allocation is healthy; absent until known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// Whether the allocation is a canary.
    #[serde(default)]
    pub canary: bool,
    /// RFC 3339 time health was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// How the scheduler evaluated nodes for a placement (Nomad's `AllocMetric`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocMetrics {
    /// Nodes examined.
    #[serde(default)]
    pub nodes_evaluated: u64,
    /// Nodes filtered out by constraints.
    #[serde(default)]
    pub nodes_filtered: u64,
    /// Ready nodes per datacenter.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes_available: BTreeMap<String, u64>,
    /// Nodes filtered out per node class.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub class_filtered: BTreeMap<String, u64>,
    /// Nodes filtered out per constraint.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub constraint_filtered: BTreeMap<String, u64>,
    /// Nodes that lacked resources.
    #[serde(default)]
    pub nodes_exhausted: u64,
    /// Nodes that lacked resources per node class.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub class_exhausted: BTreeMap<String, u64>,
    /// Nodes that lacked resources per dimension, e.g. `memory`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimension_exhausted: BTreeMap<String, u64>,
    /// Quotas that were exhausted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quota_exhausted: Vec<String>,
    /// Scores of the best nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<NodeScore>,
    /// Time spent on the placement, as a duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_time: Option<String>,
    /// Failed placements merged into this one.
    #[serde(default)]
    pub coalesced_failures: u64,
}

/// The score of each scorer that rated a node, as Nomad names them. A fixed set of fields
/// rather than a map: one is built for every node a placement keeps, with no allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScorerScores {
    /// Bin packing (or spread) fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binpack: Option<f64>,
    /// Penalty for allocations of the same job and group on the node.
    #[serde(
        default,
        rename = "job-anti-affinity",
        skip_serializing_if = "Option::is_none"
    )]
    pub job_anti_affinity: Option<f64>,
    /// Penalty for the node a rescheduled allocation failed on.
    #[serde(
        default,
        rename = "node-reschedule-penalty",
        skip_serializing_if = "Option::is_none"
    )]
    pub node_reschedule_penalty: Option<f64>,
    /// Node affinities.
    #[serde(
        default,
        rename = "node-affinity",
        skip_serializing_if = "Option::is_none"
    )]
    pub node_affinity: Option<f64>,
    /// Spread targets.
    #[serde(
        default,
        rename = "allocation-spread",
        skip_serializing_if = "Option::is_none"
    )]
    pub allocation_spread: Option<f64>,
}

impl ScorerScores {
    /// Every scorer's name, in the order [`ScorerScores::iter`] lists them.
    pub const NAMES: [&'static str; 5] = [
        "binpack",
        "job-anti-affinity",
        "node-reschedule-penalty",
        "node-affinity",
        "allocation-spread",
    ];

    /// The scores that were set, with their scorer's name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> {
        let values = [
            self.binpack,
            self.job_anti_affinity,
            self.node_reschedule_penalty,
            self.node_affinity,
            self.allocation_spread,
        ];
        Self::NAMES
            .into_iter()
            .zip(values)
            .filter_map(|(name, value)| Some((name, value?)))
    }

    /// The score of the scorer called `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Whether no scorer rated the node.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// The scores of one node for a placement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeScore {
    /// Node scored.
    pub node_name: String,
    /// Score per scorer, e.g. `binpack`, `job-anti-affinity`.
    #[serde(default, skip_serializing_if = "ScorerScores::is_empty")]
    pub scores: ScorerScores,
    /// Final normalized score.
    #[serde(default)]
    pub norm_score: f64,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn node_scores_keep_nomads_map_of_scorer_names() {
        let wire = json!({
            "nodeName": "n1",
            "scores": {"binpack": 0.5, "job-anti-affinity": -0.25},
            "normScore": 0.125
        });
        let score: NodeScore = serde_json::from_value(wire.clone()).expect("score");
        assert_eq!(
            score.scores,
            ScorerScores {
                binpack: Some(0.5),
                job_anti_affinity: Some(-0.25),
                ..ScorerScores::default()
            }
        );
        assert_eq!(serde_json::to_value(&score).expect("json"), wire);
        assert_eq!(
            score.scores.iter().collect::<Vec<_>>(),
            [("binpack", 0.5), ("job-anti-affinity", -0.25)]
        );
        assert!(ScorerScores::default().is_empty());
    }
}
