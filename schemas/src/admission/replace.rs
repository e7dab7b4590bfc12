//! Admission of a replacement (a PUT through the main resource) against the stored object,
//! in typed form: the stored object is decoded into its type rather than a generic JSON value,
//! compared with the admitted replacement field by field, and the replacement is serialized
//! once, straight from its type.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::kinds::Admissible;
use super::{FieldError, FieldErrorKind, checked, conclude, validated};
use crate::Kind;
use crate::meta::ObjectMeta;

/// The outcome of [`admit_replacement`].
#[derive(Debug)]
pub enum Replaced {
    /// The replacement passed admission.
    Admitted(Replacement),
    /// Every problem found, with its field path.
    Invalid(Vec<FieldError>),
    /// The stored object did not decode as its kind (or the body is not an object): the
    /// body, untouched.
    Undecodable(Value),
}

/// An admitted replacement.
#[derive(Debug)]
pub struct Replacement {
    /// The object to store, without `metadata.resourceVersion` (the store stamps it).
    pub json: Box<RawValue>,
    /// The replacement equals the stored object: nothing to write.
    pub unchanged: bool,
    /// Deletion was requested and the last finalizer is gone: the object is to be removed.
    pub removed: bool,
    /// Unknown fields dropped in non-strict mode.
    pub warnings: Vec<String>,
}

/// Admits `desired` as the replacement of the stored object `current` (its JSON). The
/// server's metadata fields, the name and the namespace are kept from `current`, and so is the
/// status of kinds that have one; `generation` is bumped when the spec changes.
///
/// [`Replaced::Undecodable`] gives `desired` back when `current` does not decode as its kind,
/// for the caller to take the generic path.
pub fn admit_replacement(kind: Kind, desired: Value, current: &str, strict: bool) -> Replaced {
    match kind {
        Kind::Namespace => replace::<crate::Namespace>(kind, desired, current, strict),
        Kind::Node => replace::<crate::Node>(kind, desired, current, strict),
        Kind::Job => replace::<crate::Job>(kind, desired, current, strict),
        Kind::Evaluation => replace::<crate::Evaluation>(kind, desired, current, strict),
        Kind::Allocation => replace::<crate::Allocation>(kind, desired, current, strict),
        Kind::Deployment => replace::<crate::Deployment>(kind, desired, current, strict),
        Kind::ServiceRegistration => {
            replace::<crate::ServiceRegistration>(kind, desired, current, strict)
        }
        Kind::JobVersion => replace::<crate::JobVersion>(kind, desired, current, strict),
        Kind::AclPolicy => replace::<crate::AclPolicy>(kind, desired, current, strict),
        Kind::AclToken => replace::<crate::AclToken>(kind, desired, current, strict),
    }
}

fn replace<T: Admissible>(kind: Kind, mut desired: Value, current: &str, strict: bool) -> Replaced {
    let Ok(current) = serde_json::from_str::<T>(current) else {
        return Replaced::Undecodable(desired);
    };
    let Some(object) = desired.as_object_mut() else {
        return Replaced::Undecodable(desired);
    };
    keep_server_fields(object, current.metadata());
    if kind.has_status() {
        object.remove("status");
    }
    if let Some(error) = check_no_finalizer_added(object, current.metadata()) {
        return Replaced::Invalid(vec![error]);
    }
    let (object, errors, warnings) = match validated(kind, desired, strict) {
        Ok(validated) => validated,
        Err(errors) => return Replaced::Invalid(errors),
    };
    let typed = checked::<T>(object);
    let mut next = match conclude(typed, errors) {
        Ok(next) => next,
        Err(errors) => return Replaced::Invalid(errors),
    };
    next.keep_status(&current);
    if !next.same_spec(&current) {
        let generation = current.metadata().generation.unwrap_or(0);
        next.metadata_mut().generation = Some(generation + 1);
    }
    let unchanged = next == current;
    admitted(next, unchanged, warnings)
}

/// The outcome for an admitted `next`: its JSON without `metadata.resourceVersion` (the store
/// stamps it), and whether it is to be removed (deleting, with no finalizer left).
pub(super) fn admitted<T: Admissible>(
    mut next: T,
    unchanged: bool,
    warnings: Vec<String>,
) -> Replaced {
    let meta = next.metadata_mut();
    let removed = meta.deletion_timestamp.is_some() && meta.finalizers.is_empty();
    meta.resource_version = None;
    match serde_json::value::to_raw_value(&next) {
        Ok(json) => Replaced::Admitted(Replacement {
            json,
            unchanged,
            removed,
            warnings,
        }),
        Err(e) => Replaced::Invalid(vec![FieldError {
            field: String::new(),
            kind: FieldErrorKind::Invalid,
            message: e.to_string(),
        }]),
    }
}

/// Metadata fields only the server writes, and the object's identity: a replacement keeps
/// the stored object's.
fn keep_server_fields(object: &mut Map<String, Value>, current: &ObjectMeta) {
    let text = |v: &Option<String>| v.clone().map(Value::String);
    let kept = [
        ("uid", text(&current.uid)),
        ("creationTimestamp", text(&current.creation_timestamp)),
        ("deletionTimestamp", text(&current.deletion_timestamp)),
        (
            "deletionGracePeriodSeconds",
            current.deletion_grace_period_seconds.map(Value::from),
        ),
        ("generation", current.generation.map(Value::from)),
        ("resourceVersion", text(&current.resource_version)),
        ("name", text(&current.name)),
        ("namespace", text(&current.namespace)),
    ];
    let meta = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    for (field, value) in kept {
        match value {
            Some(value) => meta.insert(field.into(), value),
            None => meta.remove(field),
        };
    }
}

/// Once deletion has begun no finalizer may be added.
fn check_no_finalizer_added(
    object: &Map<String, Value>,
    current: &ObjectMeta,
) -> Option<FieldError> {
    current.deletion_timestamp.as_ref()?;
    let added: Vec<&str> = object
        .get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|f| !current.finalizers.iter().any(|c| c == f))
        .collect();
    (!added.is_empty()).then(|| finalizers_added_while_deleting(&added))
}

/// The error for `added` finalizers on an object whose deletion has begun.
pub fn finalizers_added_while_deleting(added: &[&str]) -> FieldError {
    FieldError {
        field: "metadata.finalizers".into(),
        kind: FieldErrorKind::Invalid,
        message: format!(
            "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
        ),
    }
}
