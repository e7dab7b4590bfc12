//! [`GroupStack`]: the checkers and scorers of one task group, compiled once per plan, and the
//! evaluation of one node through them.

use std::sync::Arc;

use caravan_schemas::fit;
use caravan_schemas::job::TaskGroup;
use caravan_schemas::ports::{self, NodePorts};
use caravan_schemas::resources::{Comparable, GroupAsk};
use caravan_schemas::{Job, Node};

use super::SelectOptions;
use crate::scheduler::context::EvalContext;
use crate::scheduler::feasible::distinct_hosts::{self, DistinctHosts};
use crate::scheduler::feasible::distinct_property::DistinctProperty;
use crate::scheduler::feasible::{ConstraintChecker, DriverChecker, FeasibilityChecker};
use crate::scheduler::hash::FastMap;
use crate::scheduler::metrics::{ScoreCard, Scorer};
use crate::scheduler::rank::normalize::normalize;
use crate::scheduler::rank::{
    BinPackIterator, JobAntiAffinity, NodeAffinity, RankedNode, ReschedulePenalty, SpreadScorer,
};

/// Reason recorded when a node has no device matching a request.
const MISSING_DEVICES: &str = "missing devices";

/// Cached outcome of the node-only checks for one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cached {
    Unknown,
    Feasible,
    Filtered(usize),
}

/// Which scorers a stack runs.
#[derive(Clone, Copy, Debug)]
pub struct Scoring {
    /// Job anti-affinity, node affinity, spread and distinct hosts (generic stack only).
    pub full: bool,
}

/// A task group compiled for selection.
#[derive(Debug)]
pub struct GroupStack {
    name: String,
    /// Allocations the group wants.
    pub count: u32,
    drivers: DriverChecker,
    constraints: ConstraintChecker,
    /// What one allocation asks.
    pub ask: GroupAsk,
    simple_ask: Option<Comparable>,
    distinct_hosts: DistinctHosts,
    distinct_properties: Vec<DistinctProperty>,
    /// Node affinities of the job, group and tasks.
    pub affinity: NodeAffinity,
    /// Spreads of the job and group.
    pub spread: SpreadScorer,
    anti_affinity: JobAntiAffinity,
    cache: Vec<Cached>,
    /// Outcomes per computed node class, when every check is class-wide (Nomad's class
    /// memoization): one node of a class is checked, the others share its outcome.
    by_class: Option<FastMap<String, Cached>>,
    reasons: Vec<String>,
    scoring: Scoring,
}

impl GroupStack {
    /// Compiles `group` of `job` for a stack over `node_count` nodes.
    pub fn new(
        ctx: &mut EvalContext<'_>,
        job: &Job,
        group: &TaskGroup,
        node_count: usize,
        scoring: Scoring,
    ) -> Self {
        let constraints = group
            .constraints
            .iter()
            .chain(group.tasks.iter().flat_map(|t| t.constraints.iter()));
        let affinities = job
            .spec
            .affinities
            .iter()
            .chain(&group.affinities)
            .chain(group.tasks.iter().flat_map(|t| t.affinities.iter()));
        let count = group.count.unwrap_or(1);
        let ask = GroupAsk::of(group);
        let simple_ask = ask.is_simple().then(|| Comparable {
            cpu: ask.cpu,
            memory_mb: ask.memory_mb,
            disk_mb: ask.disk_mb,
            ..Comparable::default()
        });
        let (distinct_hosts, distinct_properties, affinity, spread) = if scoring.full {
            (
                DistinctHosts::new(&job.spec.constraints, &group.constraints),
                DistinctProperty::for_group(
                    ctx,
                    &job.spec.constraints,
                    &group.constraints,
                    &group.name,
                ),
                NodeAffinity::new(affinities),
                SpreadScorer::new(ctx, &job.spec.spreads, &group.spreads, &group.name, count),
            )
        } else {
            (
                DistinctHosts::default(),
                DistinctProperty::for_group(
                    ctx,
                    &job.spec.constraints,
                    &group.constraints,
                    &group.name,
                ),
                NodeAffinity::default(),
                SpreadScorer::new(ctx, &[], &[], &group.name, count),
            )
        };
        let constraints = ConstraintChecker::new(constraints);
        let class_wide = constraints.is_class_wide()
            && ConstraintChecker::new(&job.spec.constraints).is_class_wide();
        Self {
            name: group.name.clone(),
            count,
            drivers: DriverChecker::new(group.tasks.iter().map(|t| t.driver.clone())),
            constraints,
            by_class: class_wide.then(FastMap::default),
            ask,
            simple_ask,
            distinct_hosts,
            distinct_properties,
            affinity,
            spread,
            anti_affinity: JobAntiAffinity::new(count),
            cache: vec![Cached::Unknown; node_count],
            reasons: Vec::new(),
            scoring,
        }
    }

    /// Whether nodes must all be scored (affinities or spreads).
    pub fn wants_all_nodes(&self) -> bool {
        self.affinity.is_active() || self.spread.is_active()
    }

    /// Catches up with what the plan placed or stopped since the last selection.
    pub fn refresh(&mut self, ctx: &mut EvalContext<'_>) {
        for rule in &mut self.distinct_properties {
            rule.refresh(ctx);
        }
        self.spread.refresh(ctx);
    }

    fn static_check(
        &mut self,
        job: &ConstraintChecker,
        node: &Node,
        slot: Option<usize>,
    ) -> Cached {
        if let Some(cached) = slot.and_then(|s| self.cache.get(s)).copied()
            && cached != Cached::Unknown
        {
            return cached;
        }
        let class = node
            .status
            .as_ref()
            .and_then(|s| s.computed_class.as_deref());
        let shared = match (&self.by_class, class) {
            (Some(classes), Some(class)) => classes.get(class).copied(),
            _ => None,
        };
        let outcome = match shared {
            Some(outcome) => outcome,
            None => {
                let outcome = self.check_node(job, node);
                if let (Some(classes), Some(class)) = (&mut self.by_class, class) {
                    classes.insert(class.to_string(), outcome);
                }
                outcome
            }
        };
        if let Some(entry) = slot.and_then(|s| self.cache.get_mut(s)) {
            *entry = outcome;
        }
        outcome
    }

    /// Runs the job's constraints, the drivers and the group's constraints on `node`.
    fn check_node(&mut self, job: &ConstraintChecker, node: &Node) -> Cached {
        let failed = job
            .check(node)
            .and_then(|()| self.drivers.check(node))
            .and_then(|()| self.constraints.check(node))
            .err()
            .map(str::to_string);
        match failed {
            None => Cached::Feasible,
            Some(reason) => match self.reasons.iter().position(|r| *r == reason) {
                Some(i) => Cached::Filtered(i),
                None => {
                    self.reasons.push(reason);
                    Cached::Filtered(self.reasons.len() - 1)
                }
            },
        }
    }

    /// Runs `node` through the checks and scorers, recording metrics. `slot` is the node's
    /// position in the stack's node list, for the feasibility cache.
    pub fn evaluate(
        &mut self,
        ctx: &mut EvalContext<'_>,
        job: &ConstraintChecker,
        binpack: BinPackIterator,
        penalty: &ReschedulePenalty,
        node: &Arc<Node>,
        slot: Option<usize>,
    ) -> Option<RankedNode> {
        ctx.metrics.evaluate_node();
        if let Cached::Filtered(reason) = self.static_check(job, node, slot) {
            ctx.metrics.filter_node(node, &self.reasons[reason]);
            return None;
        }
        let name = node.metadata.name();
        if self.distinct_hosts.is_active()
            && !self
                .distinct_hosts
                .satisfied(&ctx.job_allocs, name, &self.name)
        {
            ctx.metrics.filter_node(node, distinct_hosts::REASON);
            return None;
        }
        if let Some(rule) = self.distinct_properties.iter().find(|r| !r.satisfied(node)) {
            ctx.metrics.filter_node(node, &rule.label);
            return None;
        }
        let seed = if self.ask.ports.is_empty() {
            0
        } else {
            ctx.port_seed(name)
        };
        let proposed = ctx.proposed(slot, node);
        let collisions = proposed.job_count(&self.name);
        let usage = &proposed.usage;
        let ask = match &self.simple_ask {
            Some(ask) => ask.clone(),
            None => match self.ask.on_node(node, &usage.capacity) {
                Some(ask) => ask,
                None => {
                    ctx.metrics.filter_node(node, MISSING_DEVICES);
                    return None;
                }
            },
        };
        let util = match fit::fits(usage, &ask) {
            Ok(util) => util,
            Err(dimension) => {
                ctx.metrics.exhausted_node(node, dimension);
                return None;
            }
        };
        let ports = if self.ask.ports.is_empty() {
            Vec::new()
        } else {
            match ports::assign(
                &NodePorts::of(node),
                &usage.held.ports,
                &self.ask.ports,
                seed,
            ) {
                Ok(ports) => ports,
                Err(reason) => {
                    ctx.metrics.exhausted_node(node, reason);
                    return None;
                }
            }
        };
        let mut card = ScoreCard::default();
        card.set(Scorer::Binpack, binpack.score(&usage.capacity, &util));
        if self.scoring.full {
            if let Some(score) = self.anti_affinity.score(collisions) {
                card.set(Scorer::JobAntiAffinity, score);
            }
            if penalty.is_active() {
                card.set(Scorer::ReschedulePenalty, penalty.score(name));
            }
            if let Some(score) = self.affinity.score(node) {
                card.set(Scorer::NodeAffinity, score);
            }
            if let Some(score) = self.spread.score(node) {
                card.set(Scorer::Spread, score);
            }
        }
        normalize(&mut card);
        ctx.metrics.score_node(node, &card);
        Some(RankedNode {
            node: node.clone(),
            scores: card,
            ask,
            ports,
        })
    }

    /// Convenience for [`SelectOptions`] penalties.
    pub fn penalty(options: &SelectOptions) -> ReschedulePenalty {
        ReschedulePenalty::new(options.penalty_nodes.clone())
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::job::{Constraint, Operator};
    use caravan_schemas::mock;

    use super::*;
    use crate::scheduler::Plan;
    use crate::scheduler::config::SchedulerAlgorithm;
    use crate::scheduler::state::MemState;

    /// Whether `node` passes `job`'s checks, for a fresh stack that first saw `seen`.
    fn feasible(job: &Job, seen: &Node, node: &Node) -> bool {
        let state = MemState::new();
        let mut ctx = EvalContext::new(&state, Plan::default(), &[]);
        let mut stack = GroupStack::new(
            &mut ctx,
            job,
            &job.spec.groups[0],
            2,
            Scoring { full: true },
        );
        let checker = ConstraintChecker::new(&job.spec.constraints);
        let mut evaluate = |node: &Node, slot| {
            stack
                .evaluate(
                    &mut ctx,
                    &checker,
                    BinPackIterator::new(SchedulerAlgorithm::Binpack),
                    &ReschedulePenalty::default(),
                    &Arc::new(node.clone()),
                    Some(slot),
                )
                .is_some()
        };
        assert!(evaluate(seen, 0), "the first node passes");
        evaluate(node, 1)
    }

    #[test]
    fn nodes_of_one_computed_class_share_the_outcome_of_class_wide_checks() {
        let linux = mock::node("linux");
        // A node whose class says it is like `linux` (as the server would only say of an
        // identical node), though its kernel differs: its checks are not run again.
        let mut same_class = mock::node("other");
        let status = same_class.status.as_mut().expect("status");
        status
            .attributes
            .insert("kernel.name".into(), "windows".into());
        let mut job = mock::job("web");
        assert!(feasible(&job, &linux, &same_class));

        // With its own class it is checked, and filtered.
        let mut windows = same_class.clone();
        windows.compute_class();
        assert!(!feasible(&job, &linux, &windows));

        // A constraint on what is unique to a node turns the sharing off.
        job.spec.groups[0].constraints.push(Constraint {
            attribute: "${node.unique.name}".into(),
            operator: Some(Operator::NotEqual),
            value: "nobody".into(),
        });
        assert!(!feasible(&job, &linux, &same_class));
    }
}
