//! JSON Schema validation of whole objects, with errors in Kubernetes field-path notation.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::Kind;
use crate::admission::{FieldError, FieldErrorKind};
use crate::schema::object_schema;

/// An unknown property, located by its parent's JSON pointer segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UnknownField {
    pub(crate) parent: Vec<Segment>,
    pub(crate) name: String,
    pub(crate) field: String,
}

/// A schema check: the errors and the unknown fields of an object of a kind.
pub(crate) type Validate = fn(Kind, &Value) -> (Vec<FieldError>, Vec<UnknownField>);

/// One step into a JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

type Validators = [OnceLock<Validator>; Kind::ALL.len()];

/// `kind`'s validator among `validators`, compiled from `schema(kind)` on first use.
fn compiled(
    validators: &'static Validators,
    kind: Kind,
    schema: fn(Kind) -> Value,
) -> &'static Validator {
    let index = Kind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default();
    validators[index].get_or_init(|| {
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&schema(kind))
            // The schemas are generated from the types and covered by tests.
            .expect("generated schemas compile")
    })
}

/// The kind's validator.
fn validator(kind: Kind) -> &'static Validator {
    static VALIDATORS: Validators = [const { OnceLock::new() }; Kind::ALL.len()];
    compiled(&VALIDATORS, kind, object_schema)
}

/// The kind's schema cut down to its `status`: an object that may hold `status` alone, with
/// the same subschemas, so its errors carry the same field paths (`status.…`).
fn status_validator(kind: Kind) -> &'static Validator {
    static VALIDATORS: Validators = [const { OnceLock::new() }; Kind::ALL.len()];
    compiled(&VALIDATORS, kind, status_schema)
}

fn status_schema(kind: Kind) -> Value {
    let mut schema = object_schema(kind);
    if let Some(object) = schema.as_object_mut() {
        let status = object
            .get("properties")
            .and_then(|p| p.get("status"))
            .cloned();
        let mut properties = serde_json::Map::new();
        if let Some(status) = status {
            properties.insert("status".into(), status);
        }
        object.insert("properties".into(), Value::Object(properties));
        object.remove("required");
    }
    schema
}

/// Validates `object` against the kind's schema; returns the errors and the unknown fields
/// (reported apart so that non-strict admission can drop them).
pub(crate) fn validate(kind: Kind, object: &Value) -> (Vec<FieldError>, Vec<UnknownField>) {
    validate_with(validator(kind), object)
}

/// [`validate`] of `{"status": …}` against the kind's status schema alone.
pub(crate) fn validate_status(kind: Kind, object: &Value) -> (Vec<FieldError>, Vec<UnknownField>) {
    validate_with(status_validator(kind), object)
}

fn validate_with(validator: &Validator, object: &Value) -> (Vec<FieldError>, Vec<UnknownField>) {
    let mut errors = Vec::new();
    let mut unknown = Vec::new();
    // Most writes are valid: a short-circuiting check first, every error only on failure.
    if validator.is_valid(object) {
        return (errors, unknown);
    }
    for error in validator.iter_errors(object) {
        convert(&error, &mut errors, &mut unknown);
    }
    (errors, unknown)
}

fn convert(
    error: &ValidationError<'_>,
    errors: &mut Vec<FieldError>,
    unknown: &mut Vec<UnknownField>,
) {
    let segments: Vec<Segment> = error
        .instance_path()
        .iter()
        .map(|s| match s {
            LocationSegment::Property(p) => Segment::Key(p.to_string()),
            LocationSegment::Index(i) => Segment::Index(i),
        })
        .collect();
    let field = field_path(&segments);
    let instance = error.instance();
    let mut push = |field: String, kind: FieldErrorKind, message: String| {
        errors.push(FieldError {
            field,
            kind,
            message,
        });
    };
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| property.to_string());
            push(
                child(&field, &name),
                FieldErrorKind::Required,
                "required value".into(),
            );
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            for name in unexpected {
                let path = child(&field, name);
                unknown.push(UnknownField {
                    parent: segments.clone(),
                    name: name.clone(),
                    field: path,
                });
            }
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            let got = jsonschema::JsonType::from(instance.as_ref());
            push(
                field,
                FieldErrorKind::TypeInvalid,
                format!("must be of type {expected}, got {got}"),
            );
        }
        ValidationErrorKind::Enum { options } => {
            let allowed = match options.as_ref() {
                Value::Array(list) => list
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            push(
                field,
                FieldErrorKind::NotSupported,
                format!("unsupported value {instance}: supported values: {allowed}"),
            );
        }
        ValidationErrorKind::Constant { expected_value } => push(
            field,
            FieldErrorKind::NotSupported,
            format!("unsupported value {instance}: supported values: {expected_value}"),
        ),
        ValidationErrorKind::Minimum { limit } => push(
            field,
            FieldErrorKind::Invalid,
            format!("must be greater than or equal to {limit}, got {instance}"),
        ),
        ValidationErrorKind::Maximum { limit } => push(
            field,
            FieldErrorKind::Invalid,
            format!("must be less than or equal to {limit}, got {instance}"),
        ),
        ValidationErrorKind::ExclusiveMinimum { limit } => push(
            field,
            FieldErrorKind::Invalid,
            format!("must be greater than {limit}, got {instance}"),
        ),
        ValidationErrorKind::ExclusiveMaximum { limit } => push(
            field,
            FieldErrorKind::Invalid,
            format!("must be less than {limit}, got {instance}"),
        ),
        ValidationErrorKind::MinItems { limit } => push(
            field,
            FieldErrorKind::Invalid,
            format!(
                "must have at least {limit} item{}",
                if *limit == 1 { "" } else { "s" }
            ),
        ),
        ValidationErrorKind::MaxItems { limit } => push(
            field,
            FieldErrorKind::TooLong,
            format!("must have at most {limit} items"),
        ),
        ValidationErrorKind::MinLength { limit } => push(
            field,
            FieldErrorKind::Invalid,
            format!("must be at least {limit} characters long"),
        ),
        ValidationErrorKind::MaxLength { limit } => push(
            field,
            FieldErrorKind::TooLong,
            format!("must be no more than {limit} characters"),
        ),
        ValidationErrorKind::Pattern { pattern } => push(
            field,
            FieldErrorKind::Invalid,
            format!("{instance} must match the pattern {pattern:?}"),
        ),
        _ => push(
            field,
            FieldErrorKind::Invalid,
            lowercase_first(&error.to_string()),
        ),
    }
}

/// `spec.groups[0].tasks[1]` from the segments of `/spec/groups/0/tasks/1`.
pub(crate) fn field_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Key(key) => out = child(&out, key),
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// `parent.name`, or `parent[name]` for a map key that is not an identifier.
fn child(parent: &str, name: &str) -> String {
    let identifier = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    match (parent.is_empty(), identifier) {
        (true, _) => name.to_string(),
        (false, true) => format!("{parent}.{name}"),
        (false, false) => format!("{parent}[{name}]"),
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_lowercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    out.trim_end_matches('.').to_string()
}

/// Removes `name` from the object at `parent`, if it is there.
pub(crate) fn remove_field(root: &mut Value, parent: &[Segment], name: &str) {
    let mut node = root;
    for segment in parent {
        let next = match (segment, node) {
            (Segment::Key(key), Value::Object(map)) => map.get_mut(key),
            (Segment::Index(i), Value::Array(list)) => list.get_mut(*i),
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Value::Object(map) = node {
        map.remove(name);
    }
}

/// Drops `null` values from every object, recursively (arrays keep their items).
pub(crate) fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(list) => list.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}
