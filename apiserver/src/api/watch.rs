//! Watch: each watcher reads the watch cache through its own stream of batches ([`frames`]),
//! framed by whoever serves it (`http::watch` as JSON lines or WebSocket messages, the
//! in-process client as decoded events).
//!
//! ```text
//! WatchCache ──events_after(rv)──▶ frames (filter, Framer) ──▶ chunked body | WebSocket
//!                                                                  | in-process client
//!      ▲ wait_for_kind(rv)              │ BOOKMARK timer, timeout, Gone on a too-old rv
//!
//! A field selector pinning an indexed field (`spec.nodeName=n1`) reads and waits on that
//! value's events only (`events_after_value`, `wait_for_value`).
//! ```
//!
//! A watcher that does not read costs bounded memory: the stream makes a batch only when the
//! connection asks for one, and a batch stops at `BATCH_BYTES` of frames. The initial state
//! (no `resourceVersion`, or `sendInitialEvents`) is the list of the objects (shared with the
//! state, not copied) framed a batch at a time (`initial.rs`); events are read from the cache
//! a batch at a time, so a watcher that fell behind by more than the cache's window gets
//! [`Error::Gone`] (a 410 `Expired` `ERROR` event over HTTP) instead of its backlog. A
//! resourceVersion the server has not reached yet is waited for up to
//! `FUTURE_RESOURCE_VERSION_WAIT`, then answered with
//! [`Error::ResourceVersionTooLarge`] (Kubernetes' 504 `Too large resource version`).

mod initial;

use std::sync::Arc;
use std::time::Duration;

use caravan_schemas::Kind;
use caravan_schemas::limits::{MAX_OBJECT_BYTES, MAX_WATCH_BUFFER_BYTES, WATCH_BATCH_BYTES};

use super::error::Error;
use super::options::WatchOptions;
use super::selector::Selectors;
use crate::context::ApiContext;
use crate::store::WatchCache;
use crate::store::object::INDEXED_FIELDS;
use crate::store::watch_cache::Field;
use crate::store::{Change, EventType, StoredObject};
use initial::InitialObjects;

/// A batch of frames stops growing past this many bytes of objects.
pub(crate) const BATCH_BYTES: usize = WATCH_BATCH_BYTES;

// A batch, with the one object that took it past `BATCH_BYTES`, fits in what a watcher may
// have waiting.
const _: () = assert!(BATCH_BYTES + MAX_OBJECT_BYTES + 1024 <= MAX_WATCH_BUFFER_BYTES);

/// Events read from the cache at once.
const EVENTS_PER_READ: usize = 1024;

/// How long a watch from a resourceVersion the server has not reached waits for it
/// (Kubernetes waits 3 s too).
pub(crate) const FUTURE_RESOURCE_VERSION_WAIT: Duration = Duration::from_secs(3);

/// The bytes a frame of `obj` takes, about.
fn frame_bytes(obj: &StoredObject) -> usize {
    obj.json.len() + 32
}

/// Everything a watch's stream needs, resolved from the call.
pub struct WatchSpec {
    kind: Kind,
    namespace: Option<String>,
    selectors: Selectors,
    /// An indexed field the field selector pins to one value: the watch reads that value's
    /// events only.
    value: Option<(Field, String)>,
    /// Start from the current state (ADDED for every object) instead of a revision.
    initial_state: bool,
    /// End the initial state with the `k8s.io/initial-events-end` BOOKMARK.
    initial_events_end: bool,
    from: u64,
    bookmarks: bool,
    bookmark_interval: Duration,
    /// A BOOKMARK as soon as the revision moves past what the watcher was last told.
    progress: bool,
    timeout: Duration,
}

impl WatchSpec {
    /// A watch of `kind` in `namespace` (`None`: every namespace).
    pub fn new(
        ctx: &ApiContext,
        kind: Kind,
        namespace: Option<&str>,
        options: WatchOptions,
    ) -> WatchSpec {
        let selectors = options.selectors;
        let rv = options.resource_version;
        let value = INDEXED_FIELDS
            .iter()
            .filter(|(k, _)| *k == kind)
            .find_map(|&field| Some((field, selectors.fields.equality(field.1)?.to_owned())));
        let initial_state = options.send_initial_events || rv.is_none();
        let max = ctx.config.max_watch_timeout;
        WatchSpec {
            kind,
            namespace: namespace.filter(|_| kind.namespaced()).map(str::to_owned),
            selectors,
            value,
            initial_state,
            initial_events_end: options.send_initial_events,
            from: rv.unwrap_or(0),
            bookmarks: options.allow_bookmarks || options.progress_notify,
            bookmark_interval: ctx.config.bookmark_interval,
            progress: options.progress_notify,
            timeout: options.timeout.unwrap_or(max).min(max),
        }
    }

    /// The kind watched.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    fn in_scope(&self, obj: &StoredObject) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| obj.key.namespace == ns)
            && self.selectors.matches(obj)
    }
}

/// The framed events of a watch, batch by batch (each of at most about `BATCH_BYTES`),
/// until the timeout or a revision that fell out of the window (an `expired` frame ends it).
/// Every watcher reads this stream itself: no task and no channel per watcher between the
/// cache and the connection, and nothing is framed before the connection asks for it.
pub fn frames<F: Framer>(
    ctx: Arc<ApiContext>,
    spec: WatchSpec,
    framer: F,
) -> impl futures::Stream<Item = Vec<F::Frame>> + Send + 'static {
    let now = tokio::time::Instant::now();
    let watch = Watch {
        cache: ctx.store.watch_cache().clone(),
        watcher: WatcherGuard::new(ctx),
        cursor: spec.from,
        sent_of_next: 0,
        told: spec.from,
        deadline: now + spec.timeout,
        next_bookmark: now + spec.bookmark_interval,
        spec,
        framer,
        phase: Phase::Start,
    };
    futures::stream::unfold(watch, |mut watch| async move {
        let batch = watch.next_batch().await?;
        Some((batch, watch))
    })
}

/// Where a watch is.
enum Phase {
    /// Nothing sent yet.
    Start,
    /// Sending the initial state: `objects` (maybe out of scope) a batch at a time.
    Initial {
        objects: InitialObjects,
        revision: u64,
    },
    /// Sending events after `cursor`.
    Events,
    Done,
}

/// The state of one watch between batches.
struct Watch<F> {
    /// The server, counted as watched while the watch lasts.
    watcher: WatcherGuard,
    cache: Arc<WatchCache>,
    spec: WatchSpec,
    framer: F,
    /// Every event up to this revision was sent.
    cursor: u64,
    /// How many events of the first revision after `cursor` were sent: a batch may end
    /// inside the events of one log entry.
    sent_of_next: usize,
    /// The revision the watcher knows it is complete up to.
    told: u64,
    deadline: tokio::time::Instant,
    next_bookmark: tokio::time::Instant,
    phase: Phase,
}

impl<F: Framer> Watch<F> {
    /// The next non-empty batch of frames; `None` once the watch is over.
    async fn next_batch(&mut self) -> Option<Vec<F::Frame>> {
        loop {
            match &mut self.phase {
                Phase::Done => return None,
                Phase::Start => {
                    let start = wait_for_start(&self.cache, self.spec.from, self.deadline);
                    if let Err(error) = start.await {
                        self.phase = Phase::Done;
                        return Some(vec![self.framer.expired(&error)]);
                    }
                    self.phase = if self.spec.initial_state {
                        self.initial_state()
                    } else {
                        Phase::Events
                    };
                }
                Phase::Initial { .. } => {
                    let frames = self.initial_batch();
                    if !frames.is_empty() {
                        return Some(frames);
                    }
                }
                Phase::Events => return self.events_batch().await,
            }
        }
    }

    /// The objects in scope now, to send as ADDED a batch at a time: the list shares the
    /// objects with the state (a pointer each), nothing is framed yet. The watch goes on from
    /// the state's revision.
    fn initial_state(&mut self) -> Phase {
        let spec = &self.spec;
        let state = self.watcher.0.store.state();
        let indexed = spec.value.as_ref().and_then(|((kind, field), value)| {
            state.list_by_field(*kind, field, value, spec.namespace.as_deref())
        });
        let objects = match indexed {
            Some(objects) => InitialObjects::Listed { objects, next: 0 },
            // The kind's whole map, shared with the state: O(1), however many objects.
            None => InitialObjects::Snapshot {
                objects: state.objects_of(spec.kind),
                namespace: spec.namespace.clone(),
                after: None,
            },
        };
        let revision = state.revision();
        drop(state);
        self.cursor = revision;
        self.told = revision;
        Phase::Initial { objects, revision }
    }

    /// The next batch of the initial state; at its end, the initial-events-end BOOKMARK (when
    /// asked) and the switch to events.
    fn initial_batch(&mut self) -> Vec<F::Frame> {
        let Phase::Initial { objects, revision } = &mut self.phase else {
            return Vec::new();
        };
        let mut frames = Vec::new();
        let mut bytes = 0;
        let spec = &self.spec;
        let framer = &mut self.framer;
        let finished = objects.take_while_under(BATCH_BYTES, |object| {
            if !spec.in_scope(object) {
                return 0;
            }
            frames.push(framer.event(EventType::Added, object));
            bytes += frame_bytes(object);
            bytes
        });
        if finished {
            let revision = *revision;
            if self.spec.initial_events_end {
                frames.push(self.framer.bookmark(self.spec.kind, revision, true));
            }
            self.phase = Phase::Events;
        }
        frames
    }

    /// The next batch of events (or BOOKMARKs); `None` once the watch is over.
    async fn events_batch(&mut self) -> Option<Vec<F::Frame>> {
        let (spec, cache) = (&self.spec, &self.cache);
        loop {
            let seen = cache.revision();
            let read = EVENTS_PER_READ + self.sent_of_next;
            let events = match &spec.value {
                Some((field, value)) => cache.events_after_value(*field, value, self.cursor, read),
                None => cache.events_after(spec.kind, self.cursor, read),
            };
            let events = match events {
                Ok(events) => events,
                Err(too_old) => {
                    let error = Error::Gone(format!(
                        "too old resource version: {} ({})",
                        too_old.requested, too_old.oldest
                    ));
                    self.phase = Phase::Done;
                    return Some(vec![self.framer.expired(&error)]);
                }
            };
            // Frame from where the last batch stopped, until the batch is full.
            let mut frames: Vec<F::Frame> = Vec::new();
            let mut bytes = 0;
            let mut end = self.sent_of_next.min(events.len());
            while bytes < BATCH_BYTES
                && let Some(event) = events.get(end)
            {
                end += 1;
                if let Some((t, o)) = translate(spec, event) {
                    bytes += frame_bytes(o);
                    frames.push(self.framer.event(t, o));
                }
            }
            match events.get(end) {
                // Everything up to `seen` was read.
                None if events.len() < read => {
                    self.cursor = events
                        .last()
                        .map_or(self.cursor, |e| e.resource_version())
                        .max(self.cursor)
                        .max(seen);
                    self.sent_of_next = 0;
                }
                // The batch is full, or more events wait in the cache: go on from the first
                // unsent one, which may share its revision with sent ones.
                unsent => {
                    let next_rv = unsent.map_or(u64::MAX, |e| e.resource_version());
                    let sent = &events[..end];
                    self.sent_of_next = sent
                        .iter()
                        .filter(|e| e.resource_version() == next_rv)
                        .count();
                    self.cursor = sent
                        .iter()
                        .map(|e| e.resource_version())
                        .filter(|&rv| rv < next_rv)
                        .max()
                        .unwrap_or(self.cursor)
                        .max(self.cursor);
                }
            }
            if spec.progress && self.cursor > self.told {
                frames.push(self.framer.bookmark(spec.kind, self.cursor, false));
                self.told = self.cursor;
            }
            if !frames.is_empty() {
                return Some(frames);
            }
            if end < events.len() || events.len() == read {
                // Nothing in scope in this read, more to read.
                continue;
            }
            // With progress notification every commit wakes the watch; otherwise only its
            // kind's.
            let cursor = self.cursor;
            let changed = async {
                match &spec.value {
                    _ if spec.progress => cache.wait_after(cursor).await,
                    Some((field, value)) => cache.wait_for_value(*field, value, cursor).await,
                    None => cache.wait_for_kind(spec.kind, cursor).await,
                }
            };
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(self.next_bookmark), if spec.bookmarks => {
                    self.next_bookmark = tokio::time::Instant::now() + spec.bookmark_interval;
                    return Some(vec![self.framer.bookmark(spec.kind, self.cursor, false)]);
                }
                _ = tokio::time::sleep_until(self.deadline) => {
                    self.phase = Phase::Done;
                    return None;
                }
            }
        }
    }
}

/// Waits, up to [`FUTURE_RESOURCE_VERSION_WAIT`] (or the watch's `deadline`), for a
/// resourceVersion the server has not reached yet; [`Error::ResourceVersionTooLarge`] when it
/// does not come.
async fn wait_for_start(
    cache: &WatchCache,
    from: u64,
    deadline: tokio::time::Instant,
) -> Result<(), Error> {
    if from <= cache.revision() {
        return Ok(());
    }
    let deadline = deadline.min(tokio::time::Instant::now() + FUTURE_RESOURCE_VERSION_WAIT);
    match tokio::time::timeout_at(deadline, cache.wait_after(from - 1)).await {
        Ok(()) => Ok(()),
        Err(_) => Err(Error::ResourceVersionTooLarge {
            requested: from,
            current: cache.revision(),
        }),
    }
}

/// Counts an open watch in the watcher gauge until the watch ends, however it ends.
struct WatcherGuard(Arc<ApiContext>);

impl WatcherGuard {
    fn new(ctx: Arc<ApiContext>) -> WatcherGuard {
        ctx.metrics.watchers.inc();
        WatcherGuard(ctx)
    }
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.metrics.watchers.dec();
    }
}

/// What a watcher with selectors sees of an event: an object entering the selection is
/// ADDED, one leaving it is DELETED (as Kubernetes does), others pass or are skipped.
fn translate<'a>(spec: &WatchSpec, e: &'a Change) -> Option<(EventType, &'a Arc<StoredObject>)> {
    let now_in = spec.in_scope(&e.object);
    match e.event_type {
        EventType::Added => now_in.then_some((EventType::Added, &e.object)),
        EventType::Deleted => now_in.then_some((EventType::Deleted, &e.object)),
        EventType::Modified => {
            let was_in = e.previous.as_deref().is_some_and(|p| spec.in_scope(p));
            match (was_in, now_in) {
                (true, true) => Some((EventType::Modified, &e.object)),
                (false, true) => Some((EventType::Added, &e.object)),
                (true, false) => Some((EventType::Deleted, &e.object)),
                (false, false) => None,
            }
        }
    }
}

/// Turns what a watch sees into the frames a watcher receives.
pub trait Framer: Send + 'static {
    type Frame: Send + 'static;
    /// An object as the watcher sees it change.
    fn event(&mut self, t: EventType, obj: &Arc<StoredObject>) -> Self::Frame;
    /// The watcher is complete up to `rv`; `initial_events_end` ends the initial state.
    fn bookmark(&mut self, kind: Kind, rv: u64, initial_events_end: bool) -> Self::Frame;
    /// The watch ends on `error`: [`Error::Gone`] or [`Error::ResourceVersionTooLarge`].
    fn expired(&mut self, error: &Error) -> Self::Frame;
}

#[cfg(test)]
mod tests;
