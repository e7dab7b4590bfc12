//! The `ACLPolicy` and `ACLToken` kinds (Nomad's ACL model), and what a set of policies
//! allows (`rules.rs`).
//!
//! A token is a bearer secret the servers store only as a SHA-256 hash (`status.secretHash`);
//! its name (`metadata.name`) is its accessor id, which is safe to show. A `management` token
//! may do anything; a `client` token may do what its policies grant. Policies grant
//! capabilities per namespace (names or globs) and `read`/`write` on nodes, the agent
//! (membership) and the operator (Raft, keyring).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::ObjectMeta;

pub(crate) mod checks;
pub mod rules;

pub use rules::{Acl, Capability, Level};

/// The accessor id of the record the first `caravan acl bootstrap` leaves: ACLs are
/// bootstrapped once (`docs/security.md`).
pub const BOOTSTRAP_RECORD: &str = "acl-bootstrap";
/// The policy requests without a token get, when it exists.
pub const ANONYMOUS_POLICY: &str = "anonymous";

/// The lowercase hex SHA-256 of a secret (a token's, a node's secret id): all the servers
/// keep of it.
pub fn secret_hash(secret: &str) -> String {
    use sha2::Digest;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha2::Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// A set of rules tokens are granted by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclPolicy {
    /// Versioned schema of this object: `caravan.dev/v1`.
    pub api_version: String,
    /// Kind of this object: `ACLPolicy`.
    pub kind: String,
    /// Standard object metadata; the name is what tokens list in `spec.policies`.
    pub metadata: ObjectMeta,
    /// The rules.
    #[serde(default)]
    pub spec: AclPolicySpec,
}

/// The rules of a policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclPolicySpec {
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Rules per namespace: a namespace takes the rule of its exact name, else of the closest
    /// glob (`*` matches any characters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<NamespaceRule>,
    /// Nodes: `read` (get, list, watch) or `write` (also drain, eligibility, delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Level>,
    /// The agent: `read` (members, metrics) or `write` (join, force-leave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Level>,
    /// The operator: `read` (Raft configuration, keyring list) or `write` (leadership
    /// transfer, keyring changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<Level>,
}

/// What a policy grants in the namespaces a name or glob matches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceRule {
    /// A namespace name or a glob, e.g. `team-*` or `*`.
    pub name: String,
    /// `read`, `write` or `deny`: a shorthand for a set of capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Level>,
    /// Capabilities granted besides the policy's (`deny` overrides every other).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
}

/// A bearer token's grants.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclToken {
    /// Versioned schema of this object: `caravan.dev/v1`.
    pub api_version: String,
    /// Kind of this object: `ACLToken`.
    pub kind: String,
    /// Standard object metadata; the name is the token's accessor id.
    pub metadata: ObjectMeta,
    /// What the token is.
    #[serde(default)]
    pub spec: AclTokenSpec,
    /// What the servers keep of its secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AclTokenStatus>,
}

/// What a token is and grants.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclTokenSpec {
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `client` (what its policies grant) or `management` (everything).
    #[serde(default, rename = "type")]
    pub token_type: TokenType,
    /// Names of the ACLPolicies it is granted (client tokens only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// When the token stops working (RFC 3339); never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
}

/// A token's type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TokenType {
    #[default]
    Client,
    Management,
}

/// What the servers keep of a token's secret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclTokenStatus {
    /// Lowercase hex SHA-256 of the secret; empty for the bootstrap record, which no
    /// secret matches.
    #[serde(default)]
    pub secret_hash: String,
}

impl AclToken {
    /// The hash of its secret, if it has one.
    pub fn secret_hash(&self) -> Option<&str> {
        self.status
            .as_ref()
            .map(|s| s.secret_hash.as_str())
            .filter(|h| !h.is_empty())
    }
}
