//! [`NodePoolChecker`]: the node belongs to the job's node pool (`all` matches every pool).

use caravan_schemas::Node;

use super::FeasibilityChecker;

/// The pool that matches every node.
pub const ALL_POOL: &str = "all";

/// Keeps nodes of the job's node pool.
#[derive(Clone, Debug)]
pub struct NodePoolChecker {
    pool: String,
}

impl NodePoolChecker {
    /// A checker for `pool`.
    pub fn new(pool: &str) -> Self {
        Self {
            pool: pool.to_string(),
        }
    }
}

impl FeasibilityChecker for NodePoolChecker {
    fn check(&self, node: &Node) -> Result<(), &str> {
        if self.pool == ALL_POOL || self.pool == node.pool() {
            Ok(())
        } else {
            Err("node pool")
        }
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;

    use super::*;

    #[test]
    fn node_pool_checker_matches_pool_or_all() {
        let node = mock::node("n1");
        assert!(NodePoolChecker::new("default").check(&node).is_ok());
        assert!(NodePoolChecker::new("all").check(&node).is_ok());
        assert!(NodePoolChecker::new("gpu").check(&node).is_err());
    }
}
