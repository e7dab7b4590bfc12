//! Feasibility: which nodes can run a task group at all (Nomad's `scheduler/feasible`).
//!
//! Checkers answer for one node; the stacks chain them. Static checks (datacenter, pool,
//! status, drivers, constraints) depend only on the node; [`distinct_hosts`] and
//! [`distinct_property`] also depend on what the plan has placed so far, as does the resource
//! fit ([`caravan_schemas::fit`]) the stacks check last.

pub mod constraint;
pub mod datacenter;
pub mod distinct_hosts;
pub mod distinct_property;
pub mod driver;
pub mod node_pool;
pub mod node_status;
pub mod property_set;
pub mod ready;
pub mod target;
pub mod version;

pub use constraint::{CompiledConstraint, ConstraintChecker};
pub use datacenter::DatacenterChecker;
pub use driver::DriverChecker;
pub use node_pool::NodePoolChecker;
pub use node_status::NodeStatusChecker;

use caravan_schemas::Node;

/// A check of one node that needs nothing but the node.
pub trait FeasibilityChecker {
    /// `Ok` when `node` is feasible, else the reason recorded in the placement metrics
    /// (e.g. `missing drivers`, `${attr.kernel.name} = linux`).
    fn check(&self, node: &Node) -> Result<(), &str>;
}
