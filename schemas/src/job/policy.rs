//! Lifecycle policies of a job or group: restart, reschedule, update, migrate, periodic, parameterized.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the client does when a task has failed `attempts` times within `interval`: `fail` the
/// allocation, or `delay` and then start counting again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RestartMode {
    #[default]
    Fail,
    Delay,
}

/// Restarts of failed tasks in place, on the same node (Nomad's `restart` block).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestartPolicy {
    /// Restarts allowed within `interval`. Defaults to 2 (service, system) or 3 (batch, sysbatch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Window in which `attempts` are counted. Defaults to 30m (service, system) or 24h (batch, sysbatch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Wait before restarting a task. Defaults to 15s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// What to do when attempts are exhausted: `fail` or `delay`. Defaults to `fail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RestartMode>,
}

/// How the delay between reschedules grows: `constant`, `exponential` or `fibonacci`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DelayFunction {
    #[default]
    Constant,
    Exponential,
    Fibonacci,
}

/// Replacement of failed allocations on other nodes (Nomad's `reschedule` block).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReschedulePolicy {
    /// Reschedules allowed within `interval` (ignored when `unlimited`). Defaults to 0 (service) or 1 (batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Window in which `attempts` are counted. Defaults to 0s (service) or 24h (batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Wait before the first reschedule. Defaults to 30s (service) or 5s (batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// Growth of the delay between reschedules. Defaults to `exponential` (service) or `constant` (batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_function: Option<DelayFunction>,
    /// Upper bound of the delay. Defaults to 1h (service) or 0s (batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<String>,
    /// Reschedule without limit. Defaults to true (service) or false (batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlimited: Option<bool>,
}

/// How allocation health is judged during updates and migrations: `checks`, `task_states` or `manual`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheck {
    #[default]
    Checks,
    TaskStates,
    Manual,
}

/// Rolling updates and canaries (Nomad's `update` block); service and system jobs only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStrategy {
    /// Allocations updated at the same time. Defaults to 1; 0 disables rolling updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    /// How health is determined: `checks`, `task_states` or `manual`. Defaults to `checks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Time an allocation must be healthy before it counts as healthy. Defaults to 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_healthy_time: Option<String>,
    /// Time an allocation has to become healthy before it is marked unhealthy. Defaults to 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_deadline: Option<String>,
    /// Time the deployment has to make progress before it fails. Defaults to 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline: Option<String>,
    /// Roll back to the last stable version when the deployment fails. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_revert: Option<bool>,
    /// Promote canaries once they are all healthy. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promote: Option<bool>,
    /// Canaries placed before a rolling update proceeds. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<u32>,
    /// Delay between updates of successive batches (Nomad's legacy field): refused, rolling
    /// updates wait for health instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stagger: Option<String>,
}

/// How allocations move off a draining node (Nomad's `migrate` block); service jobs only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrateStrategy {
    /// Allocations migrated at the same time. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    /// How health is determined: `checks` or `task_states`. Defaults to `checks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Time a replacement must be healthy before the next migration. Defaults to 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_healthy_time: Option<String>,
    /// Time a replacement has to become healthy. Defaults to 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_deadline: Option<String>,
}

/// Launches the job on a cron schedule (Nomad's `periodic` block).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeriodicConfig {
    /// Cron expression, e.g. `*/15 * * * *`.
    pub cron: String,
    /// Skip a launch while the previous one is still running. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prohibit_overlap: Option<bool>,
    /// IANA time zone the cron expression is evaluated in. Defaults to `UTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Whether launches happen. Defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Whether a dispatched parameterized job takes a payload: `optional`, `required` or `forbidden`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayloadMode {
    #[default]
    Optional,
    Required,
    Forbidden,
}

/// Makes the job a template launched by `job dispatch` (Nomad's `parameterized` block).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParameterizedConfig {
    /// Whether a payload is `optional`, `required` or `forbidden`. Defaults to `optional`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<PayloadMode>,
    /// Meta keys a dispatch must set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meta_required: Vec<String>,
    /// Meta keys a dispatch may set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meta_optional: Vec<String>,
}
