//! GET of one object and of a collection: the service's answer (`api::get`, `api::list`)
//! rendered as the stored JSON bytes, a list spliced from them, or a kubectl Table.

use std::time::SystemTime;

use axum::response::Response;
use caravan_schemas::API_VERSION;

use super::error::ApiError;
use super::path::ResourcePath;
use super::query::Query;
use super::respond;
use super::table;
use crate::api;
use crate::context::ApiContext;

/// GET of one object (or its status subresource, which is the same object).
pub fn get(
    ctx: &ApiContext,
    path: &ResourcePath,
    query: &Query,
    accept: Option<&str>,
) -> Result<Response, ApiError> {
    let name = path.name.as_deref().unwrap_or_default();
    let options = query.get_options()?;
    let obj = api::get(ctx, path.kind, path.store_namespace(), name, &options)?;
    if let Some(scope) = &query.access.scope
        && !scope.admits(&obj)
    {
        return Err(ApiError::Forbidden(format!(
            "{}.{} {name:?} is forbidden: out of the requester's scope",
            path.kind.plural(),
            caravan_schemas::GROUP
        )));
    }
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

/// GET of a collection.
pub fn list(
    ctx: &ApiContext,
    path: &ResourcePath,
    query: &Query,
    accept: Option<&str>,
) -> Result<Response, ApiError> {
    let kind = path.kind;
    let options = query.list_options(kind)?;
    let page = api::list(ctx, kind, path.namespace.as_deref(), &options)?;
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
    use caravan_schemas::Kind;

    use super::*;
    use crate::api::testing::{context, create_job, job};

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
    }
}
