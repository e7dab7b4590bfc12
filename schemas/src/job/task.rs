//! A task: one process or container run by a driver, with its resources.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::placement::{Affinity, Constraint};

/// Whether `name` may name a task group or a task: 1 to
/// [`MAX_TASK_NAME_LEN`](crate::limits::MAX_TASK_NAME_LEN) characters of `A-Z a-z 0-9 _ . -`,
/// and neither `.` nor `..`. Client nodes make directory and file names of them (the task's
/// directory in the allocation's, its log files), so a name must stay one path component.
pub fn valid_task_name(name: &str) -> Result<(), String> {
    use crate::limits::MAX_TASK_NAME_LEN;
    if name.is_empty() {
        return Err("must be non-empty".into());
    }
    if name.len() > MAX_TASK_NAME_LEN {
        return Err(format!(
            "must be no more than {MAX_TASK_NAME_LEN} characters, got {}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("must not be {name:?}"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(format!(
            "{name:?} must consist of alphanumeric characters, '_', '.' or '-'"
        ));
    }
    Ok(())
}

/// A unit of work run by a driver inside an allocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Name of the task, unique within its group.
    pub name: String,
    /// Driver that runs the task: `raw_exec`, `exec`, `oci` or `mock`.
    pub driver: String,
    /// Driver-specific configuration, e.g. `command` and `args` for `raw_exec`.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub config: serde_json::Map<String, Value>,
    /// Environment variables set for the task.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// User the task runs as, when the driver supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Compute resources the task needs. Defaults to 100 MHz of CPU and 300 MB of memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Runs the task as a prestart, poststart or poststop hook instead of a main task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// Time between the kill signal and a forced kill. Defaults to 5s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_timeout: Option<String>,
    /// Signal sent to stop the task. Defaults to `SIGINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_signal: Option<String>,
    /// Rotation of the task's stdout and stderr files. Defaults to 10 files of 10 MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogConfig>,
    /// Placement rules that apply to this task's allocations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    /// Placement preferences that apply to this task's allocations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affinities: Vec<Affinity>,
    /// Services the task offers while it runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<super::Service>,
    /// Free-form key/value metadata, interpolated as `${NOMAD_META_key}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// When true, the other tasks of the group are stopped once this one exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<bool>,
}

/// Compute resources asked by a task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// CPU in MHz. Defaults to 100. Ignored when `cores` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u64>,
    /// Whole CPU cores reserved for the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    /// Memory in MB. Defaults to 300.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "memoryMB")]
    pub memory_mb: Option<u64>,
    /// Memory limit in MB when the node allows oversubscription; at least `memoryMB`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "memoryMaxMB"
    )]
    pub memory_max_mb: Option<u64>,
    /// Disk in MB (deprecated in Nomad in favour of the group's `ephemeralDisk`).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "diskMB")]
    pub disk_mb: Option<u64>,
    /// Devices such as GPUs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRequest>,
}

/// A request for devices of one type, e.g. `nvidia/gpu`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRequest {
    /// Device name as `<type>`, `<vendor>/<type>` or `<vendor>/<type>/<model>`.
    pub name: String,
    /// Number of devices. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Rules on device attributes, e.g. `${device.attr.memory} >= 2 GiB`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    /// Preferences on device attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affinities: Vec<Affinity>,
}

/// When a hook task runs relative to the main tasks: `prestart`, `poststart` or `poststop`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleHook {
    #[default]
    Prestart,
    Poststart,
    Poststop,
}

/// Makes a task a lifecycle hook of its group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    /// When the task runs: `prestart`, `poststart` or `poststop`.
    pub hook: LifecycleHook,
    /// Keep the hook running for the life of the allocation. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<bool>,
}

/// Rotation of a task's log files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogConfig {
    /// Rotated files kept per stream. Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_files: Option<u32>,
    /// Size of one file in MB before rotation. Defaults to 10.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "maxFileSizeMB"
    )]
    #[schemars(range(min = 1))]
    pub max_file_size_mb: Option<u32>,
}
