//! Admission of a written object: JSON Schema validation, Nomad's defaults, semantic checks.

use serde_json::Value;

use crate::Kind;
use crate::admission::checks::Checks;
use crate::admission::kinds::Admissible;
use crate::admission::validation::{remove_field, strip_nulls, validate};

pub(crate) mod checks;
mod kinds;
mod validation;

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
    let mut object = object;
    strip_nulls(&mut object);
    if !object.is_object() {
        return Err(vec![FieldError {
            field: String::new(),
            kind: FieldErrorKind::TypeInvalid,
            message: "must be an object".into(),
        }]);
    }

    let (mut errors, unknown) = validate(kind, &object);
    let mut warnings = Vec::new();
    for field in unknown {
        if strict {
            errors.push(FieldError {
                message: format!("unknown field {:?}", field.field),
                field: field.field,
                kind: FieldErrorKind::Unknown,
            });
        } else {
            remove_field(&mut object, &field.parent, &field.name);
            warnings.push(format!("unknown field {:?}", field.field));
        }
    }

    let typed = match kind {
        Kind::Namespace => typed::<crate::Namespace>(object),
        Kind::Node => typed::<crate::Node>(object),
        Kind::Job => typed::<crate::Job>(object),
        Kind::Evaluation => typed::<crate::Evaluation>(object),
        Kind::Allocation => typed::<crate::Allocation>(object),
        Kind::Deployment => typed::<crate::Deployment>(object),
    };
    match typed {
        Ok((object, semantic)) => {
            // A field the schema already rejected is not reported twice.
            for error in semantic {
                if !errors.iter().any(|e| e.field == error.field) {
                    errors.push(error);
                }
            }
            if errors.is_empty() {
                Ok(Admitted { object, warnings })
            } else {
                Err(errors)
            }
        }
        Err(message) if errors.is_empty() => Err(vec![FieldError {
            field: String::new(),
            kind: FieldErrorKind::Invalid,
            message,
        }]),
        Err(_) => Err(errors),
    }
}

/// Deserializes, checks and defaults an object; returns it as JSON with the semantic errors.
/// `metadata` is passed through as written.
fn typed<T: Admissible>(object: Value) -> Result<(Value, Vec<FieldError>), String> {
    let metadata = object.get("metadata").cloned();
    let mut typed: T = serde_json::from_value(object).map_err(|e| e.to_string())?;
    let mut checks = Checks::default();
    checks.metadata(typed.metadata(), T::NAME_IS_LABEL);
    typed.check(&mut checks);
    typed.apply_defaults();
    let mut value = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if let (Some(metadata), Some(map)) = (metadata, value.as_object_mut()) {
        map.insert("metadata".into(), metadata);
    }
    Ok((value, checks.errors))
}

#[cfg(test)]
mod tests;
