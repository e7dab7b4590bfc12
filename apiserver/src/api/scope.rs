//! What an identity may see and change of a kind beyond what its path names (decided by the
//! ACLs in `acl/`): the rows of a list or watch, and the objects a write may touch.

use std::sync::Arc;

use caravan_schemas::Kind;
use caravan_schemas::acl::{Acl, Capability};
use serde::Deserialize;

use super::error::Error;
use crate::store::StoredObject;

/// The objects an identity may see of a kind.
#[derive(Clone, Debug)]
pub enum Scope {
    /// Objects in the namespaces where `acl` grants `capability`, or any capability when
    /// `None` (a Namespace object stands for itself).
    Namespaces {
        acl: Arc<Acl>,
        capability: Option<Capability>,
    },
    /// Objects whose selectable `field` is `value`: a node's own Node, allocations and
    /// service registrations.
    Field { field: &'static str, value: String },
}

impl Scope {
    /// Whether `object` is in scope.
    pub fn admits(&self, object: &StoredObject) -> bool {
        match self {
            Scope::Namespaces { acl, capability } => {
                let namespace = if object.key.kind == Kind::Namespace {
                    &object.key.name
                } else {
                    &object.key.namespace
                };
                match capability {
                    Some(capability) => acl.allows(namespace, *capability),
                    None => acl.allows_any(namespace),
                }
            }
            Scope::Field { field, value } => object.field(field) == Some(value.as_str()),
        }
    }
}

/// What a write by a node's own secret must keep: the objects it writes, before and after,
/// are in its scope, and its Node keeps the hash of the secret it authenticated with.
#[derive(Clone, Debug)]
pub struct Guard {
    pub scope: Scope,
    /// The node secret's hash a Node written must carry in `spec.secretIdHash`.
    pub node_secret_hash: Option<String>,
}

#[derive(Deserialize)]
struct NodeSecret {
    #[serde(default)]
    spec: NodeSecretSpec,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeSecretSpec {
    #[serde(default)]
    secret_id_hash: Option<String>,
}

/// The `spec.secretIdHash` of a Node's JSON.
pub fn node_secret_hash(json: &[u8]) -> Option<String> {
    serde_json::from_slice::<NodeSecret>(json)
        .ok()?
        .spec
        .secret_id_hash
}

impl Guard {
    /// Refuses a write touching `object` (as stored, or as it would be stored) out of scope.
    pub fn check(&self, object: &StoredObject) -> Result<(), Error> {
        if !self.scope.admits(object) {
            return Err(Error::Forbidden(format!(
                "{} \"{}\" is forbidden: a node may write only its own objects",
                object.key.kind.plural(),
                object.key.name
            )));
        }
        if let Some(hash) = &self.node_secret_hash
            && object.key.kind == Kind::Node
            && node_secret_hash(&object.json).as_deref() != Some(hash.as_str())
        {
            return Err(Error::Forbidden(format!(
                "nodes \"{}\" is forbidden: spec.secretIdHash must be the hash of the secret \
                 the node authenticates with",
                object.key.name
            )));
        }
        Ok(())
    }
}

/// What ACLs left of a request besides its path: the scope of its reads and the guard of its
/// writes. Compared by identity (two requests' accesses are equal when they share them).
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub scope: Option<Arc<Scope>>,
    pub guard: Option<Arc<Guard>>,
}

impl PartialEq for Access {
    fn eq(&self, other: &Self) -> bool {
        fn same<T>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
        }
        same(&self.scope, &other.scope) && same(&self.guard, &other.guard)
    }
}

impl Eq for Access {}
