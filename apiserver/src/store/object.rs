//! Stored objects, their keys, and the write operations the state machine applies.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use caravan_schemas::Kind;
use caravan_schemas::plan::{Plan, PlanResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::json::{Indexed, ObjectJson, readable};
use super::usage::{AllocUsage, NodeFit};

/// The `(kind, field)` pairs the state keeps a secondary index of, and the watch cache a
/// ring of events per value of.
pub(crate) const INDEXED_FIELDS: [(Kind, &str); 3] = [
    (Kind::Allocation, "spec.nodeName"),
    (Kind::Allocation, "spec.jobName"),
    (Kind::Evaluation, "spec.jobName"),
];

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
    /// For a live (non-terminal) Allocation with a node: what it holds there, for the per-node
    /// usage index. `None` for other kinds and terminal allocations.
    pub usage: Option<AllocUsage>,
    /// For a Node: what the plan applier checks placements against.
    pub node: Option<Arc<NodeFit>>,
}

impl StoredObject {
    /// Builds a stored object from a full object value; `metadata.resourceVersion` is set to
    /// `resource_version` in the JSON.
    pub fn from_value(kind: Kind, mut value: Value, resource_version: u64) -> StoredObject {
        set_resource_version(&mut value, resource_version);
        StoredObject::extract(kind, &value, resource_version, serialize(&value))
    }

    /// Builds a stored object from the JSON of a put, stamped with `resource_version`. The
    /// bytes are spliced, not re-serialized, when the JSON allows it (see `Indexed::read`);
    /// otherwise this is [`StoredObject::from_value`] of the parsed JSON.
    pub fn from_put(kind: Kind, json: &ObjectJson, resource_version: u64) -> StoredObject {
        let text = json.get();
        let Some(indexed) = Indexed::read(text).filter(|_| readable(kind)) else {
            let value = serde_json::from_str(text).expect("an ObjectJson is valid JSON");
            return StoredObject::from_value(kind, value, resource_version);
        };
        let json = Bytes::from(indexed.stamp(text, resource_version));
        let cow = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().unwrap_or("").to_owned();
        let fields = kind
            .selectable_fields()
            .iter()
            .filter_map(|path| Some((*path, indexed.field(path)?.to_owned())))
            .collect();
        StoredObject {
            key: ObjectKey {
                kind,
                namespace: if kind.namespaced() {
                    cow(&indexed.namespace)
                } else {
                    String::new()
                },
                name: cow(&indexed.name),
            },
            uid: cow(&indexed.uid),
            resource_version,
            labels: indexed.labels,
            fields,
            usage: match kind {
                Kind::Allocation => AllocUsage::of_json(&json),
                _ => None,
            },
            node: node_fit(kind, &json),
            json,
        }
    }

    /// Rebuilds a stored object from JSON it served before (a snapshot): the resourceVersion is
    /// read back from `metadata.resourceVersion` and the bytes are kept as they are.
    pub(crate) fn from_json(kind: Kind, json: Bytes) -> Result<StoredObject, serde_json::Error> {
        let value: Value = serde_json::from_slice(&json)?;
        let resource_version = str_at(&value, "metadata.resourceVersion")
            .and_then(|rv| rv.parse::<u64>().ok())
            .ok_or_else(|| {
                <serde_json::Error as serde::de::Error>::custom(
                    "stored object without a numeric metadata.resourceVersion",
                )
            })?;
        Ok(StoredObject::extract(kind, &value, resource_version, json))
    }

    /// The same object stamped with another resourceVersion (the JSON too); used for the last
    /// state of a deleted object.
    pub(crate) fn restamped(&self, resource_version: u64) -> StoredObject {
        let mut value = self.to_value();
        set_resource_version(&mut value, resource_version);
        StoredObject {
            resource_version,
            json: serialize(&value),
            ..self.clone()
        }
    }

    /// Pulls key, uid, labels and selectable fields out of `value`; `json` is its serialization.
    fn extract(kind: Kind, value: &Value, resource_version: u64, json: Bytes) -> StoredObject {
        let namespace = if kind.namespaced() {
            str_at(value, "metadata.namespace").unwrap_or_default()
        } else {
            ""
        };
        let labels = value
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let fields = kind
            .selectable_fields()
            .iter()
            .filter_map(|path| Some((*path, str_at(value, path)?.to_owned())))
            .collect();
        StoredObject {
            key: ObjectKey {
                kind,
                namespace: namespace.to_owned(),
                name: str_at(value, "metadata.name")
                    .unwrap_or_default()
                    .to_owned(),
            },
            uid: str_at(value, "metadata.uid").unwrap_or_default().to_owned(),
            resource_version,
            labels,
            fields,
            usage: match kind {
                Kind::Allocation => AllocUsage::of_value(value),
                _ => None,
            },
            node: node_fit(kind, &json),
            json,
        }
    }

    /// Parses the stored JSON back into a value.
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(&self.json).expect("stored objects are valid JSON")
    }

    /// [`StoredObject::to_value`] without the fields at `paths` (see
    /// [`crate::store::pruned`]).
    pub fn to_value_without(&self, paths: &[&[&str]]) -> Value {
        if paths.is_empty() {
            return self.to_value();
        }
        crate::store::pruned::pruned_value(&self.json, paths)
            .expect("stored objects are valid JSON")
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

/// The [`NodeFit`] of a Node's JSON; `None` for other kinds.
fn node_fit(kind: Kind, json: &[u8]) -> Option<Arc<NodeFit>> {
    match kind {
        Kind::Node => NodeFit::of_json(json).map(Arc::new),
        _ => None,
    }
}

/// Sets `metadata.resourceVersion` (creating `metadata` when missing or not an object).
/// `value` as JSON in a buffer of exactly its size: the serializer's buffer grows by doubling,
/// and a stored object keeps its bytes for as long as it lives (about 40 % of an Allocation's
/// bytes were spare capacity). Copied rather than shrunk: mimalloc leaves a block that would
/// stay at least half full where it is.
fn serialize(value: &Value) -> Bytes {
    let json = serde_json::to_vec(value).expect("a JSON value always serializes");
    Bytes::copy_from_slice(&json)
}

fn set_resource_version(value: &mut Value, resource_version: u64) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    if let Some(metadata) = metadata.as_object_mut() {
        metadata.insert(
            "resourceVersion".to_owned(),
            Value::String(resource_version.to_string()),
        );
    }
}

/// The string at a dotted path such as `spec.nodeName`; `None` when absent or not a string.
fn str_at<'a>(value: &'a Value, path: &str) -> Option<&'a str> {
    path.split('.')
        .try_fold(value, |v, segment| v.get(segment))?
        .as_str()
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
    /// Store `object` (a whole object, serialized once; stamped with the log index as its
    /// resourceVersion).
    Put {
        kind: Kind,
        object: ObjectJson,
        expect: Precondition,
        /// The JobVersion a Job write that changed the spec stores with it: stored only when
        /// the put itself is, in the same entry. Absent from entries written before versions
        /// existed, and from every other put.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<Box<VersionPut>>,
    },
    /// Remove the object; removing a Job removes its JobVersions with it.
    Delete {
        key: ObjectKey,
        expect: Precondition,
    },
    /// Apply a scheduler's plan: per node, re-check the fit against the current state and
    /// commit the node's stops and allocations, or reject the node's whole part.
    Plan(PlanOp),
}

/// A JobVersion carried by the put of its Job (see `Op::Put`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionPut {
    /// The whole JobVersion, as the API server built it (uid and creationTimestamp included).
    pub object: ObjectJson,
    /// How many of the job's newest versions are kept once this one is stored; its newest
    /// stable version is kept too. Decided by the proposing server, so every replica trims
    /// alike.
    pub keep: u32,
}

/// A plan as proposed: allocations already carry their uid, creationTimestamp, generation and
/// namespace, so applying it stays deterministic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanOp {
    pub plan: Plan,
}

/// What an applied operation produced.
#[derive(Clone, Debug, PartialEq)]
pub enum OpOutcome {
    /// `Put` and `Delete`: the object as stored (the last state of a deleted object).
    Object(Arc<StoredObject>),
    /// `Plan`: what was committed; `refresh_index` is non-zero when a node part was rejected.
    Plan(Arc<PlanResult>),
}

impl OpOutcome {
    /// The stored object of a `Put` or `Delete`.
    pub fn object(&self) -> Option<&Arc<StoredObject>> {
        match self {
            OpOutcome::Object(object) => Some(object),
            OpOutcome::Plan(_) => None,
        }
    }

    /// The result of a `Plan`.
    pub fn plan(&self) -> Option<&Arc<PlanResult>> {
        match self {
            OpOutcome::Plan(result) => Some(result),
            OpOutcome::Object(_) => None,
        }
    }
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
