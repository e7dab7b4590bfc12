//! The plan applier (Nomad's `plan_apply.go`): a scheduler's plan is applied at one log index,
//! node by node, after re-checking each node against the state it is applied to.
//!
//! ```text
//! Op::Plan ──▶ for each node the plan touches (sorted):
//!                placements? ── no ─────────────────────────────▶ commit the stops
//!                   │ yes
//!                   ▼
//!                node exists, ready (eligible for new allocations),
//!                usage index[node] − stopped − replaced + placed ≤ capacity,
//!                no host port of a placement held already, twice or reserved
//!                   │ yes                              │ no
//!                   ▼                                  ▼
//!                commit stops + placements      reject the node's whole part,
//!                (events, resourceVersion=index) refresh_index = index
//! ```
//!
//! Each node is checked against the state including the nodes committed before it, so a plan
//! never oversubscribes a node, whatever other plans were applied before it in the log.

use std::collections::BTreeSet;
use std::sync::Arc;

use caravan_schemas::fit::{self, NodeUsage};
use caravan_schemas::plan::{AllocStop, PlanResult};
use caravan_schemas::ports::{self, HostPort, NodePorts};
use caravan_schemas::resources::{self, Held};
use caravan_schemas::{Allocation, Kind};
use serde_json::{Map, Value};

use super::State;
use crate::store::json::ObjectJson;
use crate::store::object::{ObjectKey, OpError, PlanOp, StoredObject};
use crate::store::watch_cache::{Change, EventType};

/// Why a node's part of a plan was rejected (logged; the scheduler only sees the refresh index).
type Rejection = &'static str;

impl State {
    /// Applies `op` at log `index`, pushing the events of what it committed. Fails only when the
    /// plan's namespace does not exist; a node that does not fit is reported through
    /// `refresh_index`, not as an error.
    pub(super) fn apply_plan(
        &mut self,
        index: u64,
        op: PlanOp,
        events: &mut Vec<Arc<Change>>,
    ) -> Result<PlanResult, OpError> {
        let plan = op.plan;
        let namespace = plan.namespace.as_str();
        if self.find(Kind::Namespace, "", namespace).is_none() {
            return Err(OpError::NamespaceNotFound(namespace.to_owned()));
        }
        let mut result = PlanResult {
            alloc_index: index,
            ..PlanResult::default()
        };
        let touched: BTreeSet<&String> = plan
            .node_update
            .keys()
            .chain(plan.node_allocation.keys())
            .collect();
        for node in touched {
            let stops = plan.node_update.get(node).map_or(&[][..], Vec::as_slice);
            let placed = plan
                .node_allocation
                .get(node)
                .map_or(&[][..], Vec::as_slice);
            let values = match self.check_node(namespace, node, stops, placed) {
                Ok(values) => values,
                Err(reason) => {
                    tracing::debug!(
                        eval = %plan.eval_name,
                        node = %node,
                        reason,
                        index,
                        "plan applier rejected a node's part"
                    );
                    result.refresh_index = index;
                    continue;
                }
            };
            for stop in stops {
                if let Some(event) = self.commit_stop(index, namespace, stop) {
                    events.push(Arc::new(event));
                }
            }
            let mut committed = Vec::with_capacity(values.len());
            for (alloc, json) in placed.iter().zip(values) {
                let event = self.commit_alloc(index, namespace, alloc, json);
                committed.push(event.object.key.name.clone());
                events.push(Arc::new(event));
            }
            if !stops.is_empty() {
                result.node_update.insert(node.clone(), stops.to_vec());
            }
            if !committed.is_empty() {
                result.node_allocation.insert(node.clone(), committed);
            }
        }
        Ok(result)
    }

    /// Whether `node` takes the plan's part for it, checked against the current state; the
    /// placements as JSON, ready to store, when it does.
    fn check_node(
        &self,
        namespace: &str,
        node_name: &str,
        stops: &[AllocStop],
        placed: &[Allocation],
    ) -> Result<Vec<ObjectJson>, Rejection> {
        if placed.is_empty() {
            // Stopping only frees capacity: always accepted.
            return Ok(Vec::new());
        }
        let stored = self
            .find(Kind::Node, "", node_name)
            .ok_or("node does not exist")?;
        let node = stored.node.as_deref().ok_or("node is unreadable")?;
        if !node.ready {
            return Err("node is not ready for placements");
        }
        let alloc = |name: &str| self.find(Kind::Allocation, namespace, name);
        // Only new allocations need an eligible, undrained node; in-place updates stay.
        let places_new = placed.iter().any(|a| alloc(a.metadata.name()).is_none());
        if places_new && let Some(reason) = node.closed {
            return Err(reason);
        }

        let mut used = self.usage.used(node_name);
        let mut released = BTreeSet::new();
        let mut released_ports: Vec<&HostPort> = Vec::new();
        let names = stops
            .iter()
            .map(|s| s.alloc_name.as_str())
            .chain(placed.iter().map(|a| a.metadata.name()));
        for name in names {
            if !released.insert(name) {
                continue;
            }
            if let Some(current) = alloc(name)
                && let Some(usage) = &current.usage
                && usage.node == node_name
            {
                used.subtract(&usage.used);
                released_ports.extend(&usage.ports);
            }
        }
        let mut values = Vec::with_capacity(placed.len());
        for alloc in placed {
            if alloc.spec.node_name != node_name {
                return Err("an allocation names another node");
            }
            if alloc.metadata.namespace() != namespace {
                return Err("an allocation is in another namespace");
            }
            if !alloc.is_terminal() {
                used.add(&resources::alloc_usage(alloc));
            }
            values.push(ObjectJson::serialize(alloc).map_err(|_| "allocation is unserializable")?);
        }
        fit::usage_fits(&NodeUsage {
            capacity: node.capacity.clone(),
            held: Held {
                used,
                ..Held::default()
            },
        })?;
        self.check_ports(node_name, &node.ports, placed, released_ports)?;
        Ok(values)
    }

    /// Whether the host ports of the live placements collide with each other, with reserved
    /// ports, or with those the node's other live allocations (all but `released`) hold.
    fn check_ports(
        &self,
        node_name: &str,
        offered: &NodePorts,
        placed: &[Allocation],
        mut released: Vec<&HostPort>,
    ) -> Result<(), Rejection> {
        let asked: Vec<HostPort> = placed
            .iter()
            .filter(|a| !a.is_terminal())
            .flat_map(HostPort::of_alloc)
            .collect();
        if asked.is_empty() {
            return Ok(());
        }
        let held = self.usage.get(node_name).map(|t| &t.ports);
        let mut kept: Vec<&HostPort> = Vec::new();
        for (port, count) in held.into_iter().flatten() {
            // A port held `count` times, minus each release of it.
            let mut left = *count;
            while left > 0
                && let Some(at) = released.iter().position(|r| *r == port)
            {
                released.swap_remove(at);
                left -= 1;
            }
            kept.extend(std::iter::repeat_n(port, left as usize));
        }
        ports::collision(offered, kept, &asked).map_or(Ok(()), Err)
    }

    /// Sets `spec.desiredStatus` and `spec.desiredDescription` of the stopped allocation; no
    /// event when it is gone or already says so.
    fn commit_stop(&mut self, index: u64, namespace: &str, stop: &AllocStop) -> Option<Change> {
        let key = ObjectKey {
            kind: Kind::Allocation,
            namespace: namespace.to_owned(),
            name: stop.alloc_name.clone(),
        };
        let mut value = self.lookup(&key)?.to_value();
        let next_generation = generation(&value) + 1;
        let desired = serde_json::to_value(stop.desired_status).ok()?;
        let description = Value::String(stop.description.clone());
        let client_status = stop
            .client_status
            .and_then(|s| serde_json::to_value(s).ok());
        let status_unchanged = client_status.is_none()
            || value.pointer("/status/clientStatus") == client_status.as_ref();
        let spec = map_at(&mut value, "spec")?;
        if spec.get("desiredStatus") == Some(&desired)
            && spec.get("desiredDescription") == Some(&description)
            && status_unchanged
        {
            return None;
        }
        spec.insert("desiredStatus".to_owned(), desired);
        spec.insert("desiredDescription".to_owned(), description);
        if let Some(client_status) = client_status {
            let status = value
                .as_object_mut()?
                .entry("status")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(status) = status.as_object_mut() {
                status.insert("clientStatus".to_owned(), client_status);
                status.insert(
                    "clientDescription".to_owned(),
                    Value::String(stop.description.clone()),
                );
            }
        }
        set_generation(&mut value, next_generation);
        Some(self.store(StoredObject::from_value(Kind::Allocation, value, index)))
    }

    /// Creates the allocation, or updates it in place when one of the same name exists: the
    /// stored uid, creationTimestamp and status (the node's report) are kept. `json` is
    /// `alloc` serialized: a new allocation that names its namespace and generation, as the
    /// scheduler's do, is stored from it as it is.
    fn commit_alloc(
        &mut self,
        index: u64,
        namespace: &str,
        alloc: &Allocation,
        json: ObjectJson,
    ) -> Change {
        let key = ObjectKey {
            kind: Kind::Allocation,
            namespace: namespace.to_owned(),
            name: alloc.metadata.name().to_owned(),
        };
        if alloc.metadata.namespace.as_deref() == Some(namespace)
            && alloc.metadata.generation.is_some()
            && self.lookup(&key).is_none()
        {
            return self.store(StoredObject::from_put(Kind::Allocation, &json, index));
        }
        let mut value: Value = serde_json::from_str(json.get()).expect("an ObjectJson is JSON");
        if let Some(metadata) = map_at(&mut value, "metadata") {
            metadata.insert("namespace".to_owned(), Value::String(namespace.to_owned()));
        }
        if let Some(current) = self.lookup(&key) {
            let stored = current.to_value();
            if let Some(metadata) = map_at(&mut value, "metadata") {
                for field in [
                    "uid",
                    "creationTimestamp",
                    "generation",
                    "deletionTimestamp",
                ] {
                    match stored.get("metadata").and_then(|m| m.get(field)) {
                        Some(v) => metadata.insert(field.to_owned(), v.clone()),
                        None => metadata.remove(field),
                    };
                }
            }
            let new_deployment =
                value.pointer("/spec/deploymentName") != stored.pointer("/spec/deploymentName");
            if let Some(object) = value.as_object_mut() {
                match stored.get("status") {
                    Some(status) => {
                        let mut status = status.clone();
                        // An update in place into another deployment starts its health over
                        // (Nomad clears it too): the node agent reports it anew for that
                        // deployment, and until then the allocation counts as not healthy.
                        if new_deployment && let Some(status) = status.as_object_mut() {
                            status.remove("deploymentStatus");
                        }
                        object.insert("status".to_owned(), status)
                    }
                    None => object.remove("status"),
                };
            }
            if value.get("spec") != stored.get("spec") {
                set_generation(&mut value, generation(&stored) + 1);
            }
        } else if let Some(metadata) = map_at(&mut value, "metadata") {
            metadata
                .entry("generation")
                .or_insert_with(|| Value::from(1));
        }
        self.store(StoredObject::from_value(Kind::Allocation, value, index))
    }

    /// Stores `object` and describes the change.
    fn store(&mut self, object: StoredObject) -> Change {
        let object = Arc::new(object);
        let previous = self.insert(object.clone());
        Change {
            event_type: if previous.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            },
            object,
            previous,
        }
    }
}

/// `metadata.generation` of a stored object, 0 when unset.
fn generation(value: &Value) -> i64 {
    value
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Sets `metadata.generation`.
fn set_generation(value: &mut Value, generation: i64) {
    if let Some(metadata) = map_at(value, "metadata") {
        metadata.insert("generation".to_owned(), Value::from(generation));
    }
}

/// The object at `field` of `value`, when both are objects. Allocations, as serialized or as
/// stored after admission, always have `metadata` and `spec` objects.
fn map_at<'a>(value: &'a mut Value, field: &str) -> Option<&'a mut Map<String, Value>> {
    value.get_mut(field)?.as_object_mut()
}

#[cfg(test)]
mod tests;
