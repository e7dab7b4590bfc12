//! [`SpreadScorer`]: Nomad's spread scoring. With targets, a node scores by how far its
//! attribute value is below its desired share; without targets, values are evened out.

use std::collections::HashMap;

use caravan_schemas::Node;
use caravan_schemas::job::{Spread, defaults};

use crate::scheduler::context::EvalContext;
use crate::scheduler::feasible::property_set::PropertySet;

/// Value standing for every attribute value without an explicit target.
const IMPLICIT_TARGET: &str = "*";

#[derive(Clone, Debug)]
struct SpreadRule {
    weight: i32,
    desired: HashMap<String, f64>,
    set: PropertySet,
}

/// Scores nodes by the spreads of a job and one of its groups.
#[derive(Clone, Debug)]
pub struct SpreadScorer {
    rules: Vec<SpreadRule>,
    sum_weights: i32,
    lowest_boost: f64,
}

impl SpreadScorer {
    /// A scorer for `group` (wanting `count` allocations) with the group's and the job's
    /// spreads.
    pub fn new(
        ctx: &mut EvalContext<'_>,
        job_spreads: &[Spread],
        group_spreads: &[Spread],
        group: &str,
        count: u32,
    ) -> Self {
        let total = f64::from(count);
        let mut rules = Vec::new();
        let mut sum_weights = 0;
        for spread in group_spreads.iter().chain(job_spreads) {
            let weight = spread.weight.unwrap_or(defaults::WEIGHT);
            let mut desired = HashMap::new();
            let mut sum = 0.0;
            for target in &spread.targets {
                let want = f64::from(target.percent) / 100.0 * total;
                desired.insert(target.value.clone(), want);
                sum += want;
            }
            if sum > 0.0 && sum < total {
                desired.insert(IMPLICIT_TARGET.to_string(), total - sum);
            }
            sum_weights += weight;
            rules.push(SpreadRule {
                weight,
                desired,
                set: PropertySet::new(ctx, &spread.attribute, Some(group)),
            });
        }
        Self {
            rules,
            sum_weights,
            lowest_boost: -1.0,
        }
    }

    /// Whether the group has spreads.
    pub fn is_active(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Catches up with the plan.
    pub fn refresh(&mut self, ctx: &mut EvalContext<'_>) {
        for rule in &mut self.rules {
            rule.set.refresh(ctx);
        }
    }

    /// The spread score of `node`, `None` when it is exactly 0.
    pub fn score(&mut self, node: &Node) -> Option<f64> {
        let mut total = 0.0;
        for rule in &self.rules {
            let Some(value) = rule.set.value_of(node) else {
                total -= 1.0;
                continue;
            };
            if rule.desired.is_empty() {
                total += even_spread_boost(&rule.set, value);
                continue;
            }
            let desired = rule
                .desired
                .get(value)
                .or_else(|| rule.desired.get(IMPLICIT_TARGET));
            let Some(&desired) = desired else {
                total -= 1.0;
                continue;
            };
            if desired == 0.0 {
                total += self.lowest_boost;
                continue;
            }
            let used = rule.set.count(value) as f64 + 1.0;
            let weight = if self.sum_weights > 0 {
                f64::from(rule.weight) / f64::from(self.sum_weights)
            } else {
                0.0
            };
            let boost = (desired - used) / desired * weight;
            total += boost;
            if boost < self.lowest_boost {
                self.lowest_boost = boost;
            }
        }
        (total != 0.0).then_some(total)
    }
}

/// Nomad's `evenSpreadScoreBoost`: favour values with the fewest allocations.
fn even_spread_boost(set: &PropertySet, value: &str) -> f64 {
    let mut min = u64::MAX;
    let mut max = 0;
    let mut any = false;
    for (_, count) in set.counts() {
        any = true;
        min = min.min(count);
        max = max.max(count);
    }
    if !any {
        return 0.0;
    }
    let current = set.count(value);
    if current != min {
        return (min as f64 - current as f64) / min as f64;
    }
    if min == max {
        return -1.0;
    }
    (max - min) as f64 / min as f64
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use caravan_schemas::job::SpreadTarget;
    use caravan_schemas::mock;

    use super::*;
    use crate::scheduler::Plan;
    use crate::scheduler::state::MemState;

    fn cluster() -> (MemState, Node, Node) {
        let mut state = MemState::new();
        let n1 = mock::node("n1");
        let mut n2 = mock::node("n2");
        n2.spec.datacenter = Some("dc2".into());
        state.upsert_node(n1.clone());
        state.upsert_node(n2.clone());
        (state, n1, n2)
    }

    #[test]
    fn targets_favour_the_value_below_its_share() {
        let (state, n1, n2) = cluster();
        let job = mock::job("web");
        let existing: Vec<_> = (0..3)
            .map(|i| Arc::new(mock::allocation(&format!("a{i}"), &job, &n1)))
            .collect();
        let mut ctx = EvalContext::new(&state, Plan::default(), &existing);
        let spread = Spread {
            attribute: "${node.datacenter}".into(),
            weight: Some(100),
            targets: vec![
                SpreadTarget {
                    value: "dc1".into(),
                    percent: 50,
                },
                SpreadTarget {
                    value: "dc2".into(),
                    percent: 50,
                },
            ],
        };
        let mut scorer = SpreadScorer::new(&mut ctx, &[spread], &[], "web", 10);
        let s1 = scorer.score(&n1).unwrap_or_default();
        let s2 = scorer.score(&n2).unwrap_or_default();
        assert!((s1 - (5.0 - 4.0) / 5.0).abs() < 1e-9, "{s1}");
        assert!((s2 - (5.0 - 1.0) / 5.0).abs() < 1e-9, "{s2}");
    }

    #[test]
    fn even_spread_prefers_the_emptier_value() {
        let (state, n1, n2) = cluster();
        let job = mock::job("web");
        let existing = vec![Arc::new(mock::allocation("a", &job, &n1))];
        let mut ctx = EvalContext::new(&state, Plan::default(), &existing);
        let spread = Spread {
            attribute: "${node.datacenter}".into(),
            weight: Some(50),
            targets: Vec::new(),
        };
        let mut scorer = SpreadScorer::new(&mut ctx, &[], &[spread], "web", 4);
        assert_eq!(scorer.score(&n1), Some(-1.0));
        assert_eq!(scorer.score(&n2), Some(1.0));
    }
}
