//! [`ObjectRef`]: the key a controller queues and reconciles, and helpers reading an object's
//! identity out of its JSON.

use std::fmt;

use caravan_schemas::Kind;
use serde_json::Value;

/// Names one object: its kind, namespace (empty for cluster-scoped kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub kind: Kind,
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    /// A reference to `kind` `namespace/name`; the namespace is dropped for cluster-scoped kinds.
    pub fn new(kind: Kind, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            kind,
            namespace: if kind.namespaced() {
                namespace.to_owned()
            } else {
                String::new()
            },
            name: name.to_owned(),
        }
    }

    /// The reference to `object`, read from its `metadata`; `None` without a name.
    pub fn from_object(kind: Kind, object: &Value) -> Option<ObjectRef> {
        let name = name_of(object)?;
        Some(ObjectRef::new(kind, namespace_of(object), name))
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// `metadata.name`, when present and non-empty.
pub fn name_of(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
}

/// `metadata.namespace`, or `""` when absent (cluster-scoped objects).
pub fn namespace_of(object: &Value) -> &str {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.resourceVersion` as a revision; `None` when absent or not a number.
pub fn resource_version_of(object: &Value) -> Option<u64> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|rv| rv.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cluster_scoped_references_drop_the_namespace() {
        let node = json!({"metadata": {"name": "n1", "namespace": "ignored"}});
        let r = ObjectRef::from_object(Kind::Node, &node).unwrap();
        assert_eq!(r, ObjectRef::new(Kind::Node, "", "n1"));
        assert_eq!(r.to_string(), "Node n1");

        let job = json!({"metadata": {"name": "web", "namespace": "prod", "resourceVersion": "7"}});
        let r = ObjectRef::from_object(Kind::Job, &job).unwrap();
        assert_eq!(r.to_string(), "Job prod/web");
        assert_eq!(resource_version_of(&job), Some(7));
        assert!(ObjectRef::from_object(Kind::Job, &json!({"metadata": {}})).is_none());
    }
}
