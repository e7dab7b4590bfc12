//! What a garbage collection pass deleted ([`GcSummary`]): the answer of `POST /v1/system/gc`.

use serde::{Deserialize, Serialize};

/// The objects of one kind a pass deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    pub count: usize,
    /// `namespace/name`, or `name` for nodes.
    #[serde(default)]
    pub names: Vec<String>,
}

/// What a pass deleted, per kind, and the deletions that failed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GcSummary {
    #[serde(default)]
    pub nodes: Deleted,
    #[serde(default)]
    pub jobs: Deleted,
    #[serde(default)]
    pub evaluations: Deleted,
    #[serde(default)]
    pub allocations: Deleted,
    /// Terminal deployments (`namespace/name`).
    #[serde(default)]
    pub deployments: Deleted,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl GcSummary {
    /// Objects deleted, every kind together.
    pub fn total(&self) -> usize {
        self.nodes.count
            + self.jobs.count
            + self.evaluations.count
            + self.allocations.count
            + self.deployments.count
    }
}
