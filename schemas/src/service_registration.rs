//! The `ServiceRegistration` kind: one instance of a service, where to reach it and how its
//! checks fare (Nomad's native service discovery).
//!
//! The node agent creates one for each service of a task when the task starts (group services
//! when the allocation's first task starts) and deletes it when the task stops; it writes the
//! check results through the status subresource. The leader deletes the registrations of
//! allocations that ended and of nodes that went down, so a crashed agent leaves none behind.
//! Load balancers and dashboards watch them, e.g. with `fieldSelector=spec.serviceName=web`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::job::CheckStatus;
use crate::meta::ObjectMeta;
use crate::stable_hash::stable_hash;

/// One registered instance of a service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRegistration {
    /// Versioned schema of this object: `caravan.dev/v1`.
    pub api_version: String,
    /// Kind of this object: `ServiceRegistration`.
    pub kind: String,
    /// Standard object metadata; the name is made by [`name_for`].
    pub metadata: ObjectMeta,
    /// The service instance.
    pub spec: ServiceRegistrationSpec,
    /// How its checks fare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ServiceRegistrationStatus>,
}

/// Where a service instance is and what it belongs to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRegistrationSpec {
    /// Name of the service.
    pub service_name: String,
    /// Job of the allocation, in the same namespace.
    pub job_name: String,
    /// Task group of the allocation.
    pub group_name: String,
    /// Task that offers the service; absent for a group service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    /// Allocation that offers it, in the same namespace.
    pub alloc_name: String,
    /// Node the allocation runs on.
    pub node_name: String,
    /// Datacenter of that node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// Address to reach the service at.
    pub address: String,
    /// Port to reach it at; 0 for a service without a port.
    #[schemars(range(max = 65535))]
    pub port: u32,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

/// The checks of a service instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRegistrationStatus {
    /// The worst status of its checks; `passing` without checks.
    #[serde(default)]
    pub status: CheckStatus,
    /// Each check's latest result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
}

/// The latest result of one check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// Name of the check.
    pub name: String,
    /// `http`, `tcp` or `script`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    /// Its status, after `successBeforePassing` and `failuresBeforeCritical`.
    pub status: CheckStatus,
    /// What the last run said (an HTTP status, an error, a script's output), truncated.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// RFC 3339 time of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

impl ServiceRegistration {
    /// The worst status of its checks, `passing` when it has none or no status yet.
    pub fn check_status(&self) -> CheckStatus {
        self.status
            .as_ref()
            .map_or(CheckStatus::Passing, |s| s.status)
    }
}

/// The name of the registration of service `service` (the `index`th service of `task`, or of
/// the group when `task` is `None`) of allocation `alloc`: `<alloc>-<8 hex>`, the hex a stable
/// hash of the parts, so that an agent writing it again after a restart finds it. A valid DNS
/// subdomain whenever `alloc` is.
pub fn name_for(alloc: &str, task: Option<&str>, service: &str, index: usize) -> String {
    const MAX: usize = crate::limits::MAX_NAME_LEN - 9;
    let index = index.to_string();
    let hash = stable_hash([alloc, task.unwrap_or(""), service, index.as_str()]) as u32;
    let mut keep = alloc.len().min(MAX);
    while !alloc.is_char_boundary(keep) {
        keep -= 1;
    }
    let prefix = alloc[..keep].trim_end_matches(['-', '.']);
    format!("{prefix}-{hash:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_distinct_and_bounded() {
        let a = name_for("web-g-0-0a1b2c3d", Some("t"), "web", 0);
        assert_eq!(a, name_for("web-g-0-0a1b2c3d", Some("t"), "web", 0));
        assert_ne!(a, name_for("web-g-0-0a1b2c3d", None, "web", 0));
        assert_ne!(a, name_for("web-g-0-0a1b2c3d", Some("t"), "web", 1));
        assert!(a.starts_with("web-g-0-0a1b2c3d-"));
        let long = "a".repeat(253);
        assert!(name_for(&long, None, "s", 0).len() <= 253);
    }
}
