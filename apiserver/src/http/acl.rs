//! The ACL endpoints, as Nomad names them:
//!
//! - `POST /v1/acl/bootstrap`: the first management token (once);
//! - `POST /v1/acl/tokens`: a new token (management only), body
//!   `{"displayName", "type", "policies", "expirationTime" | "expirationTTL"}`;
//! - `GET /v1/acl/token/self`: the token the request carries.
//!
//! A new token's answer is the stored `ACLToken` plus `secretID`, the only time the secret is
//! shown. Tokens are listed, read, changed and deleted as `acltokens` resources.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use caravan_schemas::{AclTokenSpec, Kind, TokenType};
use serde::Deserialize;
use serde_json::Value;

use super::body;
use super::error::ApiError;
use super::respond;
use crate::acl::Identity;
use crate::acl::tokens::{self, Created};
use crate::api;
use crate::context::ApiContext;
use crate::store::ObjectKey;

/// The ACL routes.
pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/v1/acl/bootstrap", post(bootstrap).put(bootstrap))
        .route("/v1/acl/tokens", post(create))
        .route("/v1/acl/token/self", get(token_self))
}

fn created(created: Created) -> Response {
    let mut object = created.object;
    if let Some(map) = object.as_object_mut() {
        map.insert("secretID".into(), Value::String(created.secret));
    }
    respond::json(201, &object)
}

async fn bootstrap(State(ctx): State<Arc<ApiContext>>) -> Response {
    match tokens::bootstrap(&ctx).await {
        Ok(token) => {
            tracing::info!("ACLs bootstrapped: the first management token was created");
            created(token)
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// What `POST /v1/acl/tokens` takes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenRequest {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default, rename = "type")]
    token_type: TokenType,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    expiration_time: Option<String>,
    /// How long from now the token works (a duration, e.g. `8h`).
    #[serde(default, rename = "expirationTTL")]
    expiration_ttl: Option<String>,
}

fn spec_of(request: TokenRequest, now: SystemTime) -> Result<AclTokenSpec, ApiError> {
    let expiration_time = match (request.expiration_time, request.expiration_ttl) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give expirationTime or expirationTTL, not both",
            ));
        }
        (at, None) => at,
        (None, Some(ttl)) => {
            let ttl: Duration = caravan_schemas::duration::parse_admitted_duration(&ttl)
                .map_err(|e| ApiError::bad_request(format!("invalid expirationTTL: {e}")))?;
            let at = now
                .checked_add(ttl)
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_secs()).ok())
                .ok_or_else(|| ApiError::bad_request("expirationTTL is too long"))?;
            Some(caravan_schemas::time::format_rfc3339(at))
        }
    };
    Ok(AclTokenSpec {
        display_name: request.display_name,
        token_type: request.token_type,
        policies: request.policies,
        expiration_time,
    })
}

async fn create(State(ctx): State<Arc<ApiContext>>, req: Request) -> Response {
    let result = async {
        let bytes = body::read(req.into_body()).await?;
        let request: TokenRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
            TokenRequest::default()
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("invalid token request: {e}")))?
        };
        let spec = spec_of(request, SystemTime::now())?;
        Ok::<_, ApiError>(tokens::create(&ctx, spec).await?)
    }
    .await;
    match result {
        Ok(token) => created(token),
        Err(e) => e.into_response(),
    }
}

async fn token_self(State(ctx): State<Arc<ApiContext>>, req: Request) -> Response {
    if !ctx.config.acl.enabled {
        return ApiError::bad_request("ACLs are disabled: there are no tokens").into_response();
    }
    let accessor = match req.extensions().get::<Identity>() {
        Some(Identity::Policies { accessor, .. }) if !accessor.is_empty() => accessor.clone(),
        Some(Identity::Management) => {
            // A management token: find it by its secret's hash.
            return management_self(&ctx, &req);
        }
        _ => {
            return ApiError::bad_request("this request carries no token").into_response();
        }
    };
    token_response(&ctx, &accessor)
}

fn token_response(ctx: &ApiContext, accessor: &str) -> Response {
    let key = ObjectKey {
        kind: Kind::AclToken,
        namespace: String::new(),
        name: accessor.to_string(),
    };
    match ctx.store.state().get(&key) {
        Some(object) => respond::raw_json(200, object.json.clone()),
        None => ApiError::from(api::Error::not_found(Kind::AclToken, accessor)).into_response(),
    }
}

fn management_self(ctx: &ApiContext, req: &Request) -> Response {
    let token = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, t)| t.trim());
    let Some(token) = token else {
        return ApiError::bad_request("this request carries no token").into_response();
    };
    let compiled = ctx.acls.of_store(&ctx.store);
    match compiled.token(&crate::acl::secret_hash(token)) {
        Some(resolved) => token_response(ctx, &resolved.accessor),
        // The servers' own secret.
        None => ApiError::bad_request("the cluster secret is not a token").into_response(),
    }
}
