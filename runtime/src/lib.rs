//! # caravan-runtime: write Caravan controllers
//!
//! The controller runtime of [Caravan](https://github.com/caravan-dev/caravan), modelled on
//! kube-runtime. The server's job controller and the caches its scheduler reads are built on
//! it, and so are yours: a program that watches Caravan objects and keeps something in line
//! with them — labels, annotations, other objects, or things outside the cluster.
//!
//! - [`Client`]: reads and writes whole JSON objects (get, list, watch, create, merge patch of
//!   an object or its status, delete). `caravan_client::HttpClient` implements it over HTTP,
//!   the server's local client in its own process, and `fake::FakeClient` in memory, for tests.
//! - [`watcher()`]: a stream of changes of one kind (list, then watch; resumes after a dropped
//!   stream, re-lists after a 410, backs off on errors). [`reflector()`] keeps a [`Store`]
//!   (a cache) from it.
//! - [`Controller`]: the loop that turns those changes into calls of your `reconcile`.
//!
//! ## The one shape of a controller
//!
//! ```text
//! async fn reconcile(object: Arc<T>, ctx: Arc<Ctx>) -> Result<Action, E>;
//! fn error_policy(object: Arc<T>, error: &E, ctx: Arc<Ctx>) -> Action;
//!
//! Controller::<T, _>::new(client, Kind::X, namespace, ListQuery::default())
//!     .watches(Kind::Y, |y| /* the X objects a change of y concerns */)   // optional
//!     .run(reconcile, error_policy, Arc::new(ctx))                         // a Stream
//! ```
//!
//! - `T` is the typed object (`caravan_schemas::Node`, `Job`, … or your own `Deserialize`
//!   struct); `Ctx` is whatever reconciles share: the client, caches, settings.
//! - `reconcile` gets the object as it is now and brings the world in line with it. It must be
//!   *level-based* and idempotent: it may run any number of times, for changes it never saw
//!   one by one, so it looks at the current state and writes only what differs (its own write
//!   comes back as a change and triggers one more reconcile, which must find nothing to do).
//!   It returns [`Action::await_change()`] (run again when the object, or a watched related
//!   object, changes) or [`Action::requeue`] (also run again after a delay).
//! - `error_policy` decides when a failed reconcile runs again, usually
//!   `Action::requeue(some delay)`; the error is also yielded by the stream.
//! - One object is never reconciled twice at once; up to [`Controller::concurrency`] objects
//!   are. A deleted object is reconciled once more with the last state seen, and no longer in
//!   [`Controller::store`]: that is how `reconcile` tells.
//! - `run` returns a stream of finished reconciles and errors. Nothing happens unless it is
//!   polled; dropping it stops the controller. Watch errors are reported and retried on their
//!   own; neither they nor failed reconciles end the stream.
//!
//! ## Running against a server
//!
//! Out of the server process a controller talks HTTP through `caravan_client::HttpClient`
//! (crate `caravan-client`): give it the server's address, as `caravan --address` takes it.
//! This one keeps every node labelled with its state (`example.caravan.dev/state=ready`), so
//! that `caravan get nodes -l example.caravan.dev/state=ready` lists the ready ones:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use caravan_client::HttpClient;
//! use caravan_runtime::{Action, Client, ClientError, Controller, ListQuery};
//! use caravan_schemas::{Kind, Node};
//! use futures::StreamExt;
//! use serde_json::json;
//!
//! const LABEL: &str = "example.caravan.dev/state";
//!
//! /// What every reconcile shares.
//! struct Ctx<C> {
//!     client: C,
//! }
//!
//! /// Generic over the client: `HttpClient` in the program, `FakeClient` in its tests.
//! async fn reconcile<C: Client>(
//!     node: Arc<Node>,
//!     ctx: Arc<Ctx<C>>,
//! ) -> Result<Action, ClientError> {
//!     let name = node.metadata.name();
//!     let Some(status) = &node.status else {
//!         return Ok(Action::await_change()); // not fingerprinted yet
//!     };
//!     let state = json!(status.status); // "ready", "down", …
//!     if node.metadata.labels.get(LABEL).map(String::as_str) == state.as_str() {
//!         return Ok(Action::await_change()); // already right: write nothing
//!     }
//!     // A JSON merge patch: only this label changes.
//!     let patch = json!({"metadata": {"labels": {LABEL: state}}});
//!     match ctx.client.patch(Kind::Node, "", name, patch).await {
//!         // NotFound: deleted meanwhile, nothing left to label.
//!         Ok(_) | Err(ClientError::NotFound) => Ok(Action::await_change()),
//!         Err(error) => Err(error),
//!     }
//! }
//!
//! fn error_policy<C: Client>(node: Arc<Node>, error: &ClientError, _: Arc<Ctx<C>>) -> Action {
//!     eprintln!("labelling node {} failed: {error}", node.metadata.name());
//!     Action::requeue(Duration::from_secs(5))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // As the CLI: $CARAVAN_ADDR, else http://127.0.0.1:4646.
//!     let address = std::env::var("CARAVAN_ADDR");
//!     let address = address.as_deref().unwrap_or(caravan_client::DEFAULT_ADDRESS);
//!     let client = HttpClient::new(address)?;
//!     let ctx = Arc::new(Ctx { client: client.clone() });
//!     Controller::<Node, _>::new(client, Kind::Node, None, ListQuery::default())
//!         .run(reconcile, error_policy, ctx)
//!         .for_each(|result| async move {
//!             match result {
//!                 Ok((node, _action)) => println!("reconciled {node}"),
//!                 Err(error) => eprintln!("{error}"), // retried on its own
//!             }
//!         })
//!         .await;
//!     Ok(())
//! }
//! ```
//!
//! A complete program with flags and logging is the `node_labeler` example
//! (`runtime/examples/node_labeler.rs`): it labels every node with its healthy task drivers.
//! Run it next to a dev agent:
//!
//! ```text
//! caravan agent --dev
//! cargo run -p caravan-runtime --example node_labeler -- --server http://127.0.0.1:4646
//! caravan get nodes -l driver.example.caravan.dev/raw_exec=true
//! ```
//!
//! ## Testing with `FakeClient`
//!
//! `fake::FakeClient` is an in-memory server: objects, revisions, watches (with the server's
//! label and field selector grammar), merge patches of objects and of their status. Seed it,
//! run the controller on a task, change objects, and wait for what the controller does. Tests
//! can also inject errors (`fail_next`), end or expire watches, and count calls (`calls`). It
//! needs the `testsuite` feature:
//!
//! ```toml
//! [dev-dependencies]
//! caravan-runtime = { path = "…/runtime", features = ["testsuite"] }
//! ```
//!
//! The controller above, tested. In a crate of yours this is a
//! `#[tokio::test(start_paused = true)]` (paused time: the 5 s retry takes no time):
//!
//! ```
//! # use std::sync::Arc;
//! # use std::time::Duration;
//! # use caravan_runtime::{Action, Client, ClientError, Controller};
//! # use caravan_schemas::{Kind, Node};
//! # use futures::StreamExt;
//! # use serde_json::json;
//! # const LABEL: &str = "example.caravan.dev/state";
//! # struct Ctx<C> { client: C }
//! # async fn reconcile<C: Client>(
//! #     node: Arc<Node>,
//! #     ctx: Arc<Ctx<C>>,
//! # ) -> Result<Action, ClientError> {
//! #     let name = node.metadata.name();
//! #     let Some(status) = &node.status else { return Ok(Action::await_change()) };
//! #     let state = json!(status.status);
//! #     if node.metadata.labels.get(LABEL).map(String::as_str) == state.as_str() {
//! #         return Ok(Action::await_change());
//! #     }
//! #     let patch = json!({"metadata": {"labels": {LABEL: state}}});
//! #     match ctx.client.patch(Kind::Node, "", name, patch).await {
//! #         Ok(_) | Err(ClientError::NotFound) => Ok(Action::await_change()),
//! #         Err(error) => Err(error),
//! #     }
//! # }
//! # fn error_policy<C: Client>(_: Arc<Node>, _: &ClientError, _: Arc<Ctx<C>>) -> Action {
//! #     Action::requeue(Duration::from_secs(5))
//! # }
//! use caravan_runtime::fake::{FakeClient, Verb, wait_for};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let fake = FakeClient::new();
//! fake.seed(Kind::Node, json!({"metadata": {"name": "n1"}, "status": {"status": "ready"}}));
//! // The first patch fails, as with a server restarting: the error policy retries it.
//! fake.fail_next(Verb::Patch, ClientError::Unavailable("server restarting".into()));
//! let ctx = Arc::new(Ctx { client: fake.clone() });
//! let controller = Controller::<Node, _>::new(fake.clone(), Kind::Node, None, Default::default());
//! tokio::spawn(controller.run(reconcile, error_policy, ctx).for_each(|_| async {}));
//!
//! let state_label = |fake: &FakeClient| {
//!     let node = fake.object(Kind::Node, "", "n1").unwrap();
//!     node["metadata"]["labels"][LABEL].as_str().map(str::to_owned)
//! };
//! wait_for("n1 is labelled ready", || state_label(&fake).as_deref() == Some("ready")).await;
//! assert_eq!(fake.calls(Verb::Patch), 2, "a failed patch and its retry");
//!
//! // The node goes down: the label follows.
//! fake.patch_status(Kind::Node, "", "n1", json!({"status": {"status": "down"}})).await.unwrap();
//! wait_for("n1 is labelled down", || state_label(&fake).as_deref() == Some("down")).await;
//! # }
//! ```
//!
//! ## Inside
//!
//! ```text
//!  Client ─list/watch─▶ watcher ─Event─▶ reflector ─▶ Store<T>
//!                                          │
//!                                          ▼
//!                   Controller: DelayQueue ─▶ reconcile(obj, ctx) ─▶ Action
//! ```
//!
//! Modules: [`client`] (the trait), [`watcher`](mod@watcher), [`reflector`](mod@reflector),
//! [`controller`], [`object_ref`] (the keys a controller queues), [`eval_source`] (the
//! evaluations the scheduler workers take), `fake` (with the `testsuite` feature).

pub mod client;
pub mod controller;
pub mod eval_source;
#[cfg(any(test, feature = "testsuite"))]
pub mod fake;
pub mod object_ref;
mod queue;
pub mod reflector;
pub mod watcher;

pub use client::{
    Client, ClientError, EventStream, ListQuery, ObjectList, Omit, Subresource, WatchEvent,
};
pub use controller::{Action, Controller, ControllerError};
pub use object_ref::ObjectRef;
pub use reflector::{Store, Writer, WriterDropped, reflector, store};
pub use watcher::{Event, modify, watcher};
