//! The result of a write, before it becomes an HTTP response or an in-process client's value.

use std::sync::Arc;

use serde_json::Value;

use crate::store::StoredObject;

/// What a write returns: the object as stored (or as it would be, for a dry run), whether it
/// was created, and the warnings to send.
#[derive(Debug)]
pub struct Outcome {
    /// A new object (or, for a dry run, one that would be new).
    pub created: bool,
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
    pub fn stored(object: Arc<StoredObject>) -> Outcome {
        Outcome {
            created: false,
            object: Payload::Stored(object),
            warnings: Vec::new(),
        }
    }

    pub fn value(object: Value) -> Outcome {
        Outcome {
            created: false,
            object: Payload::Value(object),
            warnings: Vec::new(),
        }
    }

    /// Marks the object as new.
    pub fn created(mut self) -> Outcome {
        self.created = true;
        self
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
}
