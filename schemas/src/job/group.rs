//! A task group: the set of tasks placed together on one node as an allocation.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::placement::{Affinity, Constraint, Spread};
use super::policy::{MigrateStrategy, ReschedulePolicy, RestartPolicy, UpdateStrategy};
use super::task::Task;

/// Tasks that are placed together on one node; each instance is an allocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskGroup {
    /// Name of the group, unique within the job.
    pub name: String,
    /// Number of allocations wanted. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Placement rules for this group, added to the job's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    /// Placement preferences for this group, added to the job's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affinities: Vec<Affinity>,
    /// Spreads for this group, added to the job's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spreads: Vec<Spread>,
    /// Restarts of failed tasks on the same node. Defaults depend on the job type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartPolicy>,
    /// Replacement of failed allocations on other nodes. Defaults to the job's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reschedule: Option<ReschedulePolicy>,
    /// Migration off draining nodes. Defaults to the job's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<MigrateStrategy>,
    /// Rolling update settings. Defaults to the job's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateStrategy>,
    /// Scratch disk shared by the group's tasks. Defaults to 300 MB, not sticky.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_disk: Option<EphemeralDisk>,
    /// Network mode and ports of the allocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkResource>,
    /// Services the allocation offers while its tasks run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<super::Service>,
    /// Free-form key/value metadata, merged under the tasks' own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// Tasks of the group; at least one.
    #[schemars(length(min = 1))]
    pub tasks: Vec<Task>,
}

/// The allocation's scratch disk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EphemeralDisk {
    /// Size in MB. Defaults to 300.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "sizeMB")]
    pub size_mb: Option<u64>,
    /// Prefer placing a replacement on the same node and keep the data. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<bool>,
    /// Copy the data to a replacement on another node. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<bool>,
}

/// Network mode of an allocation: `host`, `bridge` or `none`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    #[default]
    Host,
    Bridge,
    None,
}

/// The network of an allocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkResource {
    /// `host`, `bridge` or `none`. Defaults to `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<NetworkMode>,
    /// Ports the allocation needs, static or dynamic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
}

/// A port of an allocation, reachable as `${NOMAD_PORT_<label>}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    /// Name of the port, e.g. `http`.
    pub label: String,
    /// Not set in a job: the scheduler assigns host ports (`static` asks for a fixed one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 65535))]
    pub value: Option<u32>,
    /// Port inside the allocation's network namespace (bridge mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 65535))]
    pub to: Option<u32>,
    /// A fixed host port; when absent the port is dynamic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub r#static: Option<u32>,
    /// Host network of the node the port is on. Defaults to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<String>,
}
