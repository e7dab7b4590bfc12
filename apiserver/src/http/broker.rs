//! The leader's eval broker, served to the scheduler workers of followers (Nomad's
//! `Eval.Dequeue`, `Eval.Ack`, `Eval.Nack` RPCs):
//!
//! - `POST /v1/eval-broker/dequeue` `{"types": ["service", …], "timeoutMs": 500}` → 200 with a
//!   `Delivery` (`eval`, `token`, `deliveries`), or 204 when nothing was ready in time;
//! - `POST /v1/eval-broker/{ack|nack|reset|pause|resume}` `{"eval": NAME, "token": N}` → 200,
//!   or 409 when the broker no longer knows the delivery.
//!
//! Followers forward these to the leader; a server without a broker answers 503.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use caravan_controllers::broker::EvalBroker;
use caravan_runtime::eval_source::{BrokerError, Token};
use caravan_schemas::evaluation::EvaluationType;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use crate::api;
use crate::context::ApiContext;

/// Path prefix of the broker endpoints.
pub const BROKER_PATH: &str = "/v1/eval-broker/";

/// Longest a dequeue may wait.
const MAX_DEQUEUE_WAIT: Duration = Duration::from_secs(10);

pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/v1/eval-broker/dequeue", post(dequeue))
        .route("/v1/eval-broker/{op}", post(settle))
}

fn broker(ctx: &ApiContext) -> Result<EvalBroker, ApiError> {
    ctx.broker()
        .ok_or_else(|| ApiError::unavailable("this server runs no eval broker (not the leader)"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DequeueRequest {
    types: Vec<EvaluationType>,
    #[serde(default)]
    timeout_ms: u64,
}

async fn dequeue(State(ctx): State<Arc<ApiContext>>, Json(req): Json<DequeueRequest>) -> Response {
    let broker = match broker(&ctx) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let wait = Duration::from_millis(req.timeout_ms).min(MAX_DEQUEUE_WAIT);
    match broker.dequeue(&req.types, wait).await {
        Some(delivery) => Json(delivery).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

#[derive(Deserialize)]
struct SettleRequest {
    eval: String,
    token: Token,
}

async fn settle(
    State(ctx): State<Arc<ApiContext>>,
    Path(op): Path<String>,
    Json(req): Json<SettleRequest>,
) -> Response {
    let broker = match broker(&ctx) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let result = match op.as_str() {
        "ack" => broker.ack(&req.eval, req.token),
        "nack" => broker.nack(&req.eval, req.token),
        "reset" => broker.outstanding_reset(&req.eval, req.token),
        "pause" => broker.pause_nack_timeout(&req.eval, req.token),
        "resume" => broker.resume_nack_timeout(&req.eval, req.token),
        other => {
            return ApiError::bad_request(format!(
                "unknown broker operation {other:?}: ack, nack, reset, pause or resume"
            ))
            .into_response();
        }
    };
    match result {
        Ok(()) => Json(json!({})).into_response(),
        Err(e @ (BrokerError::NotOutstanding { .. } | BrokerError::TokenMismatch { .. })) => {
            ApiError::from(api::Error::Conflict {
                kind: caravan_schemas::Kind::Evaluation,
                name: req.eval,
                message: e.to_string(),
            })
            .into_response()
        }
        Err(e) => ApiError::unavailable(e.to_string()).into_response(),
    }
}
