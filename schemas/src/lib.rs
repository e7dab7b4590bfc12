//! Caravan's API types (`caravan.dev/v1`), their JSON Schemas and admission.
//!
//! Everything here is pure: no IO, no async. The API server, the controllers, the node agent
//! and the CLI all speak these types.

mod accessors;
pub mod acl;
pub mod admission;
pub mod allocation;
pub mod condition;
pub mod deployment;
pub mod duration;
#[cfg(test)]
mod duration_props;
pub mod evaluation;
pub mod fit;
pub mod gc;
pub mod job;
pub mod job_plan;
pub mod job_version;
pub mod kind;
pub mod limits;
pub mod meta;
#[cfg(any(test, feature = "testsuite"))]
pub mod mock;
pub mod name_map;
pub mod namespace;
pub mod naming;
pub mod node;
mod openapi;
pub mod plan;
pub mod ports;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod service_registration;
pub mod stable_hash;
pub mod time;

pub use acl::{AclPolicy, AclPolicySpec, AclToken, AclTokenSpec, AclTokenStatus, TokenType};
pub use admission::{
    Admitted, AdmittedJson, FieldError, FieldErrorKind, Replaced, Replacement, admit,
    admit_allocation, admit_new, admit_replacement, admit_status, admit_update,
    finalizers_added_while_deleting,
};
pub use allocation::{AllocMetrics, Allocation, AllocationSpec, AllocationStatus};
pub use condition::Condition;
pub use deployment::{Deployment, DeploymentSpec, DeploymentStatus};
pub use evaluation::{Evaluation, EvaluationSpec, EvaluationStatus};
pub use job::{Job, JobSpec, JobStatus, JobType};
pub use job_version::{JobVersion, JobVersionSpec, JobVersionStatus};
pub use kind::Kind;
pub use meta::{ListMeta, ObjectMeta, Status, StatusCause, StatusDetails};
pub use name_map::NameMap;
pub use namespace::{Namespace, NamespaceSpec};
pub use node::{Node, NodeSpec, NodeStatus};
pub use service_registration::{ServiceRegistration, ServiceRegistrationSpec};

/// The API group of every Caravan kind.
pub const GROUP: &str = "caravan.dev";
/// The only served version.
pub const VERSION: &str = "v1";
/// `apiVersion` of every Caravan object.
pub const API_VERSION: &str = "caravan.dev/v1";
