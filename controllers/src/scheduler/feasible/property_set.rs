//! [`PropertySet`]: how many of the job's proposed allocations sit on nodes with each value of
//! a node property (Nomad's `propertySet`), kept current by replaying the context's changes.

use std::collections::HashMap;

use caravan_schemas::Node;

use super::target::Target;
use crate::scheduler::context::EvalContext;

/// Allocation counts per value of one node property.
#[derive(Clone, Debug)]
pub struct PropertySet {
    target: Target,
    group: Option<String>,
    counts: HashMap<String, u64>,
    applied: usize,
}

impl PropertySet {
    /// Counts the proposed allocations of the job (of `group` only, when given) per value of
    /// `attribute` (e.g. `${node.datacenter}`).
    pub fn new(ctx: &mut EvalContext<'_>, attribute: &str, group: Option<&str>) -> Self {
        ctx.job_allocs.track_changes();
        let mut set = Self {
            target: Target::parse(attribute),
            group: group.map(String::from),
            counts: HashMap::new(),
            applied: ctx.job_allocs.changes.len(),
        };
        let nodes: Vec<(String, u32)> = ctx
            .job_allocs
            .nodes()
            .map(|node| {
                let count = match &set.group {
                    Some(group) => ctx.job_allocs.count(node, group),
                    None => ctx.job_allocs.count_any(node),
                };
                (node.to_string(), count)
            })
            .collect();
        for (node, count) in nodes {
            set.add(ctx, &node, i64::from(count));
        }
        set
    }

    fn add(&mut self, ctx: &mut EvalContext<'_>, node: &str, delta: i64) {
        if delta == 0 {
            return;
        }
        let Some(node) = ctx.node(node) else {
            return;
        };
        let Some(value) = self.target.resolve(&node) else {
            return;
        };
        let count = self.counts.entry(value.to_string()).or_default();
        *count = count.saturating_add_signed(delta);
    }

    /// Applies the placements and stops added to the plan since the last call.
    pub fn refresh(&mut self, ctx: &mut EvalContext<'_>) {
        while self.applied < ctx.job_allocs.changes.len() {
            let change = ctx.job_allocs.changes[self.applied].clone();
            self.applied += 1;
            if self.group.as_ref().is_none_or(|g| *g == change.group) {
                self.add(ctx, &change.node, change.delta);
            }
        }
    }

    /// The property's value on `node`.
    pub fn value_of<'n>(&'n self, node: &'n Node) -> Option<&'n str> {
        self.target.resolve(node)
    }

    /// Allocations on nodes with `value`.
    pub fn count(&self, value: &str) -> u64 {
        self.counts.get(value).copied().unwrap_or(0)
    }

    /// Counts per value, values with no allocation left out.
    pub fn counts(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counts
            .iter()
            .filter(|(_, c)| **c > 0)
            .map(|(v, c)| (v.as_str(), *c))
    }
}
