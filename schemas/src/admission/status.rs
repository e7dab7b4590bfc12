//! Admission of a status write (a PATCH of the status subresource) against the stored
//! object, in typed form. Node agents report every allocation's progress this way, so it is
//! the most frequent write of a busy cluster: only the status is turned into a JSON value
//! (to be patched and checked against the status schema); the rest of the object stays
//! typed, and the result is serialized once.

use serde_json::{Map, Value};

use super::kinds::Admissible;
use super::replace::{Replaced, admitted};
use super::validation::validate_status;
use super::{Checks, conclude, validated_by};
use crate::Kind;

/// Admits a status write of the stored object `current` (its JSON): `change` edits the
/// stored status (`Null` when there is none; leaving `Null` removes it), and the result is
/// checked as a write through the status subresource is: the status against the kind's
/// schema (unknown fields dropped with a warning, or errors when `strict`), then the kind's
/// semantic checks and defaults. Metadata and spec stay as stored.
///
/// [`Replaced::Undecodable`] (with `Null`) when `current` does not decode as its kind, for the
/// caller to take the generic path.
pub fn admit_status(
    kind: Kind,
    current: &str,
    change: &mut dyn FnMut(&mut Value),
    strict: bool,
) -> Replaced {
    match kind {
        Kind::Namespace => status::<crate::Namespace>(kind, current, change, strict),
        Kind::Node => status::<crate::Node>(kind, current, change, strict),
        Kind::Job => status::<crate::Job>(kind, current, change, strict),
        Kind::Evaluation => status::<crate::Evaluation>(kind, current, change, strict),
        Kind::Allocation => status::<crate::Allocation>(kind, current, change, strict),
        Kind::Deployment => status::<crate::Deployment>(kind, current, change, strict),
        Kind::ServiceRegistration => {
            status::<crate::ServiceRegistration>(kind, current, change, strict)
        }
        Kind::JobVersion => status::<crate::JobVersion>(kind, current, change, strict),
        Kind::AclPolicy => status::<crate::AclPolicy>(kind, current, change, strict),
        Kind::AclToken => status::<crate::AclToken>(kind, current, change, strict),
    }
}

fn status<T: Admissible + Clone>(
    kind: Kind,
    current: &str,
    change: &mut dyn FnMut(&mut Value),
    strict: bool,
) -> Replaced {
    let Ok(current) = serde_json::from_str::<T>(current) else {
        return Replaced::Undecodable(Value::Null);
    };
    let Ok(mut status) = current.status_value() else {
        return Replaced::Undecodable(Value::Null);
    };
    change(&mut status);
    let mut object = Map::new();
    if !status.is_null() {
        object.insert("status".into(), status);
    }
    let (object, errors, warnings) =
        match validated_by(validate_status, kind, Value::Object(object), strict) {
            Ok(validated) => validated,
            Err(errors) => return Replaced::Invalid(errors),
        };
    let status = match object {
        Value::Object(mut object) => object.remove("status").unwrap_or(Value::Null),
        _ => Value::Null,
    };
    // As the typed pass of every admission: the schema's errors and the semantic ones
    // together, the decoding error alone only when the schema found nothing.
    let mut next = current.clone();
    let typed = next
        .set_status(status)
        .map_err(|e| e.to_string())
        .map(|()| {
            let mut checks = Checks::default();
            next.check(&mut checks);
            next.apply_defaults();
            ((), checks.errors)
        });
    if let Err(errors) = conclude(typed, errors) {
        return Replaced::Invalid(errors);
    }
    let unchanged = next == current;
    admitted(next, unchanged, warnings)
}
