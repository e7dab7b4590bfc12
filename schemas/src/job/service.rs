//! Services and their health checks (Nomad's `service` and `check` blocks, native service
//! discovery): declared at group or task level, registered by the node agent as
//! `ServiceRegistration` objects while their task runs, and checked by it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A service an allocation offers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Name of the service; `${…}` is interpolated. Lowercase letters, digits and `-` once
    /// interpolated (a DNS label).
    pub name: String,
    /// The port: a label of the group's network, or a port number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<ServicePort>,
    /// Tags; `${…}` is interpolated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Free-form key/value metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// Which address to register: `auto` (the default) or `host`, both the host address of the
    /// port. `alloc` and `driver` wait for bridge networking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_mode: Option<AddressMode>,
    /// Where the service is registered: `caravan` (the default; `nomad` is taken as the same,
    /// for jobs written for Nomad).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Health checks of the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<ServiceCheck>,
}

/// A service's port: a label of the group's network or a number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ServicePort {
    /// A port number.
    Number(u32),
    /// A label of the group's `network.ports`.
    Label(String),
}

/// Which address a service registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AddressMode {
    #[default]
    Auto,
    Host,
    Alloc,
    Driver,
}

/// Kind of health check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckType {
    /// An HTTP request; passing on the expected status (any 2xx by default), warning on 429,
    /// critical otherwise.
    #[default]
    Http,
    /// A TCP connection.
    Tcp,
    /// A command run in the task's context; exit 0 passing, 1 warning, anything else critical.
    Script,
    /// A gRPC health check (not supported yet).
    Grpc,
}

/// Status of a check or of a service.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Passing,
    Warning,
    #[default]
    Critical,
}

/// A health check of a service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCheck {
    /// Name of the check, unique within the service. Defaults to `service: "<name>" check`
    /// (with its position when the service has several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `http`, `tcp` or `script`.
    pub r#type: CheckType,
    /// The port checked, when not the service's: a label or a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<ServicePort>,
    /// HTTP path. Defaults to `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// HTTP method. Defaults to `GET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// HTTP headers sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Vec<String>>,
    /// HTTP status that passes. Defaults to any 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    pub expected_status: Option<u32>,
    /// Script checks: the command, run in the task's context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Script checks: its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Script checks of a group service: the task whose context runs the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Time between runs, e.g. `10s`. Required, at least 1s.
    pub interval: String,
    /// Time a run may take, e.g. `2s`. Required, at least 1s.
    pub timeout: String,
    /// Status before the first run. Defaults to `critical`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_status: Option<CheckStatus>,
    /// Consecutive passing runs before the check is passing. Defaults to 0 (at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_before_passing: Option<u32>,
    /// Consecutive failing runs before the check is critical. Defaults to 0 (at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures_before_critical: Option<u32>,
    /// Restart the task when the check keeps failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_restart: Option<CheckRestart>,
}

/// Restart of a task whose check keeps failing (Nomad's `check_restart`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckRestart {
    /// Consecutive unhealthy runs that restart the task; 0 turns restarts off. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Time after the task (re)starts during which failures are not counted. Defaults to 1s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<String>,
    /// Whether `warning` counts as healthy. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_warnings: Option<bool>,
}

impl ServiceCheck {
    /// The check's name: its own, or Nomad's default for the `index`th check of `service`.
    pub fn name_in(&self, service: &str, index: usize, of: usize) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None if of > 1 => format!("service: {service:?} check {index}"),
            None => format!("service: {service:?} check"),
        }
    }
}
