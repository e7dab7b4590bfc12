//! The watcher: list a kind, then watch it from the list's revision, forever, re-listing when the
//! revision expires and resuming when the stream ends (the kube-runtime `watcher` shape).
//!
//! ```text
//!  Empty ──list──▶ Init, InitApply…, InitDone, Progress(list rv) ──▶ InitListed ──watch──▶ Watching
//!    ▲                                                                    ▲                │
//!    │                                            stream ended ───────────┤                ├─▶ Apply / Delete
//!    │                                            other error (back off) ─┘                ├─▶ Progress (BOOKMARK)
//!    └─────────────────────── Gone (410): re-list ─────────────────────────────────────────┘
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use caravan_schemas::Kind;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use serde_json::Value;

use crate::client::{Client, ClientError, EventStream, ListQuery, WatchEvent};
use crate::object_ref::resource_version_of;

/// What a cache built from the watcher does with each event.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A (re-)list starts: start building a fresh cache.
    Init,
    /// An object present at list time.
    InitApply(Value),
    /// The list is complete: replace the cache with the one built since `Init`.
    InitDone,
    /// An object was added or modified.
    Apply(Value),
    /// An object was deleted; the value is its last state.
    Delete(Value),
    /// Every change up to this revision has been delivered (after a list, and on bookmarks).
    Progress(u64),
}

impl Event {
    /// The event's object, if it carries one.
    pub fn object(&self) -> Option<&Value> {
        match self {
            Event::InitApply(o) | Event::Apply(o) | Event::Delete(o) => Some(o),
            Event::Init | Event::InitDone | Event::Progress(_) => None,
        }
    }

    /// The event's object, mutably, if it carries one.
    pub fn object_mut(&mut self) -> Option<&mut Value> {
        match self {
            Event::InitApply(o) | Event::Apply(o) | Event::Delete(o) => Some(o),
            Event::Init | Event::InitDone | Event::Progress(_) => None,
        }
    }
}

/// Applies `f` to the object of every event of `stream` (kube-runtime's
/// `WatchStreamExt::modify`): a cache can drop fields it never reads, such as an
/// Allocation's placement metrics, before they are decoded and kept.
pub fn modify<S, E>(
    stream: S,
    mut f: impl FnMut(&mut Value),
) -> impl Stream<Item = Result<Event, E>>
where
    S: Stream<Item = Result<Event, E>>,
{
    stream.map_ok(move |mut event| {
        if let Some(object) = event.object_mut() {
            f(object);
        }
        event
    })
}

/// Where the watcher is.
enum State {
    /// Nothing listed yet, or the last revision expired: list next.
    Empty,
    /// Listed (or a watch ended): start a watch after `resource_version`.
    InitListed { resource_version: u64 },
    /// Streaming changes; `resource_version` is the last revision seen.
    Watching {
        resource_version: u64,
        stream: EventStream,
        /// Whether this stream delivered anything: one that ends at once counts as a failure.
        received: bool,
    },
}

struct Machine<C> {
    client: C,
    kind: Kind,
    namespace: Option<String>,
    query: ListQuery,
    state: State,
    /// Events produced by the last step, not yet yielded.
    pending: VecDeque<Event>,
    /// Consecutive failed steps; drives the backoff before the next one.
    failures: u32,
}

/// Lists `kind` (in `namespace`, or all namespaces) with `query`, then watches it from the list's
/// revision, forever. A `Gone` revision re-lists (a fresh `Init` … `InitDone`); an ended stream
/// resumes from the last revision seen (objects' `resourceVersion` and bookmarks); any other
/// error is yielded and retried after an exponential backoff (0.5 s doubling to 30 s).
pub fn watcher<C: Client>(
    client: C,
    kind: Kind,
    namespace: Option<String>,
    query: ListQuery,
) -> impl Stream<Item = Result<Event, ClientError>> + Send {
    let machine = Machine {
        client,
        kind,
        namespace,
        query,
        state: State::Empty,
        pending: VecDeque::new(),
        failures: 0,
    };
    stream::unfold(machine, |mut m| async move {
        loop {
            if let Some(event) = m.pending.pop_front() {
                return Some((Ok(event), m));
            }
            // Back off before requests only: an open stream is read at once.
            if m.failures > 0 && !matches!(m.state, State::Watching { .. }) {
                tokio::time::sleep(backoff(m.failures)).await;
            }
            if let Err(e) = m.step().await {
                m.failures = m.failures.saturating_add(1);
                tracing::debug!(kind = %m.kind, error = %e, failures = m.failures, "watcher step failed");
                return Some((Err(e), m));
            }
        }
    })
}

/// 0.5 s doubling up to 30 s.
pub(crate) fn backoff(failures: u32) -> Duration {
    let ms = 500u64.saturating_mul(1 << failures.saturating_sub(1).min(6));
    Duration::from_millis(ms.min(30_000))
}

impl<C: Client> Machine<C> {
    /// Advances the state machine once, queueing any events it produced.
    async fn step(&mut self) -> Result<(), ClientError> {
        match std::mem::replace(&mut self.state, State::Empty) {
            State::Empty => {
                let list = self
                    .client
                    .list(self.kind, self.namespace.as_deref(), &self.query)
                    .await?;
                tracing::debug!(kind = %self.kind, objects = list.items.len(), resource_version = list.resource_version, "listed");
                self.pending.push_back(Event::Init);
                self.pending
                    .extend(list.items.into_iter().map(Event::InitApply));
                self.pending.push_back(Event::InitDone);
                self.pending
                    .push_back(Event::Progress(list.resource_version));
                self.state = State::InitListed {
                    resource_version: list.resource_version,
                };
                self.failures = 0;
            }
            State::InitListed { resource_version } => {
                let watch = self.client.watch(
                    self.kind,
                    self.namespace.as_deref(),
                    &self.query,
                    resource_version,
                );
                match watch.await {
                    Ok(stream) => {
                        self.state = State::Watching {
                            resource_version,
                            stream,
                            received: false,
                        }
                    }
                    Err(ClientError::Gone(reason)) => {
                        tracing::debug!(kind = %self.kind, resource_version, %reason, "revision expired, re-listing");
                    }
                    Err(e) => {
                        self.state = State::InitListed { resource_version };
                        return Err(e);
                    }
                }
            }
            State::Watching {
                mut resource_version,
                mut stream,
                received,
            } => match stream.next().await {
                Some(Ok(event)) => {
                    match event {
                        WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                            resource_version = advance(resource_version, &o);
                            self.pending.push_back(Event::Apply(o));
                        }
                        WatchEvent::Deleted(o) => {
                            resource_version = advance(resource_version, &o);
                            self.pending.push_back(Event::Delete(o));
                        }
                        WatchEvent::Bookmark(rv) => {
                            resource_version = resource_version.max(rv);
                            self.pending.push_back(Event::Progress(rv));
                        }
                    }
                    self.failures = 0;
                    self.state = State::Watching {
                        resource_version,
                        stream,
                        received: true,
                    };
                }
                Some(Err(ClientError::Gone(reason))) => {
                    tracing::debug!(kind = %self.kind, resource_version, %reason, "watch expired, re-listing");
                }
                Some(Err(e)) => {
                    self.state = State::InitListed { resource_version };
                    return Err(e);
                }
                None => {
                    // A watch that ends at once, again and again, must not spin.
                    if !received {
                        self.failures = self.failures.saturating_add(1);
                    }
                    tracing::debug!(kind = %self.kind, resource_version, "watch ended, resuming");
                    self.state = State::InitListed { resource_version };
                }
            },
        }
        Ok(())
    }
}

/// The later of `current` and `object`'s `resourceVersion`.
fn advance(current: u64, object: &Value) -> u64 {
    resource_version_of(object).map_or(current, |rv| current.max(rv))
}

#[cfg(test)]
mod tests;
