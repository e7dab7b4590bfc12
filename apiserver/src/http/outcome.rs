//! The result of a write, before it becomes an HTTP response or an in-process client's value.

use std::sync::Arc;

use axum::response::Response;
use serde_json::Value;

use super::respond::{json, raw_json, with_warnings};
use crate::store::StoredObject;

/// What a write returns: the object as stored (or as it would be, for a dry run), the HTTP
/// code, and the warnings to send.
#[derive(Debug)]
pub struct Outcome {
    pub code: u16,
    pub object: Payload,
    pub warnings: Vec<String>,
}

/// The object of an [`Outcome`].
#[derive(Debug)]
pub enum Payload {
    /// An object in the store: served from its stored bytes.
    Stored(Arc<StoredObject>),
    /// An object that was not stored (dry run).
    Value(Value),
}

impl Outcome {
    pub fn stored(code: u16, object: Arc<StoredObject>) -> Outcome {
        Outcome {
            code,
            object: Payload::Stored(object),
            warnings: Vec::new(),
        }
    }

    pub fn value(code: u16, object: Value) -> Outcome {
        Outcome {
            code,
            object: Payload::Value(object),
            warnings: Vec::new(),
        }
    }

    pub fn with_warnings(mut self, warnings: Vec<String>) -> Outcome {
        self.warnings = warnings;
        self
    }

    /// The object as a JSON value.
    pub fn into_value(self) -> Value {
        match self.object {
            Payload::Stored(o) => o.to_value(),
            Payload::Value(v) => v,
        }
    }

    /// The HTTP response: the object's bytes, the code and `Warning` headers.
    pub fn into_response(self) -> Response {
        let resp = match self.object {
            Payload::Stored(o) => raw_json(self.code, o.json.clone()),
            Payload::Value(v) => json(self.code, &v),
        };
        with_warnings(resp, &self.warnings)
    }
}
