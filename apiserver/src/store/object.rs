//! Stored objects, their keys, and the write operations the state machine applies.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use caravan_schemas::Kind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Identifies an object: kind, namespace (empty for cluster-scoped kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

/// An object as the state holds it: the serialized JSON (with `metadata.resourceVersion` set)
/// plus what the indexes and selectors need, extracted once at apply time.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredObject {
    pub key: ObjectKey,
    pub uid: String,
    /// The Raft log index of the write that last changed this object.
    pub resource_version: u64,
    pub labels: BTreeMap<String, String>,
    /// Values of `Kind::selectable_fields()` present in the object, e.g. `("spec.nodeName", "n1")`.
    pub fields: Vec<(&'static str, String)>,
    /// The whole object as JSON, exactly as served.
    pub json: Bytes,
}

impl StoredObject {
    /// Builds a stored object from a full object value; `metadata.resourceVersion` is set to
    /// `resource_version` in the JSON.
    pub fn from_value(kind: Kind, mut value: Value, resource_version: u64) -> StoredObject {
        let _ = (kind, &mut value, resource_version);
        unimplemented!("store::object::StoredObject::from_value")
    }

    /// Parses the stored JSON back into a value.
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(&self.json).expect("stored objects are valid JSON")
    }

    /// The value of a selectable field (`metadata.name`, `metadata.namespace` included).
    pub fn field(&self, path: &str) -> Option<&str> {
        match path {
            "metadata.name" => Some(&self.key.name),
            "metadata.namespace" => Some(&self.key.namespace),
            _ => self
                .fields
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, v)| v.as_str()),
        }
    }
}

/// What a write expects of the current object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precondition {
    /// The object must not exist (create).
    Absent,
    /// The object must exist with exactly this resourceVersion (update, conditional delete).
    ResourceVersion(u64),
    /// The object must exist (unconditional delete).
    Exists,
}

/// A write operation, decided by the API server before it is proposed. Applying it is
/// deterministic: every timestamp and uid is already in the object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Store `object` (a whole object; its resourceVersion is replaced by the log index).
    Put {
        kind: Kind,
        object: Value,
        expect: Precondition,
    },
    /// Remove the object.
    Delete {
        key: ObjectKey,
        expect: Precondition,
    },
}

/// Why an operation was not applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum OpError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    /// The object changed since it was read: `current` is its resourceVersion now.
    #[error("resourceVersion conflict: the object is now at {current}")]
    Conflict { current: u64 },
    /// The namespace of a namespaced object does not exist.
    #[error("namespace {0} not found")]
    NamespaceNotFound(String),
}

/// Shared pointer to a stored object.
pub type ObjectRef = Arc<StoredObject>;
