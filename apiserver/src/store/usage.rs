//! Resource usage of allocations, summed per node (the plan applier's fit index).
//!
//! ```text
//! Allocation put ──▶ StoredObject::usage (node, cpu/cores/memory/disk/devices; None when terminal)
//!                        │ State::insert / State::remove
//!                        ▼
//!                  UsageIndex: node ──▶ NodeTotals { live allocations, summed usage }
//!                        │
//!                        ▼
//!              plan applier: totals − stops − replaced + placements ≤ node capacity
//! ```
//!
//! What an allocation holds is computed once, when it is stored, with the helpers the scheduler
//! uses too (`resources::alloc_usage`, `Allocation::is_terminal`), so checking a plan costs
//! O(allocations in the plan), never a re-parse of the allocations already on the node.

use std::collections::BTreeMap;

use caravan_schemas::allocation::{
    AllocatedResources, AllocationSpec, AllocationStatus, ClientStatus, DesiredStatus,
};
use caravan_schemas::fit;
use caravan_schemas::node::NodeState;
use caravan_schemas::ports::{HostPort, NodePorts};
use caravan_schemas::resources::{self, Comparable};
use caravan_schemas::{Allocation, Node};
use serde::Deserialize;
use serde_json::Value;

/// What one live allocation holds on its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocUsage {
    /// The node the allocation is placed on (`spec.nodeName`).
    pub node: String,
    /// Resources it holds there.
    pub used: Comparable,
    /// Host ports it holds there.
    pub ports: Vec<HostPort>,
}

impl AllocUsage {
    /// The usage of a typed allocation; `None` when it is terminal (holds nothing) or has no
    /// node.
    pub fn of_alloc(alloc: &Allocation) -> Option<AllocUsage> {
        if alloc.spec.node_name.is_empty() || alloc.is_terminal() {
            return None;
        }
        Some(AllocUsage {
            node: alloc.spec.node_name.clone(),
            used: resources::alloc_usage(alloc),
            ports: HostPort::of_alloc(alloc).collect(),
        })
    }

    /// The usage of an Allocation object as a value, reading only the fields that matter;
    /// `None` when terminal, without a node, or not readable.
    pub fn of_value(value: &Value) -> Option<AllocUsage> {
        AllocUsage::of_partial(Partial::deserialize(value).ok()?)
    }

    /// [`AllocUsage::of_value`] of an Allocation as JSON text.
    pub fn of_json(json: &[u8]) -> Option<AllocUsage> {
        AllocUsage::of_partial(serde_json::from_slice(json).ok()?)
    }

    fn of_partial(partial: Partial) -> Option<AllocUsage> {
        let alloc = Allocation {
            spec: AllocationSpec {
                node_name: partial.spec.node_name,
                desired_status: partial.spec.desired_status,
                allocated_resources: partial.spec.allocated_resources,
                ..AllocationSpec::default()
            },
            status: partial.status.map(|s| AllocationStatus {
                client_status: s.client_status,
                ..AllocationStatus::default()
            }),
            ..Allocation::default()
        };
        AllocUsage::of_alloc(&alloc)
    }
}

/// What the plan applier needs of a Node, read once when the node is stored rather than
/// decoded again for every plan that places on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFit {
    /// Whether the node is `ready`.
    pub ready: bool,
    /// Why the node takes no new allocations (not ready, ineligible, draining), if so.
    pub closed: Option<&'static str>,
    /// What the node offers (`resources::node_capacity`).
    pub capacity: Comparable,
    /// Its addresses, reserved ports and dynamic range (`NodePorts::of`).
    pub ports: NodePorts,
}

impl NodeFit {
    /// The fit of a Node object as JSON; `None` when it does not decode as a Node.
    pub fn of_json(json: &[u8]) -> Option<NodeFit> {
        let node: Node = serde_json::from_slice(json).ok()?;
        Some(NodeFit {
            ready: node.status.as_ref().map(|s| s.status) == Some(NodeState::Ready),
            closed: fit::closed_reason(&node),
            capacity: resources::node_capacity(&node),
            ports: NodePorts::of(&node),
        })
    }
}

/// The fields of an Allocation its usage depends on.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Partial {
    #[serde(default)]
    spec: PartialSpec,
    #[serde(default)]
    status: Option<PartialStatus>,
}
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartialSpec {
    #[serde(default)]
    node_name: String,
    #[serde(default)]
    desired_status: Option<DesiredStatus>,
    #[serde(default)]
    allocated_resources: Option<AllocatedResources>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartialStatus {
    #[serde(default)]
    client_status: ClientStatus,
}

/// The live allocations of one node and what they hold together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeTotals {
    /// Number of live allocations counted.
    pub allocs: u64,
    /// Their summed usage; devices sorted by name, none with a zero count.
    pub used: Comparable,
    /// The host ports they hold, with how many of them hold each (more than one only in a
    /// state written before ports were checked); none with a zero count.
    pub ports: BTreeMap<HostPort, u32>,
}

/// Node name → [`NodeTotals`] of its live allocations. Nodes without live allocations have no
/// entry, so an index built incrementally equals one rebuilt from a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageIndex {
    nodes: BTreeMap<String, NodeTotals>,
}

impl UsageIndex {
    /// Counts a live allocation.
    pub fn add(&mut self, usage: &AllocUsage) {
        let totals = self.nodes.entry(usage.node.clone()).or_default();
        totals.allocs += 1;
        totals.used.add(&usage.used);
        canonical(&mut totals.used);
        for port in &usage.ports {
            *totals.ports.entry(port.clone()).or_default() += 1;
        }
    }

    /// Stops counting an allocation counted by [`UsageIndex::add`].
    pub fn remove(&mut self, usage: &AllocUsage) {
        let Some(totals) = self.nodes.get_mut(&usage.node) else {
            return;
        };
        totals.allocs = totals.allocs.saturating_sub(1);
        totals.used.subtract(&usage.used);
        canonical(&mut totals.used);
        for port in &usage.ports {
            if let Some(count) = totals.ports.get_mut(port) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    totals.ports.remove(port);
                }
            }
        }
        if totals.allocs == 0 {
            self.nodes.remove(&usage.node);
        }
    }

    /// The totals of `node`, if it has live allocations.
    pub fn get(&self, node: &str) -> Option<&NodeTotals> {
        self.nodes.get(node)
    }

    /// What the live allocations of `node` hold (zero when none).
    pub fn used(&self, node: &str) -> Comparable {
        self.nodes
            .get(node)
            .map(|t| t.used.clone())
            .unwrap_or_default()
    }

    /// Every node with live allocations, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &NodeTotals)> {
        self.nodes.iter()
    }
}

/// Sorts devices by name and drops zero counts, so equal usage compares equal.
fn canonical(used: &mut Comparable) {
    used.devices.retain(|(_, count)| *count > 0);
    used.devices.sort();
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn alloc(node: &str, cpu: u64, desired: &str, client: &str) -> Value {
        json!({
            "spec": {
                "nodeName": node,
                "desiredStatus": desired,
                "allocatedResources": {
                    "tasks": {"t": {"cpu": cpu, "memoryMB": 64, "devices": [{"name": "nvidia/gpu/a", "deviceIds": ["0"]}]}},
                    "shared": {"diskMB": 10}
                }
            },
            "status": {"clientStatus": client}
        })
    }

    #[test]
    fn live_allocations_hold_their_resources_terminal_ones_nothing() {
        let usage = AllocUsage::of_value(&alloc("n1", 100, "run", "running")).expect("live");
        assert_eq!(usage.node, "n1");
        assert_eq!(
            (usage.used.cpu, usage.used.memory_mb, usage.used.disk_mb),
            (100, 64, 10)
        );
        assert_eq!(usage.used.devices, vec![("nvidia/gpu/a".to_owned(), 1)]);
        assert_eq!(
            AllocUsage::of_value(&alloc("n1", 100, "stop", "running")),
            None
        );
        assert_eq!(
            AllocUsage::of_value(&alloc("n1", 100, "run", "failed")),
            None
        );
        assert_eq!(
            AllocUsage::of_value(&alloc("", 100, "run", "pending")),
            None
        );
        assert_eq!(AllocUsage::of_value(&json!("not an allocation")), None);
    }

    #[test]
    fn totals_go_back_to_nothing() {
        let a = AllocUsage::of_value(&alloc("n1", 100, "run", "pending")).expect("live");
        let b = AllocUsage::of_value(&alloc("n1", 250, "run", "pending")).expect("live");
        let mut index = UsageIndex::default();
        index.add(&a);
        index.add(&b);
        assert_eq!(
            index.get("n1").map(|t| (t.allocs, t.used.cpu)),
            Some((2, 350))
        );
        assert_eq!(
            index.used("n1").devices,
            vec![("nvidia/gpu/a".to_owned(), 2)]
        );
        index.remove(&a);
        index.remove(&b);
        assert_eq!(index, UsageIndex::default());
        assert_eq!(index.used("n1"), Comparable::default());
    }
}
