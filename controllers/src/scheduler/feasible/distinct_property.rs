//! [`DistinctProperty`]: at most `value` (default 1) allocations per value of a node property,
//! counted over the job (job-level constraint) or the group (group-level).

use caravan_schemas::Node;
use caravan_schemas::job::{Constraint, Operator};

use super::property_set::PropertySet;
use crate::scheduler::context::EvalContext;

/// One `distinct_property` rule with its counts.
#[derive(Clone, Debug)]
pub struct DistinctProperty {
    /// `<attribute> distinct_property <value>`, the metrics reason.
    pub label: String,
    limit: u64,
    set: PropertySet,
}

impl DistinctProperty {
    /// The rules of a job (counting every group) and of `group` (counting that group).
    pub fn for_group(
        ctx: &mut EvalContext<'_>,
        job_constraints: &[Constraint],
        group_constraints: &[Constraint],
        group: &str,
    ) -> Vec<Self> {
        let is_rule = |c: &&Constraint| c.operator == Some(Operator::DistinctProperty);
        let mut rules = Vec::new();
        for c in job_constraints.iter().filter(is_rule) {
            rules.push(Self::new(ctx, c, None));
        }
        for c in group_constraints.iter().filter(is_rule) {
            rules.push(Self::new(ctx, c, Some(group)));
        }
        rules
    }

    fn new(ctx: &mut EvalContext<'_>, constraint: &Constraint, group: Option<&str>) -> Self {
        let limit = constraint.value.trim().parse().unwrap_or(1).max(1);
        Self {
            label: format!(
                "{} distinct_property {}",
                constraint.attribute, constraint.value
            )
            .trim_end()
            .to_string(),
            limit,
            set: PropertySet::new(ctx, &constraint.attribute, group),
        }
    }

    /// Catches up with the plan.
    pub fn refresh(&mut self, ctx: &mut EvalContext<'_>) {
        self.set.refresh(ctx);
    }

    /// Whether `node` has the property and fewer than the limit of allocations share its value.
    pub fn satisfied(&self, node: &Node) -> bool {
        self.set
            .value_of(node)
            .is_some_and(|value| self.set.count(value) < self.limit)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use caravan_schemas::mock;

    use super::*;
    use crate::scheduler::Plan;
    use crate::scheduler::state::{MemState, State};

    #[test]
    fn distinct_property_limits_allocations_per_value() {
        let job = mock::job("web");
        let mut state = MemState::new();
        let mut n1 = mock::node("n1");
        n1.spec.meta.insert("rack".into(), "r1".into());
        let mut n2 = mock::node("n2");
        n2.spec.meta.insert("rack".into(), "r1".into());
        let n3 = mock::node("n3");
        for n in [&n1, &n2, &n3] {
            state.upsert_node(n.clone());
        }
        let existing = vec![Arc::new(mock::allocation("a", &job, &n1))];
        let mut ctx = EvalContext::new(&state, Plan::default(), &existing);
        let rule = Constraint {
            attribute: "${meta.rack}".into(),
            operator: Some(Operator::DistinctProperty),
            value: "2".into(),
        };
        let mut rules = DistinctProperty::for_group(&mut ctx, &[], &[rule], "web");
        assert!(rules[0].satisfied(&n2));
        assert!(!rules[0].satisfied(&n3), "node without the property");

        let extra = mock::allocation("b", &job, &n2);
        let used = caravan_schemas::resources::alloc_usage(&extra);
        ctx.place(extra, &used);
        rules[0].refresh(&mut ctx);
        assert!(!rules[0].satisfied(&n1));
        assert_eq!(state.nodes().len(), 3);
    }
}
