//! The `Client` trait every controller, the evaluator, the broker feed and the scheduler workers
//! use to read and write objects. Two implementations: over HTTP (`caravan-client`, out of
//! process) and over the local store (in the API server process, `caravan-apiserver`).
//!
//! CONTRACT: the signatures below are shared by several modules; change them only together.

use std::future::Future;
use std::pin::Pin;

use caravan_schemas::Kind;
use futures::Stream;
use serde_json::Value;

use caravan_schemas::plan::{Plan, PlanResult};

/// Why a client call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    /// The object changed since it was read (stale resourceVersion).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The watch started from a revision older than the server's window: re-list.
    #[error("resource version too old: {0}")]
    Gone(String),
    /// The server refused the object (422, 400).
    #[error("invalid: {0}")]
    Invalid(String),
    /// Transport or server failure; worth retrying.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A page of a list: the objects and the revision they were read at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectList {
    pub resource_version: u64,
    pub items: Vec<Value>,
}

/// Selectors of a list or watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    /// Watches only: ask for a BOOKMARK after every commit that changed nothing the watch sees
    /// (Caravan's `progressNotify`), so the watcher always knows how far it is complete.
    pub progress: bool,
    /// Watches only: fields the caller drops from every object, as key paths from the top
    /// (`*` for any key). A client may leave them out while decoding an event (the in-process
    /// one does, which saves building them); the caller trims them anyway.
    pub omit: Omit,
}

/// Key paths of fields to leave out of watched objects (see [`ListQuery::omit`]).
pub type Omit = &'static [&'static [&'static str]];

/// The part of an object a write goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subresource {
    /// The object itself.
    Main,
    /// Its `status` subresource.
    Status,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    Added(Value),
    Modified(Value),
    Deleted(Value),
    /// Everything up to this revision has been delivered.
    Bookmark(u64),
}

/// A stream of watch events; an `Err(ClientError::Gone)` item means re-list.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, ClientError>> + Send>>;

/// Reads and writes Caravan objects. Objects are whole JSON objects (`apiVersion`, `kind`,
/// `metadata`, `spec`, `status`); callers convert to the typed structs of `caravan-schemas`.
/// `namespace` is ignored for cluster-scoped kinds; `None` lists all namespaces.
pub trait Client: Clone + Send + Sync + 'static {
    fn get(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send;

    fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
    ) -> impl Future<Output = Result<ObjectList, ClientError>> + Send;

    /// Every change after `resource_version` (exclusive).
    fn watch(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
        resource_version: u64,
    ) -> impl Future<Output = Result<EventStream, ClientError>> + Send;

    /// Creates an object; returns it as stored.
    fn create(
        &self,
        kind: Kind,
        object: Value,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send;

    /// JSON merge patch of an object or of its status subresource; implementations provide
    /// this, callers use [`Client::patch`] and [`Client::patch_status`].
    fn patch_subresource(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: Value,
        subresource: Subresource,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send;

    /// JSON merge patch of an object (its spec and metadata; a `status` in it is ignored for
    /// kinds with a status subresource).
    fn patch(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: Value,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send {
        self.patch_subresource(kind, namespace, name, patch, Subresource::Main)
    }

    /// JSON merge patch of an object's status subresource.
    fn patch_status(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: Value,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send {
        self.patch_subresource(kind, namespace, name, patch, Subresource::Status)
    }

    fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), ClientError>> + Send;

    /// Deletes the object only while its `resourceVersion` is `resource_version` (a
    /// `DeleteOptions` precondition): [`ClientError::Conflict`] when it changed since.
    fn delete_at(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> impl Future<Output = Result<(), ClientError>> + Send;

    /// Submits a scheduler plan to the plan applier: the feasible part is committed atomically,
    /// the rest rejected (then `PlanResult::refresh_index` is non-zero).
    fn submit_plan(
        &self,
        plan: Plan,
    ) -> impl Future<Output = Result<PlanResult, ClientError>> + Send;
}
