//! The `Namespace` kind: a cluster-scoped container for jobs and their objects.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::ObjectMeta;

/// A namespace; namespaced objects live in one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    /// Versioned schema of this object: `caravan.dev/v1`.
    pub api_version: String,
    /// Kind of this object: `Namespace`.
    pub kind: String,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// Settings of the namespace.
    #[serde(default)]
    pub spec: NamespaceSpec,
}

/// Settings of a namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSpec {
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Name of the resource quota applied to the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
}
