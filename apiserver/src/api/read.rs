//! Get of one object and list with selectors and pagination.
//!
//! A `resourceVersion` the server has not reached yet is Kubernetes' `Too large resource
//! version`: [`wait_for_revision`] waits for it a little first (as Kubernetes does), and
//! [`get`] and [`list`] refuse it when it has still not come.

use std::sync::Arc;

use base64::Engine;
use caravan_schemas::Kind;
use serde::{Deserialize, Serialize};

use super::error::Error;
use super::options::{GetOptions, ListOptions};
use super::selector::Selectors;
use super::watch::FUTURE_RESOURCE_VERSION_WAIT;
use super::write::key;
use crate::context::ApiContext;
use crate::store::StoredObject;

/// Waits up to `FUTURE_RESOURCE_VERSION_WAIT` for the state to reach `resource_version` (a
/// revision another server already answered with); [`Error::ResourceVersionTooLarge`] when it
/// does not come. Call before [`get`] or [`list`], which only check (and are synchronous).
pub async fn wait_for_revision(
    ctx: &ApiContext,
    resource_version: Option<u64>,
) -> Result<(), Error> {
    let Some(rv) = resource_version else {
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

/// Refuses a `resourceVersion` past the state's revision.
fn check_revision(requested: u64, current: u64) -> Result<(), Error> {
    if requested > current {
        return Err(Error::ResourceVersionTooLarge { requested, current });
    }
    Ok(())
}

/// One object (the same through its status subresource).
pub fn get(
    ctx: &ApiContext,
    kind: Kind,
    namespace: &str,
    name: &str,
    options: &GetOptions,
) -> Result<Arc<StoredObject>, Error> {
    let key = key(kind, namespace, name);
    let state = ctx.store.state();
    if let Some(rv) = options.resource_version {
        check_revision(rv, state.revision())?;
    }
    state.get(&key).ok_or_else(|| Error::not_found(kind, name))
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

fn decode_token(s: &str) -> Result<ContinueToken, Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| Error::BadRequest(format!("invalid continue token {s:?}")))
}

/// One page of a list.
pub struct Page {
    pub revision: u64,
    /// Shared with the state: a pointer each.
    pub items: Vec<Arc<StoredObject>>,
    pub continue_token: Option<String>,
}

/// A page of `kind` in `namespace` (`None`: every namespace) matching the selectors, in
/// (namespace, name) order.
pub fn list(
    ctx: &ApiContext,
    kind: Kind,
    namespace: Option<&str>,
    options: &ListOptions,
) -> Result<Page, Error> {
    let selectors = &options.selectors;
    let namespace = namespace.filter(|_| kind.namespaced());
    let token = options
        .continue_token
        .as_deref()
        .map(decode_token)
        .transpose()?;
    // A namespace in a field selector narrows the scan like one in the path.
    let ns_filter = namespace.or_else(|| selectors.fields.equality("metadata.namespace"));
    let limit = options.limit.unwrap_or(usize::MAX);
    let state = ctx.store.state();
    if let Some(rv) = options.resource_version
        && token.is_none()
    {
        check_revision(rv, state.revision())?;
    }
    let revision = token.as_ref().map_or(state.revision(), |t| t.rv);
    let after = token.as_ref().map(|t| (t.ns.as_str(), t.name.as_str()));
    let indexed = index_lookup(kind, selectors)
        .and_then(|(field, value)| state.list_by_field(kind, field, value, ns_filter));
    let candidates: Box<dyn Iterator<Item = &Arc<StoredObject>> + '_> = match &indexed {
        Some(objs) => Box::new(objs.iter()),
        None => state.list(kind, ns_filter, after),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::testing::{context, create_job, job};

    fn at(rv: u64) -> GetOptions {
        GetOptions {
            resource_version: Some(rv),
        }
    }

    fn list_at(rv: u64) -> ListOptions {
        ListOptions {
            resource_version: Some(rv),
            ..ListOptions::default()
        }
    }

    #[tokio::test]
    async fn a_resource_version_the_server_has_not_reached_is_refused() {
        let (_dir, ctx) = context(100).await;
        let rv = create_job(&ctx, job("a")).await.resource_version;
        assert!(get(&ctx, Kind::Job, "default", "a", &at(rv)).is_ok());
        assert!(list(&ctx, Kind::Job, Some("default"), &list_at(rv)).is_ok());
        let far = rv + 100;
        for result in [
            get(&ctx, Kind::Job, "default", "a", &at(far)).map(|_| ()),
            list(&ctx, Kind::Job, Some("default"), &list_at(far)).map(|_| ()),
        ] {
            match result.expect_err("too large") {
                Error::ResourceVersionTooLarge { requested, current } => {
                    assert_eq!((requested, current), (far, rv));
                }
                other => panic!("{other:?}"),
            }
        }
        // Waiting for a revision that comes.
        let writer = {
            let ctx = ctx.clone();
            tokio::spawn(async move { create_job(&ctx, job("b")).await })
        };
        wait_for_revision(&ctx, Some(rv + 1))
            .await
            .expect("reached");
        writer.await.expect("writer");
        assert!(list(&ctx, Kind::Job, Some("default"), &list_at(rv + 1)).is_ok());
    }
}
