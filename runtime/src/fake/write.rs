//! The fake client's writes: create, merge patch, delete and naive plan application, each
//! committed at one new revision.

use std::sync::Arc;

use caravan_schemas::{API_VERSION, Kind};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::{Change, FakeState, Signal};
use crate::ObjectRef;
use crate::client::ClientError;
use caravan_schemas::plan::{Plan, PlanResult};

type Signals = broadcast::Sender<Arc<Signal>>;

/// Metadata a merge patch of the object may not change.
const SERVER_FIELDS: [&str; 6] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
];

impl FakeState {
    /// Commits `changes` (an object's new state, or `None` to delete it) in order at the next
    /// revision: stamps, stores, logs and broadcasts them. Returns the revision.
    fn commit(&mut self, signals: &Signals, changes: Vec<(ObjectRef, Option<Value>)>) -> u64 {
        self.revision += 1;
        let revision = self.revision;
        for (key, new) in changes {
            let mut old = self.objects.remove(&key);
            let new = new.map(|mut object| {
                stamp(&mut object, revision);
                self.objects.insert(key.clone(), object.clone());
                object
            });
            if new.is_none()
                && let Some(old) = &mut old
            {
                // A deletion is seen at its own revision, as with the API server.
                stamp(old, revision);
            }
            let change = Change {
                revision,
                key,
                old,
                new,
            };
            self.log.push_back(change.clone());
            while self.log.len() > self.window {
                if let Some(forgotten) = self.log.pop_front() {
                    self.compacted = forgotten.revision;
                }
            }
            let _ = signals.send(Arc::new(Signal::Change(change)));
        }
        let _ = signals.send(Arc::new(Signal::Committed(revision)));
        revision
    }

    fn next_uid(&mut self) -> String {
        self.uids += 1;
        format!("fake-uid-{}", self.uids)
    }

    fn stored(&self, key: &ObjectRef) -> Value {
        self.objects.get(key).cloned().unwrap_or(Value::Null)
    }
}

/// Sets `metadata.resourceVersion`.
fn stamp(object: &mut Value, revision: u64) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), revision.to_string().into());
    }
}

fn invalid(message: impl Into<String>) -> ClientError {
    ClientError::Invalid(message.into())
}

/// Checks the envelope of a new object, fills its namespace and type meta; returns its key.
fn admit(
    kind: Kind,
    object: &mut Value,
) -> Result<(ObjectRef, &mut Map<String, Value>), ClientError> {
    let Value::Object(map) = object else {
        return Err(invalid("an object must be a JSON object"));
    };
    for field in ["apiVersion", "kind"] {
        if map
            .get(field)
            .is_none_or(|v| v.as_str().is_none_or(str::is_empty))
        {
            map.remove(field);
        }
    }
    map.entry("apiVersion")
        .or_insert_with(|| API_VERSION.into());
    map.entry("kind").or_insert_with(|| kind.name().into());
    let meta = map
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| invalid("metadata must be an object"))?;
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("metadata.name is required"))?
        .to_owned();
    let namespace = if kind.namespaced() {
        let ns = meta
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .unwrap_or("default")
            .to_owned();
        meta.insert("namespace".into(), ns.clone().into());
        ns
    } else {
        meta.remove("namespace");
        String::new()
    };
    meta.remove("resourceVersion");
    Ok((ObjectRef::new(kind, &namespace, &name), meta))
}

pub(super) fn create(
    state: &mut FakeState,
    signals: &Signals,
    kind: Kind,
    mut object: Value,
) -> Result<Value, ClientError> {
    let (key, meta) = admit(kind, &mut object)?;
    if state.objects.contains_key(&key) {
        return Err(ClientError::AlreadyExists);
    }
    let uid = state.next_uid();
    meta.insert("uid".into(), uid.into());
    meta.insert("generation".into(), 1.into());
    state.commit(signals, vec![(key.clone(), Some(object))]);
    Ok(state.stored(&key))
}

pub(super) fn patch(
    state: &mut FakeState,
    signals: &Signals,
    key: ObjectRef,
    patch: Value,
    status: bool,
) -> Result<Value, ClientError> {
    if status && !key.kind.has_status() {
        return Err(ClientError::NotFound);
    }
    let current = state
        .objects
        .get(&key)
        .ok_or(ClientError::NotFound)?
        .clone();
    let Value::Object(mut patch) = patch else {
        return Err(invalid("a merge patch must be a JSON object"));
    };
    let expected = patch
        .get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .and_then(Value::as_str);
    precondition(&key, &current, expected)?;
    let effective = if status {
        match patch.remove("status") {
            Some(s) => json!({ "status": s }),
            None => json!({}),
        }
    } else {
        if key.kind.has_status() {
            patch.remove("status");
        }
        if let Some(meta) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in SERVER_FIELDS {
                meta.remove(field);
            }
        }
        Value::Object(patch)
    };
    let mut updated = current.clone();
    json_patch::merge(&mut updated, &effective);
    if updated == current {
        return Ok(current);
    }
    if updated.get("spec") != current.get("spec") {
        let generation = current
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        updated["metadata"]["generation"] = (generation + 1).into();
    }
    state.commit(signals, vec![(key.clone(), Some(updated))]);
    Ok(state.stored(&key))
}

pub(super) fn delete(
    state: &mut FakeState,
    signals: &Signals,
    key: ObjectRef,
    expected: Option<&str>,
) -> Result<(), ClientError> {
    let Some(current) = state.objects.get(&key) else {
        return Err(ClientError::NotFound);
    };
    precondition(&key, current, expected)?;
    state.commit(signals, vec![(key, None)]);
    Ok(())
}

/// A write's `resourceVersion` precondition, as the API server checks it: a conflict when the
/// object moved on.
fn precondition(
    key: &ObjectRef,
    current: &Value,
    expected: Option<&str>,
) -> Result<(), ClientError> {
    let actual = current
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    match expected {
        Some(expected) if Some(expected) != actual => Err(ClientError::Conflict(format!(
            "{key} was modified: resourceVersion {expected} is stale"
        ))),
        _ => Ok(()),
    }
}

/// Applies every stop and allocation of `plan` at one revision, without any fit check: stops
/// of unknown allocations are left out of the result, allocations are created or replaced
/// (keeping the stored status when the plan's has none).
pub(super) fn apply_plan(
    state: &mut FakeState,
    signals: &Signals,
    plan: Plan,
) -> Result<PlanResult, ClientError> {
    let mut changes = Vec::new();
    let mut result = PlanResult::default();
    for (node, stops) in &plan.node_update {
        for stop in stops {
            let key = ObjectRef::new(Kind::Allocation, &plan.namespace, &stop.alloc_name);
            let Some(mut alloc) = state.objects.get(&key).cloned() else {
                tracing::debug!(alloc = %key, "plan stops an unknown allocation");
                continue;
            };
            alloc["spec"]["desiredStatus"] =
                serde_json::to_value(stop.desired_status).map_err(|e| invalid(e.to_string()))?;
            alloc["spec"]["desiredDescription"] = stop.description.clone().into();
            changes.push((key, Some(alloc)));
            result
                .node_update
                .entry(node.clone())
                .or_default()
                .push(stop.clone());
        }
    }
    for (node, allocs) in &plan.node_allocation {
        for alloc in allocs {
            let mut object = serde_json::to_value(alloc).map_err(|e| invalid(e.to_string()))?;
            object["metadata"]["namespace"] = plan.namespace.clone().into();
            let (key, meta) = admit(Kind::Allocation, &mut object)?;
            match state.objects.get(&key) {
                Some(stored) => {
                    for field in ["uid", "generation", "creationTimestamp"] {
                        if let Some(v) = stored["metadata"].get(field) {
                            meta.insert(field.into(), v.clone());
                        }
                    }
                    if object.get("status").is_none()
                        && let Some(status) = stored.get("status")
                    {
                        object["status"] = status.clone();
                    }
                }
                None => {
                    let uid = state.next_uid();
                    meta.insert("uid".into(), uid.into());
                    meta.insert("generation".into(), 1.into());
                }
            }
            result
                .node_allocation
                .entry(node.clone())
                .or_default()
                .push(key.name.clone());
            changes.push((key, Some(object)));
        }
    }
    result.alloc_index = if changes.is_empty() {
        state.revision
    } else {
        state.commit(signals, changes)
    };
    state.plans.push(plan);
    Ok(result)
}
