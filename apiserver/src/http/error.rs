//! API errors and their one mapping to an HTTP code and a Kubernetes `Status`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use caravan_schemas::{FieldError, Kind, Status, StatusCause, StatusDetails};

use crate::raft::WriteError;
use crate::store::OpError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{name:?} not found")]
    NotFound { kind: Option<Kind>, name: String },
    #[error("the server could not find the requested resource")]
    NoRoute,
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: Kind, name: String },
    #[error("{message}")]
    Conflict {
        kind: Kind,
        name: String,
        message: String,
    },
    #[error("{kind} {name:?} is invalid")]
    Invalid {
        kind: Kind,
        name: String,
        causes: Vec<FieldError>,
    },
    /// A body, a JSON patch or the object a write would store is over its limit (413);
    /// `message` says which, `None` for a body not read to its end.
    #[error("{}", too_large_message(*limit, message.as_deref()))]
    TooLarge {
        limit: usize,
        message: Option<String>,
    },
    /// A read or watch asked for a revision this server has not reached (Kubernetes' 504
    /// `Timeout` with cause `ResourceVersionTooLarge`).
    #[error("Too large resource version: {requested}, current: {current}")]
    ResourceVersionTooLarge { requested: u64, current: u64 },
    #[error(
        "the body of the request was in an unknown format - accepted media types include: {accepted}"
    )]
    UnsupportedMediaType { accepted: String },
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

fn too_large_message(limit: usize, message: Option<&str>) -> String {
    match message {
        Some(message) => message.to_owned(),
        None => format!("the request body is larger than {limit} bytes"),
    }
}

impl ApiError {
    /// 413 for something other than the body's size.
    pub fn too_large(limit: usize, message: String) -> ApiError {
        ApiError::TooLarge {
            limit,
            message: Some(message),
        }
    }

    pub fn not_found(kind: Kind, name: &str) -> ApiError {
        ApiError::NotFound {
            kind: Some(kind),
            name: name.to_string(),
        }
    }

    /// Maps a rejected store operation to the API error a client expects.
    pub fn from_op(err: OpError, kind: Kind, name: &str) -> ApiError {
        match err {
            OpError::NotFound => ApiError::not_found(kind, name),
            OpError::AlreadyExists => ApiError::AlreadyExists {
                kind,
                name: name.to_string(),
            },
            OpError::Conflict { .. } => ApiError::conflict(kind, name),
            OpError::NamespaceNotFound(ns) => ApiError::NotFound {
                kind: Some(Kind::Namespace),
                name: ns,
            },
        }
    }

    /// Maps a failed write.
    pub fn from_write(err: WriteError, kind: Kind, name: &str) -> ApiError {
        match err {
            WriteError::Rejected(op) => ApiError::from_op(op, kind, name),
            WriteError::NotLeader { leader } => ApiError::Unavailable(format!(
                "this server is not the leader (leader: {})",
                leader.as_deref().unwrap_or("unknown")
            )),
            WriteError::Unavailable(msg) => ApiError::Unavailable(msg),
        }
    }

    /// The Kubernetes optimistic-concurrency conflict.
    pub fn conflict(kind: Kind, name: &str) -> ApiError {
        ApiError::Conflict {
            kind,
            name: name.to_string(),
            message: format!(
                "Operation cannot be fulfilled on {}.{} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                kind.plural(),
                caravan_schemas::GROUP,
                name
            ),
        }
    }

    /// One mapping from error to HTTP code and `Status`.
    pub fn to_status(&self) -> Status {
        let (code, reason) = match self {
            ApiError::BadRequest(_) => (400, "BadRequest"),
            ApiError::NotFound { .. } | ApiError::NoRoute => (404, "NotFound"),
            ApiError::AlreadyExists { .. } => (409, "AlreadyExists"),
            ApiError::Conflict { .. } => (409, "Conflict"),
            ApiError::Invalid { .. } => (422, "Invalid"),
            ApiError::TooLarge { .. } => (413, "RequestEntityTooLarge"),
            ApiError::ResourceVersionTooLarge { .. } => (504, "Timeout"),
            ApiError::UnsupportedMediaType { .. } => (415, "UnsupportedMediaType"),
            ApiError::MethodNotAllowed(_) => (405, "MethodNotAllowed"),
            ApiError::Forbidden(_) => (403, "Forbidden"),
            ApiError::Gone(_) => (410, "Expired"),
            ApiError::Unavailable(_) => (503, "ServiceUnavailable"),
            ApiError::Internal(_) => (500, "InternalError"),
        };
        let mut status = Status::failure(code, reason, self.message());
        status.details = self.details();
        status
    }

    fn message(&self) -> String {
        let qualified = |k: &Option<Kind>| match k {
            Some(k) => format!("{}.{}", k.plural(), caravan_schemas::GROUP),
            None => String::new(),
        };
        match self {
            ApiError::NotFound { kind, name } => {
                format!("{} \"{}\" not found", qualified(kind), name)
            }
            ApiError::AlreadyExists { kind, name } => {
                format!("{} \"{}\" already exists", qualified(&Some(*kind)), name)
            }
            ApiError::Invalid { kind, name, causes } => {
                let list: Vec<String> = causes
                    .iter()
                    .map(|c| format!("{}: {}", c.field, c.message))
                    .collect();
                format!(
                    "{}.{} \"{}\" is invalid: [{}]",
                    kind.name(),
                    caravan_schemas::GROUP,
                    name,
                    list.join(", ")
                )
            }
            other => other.to_string(),
        }
    }

    fn details(&self) -> Option<StatusDetails> {
        let details = |kind: &Kind, name: &str, causes: Vec<StatusCause>| StatusDetails {
            name: name.to_string(),
            group: caravan_schemas::GROUP.to_string(),
            kind: kind.plural().to_string(),
            causes,
            ..StatusDetails::default()
        };
        match self {
            ApiError::NotFound {
                kind: Some(kind),
                name,
            }
            | ApiError::AlreadyExists { kind, name }
            | ApiError::Conflict { kind, name, .. } => Some(details(kind, name, Vec::new())),
            ApiError::Invalid { kind, name, causes } => Some(details(
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
            ApiError::Unavailable(_) => Some(StatusDetails {
                retry_after_seconds: Some(1),
                ..StatusDetails::default()
            }),
            ApiError::ResourceVersionTooLarge { .. } => Some(StatusDetails {
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = status_response(&self.to_status());
        if matches!(self, ApiError::TooLarge { message: None, .. }) {
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
        let status = ApiError::ResourceVersionTooLarge {
            requested: 120,
            current: 100,
        }
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
        let body = ApiError::TooLarge {
            limit: 10,
            message: None,
        };
        assert_eq!(body.to_string(), "the request body is larger than 10 bytes");
        let resp = body.into_response();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(resp.headers().contains_key(axum::http::header::CONNECTION));
        let object = ApiError::too_large(10, "the object is too large".into());
        assert_eq!(object.to_status().reason, "RequestEntityTooLarge");
        let resp = object.into_response();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(!resp.headers().contains_key(axum::http::header::CONNECTION));
    }
}
