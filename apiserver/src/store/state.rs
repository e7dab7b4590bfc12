//! The in-memory state built by applying Raft entries: objects by kind/namespace/name, plus
//! indexes (node → allocations, job → allocations and evaluations). Pure and deterministic.
//!
//! SKELETON: the signatures are the contract; bodies are filled in.

use std::sync::Arc;

use caravan_schemas::Kind;

use super::object::{ObjectKey, Op, OpError, StoredObject};
use super::watch_cache::WatchEvent;

/// The result of applying one batch of operations at one log index.
#[derive(Debug, Default)]
pub struct Applied {
    /// One result per operation, in order.
    pub results: Vec<Result<Arc<StoredObject>, OpError>>,
    /// The watch events the batch produced, in order.
    pub events: Vec<Arc<WatchEvent>>,
}

/// Every object, indexed.
#[derive(Debug, Default, Clone)]
pub struct State {
    revision: u64,
}

impl State {
    /// Applies a batch at log `index`: each op is checked against its precondition and applied
    /// or rejected on its own; later ops see the effects of earlier ones.
    pub fn apply(&mut self, index: u64, ops: Vec<Op>) -> Applied {
        let _ = (index, ops);
        unimplemented!()
    }

    /// Records that log `index` was applied without changing objects (blank or membership).
    pub fn advance(&mut self, index: u64) {
        self.revision = self.revision.max(index);
    }

    /// The last applied log index: the revision lists are read at.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn get(&self, key: &ObjectKey) -> Option<Arc<StoredObject>> {
        let _ = key;
        unimplemented!()
    }

    /// Objects of `kind`, in `namespace` or all namespaces, ordered by (namespace, name),
    /// starting strictly after `after` when given (pagination).
    pub fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        after: Option<(&str, &str)>,
    ) -> Box<dyn Iterator<Item = &Arc<StoredObject>> + '_> {
        let _ = (kind, namespace, after);
        unimplemented!()
    }

    /// Objects of `kind` whose indexed `field` equals `value` (e.g. allocations with
    /// `spec.nodeName` = n1), ordered by (namespace, name). `None` when the field is not indexed.
    pub fn list_by_field(
        &self,
        kind: Kind,
        field: &str,
        value: &str,
        namespace: Option<&str>,
    ) -> Option<Vec<Arc<StoredObject>>> {
        let _ = (kind, field, value, namespace);
        None
    }

    /// Number of objects of `kind`.
    pub fn count(&self, kind: Kind) -> usize {
        let _ = kind;
        0
    }

    /// Serializes the whole state (revision included) for a Raft snapshot.
    pub fn to_snapshot(&self) -> Vec<u8> {
        unimplemented!()
    }

    /// Rebuilds a state from `to_snapshot` output.
    pub fn from_snapshot(bytes: &[u8]) -> Result<State, serde_json::Error> {
        let _ = bytes;
        unimplemented!()
    }
}
