//! POST, PUT, PATCH and DELETE of resources: which writes a method allows on a path, the body
//! decoded (JSON or YAML, a patch by its media type, `DeleteOptions`), then the service call
//! (`api::create`, `replace`, `patch`, `delete`). Admission, preparation, preconditions and
//! the store writes are the service's.

use bytes::Bytes;
use caravan_schemas::limits::MAX_JSON_PATCH_OPS;

use super::body::{self, INLINE_JSON_BYTES};
use super::error::ApiError;
use super::path::ResourcePath;
use super::query::Query;
use crate::api::{self, DeleteOptions, Outcome, Patch, Preconditions, Subresource};
use crate::context::ApiContext;

fn subresource(path: &ResourcePath) -> Subresource {
    if path.status {
        Subresource::Status
    } else {
        Subresource::Main
    }
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
    let options = query.write_options();
    let value = body::decode(body, media, options.strict()).await?;
    Ok(api::create(ctx, kind, path.store_namespace(), value, &options).await?)
}

/// PUT of an object or its status.
pub async fn replace(
    ctx: &ApiContext,
    path: &ResourcePath,
    query: &Query,
    media: &str,
    body: &Bytes,
) -> Result<Outcome, ApiError> {
    let options = query.write_options();
    let desired = body::decode(body, media, options.strict()).await?;
    let (namespace, name) = (path.store_namespace(), path.name.as_deref().unwrap_or(""));
    let subresource = subresource(path);
    Ok(api::replace(
        ctx,
        path.kind,
        namespace,
        name,
        subresource,
        desired,
        &options,
    )
    .await?)
}

/// Decodes a patch by its media type.
async fn parse_patch(media: &str, body: &Bytes, strict: bool) -> Result<Patch, ApiError> {
    match media {
        "application/merge-patch+json" => Ok(Patch::Merge(
            body::decode(body, "application/json", strict).await?,
        )),
        "application/json-patch+json" if body.len() <= INLINE_JSON_BYTES => {
            parse_json_patch(body).map(Patch::Json)
        }
        "application/json-patch+json" => {
            let body = body.clone();
            body::blocking(move || parse_json_patch(&body))
                .await
                .map(Patch::Json)
        }
        "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Patch::Apply(
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
        ApiError::bad_request(format!(
            "invalid JSON patch at line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    if patch.0.len() > MAX_JSON_PATCH_OPS {
        return Err(api::Error::too_large(
            MAX_JSON_PATCH_OPS,
            format!(
                "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPS}, got {}",
                patch.0.len()
            ),
        )
        .into());
    }
    Ok(patch)
}

/// PATCH of an object or its status.
pub async fn patch(
    ctx: &ApiContext,
    path: &ResourcePath,
    query: &Query,
    media: &str,
    body: &Bytes,
) -> Result<Outcome, ApiError> {
    let options = query.write_options();
    let patch = parse_patch(media, body, options.strict()).await?;
    let (namespace, name) = (path.store_namespace(), path.name.as_deref().unwrap_or(""));
    let subresource = subresource(path);
    Ok(api::patch(
        ctx,
        path.kind,
        namespace,
        name,
        subresource,
        patch,
        &options,
    )
    .await?)
}

/// The parts of a `DeleteOptions` body Caravan honours.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteBody {
    #[serde(default)]
    preconditions: Option<PreconditionsBody>,
    #[serde(default)]
    dry_run: Vec<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PreconditionsBody {
    uid: Option<String>,
    resource_version: Option<String>,
}

/// DELETE of an object, with a `DeleteOptions` body or none.
pub async fn delete(
    ctx: &ApiContext,
    path: &ResourcePath,
    query: &Query,
    body: &Bytes,
) -> Result<Outcome, ApiError> {
    let Some(name) = path.name.as_deref().filter(|_| !path.status) else {
        return Err(ApiError::MethodNotAllowed(
            "DELETE is only allowed on objects".into(),
        ));
    };
    let sent: DeleteBody = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteBody::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let pre = sent.preconditions.unwrap_or_default();
    let options = DeleteOptions {
        dry_run: query.dry_run || sent.dry_run.iter().any(|d| d == "All"),
        preconditions: Preconditions {
            resource_version: Preconditions::parse_resource_version(
                pre.resource_version.as_deref(),
            )?,
            uid: pre.uid,
        },
        guard: query.access.guard.clone(),
    };
    Ok(api::delete(ctx, path.kind, path.store_namespace(), name, &options).await?)
}

#[cfg(test)]
mod tests;
