//! Placement rules shared by jobs, groups, tasks and devices: constraints, affinities, spreads.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a constraint or affinity compares `attribute` with `value`. One of `=`, `==`, `is`,
/// `!=`, `not`, `<`, `<=`, `>`, `>=`, `regexp`, `version`, `semver`, `set_contains`,
/// `set_contains_all`, `set_contains_any`, `is_set`, `is_not_set`, `distinct_hosts`,
/// `distinct_property`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Operator {
    #[default]
    #[serde(rename = "=")]
    Equal,
    #[serde(rename = "==")]
    DoubleEqual,
    #[serde(rename = "is")]
    Is,
    #[serde(rename = "!=")]
    NotEqual,
    #[serde(rename = "not")]
    Not,
    #[serde(rename = "<")]
    Less,
    #[serde(rename = "<=")]
    LessOrEqual,
    #[serde(rename = ">")]
    Greater,
    #[serde(rename = ">=")]
    GreaterOrEqual,
    #[serde(rename = "regexp")]
    Regexp,
    #[serde(rename = "version")]
    Version,
    #[serde(rename = "semver")]
    Semver,
    #[serde(rename = "set_contains")]
    SetContains,
    #[serde(rename = "set_contains_all")]
    SetContainsAll,
    #[serde(rename = "set_contains_any")]
    SetContainsAny,
    #[serde(rename = "is_set")]
    IsSet,
    #[serde(rename = "is_not_set")]
    IsNotSet,
    #[serde(rename = "distinct_hosts")]
    DistinctHosts,
    #[serde(rename = "distinct_property")]
    DistinctProperty,
}

impl Operator {
    /// The operator as written in a spec, e.g. `set_contains`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equal => "=",
            Operator::DoubleEqual => "==",
            Operator::Is => "is",
            Operator::NotEqual => "!=",
            Operator::Not => "not",
            Operator::Less => "<",
            Operator::LessOrEqual => "<=",
            Operator::Greater => ">",
            Operator::GreaterOrEqual => ">=",
            Operator::Regexp => "regexp",
            Operator::Version => "version",
            Operator::Semver => "semver",
            Operator::SetContains => "set_contains",
            Operator::SetContainsAll => "set_contains_all",
            Operator::SetContainsAny => "set_contains_any",
            Operator::IsSet => "is_set",
            Operator::IsNotSet => "is_not_set",
            Operator::DistinctHosts => "distinct_hosts",
            Operator::DistinctProperty => "distinct_property",
        }
    }

    /// Why `value` cannot be compared with this operator, if it cannot: a `regexp` that does
    /// not compile, a `version` or `semver` constraint that does not parse (the scheduler
    /// would find no node for it). An interpolated value (`${…}`) is resolved on each node
    /// and not checked here, nor is an empty one (it is refused as missing).
    pub fn value_problem(self, value: &str) -> Option<String> {
        let interpolated = value.starts_with("${") && value.ends_with('}');
        if interpolated || value.is_empty() {
            return None;
        }
        match self {
            Operator::Regexp => regex::Regex::new(value).err().map(|e| {
                let text = e.to_string();
                let detail = text
                    .lines()
                    .rev()
                    .map(str::trim)
                    .find(|line| !line.is_empty())
                    .unwrap_or_default();
                let detail = detail.strip_prefix("error: ").unwrap_or(detail);
                format!("{value:?} is not a valid regular expression: {detail}")
            }),
            Operator::Version => version_constraints_problem(value, false),
            Operator::Semver => version_constraints_problem(value, true),
            _ => None,
        }
    }
}

/// Why `raw` is not a list of version comparisons (`>= 1.2, < 2.0`, `~> 1.4`, `= 1.2.3-beta`)
/// as the scheduler's `version` and `semver` operators parse them, if it is not; `semver`
/// has no `~>`.
fn version_constraints_problem(raw: &str, semver: bool) -> Option<String> {
    const OPERATORS: [&str; 8] = [">=", "<=", "!=", "~>", "==", ">", "<", "="];
    for part in raw.split(',') {
        let part = part.trim();
        let (op, version) = OPERATORS
            .iter()
            .find_map(|op| part.strip_prefix(op).map(|rest| (*op, rest)))
            .unwrap_or(("=", part));
        if semver && op == "~>" {
            return Some(format!(
                "{part:?}: the semver operator does not take \"~>\""
            ));
        }
        if !version_parses(version) {
            return Some(format!(
                "{part:?} is not a version comparison such as \">= 1.2.0\" or \"~> 1.4\""
            ));
        }
    }
    None
}

/// Whether `raw` is a version: `1`, `1.2`, `v1.2.3`, `1.2.3-beta.1` or `1.2.3+build`.
fn version_parses(raw: &str) -> bool {
    let raw = raw.trim();
    let raw = raw.strip_prefix('v').unwrap_or(raw);
    let raw = raw.split('+').next().unwrap_or(raw);
    let core = match raw.split_once('-') {
        Some((core, pre)) if !pre.is_empty() => core,
        Some(_) => return false,
        None => raw,
    };
    core.split('.')
        .all(|segment| segment.parse::<u64>().is_ok())
}

/// A hard placement rule: nodes whose attribute does not satisfy it are not feasible.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Constraint {
    /// Node attribute to examine, e.g. `${attr.kernel.name}`, `${node.datacenter}`, `${meta.rack}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub attribute: String,
    /// Comparison operator. Defaults to `=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
    /// Value to compare the attribute with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// A soft placement preference: matching nodes score higher (or lower, for a negative weight).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Affinity {
    /// Node attribute to examine, e.g. `${node.class}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub attribute: String,
    /// Comparison operator. Defaults to `=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
    /// Value to compare the attribute with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Strength of the preference, from -100 (avoid) to 100 (prefer). Defaults to 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -100, max = 100))]
    pub weight: Option<i32>,
}

/// Spreads allocations over the values of a node attribute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Spread {
    /// Node attribute whose values allocations are spread over, e.g. `${node.datacenter}`.
    pub attribute: String,
    /// Relative importance of this spread, from 0 to 100. Defaults to 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub weight: Option<i32>,
    /// Desired share of allocations per attribute value; values not listed share the rest evenly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<SpreadTarget>,
}

/// The share of allocations wanted on nodes with one attribute value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpreadTarget {
    /// Attribute value, e.g. `dc1`.
    pub value: String,
    /// Percentage of allocations wanted on nodes with this value, from 0 to 100.
    #[schemars(range(min = 0, max = 100))]
    pub percent: u32,
}
