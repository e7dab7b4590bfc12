//! [`GenericStack`]: placement for service and batch jobs. Nodes are shuffled once per plan and
//! visited round-robin across selections; at most `limit` feasible nodes are scored each time.

use std::sync::Arc;

use caravan_schemas::job::TaskGroup;
use caravan_schemas::{Job, Node};

use super::group::Scoring;
use super::{GroupStack, SelectOptions};
use crate::scheduler::config::SchedulerConfig;
use crate::scheduler::context::EvalContext;
use crate::scheduler::feasible::ConstraintChecker;
use crate::scheduler::hash::FastMap;
use crate::scheduler::rank::select::{affinity_limit, base_limit, max_score};
use crate::scheduler::rank::{BinPackIterator, LimitIterator, RankedNode};
use crate::scheduler::util;

/// The stack of the service and batch schedulers.
#[derive(Debug)]
pub struct GenericStack {
    nodes: Vec<Arc<Node>>,
    offset: usize,
    base_limit: usize,
    node_limit: usize,
    binpack: BinPackIterator,
    job: Arc<Job>,
    job_constraints: ConstraintChecker,
    groups: FastMap<String, GroupStack>,
}

impl GenericStack {
    /// A stack for `job` over `nodes` (the job's ready nodes), shuffled deterministically with
    /// the evaluation name and snapshot index.
    pub fn new(
        batch: bool,
        config: &SchedulerConfig,
        job: Arc<Job>,
        mut nodes: Vec<Arc<Node>>,
        eval_name: &str,
        index: u64,
    ) -> Self {
        util::shuffle_nodes(&mut nodes, eval_name, index);
        Self {
            base_limit: base_limit(batch, nodes.len()),
            nodes,
            offset: 0,
            node_limit: config.node_limit_with_affinities,
            binpack: BinPackIterator::new(config.algorithm),
            job_constraints: ConstraintChecker::new(&job.spec.constraints),
            job,
            groups: FastMap::default(),
        }
    }

    /// Nodes the stack chooses from.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// What one allocation of `group` asks, once the group was selected for.
    pub fn ask(&self, group: &str) -> Option<&caravan_schemas::resources::GroupAsk> {
        self.groups.get(group).map(|g| &g.ask)
    }

    /// Chooses a node for one allocation of `group`; the metrics stay in `ctx.metrics`.
    pub fn select(
        &mut self,
        ctx: &mut EvalContext<'_>,
        group: &TaskGroup,
        options: &SelectOptions,
    ) -> Option<RankedNode> {
        ctx.metrics.reset();
        ctx.index_slots(self.nodes.len());
        if !self.groups.contains_key(&group.name) {
            let compiled = GroupStack::new(
                ctx,
                &self.job,
                group,
                self.nodes.len(),
                Scoring { full: true },
            );
            self.groups.insert(group.name.clone(), compiled);
        }
        let stack = self.groups.get_mut(&group.name)?;
        stack.refresh(ctx);
        let penalty = GroupStack::penalty(options);

        if let Some(preferred) = &options.preferred_node
            && let Some(slot) = self
                .nodes
                .iter()
                .position(|n| n.metadata.name() == preferred)
        {
            let node = self.nodes[slot].clone();
            let found = stack.evaluate(
                ctx,
                &self.job_constraints,
                self.binpack,
                &penalty,
                &node,
                Some(slot),
            );
            if found.is_some() {
                return found;
            }
            ctx.metrics.reset();
        }

        let limit = if stack.wants_all_nodes() {
            affinity_limit(stack.count, self.node_limit)
        } else {
            self.base_limit
        };
        let mut limiter = LimitIterator::new(limit);
        let total = self.nodes.len();
        let mut seen = 0;
        while seen < total && !limiter.is_full() {
            let slot = self.offset;
            self.offset = (self.offset + 1) % total;
            seen += 1;
            let node = &self.nodes[slot];
            if let Some(ranked) = stack.evaluate(
                ctx,
                &self.job_constraints,
                self.binpack,
                &penalty,
                node,
                Some(slot),
            ) {
                limiter.offer(ranked);
            }
        }
        max_score(limiter.finish())
    }
}
