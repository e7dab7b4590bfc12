//! The allocation reconciler (Nomad's `reconcile_cluster.go`, simplified): compares the job's
//! desired groups with its existing allocations and decides, per group, what to place, stop,
//! update in place, replace (destructive update), migrate, reschedule and leave alone.
//!
//! It is pure: the job, the allocations, the tainted nodes, older job versions and `now` are
//! passed in; [`AllocReconciler::compute`] returns [`ReconcileResults`] for the scheduler to
//! execute.

mod group;
pub mod reschedule;
pub mod update;

#[cfg(test)]
mod deployment_tests;
#[cfg(test)]
mod rollout_props;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use caravan_schemas::allocation::ClientStatus;
use caravan_schemas::{Allocation, Deployment, Job};

use super::DesiredUpdates;

pub use update::tasks_updated;

/// Why a node's allocations need attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeTaint {
    /// Down, disconnected or gone: its allocations are lost and replaced.
    Down,
    /// Draining: its allocations migrate elsewhere.
    Draining,
}

/// Stop descriptions, as Nomad words them.
pub mod reasons {
    /// Scale down or group removed.
    pub const NOT_NEEDED: &str = "alloc not needed due to job update";
    /// The job is stopped or deleted.
    pub const JOB_STOPPED: &str = "alloc not needed as job is stopped";
    /// The node is down.
    pub const LOST: &str = "alloc is lost since its node is down";
    /// The node is draining.
    pub const MIGRATING: &str = "alloc is being migrated";
    /// Replaced by a new version.
    pub const UPDATING: &str = "alloc is being updated due to job update";
    /// Failed and replaced.
    pub const RESCHEDULED: &str = "alloc was rescheduled because it failed";
    /// No longer feasible on its node (system jobs).
    pub const NODE_INFEASIBLE: &str = "alloc not needed since node is no longer feasible";
    /// A canary of a deployment that failed before it was promoted.
    pub const CANARY_OF_FAILED: &str = "alloc not needed since its deployment failed";
}

/// A new allocation to place.
#[derive(Clone, Debug)]
pub struct PlaceRequest {
    /// Group of the allocation.
    pub group: String,
    /// Index within the group (`<job>.<group>[<index>]`).
    pub index: u32,
    /// Allocation this one replaces.
    pub previous: Option<Arc<Allocation>>,
    /// Stop `previous` with this description, but only if the placement succeeds.
    pub stop_previous: Option<&'static str>,
    /// Whether this replaces a failed allocation (reschedule tracking and node penalty).
    pub reschedule: bool,
    /// A canary: placed beside the allocation of `index` it replaces once promoted.
    pub canary: bool,
}

/// An allocation to stop.
#[derive(Clone, Debug)]
pub struct StopRequest {
    /// The allocation.
    pub alloc: Arc<Allocation>,
    /// Why.
    pub description: &'static str,
    /// The client status the servers set with the stop: `lost` when the allocation's node is
    /// down and cannot report any more.
    pub client_status: Option<ClientStatus>,
}

/// What the reconciler decided.
#[derive(Clone, Debug, Default)]
pub struct ReconcileResults {
    /// New allocations, including replacements of lost, migrating and failed ones.
    pub place: Vec<PlaceRequest>,
    /// Replacements of allocations whose tasks changed; each stops its `previous`.
    pub destructive_update: Vec<PlaceRequest>,
    /// Allocations moved to the new job version without restarting.
    pub inplace_update: Vec<Arc<Allocation>>,
    /// Allocations to stop now.
    pub stop: Vec<StopRequest>,
    /// Allocations left as they are.
    pub ignore: Vec<Arc<Allocation>>,
    /// Failed allocations to reschedule later, with the Unix time they become eligible.
    pub reschedule_later: Vec<(Arc<Allocation>, i64)>,
    /// Desired changes per group.
    pub desired_tg_updates: BTreeMap<String, DesiredUpdates>,
}

/// Inputs of one reconciliation.
pub struct AllocReconciler<'a> {
    /// The job; `None` when it was deleted.
    pub job: Option<&'a Job>,
    /// Batch semantics: completed allocations count as done and are never replaced.
    pub batch: bool,
    /// Every allocation of the job.
    pub allocs: &'a [Arc<Allocation>],
    /// Nodes of those allocations that are down or draining.
    pub tainted: &'a HashMap<String, NodeTaint>,
    /// Earlier versions of the job, to tell in-place from destructive updates.
    pub job_version: &'a dyn Fn(i64) -> Option<Arc<Job>>,
    /// The deployment of the job's current version, when it has one: it places canaries and
    /// paces (or, paused or failed, holds) the rolling update of the groups it names.
    pub deployment: Option<&'a Deployment>,
    /// Current time, Unix seconds.
    pub now_unix: i64,
}

impl AllocReconciler<'_> {
    /// Decides every group's changes.
    pub fn compute(&self) -> ReconcileResults {
        let mut results = ReconcileResults::default();
        let mut by_group: BTreeMap<&str, Vec<&Arc<Allocation>>> = BTreeMap::new();
        for alloc in self.allocs {
            by_group
                .entry(alloc.spec.group.as_str())
                .or_default()
                .push(alloc);
        }
        let stopped = self.job.is_none_or(|j| j.spec.stop);
        let mut groups: BTreeSet<&str> = by_group.keys().copied().collect();
        if let Some(job) = self.job.filter(|_| !stopped) {
            groups.extend(job.spec.groups.iter().map(|g| g.name.as_str()));
        }
        for name in groups {
            let allocs = by_group.remove(name).unwrap_or_default();
            let desired = self.job.filter(|_| !stopped).and_then(|job| {
                job.spec
                    .groups
                    .iter()
                    .find(|g| g.name == name)
                    .map(|g| (job, g))
            });
            let updates = match desired {
                Some((job, group)) => {
                    group::reconcile_group(self, job, group, &allocs, &mut results)
                }
                None => {
                    let why = if stopped {
                        reasons::JOB_STOPPED
                    } else {
                        reasons::NOT_NEEDED
                    };
                    stop_all(&allocs, why, &mut results)
                }
            };
            results.desired_tg_updates.insert(name.to_string(), updates);
        }
        results
    }
}

fn stop_all(
    allocs: &[&Arc<Allocation>],
    why: &'static str,
    results: &mut ReconcileResults,
) -> DesiredUpdates {
    let mut updates = DesiredUpdates::default();
    for alloc in allocs {
        if alloc.is_server_terminal() {
            continue;
        }
        if alloc.is_client_terminal() {
            results.ignore.push(Arc::clone(alloc));
            updates.ignore += 1;
        } else {
            results.stop.push(StopRequest {
                alloc: Arc::clone(alloc),
                description: why,
                client_status: None,
            });
            updates.stop += 1;
        }
    }
    updates
}
