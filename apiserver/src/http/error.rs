//! HTTP errors and the one mapping from an error (the service layer's [`api::Error`] or one of
//! the HTTP layer's own) to an HTTP code and a Kubernetes `Status`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use caravan_schemas::{Status, StatusCause, StatusDetails};

use crate::api;

/// Everything a request can fail with: what the service refused, or what HTTP itself refuses
/// before a service call (an unknown path or method, a body or media type it cannot read).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Api(#[from] api::Error),
    #[error("the server could not find the requested resource")]
    NoRoute,
    /// The body was not read to its end: it is over `limit` bytes (413, and the connection
    /// closes).
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error(
        "the body of the request was in an unknown format - accepted media types include: {accepted}"
    )]
    UnsupportedMediaType { accepted: String },
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Forbidden(String),
    /// No valid credentials: an unknown or expired token (401).
    #[error("{0}")]
    Unauthorized(String),
}

impl ApiError {
    /// A malformed request (400).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        api::Error::BadRequest(message.into()).into()
    }

    /// Not now (503, retry after a second).
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        api::Error::Unavailable(message.into()).into()
    }

    /// A failure of the server itself (500).
    pub fn internal(message: impl Into<String>) -> ApiError {
        api::Error::Internal(message.into()).into()
    }

    /// The one mapping from error to HTTP code and `Status`.
    pub fn to_status(&self) -> Status {
        let (code, reason) = match self {
            ApiError::Api(e) => return status(e),
            ApiError::NoRoute => (404, "NotFound"),
            ApiError::BodyTooLarge { .. } => (413, "RequestEntityTooLarge"),
            ApiError::UnsupportedMediaType { .. } => (415, "UnsupportedMediaType"),
            ApiError::MethodNotAllowed(_) => (405, "MethodNotAllowed"),
            ApiError::Forbidden(_) => (403, "Forbidden"),
            ApiError::Unauthorized(_) => (401, "Unauthorized"),
        };
        Status::failure(code, reason, self.to_string())
    }
}

/// The HTTP code and `Status` of what the service layer refused.
pub fn status(error: &api::Error) -> Status {
    use api::Error as E;
    let (code, reason) = match error {
        E::BadRequest(_) => (400, "BadRequest"),
        E::NotFound { .. } => (404, "NotFound"),
        E::AlreadyExists { .. } => (409, "AlreadyExists"),
        E::Conflict { .. } => (409, "Conflict"),
        E::Invalid { .. } => (422, "Invalid"),
        E::TooLarge { .. } => (413, "RequestEntityTooLarge"),
        E::ResourceVersionTooLarge { .. } => (504, "Timeout"),
        E::Gone(_) => (410, "Expired"),
        E::MethodNotAllowed(_) => (405, "MethodNotAllowed"),
        E::Forbidden(_) => (403, "Forbidden"),
        E::Unavailable(_) => (503, "ServiceUnavailable"),
        E::Internal(_) => (500, "InternalError"),
    };
    let mut status = Status::failure(code, reason, error.message());
    status.details = details(error);
    status
}

fn details(error: &api::Error) -> Option<StatusDetails> {
    use api::Error as E;
    let details =
        |kind: &caravan_schemas::Kind, name: &str, causes: Vec<StatusCause>| StatusDetails {
            name: name.to_string(),
            group: caravan_schemas::GROUP.to_string(),
            kind: kind.plural().to_string(),
            causes,
            ..StatusDetails::default()
        };
    match error {
        E::NotFound { kind, name }
        | E::AlreadyExists { kind, name }
        | E::Conflict { kind, name, .. } => Some(details(kind, name, Vec::new())),
        E::Invalid { kind, name, causes } => Some(details(
            kind,
            name,
            causes
                .iter()
                .map(|c| StatusCause {
                    reason: c.kind.cause_type().to_string(),
                    message: c.message.clone(),
                    field: c.field.clone(),
                })
                .collect(),
        )),
        E::Unavailable(_) => Some(StatusDetails {
            retry_after_seconds: Some(1),
            ..StatusDetails::default()
        }),
        E::ResourceVersionTooLarge { .. } => Some(StatusDetails {
            causes: vec![StatusCause {
                reason: "ResourceVersionTooLarge".to_string(),
                message: "Too large resource version".to_string(),
                field: String::new(),
            }],
            retry_after_seconds: Some(1),
            ..StatusDetails::default()
        }),
        _ => None,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = status_response(&self.to_status());
        if matches!(self, ApiError::BodyTooLarge { .. }) {
            // The rest of the body was not read: the connection cannot be reused.
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

/// Serializes a `Status` with its code.
pub fn status_response(status: &Status) -> Response {
    let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(status).unwrap_or_default();
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_version_not_reached_is_kubernetes_timeout() {
        let status = ApiError::from(api::Error::ResourceVersionTooLarge {
            requested: 120,
            current: 100,
        })
        .to_status();
        assert_eq!((status.code, status.reason.as_str()), (504, "Timeout"));
        assert_eq!(
            status.message,
            "Too large resource version: 120, current: 100"
        );
        let details = status.details.expect("details");
        assert_eq!(details.causes[0].reason, "ResourceVersionTooLarge");
        assert_eq!(details.retry_after_seconds, Some(1));
    }

    #[test]
    fn only_a_body_left_unread_closes_the_connection() {
        let body = ApiError::BodyTooLarge { limit: 10 };
        assert_eq!(body.to_string(), "the request body is larger than 10 bytes");
        let resp = body.into_response();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(resp.headers().contains_key(axum::http::header::CONNECTION));
        let object = ApiError::from(api::Error::too_large(10, "the object is too large".into()));
        assert_eq!(object.to_status().reason, "RequestEntityTooLarge");
        let resp = object.into_response();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(!resp.headers().contains_key(axum::http::header::CONNECTION));
    }

    #[test]
    fn a_watch_left_behind_is_410_expired() {
        let status = status(&api::Error::Gone("too old resource version: 3 (9)".into()));
        assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
        assert_eq!(status.message, "too old resource version: 3 (9)");
        assert!(status.details.is_none());
    }
}
