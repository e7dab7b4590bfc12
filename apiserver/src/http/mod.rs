//! The HTTP API: Kubernetes-style REST, list and watch over the service layer (`api/`),
//! discovery, OpenAPI, health and metrics.
//!
//! Only this module knows HTTP: requests, paths ([`path::ResourcePath`]), query strings
//! (`query::Query`), headers, media types, bodies, responses and the one mapping from an error
//! to an HTTP code and a Kubernetes `Status` (`error.rs`). Every handler parses, calls the
//! service and renders what it answers.
//!
//! ```text
//! request ─▶ router ─┬─ /version /api /apis… ─▶ discovery, openapi
//!                    ├─ /healthz /readyz /metrics
//!                    ├─ /internal/raft/* ─▶ raft network (server to server)
//!                    ├─ /v1/agent/members|join|force-leave, /v1/operator/raft/… ─▶ cluster
//!                    ├─ /v1/eval-broker/… ─▶ broker (the leader's, for followers' workers)
//!                    ├─ …/nodes/{name}/heartbeat ─▶ heartbeat (leader memory; a status change is written)
//!                    ├─ …/allocations/{name}/log ─▶ logs (proxied to the node's agent)
//!                    ├─ …/evaluations/{name}/plan ─▶ plan (api::submit_plan)
//!                    ├─ …/jobs/{name}/plan ─▶ job_plan (what registering the job would do)
//!                    ├─ /v1/system/gc ─▶ system (a garbage collection pass now)
//!                    └─ /apis/caravan.dev/v1/… ─▶ resource(): path + query ─┬─ read (get, list)
//!                                                                         ├─ watch (chunked, WebSocket)
//!                                                                         └─ write (create, replace, patch, delete)
//!                                                  each ─▶ api::… ─▶ rendered (JSON, Table, Status)
//! ```
//!
//! In front of it all, `forward.rs`: a follower forwards writes and consistent reads to the
//! leader.

mod access_review;
mod acl;
pub mod authz;
mod body;
mod broker;
mod cluster;
mod discovery;
mod error;
mod forward;
mod heartbeat;
mod job_plan;
mod keyring;
mod logs;
mod openapi;
#[cfg(test)]
mod parser_props;
pub mod path;
mod plan;
mod query;
mod read;
mod respond;
mod system;
mod table;
mod watch;
mod write;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api;
use crate::cluster::secret::SECRET_HEADER;
use crate::context::ApiContext;

pub use error::ApiError;
pub use table::human_duration;

/// The whole HTTP application.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    let raft = ctx.store.raft_router();
    let app = Router::new()
        .route("/version", get(|| async { discovery::version() }))
        .route(
            "/api",
            get(|req: Request| async move { discovery::core(accept(&req)) }),
        )
        .route(
            "/apis",
            get(|req: Request| async move { discovery::groups(accept(&req)) }),
        )
        .route(
            "/apis/caravan.dev",
            get(|| async { discovery::group_doc() }),
        )
        .route(
            "/apis/caravan.dev/v1",
            get(|| async { discovery::resources() }),
        )
        .route("/openapi/v3", get(|| async { openapi::index() }))
        .route(
            "/openapi/v3/apis/caravan.dev/v1",
            get(|| async { openapi::group_version() }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(cluster::routes())
        .merge(keyring::routes())
        .merge(broker::routes())
        .merge(acl::routes())
        .merge(access_review::routes())
        .merge(raft)
        .fallback(resource);
    // ACLs where the request is served: a follower forwards what the leader answers, and the
    // leader checks it. Without ACLs the layer is not there at all.
    let app = if ctx.config.acl.enabled {
        app.layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            authz::layer,
        ))
    } else {
        app
    };
    app.layer(axum::middleware::from_fn_with_state(
        ctx.clone(),
        forward::layer,
    ))
    // Outermost: a request for a members-only path is refused before it is forwarded.
    .layer(axum::middleware::from_fn_with_state(
        ctx.clone(),
        members_only,
    ))
    .with_state(ctx)
}

/// Refuses the server-to-server paths (Raft RPCs, the eval broker) to requests without the
/// cluster secret: 403 `Forbidden`.
async fn members_only(
    State(ctx): State<Arc<ApiContext>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let carried = req.headers().get(SECRET_HEADER).map(HeaderValue::as_bytes);
    if is_members_only(req.uri().path())
        && !carried.is_some_and(|secret| ctx.store.secret().is_carried_by(secret))
    {
        tracing::warn!(
            path = req.uri().path(),
            "refused a server-to-server request without the cluster secret"
        );
        return ApiError::Forbidden(format!(
            "{} is served to the cluster's servers only: the request does not carry the \
             cluster secret",
            req.uri().path()
        ))
        .into_response();
    }
    next.run(req).await
}

/// Whether a path is served to cluster members only.
fn is_members_only(path: &str) -> bool {
    path.starts_with("/internal/") || path.starts_with("/v1/eval-broker/")
}

fn accept(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
}

async fn readyz(State(ctx): State<Arc<ApiContext>>) -> Response {
    if let Some(fatal) = ctx.store.fatal() {
        return ApiError::unavailable(format!("the Raft core stopped: {fatal}")).into_response();
    }
    // Ready once a leader is known: a follower answers reads and forwards the rest.
    if ctx.store.leader_addr().is_some() {
        "ok".into_response()
    } else {
        ApiError::unavailable("this server has no leader yet").into_response()
    }
}

async fn metrics(State(ctx): State<Arc<ApiContext>>) -> Response {
    let text = ctx.metrics.render(&ctx.store);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Every request under `/apis/caravan.dev/v1/`.
async fn resource(State(ctx): State<Arc<ApiContext>>, req: Request) -> Response {
    let started = Instant::now();
    let (verb, resource, resp) = match handle(&ctx, req).await {
        Ok((verb, resource, resp)) => (verb, resource, resp),
        Err((verb, resource, err)) => (verb, resource, err.into_response()),
    };
    ctx.metrics.observe(
        verb,
        &resource,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

type Handled = Result<(&'static str, String, Response), (&'static str, String, ApiError)>;

async fn handle(ctx: &Arc<ApiContext>, req: Request) -> Handled {
    if let Some(node) = heartbeat::parse(req.uri().path()) {
        let resource = || "nodes/heartbeat".to_string();
        return match heartbeat::handle(ctx, node, req).await {
            Ok(resp) => Ok(("create", resource(), resp)),
            Err(e) => Err(("create", resource(), e)),
        };
    }
    if let Some(target) = logs::LogPath::parse(req.uri().path()) {
        let resource = || "allocations/log".to_string();
        return match logs::handle(ctx, target, req).await {
            Ok(resp) => Ok(("get", resource(), resp)),
            Err(e) => Err(("get", resource(), e)),
        };
    }
    if let Some(target) = job_plan::JobPlanPath::parse(req.uri().path()) {
        let resource = || "jobs/plan".to_string();
        return match job_plan::handle(ctx, target, req).await {
            Ok(resp) => Ok(("create", resource(), resp)),
            Err(e) => Err(("create", resource(), e)),
        };
    }
    if let Some(target) = plan::PlanPath::parse(req.uri().path()) {
        let resource = || "evaluations/plan".to_string();
        return match plan::handle(ctx, target, req).await {
            Ok(resp) => Ok(("create", resource(), resp)),
            Err(e) => Err(("create", resource(), e)),
        };
    }
    if system::is_gc(req.uri().path()) {
        let resource = || "system/gc".to_string();
        return match system::handle_gc(ctx, req).await {
            Ok(resp) => Ok(("create", resource(), resp)),
            Err(e) => Err(("create", resource(), e)),
        };
    }
    let unknown = |e| ("unknown", String::new(), e);
    let path = path::ResourcePath::parse(req.uri().path()).map_err(unknown)?;
    let resource = path.kind.plural().to_string();
    let fail = |verb: &'static str, resource: &str, e: ApiError| (verb, resource.to_string(), e);
    let mut query =
        query::Query::parse(req.uri().query()).map_err(|e| fail("unknown", &resource, e))?;
    if let Some(access) = req.extensions().get::<api::Access>() {
        query.access = access.clone();
    }
    let accept = accept(&req).map(str::to_string);
    let media = body::content_type(req.headers());
    let method = req.method().clone();
    let verb: &'static str = match (&method, path.name.is_some(), query.watch) {
        (&Method::GET, false, true) | (&Method::GET, true, true) => "watch",
        (&Method::GET, false, false) => "list",
        (&Method::GET, true, false) => "get",
        (&Method::POST, _, _) => "create",
        (&Method::PUT, _, _) => "update",
        (&Method::PATCH, _, _) => "patch",
        (&Method::DELETE, _, _) => "delete",
        _ => {
            return Err(fail(
                "unknown",
                &resource,
                ApiError::MethodNotAllowed(format!("method {method} is not allowed")),
            ));
        }
    };
    let result = match verb {
        "watch" => {
            let mut path = path.clone();
            let mut query = query.clone();
            if let Some(name) = path.name.take() {
                // GET …/jobs/web?watch=true watches one object.
                query.field_selector = Some(match query.field_selector.take() {
                    Some(f) => format!("{f},metadata.name={name}"),
                    None => format!("metadata.name={name}"),
                });
            }
            watch_response(ctx, req, &path, &query, accept.as_deref()).await
        }
        "list" | "get" => match wait_for_revision(ctx, &query).await {
            Err(e) => Err(e),
            Ok(()) if verb == "list" => read::list(ctx, &path, &query, accept.as_deref()),
            Ok(()) => read::get(ctx, &path, &query, accept.as_deref()),
        },
        _ => {
            let bytes = match body::read(req.into_body()).await {
                Ok(b) => b,
                Err(e) => return Err(fail(verb, &resource, e)),
            };
            match verb {
                "create" => write::create(ctx, &path, &query, &media, &bytes).await,
                "update" => write::replace(ctx, &path, &query, &media, &bytes).await,
                "patch" => write::patch(ctx, &path, &query, &media, &bytes).await,
                _ => write::delete(ctx, &path, &query, &bytes).await,
            }
            .map(respond::outcome)
        }
    };
    result
        .map(|r| (verb, resource.clone(), r))
        .map_err(|e| (verb, resource, e))
}

/// Waits a little for a `resourceVersion` a get or list asks for that this server has not
/// reached yet (`api::wait_for_revision`).
async fn wait_for_revision(ctx: &ApiContext, query: &query::Query) -> Result<(), ApiError> {
    let resource_version = query.resource_version_number()?;
    Ok(api::wait_for_revision(ctx, resource_version).await?)
}

async fn watch_response(
    ctx: &Arc<ApiContext>,
    req: Request,
    path: &path::ResourcePath,
    query: &query::Query,
    accept: Option<&str>,
) -> Result<Response, ApiError> {
    let options = query.watch_options(path.kind)?;
    let spec = api::WatchSpec::new(ctx, path.kind, path.namespace.as_deref(), options);
    let table = table::wants_table(accept).then(|| query.include_object.clone());
    let framer = watch::JsonFramer::new(path.kind, table);
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if is_upgrade {
        let (mut parts, _body) = req.into_parts();
        let ws = WebSocketUpgrade::from_request_parts(&mut parts, &())
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid WebSocket upgrade: {e}")))?;
        let ctx = ctx.clone();
        return Ok(ws.on_upgrade(move |socket| watch::websocket(ctx, spec, framer, socket)));
    }
    Ok(watch::chunked(ctx.clone(), spec, framer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_and_broker_paths_are_members_only() {
        assert!(is_members_only("/internal/raft/vote"));
        assert!(is_members_only("/v1/eval-broker/dequeue"));
        assert!(!is_members_only("/apis/caravan.dev/v1/jobs"));
        assert!(!is_members_only("/v1/agent/members"));
    }
}
