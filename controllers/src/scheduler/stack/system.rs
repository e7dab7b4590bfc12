//! [`SystemStack`]: placement for system and sysbatch jobs, one given node at a time with no
//! limit and only feasibility, distinct property and bin packing (Nomad's `SystemStack`).

use std::sync::Arc;

use caravan_schemas::job::TaskGroup;
use caravan_schemas::{Job, Node};

use super::GroupStack;
use super::group::Scoring;
use crate::scheduler::config::SchedulerConfig;
use crate::scheduler::context::EvalContext;
use crate::scheduler::feasible::ConstraintChecker;
use crate::scheduler::hash::FastMap;
use crate::scheduler::rank::{BinPackIterator, RankedNode, ReschedulePenalty};

/// The stack of the system and sysbatch schedulers.
#[derive(Debug)]
pub struct SystemStack {
    binpack: BinPackIterator,
    job: Arc<Job>,
    job_constraints: ConstraintChecker,
    groups: FastMap<String, GroupStack>,
}

impl SystemStack {
    /// A stack for `job`.
    pub fn new(config: &SchedulerConfig, job: Arc<Job>) -> Self {
        Self {
            binpack: BinPackIterator::new(config.algorithm),
            job_constraints: ConstraintChecker::new(&job.spec.constraints),
            job,
            groups: FastMap::default(),
        }
    }

    /// Checks and scores `node` for one allocation of `group`; `None` when it is filtered or
    /// exhausted (the metrics in `ctx.metrics` say which).
    pub fn select(
        &mut self,
        ctx: &mut EvalContext<'_>,
        group: &TaskGroup,
        node: &Arc<Node>,
    ) -> Option<RankedNode> {
        ctx.metrics.reset();
        if !self.groups.contains_key(&group.name) {
            let compiled = GroupStack::new(ctx, &self.job, group, 0, Scoring { full: false });
            self.groups.insert(group.name.clone(), compiled);
        }
        let stack = self.groups.get_mut(&group.name)?;
        stack.refresh(ctx);
        stack.evaluate(
            ctx,
            &self.job_constraints,
            self.binpack,
            &ReschedulePenalty::default(),
            node,
            None,
        )
    }

    /// Whether `node` passes the node-only checks for `group` (used to tell filtered nodes,
    /// which get no allocation, from exhausted ones, which are failed placements).
    pub fn statically_feasible(&self, group: &TaskGroup, node: &Node) -> bool {
        use crate::scheduler::feasible::{DriverChecker, FeasibilityChecker};
        let drivers = DriverChecker::new(group.tasks.iter().map(|t| t.driver.clone()));
        let constraints = ConstraintChecker::new(
            group
                .constraints
                .iter()
                .chain(group.tasks.iter().flat_map(|t| t.constraints.iter())),
        );
        self.job_constraints.check(node).is_ok()
            && drivers.check(node).is_ok()
            && constraints.check(node).is_ok()
    }
}
