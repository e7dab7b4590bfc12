//! Admission of a written object: JSON Schema validation, Nomad's defaults, semantic checks.

use serde_json::Value;
use serde_json::value::RawValue;

use crate::Kind;
use crate::admission::checks::{Checks, NameRule};
use crate::admission::kinds::Admissible;
use crate::admission::validation::{remove_field, strip_nulls, validate};
use crate::meta::ObjectMeta;

pub(crate) mod checks;
mod kinds;
mod replace;
mod status;
mod validation;

pub use replace::{Replaced, Replacement, admit_replacement, finalizers_added_while_deleting};
pub use status::admit_status;

/// Why a name is not a DNS-1123 label (lowercase alphanumerics and `-`, at most 63), if not:
/// the rule object names, host network names and service names follow.
pub fn dns1123_label(name: &str) -> Option<String> {
    checks::dns1123_label(name)
}

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
    let (object, errors, warnings) = validated(kind, object, strict)?;
    finish(kind, object, errors, warnings)
}

/// A new object that passed admission, serialized once.
#[derive(Debug)]
pub struct AdmittedJson {
    pub json: Box<RawValue>,
    /// Unknown fields dropped in non-strict mode, as Kubernetes `Warning` texts.
    pub warnings: Vec<String>,
}

/// [`admit`] for a new object, without a JSON value on the way out: `stamp` sets the
/// server's metadata (uid, creation time, generation) on the admitted typed object, which is
/// serialized straight to JSON. Metadata is written from its type, so empty `labels`,
/// `annotations` and `finalizers` are left out, as Kubernetes leaves them out.
pub fn admit_new(
    kind: Kind,
    object: Value,
    strict: bool,
    stamp: &dyn Fn(&mut ObjectMeta),
) -> Result<AdmittedJson, Vec<FieldError>> {
    let (object, errors, warnings) = validated(kind, object, strict)?;
    let typed = match kind {
        Kind::Namespace => typed_json::<crate::Namespace>(object, stamp),
        Kind::Node => typed_json::<crate::Node>(object, stamp),
        Kind::Job => typed_json::<crate::Job>(object, stamp),
        Kind::Evaluation => typed_json::<crate::Evaluation>(object, stamp),
        Kind::Allocation => typed_json::<crate::Allocation>(object, stamp),
        Kind::Deployment => typed_json::<crate::Deployment>(object, stamp),
        Kind::ServiceRegistration => typed_json::<crate::ServiceRegistration>(object, stamp),
        Kind::AclPolicy => typed_json::<crate::AclPolicy>(object, stamp),
        Kind::AclToken => typed_json::<crate::AclToken>(object, stamp),
        Kind::JobVersion => typed_json::<crate::JobVersion>(object, stamp),
    };
    conclude(typed, errors).map(|json| AdmittedJson { json, warnings })
}

/// [`admit`] for an update of `previous`, an object that passed admission before. When
/// everything but `metadata` is unchanged (an update of labels, annotations or finalizers),
/// the typed pass over spec and status would give back what it is given (admission is
/// idempotent), so only the schema and the metadata are checked.
pub fn admit_update(
    kind: Kind,
    object: Value,
    previous: &Value,
    strict: bool,
) -> Result<Admitted, Vec<FieldError>> {
    let (object, mut errors, warnings) = validated(kind, object, strict)?;
    if !same_but_metadata(&object, previous) {
        return finish(kind, object, errors, warnings);
    }
    let meta = object.get("metadata").cloned().unwrap_or(Value::Null);
    let Ok(meta) = serde_json::from_value::<ObjectMeta>(meta) else {
        // The typed pass reports what is wrong with it.
        return finish(kind, object, errors, warnings);
    };
    let mut checks = Checks::default();
    checks.metadata(&meta, name_rule(kind));
    merge(&mut errors, checks.errors);
    if errors.is_empty() {
        Ok(Admitted { object, warnings })
    } else {
        Err(errors)
    }
}

/// Admission of an allocation the server built itself (a scheduler's placement), already
/// typed: the metadata checks, the kind's semantic checks and its defaults, as [`admit`]
/// runs them, without the JSON Schema pass. A typed value holds nothing its own derived
/// schema rejects (its enums, unsigned numbers and required fields are its types) except
/// `apiVersion` and `kind`, which are checked here. Runs once per placement.
pub fn admit_allocation(alloc: &mut crate::Allocation) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    for (field, value, expected) in [
        ("apiVersion", alloc.api_version.as_str(), crate::API_VERSION),
        ("kind", alloc.kind.as_str(), Kind::Allocation.name()),
    ] {
        if value != expected {
            errors.push(FieldError {
                field: field.to_string(),
                kind: FieldErrorKind::NotSupported,
                message: format!("must be {expected:?}"),
            });
        }
    }
    let mut checks = Checks::default();
    checks.metadata(alloc.metadata(), name_rule(Kind::Allocation));
    alloc.check(&mut checks);
    alloc.apply_defaults();
    merge(&mut errors, checks.errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Whether two objects differ at most in their `metadata`.
fn same_but_metadata(a: &Value, b: &Value) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            let body = |m: &serde_json::Map<String, Value>| {
                m.iter().filter(|(k, _)| *k != "metadata").count()
            };
            body(a) == body(b)
                && a.iter()
                    .filter(|(k, _)| *k != "metadata")
                    .all(|(k, v)| b.get(k) == Some(v))
        }
        _ => false,
    }
}

/// The steps every admission starts with: nulls dropped, the JSON Schema checked, unknown
/// fields reported (strict) or dropped with a warning.
fn validated(
    kind: Kind,
    object: Value,
    strict: bool,
) -> Result<(Value, Vec<FieldError>, Vec<String>), Vec<FieldError>> {
    validated_by(validate, kind, object, strict)
}

/// [`validated`] with another schema check (the status alone, for status writes).
fn validated_by(
    validate: validation::Validate,
    kind: Kind,
    object: Value,
    strict: bool,
) -> Result<(Value, Vec<FieldError>, Vec<String>), Vec<FieldError>> {
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
    Ok((object, errors, warnings))
}

/// The typed pass (semantic checks and defaults) after [`validated`].
fn finish(
    kind: Kind,
    object: Value,
    errors: Vec<FieldError>,
    warnings: Vec<String>,
) -> Result<Admitted, Vec<FieldError>> {
    let typed = match kind {
        Kind::Namespace => typed::<crate::Namespace>(object),
        Kind::Node => typed::<crate::Node>(object),
        Kind::Job => typed::<crate::Job>(object),
        Kind::Evaluation => typed::<crate::Evaluation>(object),
        Kind::Allocation => typed::<crate::Allocation>(object),
        Kind::Deployment => typed::<crate::Deployment>(object),
        Kind::ServiceRegistration => typed::<crate::ServiceRegistration>(object),
        Kind::AclPolicy => typed::<crate::AclPolicy>(object),
        Kind::AclToken => typed::<crate::AclToken>(object),
        Kind::JobVersion => typed::<crate::JobVersion>(object),
    };
    conclude(typed, errors).map(|object| Admitted { object, warnings })
}

/// The typed pass's object when neither it nor the schema found a problem; every error
/// otherwise.
fn conclude<O>(
    typed: Result<(O, Vec<FieldError>), String>,
    mut errors: Vec<FieldError>,
) -> Result<O, Vec<FieldError>> {
    match typed {
        Ok((object, semantic)) => {
            merge(&mut errors, semantic);
            if errors.is_empty() {
                Ok(object)
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

/// Adds the semantic errors; a field the schema already rejected is not reported twice.
fn merge(errors: &mut Vec<FieldError>, semantic: Vec<FieldError>) {
    for error in semantic {
        if !errors.iter().any(|e| e.field == error.field) {
            errors.push(error);
        }
    }
}

/// What `kind`'s names must be.
fn name_rule(kind: Kind) -> NameRule {
    match kind {
        Kind::Namespace => <crate::Namespace as Admissible>::NAME_RULE,
        Kind::Node => <crate::Node as Admissible>::NAME_RULE,
        Kind::Job => <crate::Job as Admissible>::NAME_RULE,
        Kind::Evaluation => <crate::Evaluation as Admissible>::NAME_RULE,
        Kind::Allocation => <crate::Allocation as Admissible>::NAME_RULE,
        Kind::Deployment => <crate::Deployment as Admissible>::NAME_RULE,
        Kind::ServiceRegistration => <crate::ServiceRegistration as Admissible>::NAME_RULE,
        Kind::AclPolicy => <crate::AclPolicy as Admissible>::NAME_RULE,
        Kind::AclToken => <crate::AclToken as Admissible>::NAME_RULE,
        Kind::JobVersion => <crate::JobVersion as Admissible>::NAME_RULE,
    }
}

/// Deserializes, checks and defaults an object; returns it as JSON with the semantic errors.
/// `metadata` is passed through as written.
fn typed<T: Admissible>(object: Value) -> Result<(Value, Vec<FieldError>), String> {
    let metadata = object.get("metadata").cloned();
    let (typed, errors) = checked::<T>(object)?;
    let mut value = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if let (Some(metadata), Some(map)) = (metadata, value.as_object_mut()) {
        map.insert("metadata".into(), metadata);
    }
    Ok((value, errors))
}

/// [`typed`] for a new object: `stamp` sets the server's metadata on the typed object, which
/// is then serialized once, straight to JSON.
fn typed_json<T: Admissible>(
    object: Value,
    stamp: &dyn Fn(&mut ObjectMeta),
) -> Result<(Box<RawValue>, Vec<FieldError>), String> {
    let (mut typed, errors) = checked::<T>(object)?;
    stamp(typed.metadata_mut());
    let json = serde_json::value::to_raw_value(&typed).map_err(|e| e.to_string())?;
    Ok((json, errors))
}

/// Deserializes, checks and defaults an object.
fn checked<T: Admissible>(object: Value) -> Result<(T, Vec<FieldError>), String> {
    let mut typed: T = serde_json::from_value(object).map_err(|e| e.to_string())?;
    let mut checks = Checks::default();
    checks.metadata(typed.metadata(), T::NAME_RULE);
    typed.check(&mut checks);
    typed.apply_defaults();
    Ok((typed, checks.errors))
}

#[cfg(test)]
mod tests;
