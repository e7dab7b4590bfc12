//! The controller runtime: a [`watcher`] (list, then watch, with recovery), a [`reflector`]
//! cache, and the [`Controller`] that turns changes into reconciles. Modelled on kube-runtime;
//! everything reads and writes through the [`Client`](crate::Client) trait, so a controller
//! runs unchanged in the API server process and out of process.
//!
//! ```text
//!  Client ─list/watch─▶ watcher ─Event─▶ reflector ─▶ Store<T>
//!                                          │
//!                                          ▼
//!                   Controller: DelayQueue ─▶ reconcile(obj, ctx) ─▶ Action
//! ```
//!
//! Every controller has one shape:
//!
//! ```ignore
//! async fn reconcile(obj: Arc<Job>, ctx: Arc<Context>) -> Result<Action, Error>;
//! fn error_policy(obj: Arc<Job>, err: &Error, ctx: Arc<Context>) -> Action;
//!
//! Controller::new(client, Kind::Job, None, ListQuery::default())
//!     .watches(Kind::Allocation, |alloc| job_of(alloc).into_iter().collect())
//!     .run(reconcile, error_policy, ctx)
//!     .for_each(|result| async move { /* log */ })
//!     .await;
//! ```

pub mod client;
pub mod controller;
pub mod eval_source;
#[cfg(any(test, feature = "testsuite"))]
pub mod fake;
pub mod object_ref;
mod queue;
pub mod reflector;
pub mod watcher;

pub use client::{Client, ClientError, EventStream, ListQuery, ObjectList, Omit, WatchEvent};
pub use controller::{Action, Controller, ControllerError};
pub use object_ref::ObjectRef;
pub use reflector::{Store, Writer, WriterDropped, reflector, store};
pub use watcher::{Event, modify, watcher};
