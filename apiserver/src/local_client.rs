//! The in-process [`Client`]: controllers running inside the server read and write through the
//! service layer (`api/`) — the same admission, preparation and watch code as HTTP clients —
//! without a socket.

use std::future::Future;
use std::sync::Arc;

use caravan_runtime::{
    Client, ClientError, EventStream, ListQuery, ObjectList, Omit, Subresource, WatchEvent,
};
use caravan_schemas::Kind;
use caravan_schemas::plan::{Plan, PlanResult};
use futures::StreamExt;
use serde_json::Value;

use crate::api::{
    self, DeleteOptions, Error, Framer, ListOptions, Patch, Preconditions, Selectors, WatchOptions,
    WatchSpec, WriteOptions,
};
use crate::context::ApiContext;
use crate::store::{EventType, StoredObject};

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

fn client_error(e: Error) -> ClientError {
    match e {
        Error::NotFound { .. } => ClientError::NotFound,
        Error::AlreadyExists { .. } => ClientError::AlreadyExists,
        Error::Conflict { message, .. } => ClientError::Conflict(message),
        Error::Invalid { .. }
        | Error::BadRequest(_)
        | Error::TooLarge { .. }
        | Error::MethodNotAllowed(_) => ClientError::Invalid(e.message()),
        Error::Gone(message) => ClientError::Gone(message),
        _ => ClientError::Unavailable(e.to_string()),
    }
}

/// The selectors of a list or watch.
fn selectors(kind: Kind, query: &ListQuery) -> Result<Selectors, ClientError> {
    Selectors::parse(
        kind,
        query.label_selector.as_deref(),
        query.field_selector.as_deref(),
    )
    .map_err(client_error)
}

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

    fn expired(&mut self, error: &Error) -> Self::Frame {
        Err(ClientError::Gone(error.message()))
    }
}

impl Client for LocalClient {
    fn get(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send {
        let found = api::get(&self.ctx, kind, namespace, name, &Default::default());
        async move { found.map(|o| o.to_value()).map_err(client_error) }
    }

    fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
    ) -> impl Future<Output = Result<ObjectList, ClientError>> + Send {
        let page = selectors(kind, query).and_then(|selectors| {
            let options = ListOptions {
                selectors,
                ..ListOptions::default()
            };
            api::list(&self.ctx, kind, namespace, &options).map_err(client_error)
        });
        async move {
            let page = page?;
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
        let spec = selectors(kind, query).map(|selectors| {
            let options = WatchOptions {
                selectors,
                resource_version: (resource_version != 0).then_some(resource_version),
                allow_bookmarks: true,
                progress_notify: query.progress,
                ..WatchOptions::default()
            };
            WatchSpec::new(&self.ctx, kind, namespace, options)
        });
        let ctx = self.ctx.clone();
        let omit = query.omit;
        async move {
            let spec = spec?;
            // Read by the watcher itself: no task or channel between it and the cache.
            let batches = api::frames(ctx, spec, ValueFramer { omit });
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
            api::create(&ctx, kind, &ns, object, &WriteOptions::default())
                .await
                .map(|o| o.into_value())
                .map_err(client_error)
        }
    }

    fn patch_subresource(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: Value,
        subresource: Subresource,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send {
        let ctx = self.ctx.clone();
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        async move {
            let patch = Patch::Merge(patch);
            let options = WriteOptions::default();
            api::patch(&ctx, kind, &namespace, &name, subresource, patch, &options)
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
        self.delete_with(kind, namespace, name, Ok(DeleteOptions::default()))
    }

    fn delete_at(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        let options =
            Preconditions::parse_resource_version(Some(resource_version)).map(|resource_version| {
                DeleteOptions {
                    preconditions: Preconditions {
                        resource_version,
                        ..Preconditions::default()
                    },
                    ..DeleteOptions::default()
                }
            });
        self.delete_with(kind, namespace, name, options)
    }

    fn submit_plan(
        &self,
        plan: Plan,
    ) -> impl Future<Output = Result<PlanResult, ClientError>> + Send {
        let ctx = self.ctx.clone();
        async move { api::submit_plan(&ctx, plan).await.map_err(client_error) }
    }
}

impl LocalClient {
    /// Deletes with `options`, or fails with the error that made them.
    fn delete_with(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        options: Result<DeleteOptions, Error>,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        let ctx = self.ctx.clone();
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        async move {
            let options = options.map_err(client_error)?;
            api::delete(&ctx, kind, &namespace, &name, &options)
                .await
                .map(|_| ())
                .map_err(client_error)
        }
    }
}
