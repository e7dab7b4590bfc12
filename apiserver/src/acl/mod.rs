//! ACLs on the server: who a request is (`identity.rs`: a token, a node's secret, the
//! servers themselves, or anonymous) and what it may do (`authorize.rs`, pure), with the
//! tokens and policies compiled from this server's replica of the state (`cache.rs`), so a
//! change takes effect on the next request, on every server.
//!
//! ```text
//! request ─▶ identity::resolve(headers) ─▶ Identity ─▶ authorize::decide(identity, request)
//!              │ tokens and policies (cache.rs,            │ Allow(Access) │ Deny ─▶ 403
//!              │ rebuilt when their maps changed)           ▼
//!              └ 401 for an unknown or expired token     scope (lists, watches), guard (writes)
//! ```

pub mod authorize;
mod cache;
pub mod identity;
pub mod tokens;

use std::path::PathBuf;

pub use cache::AclCache;
pub use identity::Identity;

/// The ACL settings of a server.
#[derive(Clone, Debug, Default)]
pub struct AclConfig {
    /// Whether requests are authenticated and authorized at all (`acl.enabled`).
    pub enabled: bool,
    /// The file an operator writes the bootstrap reset index into to bootstrap again
    /// (`<data-dir>/acl-bootstrap-reset`).
    pub bootstrap_reset_file: Option<PathBuf>,
}

pub use caravan_schemas::acl::secret_hash;
