//! Create, replace, patch (merge, JSON, apply) and delete.
//!
//! Every object a write would store (or a dry run return) is at most [`MAX_OBJECT_BYTES`] of
//! JSON, measured on the bytes admission serialized anyway; a JSON patch is refused as soon
//! as it may grow the object past that (`bounded_patch.rs`).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use caravan_schemas::limits::{MAX_JSON_PATCH_OPS, MAX_OBJECT_BYTES};
use caravan_schemas::{FieldError, FieldErrorKind, Kind, Replacement};
use serde_json::Value;

use super::body::{self, INLINE_JSON_BYTES};
use super::context::ApiContext;
use super::error::ApiError;
use super::outcome::Outcome;
use super::path::ResourcePath;
use super::prepare::{self, mark_deleting, prepare_create, prepare_update, ready_to_remove};
use super::query::{FieldValidation, Query};
use crate::raft::WriteError;
use crate::store::{ObjectJson, ObjectKey, Op, OpError, Precondition, StoredObject};

mod bounded_patch;

/// How many times a read-modify-write retries after losing a race.
const MAX_ATTEMPTS: usize = 8;

/// Refuses to store an object of `size` bytes of JSON past [`MAX_OBJECT_BYTES`].
fn check_size(kind: Kind, name: &str, size: usize) -> Result<(), ApiError> {
    if size <= MAX_OBJECT_BYTES {
        return Ok(());
    }
    Err(ApiError::too_large(
        MAX_OBJECT_BYTES,
        format!(
            "{}.{} \"{name}\" would be {size} bytes of JSON, more than the limit of \
             {MAX_OBJECT_BYTES}",
            kind.plural(),
            caravan_schemas::GROUP,
        ),
    ))
}

fn strict(query: &Query) -> bool {
    query.field_validation == FieldValidation::Strict
}

fn key_of(path: &ResourcePath) -> ObjectKey {
    ObjectKey {
        kind: path.kind,
        namespace: path.store_namespace().to_string(),
        name: path.name.clone().unwrap_or_default(),
    }
}

fn current(ctx: &ApiContext, key: &ObjectKey) -> Option<Arc<StoredObject>> {
    ctx.store.state().get(key)
}

/// POST to a collection.
pub async fn create(
    ctx: &ApiContext,
    path: &ResourcePath,
    query: &Query,
    media: &str,
    body: &Bytes,
) -> Result<Outcome, ApiError> {
    let kind = path.kind;
    if path.name.is_some() {
        return Err(ApiError::MethodNotAllowed(
            "POST is only allowed on collections".into(),
        ));
    }
    if kind.namespaced() && path.namespace.is_none() {
        return Err(ApiError::MethodNotAllowed(format!(
            "create {} in a namespace: POST /apis/caravan.dev/v1/namespaces/{{namespace}}/{}",
            kind.plural(),
            kind.plural()
        )));
    }
    let value = body::decode(body, media, strict(query)).await?;
    create_value(ctx, kind, path.namespace.as_deref(), query, value).await
}

/// Creates `value` in namespace `ns` (ignored for cluster-scoped kinds).
pub async fn create_value(
    ctx: &ApiContext,
    kind: Kind,
    ns: Option<&str>,
    query: &Query,
    value: Value,
) -> Result<Outcome, ApiError> {
    let uid = uuid::Uuid::new_v4().to_string();
    let prepared = prepare_create(kind, value, ns, strict(query), &uid, SystemTime::now())?;
    let (name, warnings) = (prepared.name, prepared.warnings);
    check_size(kind, &name, prepared.json.get().len())?;
    if query.dry_run {
        let key = ObjectKey {
            kind,
            namespace: ns.unwrap_or("").to_string(),
            name: name.clone(),
        };
        if current(ctx, &key).is_some() {
            return Err(ApiError::AlreadyExists { kind, name });
        }
        let object = serde_json::from_str(prepared.json.get()).expect("an ObjectJson is JSON");
        return Ok(Outcome::value(201, object).with_warnings(warnings));
    }
    let stored = ctx
        .store
        .write(Op::Put {
            kind,
            object: prepared.json,
            expect: Precondition::Absent,
        })
        .await
        .map_err(|e| ApiError::from_write(e, kind, &name))?;
    if kind == Kind::Node {
        // Registering counts as a first heartbeat (as in Nomad): the node must heartbeat
        // within a TTL from now.
        ctx.heartbeats.beat(&name, std::time::Instant::now());
    }
    Ok(Outcome::stored(201, stored).with_warnings(warnings))
}

/// A body naming another object than the URL is refused.
fn check_name(body: &Value, key: &ObjectKey) -> Result<(), ApiError> {
    let name = prepare::name_of(body);
    if name == key.name {
        return Ok(());
    }
    Err(ApiError::BadRequest(format!(
        "the name of the object ({name}) does not match the name on the URL ({})",
        key.name
    )))
}

/// PUT of an object or its status.
pub async fn replace(
    ctx: &ApiContext,
    path: &ResourcePath,
    query: &Query,
    media: &str,
    body: &Bytes,
) -> Result<Outcome, ApiError> {
    let kind = path.kind;
    let key = key_of(path);
    let mut desired = body::decode(body, media, strict(query)).await?;
    prepare::check_type_meta(kind, &desired)?;
    if !prepare::name_of(&desired).is_empty() {
        check_name(&desired, &key)?;
    }
    prepare::reconcile_namespace(kind, &mut desired, path.namespace.as_deref())?;
    let Some(rv) = prepare::resource_version_of(&desired)? else {
        return Err(ApiError::Invalid {
            kind,
            name: key.name.clone(),
            causes: vec![caravan_schemas::FieldError {
                field: "metadata.resourceVersion".into(),
                kind: caravan_schemas::FieldErrorKind::Invalid,
                message: "must be specified for an update".into(),
            }],
        });
    };
    let cur = current(ctx, &key).ok_or_else(|| ApiError::not_found(kind, &key.name))?;
    if cur.resource_version != rv {
        return Err(ApiError::conflict(kind, &key.name));
    }
    if !path.status
        && let Ok(text) = std::str::from_utf8(&cur.json)
    {
        match prepare::prepare_replacement(kind, text, desired, strict(query)) {
            Ok(replacement) => {
                let mut replacement = replacement?;
                let warnings = std::mem::take(&mut replacement.warnings);
                let outcome =
                    commit_replacement(ctx, &key, &cur, replacement, query.dry_run).await?;
                return Ok(outcome.with_warnings(warnings));
            }
            Err(undecodable) => desired = undecodable,
        }
    }
    // The stored object is decoded once for the whole update.
    let current = cur.to_value();
    let (next, warnings) = prepare_update(kind, &current, desired, path.status, strict(query))?;
    let outcome = commit_update(ctx, &key, &cur, &current, next, query.dry_run).await?;
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
    dry_run: bool,
) -> Result<Outcome, ApiError> {
    if let Some(meta) = next.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(cur.resource_version.to_string()),
        );
    }
    if next == *current {
        return Ok(Outcome::stored(200, cur.clone()));
    }
    let removed = ready_to_remove(&next);
    // Serialized once: what is measured is what is written (or answered, for a dry run).
    let object = ObjectJson::from_value(next);
    if !removed {
        check_size(key.kind, &key.name, object.get().len())?;
    }
    if dry_run {
        let stored = StoredObject::from_put(key.kind, &object, cur.resource_version);
        return Ok(Outcome::stored(200, Arc::new(stored)));
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
    dry_run: bool,
) -> Result<Outcome, ApiError> {
    if replacement.unchanged {
        return Ok(Outcome::stored(200, cur.clone()));
    }
    if !replacement.removed {
        check_size(key.kind, &key.name, replacement.json.get().len())?;
    }
    let object = ObjectJson::from(replacement.json);
    if dry_run {
        let stored = StoredObject::from_put(key.kind, &object, cur.resource_version);
        return Ok(Outcome::value(200, stored.to_value()));
    }
    write_over(ctx, key, cur, object, replacement.removed).await
}

/// Writes `object` in place of `cur`, or removes the object when `removed`, on the condition
/// that `cur` is still the stored version.
async fn write_over(
    ctx: &ApiContext,
    key: &ObjectKey,
    cur: &StoredObject,
    object: ObjectJson,
    removed: bool,
) -> Result<Outcome, ApiError> {
    let kind = key.kind;
    let expect = Precondition::ResourceVersion(cur.resource_version);
    let op = if removed {
        Op::Delete {
            key: key.clone(),
            expect,
        }
    } else {
        Op::Put {
            kind,
            object,
            expect,
        }
    };
    let stored = ctx
        .store
        .write(op)
        .await
        .map_err(|e| ApiError::from_write(e, kind, &key.name))?;
    Ok(Outcome::stored(200, stored))
}

/// The patch formats Caravan accepts.
pub enum PatchKind {
    Merge(Value),
    Json(json_patch::Patch),
    Apply(Value),
}

async fn parse_patch(media: &str, body: &Bytes, strict: bool) -> Result<PatchKind, ApiError> {
    match media {
        "application/merge-patch+json" => Ok(PatchKind::Merge(
            body::decode(body, "application/json", strict).await?,
        )),
        "application/json-patch+json" if body.len() <= INLINE_JSON_BYTES => {
            parse_json_patch(body).map(PatchKind::Json)
        }
        "application/json-patch+json" => {
            let body = body.clone();
            body::blocking(move || parse_json_patch(&body))
                .await
                .map(PatchKind::Json)
        }
        "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply(
            body::decode(body, "application/yaml", strict).await?,
        )),
        _ => Err(ApiError::UnsupportedMediaType {
            accepted: "application/merge-patch+json, application/json-patch+json, \
                       application/apply-patch+yaml"
                .into(),
        }),
    }
}

/// Decodes a JSON patch of at most [`MAX_JSON_PATCH_OPS`] operations (Kubernetes' limit).
fn parse_json_patch(body: &[u8]) -> Result<json_patch::Patch, ApiError> {
    let patch: json_patch::Patch = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid JSON patch at line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    if patch.0.len() > MAX_JSON_PATCH_OPS {
        return Err(ApiError::too_large(
            MAX_JSON_PATCH_OPS,
            format!(
                "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPS}, got {}",
                patch.0.len()
            ),
        ));
    }
    Ok(patch)
}

/// PATCH of an object or its status. A lost race is retried on the fresh object, unless the
/// patch itself names a resourceVersion.
pub async fn patch(
    ctx: &ApiContext,
    path: &ResourcePath,
    query: &Query,
    media: &str,
    body: &Bytes,
) -> Result<Outcome, ApiError> {
    let patch = parse_patch(media, body, strict(query)).await?;
    patch_with(ctx, path, query, patch).await
}

/// Applies a parsed patch to the object (or its status) named by `path`.
pub async fn patch_with(
    ctx: &ApiContext,
    path: &ResourcePath,
    query: &Query,
    patch: PatchKind,
) -> Result<Outcome, ApiError> {
    let kind = path.kind;
    let key = key_of(path);
    if let PatchKind::Apply(applied) = &patch {
        prepare::check_type_meta(kind, applied)?;
        check_name(applied, &key)?;
        check_identity(applied, &key, true)?;
    }
    let precondition = match &patch {
        PatchKind::Merge(p) | PatchKind::Apply(p) => prepare::resource_version_of(p)?,
        PatchKind::Json(_) => None,
    };
    for _ in 0..MAX_ATTEMPTS {
        let Some(cur) = current(ctx, &key) else {
            if let PatchKind::Apply(applied) = &patch
                && !path.status
            {
                let mut value = applied.clone();
                if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("resourceVersion");
                }
                return create_value(ctx, kind, path.namespace.as_deref(), query, value).await;
            }
            return Err(ApiError::not_found(kind, &key.name));
        };
        if precondition.is_some_and(|rv| rv != cur.resource_version) {
            return Err(ApiError::conflict(kind, &key.name));
        }
        if path.status
            && kind.has_status()
            && let PatchKind::Merge(p) = &patch
            && check_identity(p, &key, true).is_ok()
            && let Ok(text) = std::str::from_utf8(&cur.json)
            && let Some(replacement) =
                prepare::prepare_status_merge(kind, text, &key.name, p, strict(query))
        {
            let mut replacement = replacement?;
            let warnings = std::mem::take(&mut replacement.warnings);
            match commit_replacement(ctx, &key, &cur, replacement, query.dry_run).await {
                Err(ApiError::Conflict { .. }) if precondition.is_none() => continue,
                other => return other.map(|o| o.with_warnings(warnings)),
            }
        }
        let current = cur.to_value();
        let mut patched = current.clone();
        match &patch {
            PatchKind::Merge(p) | PatchKind::Apply(p) => json_patch::merge(&mut patched, p),
            PatchKind::Json(p) => bounded_patch::apply(&mut patched, cur.json.len(), p)
                .map_err(|failure| json_patch_error(&key, failure))?,
        }
        if !patched.is_object() {
            return Err(ApiError::BadRequest(
                "the patch does not leave an object".into(),
            ));
        }
        check_identity(&patched, &key, false)?;
        let (next, warnings) = prepare_update(kind, &current, patched, path.status, strict(query))?;
        match commit_update(ctx, &key, &cur, &current, next, query.dry_run).await {
            Err(ApiError::Conflict { .. }) if precondition.is_none() => continue,
            other => return other.map(|o| o.with_warnings(warnings)),
        }
    }
    Err(ApiError::conflict(kind, &key.name))
}

/// The error of a JSON patch that was not applied.
fn json_patch_error(key: &ObjectKey, failure: bounded_patch::PatchFailure) -> ApiError {
    match failure {
        bounded_patch::PatchFailure::TooLarge { op } => ApiError::too_large(
            MAX_OBJECT_BYTES,
            format!(
                "the JSON patch would make {}.{} \"{}\" more than {MAX_OBJECT_BYTES} bytes of \
                 JSON (at operation {op})",
                key.kind.plural(),
                caravan_schemas::GROUP,
                key.name
            ),
        ),
        bounded_patch::PatchFailure::Failed { message } => ApiError::Invalid {
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
fn check_identity(v: &Value, key: &ObjectKey, partial: bool) -> Result<(), ApiError> {
    let immutable = |field: &str, value: &Value| ApiError::Invalid {
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

/// The parts of `DeleteOptions` Caravan honours.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteOptions {
    #[serde(default)]
    preconditions: Option<Preconditions>,
    #[serde(default)]
    dry_run: Vec<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Preconditions {
    uid: Option<String>,
    resource_version: Option<String>,
}

/// DELETE of an object: immediate without finalizers, otherwise `deletionTimestamp` is set and
/// the object stays until its last finalizer is removed.
pub async fn delete(
    ctx: &ApiContext,
    path: &ResourcePath,
    query: &Query,
    body: &Bytes,
) -> Result<Outcome, ApiError> {
    let kind = path.kind;
    if path.name.is_none() || path.status {
        return Err(ApiError::MethodNotAllowed(
            "DELETE is only allowed on objects".into(),
        ));
    }
    let key = key_of(path);
    let options: DeleteOptions = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("invalid DeleteOptions: {e}")))?
    };
    let dry_run = query.dry_run || options.dry_run.iter().any(|d| d == "All");
    let pre = options.preconditions.unwrap_or_default();
    let pre_rv = match pre.resource_version.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!("invalid precondition resourceVersion {s:?}"))
        })?),
    };
    for _ in 0..MAX_ATTEMPTS {
        let cur = current(ctx, &key).ok_or_else(|| ApiError::not_found(kind, &key.name))?;
        if pre.uid.as_deref().is_some_and(|u| u != cur.uid) {
            return Err(precondition_failed(
                kind,
                &key.name,
                "UID",
                pre.uid.as_deref().unwrap_or(""),
                &cur.uid,
            ));
        }
        if pre_rv.is_some_and(|rv| rv != cur.resource_version) {
            return Err(precondition_failed(
                kind,
                &key.name,
                "ResourceVersion",
                &pre_rv.unwrap_or(0).to_string(),
                &cur.resource_version.to_string(),
            ));
        }
        if kind == Kind::Namespace {
            check_namespace_empty(ctx, &key.name)?;
        }
        let value = cur.to_value();
        let holds = !prepare::finalizers(&value).is_empty();
        if holds && value.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(Outcome::stored(200, cur));
        }
        let op = if holds {
            Op::Put {
                kind,
                object: ObjectJson::from_value(mark_deleting(value.clone(), SystemTime::now())),
                expect: Precondition::ResourceVersion(cur.resource_version),
            }
        } else {
            Op::Delete {
                key: key.clone(),
                expect: Precondition::ResourceVersion(cur.resource_version),
            }
        };
        if dry_run {
            return Ok(Outcome::stored(200, cur));
        }
        match ctx.store.write(op).await {
            Ok(stored) => return Ok(Outcome::stored(200, stored)),
            Err(WriteError::Rejected(OpError::Conflict { .. })) if pre_rv.is_none() => continue,
            Err(e) => return Err(ApiError::from_write(e, kind, &key.name)),
        }
    }
    Err(ApiError::conflict(kind, &key.name))
}

fn precondition_failed(kind: Kind, name: &str, what: &str, wanted: &str, actual: &str) -> ApiError {
    ApiError::Conflict {
        kind,
        name: name.to_string(),
        message: format!(
            "Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {actual}"
        ),
    }
}

/// A namespace is deleted only once nothing lives in it.
fn check_namespace_empty(ctx: &ApiContext, ns: &str) -> Result<(), ApiError> {
    let state = ctx.store.state();
    let occupied = Kind::ALL
        .into_iter()
        .filter(|k| k.namespaced())
        .find(|k| state.list(*k, Some(ns), None).next().is_some());
    match occupied {
        Some(k) => Err(ApiError::Conflict {
            kind: Kind::Namespace,
            name: ns.to_string(),
            message: format!(
                "namespace {ns:?} is not empty: it still holds {}; delete them first",
                k.plural()
            ),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests;
