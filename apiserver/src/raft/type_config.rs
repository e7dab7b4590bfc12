//! The openraft type configuration: a log entry carries a batch of [`Op`]s, its response one
//! result per op.

use std::io::Cursor;
use std::sync::Arc;

use caravan_schemas::Kind;
use openraft::BasicNode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::store::{Op, OpError, StoredObject};

/// A Raft node id.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Caravan's Raft types.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The payload of one normal log entry: a batch of operations grouped by the proposer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request(pub Vec<Op>);

/// One result per operation of the entry's [`Request`], in order. Blank and membership
/// entries answer an empty list.
///
/// Responses only travel from the state machine to the local proposer, but openraft requires
/// them to be serde-able: an object is written as its kind and JSON and rebuilt with
/// [`StoredObject::from_value`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Response(pub Vec<OpResult>);

/// The result of one operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpResult(#[serde(with = "result_serde")] pub Result<Arc<StoredObject>, OpError>);

/// Serde for `Result<Arc<StoredObject>, OpError>` through [`WireObject`].
mod result_serde {
    use super::*;

    pub fn serialize<S: Serializer>(
        result: &Result<Arc<StoredObject>, OpError>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let wire: Result<WireObject, &OpError> = match result {
            Ok(obj) => Ok(WireObject {
                kind: obj.key.kind,
                resource_version: obj.resource_version,
                object: obj.to_value(),
            }),
            Err(e) => Err(e),
        };
        wire.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Result<Arc<StoredObject>, OpError>, D::Error> {
        let wire = Result::<WireObject, OpError>::deserialize(deserializer)?;
        Ok(wire.map(|w| {
            Arc::new(StoredObject::from_value(
                w.kind,
                w.object,
                w.resource_version,
            ))
        }))
    }
}

/// A stored object as JSON: enough to rebuild it.
#[derive(Serialize, Deserialize)]
struct WireObject {
    kind: Kind,
    resource_version: u64,
    object: Value,
}
