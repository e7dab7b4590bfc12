//! The scheduler's two boundaries (Nomad's `scheduler/structs/interfaces.go`): a read-only
//! [`State`] snapshot and a [`Planner`] that applies plans and records evaluations.

use std::sync::Arc;

use caravan_schemas::resources::Held;
use caravan_schemas::{Allocation, Deployment, Evaluation, Job, Node};

use super::{Plan, PlanResult, SchedError};

mod mem;

pub use mem::MemState;

/// A consistent, read-only snapshot of the cluster as the scheduler sees it.
pub trait State: Send + Sync {
    /// Store index (Raft log index) the snapshot was taken at.
    fn index(&self) -> u64;

    /// Every node, in any status; the scheduler filters them.
    fn nodes(&self) -> Vec<Arc<Node>>;

    /// One node by name.
    fn node(&self, name: &str) -> Option<Arc<Node>>;

    /// The current version of a job.
    fn job(&self, namespace: &str, name: &str) -> Option<Arc<Job>>;

    /// An earlier version of a job, to tell in-place from destructive updates. Stores that keep
    /// no history may return `None` for anything but the current version: every change of an
    /// older allocation is then treated as destructive.
    fn job_by_version(&self, namespace: &str, name: &str, version: i64) -> Option<Arc<Job>> {
        self.job(namespace, name)
            .filter(|job| job.status.as_ref().map_or(0, |s| s.version) == version)
    }

    /// A deployment by namespace and name (`<job>-v<version>`). Stores that keep none return
    /// `None`: the job's updates are then not paced by a deployment.
    fn deployment(&self, _namespace: &str, _name: &str) -> Option<Arc<Deployment>> {
        None
    }

    /// Every allocation of a job, terminal ones included.
    fn allocs_by_job(&self, namespace: &str, job: &str) -> Vec<Arc<Allocation>>;

    /// Every allocation placed on a node, of any job and namespace, terminal ones included.
    fn allocs_by_node(&self, node: &str) -> Vec<Arc<Allocation>>;

    /// What the live (non-terminal) allocations of a node hold together, for states that keep
    /// that sum as allocations change. `None`, the default, makes the scheduler add it up from
    /// [`State::allocs_by_node`] for every evaluation.
    fn held_on_node(&self, _node: &str) -> Option<Held> {
        None
    }

    /// The allocation `namespace`/`name` when it is placed on `node`.
    fn alloc_on_node(&self, node: &str, namespace: &str, name: &str) -> Option<Arc<Allocation>> {
        self.allocs_by_node(node).into_iter().find(|alloc| {
            alloc.metadata.name.as_deref() == Some(name) && alloc.metadata.namespace() == namespace
        })
    }
}

/// Where a scheduler's decisions go: the plan applier and the evaluation store.
pub trait Planner {
    /// Submits a plan. The applier commits the part that still fits; when part was rejected,
    /// [`PlanResult::refresh_index`] is non-zero and the second value is a fresher snapshot to
    /// retry against (`None` asks the scheduler to keep its own).
    fn submit_plan(
        &mut self,
        plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), SchedError>;

    /// Records the new status of an evaluation.
    fn update_eval(&mut self, eval: Evaluation) -> Result<(), SchedError>;

    /// Creates an evaluation: a blocked one for failed placements, or a follow-up.
    fn create_eval(&mut self, eval: Evaluation) -> Result<(), SchedError>;
}
