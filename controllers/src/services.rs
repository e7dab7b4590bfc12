//! What the leader decides about service registrations (pure; the loop that carries it out is
//! the leader's, `leader::services`): which `ServiceRegistration`s nobody else will delete.
//!
//! A node agent deletes the registrations of a task when the task stops. Those of an allocation
//! that ended without its agent (lost, or its agent gone), of an allocation no longer stored,
//! and of a node that went down are the leader's to delete (Nomad deletes them in the state
//! store's transactions that end the allocation or mark the node down).
//!
//! ```text
//! registrations + caches (allocations, nodes, complete up to rv) ─▶ stale_registrations
//!                                                                  ─▶ delete each
//! ```

use std::sync::Arc;

use caravan_runtime::ObjectRef;
use caravan_schemas::node::NodeState;
use caravan_schemas::{Allocation, Kind, Node, ServiceRegistration};

#[cfg(test)]
pub(crate) mod tests;

/// The cached allocation `namespace/name`.
pub type AllocationLookup<'a> = dyn Fn(&str, &str) -> Option<Arc<Allocation>> + 'a;
/// The cached node `name`.
pub type NodeLookup<'a> = dyn Fn(&str) -> Option<Arc<Node>> + 'a;

/// Why a registration must go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stale {
    /// Its allocation is complete, failed or lost: nothing of it runs any more.
    AllocationEnded,
    /// Its allocation is no longer stored.
    AllocationGone,
    /// Its node is down.
    NodeDown,
}

/// Why `registration` must go, if it must, given its allocation and node as cached, and the
/// revision the caches hold every change up to (`complete`). A registration written after
/// that revision is left for later: its allocation may be missing from the caches only because
/// they have not caught up yet.
pub fn why_stale(
    registration: &ServiceRegistration,
    allocation: Option<&Allocation>,
    node: Option<&Node>,
    complete: u64,
) -> Option<Stale> {
    if is_newer_than(registration, complete) {
        return None;
    }
    let Some(allocation) = allocation else {
        return Some(Stale::AllocationGone);
    };
    if allocation.is_client_terminal() {
        return Some(Stale::AllocationEnded);
    }
    let down = node
        .and_then(|n| n.status.as_ref())
        .is_some_and(|s| s.status == NodeState::Down);
    down.then_some(Stale::NodeDown)
}

/// The registrations to delete, sorted: those of allocations that ended or are gone and those
/// of nodes that are down (see [`why_stale`]).
pub fn stale_registrations(
    registrations: &[Arc<ServiceRegistration>],
    allocation: &AllocationLookup<'_>,
    node: &NodeLookup<'_>,
    complete: u64,
) -> Vec<ObjectRef> {
    let mut stale: Vec<ObjectRef> = registrations
        .iter()
        .filter(|r| {
            let (meta, spec) = (&r.metadata, &r.spec);
            let alloc = allocation(meta.namespace(), &spec.alloc_name);
            let on = node(&spec.node_name);
            why_stale(r, alloc.as_deref(), on.as_deref(), complete).is_some()
        })
        .map(|r| {
            let meta = &r.metadata;
            ObjectRef::new(Kind::ServiceRegistration, meta.namespace(), meta.name())
        })
        .collect();
    stale.sort();
    stale
}

/// Whether any registration was written after `complete`, so a later look may find more to
/// delete.
pub fn any_undecided(registrations: &[Arc<ServiceRegistration>], complete: u64) -> bool {
    registrations.iter().any(|r| is_newer_than(r, complete))
}

fn is_newer_than(registration: &ServiceRegistration, complete: u64) -> bool {
    registration
        .metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse::<u64>().ok())
        .is_some_and(|rv| rv > complete)
}
