//! The openraft type configuration: a log entry carries a batch of [`Op`]s, its response one
//! result per op.

use std::io::Cursor;
use std::sync::Arc;

use caravan_schemas::Kind;
use caravan_schemas::plan::PlanResult;
use openraft::BasicNode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::store::{Op, OpError, OpOutcome, StoredObject};

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
/// [`StoredObject::from_value`]; a plan's result as `{"plan": PlanResult}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Response(pub Vec<OpResult>);

/// The result of one operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpResult(#[serde(with = "result_serde")] pub Result<OpOutcome, OpError>);

/// Serde for `Result<OpOutcome, OpError>` through [`WireOutcome`].
mod result_serde {
    use super::*;

    pub fn serialize<S: Serializer>(
        result: &Result<OpOutcome, OpError>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let wire: Result<WireOutcome, &OpError> = match result {
            Ok(OpOutcome::Object(obj)) => Ok(WireOutcome::Object(WireObject {
                kind: obj.key.kind,
                resource_version: obj.resource_version,
                object: obj.to_value(),
            })),
            Ok(OpOutcome::Plan(plan)) => Ok(WireOutcome::Plan {
                plan: PlanResult::clone(plan),
            }),
            Err(e) => Err(e),
        };
        wire.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Result<OpOutcome, OpError>, D::Error> {
        let wire = Result::<WireOutcome, OpError>::deserialize(deserializer)?;
        Ok(wire.map(|w| match w {
            WireOutcome::Object(w) => OpOutcome::Object(Arc::new(StoredObject::from_value(
                w.kind,
                w.object,
                w.resource_version,
            ))),
            WireOutcome::Plan { plan } => OpOutcome::Plan(Arc::new(plan)),
        }))
    }
}

/// An outcome as JSON: an object as before, or `{"plan": …}`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WireOutcome {
    Object(WireObject),
    Plan { plan: PlanResult },
}

/// A stored object as JSON: enough to rebuild it.
#[derive(Serialize, Deserialize)]
struct WireObject {
    kind: Kind,
    resource_version: u64,
    object: Value,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_and_plan_results_survive_the_wire() {
        let object = StoredObject::from_value(
            Kind::Namespace,
            json!({"kind": "Namespace", "metadata": {"name": "default"}}),
            3,
        );
        let plan = PlanResult {
            refresh_index: 4,
            alloc_index: 4,
            ..PlanResult::default()
        };
        let response = Response(vec![
            OpResult(Ok(OpOutcome::Object(Arc::new(object)))),
            OpResult(Ok(OpOutcome::Plan(Arc::new(plan)))),
            OpResult(Err(OpError::NotFound)),
        ]);
        let bytes = serde_json::to_vec(&response).expect("serializes");
        let back: Response = serde_json::from_slice(&bytes).expect("deserializes");
        assert_eq!(back, response);
    }
}
