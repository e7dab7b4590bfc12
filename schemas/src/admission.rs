//! Admission of a written object: JSON Schema validation, Nomad's defaults, semantic checks.
//!
//! SKELETON: the signatures below are the contract used by the API server.

use serde_json::Value;

use crate::Kind;

/// What kind of problem a field has; maps to a Kubernetes `StatusCause.reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// A required field is missing (`FieldValueRequired`).
    Required,
    /// A value is not allowed (`FieldValueInvalid`).
    Invalid,
    /// A value has the wrong JSON type (`FieldValueTypeInvalid`).
    TypeInvalid,
    /// A value is not one of the allowed ones (`FieldValueNotSupported`).
    NotSupported,
    /// A value appears twice where it must be unique (`FieldValueDuplicate`).
    Duplicate,
    /// A string or list is too long (`FieldValueTooLong`).
    TooLong,
    /// A field that the schema does not know (`FieldValueUnknown`); an error only in strict mode.
    Unknown,
}

impl FieldErrorKind {
    /// The Kubernetes cause type.
    pub fn cause_type(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::Unknown => "FieldValueUnknown",
        }
    }
}

/// One failing field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path in Kubernetes notation: `spec.groups[0].tasks[1].resources.cpu`.
    pub field: String,
    pub kind: FieldErrorKind,
    /// Human-readable, lowercase, no final period.
    pub message: String,
}

/// An object that passed admission, with defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Admitted {
    pub object: Value,
    /// Unknown fields dropped in non-strict mode, as Kubernetes `Warning` texts.
    pub warnings: Vec<String>,
}

/// Validates `object` (a whole object: apiVersion, kind, metadata, spec, status) against the
/// kind's JSON Schema and semantic rules, and fills in Nomad's defaults.
///
/// Null values in maps are dropped first (as Kubernetes does for custom resources). With
/// `strict`, unknown fields are errors; otherwise they are dropped with a warning. Every failing
/// field is reported, not just the first.
pub fn admit(kind: Kind, object: Value, strict: bool) -> Result<Admitted, Vec<FieldError>> {
    let _ = (kind, strict);
    Ok(Admitted {
        object,
        warnings: Vec::new(),
    })
}
