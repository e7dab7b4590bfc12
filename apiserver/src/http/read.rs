//! GET of one object and list with selectors and pagination.
//!
//! A `resourceVersion` the server has not reached yet is Kubernetes' 504 `Too large resource
//! version`: [`wait_for_revision`] waits for it a little first (as Kubernetes does), and
//! [`get`] and [`list`] refuse it when it has still not come.

use std::sync::Arc;
use std::time::SystemTime;

use axum::response::Response;
use base64::Engine;
use caravan_schemas::{API_VERSION, Kind};
use serde::{Deserialize, Serialize};

use super::context::ApiContext;
use super::error::ApiError;
use super::path::ResourcePath;
use super::query::Query;
use super::respond;
use super::selector::Selectors;
use super::table;
use super::watch::FUTURE_RESOURCE_VERSION_WAIT;
use crate::store::{ObjectKey, StoredObject};

/// Waits up to [`FUTURE_RESOURCE_VERSION_WAIT`] for the state to reach the `resourceVersion`
/// a get or list asks for (a revision another server already answered with); 504 when it
/// does not come. Call before [`get`] or [`list`], which only check (and are synchronous).
// The dispatch in `mod.rs` is to call it before `get` and `list`.
#[cfg_attr(not(test), allow(dead_code))]
pub async fn wait_for_revision(ctx: &ApiContext, query: &Query) -> Result<(), ApiError> {
    let Some(rv) = query.resource_version_number()? else {
        return Ok(());
    };
    if rv <= ctx.store.state().revision() {
        return Ok(());
    }
    // The watch cache's revision moves once the state applied it.
    let cache = ctx.store.watch_cache();
    let _ = tokio::time::timeout(FUTURE_RESOURCE_VERSION_WAIT, cache.wait_after(rv - 1)).await;
    check_revision(rv, ctx.store.state().revision())
}

/// 504 for a `resourceVersion` past the state's revision.
fn check_revision(requested: u64, current: u64) -> Result<(), ApiError> {
    if requested > current {
        return Err(ApiError::ResourceVersionTooLarge { requested, current });
    }
    Ok(())
}

/// GET of one object (or its status subresource, which is the same object).
pub fn get(
    ctx: &ApiContext,
    path: &ResourcePath,
    query: &Query,
    accept: Option<&str>,
) -> Result<Response, ApiError> {
    let name = path.name.as_deref().unwrap_or_default();
    let key = ObjectKey {
        kind: path.kind,
        namespace: path.store_namespace().to_string(),
        name: name.to_string(),
    };
    let rv = query.resource_version_number()?;
    let obj = {
        let state = ctx.store.state();
        if let Some(rv) = rv {
            check_revision(rv, state.revision())?;
        }
        state.get(&key)
    }
    .ok_or_else(|| ApiError::not_found(path.kind, name))?;
    if table::wants_table(accept) {
        let rows = vec![table::row(
            path.kind,
            &obj,
            query.include_object.as_deref(),
            SystemTime::now(),
        )];
        return Ok(respond::json(
            200,
            &table::table(path.kind, rows, obj.resource_version, true, None),
        ));
    }
    Ok(respond::raw_json(200, obj.json.clone()))
}

/// Where a paginated list resumes.
#[derive(Serialize, Deserialize)]
struct ContinueToken {
    /// Revision of the first page, reported on every page.
    rv: u64,
    ns: String,
    name: String,
}

fn encode_token(t: &ContinueToken) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(t).unwrap_or_default())
}

fn decode_token(s: &str) -> Result<ContinueToken, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::BadRequest(format!("invalid continue token {s:?}")))
}

/// One page of a list.
pub struct Page {
    pub revision: u64,
    pub items: Vec<Arc<StoredObject>>,
    pub continue_token: Option<String>,
}

/// Reads a page of `kind` matching the selectors, in (namespace, name) order.
pub fn list_page(ctx: &ApiContext, path: &ResourcePath, query: &Query) -> Result<Page, ApiError> {
    let kind = path.kind;
    let selectors = Selectors::parse(
        kind,
        query.label_selector.as_deref(),
        query.field_selector.as_deref(),
    )?;
    let token = query
        .continue_token
        .as_deref()
        .map(decode_token)
        .transpose()?;
    // A namespace in a field selector narrows the scan like one in the path.
    let ns_filter = path.namespace.clone().or_else(|| {
        selectors
            .fields
            .equality("metadata.namespace")
            .map(str::to_string)
    });
    let limit = query.limit.unwrap_or(usize::MAX);
    let rv = query.resource_version_number()?;
    let state = ctx.store.state();
    if let Some(rv) = rv
        && token.is_none()
    {
        check_revision(rv, state.revision())?;
    }
    let revision = token.as_ref().map_or(state.revision(), |t| t.rv);
    let after = token.as_ref().map(|t| (t.ns.as_str(), t.name.as_str()));
    let indexed = index_lookup(kind, &selectors)
        .and_then(|(field, value)| state.list_by_field(kind, field, value, ns_filter.as_deref()));
    let candidates: Box<dyn Iterator<Item = &Arc<StoredObject>> + '_> = match &indexed {
        Some(objs) => Box::new(objs.iter()),
        None => state.list(kind, ns_filter.as_deref(), after),
    };
    let mut matching = candidates
        .filter(|o| {
            after.is_none_or(|(ns, name)| {
                (o.key.namespace.as_str(), o.key.name.as_str()) > (ns, name)
            })
        })
        .filter(|o| selectors.matches(o));
    let items: Vec<Arc<StoredObject>> = matching.by_ref().take(limit).cloned().collect();
    let truncated = matching.next().is_some();
    let continue_token = truncated.then(|| {
        let last = items.last().expect("a truncated page has items");
        encode_token(&ContinueToken {
            rv: revision,
            ns: last.key.namespace.clone(),
            name: last.key.name.clone(),
        })
    });
    Ok(Page {
        revision,
        items,
        continue_token,
    })
}

fn index_lookup(kind: Kind, selectors: &Selectors) -> Option<(&'static str, &str)> {
    ["spec.nodeName", "spec.jobName"]
        .into_iter()
        .find_map(|f| selectors.fields.equality(f).map(|v| (f, v)))
        .filter(|_| matches!(kind, Kind::Allocation | Kind::Evaluation))
}

/// GET of a collection.
pub fn list(
    ctx: &ApiContext,
    path: &ResourcePath,
    query: &Query,
    accept: Option<&str>,
) -> Result<Response, ApiError> {
    let page = list_page(ctx, path, query)?;
    let kind = path.kind;
    if table::wants_table(accept) {
        let now = SystemTime::now();
        let rows = page
            .items
            .iter()
            .map(|o| table::row(kind, o, query.include_object.as_deref(), now))
            .collect();
        return Ok(respond::json(
            200,
            &table::table(kind, rows, page.revision, true, page.continue_token),
        ));
    }
    // Items are spliced in as stored bytes: no re-serialization per object.
    let mut meta = serde_json::json!({ "resourceVersion": page.revision.to_string() });
    if let Some(c) = &page.continue_token {
        meta["continue"] = serde_json::Value::String(c.clone());
    }
    let mut body =
        Vec::with_capacity(128 + page.items.iter().map(|o| o.json.len() + 1).sum::<usize>());
    body.extend_from_slice(
        format!(
            "{{\"apiVersion\":\"{API_VERSION}\",\"kind\":\"{}\",\"metadata\":{},\"items\":[",
            kind.list_name(),
            meta
        )
        .as_bytes(),
    );
    for (i, o) in page.items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&o.json);
    }
    body.extend_from_slice(b"]}");
    Ok(respond::raw_json(200, body.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::write::tests::{context, create_job, job};

    fn jobs(name: Option<&str>) -> ResourcePath {
        ResourcePath {
            kind: Kind::Job,
            namespace: Some("default".into()),
            name: name.map(str::to_owned),
            status: false,
        }
    }

    fn at(rv: u64) -> Query {
        Query::parse(Some(&format!("resourceVersion={rv}"))).expect("query")
    }

    #[tokio::test]
    async fn a_resource_version_the_server_has_not_reached_is_504() {
        let (_dir, ctx) = context(100).await;
        let rv = create_job(&ctx, job("a")).await.resource_version;
        assert!(get(&ctx, &jobs(Some("a")), &at(rv), None).is_ok());
        assert!(list(&ctx, &jobs(None), &at(rv), None).is_ok());
        let far = rv + 100;
        for result in [
            get(&ctx, &jobs(Some("a")), &at(far), None),
            list(&ctx, &jobs(None), &at(far), None),
        ] {
            let status = result.expect_err("a 504").to_status();
            assert_eq!((status.code, status.reason.as_str()), (504, "Timeout"));
            assert_eq!(
                status.message,
                format!("Too large resource version: {far}, current: {rv}")
            );
            let causes = status.details.expect("details").causes;
            assert_eq!(causes[0].reason, "ResourceVersionTooLarge");
        }
        // Waiting for a revision that comes.
        let writer = {
            let ctx = ctx.clone();
            tokio::spawn(async move { create_job(&ctx, job("b")).await })
        };
        wait_for_revision(&ctx, &at(rv + 1)).await.expect("reached");
        writer.await.expect("writer");
        assert!(list(&ctx, &jobs(None), &at(rv + 1), None).is_ok());
    }
}
