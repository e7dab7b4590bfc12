//! Building JSON responses.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;

use crate::api::{Outcome, Payload};

/// A JSON response from a value.
pub fn json<T: Serialize>(code: u16, value: &T) -> Response {
    raw_json(code, serde_json::to_vec(value).unwrap_or_default().into())
}

/// A JSON response from bytes that already hold JSON.
pub fn raw_json(code: u16, body: Bytes) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The response to a write: the object's bytes (201 when created, else 200) and its warnings
/// as `Warning` headers.
pub fn outcome(outcome: Outcome) -> Response {
    let code = if outcome.created { 201 } else { 200 };
    let resp = match outcome.object {
        Payload::Stored(o) => raw_json(code, o.json.clone()),
        Payload::Value(v) => json(code, &v),
    };
    with_warnings(resp, &outcome.warnings)
}

/// Adds Kubernetes `Warning` headers (`299 - "text"`).
pub fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "'"));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}
