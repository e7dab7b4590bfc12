//! The controller: the one shape every Caravan controller has (kube-runtime's
//! `controller/mod.rs`). A watcher and reflector keep a cache of the main kind; changes to it,
//! and to related kinds mapped through [`Controller::watches`], queue the object's key; a
//! bounded pool reconciles due keys, never two of one key at once, and requeues by [`Action`].
//!
//! ```text
//!  watcher(main) ─▶ reflector ─▶ Store ──────────────┐ get(key)
//!        │ Apply / Delete / re-list                   ▼
//!        ├──────────────▶ DelayQueue (one entry per key) ──due──▶ reconcile(obj, ctx)  ≤ N at once
//!  watcher(other) ─mapper─┘        ▲                                  │ Ok(Action) / Err → error_policy
//!                                  └──── requeue(d) / changed while running ◀┘
//! ```
//!
//! Deleted objects are reconciled too: the reconciler gets the last state the watch saw, and the
//! store no longer holds the object, which is how it tells. That last state is kept until a
//! reconcile of it returns `Ok(Action::await_change())`, or the object comes back.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use caravan_schemas::Kind;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesUnordered, SelectAll};
use futures::{FutureExt, Stream, StreamExt, stream};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use crate::ObjectRef;
use crate::client::{Client, ClientError, ListQuery};
use crate::queue::DelayQueue;
use crate::reflector::{self, Store, decode, reflector};
use crate::watcher::{Event, watcher};

/// Reconciles running at once unless [`Controller::concurrency`] says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// What to do after a reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile again after `duration`, even if nothing changes (sooner if something does).
    pub fn requeue(duration: Duration) -> Action {
        Action {
            requeue_after: Some(duration),
        }
    }

    /// Reconcile again only when the object, or a watched related object, changes.
    pub fn await_change() -> Action {
        Action {
            requeue_after: None,
        }
    }

    /// The requeue delay, if any.
    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// What a controller's stream reports besides successful reconciles. Neither stops it.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError<E: std::error::Error + 'static> {
    /// The reconciler failed; the error policy decided when to retry.
    #[error("reconcile of {object} failed")]
    ReconcileFailed {
        object: ObjectRef,
        #[source]
        source: E,
    },
    /// A watch failed; the watcher retries on its own after a backoff.
    #[error("watch of {kind} failed")]
    WatchFailed {
        kind: Kind,
        #[source]
        source: ClientError,
    },
}

/// Something that may queue keys.
enum Input {
    Main(Result<Event, ClientError>),
    Related(Kind, Result<Vec<ObjectRef>, ClientError>),
}

/// A controller of objects of one kind, decoded as `T`, read through client `C`.
pub struct Controller<T, C> {
    client: C,
    kind: Kind,
    namespace: Option<String>,
    store: Store<T>,
    inputs: Vec<BoxStream<'static, Input>>,
    concurrency: usize,
}

impl<T, C> std::fmt::Debug for Controller<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("kind", &self.kind)
            .field("namespace", &self.namespace)
            .field("watches", &self.inputs.len())
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl<T, C> Controller<T, C>
where
    T: DeserializeOwned + Send + Sync + 'static,
    C: Client,
{
    /// A controller of `kind` objects in `namespace` (`None`: all) selected by `query`.
    pub fn new(client: C, kind: Kind, namespace: Option<String>, query: ListQuery) -> Self {
        let (store, writer) = reflector::store();
        let main = reflector(
            writer,
            watcher(client.clone(), kind, namespace.clone(), query),
        );
        Controller {
            client,
            kind,
            namespace,
            store,
            inputs: vec![main.map(Input::Main).boxed()],
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// Also reconciles the objects `mapper` names whenever an object of `kind` (in the
    /// controller's namespace) changes, e.g. an allocation → its job. References to other kinds
    /// than the controller's are ignored.
    pub fn watches<F>(self, kind: Kind, mapper: F) -> Self
    where
        F: Fn(&Value) -> Vec<ObjectRef> + Send + 'static,
    {
        let namespace = self.namespace.clone();
        self.watches_with(kind, namespace, ListQuery::default(), mapper)
    }

    /// [`Controller::watches`] with its own namespace and selectors.
    pub fn watches_with<F>(
        mut self,
        kind: Kind,
        namespace: Option<String>,
        query: ListQuery,
        mapper: F,
    ) -> Self
    where
        F: Fn(&Value) -> Vec<ObjectRef> + Send + 'static,
    {
        let related = watcher(self.client.clone(), kind, namespace, query).map(move |event| {
            let refs = event.map(|event| event.object().map(&mapper).unwrap_or_default());
            Input::Related(kind, refs)
        });
        self.inputs.push(related.boxed());
        self
    }

    /// Reconciles the objects each item of `refs` names, triggered by changes of `kind`
    /// objects that come from somewhere other than a watch of the controller's own (e.g. the
    /// feed of a cache another part of the program already keeps), so the same objects are not
    /// watched and decoded twice.
    pub fn triggered_by<S>(mut self, kind: Kind, refs: S) -> Self
    where
        S: Stream<Item = Vec<ObjectRef>> + Send + 'static,
    {
        self.inputs
            .push(refs.map(move |refs| Input::Related(kind, Ok(refs))).boxed());
        self
    }

    /// At most `n` reconciles at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// A reader of the main kind's cache.
    pub fn store(&self) -> Store<T> {
        self.store.clone()
    }

    /// Runs the controller: a stream of finished reconciles (the object and the action taken)
    /// and errors, which runs as long as it is polled and stops when dropped (in-flight
    /// reconciles are dropped with it). Reconciles run concurrently on the polling task.
    pub fn run<Ctx, E, R, Fut, P>(
        self,
        reconcile: R,
        error_policy: P,
        ctx: Arc<Ctx>,
    ) -> impl Stream<Item = Result<(ObjectRef, Action), ControllerError<E>>> + Send
    where
        Ctx: Send + Sync + 'static,
        E: std::error::Error + Send + 'static,
        R: FnMut(Arc<T>, Arc<Ctx>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        P: FnMut(Arc<T>, &E, Arc<Ctx>) -> Action + Send + 'static,
    {
        let runner = Runner {
            kind: self.kind,
            store: self.store,
            inputs: stream::select_all(self.inputs),
            inputs_done: false,
            queue: DelayQueue::default(),
            running: HashSet::new(),
            dirty: HashSet::new(),
            in_flight: FuturesUnordered::new(),
            tombstones: HashMap::new(),
            before_relist: None,
            reconcile,
            error_policy,
            ctx,
            concurrency: self.concurrency,
        };
        stream::unfold(runner, |mut r| async move {
            loop {
                let can_start =
                    r.store.is_ready() && r.in_flight.len() < r.concurrency && !r.queue.is_empty();
                tokio::select! {
                    biased;
                    Some(done) = r.in_flight.next(), if !r.in_flight.is_empty() => {
                        let item = r.finish(done);
                        return Some((item, r));
                    }
                    // Due keys before new input, so a stream of changes cannot starve them.
                    key = r.queue.next_due(), if can_start => r.start(key),
                    input = r.inputs.next(), if !r.inputs_done => match input {
                        Some(input) => {
                            if let Some(error) = r.take(input) {
                                return Some((Err(error), r));
                            }
                        }
                        None => r.inputs_done = true,
                    },
                    else => return None,
                }
            }
        })
    }
}

/// A reconcile that finished.
struct Done<T, E> {
    key: ObjectRef,
    object: Arc<T>,
    result: Result<Action, E>,
}

/// The state of a running controller.
struct Runner<T, Ctx, E, R, P> {
    kind: Kind,
    store: Store<T>,
    inputs: SelectAll<BoxStream<'static, Input>>,
    inputs_done: bool,
    queue: DelayQueue<ObjectRef>,
    /// Keys being reconciled.
    running: HashSet<ObjectRef>,
    /// Keys that became due while being reconciled: queued again when that finishes.
    dirty: HashSet<ObjectRef>,
    in_flight: FuturesUnordered<BoxFuture<'static, Done<T, E>>>,
    /// The last state of deleted objects, until reconciled.
    tombstones: HashMap<ObjectRef, Arc<T>>,
    /// The store's contents when a re-list started, to find what vanished meanwhile.
    before_relist: Option<Vec<(ObjectRef, Arc<T>)>>,
    reconcile: R,
    error_policy: P,
    ctx: Arc<Ctx>,
    concurrency: usize,
}

impl<T, Ctx, E, R, Fut, P> Runner<T, Ctx, E, R, P>
where
    T: DeserializeOwned + Send + Sync + 'static,
    Ctx: Send + Sync + 'static,
    E: std::error::Error + Send + 'static,
    R: FnMut(Arc<T>, Arc<Ctx>) -> Fut,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    P: FnMut(Arc<T>, &E, Arc<Ctx>) -> Action,
{
    fn now(&mut self, key: ObjectRef) {
        self.queue.schedule(key, Instant::now());
    }

    /// Queues what an input names; returns a watch error to report.
    fn take(&mut self, input: Input) -> Option<ControllerError<E>> {
        match input {
            Input::Main(Ok(event)) => self.take_event(event),
            Input::Related(_, Ok(refs)) => {
                for key in refs {
                    if key.kind == self.kind {
                        self.now(key);
                    } else {
                        tracing::debug!(object = %key, controller = %self.kind, "ignoring a reference to another kind");
                    }
                }
            }
            Input::Main(Err(source)) => {
                let kind = self.kind;
                return Some(ControllerError::WatchFailed { kind, source });
            }
            Input::Related(kind, Err(source)) => {
                return Some(ControllerError::WatchFailed { kind, source });
            }
        }
        None
    }

    /// Queues the keys a main-kind event touches; the reflector has already applied it.
    fn take_event(&mut self, event: Event) {
        let kind = self.kind;
        let key_of = |object: &Value| ObjectRef::from_object(kind, object);
        match event {
            Event::Init => self.before_relist = Some(self.entries()),
            // The store swaps the listed objects in at InitDone, which queues them all.
            Event::InitApply(_) | Event::Progress(_) => {}
            Event::InitDone => {
                let listed = self.entries();
                let present: HashSet<&ObjectRef> = listed.iter().map(|(key, _)| key).collect();
                for (key, object) in self.before_relist.take().unwrap_or_default() {
                    if !present.contains(&key) {
                        self.tombstones.insert(key.clone(), object);
                        self.queue.schedule(key, Instant::now());
                    }
                }
                for (key, _) in listed {
                    self.tombstones.remove(&key);
                    self.now(key);
                }
            }
            Event::Apply(object) => {
                if let Some(key) = key_of(&object) {
                    self.tombstones.remove(&key);
                    self.now(key);
                }
            }
            Event::Delete(object) => {
                if let Some(((namespace, name), typed)) = decode::<T>(&object) {
                    let key = ObjectRef::new(self.kind, &namespace, &name);
                    self.tombstones.insert(key.clone(), typed);
                    self.now(key);
                }
            }
        }
    }

    fn entries(&self) -> Vec<(ObjectRef, Arc<T>)> {
        self.store
            .entries()
            .into_iter()
            .map(|((namespace, name), object)| {
                (ObjectRef::new(self.kind, &namespace, &name), object)
            })
            .collect()
    }

    /// Starts reconciling a due key, unless it is already running (then it runs again after).
    fn start(&mut self, key: ObjectRef) {
        if self.running.contains(&key) {
            self.dirty.insert(key);
            return;
        }
        let object = self
            .store
            .get(&key.namespace, &key.name)
            .or_else(|| self.tombstones.get(&key).cloned());
        let Some(object) = object else {
            tracing::debug!(object = %key, "nothing to reconcile: not in the cache");
            return;
        };
        tracing::debug!(object = %key, "reconciling");
        let reconcile = (self.reconcile)(object.clone(), self.ctx.clone());
        self.running.insert(key.clone());
        self.in_flight.push(
            async move {
                let result = reconcile.await;
                Done {
                    key,
                    object,
                    result,
                }
            }
            .boxed(),
        );
    }

    /// Records a finished reconcile, queues it again as its action says, and reports it.
    fn finish(&mut self, done: Done<T, E>) -> Result<(ObjectRef, Action), ControllerError<E>> {
        let Done {
            key,
            object,
            result,
        } = done;
        self.running.remove(&key);
        let action = match &result {
            Ok(action) => *action,
            Err(error) => (self.error_policy)(object, error, self.ctx.clone()),
        };
        let changed = self.dirty.remove(&key);
        if result.is_ok() && action.requeue_after().is_none() && !changed {
            self.tombstones.remove(&key);
        }
        if let Some(delay) = action.requeue_after() {
            self.queue.schedule(key.clone(), Instant::now() + delay);
        }
        if changed {
            self.now(key.clone());
        }
        match result {
            Ok(action) => {
                tracing::debug!(object = %key, requeue_after = ?action.requeue_after(), "reconciled");
                Ok((key, action))
            }
            Err(source) => {
                tracing::debug!(object = %key, error = %source, requeue_after = ?action.requeue_after(), "reconcile failed");
                Err(ControllerError::ReconcileFailed {
                    object: key,
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
