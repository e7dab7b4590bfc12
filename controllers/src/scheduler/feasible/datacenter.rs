//! [`DatacenterChecker`]: the node's datacenter matches one of the job's patterns (`*` globs).

use caravan_schemas::Node;

use super::FeasibilityChecker;

/// One datacenter pattern, sorted by how it is matched (checked on every node of every
/// evaluation).
#[derive(Clone, Debug)]
enum Pattern {
    /// `*`: every datacenter.
    Any,
    /// No `*`: this datacenter.
    Exact(String),
    /// A glob.
    Glob(String),
}

/// Keeps nodes whose datacenter matches one of the job's datacenter patterns.
#[derive(Clone, Debug)]
pub struct DatacenterChecker {
    patterns: Vec<Pattern>,
}

impl DatacenterChecker {
    /// A checker for `patterns`; an empty list means every datacenter (`*`).
    pub fn new(patterns: &[String]) -> Self {
        let patterns = if patterns.is_empty() {
            vec![Pattern::Any]
        } else {
            patterns
                .iter()
                .map(|p| match p.as_str() {
                    "*" => Pattern::Any,
                    p if p.contains('*') => Pattern::Glob(p.to_string()),
                    p => Pattern::Exact(p.to_string()),
                })
                .collect()
        };
        Self { patterns }
    }

    /// Whether `datacenter` matches one of the patterns.
    pub fn matches(&self, datacenter: &str) -> bool {
        self.patterns.iter().any(|p| match p {
            Pattern::Any => true,
            Pattern::Exact(name) => name == datacenter,
            Pattern::Glob(glob) => glob_match(glob, datacenter),
        })
    }
}

impl FeasibilityChecker for DatacenterChecker {
    fn check(&self, node: &Node) -> Result<(), &str> {
        if self.matches(node.datacenter()) {
            Ok(())
        } else {
            Err("datacenter")
        }
    }
}

/// Matches `value` against `pattern`, where `*` matches any run of characters.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == value;
    };
    let Some(mut remaining) = value.strip_prefix(first) else {
        return false;
    };
    let (middle, last) = rest.rsplit_once('*').unwrap_or(("", rest));
    for part in middle.split('*') {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;

    use super::*;

    #[test]
    fn globs_match_datacenters() {
        assert!(glob_match("*", "dc1"));
        assert!(glob_match("dc*", "dc1"));
        assert!(glob_match("*-west", "us-west"));
        assert!(glob_match("us-*-1", "us-east-1"));
        assert!(!glob_match("us-*-1", "us-east-2"));
        assert!(!glob_match("dc1", "dc10"));
        assert!(glob_match("a*a", "aa"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn datacenter_checker_filters_nodes() {
        let node = mock::node("n1");
        assert!(DatacenterChecker::new(&["dc*".into()]).check(&node).is_ok());
        assert!(DatacenterChecker::new(&[]).check(&node).is_ok());
        assert!(DatacenterChecker::new(&["*".into()]).check(&node).is_ok());
        assert!(
            DatacenterChecker::new(&["dc2".into(), "dc1".into()])
                .check(&node)
                .is_ok()
        );
        assert!(
            DatacenterChecker::new(&["dc1*x".into()])
                .check(&node)
                .is_err()
        );
        assert!(
            DatacenterChecker::new(&["dc2".into()])
                .check(&node)
                .is_err()
        );
    }
}
