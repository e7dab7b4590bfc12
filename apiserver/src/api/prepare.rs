//! Pure preparation of objects to store: server-owned metadata, status handling, generation,
//! admission. No IO: the write calls (`write.rs`, `delete.rs`) read the current object and
//! propose what these return.

use std::time::SystemTime;

use caravan_schemas::{
    API_VERSION, FieldError, FieldErrorKind, Kind, ObjectMeta, Replaced, Replacement, admit,
    admit_new, admit_replacement, admit_status, admit_update, finalizers_added_while_deleting,
};
use serde_json::{Map, Value};

use super::error::Error;
use crate::store::ObjectJson;

/// Metadata fields only the server writes.
const SERVER_FIELDS: [&str; 6] = [
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
];

/// RFC 3339 UTC time with seconds, as Kubernetes writes timestamps.
pub fn timestamp(now: SystemTime) -> String {
    humantime::format_rfc3339_seconds(now).to_string()
}

/// The name in `metadata.name`, or `""`.
pub fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The `metadata.resourceVersion` a body carries as a precondition, if any.
pub fn resource_version_of(v: &Value) -> Result<Option<u64>, Error> {
    match v.pointer("/metadata/resourceVersion") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| Error::BadRequest(format!("invalid metadata.resourceVersion {s:?}"))),
        Some(other) => Err(Error::BadRequest(format!(
            "metadata.resourceVersion must be a string, got {other}"
        ))),
    }
}

/// Checks `apiVersion` and `kind` of a full object body.
pub fn check_type_meta(kind: Kind, v: &Value) -> Result<(), Error> {
    let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let k = v.get("kind").and_then(Value::as_str).unwrap_or("");
    if k.is_empty() {
        return Err(Error::BadRequest(
            "Object 'Kind' is missing in the request body".into(),
        ));
    }
    if api_version.is_empty() {
        return Err(Error::BadRequest(
            "Object 'apiVersion' is missing in the request body".into(),
        ));
    }
    if api_version != API_VERSION || k != kind.name() {
        return Err(Error::BadRequest(format!(
            "the API version and kind in the data ({api_version}, Kind={k}) do not match the expected {API_VERSION}, Kind={}",
            kind.name()
        )));
    }
    Ok(())
}

fn metadata_mut(v: &mut Value) -> &mut Map<String, Value> {
    let obj = v.as_object_mut().expect("bodies are checked to be objects");
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("just made an object")
}

/// Puts the namespace of the path into the body, refusing a different one.
pub fn reconcile_namespace(kind: Kind, v: &mut Value, path_ns: Option<&str>) -> Result<(), Error> {
    let meta = metadata_mut(v);
    if !kind.namespaced() {
        meta.remove("namespace");
        return Ok(());
    }
    let path_ns = path_ns.unwrap_or("default");
    match meta.get("namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() && ns != path_ns => Err(Error::BadRequest(format!(
            "the namespace of the provided object ({ns}) does not match the namespace sent on the request ({path_ns})"
        ))),
        _ => {
            meta.insert("namespace".into(), Value::String(path_ns.to_string()));
            Ok(())
        }
    }
}

/// Admits a full object, mapping field errors to [`Error::Invalid`]. `previous` is the stored object an
/// update replaces: an update that changes only metadata is not defaulted again.
pub fn admit_object(
    kind: Kind,
    v: Value,
    previous: Option<&Value>,
    strict: bool,
) -> Result<(Value, Vec<String>), Error> {
    let name = name_of(&v).to_string();
    match previous {
        Some(previous) => admit_update(kind, v, previous, strict),
        None => admit(kind, v, strict),
    }
    .map(|a| (a.object, a.warnings))
    .map_err(|causes| Error::Invalid { kind, name, causes })
}

/// Prepares a new object: namespace, name (or generateName), server fields, no status,
/// admission with defaults, serialized once.
pub fn prepare_create(
    kind: Kind,
    mut v: Value,
    path_ns: Option<&str>,
    strict: bool,
    uid: &str,
    now: SystemTime,
) -> Result<Prepared, Error> {
    check_type_meta(kind, &v)?;
    reconcile_namespace(kind, &mut v, path_ns)?;
    let meta = metadata_mut(&mut v);
    if let Some(rv) = meta.get("resourceVersion").and_then(Value::as_str)
        && !rv.is_empty()
    {
        return Err(Error::Invalid {
            kind,
            name: meta
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            causes: vec![FieldError {
                field: "metadata.resourceVersion".into(),
                kind: FieldErrorKind::Invalid,
                message: "resourceVersion should not be set on objects to be created".into(),
            }],
        });
    }
    if meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        match meta.get("generateName").and_then(Value::as_str) {
            Some(prefix) if !prefix.is_empty() => {
                let name = format!("{prefix}{}", random_suffix(uid));
                meta.insert("name".into(), Value::String(name));
            }
            _ => {
                return Err(Error::Invalid {
                    kind,
                    name: String::new(),
                    causes: vec![FieldError {
                        field: "metadata.name".into(),
                        kind: FieldErrorKind::Required,
                        message: "name or generateName is required".into(),
                    }],
                });
            }
        }
    }
    for f in SERVER_FIELDS {
        meta.remove(f);
    }
    // Status is written through its subresource; only an Evaluation, a Deployment and a
    // ServiceRegistration are created with their initial status (and an ACLToken, which only
    // the servers create, with its secret's hash) (a blocked evaluation must
    // never be seen as pending, even for an instant; nor a deployment without its canaries and
    // deadlines; nor a service instance as passing before its checks ran).
    if kind.has_status()
        && !matches!(
            kind,
            Kind::Evaluation | Kind::Deployment | Kind::ServiceRegistration | Kind::AclToken
        )
        && let Some(obj) = v.as_object_mut()
    {
        obj.remove("status");
    }
    let name = name_of(&v).to_string();
    let created = timestamp(now);
    let stamp = |meta: &mut ObjectMeta| {
        meta.uid = Some(uid.to_string());
        meta.creation_timestamp = Some(created.clone());
        meta.generation = Some(1);
    };
    match admit_new(kind, v, strict, &stamp) {
        Ok(admitted) => Ok(Prepared {
            json: ObjectJson::from(admitted.json),
            name,
            warnings: admitted.warnings,
        }),
        Err(causes) => Err(Error::Invalid { kind, name, causes }),
    }
}

/// A new object, ready to store: admitted, with its server fields, serialized once.
#[derive(Debug)]
pub struct Prepared {
    pub json: ObjectJson,
    pub name: String,
    /// Unknown fields dropped in non-strict mode.
    pub warnings: Vec<String>,
}

/// Kubernetes' generateName alphabet, five characters derived from the new uid.
fn random_suffix(uid: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uid.bytes()
        .filter(u8::is_ascii_hexdigit)
        .take(5)
        .map(|b| ALPHABET[(b as usize * 7) % ALPHABET.len()] as char)
        .collect()
}

/// Prepares the next state of `current` from `desired` (a PUT body or a patch result).
///
/// Through the main resource, status and server-owned metadata are kept from `current`; through
/// the status subresource only `status` changes. `generation` is bumped when the spec changes.
pub fn prepare_update(
    kind: Kind,
    current: &Value,
    desired: Value,
    status_subresource: bool,
    strict: bool,
) -> Result<(Value, Vec<String>), Error> {
    let mut next = if status_subresource {
        let mut n = current.clone();
        let obj = n.as_object_mut().expect("stored objects are objects");
        match desired.get("status") {
            Some(s) if !s.is_null() => obj.insert("status".into(), s.clone()),
            _ => obj.remove("status"),
        };
        n
    } else {
        let mut n = desired;
        check_type_meta(kind, &n)?;
        let current_meta = current.get("metadata").and_then(Value::as_object);
        let meta = metadata_mut(&mut n);
        for f in SERVER_FIELDS.into_iter().chain(["name", "namespace"]) {
            match current_meta.and_then(|m| m.get(f)) {
                Some(v) => meta.insert(f.into(), v.clone()),
                None => meta.remove(f),
            };
        }
        if kind.has_status() {
            let obj = n.as_object_mut().expect("checked object");
            match current.get("status") {
                Some(s) => obj.insert("status".into(), s.clone()),
                None => obj.remove("status"),
            };
        }
        n
    };
    // Deletion has begun: no finalizer may be added.
    if current.pointer("/metadata/deletionTimestamp").is_some() {
        let before = finalizers(current);
        let after = finalizers(&next);
        let added: Vec<&str> = after
            .iter()
            .map(String::as_str)
            .filter(|f| !before.iter().any(|b| b == f))
            .collect();
        if !added.is_empty() {
            return Err(Error::Invalid {
                kind,
                name: name_of(current).to_string(),
                causes: vec![finalizers_added_while_deleting(&added)],
            });
        }
    }
    let (mut admitted, warnings) =
        admit_object(kind, std::mem::take(&mut next), Some(current), strict)?;
    if !status_subresource && admitted.get("spec") != current.get("spec") {
        let generation = current
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        metadata_mut(&mut admitted).insert("generation".into(), Value::from(generation + 1));
    }
    Ok((admitted, warnings))
}

/// Prepares the replacement of the stored object `current` (its JSON) by `desired`, a PUT
/// through the main resource: what [`prepare_update`] does, on typed objects, without decoding
/// the stored object into a generic value or serializing the result twice. `Err(desired)`
/// when the stored object does not decode as its kind; [`prepare_update`] then applies.
pub fn prepare_replacement(
    kind: Kind,
    current: &str,
    desired: Value,
    strict: bool,
) -> Result<Result<Replacement, Error>, Value> {
    let name = name_of(&desired).to_string();
    match admit_replacement(kind, desired, current, strict) {
        Replaced::Admitted(replacement) => Ok(Ok(replacement)),
        Replaced::Invalid(causes) => Ok(Err(Error::Invalid { kind, name, causes })),
        Replaced::Undecodable(desired) => Err(desired),
    }
}

/// A merge patch through the status subresource, on typed objects: only the status is patched
/// as a generic value and checked against the status schema (`admit_status`); the result is
/// what [`prepare_update`] gives for the patched object. `None` when the stored object does
/// not decode as its kind; [`prepare_update`] then applies.
pub fn prepare_status_merge(
    kind: Kind,
    current: &str,
    name: &str,
    patch: &Value,
    strict: bool,
) -> Option<Result<Replacement, Error>> {
    let mut change = |status: &mut Value| match patch.get("status") {
        None => {}
        Some(Value::Null) => *status = Value::Null,
        Some(update) => json_patch::merge(status, update),
    };
    match admit_status(kind, current, &mut change, strict) {
        Replaced::Admitted(replacement) => Some(Ok(replacement)),
        Replaced::Invalid(causes) => Some(Err(Error::Invalid {
            kind,
            name: name.to_string(),
            causes,
        })),
        Replaced::Undecodable(_) => None,
    }
}

/// The finalizers of an object.
pub fn finalizers(v: &Value) -> Vec<String> {
    v.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the object is being deleted and nothing holds it any more.
pub fn ready_to_remove(v: &Value) -> bool {
    v.pointer("/metadata/deletionTimestamp").is_some() && finalizers(v).is_empty()
}

/// Marks an object as being deleted.
pub fn mark_deleting(mut v: Value, now: SystemTime) -> Value {
    let meta = metadata_mut(&mut v);
    meta.insert("deletionTimestamp".into(), Value::String(timestamp(now)));
    meta.insert("deletionGracePeriodSeconds".into(), Value::from(0));
    v
}

#[cfg(test)]
mod tests;
