//! [`NodeAffinity`]: soft preferences, the weights (−100..100) of the matching affinities over
//! the sum of all absolute weights.

use caravan_schemas::Node;
use caravan_schemas::job::Affinity;
use caravan_schemas::job::defaults;

use crate::scheduler::feasible::CompiledConstraint;

/// Scores nodes by the job's, group's and tasks' affinities.
#[derive(Clone, Debug, Default)]
pub struct NodeAffinity {
    rules: Vec<(CompiledConstraint, i32)>,
    sum_weight: f64,
}

impl NodeAffinity {
    /// A scorer for `affinities`.
    pub fn new<'a>(affinities: impl IntoIterator<Item = &'a Affinity>) -> Self {
        let rules: Vec<(CompiledConstraint, i32)> = affinities
            .into_iter()
            .map(|a| {
                let rule =
                    CompiledConstraint::new(&a.attribute, a.operator.unwrap_or_default(), &a.value);
                (rule, a.weight.unwrap_or(defaults::WEIGHT).clamp(-100, 100))
            })
            .collect();
        let sum_weight = rules.iter().map(|(_, w)| f64::from(w.abs())).sum();
        Self { rules, sum_weight }
    }

    /// Whether there are affinities.
    pub fn is_active(&self) -> bool {
        !self.rules.is_empty() && self.sum_weight > 0.0
    }

    /// The normalized affinity score of `node`, `None` when no affinity matches.
    pub fn score(&self, node: &Node) -> Option<f64> {
        if !self.is_active() {
            return None;
        }
        let total: i32 = self
            .rules
            .iter()
            .filter(|(rule, _)| rule.satisfied_by(node))
            .map(|(_, weight)| *weight)
            .sum();
        (total != 0).then(|| f64::from(total) / self.sum_weight)
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::job::Operator;
    use caravan_schemas::mock;

    use super::*;

    fn affinity(attribute: &str, value: &str, weight: i32) -> Affinity {
        Affinity {
            attribute: attribute.into(),
            operator: Some(Operator::Equal),
            value: value.into(),
            weight: Some(weight),
        }
    }

    #[test]
    fn matching_weights_over_total_weight() {
        let node = mock::node("n1");
        let scorer = NodeAffinity::new(&[
            affinity("${node.datacenter}", "dc1", 50),
            affinity("${attr.cpu.arch}", "arm64", 50),
        ]);
        assert_eq!(scorer.score(&node), Some(0.5));
        let avoid = NodeAffinity::new(&[affinity("${node.datacenter}", "dc1", -100)]);
        assert_eq!(avoid.score(&node), Some(-1.0));
        let none = NodeAffinity::new(&[affinity("${node.datacenter}", "dc9", 100)]);
        assert_eq!(none.score(&node), None);
    }
}
