//! [`FakeClient`]: an in-memory [`Client`] for tests, beside the HTTP and local-store ones.
//!
//! ```text
//!  create / patch / delete / submit_plan ──▶ objects (kind, namespace, name)
//!        │ one revision per call, stamped into metadata.resourceVersion
//!        ▼
//!  change log (last `window` changes) ──▶ watch(rv): backlog after rv, then live changes
//!        └── rv older than the log ──▶ Err(Gone)
//! ```
//!
//! Tests steer it with [`FakeClient::fail_next`] (inject an error), [`FakeClient::end_watches`]
//! (a server closing streams), [`FakeClient::expire_watches`] (410 on open and older watches),
//! and read it back with [`FakeClient::calls`], [`FakeClient::plans`] and
//! [`FakeClient::objects`].

mod selector;
mod write;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use caravan_schemas::Kind;
use futures::{StreamExt, stream};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::ObjectRef;
use crate::client::{
    Client, ClientError, EventStream, ListQuery, ObjectList, Subresource, WatchEvent,
};
use caravan_schemas::plan::{Plan, PlanResult};
use selector::Selector;

/// Changes kept for watches to resume from, unless [`FakeClient::with_window`] says otherwise.
pub const DEFAULT_WINDOW: usize = 100;

/// The calls of the [`Client`] trait, for [`FakeClient::fail_next`] and [`FakeClient::calls`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Patch,
    Delete,
    SubmitPlan,
}

/// An in-memory [`Client`]. Clones share the same objects.
#[derive(Clone)]
pub struct FakeClient {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<FakeState>,
    /// Every committed change and watch control, in order, to open watch streams.
    signals: broadcast::Sender<Arc<Signal>>,
}

/// One object's change at one revision.
#[derive(Clone, Debug)]
struct Change {
    revision: u64,
    key: ObjectRef,
    old: Option<Value>,
    new: Option<Value>,
}

enum Signal {
    Change(Change),
    /// Every change of this revision has been signalled.
    Committed(u64),
    /// Open watch streams end, as when the server's watch timeout passes.
    End,
    /// Open watch streams yield `Gone` and end.
    Gone,
}

struct FakeState {
    objects: BTreeMap<ObjectRef, Value>,
    revision: u64,
    log: VecDeque<Change>,
    window: usize,
    /// Changes at or before this revision are forgotten.
    compacted: u64,
    uids: u64,
    plans: Vec<Plan>,
    failures: HashMap<Verb, VecDeque<ClientError>>,
    calls: HashMap<Verb, usize>,
    /// Per kind, how many events each watch may deliver (see `hold_watch_events`).
    held: HashMap<Kind, watch::Receiver<usize>>,
}

impl Default for FakeClient {
    fn default() -> Self {
        FakeClient::new()
    }
}

impl std::fmt::Debug for FakeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("FakeClient")
            .field("objects", &state.objects.len())
            .field("revision", &state.revision)
            .finish()
    }
}

impl FakeClient {
    /// An empty store at revision 1 that remembers the last [`DEFAULT_WINDOW`] changes.
    pub fn new() -> FakeClient {
        FakeClient::with_window(DEFAULT_WINDOW)
    }

    /// An empty store that remembers the last `window` changes for watches to resume from.
    pub fn with_window(window: usize) -> FakeClient {
        let (signals, _) = broadcast::channel(4096);
        FakeClient {
            shared: Arc::new(Shared {
                state: Mutex::new(FakeState {
                    objects: BTreeMap::new(),
                    revision: 1,
                    log: VecDeque::new(),
                    window: window.max(1),
                    compacted: 0,
                    uids: 0,
                    plans: Vec::new(),
                    failures: HashMap::new(),
                    calls: HashMap::new(),
                    held: HashMap::new(),
                }),
                signals,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A test that panicked while holding the lock left consistent data: writes are atomic.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current revision: the last write's, or 1 before any.
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// One object as stored.
    pub fn object(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&ObjectRef::new(kind, namespace, name))
            .cloned()
    }

    /// Every object of `kind`, by namespace and name.
    pub fn objects(&self, kind: Kind) -> Vec<Value> {
        self.lock()
            .objects
            .iter()
            .filter(|(key, _)| key.kind == kind)
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// Every plan submitted, in order.
    pub fn plans(&self) -> Vec<Plan> {
        self.lock().plans.clone()
    }

    /// How many times `verb` was called (failed calls included).
    pub fn calls(&self, verb: Verb) -> usize {
        self.lock().calls.get(&verb).copied().unwrap_or(0)
    }

    /// The next call of `verb` fails with `error` (errors queue up in order).
    pub fn fail_next(&self, verb: Verb, error: ClientError) {
        self.lock()
            .failures
            .entry(verb)
            .or_default()
            .push_back(error);
    }

    /// From now on each watch of `kind` delivers only as many events as the returned sender
    /// says (0 at first, `usize::MAX` for all) and holds back the rest: a watch that lags.
    pub fn hold_watch_events(&self, kind: Kind) -> watch::Sender<usize> {
        let (allowed, receiver) = watch::channel(0);
        self.lock().held.insert(kind, receiver);
        allowed
    }

    /// Watch streams currently open.
    pub fn open_watches(&self) -> usize {
        self.shared.signals.receiver_count()
    }

    /// Forgets every change so far: a watch from an older revision gets `Gone`.
    pub fn compact(&self) {
        let mut state = self.lock();
        state.log.clear();
        state.compacted = state.revision;
    }

    /// Ends every open watch stream, as a server does when a watch times out.
    pub fn end_watches(&self) {
        let _ = self.shared.signals.send(Arc::new(Signal::End));
    }

    /// Forgets every change and makes every open watch stream yield `Gone`: watchers re-list.
    pub fn expire_watches(&self) {
        self.compact();
        let _ = self.shared.signals.send(Arc::new(Signal::Gone));
    }

    /// Creates `object` as [`Client::create`] would, without the call being counted or failed;
    /// panics when it cannot (test fixtures only).
    pub fn seed(&self, kind: Kind, object: Value) -> Value {
        let mut state = self.lock();
        write::create(&mut state, &self.shared.signals, kind, object)
            .unwrap_or_else(|e| panic!("seeding a {kind} failed: {e}"))
    }

    /// Counts a call and pops the error injected for it, if any.
    fn begin(&self, verb: Verb) -> Result<MutexGuard<'_, FakeState>, ClientError> {
        let mut state = self.lock();
        *state.calls.entry(verb).or_default() += 1;
        match state.failures.get_mut(&verb).and_then(VecDeque::pop_front) {
            Some(error) => Err(error),
            None => Ok(state),
        }
    }

    fn do_watch(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
        resource_version: u64,
    ) -> Result<EventStream, ClientError> {
        let state = self.begin(Verb::Watch)?;
        let filter = Filter {
            kind,
            namespace: namespace.filter(|_| kind.namespaced()).map(str::to_owned),
            selector: Selector::parse(kind, query)?,
            progress: query.progress,
        };
        if resource_version < state.compacted {
            let gone = ClientError::Gone(format!(
                "resource version {resource_version} is older than {}",
                state.compacted
            ));
            return Ok(Box::pin(stream::iter([Err(gone)])));
        }
        let mut backlog: Vec<Result<WatchEvent, ClientError>> = state
            .log
            .iter()
            .filter(|c| c.revision > resource_version)
            .filter_map(|c| filter.event(c))
            .map(Ok)
            .collect();
        if filter.progress && state.revision > resource_version {
            backlog.push(Ok(WatchEvent::Bookmark(state.revision)));
        }
        // Subscribed under the lock: every later change reaches the stream exactly once.
        let receiver = self.shared.signals.subscribe();
        let after = resource_version.max(state.revision);
        let held = state.held.get(&kind).cloned();
        drop(state);
        let events = stream::iter(backlog).chain(live(receiver, filter, after));
        let Some(allowed) = held else {
            return Ok(Box::pin(events));
        };
        Ok(Box::pin(events.enumerate().then(move |(n, event)| {
            let mut allowed = allowed.clone();
            async move {
                let _ = allowed.wait_for(|allowed| n < *allowed).await;
                event
            }
        })))
    }
}

/// Which changes one watch sees, and as what.
struct Filter {
    kind: Kind,
    namespace: Option<String>,
    selector: Selector,
    /// A BOOKMARK at the end of every commit (`ListQuery::progress`).
    progress: bool,
}

impl Filter {
    fn event(&self, change: &Change) -> Option<WatchEvent> {
        if change.key.kind != self.kind
            || self
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != change.key.namespace)
        {
            return None;
        }
        let matches = |o: &Option<Value>| o.as_ref().is_some_and(|o| self.selector.matches(o));
        match (
            &change.old,
            &change.new,
            matches(&change.old),
            matches(&change.new),
        ) {
            (_, Some(new), false, true) => Some(WatchEvent::Added(new.clone())),
            (_, Some(new), true, true) => Some(WatchEvent::Modified(new.clone())),
            // An object leaving the selection is deleted from the watcher's point of view.
            (_, Some(new), true, false) => Some(WatchEvent::Deleted(new.clone())),
            (Some(old), None, true, _) => Some(WatchEvent::Deleted(old.clone())),
            _ => None,
        }
    }
}

/// Live changes after `after`, until the watch is ended or expired.
fn live(
    receiver: broadcast::Receiver<Arc<Signal>>,
    filter: Filter,
    after: u64,
) -> impl futures::Stream<Item = Result<WatchEvent, ClientError>> + Send {
    stream::unfold(Some((receiver, filter)), move |open| async move {
        let (mut receiver, filter) = open?;
        loop {
            let signal = match receiver.recv().await {
                Ok(signal) => signal,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let gone = ClientError::Gone("watch fell behind".into());
                    return Some((Err(gone), None));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            match &*signal {
                Signal::Change(change) if change.revision > after => {
                    if let Some(event) = filter.event(change) {
                        return Some((Ok(event), Some((receiver, filter))));
                    }
                }
                Signal::Committed(revision) if *revision > after && filter.progress => {
                    let progress = WatchEvent::Bookmark(*revision);
                    return Some((Ok(progress), Some((receiver, filter))));
                }
                Signal::Change(_) | Signal::Committed(_) => {}
                Signal::End => return None,
                Signal::Gone => {
                    let gone = ClientError::Gone("watch expired".into());
                    return Some((Err(gone), None));
                }
            }
        }
    })
}

impl Client for FakeClient {
    async fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Value, ClientError> {
        let state = self.begin(Verb::Get)?;
        state
            .objects
            .get(&ObjectRef::new(kind, namespace, name))
            .cloned()
            .ok_or(ClientError::NotFound)
    }

    async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
    ) -> Result<ObjectList, ClientError> {
        let state = self.begin(Verb::List)?;
        let selector = Selector::parse(kind, query)?;
        let namespace = namespace.filter(|_| kind.namespaced());
        let items = state
            .objects
            .iter()
            .filter(|(key, _)| key.kind == kind)
            .filter(|(key, _)| namespace.is_none_or(|ns| key.namespace == ns))
            .filter(|(_, object)| selector.matches(object))
            .map(|(_, object)| object.clone())
            .collect();
        Ok(ObjectList {
            resource_version: state.revision,
            items,
        })
    }

    async fn watch(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
        resource_version: u64,
    ) -> Result<EventStream, ClientError> {
        self.do_watch(kind, namespace, query, resource_version)
    }

    async fn create(&self, kind: Kind, object: Value) -> Result<Value, ClientError> {
        let mut state = self.begin(Verb::Create)?;
        write::create(&mut state, &self.shared.signals, kind, object)
    }

    async fn patch_subresource(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: Value,
        subresource: Subresource,
    ) -> Result<Value, ClientError> {
        let mut state = self.begin(Verb::Patch)?;
        let key = ObjectRef::new(kind, namespace, name);
        write::patch(
            &mut state,
            &self.shared.signals,
            key,
            patch,
            subresource == Subresource::Status,
        )
    }

    async fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Result<(), ClientError> {
        let mut state = self.begin(Verb::Delete)?;
        let key = ObjectRef::new(kind, namespace, name);
        write::delete(&mut state, &self.shared.signals, key, None)
    }

    async fn delete_at(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> Result<(), ClientError> {
        let mut state = self.begin(Verb::Delete)?;
        let key = ObjectRef::new(kind, namespace, name);
        write::delete(
            &mut state,
            &self.shared.signals,
            key,
            Some(resource_version),
        )
    }

    async fn submit_plan(&self, plan: Plan) -> Result<PlanResult, ClientError> {
        let mut state = self.begin(Verb::SubmitPlan)?;
        write::apply_plan(&mut state, &self.shared.signals, plan)
    }
}

/// Polls `cond` every 10 ms until it holds, failing the test after 30 s: how tests against the
/// fake wait for what background tasks do.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[cfg(test)]
mod tests;
