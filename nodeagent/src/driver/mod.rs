//! Task drivers behind one [`Driver`] trait: `raw_exec`, `exec` and `oci` run through a
//! per-task executor process (`caravan executor`), `mock` simulates work in the agent.
//!
//! CONTRACT: the types below are shared by the task runner, the drivers and the executor;
//! change them only together.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use caravan_schemas::node::DriverInfo;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod executor;
pub mod mock;
mod pidfd;

/// Everything a driver needs to start one task. Built by the task runner from the job's task,
/// the allocation and the agent's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    /// Allocation uid (`CARAVAN_ALLOC_ID`); unique on the node.
    pub alloc_id: String,
    /// Allocation object name.
    pub alloc_name: String,
    pub namespace: String,
    pub job_name: String,
    pub group_name: String,
    pub task_name: String,
    /// `raw_exec`, `exec`, `oci` or `mock`.
    pub driver: String,
    /// The task's driver configuration (`command`, `args`, `image`, `runFor`, …).
    pub config: Map<String, Value>,
    /// The complete environment, `CARAVAN_*` variables included.
    pub env: BTreeMap<String, String>,
    /// User to run as, when the driver supports it.
    pub user: Option<String>,
    /// The allocation directory shared by its tasks (`<data>/alloc/<alloc-id>`).
    pub alloc_dir: PathBuf,
    /// The task's own directory (`<alloc_dir>/<task>`), with `local/`, `secrets/`, `tmp/`.
    pub task_dir: PathBuf,
    /// Where the task's stdout and stderr files go (`<alloc_dir>/alloc/logs`); files are named
    /// `<task>.stdout.<n>` and `<task>.stderr.<n>`, `n` counting up from 0 as they rotate.
    pub log_dir: PathBuf,
    pub resources: TaskResources,
    pub logs: LogLimits,
    /// Signal sent first to stop the task, e.g. `SIGINT`.
    pub kill_signal: String,
    /// Time between the kill signal and SIGKILL.
    #[serde(with = "humantime_serde_compat")]
    pub kill_timeout: Duration,
    /// The allocation's network namespace (`network.mode: bridge` or `none`), which `exec` and
    /// `oci` containers join; `None` shares the host's network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
}

/// Limits enforced through cgroups (by `exec` and `oci`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResources {
    /// CPU in MHz; becomes the CPU shares.
    pub cpu_mhz: u64,
    /// Memory in MB: the soft limit, and the hard limit when `memory_max_mb` is unset.
    pub memory_mb: u64,
    /// Hard memory limit in MB.
    pub memory_max_mb: Option<u64>,
    /// Maximum number of processes; 0 means unlimited.
    pub pids_limit: u64,
}

/// Rotation of a task's log files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLimits {
    pub max_files: u32,
    pub max_file_size_mb: u32,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            max_files: 10,
            max_file_size_mb: 10,
        }
    }
}

/// How a task ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitResult {
    pub exit_code: i32,
    /// Signal that ended the task, if any.
    pub signal: Option<i32>,
    /// The kernel's OOM killer ended the task.
    pub oom_killed: bool,
    /// The driver lost track of the task (e.g. its executor vanished); `exit_code` is then
    /// meaningless.
    pub error: Option<String>,
}

impl ExitResult {
    /// Exit code 0, no signal, no error.
    pub fn successful(&self) -> bool {
        self.exit_code == 0 && self.signal.is_none() && self.error.is_none() && !self.oom_killed
    }
}

/// Why a driver could not start or recover a task.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The task's configuration is wrong (missing command, unknown image, …): restarting it
    /// will not help.
    #[error("invalid task configuration: {0}")]
    InvalidConfig(String),
    /// Starting failed; a restart may succeed.
    #[error("{0}")]
    Start(String),
    /// The task is gone (recover only).
    #[error("task not found: {0}")]
    Gone(String),
}

/// A running task. Dropping a handle does not stop the task.
pub trait TaskHandle: Send + Sync {
    /// Pid of the task's main process (the container's init for `exec`/`oci`), when there is
    /// one.
    fn pid(&self) -> Option<u32>;
    /// What the driver needs to find the task again after an agent restart; persisted by the
    /// agent and passed back to [`Driver::recover`].
    fn state(&self) -> Value;
    /// Waits for the task to exit. May be called again after it returned; it then returns the
    /// same result at once.
    fn wait(&self) -> BoxFuture<'_, ExitResult>;
    /// Sends a signal (e.g. `libc::SIGINT`) to the task (its whole process group for
    /// `raw_exec`).
    fn signal(&self, signal: i32) -> BoxFuture<'_, Result<(), DriverError>>;
    /// Frees what the driver kept for the task after it exited (container state, cgroups,
    /// executor files). Logs stay.
    fn destroy(&self) -> BoxFuture<'_, ()>;
}

/// A task driver.
pub trait Driver: Send + Sync {
    /// `raw_exec`, `exec`, `oci` or `mock`.
    fn name(&self) -> &'static str;
    /// Whether the driver is usable on this node, for the Node's `status.drivers`.
    fn fingerprint(&self) -> DriverInfo;
    /// Starts the task; returns once it runs (or failed to start).
    fn start(&self, spec: TaskSpec) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>>;
    /// Re-attaches to a task started by an earlier agent process, from [`TaskHandle::state`].
    /// A task that exited meanwhile is recovered too: its handle's `wait` returns at once.
    fn recover(
        &self,
        spec: TaskSpec,
        state: Value,
    ) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>>;
}

/// Signal numbers from names (`SIGINT`, `INT`, `sigterm`, `9`).
pub fn parse_signal(name: &str) -> Option<i32> {
    if let Ok(n) = name.parse::<i32>() {
        return (n > 0 && n < 65).then_some(n);
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

/// Durations in task specs are written as humantime strings (`5s`).
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("SIGINT"), Some(2));
        assert_eq!(parse_signal("term"), Some(15));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("SIGNOPE"), None);
        assert_eq!(parse_signal("0"), None);
    }
}
