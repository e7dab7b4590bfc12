//! JSON Schemas generated from the types, committed under `schemas/json/`.
//!
//! SKELETON: see the contract below.

use serde_json::Value;

use crate::Kind;

/// The JSON Schema (draft 2020-12) of a whole object of `kind`, with `$defs`.
pub fn object_schema(kind: Kind) -> Value {
    let _ = kind;
    serde_json::json!({"type": "object"})
}
