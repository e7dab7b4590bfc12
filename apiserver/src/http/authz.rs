//! ACLs at the HTTP edge: every request, once ACLs are enabled, is resolved to an identity
//! (`Authorization: Bearer <token>`, with `X-Caravan-Node: <name>` for a node's secret id) and
//! checked against what its method and path target (`acl::authorize`) before any handler
//! runs. A bad or expired token gets 401 `Unauthorized`; a request its identity may not make
//! gets 403 `Forbidden`; what is allowed carries its `Access` (the scope of its reads, the
//! guard of its writes) to the handler. Every path not listed here is management only, so a
//! new route is closed until it is given a rule.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use caravan_schemas::acl::Level;
use caravan_schemas::limits::MAX_TOKEN_LEN;

use super::error::ApiError;
use super::path::ResourcePath;
use super::{heartbeat, job_plan, logs, plan, query};
use crate::acl::authorize::{Decision, Target, Verb, decide};
use crate::acl::identity::{Credentials, resolve};
use crate::context::ApiContext;

/// The header naming the node whose secret id a node agent's request carries.
pub const NODE_HEADER: &str = "x-caravan-node";

/// Authenticates and authorizes every request (the router has this layer only when ACLs are
/// enabled).
pub async fn layer(State(ctx): State<Arc<ApiContext>>, mut req: Request, next: Next) -> Response {
    let credentials = match credentials(req.headers()) {
        Ok(credentials) => credentials,
        Err(e) => return e.into_response(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let identity = match resolve(&ctx, credentials, now) {
        Ok(identity) => identity,
        Err(e) => return ApiError::Unauthorized(e.0).into_response(),
    };
    let decision = authorize(&identity, req.method(), req.uri().path(), req.uri().query());
    match decision {
        Decision::Allow(access) => {
            req.extensions_mut().insert(access);
            req.extensions_mut().insert(identity);
            next.run(req).await
        }
        Decision::Deny(reason) => {
            tracing::debug!(path = req.uri().path(), %reason, "refused by ACLs");
            ApiError::Forbidden(reason).into_response()
        }
    }
}

/// The bearer token and node name a request presents.
fn credentials(headers: &HeaderMap) -> Result<Credentials<'_>, ApiError> {
    let unauthorized = |m: String| ApiError::Unauthorized(m);
    let token = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                unauthorized("the Authorization header is not visible ASCII".into())
            })?;
            let (scheme, token) = text.split_once(' ').ok_or_else(|| {
                unauthorized("the Authorization header must be \"Bearer <token>\"".into())
            })?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(unauthorized(format!(
                    "the Authorization scheme {scheme:?} is not supported: use \"Bearer <token>\""
                )));
            }
            let token = token.trim();
            if token.is_empty() || token.len() > MAX_TOKEN_LEN {
                return Err(unauthorized(format!(
                    "a token is 1 to {MAX_TOKEN_LEN} characters"
                )));
            }
            Some(token)
        }
    };
    let node =
        match headers.get(NODE_HEADER) {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| {
                unauthorized(format!("the {NODE_HEADER} header is not visible ASCII"))
            })?),
        };
    if node.is_some() && token.is_none() {
        return Err(unauthorized(format!(
            "a request with {NODE_HEADER} must carry the node's secret id as its bearer token"
        )));
    }
    Ok(Credentials { token, node })
}

fn level(method: &Method) -> Level {
    if method == Method::GET || method == Method::HEAD {
        Level::Read
    } else {
        Level::Write
    }
}

/// The rule of a route with a fixed path; `None` for resource paths (and unknown ones).
fn fixed_target(method: &Method, path: &str) -> Option<Target<'static>> {
    match path {
        "/version"
        | "/healthz"
        | "/livez"
        | "/readyz"
        | "/api"
        | "/apis"
        | "/apis/caravan.dev"
        | "/apis/caravan.dev/v1"
        | "/v1/acl/bootstrap" => Some(Target::Public),
        // Anyone may ask what it may do itself.
        super::access_review::PATH => Some(Target::Public),
        p if p.starts_with("/openapi/") => Some(Target::Public),
        p if p.starts_with("/internal/") || p.starts_with("/v1/eval-broker/") => {
            Some(Target::Members)
        }
        "/v1/acl/token/self" => Some(Target::Token),
        "/v1/acl/tokens" | "/v1/system/gc" => Some(Target::Management),
        "/metrics" | "/v1/agent/members" => Some(Target::Agent(Level::Read)),
        "/v1/agent/join" | "/v1/agent/force-leave" => Some(Target::Agent(Level::Write)),
        "/v1/operator/raft/configuration" => Some(Target::Operator(Level::Read)),
        "/v1/operator/raft/transfer-leadership" => Some(Target::Operator(Level::Write)),
        "/v1/operator/keyring" => Some(Target::Operator(level(method))),
        _ => None,
    }
}

/// Decides a request by method and path (pure).
pub fn authorize(
    identity: &crate::acl::Identity,
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
) -> Decision {
    if let Some(target) = fixed_target(method, path) {
        return decide(identity, target);
    }
    if let Some(node) = heartbeat::parse(path) {
        return decide(identity, Target::Heartbeat { node: &node });
    }
    if let Some(target) = logs::LogPath::parse(path) {
        return decide(
            identity,
            Target::Logs {
                namespace: &target.namespace,
            },
        );
    }
    if let Some(target) = job_plan::JobPlanPath::parse(path) {
        return decide(
            identity,
            Target::JobPlan {
                namespace: &target.namespace,
            },
        );
    }
    if plan::PlanPath::parse(path).is_some() {
        // A scheduler's plan: the servers' own workers.
        return decide(identity, Target::Management);
    }
    let Ok(resource) = ResourcePath::parse(path) else {
        return decide(identity, Target::Management);
    };
    let watch = query::Query::parse(raw_query).is_ok_and(|q| q.watch);
    let named = resource.name.is_some();
    let verb = match *method {
        Method::GET | Method::HEAD if watch => Verb::Watch,
        Method::GET | Method::HEAD if named => Verb::Get,
        Method::GET | Method::HEAD => Verb::List,
        Method::POST => Verb::Create,
        Method::PUT => Verb::Update,
        Method::PATCH => Verb::Patch,
        Method::DELETE => Verb::Delete,
        // Refused by the handler as not allowed; nothing to grant.
        _ => return decide(identity, Target::Management),
    };
    decide(
        identity,
        Target::Resource {
            kind: resource.kind,
            namespace: resource.namespace.as_deref(),
            name: resource.name.as_deref(),
            verb,
            status: resource.status,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router declares with a literal path has a rule of its own: a new
    /// route without one fails here (it would be management only at run time).
    #[test]
    fn every_declared_route_has_a_rule() {
        let sources = [
            include_str!("mod.rs"),
            include_str!("cluster.rs"),
            include_str!("broker.rs"),
            include_str!("acl.rs"),
            include_str!("keyring.rs"),
            include_str!("access_review.rs"),
        ];
        let mut paths = Vec::new();
        for source in sources {
            for piece in source.split(".route(\"").skip(1) {
                let path = piece.split('"').next().unwrap_or_default();
                paths.push(
                    path.replace("{op}", "ack")
                        .replace("{", "")
                        .replace("}", ""),
                );
            }
        }
        assert!(paths.len() > 15, "found only {paths:?}");
        for path in paths {
            assert!(
                fixed_target(&Method::GET, &path).is_some(),
                "route {path} has no ACL rule in http/authz.rs"
            );
        }
    }

    #[test]
    fn resource_paths_are_decided_by_kind_and_verb() {
        let anonymous = crate::acl::Identity::Policies {
            acl: std::sync::Arc::new(caravan_schemas::acl::Acl::default()),
            accessor: String::new(),
        };
        let decide = |method: Method, path: &str| {
            matches!(
                authorize(&anonymous, &method, path, None),
                Decision::Allow(_)
            )
        };
        assert!(decide(Method::GET, "/healthz"));
        assert!(decide(Method::GET, "/openapi/v3/apis/caravan.dev/v1"));
        assert!(!decide(
            Method::GET,
            "/apis/caravan.dev/v1/namespaces/default/jobs"
        ));
        assert!(!decide(Method::GET, "/no/such/path"));
        assert!(!decide(Method::POST, "/v1/acl/tokens"));
    }
}
