//! The in-process [`Client`]: controllers running inside the server read and write through the
//! same admission, preparation and watch code as HTTP clients, without a socket.

use std::future::Future;
use std::sync::Arc;

use caravan_runtime::{
    Client, ClientError, EventStream, ListQuery, ObjectList, Omit, WatchEvent,
};
use caravan_schemas::plan::{Plan, PlanResult};
use caravan_schemas::{Kind, Status};
use futures::StreamExt;
use serde_json::Value;

use super::context::ApiContext;
use super::error::ApiError;
use super::path::ResourcePath;
use super::query::Query;
use super::read::list_page;
use super::watch::{Framer, WatchSpec, frames};
use super::write::{self, PatchKind};
use crate::store::{EventType, ObjectKey, StoredObject};

/// A [`Client`] over the local store.
#[derive(Clone)]
pub struct LocalClient {
    ctx: Arc<ApiContext>,
}

impl LocalClient {
    pub fn new(ctx: Arc<ApiContext>) -> LocalClient {
        LocalClient { ctx }
    }
}

fn path(kind: Kind, namespace: Option<&str>, name: Option<&str>, status: bool) -> ResourcePath {
    ResourcePath {
        kind,
        namespace: namespace.filter(|_| kind.namespaced()).map(str::to_string),
        name: name.map(str::to_string),
        status,
    }
}

fn client_error(e: ApiError) -> ClientError {
    let message = e.to_string();
    match e {
        ApiError::NotFound { .. } | ApiError::NoRoute => ClientError::NotFound,
        ApiError::AlreadyExists { .. } => ClientError::AlreadyExists,
        ApiError::Conflict { message, .. } => ClientError::Conflict(message),
        ApiError::Invalid { .. } | ApiError::BadRequest(_) | ApiError::TooLarge { .. } => {
            ClientError::Invalid(e.to_status().message)
        }
        ApiError::Gone(_) => ClientError::Gone(message),
        _ => ClientError::Unavailable(message),
    }
}

/// Frames for in-process watchers: decoded events.
/// Frames watch events as values, leaving out the fields the watcher drops anyway.
struct ValueFramer {
    omit: Omit,
}

impl Framer for ValueFramer {
    type Frame = Result<WatchEvent, ClientError>;

    fn event(&mut self, t: EventType, obj: &Arc<StoredObject>) -> Self::Frame {
        let v = obj.to_value_without(self.omit);
        Ok(match t {
            EventType::Added => WatchEvent::Added(v),
            EventType::Modified => WatchEvent::Modified(v),
            EventType::Deleted => WatchEvent::Deleted(v),
        })
    }

    fn bookmark(&mut self, _kind: Kind, rv: u64, _initial_events_end: bool) -> Self::Frame {
        Ok(WatchEvent::Bookmark(rv))
    }

    fn expired(&mut self, status: &Status) -> Self::Frame {
        Err(ClientError::Gone(status.message.clone()))
    }
}

impl Client for LocalClient {
    fn get(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send {
        let key = ObjectKey {
            kind,
            namespace: if kind.namespaced() {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        };
        let found = self.ctx.store.state().get(&key);
        async move { found.map(|o| o.to_value()).ok_or(ClientError::NotFound) }
    }

    fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
    ) -> impl Future<Output = Result<ObjectList, ClientError>> + Send {
        let q = Query {
            label_selector: query.label_selector.clone(),
            field_selector: query.field_selector.clone(),
            ..Query::default()
        };
        let page = list_page(&self.ctx, &path(kind, namespace, None, false), &q);
        async move {
            let page = page.map_err(client_error)?;
            Ok(ObjectList {
                resource_version: page.revision,
                items: page.items.iter().map(|o| o.to_value()).collect(),
            })
        }
    }

    fn watch(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
        resource_version: u64,
    ) -> impl Future<Output = Result<EventStream, ClientError>> + Send {
        let q = Query {
            watch: true,
            label_selector: query.label_selector.clone(),
            field_selector: query.field_selector.clone(),
            resource_version: Some(resource_version.to_string()),
            allow_watch_bookmarks: true,
            progress_notify: query.progress,
            ..Query::default()
        };
        let spec = WatchSpec::new(&self.ctx, &path(kind, namespace, None, false), &q, None);
        let ctx = self.ctx.clone();
        let omit = query.omit;
        async move {
            let spec = spec.map_err(client_error)?;
            // Read by the watcher itself: no task or channel between it and the cache.
            let batches = frames(ctx, spec, ValueFramer { omit });
            let stream: EventStream = Box::pin(batches.flat_map(futures::stream::iter));
            Ok(stream)
        }
    }

    fn create(
        &self,
        kind: Kind,
        object: Value,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send {
        let ctx = self.ctx.clone();
        async move {
            let ns = object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string();
            write::create_value(
                &ctx,
                kind,
                kind.namespaced().then_some(ns.as_str()),
                &Query::default(),
                object,
            )
            .await
            .map(|o| o.into_value())
            .map_err(client_error)
        }
    }

    fn patch(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: Value,
        status: bool,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send {
        let ctx = self.ctx.clone();
        let p = path(kind, Some(namespace), Some(name), status);
        async move {
            write::patch_with(&ctx, &p, &Query::default(), PatchKind::Merge(patch))
                .await
                .map(|o| o.into_value())
                .map_err(client_error)
        }
    }

    fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        let ctx = self.ctx.clone();
        let p = path(kind, Some(namespace), Some(name), false);
        async move {
            write::delete(&ctx, &p, &Query::default(), &bytes::Bytes::new())
                .await
                .map(|_| ())
                .map_err(client_error)
        }
    }

    fn delete_at(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        let ctx = self.ctx.clone();
        let p = path(kind, Some(namespace), Some(name), false);
        let options = serde_json::json!({"preconditions": {"resourceVersion": resource_version}});
        async move {
            let body = bytes::Bytes::from(options.to_string());
            write::delete(&ctx, &p, &Query::default(), &body)
                .await
                .map(|_| ())
                .map_err(client_error)
        }
    }

    fn submit_plan(
        &self,
        plan: Plan,
    ) -> impl Future<Output = Result<PlanResult, ClientError>> + Send {
        let ctx = self.ctx.clone();
        async move {
            crate::plan::submit_plan(&ctx.store, plan)
                .await
                .map_err(client_error)
        }
    }
}
