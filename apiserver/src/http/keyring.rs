//! The gossip keyring endpoints, as Nomad's `/v1/operator/keyring`:
//!
//! - `GET /v1/operator/keyring`: the keys of every server gossip knows, with how many servers
//!   hold each (and use it as their primary);
//! - `PUT /v1/operator/keyring?op=install|use|remove` with `{"key": BASE64}`: applied on this
//!   server, then on every other server gossip knows;
//! - `GET`, `PUT /internal/keyring[?op=…]`: one server's own keyring (server to server: the
//!   cluster secret is required, `http/mod.rs`).
//!
//! Any server answers; nothing is forwarded to the leader (the keys are not in Raft).
//!
//! ```text
//! PUT /v1/operator/keyring ─▶ apply here ─▶ PUT http://{member}/internal/keyring (each, in parallel)
//!                                              └─▶ summary, or 500 naming the servers that failed
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::ApiError;
use crate::cluster::keyring::{GossipKey, Keyring, KeyringOp, SharedKeyring};
use crate::cluster::secret::SECRET_HEADER;
use crate::cluster::{Cluster, MemberStatus};
use crate::context::ApiContext;

/// The server-to-server path.
pub const INTERNAL_PATH: &str = "/internal/keyring";
/// Longest a server takes to answer for its keyring.
const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// The keyring routes.
pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/v1/operator/keyring", get(list).put(change).post(change))
        .route(INTERNAL_PATH, get(local).put(local_change))
}

/// One server's keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerKeys {
    name: String,
    primary: String,
    keys: Vec<String>,
}

impl ServerKeys {
    fn new(name: &str, keyring: &Keyring) -> ServerKeys {
        ServerKeys {
            name: name.to_string(),
            primary: keyring.primary().encode(),
            keys: keyring.keys().iter().map(GossipKey::encode).collect(),
        }
    }
}

/// What the servers hold: each key with how many servers hold it and use it. Pure.
fn summary(servers: &[ServerKeys], errors: &BTreeMap<String, String>) -> Value {
    let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
    let mut primary: BTreeMap<&str, usize> = BTreeMap::new();
    for server in servers {
        for key in &server.keys {
            *keys.entry(key).or_default() += 1;
        }
        *primary.entry(&server.primary).or_default() += 1;
    }
    json!({
        "kind": "GossipKeyring",
        "numServers": servers.len() + errors.len(),
        "keys": keys,
        "primaryKeys": primary,
        "errors": errors,
    })
}

/// The operation a request names: `?op=` and the body's `key`.
fn parse_op(query: Option<&str>, body: &[u8]) -> Result<KeyringOp, ApiError> {
    let op = query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("op="))
        .ok_or_else(|| ApiError::bad_request("name the operation: ?op=install|use|remove"))?;
    #[derive(Deserialize)]
    struct KeyBody {
        key: String,
    }
    let body: KeyBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not {{\"key\": BASE64}}: {e}")))?;
    KeyringOp::parse(op, &body.key).map_err(|e| ApiError::bad_request(format!("{e:#}")))
}

fn cluster(ctx: &ApiContext) -> Result<(&Cluster, &SharedKeyring), ApiError> {
    let cluster = ctx
        .cluster()
        .ok_or_else(|| ApiError::unavailable("this server runs no gossip"))?;
    let keyring = cluster.keyring().ok_or_else(|| {
        ApiError::bad_request(
            "gossip encryption is not enabled on this server: start every server with the same \
             --encrypt KEY (`caravan operator gossip keyring generate` makes one)",
        )
    })?;
    Ok((cluster, keyring))
}

async fn local(State(ctx): State<Arc<ApiContext>>) -> Response {
    match cluster(&ctx) {
        Ok((cluster, keyring)) => {
            Json(ServerKeys::new(&cluster.identity().name, &keyring.get())).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Applies the operation a request names to this server's keyring: the cluster, the
/// operation, and this server's keys after it. A refused change (removing the primary, using a
/// key not installed) is a 400.
async fn apply_here<'a>(
    ctx: &'a ApiContext,
    query: Option<&str>,
    body: Body,
) -> Result<(&'a Cluster, KeyringOp, ServerKeys), ApiError> {
    let (cluster, keyring) = cluster(ctx)?;
    let op = parse_op(query, &super::body::read(body).await?)?;
    let after = keyring
        .apply(&op)
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let here = ServerKeys::new(&cluster.identity().name, &after);
    Ok((cluster, op, here))
}

async fn local_change(
    State(ctx): State<Arc<ApiContext>>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let result = apply_here(&ctx, query.as_deref(), body)
        .await
        .map(|(_, _, here)| Json(here));
    match result {
        Ok(body) => body.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn list(State(ctx): State<Arc<ApiContext>>) -> Response {
    let result = async {
        let (cluster, keyring) = cluster(&ctx)?;
        let here = ServerKeys::new(&cluster.identity().name, &keyring.get());
        let (servers, errors) = everywhere(&ctx, cluster, here, None).await?;
        Ok::<_, ApiError>(Json(summary(&servers, &errors)))
    }
    .await;
    match result {
        Ok(body) => body.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn change(
    State(ctx): State<Arc<ApiContext>>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let result = async {
        // Refused here (removing the primary, using a key not installed): asked nowhere else.
        let (cluster, op, here) = apply_here(&ctx, query.as_deref(), body).await?;
        let (servers, errors) = everywhere(&ctx, cluster, here, Some(&op)).await?;
        if !errors.is_empty() {
            let applied: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
            let failed: Vec<String> = errors.iter().map(|(n, e)| format!("{n}: {e}")).collect();
            return Err(ApiError::internal(format!(
                "keyring {} applied on {}; failed on {} (the operation can be repeated)",
                op.name(),
                applied.join(", "),
                failed.join("; ")
            )));
        }
        Ok(Json(summary(&servers, &errors)))
    }
    .await;
    match result {
        Ok(body) => body.into_response(),
        Err(e) => e.into_response(),
    }
}

/// This server's keys `here` and every other server's (after `op`, when given), by name;
/// the servers that did not answer, with why.
async fn everywhere(
    ctx: &ApiContext,
    cluster: &Cluster,
    here: ServerKeys,
    op: Option<&KeyringOp>,
) -> Result<(Vec<ServerKeys>, BTreeMap<String, String>), ApiError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut secret = reqwest::header::HeaderValue::from_str(ctx.store.secret().expose())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    secret.set_sensitive(true);
    // With ACLs on, a server's own secret is also its management token.
    let mut bearer =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", ctx.store.secret().expose()))
            .map_err(|e| ApiError::internal(e.to_string()))?;
    bearer.set_sensitive(true);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(SECRET_HEADER, secret);
    headers.insert(reqwest::header::AUTHORIZATION, bearer);
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(PEER_TIMEOUT)
        .default_headers(headers);
    let client = crate::peers::client_builder(builder, crate::peers::To::Server)
        .build()
        .map_err(|e| ApiError::internal(format!("failed to build an HTTP client: {e}")))?;
    let others: Vec<_> = cluster
        .members()
        .await
        .into_iter()
        .filter(|m| m.name != here.name && m.status != MemberStatus::Left)
        .collect();
    let calls = others.iter().map(|m| ask(&client, &m.http_addr, op));
    let answers = futures::future::join_all(calls).await;
    let mut servers = vec![here];
    let mut errors = BTreeMap::new();
    for (member, answer) in others.iter().zip(answers) {
        match answer {
            Ok(keys) => servers.push(keys),
            Err(e) => {
                errors.insert(member.name.clone(), e);
            }
        }
    }
    Ok((servers, errors))
}

/// One server's keys (after `op`).
async fn ask(
    client: &reqwest::Client,
    http_addr: &str,
    op: Option<&KeyringOp>,
) -> Result<ServerKeys, String> {
    let url = format!("{}{INTERNAL_PATH}", crate::peers::url(http_addr));
    let request = match op {
        None => client.get(url),
        Some(op) => client
            .put(format!("{url}?op={}", op.name()))
            .json(&json!({"key": op.key().encode()})),
    };
    let resp = request.send().await.map_err(|e| format!("{e}"))?;
    let code = resp.status();
    let body: Value = resp.json().await.map_err(|e| format!("{e}"))?;
    if !code.is_success() {
        return Err(body["message"]
            .as_str()
            .map_or_else(|| code.to_string(), str::to_string));
    }
    serde_json::from_value(body).map_err(|e| format!("unexpected answer: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_servers_per_key() {
        let server = |name: &str, primary: &str, keys: &[&str]| ServerKeys {
            name: name.into(),
            primary: primary.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
        };
        let servers = [
            server("s1", "b", &["b", "a"]),
            server("s2", "a", &["a", "b"]),
        ];
        let errors = BTreeMap::from([("s3".to_string(), "timed out".to_string())]);
        let v = summary(&servers, &errors);
        assert_eq!(v["numServers"], 3);
        assert_eq!(v["keys"], json!({"a": 2, "b": 2}));
        assert_eq!(v["primaryKeys"], json!({"a": 1, "b": 1}));
        assert_eq!(v["errors"]["s3"], "timed out");
    }

    #[test]
    fn an_operation_needs_its_name_and_a_key() {
        let key = GossipKey::generate();
        let body = json!({"key": key.encode()}).to_string();
        assert_eq!(
            parse_op(Some("op=remove"), body.as_bytes()).unwrap(),
            KeyringOp::Remove(key)
        );
        assert!(parse_op(None, body.as_bytes()).is_err());
        assert!(parse_op(Some("op=rotate"), body.as_bytes()).is_err());
        assert!(parse_op(Some("op=use"), b"{}").is_err());
    }
}
