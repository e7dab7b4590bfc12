//! What a scheduler produces and the plan applier commits: the [`Plan`], the applier's answer
//! ([`PlanResult`]) and the per-group annotations shown by `job plan` ([`DesiredUpdates`]).
//! Shared by the scheduler (which writes plans), the API server's plan applier (which commits
//! them) and every client that carries them (Nomad keeps these in `nomad/structs`).

use std::collections::BTreeMap;

use crate::Allocation;
use crate::allocation::{ClientStatus, DesiredStatus};

/// An allocation the plan stops or evicts.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocStop {
    /// Name of the allocation, in the plan's namespace.
    pub alloc_name: String,
    /// `stop` or `evict`.
    pub desired_status: DesiredStatus,
    /// Why, e.g. `alloc not needed due to job update`.
    pub description: String,
    /// The client status the servers set with the stop: `lost` for an allocation on a down
    /// node (its node cannot report any more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_status: Option<ClientStatus>,
}

/// Changes the reconciler wants for one group (Nomad's `DesiredUpdates`), for `job plan`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredUpdates {
    /// New allocations to place.
    pub place: u64,
    /// Allocations to stop.
    pub stop: u64,
    /// Allocations left alone.
    pub ignore: u64,
    /// Allocations updated without restarting their tasks.
    pub in_place_update: u64,
    /// Allocations replaced by new ones because their tasks changed.
    pub destructive_update: u64,
    /// Allocations moved off draining nodes.
    pub migrate: u64,
    /// Allocations replaced because their node was lost or they failed.
    pub reschedule: u64,
    /// Canaries placed beside the allocations they will replace once promoted.
    #[serde(default)]
    pub canary: u64,
}

/// A write request: allocations to stop and allocations to create or update, applied atomically
/// (per node) by the plan applier, which re-checks that every touched node still fits.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Evaluation that produced the plan.
    pub eval_name: String,
    /// Namespace of the job and of every allocation in the plan.
    pub namespace: String,
    /// Job the plan is for.
    pub job_name: String,
    /// Version of the job the plan was computed against.
    pub job_version: i64,
    /// Priority of the job.
    pub priority: i32,
    /// Allocations to stop or evict, per node.
    pub node_update: BTreeMap<String, Vec<AllocStop>>,
    /// Allocations to create or update in place, per node.
    pub node_allocation: BTreeMap<String, Vec<Allocation>>,
    /// Desired changes per group.
    pub annotations: BTreeMap<String, DesiredUpdates>,
}

impl Plan {
    /// A plan with nothing to write.
    pub fn is_no_op(&self) -> bool {
        self.node_update.values().all(Vec::is_empty)
            && self.node_allocation.values().all(Vec::is_empty)
    }

    /// Adds a stop (or eviction) of `alloc_name` on `node`.
    pub fn append_stop(
        &mut self,
        node: &str,
        alloc_name: &str,
        desired_status: DesiredStatus,
        description: impl Into<String>,
    ) {
        let stops = self.node_update.entry(node.to_string()).or_default();
        stops.push(AllocStop {
            alloc_name: alloc_name.to_string(),
            desired_status,
            description: description.into(),
            client_status: None,
        });
    }

    /// Marks the last stop of `alloc_name` on `node` with the client status the servers set.
    pub fn set_stop_client_status(&mut self, node: &str, alloc_name: &str, status: ClientStatus) {
        if let Some(stop) = self
            .node_update
            .get_mut(node)
            .and_then(|stops| stops.iter_mut().rev().find(|s| s.alloc_name == alloc_name))
        {
            stop.client_status = Some(status);
        }
    }

    /// Removes the last stop of `alloc_name` on `node`, when a replacement could not be placed.
    pub fn pop_stop(&mut self, node: &str, alloc_name: &str) {
        if let Some(stops) = self.node_update.get_mut(node)
            && let Some(position) = stops.iter().rposition(|s| s.alloc_name == alloc_name)
        {
            stops.remove(position);
            if stops.is_empty() {
                self.node_update.remove(node);
            }
        }
    }

    /// Adds a new or updated allocation on its node.
    pub fn append_alloc(&mut self, alloc: Allocation) {
        match self.node_allocation.get_mut(&alloc.spec.node_name) {
            Some(allocs) => allocs.push(alloc),
            None => {
                self.node_allocation
                    .insert(alloc.spec.node_name.clone(), vec![alloc]);
            }
        }
    }

    /// Whether the plan stops `alloc_name` on `node`.
    pub fn stops(&self, node: &str, alloc_name: &str) -> bool {
        self.node_update
            .get(node)
            .is_some_and(|stops| stops.iter().any(|s| s.alloc_name == alloc_name))
    }

    /// Stops and allocations in the plan.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.node_update.values().map(Vec::len).sum(),
            self.placed_count(),
        )
    }

    /// Names of the allocations the plan creates or updates, per node: what a full commit's
    /// [`PlanResult::node_allocation`] holds.
    pub fn allocation_names(&self) -> BTreeMap<String, Vec<String>> {
        self.node_allocation
            .iter()
            .map(|(node, allocs)| {
                let names = allocs.iter().map(|a| a.metadata.name().to_string());
                (node.clone(), names.collect())
            })
            .collect()
    }

    /// Number of allocations the plan creates or updates.
    pub fn placed_count(&self) -> usize {
        self.node_allocation.values().map(Vec::len).sum()
    }
}

/// What the plan applier committed.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanResult {
    /// Stops committed, per node.
    pub node_update: BTreeMap<String, Vec<AllocStop>>,
    /// Names of the allocations committed, per node (the objects themselves reach every
    /// watcher at `alloc_index`).
    pub node_allocation: BTreeMap<String, Vec<String>>,
    /// Non-zero when part of the plan was rejected: the scheduler must refresh its snapshot to at
    /// least this index and retry the rest.
    pub refresh_index: u64,
    /// Store index at which the plan was committed.
    pub alloc_index: u64,
}

impl PlanResult {
    /// Stops and allocations committed.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.node_update.values().map(Vec::len).sum(),
            self.node_allocation.values().map(Vec::len).sum(),
        )
    }

    /// Whether every part of `plan` was committed.
    pub fn is_full_commit(&self, plan: &Plan) -> bool {
        self.counts() == plan.counts()
    }
}
