//! Create, replace and patch (merge, JSON, apply); `delete.rs` deletes.
//!
//! Every object a write would store (or a dry run return) is at most [`MAX_OBJECT_BYTES`] of
//! JSON, measured on the bytes admission serialized anyway; a JSON patch is refused as soon
//! as it may grow the object past that (`bounded_patch.rs`).

use std::sync::Arc;
use std::time::SystemTime;

use caravan_runtime::Subresource;
use caravan_schemas::limits::MAX_OBJECT_BYTES;
use caravan_schemas::{FieldError, FieldErrorKind, Kind, Replacement};
use serde_json::Value;

use super::error::Error;
use super::job_version;
use super::options::WriteOptions;
use super::outcome::Outcome;
use super::prepare::{self, prepare_create, prepare_update, ready_to_remove};
use crate::context::ApiContext;
use crate::store::{ObjectJson, ObjectKey, Op, Precondition, StoredObject};

mod bounded_patch;

/// How many times a read-modify-write retries after losing a race.
pub(super) const MAX_ATTEMPTS: usize = 8;

/// Refuses to store an object of `size` bytes of JSON past [`MAX_OBJECT_BYTES`].
fn check_size(kind: Kind, name: &str, size: usize) -> Result<(), Error> {
    if size <= MAX_OBJECT_BYTES {
        return Ok(());
    }
    Err(Error::too_large(
        MAX_OBJECT_BYTES,
        format!(
            "{}.{} \"{name}\" would be {size} bytes of JSON, more than the limit of \
             {MAX_OBJECT_BYTES}",
            kind.plural(),
            caravan_schemas::GROUP,
        ),
    ))
}

/// The store key of `name` of `kind` in `namespace` (ignored for cluster-scoped kinds).
pub(super) fn key(kind: Kind, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey {
        kind,
        namespace: if kind.namespaced() {
            namespace.to_string()
        } else {
            String::new()
        },
        name: name.to_string(),
    }
}

pub(super) fn current(ctx: &ApiContext, key: &ObjectKey) -> Option<Arc<StoredObject>> {
    ctx.store.state().get(key)
}

/// Creates `value` in `namespace` (ignored for cluster-scoped kinds; the body's namespace
/// must be empty or the same).
pub async fn create(
    ctx: &ApiContext,
    kind: Kind,
    namespace: &str,
    value: Value,
    options: &WriteOptions,
) -> Result<Outcome, Error> {
    job_version::check_client_write(kind, Subresource::Main, "create")?;
    if !kind.client_creatable() {
        return Err(Error::MethodNotAllowed(format!(
            "create is not allowed on {}.{}: the servers create tokens and their secrets \
             (POST /v1/acl/tokens, caravan acl token create)",
            kind.plural(),
            caravan_schemas::GROUP,
        )));
    }
    create_by_server(ctx, kind, namespace, value, options).await
}

/// [`create`] for what only the servers create (an ACLToken with its secret's hash).
pub(crate) async fn create_by_server(
    ctx: &ApiContext,
    kind: Kind,
    namespace: &str,
    value: Value,
    options: &WriteOptions,
) -> Result<Outcome, Error> {
    let uid = uuid::Uuid::new_v4().to_string();
    let now = SystemTime::now();
    let prepared = prepare_create(kind, value, Some(namespace), options.strict(), &uid, now)?;
    let (name, warnings) = (prepared.name, prepared.warnings);
    check_size(kind, &name, prepared.json.get().len())?;
    if let Some(guard) = &options.guard {
        guard.check(&StoredObject::from_put(kind, &prepared.json, 0))?;
    }
    if options.dry_run {
        if current(ctx, &key(kind, namespace, &name)).is_some() {
            return Err(Error::AlreadyExists { kind, name });
        }
        let object = serde_json::from_str(prepared.json.get()).expect("an ObjectJson is JSON");
        return Ok(Outcome::value(object).created().with_warnings(warnings));
    }
    let version = job_version::version_put(ctx, kind, &prepared.json, None, now)?;
    let stored = ctx
        .store
        .write(Op::Put {
            kind,
            object: prepared.json,
            expect: Precondition::Absent,
            version,
        })
        .await
        .map_err(|e| Error::from_write(e, kind, &name))?;
    if kind == Kind::Node {
        // Registering counts as a first heartbeat (as in Nomad): the node must heartbeat
        // within a TTL from now.
        ctx.heartbeats.beat(&name, std::time::Instant::now());
    }
    Ok(Outcome::stored(stored).created().with_warnings(warnings))
}

/// A body naming another object than the one addressed is refused.
fn check_name(body: &Value, key: &ObjectKey) -> Result<(), Error> {
    let name = prepare::name_of(body);
    if name == key.name {
        return Ok(());
    }
    Err(Error::BadRequest(format!(
        "the name of the object ({name}) does not match the name on the URL ({})",
        key.name
    )))
}

/// Replaces an object or its status with `desired`, which names the `resourceVersion` it
/// replaces.
pub async fn replace(
    ctx: &ApiContext,
    kind: Kind,
    namespace: &str,
    name: &str,
    subresource: Subresource,
    mut desired: Value,
    options: &WriteOptions,
) -> Result<Outcome, Error> {
    job_version::check_client_write(kind, subresource, "update")?;
    let key = key(kind, namespace, name);
    let status = subresource == Subresource::Status;
    prepare::check_type_meta(kind, &desired)?;
    if !prepare::name_of(&desired).is_empty() {
        check_name(&desired, &key)?;
    }
    prepare::reconcile_namespace(kind, &mut desired, Some(namespace))?;
    let Some(rv) = prepare::resource_version_of(&desired)? else {
        return Err(Error::Invalid {
            kind,
            name: key.name.clone(),
            causes: vec![FieldError {
                field: "metadata.resourceVersion".into(),
                kind: FieldErrorKind::Invalid,
                message: "must be specified for an update".into(),
            }],
        });
    };
    let cur = current(ctx, &key).ok_or_else(|| Error::not_found(kind, &key.name))?;
    if let Some(guard) = &options.guard {
        guard.check(&cur)?;
    }
    if cur.resource_version != rv {
        return Err(Error::conflict(kind, &key.name));
    }
    let strict = options.strict();
    if !status && let Ok(text) = std::str::from_utf8(&cur.json) {
        match prepare::prepare_replacement(kind, text, desired, strict) {
            Ok(replacement) => {
                let mut replacement = replacement?;
                let warnings = std::mem::take(&mut replacement.warnings);
                let outcome = commit_replacement(ctx, &key, &cur, replacement, options).await?;
                return Ok(outcome.with_warnings(warnings));
            }
            Err(undecodable) => desired = undecodable,
        }
    }
    // The stored object is decoded once for the whole update.
    let current = cur.to_value();
    let (next, warnings) = prepare_update(kind, &current, desired, status, strict)?;
    let outcome = commit_update(ctx, &key, &cur, &current, next, options).await?;
    Ok(outcome.with_warnings(warnings))
}

/// Writes `next` over `cur` unless nothing changed; removes the object when its last finalizer
/// went while it was being deleted.
async fn commit_update(
    ctx: &ApiContext,
    key: &ObjectKey,
    cur: &Arc<StoredObject>,
    current: &Value,
    mut next: Value,
    options: &WriteOptions,
) -> Result<Outcome, Error> {
    if let Some(meta) = next.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(cur.resource_version.to_string()),
        );
    }
    if next == *current {
        return Ok(Outcome::stored(cur.clone()));
    }
    let removed = ready_to_remove(&next);
    // Serialized once: what is measured is what is written (or answered, for a dry run).
    let object = ObjectJson::from_value(next);
    if !removed {
        check_size(key.kind, &key.name, object.get().len())?;
    }
    check_guard(options, key, cur, &object)?;
    if options.dry_run {
        let stored = StoredObject::from_put(key.kind, &object, cur.resource_version);
        return Ok(Outcome::stored(Arc::new(stored)));
    }
    write_over(ctx, key, cur, object, removed).await
}

/// Writes an admitted replacement of `cur` unless nothing changed; removes the object when its
/// last finalizer went while it was being deleted.
async fn commit_replacement(
    ctx: &ApiContext,
    key: &ObjectKey,
    cur: &Arc<StoredObject>,
    replacement: Replacement,
    options: &WriteOptions,
) -> Result<Outcome, Error> {
    if replacement.unchanged {
        return Ok(Outcome::stored(cur.clone()));
    }
    if !replacement.removed {
        check_size(key.kind, &key.name, replacement.json.get().len())?;
    }
    let object = ObjectJson::from(replacement.json);
    check_guard(options, key, cur, &object)?;
    if options.dry_run {
        let stored = StoredObject::from_put(key.kind, &object, cur.resource_version);
        return Ok(Outcome::value(stored.to_value()));
    }
    write_over(ctx, key, cur, object, replacement.removed).await
}

/// Refuses, under a guard, a write of `object` over `cur` that touches what the writer may
/// not: both must be in its scope.
fn check_guard(
    options: &WriteOptions,
    key: &ObjectKey,
    cur: &StoredObject,
    object: &ObjectJson,
) -> Result<(), Error> {
    let Some(guard) = &options.guard else {
        return Ok(());
    };
    guard.check(cur)?;
    guard.check(&StoredObject::from_put(
        key.kind,
        object,
        cur.resource_version,
    ))
}

/// Writes `object` in place of `cur`, or removes the object when `removed`, on the condition
/// that `cur` is still the stored version. A Job whose generation changed is written with its
/// new JobVersion.
async fn write_over(
    ctx: &ApiContext,
    key: &ObjectKey,
    cur: &StoredObject,
    object: ObjectJson,
    removed: bool,
) -> Result<Outcome, Error> {
    let kind = key.kind;
    let expect = Precondition::ResourceVersion(cur.resource_version);
    let op = if removed {
        Op::Delete {
            key: key.clone(),
            expect,
        }
    } else {
        let version = job_version::version_put(ctx, kind, &object, Some(cur), SystemTime::now())?;
        Op::Put {
            kind,
            object,
            expect,
            version,
        }
    };
    let stored = ctx
        .store
        .write(op)
        .await
        .map_err(|e| Error::from_write(e, kind, &key.name))?;
    Ok(Outcome::stored(stored))
}

/// A patch, decoded.
pub enum Patch {
    /// A JSON merge patch (RFC 7386).
    Merge(Value),
    /// A JSON patch (RFC 6902).
    Json(json_patch::Patch),
    /// Server-side apply, as a merge of the applied object that creates it when missing.
    Apply(Value),
}

/// Patches the object (or its status). A lost race is retried on the fresh object, unless the
/// patch itself names a resourceVersion.
pub async fn patch(
    ctx: &ApiContext,
    kind: Kind,
    namespace: &str,
    name: &str,
    subresource: Subresource,
    patch: Patch,
    options: &WriteOptions,
) -> Result<Outcome, Error> {
    job_version::check_client_write(kind, subresource, "patch")?;
    let key = key(kind, namespace, name);
    let status = subresource == Subresource::Status;
    let strict = options.strict();
    if let Patch::Apply(applied) = &patch {
        prepare::check_type_meta(kind, applied)?;
        check_name(applied, &key)?;
        check_identity(applied, &key, true)?;
    }
    let precondition = match &patch {
        Patch::Merge(p) | Patch::Apply(p) => prepare::resource_version_of(p)?,
        Patch::Json(_) => None,
    };
    for _ in 0..MAX_ATTEMPTS {
        let Some(cur) = current(ctx, &key) else {
            if let Patch::Apply(applied) = &patch
                && !status
            {
                let mut value = applied.clone();
                if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("resourceVersion");
                }
                return create(ctx, kind, namespace, value, options).await;
            }
            return Err(Error::not_found(kind, &key.name));
        };
        if precondition.is_some_and(|rv| rv != cur.resource_version) {
            return Err(Error::conflict(kind, &key.name));
        }
        if status
            && kind.has_status()
            && let Patch::Merge(p) = &patch
            && check_identity(p, &key, true).is_ok()
            && let Ok(text) = std::str::from_utf8(&cur.json)
            && let Some(replacement) =
                prepare::prepare_status_merge(kind, text, &key.name, p, strict)
        {
            let mut replacement = replacement?;
            let warnings = std::mem::take(&mut replacement.warnings);
            match commit_replacement(ctx, &key, &cur, replacement, options).await {
                Err(Error::Conflict { .. }) if precondition.is_none() => continue,
                other => return other.map(|o| o.with_warnings(warnings)),
            }
        }
        let current = cur.to_value();
        let mut patched = current.clone();
        match &patch {
            Patch::Merge(p) | Patch::Apply(p) => json_patch::merge(&mut patched, p),
            Patch::Json(p) => bounded_patch::apply(&mut patched, cur.json.len(), p)
                .map_err(|failure| json_patch_error(&key, failure))?,
        }
        if !patched.is_object() {
            return Err(Error::BadRequest(
                "the patch does not leave an object".into(),
            ));
        }
        check_identity(&patched, &key, false)?;
        let (next, warnings) = prepare_update(kind, &current, patched, status, strict)?;
        match commit_update(ctx, &key, &cur, &current, next, options).await {
            Err(Error::Conflict { .. }) if precondition.is_none() => continue,
            other => return other.map(|o| o.with_warnings(warnings)),
        }
    }
    Err(Error::conflict(kind, &key.name))
}

/// The error of a JSON patch that was not applied.
fn json_patch_error(key: &ObjectKey, failure: bounded_patch::PatchFailure) -> Error {
    match failure {
        bounded_patch::PatchFailure::TooLarge { op } => Error::too_large(
            MAX_OBJECT_BYTES,
            format!(
                "the JSON patch would make {}.{} \"{}\" more than {MAX_OBJECT_BYTES} bytes of \
                 JSON (at operation {op})",
                key.kind.plural(),
                caravan_schemas::GROUP,
                key.name
            ),
        ),
        bounded_patch::PatchFailure::Failed { message } => Error::Invalid {
            kind: key.kind,
            name: key.name.clone(),
            causes: vec![FieldError {
                field: String::new(),
                kind: FieldErrorKind::Invalid,
                message: format!("the JSON patch could not be applied: {message}"),
            }],
        },
    }
}

/// A patch cannot rename an object nor move it to another namespace (Kubernetes refuses it;
/// otherwise the change would be dropped silently). `v` is the patched object, or with
/// `partial` a merge or apply patch, where a field left out changes nothing.
fn check_identity(v: &Value, key: &ObjectKey, partial: bool) -> Result<(), Error> {
    let immutable = |field: &str, value: &Value| Error::Invalid {
        kind: key.kind,
        name: key.name.clone(),
        causes: vec![FieldError {
            field: field.to_string(),
            kind: FieldErrorKind::Invalid,
            message: format!("Invalid value: {value}: field is immutable"),
        }],
    };
    match v.pointer("/metadata/name") {
        None if partial => {}
        Some(Value::String(name)) if *name == key.name => {}
        other => return Err(immutable("metadata.name", other.unwrap_or(&Value::Null))),
    }
    if key.kind.namespaced() {
        match v.pointer("/metadata/namespace") {
            None | Some(Value::Null) => {}
            Some(Value::String(ns)) if ns.is_empty() || *ns == key.namespace => {}
            Some(other) => return Err(immutable("metadata.namespace", other)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
