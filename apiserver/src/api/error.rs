//! What a service call fails with. Nothing here knows HTTP: `http::error` maps each variant
//! to an HTTP code and a Kubernetes `Status` (the one place that does), and the in-process
//! client maps them to `ClientError`s.

use caravan_schemas::{FieldError, Kind};

use crate::raft::WriteError;
use crate::store::OpError;

/// Everything a service call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed (a selector, a continue token, a patch that leaves no object…).
    #[error("{0}")]
    BadRequest(String),
    #[error("{name:?} not found")]
    NotFound { kind: Kind, name: String },
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: Kind, name: String },
    /// Optimistic concurrency lost, a precondition failed, or a namespace still holds objects.
    #[error("{message}")]
    Conflict {
        kind: Kind,
        name: String,
        message: String,
    },
    /// Admission refused the object: every failing field.
    #[error("{kind} {name:?} is invalid")]
    Invalid {
        kind: Kind,
        name: String,
        causes: Vec<FieldError>,
    },
    /// What a write would store, or a JSON patch, is over its limit; `message` says which.
    #[error("{message}")]
    TooLarge { limit: usize, message: String },
    /// A read or watch asked for a revision this server has not reached.
    #[error("Too large resource version: {requested}, current: {current}")]
    ResourceVersionTooLarge { requested: u64, current: u64 },
    /// A watch fell behind the watch cache's window.
    #[error("{0}")]
    Gone(String),
    /// The call is never allowed on this resource (e.g. a client creating a JobVersion).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The identity may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Not now: no leader, not the leader, a duty this server does not run.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// An object or a JSON patch over `limit`.
    pub fn too_large(limit: usize, message: String) -> Error {
        Error::TooLarge { limit, message }
    }

    pub fn not_found(kind: Kind, name: &str) -> Error {
        Error::NotFound {
            kind,
            name: name.to_string(),
        }
    }

    /// Maps a rejected store operation to the error a client expects.
    pub fn from_op(err: OpError, kind: Kind, name: &str) -> Error {
        match err {
            OpError::NotFound => Error::not_found(kind, name),
            OpError::AlreadyExists => Error::AlreadyExists {
                kind,
                name: name.to_string(),
            },
            OpError::Conflict { .. } => Error::conflict(kind, name),
            OpError::NamespaceNotFound(ns) => Error::NotFound {
                kind: Kind::Namespace,
                name: ns,
            },
        }
    }

    /// Maps a failed write.
    pub fn from_write(err: WriteError, kind: Kind, name: &str) -> Error {
        match err {
            WriteError::Rejected(op) => Error::from_op(op, kind, name),
            WriteError::NotLeader { leader } => Error::Unavailable(format!(
                "this server is not the leader (leader: {})",
                leader.as_deref().unwrap_or("unknown")
            )),
            WriteError::Unavailable(msg) => Error::Unavailable(msg),
        }
    }

    /// The Kubernetes optimistic-concurrency conflict.
    pub fn conflict(kind: Kind, name: &str) -> Error {
        Error::Conflict {
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

    /// The whole message, as Kubernetes words it (a `Status`'s `message`): the object's
    /// qualified kind and, for an invalid object, every failing field.
    pub fn message(&self) -> String {
        let qualified = |k: &Kind| format!("{}.{}", k.plural(), caravan_schemas::GROUP);
        match self {
            Error::NotFound { kind, name } => {
                format!("{} \"{}\" not found", qualified(kind), name)
            }
            Error::AlreadyExists { kind, name } => {
                format!("{} \"{}\" already exists", qualified(kind), name)
            }
            Error::Invalid { kind, name, causes } => {
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
}
