//! [`DistinctHosts`]: at most one allocation of the job (job-level constraint) or of the group
//! (group-level) per node.

use caravan_schemas::job::{Constraint, Operator};

use crate::scheduler::context::JobAllocs;

/// The reason recorded in metrics.
pub const REASON: &str = "distinct_hosts";

fn enabled(constraints: &[Constraint]) -> bool {
    constraints.iter().any(|c| {
        c.operator == Some(Operator::DistinctHosts) && !c.value.eq_ignore_ascii_case("false")
    })
}

/// Distinct-hosts rules of a job and one of its groups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DistinctHosts {
    job: bool,
    group: bool,
}

impl DistinctHosts {
    /// Reads the rules from the job's and the group's constraints.
    pub fn new(job_constraints: &[Constraint], group_constraints: &[Constraint]) -> Self {
        Self {
            job: enabled(job_constraints),
            group: enabled(group_constraints),
        }
    }

    /// Whether any rule applies.
    pub fn is_active(&self) -> bool {
        self.job || self.group
    }

    /// Whether a node with the job's `allocs` can take another allocation of `group`.
    pub fn satisfied(&self, allocs: &JobAllocs, node: &str, group: &str) -> bool {
        if self.job {
            return allocs.count_any(node) == 0;
        }
        if self.group {
            return allocs.count(node, group) == 0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use caravan_schemas::mock;

    use super::*;
    use crate::scheduler::Plan;
    use crate::scheduler::context::EvalContext;
    use crate::scheduler::state::MemState;

    #[test]
    fn distinct_hosts_rejects_nodes_with_the_job() {
        let job = mock::job("web");
        let node = mock::node("n1");
        let state = MemState::new();
        let existing = vec![Arc::new(mock::allocation("a", &job, &node))];
        let ctx = EvalContext::new(&state, Plan::default(), &existing);
        let rule = Constraint {
            operator: Some(Operator::DistinctHosts),
            ..Constraint::default()
        };
        let job_level = DistinctHosts::new(std::slice::from_ref(&rule), &[]);
        assert!(!job_level.satisfied(&ctx.job_allocs, "n1", "other"));
        assert!(job_level.satisfied(&ctx.job_allocs, "n2", "web"));
        let group_level = DistinctHosts::new(&[], std::slice::from_ref(&rule));
        assert!(group_level.satisfied(&ctx.job_allocs, "n1", "other"));
        assert!(!group_level.satisfied(&ctx.job_allocs, "n1", "web"));
        assert!(!DistinctHosts::new(&[], &[]).is_active());
    }
}
