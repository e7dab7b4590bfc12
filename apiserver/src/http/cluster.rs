//! The servers' membership endpoints, as Nomad names them:
//!
//! - `GET /v1/agent/members[?wan=true]`: the servers of this region gossip knows (of every
//!   region with `wan`), as this server sees them;
//! - `PUT /v1/agent/join?address=HOST:PORT[&address=…]`: gossip with those servers now;
//! - `PUT /v1/agent/force-leave?node=NAME`: remove a (dead) server from the Raft membership
//!   (the leader answers; followers forward it);
//! - `GET /v1/operator/raft/configuration`: the Raft voters and learners;
//! - `PUT /v1/operator/raft/transfer-leadership[?to=NAME]`: hand leadership to another voter
//!   (the leader answers; followers forward it; the target is asked to campaign through
//!   `raft/network.rs`).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::error::ApiError;
use crate::cluster::Cluster;
use crate::context::ApiContext;

/// The membership routes.
pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/v1/agent/members", get(members))
        .route("/v1/agent/join", post(join).put(join))
        .route("/v1/agent/force-leave", post(force_leave).put(force_leave))
        .route("/v1/operator/raft/configuration", get(raft_configuration))
        .route(
            "/v1/operator/raft/transfer-leadership",
            post(transfer_leadership).put(transfer_leadership),
        )
}

fn cluster(ctx: &ApiContext) -> Result<&Cluster, ApiError> {
    ctx.cluster()
        .ok_or_else(|| ApiError::unavailable("this server runs no gossip"))
}

fn values<'a>(query: &'a Option<String>, key: &'a str) -> impl Iterator<Item = String> + 'a {
    query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .filter_map(move |kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
}

async fn members(State(ctx): State<Arc<ApiContext>>, RawQuery(query): RawQuery) -> Response {
    let wan = values(&query, "wan").any(|v| v == "true" || v == "1");
    match cluster(&ctx) {
        Ok(c) => {
            let region = c.identity().region.clone();
            let members = c
                .members()
                .await
                .into_iter()
                .filter(|m| wan || m.region == region);
            let leader = ctx.store.leader_addr();
            let members: Vec<_> = members
                .map(|m| {
                    let mut v = serde_json::to_value(&m).unwrap_or_default();
                    v["leader"] = json!(leader.as_deref() == Some(m.http_addr.as_str()));
                    v
                })
                .collect();
            Json(json!({"kind": "ServerMembers", "members": members})).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn join(State(ctx): State<Arc<ApiContext>>, RawQuery(query): RawQuery) -> Response {
    let result = async {
        let cluster = cluster(&ctx)?;
        let addrs: Vec<String> = values(&query, "address").collect();
        if addrs.is_empty() {
            return Err(ApiError::bad_request(
                "name the servers to join: ?address=HOST:PORT",
            ));
        }
        let mut joined = 0;
        let mut errors = Vec::new();
        for addr in &addrs {
            match cluster.join(addr).await {
                Ok(()) => joined += 1,
                Err(e) => errors.push(format!("{addr}: {e:#}")),
            }
        }
        if joined == 0 {
            return Err(ApiError::bad_request(errors.join("; ")));
        }
        Ok(Json(json!({"numJoined": joined, "errors": errors})))
    }
    .await;
    match result {
        Ok(body) => body.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn force_leave(State(ctx): State<Arc<ApiContext>>, RawQuery(query): RawQuery) -> Response {
    let result = async {
        let cluster = cluster(&ctx)?;
        let Some(node) = values(&query, "node").next() else {
            return Err(ApiError::bad_request(
                "name the server to remove: ?node=NAME",
            ));
        };
        let id = cluster
            .force_leave(&node)
            .await
            .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
        Ok(Json(json!({"removed": node, "raftId": id})))
    }
    .await;
    match result {
        Ok(body) => body.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn raft_configuration(State(ctx): State<Arc<ApiContext>>) -> Response {
    match cluster(&ctx) {
        Ok(c) => {
            Json(json!({"kind": "RaftConfiguration", "servers": c.peers().await})).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn transfer_leadership(
    State(ctx): State<Arc<ApiContext>>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let cluster = cluster(&ctx)?;
        let to = values(&query, "to").next();
        let leader = cluster
            .transfer_leadership(to.as_deref())
            .await
            .map_err(|e| ApiError::unavailable(format!("{e:#}")))?;
        Ok::<_, ApiError>(Json(json!({"leader": leader})))
    }
    .await;
    match result {
        Ok(body) => body.into_response(),
        Err(e) => e.into_response(),
    }
}
