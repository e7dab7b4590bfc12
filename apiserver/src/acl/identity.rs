//! Who a request is, from what it presents (the HTTP layer reads `Authorization: Bearer
//! <secret>` and `X-Caravan-Node: <name>`): a token, the servers' shared secret (a server's own
//! requests), or — with a node name — a node's secret id; nothing is anonymous.

use std::sync::Arc;

use caravan_schemas::Kind;
use caravan_schemas::acl::Acl;

use crate::api::scope::node_secret_hash;
use crate::context::ApiContext;
use crate::store::ObjectKey;

/// Who a request is.
#[derive(Clone, Debug)]
pub enum Identity {
    /// A management token, or a server (its requests carry the cluster secret as token).
    Management,
    /// A client token, or an anonymous request: what its policies allow.
    Policies { acl: Arc<Acl>, accessor: String },
    /// A node agent, by its node's secret id: its own Node, allocations and registrations.
    Node { name: String, secret_hash: String },
}

impl Identity {
    /// Whether everything is allowed.
    pub fn is_management(&self) -> bool {
        matches!(self, Identity::Management)
    }

    /// Who this is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Identity::Management => "a management token".to_string(),
            Identity::Policies { accessor, .. } if accessor.is_empty() => {
                "an anonymous request".to_string()
            }
            Identity::Policies { accessor, .. } => format!("token {accessor:?}"),
            Identity::Node { name, .. } => format!("node {name:?}"),
        }
    }
}

/// Why a request's credentials are refused (401).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unauthorized(pub String);

/// What a request presents: its bearer token and the node it speaks for, if any.
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    pub token: Option<&'a str>,
    pub node: Option<&'a str>,
}

/// Who a request presenting `credentials` is, at `now` (Unix seconds).
pub fn resolve(
    ctx: &ApiContext,
    credentials: Credentials<'_>,
    now: i64,
) -> Result<Identity, Unauthorized> {
    let token = credentials.token;
    let compiled = ctx.acls.of_store(&ctx.store);
    let Some(token) = token else {
        return Ok(Identity::Policies {
            acl: compiled.anonymous.clone(),
            accessor: String::new(),
        });
    };
    if ctx.store.secret().is_carried_by(token.as_bytes()) {
        return Ok(Identity::Management);
    }
    let hash = super::secret_hash(token);
    if let Some(name) = credentials.node {
        return node_identity(ctx, name, hash);
    }
    let Some(resolved) = compiled.token(&hash) else {
        return Err(Unauthorized(
            "the token is not valid: unknown or revoked".into(),
        ));
    };
    if resolved.expires.is_some_and(|at| at <= now) {
        return Err(Unauthorized(format!(
            "token {:?} expired",
            resolved.accessor
        )));
    }
    if resolved.acl.is_management() {
        return Ok(Identity::Management);
    }
    Ok(Identity::Policies {
        acl: resolved.acl.clone(),
        accessor: resolved.accessor.clone(),
    })
}

/// A node agent: the node must be registered with this secret, or not registered yet (its
/// registration must then carry the secret's hash: the write guard checks it).
fn node_identity(ctx: &ApiContext, name: &str, hash: String) -> Result<Identity, Unauthorized> {
    let key = ObjectKey {
        kind: Kind::Node,
        namespace: String::new(),
        name: name.to_string(),
    };
    let stored = ctx.store.state().get(&key);
    if let Some(node) = stored
        && node_secret_hash(&node.json).as_deref() != Some(hash.as_str())
    {
        return Err(Unauthorized(format!(
            "the secret is not node {name:?}'s: a node registered with another secret id \
             must be deleted before it registers again"
        )));
    }
    Ok(Identity::Node {
        name: name.to_string(),
        secret_hash: hash,
    })
}
