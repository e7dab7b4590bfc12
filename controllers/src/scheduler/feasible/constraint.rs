//! [`ConstraintChecker`]: constraints with `=`, `!=`, `<`, `>`, `regexp`, `version`, `semver`,
//! `set_contains*` and `is_set`/`is_not_set` (Nomad's `checkConstraint`). The same operand logic
//! scores affinities.

use std::borrow::Cow;
use std::cmp::Ordering;

use caravan_schemas::Node;
use caravan_schemas::job::{Constraint, Operator};
use regex::Regex;

use super::FeasibilityChecker;
use super::target::Target;
use super::version::{Flavor, Version, VersionConstraints};

/// A constraint (or affinity rule) with its targets parsed and its regex or version
/// constraints compiled once.
#[derive(Clone, Debug)]
pub struct CompiledConstraint {
    /// `<attribute> <operator> <value>`, the name used in placement metrics.
    pub label: String,
    left: Target,
    right: Target,
    operator: Operator,
    regex: Option<Regex>,
    versions: Option<VersionConstraints>,
}

impl CompiledConstraint {
    /// Compiles `attribute operator value`.
    pub fn new(attribute: &str, operator: Operator, value: &str) -> Self {
        let right = Target::parse(value);
        let literal = (!right.is_interpolated()).then_some(value);
        let regex = match (operator, literal) {
            (Operator::Regexp, Some(value)) => Regex::new(value).ok(),
            _ => None,
        };
        let versions = match (operator, literal) {
            (Operator::Version, Some(value)) => VersionConstraints::parse(value, Flavor::Version),
            (Operator::Semver, Some(value)) => VersionConstraints::parse(value, Flavor::Semver),
            _ => None,
        };
        Self {
            label: format!("{attribute} {} {value}", operator.as_str()),
            left: Target::parse(attribute),
            right,
            operator,
            regex,
            versions,
        }
    }

    /// Compiles a job, group or task constraint.
    pub fn from_constraint(constraint: &Constraint) -> Self {
        Self::new(
            &constraint.attribute,
            constraint.operator.unwrap_or_default(),
            &constraint.value,
        )
    }

    /// Whether every node of one computed class satisfies it or not alike.
    pub fn is_class_wide(&self) -> bool {
        self.left.is_class_wide() && self.right.is_class_wide()
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// Whether `node` satisfies the rule. `distinct_hosts` and `distinct_property` always pass
    /// here: their own iterators handle them.
    pub fn satisfied_by(&self, node: &Node) -> bool {
        let left = self.left.resolve(node);
        let right = self.right.resolve(node);
        match self.operator {
            Operator::DistinctHosts | Operator::DistinctProperty => true,
            Operator::Equal | Operator::DoubleEqual | Operator::Is => {
                left.is_some() && left == right
            }
            Operator::NotEqual | Operator::Not => left != right,
            Operator::Less
            | Operator::LessOrEqual
            | Operator::Greater
            | Operator::GreaterOrEqual => match (left, right) {
                (Some(l), Some(r)) => check_order(self.operator, l, r),
                _ => false,
            },
            Operator::IsSet => left.is_some(),
            Operator::IsNotSet => left.is_none(),
            Operator::Regexp => match (left, right) {
                (Some(l), Some(r)) => match &self.regex {
                    Some(regex) => regex.is_match(l),
                    None => Regex::new(r).is_ok_and(|re| re.is_match(l)),
                },
                _ => false,
            },
            Operator::Version | Operator::Semver => match (left, right) {
                (Some(l), Some(r)) => {
                    let versions = match &self.versions {
                        Some(v) => Cow::Borrowed(v),
                        None => {
                            let flavor = if self.operator == Operator::Semver {
                                Flavor::Semver
                            } else {
                                Flavor::Version
                            };
                            match VersionConstraints::parse(r, flavor) {
                                Some(v) => Cow::Owned(v),
                                None => return false,
                            }
                        }
                    };
                    Version::parse(l).is_some_and(|v| versions.matches(&v))
                }
                _ => false,
            },
            Operator::SetContains | Operator::SetContainsAll => match (left, right) {
                (Some(l), Some(r)) => {
                    split_set(r).all(|want| split_set(l).any(|have| have == want))
                }
                _ => false,
            },
            Operator::SetContainsAny => match (left, right) {
                (Some(l), Some(r)) => {
                    split_set(r).any(|want| split_set(l).any(|have| have == want))
                }
                _ => false,
            },
        }
    }
}

fn split_set(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Orders numerically when both sides parse as numbers, lexically otherwise.
fn check_order(operator: Operator, left: &str, right: &str) -> bool {
    let ordering = match (left.trim().parse::<f64>(), right.trim().parse::<f64>()) {
        (Ok(l), Ok(r)) => l.partial_cmp(&r),
        _ => Some(left.cmp(right)),
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match operator {
        Operator::Less => ordering == Ordering::Less,
        Operator::LessOrEqual => ordering != Ordering::Greater,
        Operator::Greater => ordering == Ordering::Greater,
        Operator::GreaterOrEqual => ordering != Ordering::Less,
        _ => false,
    }
}

/// Keeps nodes that satisfy every constraint of a set (job-level, or group plus tasks).
#[derive(Clone, Debug, Default)]
pub struct ConstraintChecker {
    constraints: Vec<CompiledConstraint>,
}

impl ConstraintChecker {
    /// A checker for `constraints`; `distinct_*` ones are left to their iterators.
    pub fn new<'a>(constraints: impl IntoIterator<Item = &'a Constraint>) -> Self {
        let constraints = constraints
            .into_iter()
            .filter(|c| {
                !matches!(
                    c.operator.unwrap_or_default(),
                    Operator::DistinctHosts | Operator::DistinctProperty
                )
            })
            .map(CompiledConstraint::from_constraint)
            .collect();
        Self { constraints }
    }

    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.constraints.is_empty()
    }

    /// Whether every node of one computed class passes or fails alike.
    pub fn is_class_wide(&self) -> bool {
        self.constraints
            .iter()
            .all(CompiledConstraint::is_class_wide)
    }
}

impl FeasibilityChecker for ConstraintChecker {
    fn check(&self, node: &Node) -> Result<(), &str> {
        match self.constraints.iter().find(|c| !c.satisfied_by(node)) {
            Some(failed) => Err(&failed.label),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;

    use super::*;

    fn node() -> Node {
        let mut node = mock::node("n1");
        let status = node.status.get_or_insert_default();
        status
            .attributes
            .insert("kernel.version".into(), "5.15.0".into());
        status
            .attributes
            .insert("nomad.version".into(), "1.7.2-beta".into());
        status.attributes.insert("cpu.numcores".into(), "16".into());
        status
            .attributes
            .insert("features".into(), "avx, sse4, aes".into());
        node.spec.meta.insert("rack".into(), "r12".into());
        node
    }

    fn holds(attribute: &str, operator: Operator, value: &str) -> bool {
        CompiledConstraint::new(attribute, operator, value).satisfied_by(&node())
    }

    #[test]
    fn equality_operators() {
        assert!(holds("${attr.kernel.name}", Operator::Equal, "linux"));
        assert!(holds("${attr.kernel.name}", Operator::DoubleEqual, "linux"));
        assert!(holds("${attr.kernel.name}", Operator::Is, "linux"));
        assert!(!holds("${attr.kernel.name}", Operator::Equal, "windows"));
        assert!(!holds("${attr.missing}", Operator::Equal, "x"));
        assert!(holds("${attr.kernel.name}", Operator::NotEqual, "windows"));
        assert!(holds("${attr.missing}", Operator::Not, "x"));
        assert!(holds("${node.datacenter}", Operator::Equal, "dc1"));
        assert!(holds("${meta.rack}", Operator::Equal, "r12"));
    }

    #[test]
    fn order_operators_are_numeric_when_possible() {
        assert!(holds("${attr.cpu.numcores}", Operator::Greater, "4"));
        assert!(holds(
            "${attr.cpu.numcores}",
            Operator::GreaterOrEqual,
            "16"
        ));
        assert!(!holds("${attr.cpu.numcores}", Operator::Less, "9"));
        assert!(holds("${meta.rack}", Operator::Greater, "r1"));
        assert!(holds("${meta.rack}", Operator::LessOrEqual, "r2"));
        assert!(!holds("${attr.missing}", Operator::Less, "9"));
    }

    #[test]
    fn regexp_version_and_semver() {
        assert!(holds("${attr.kernel.name}", Operator::Regexp, "^lin"));
        assert!(!holds("${attr.kernel.name}", Operator::Regexp, "^win"));
        assert!(!holds("${attr.kernel.name}", Operator::Regexp, "(unclosed"));
        assert!(holds(
            "${attr.kernel.version}",
            Operator::Version,
            ">= 5.4, < 6.0"
        ));
        assert!(!holds("${attr.kernel.version}", Operator::Version, "< 5.0"));
        assert!(!holds("${attr.nomad.version}", Operator::Version, ">= 1.7"));
        assert!(holds(
            "${attr.nomad.version}",
            Operator::Semver,
            ">= 1.7.0-alpha"
        ));
    }

    #[test]
    fn set_and_presence_operators() {
        assert!(holds("${attr.features}", Operator::SetContains, "avx,aes"));
        assert!(holds("${attr.features}", Operator::SetContainsAll, "sse4"));
        assert!(!holds(
            "${attr.features}",
            Operator::SetContainsAll,
            "avx,neon"
        ));
        assert!(holds(
            "${attr.features}",
            Operator::SetContainsAny,
            "avx,neon"
        ));
        assert!(!holds("${attr.features}", Operator::SetContainsAny, "neon"));
        assert!(holds("${meta.rack}", Operator::IsSet, ""));
        assert!(holds("${meta.nope}", Operator::IsNotSet, ""));
        assert!(!holds("${meta.rack}", Operator::IsNotSet, ""));
    }

    #[test]
    fn checker_reports_the_failing_constraint() {
        let constraints = [
            Constraint {
                attribute: "${attr.kernel.name}".into(),
                operator: Some(Operator::Equal),
                value: "linux".into(),
            },
            Constraint {
                attribute: "${attr.cpu.arch}".into(),
                operator: Some(Operator::Equal),
                value: "arm64".into(),
            },
        ];
        let checker = ConstraintChecker::new(&constraints);
        assert_eq!(checker.check(&node()), Err("${attr.cpu.arch} = arm64"));
    }
}
