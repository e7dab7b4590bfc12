//! Watch: newline-delimited JSON over a chunked response, or one message per event over a
//! WebSocket. Each watcher reads the watch cache through its own stream of frames (`frames`).
//!
//! ```text
//! WatchCache ──events_after(rv)──▶ frames (filter, frame) ──▶ chunked body | WebSocket
//!                                                                  | in-process client
//!      ▲ wait_for_kind(rv)              │ BOOKMARK timer, timeoutSeconds, 410 on a too-old rv
//!
//! A field selector pinning an indexed field (`spec.nodeName=n1`) reads and waits on that
//! value's events only (`events_after_value`, `wait_for_value`).
//! ```
//!
//! A watcher that does not read costs bounded memory: the stream makes a batch only when the
//! connection asks for one, and a batch stops at [`BATCH_BYTES`] of frames. The initial state
//! (`resourceVersion=0`, `sendInitialEvents`) is the list of the objects (shared with the
//! state, not copied) framed a batch at a time; events are read from the cache a batch at a
//! time, so a watcher that fell behind by more than the cache's window gets a 410 `Expired`
//! `ERROR` event instead of its backlog. A resourceVersion the server has not reached yet is
//! waited for up to [`FUTURE_RESOURCE_VERSION_WAIT`], then answered with Kubernetes' 504
//! `Too large resource version` `ERROR` event.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use caravan_schemas::limits::{MAX_OBJECT_BYTES, MAX_WATCH_BUFFER_BYTES, WATCH_BATCH_BYTES};
use caravan_schemas::{API_VERSION, Kind, Status};
use futures::StreamExt;
use serde_json::{Value, json};

use super::context::ApiContext;
use super::error::ApiError;
use super::path::ResourcePath;
use super::query::Query;
use super::selector::Selectors;
use super::table;
use crate::store::WatchCache;
use crate::store::state::INDEXED_FIELDS;
use crate::store::watch_cache::Field;
use crate::store::{EventType, StoredObject, WatchEvent};

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

/// Everything a producer needs, resolved from the request.
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
    table: Option<Option<String>>,
}

impl WatchSpec {
    pub fn new(
        ctx: &ApiContext,
        path: &ResourcePath,
        query: &Query,
        accept: Option<&str>,
    ) -> Result<WatchSpec, ApiError> {
        let selectors = Selectors::parse(
            path.kind,
            query.label_selector.as_deref(),
            query.field_selector.as_deref(),
        )?;
        let rv = query.resource_version_number()?;
        let value = INDEXED_FIELDS
            .iter()
            .filter(|(kind, _)| *kind == path.kind)
            .find_map(|&field| Some((field, selectors.fields.equality(field.1)?.to_owned())));
        let initial_state = query.send_initial_events || rv.is_none();
        let timeout = query
            .timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(ctx.config.max_watch_timeout)
            .min(ctx.config.max_watch_timeout);
        Ok(WatchSpec {
            kind: path.kind,
            namespace: path.namespace.clone(),
            selectors,
            value,
            initial_state,
            initial_events_end: query.send_initial_events,
            from: rv.unwrap_or(0),
            bookmarks: query.allow_watch_bookmarks || query.progress_notify,
            bookmark_interval: ctx.config.bookmark_interval,
            progress: query.progress_notify,
            timeout,
            table: table::wants_table(accept).then(|| query.include_object.clone()),
        })
    }

    fn in_scope(&self, obj: &StoredObject) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| obj.key.namespace == ns)
            && self.selectors.matches(obj)
    }
}

/// Serves a chunked watch response.
pub fn chunked(ctx: Arc<ApiContext>, spec: WatchSpec) -> Response {
    let framer = JsonFramer::new(&spec);
    let stream = frames(ctx, spec, framer).map(|frames| {
        let mut buf = BytesMut::with_capacity(frames.iter().map(|f| f.len() + 1).sum());
        for f in frames {
            buf.put_slice(&f);
            buf.put_u8(b'\n');
        }
        Ok::<_, std::convert::Infallible>(buf.freeze())
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    resp
}

/// Serves a watch over an upgraded WebSocket: one text message per event.
pub async fn websocket(ctx: Arc<ApiContext>, spec: WatchSpec, mut socket: WebSocket) {
    let framer = JsonFramer::new(&spec);
    let frames = frames(ctx, spec, framer);
    futures::pin_mut!(frames);
    loop {
        tokio::select! {
            batch = frames.next() => {
                let Some(batch) = batch else { break };
                for f in batch {
                    let text = String::from_utf8_lossy(&f).into_owned();
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => {}
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// The framed events of a watch, batch by batch (each of at most about [`BATCH_BYTES`]),
/// until the timeout or a revision that fell out of the window (a 410 `ERROR` event ends it).
/// Every watcher reads this stream itself: no task and no channel per watcher between the
/// cache and the connection, and nothing is framed before the connection asks for it.
pub(crate) fn frames<F: Framer>(
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

/// The objects of a watch's initial state.
enum InitialObjects {
    /// Found through an index (one node's allocations, one job's): `objects[next..]` are left.
    Listed {
        objects: Vec<Arc<StoredObject>>,
        next: usize,
    },
    /// The kind's map as it was at the watch's start (shared with the state, not copied),
    /// walked in (namespace, name) order from after the last key sent.
    Snapshot {
        objects: crate::store::state::Objects,
        namespace: Option<String>,
        after: Option<(String, String)>,
    },
}

impl InitialObjects {
    /// Hands `send` the next objects until it reports `limit` bytes or more; whether every
    /// object has been handed out.
    fn take_while_under(
        &mut self,
        limit: usize,
        mut send: impl FnMut(&Arc<StoredObject>) -> usize,
    ) -> bool {
        match self {
            InitialObjects::Listed { objects, next } => {
                while let Some(object) = objects.get(*next) {
                    *next += 1;
                    if send(object) >= limit {
                        break;
                    }
                }
                *next == objects.len()
            }
            InitialObjects::Snapshot {
                objects,
                namespace,
                after,
            } => {
                use std::ops::Bound;
                let start = match (after.as_ref(), namespace.as_deref()) {
                    (Some(key), _) => Bound::Excluded(key.clone()),
                    (None, Some(ns)) => Bound::Included((ns.to_owned(), String::new())),
                    (None, None) => Bound::Unbounded,
                };
                let mut range = objects
                    .range::<_, (String, String)>((start, Bound::Unbounded))
                    .take_while(|((ns, _), _)| namespace.as_deref().is_none_or(|want| want == ns));
                for (key, object) in range.by_ref() {
                    *after = Some(key.clone());
                    if send(object) >= limit {
                        return false;
                    }
                }
                true
            }
        }
    }
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
                    if let Err(status) = start.await {
                        self.phase = Phase::Done;
                        return Some(vec![self.framer.expired(&status)]);
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
                    let status = Status::failure(
                        410,
                        "Expired",
                        format!(
                            "too old resource version: {} ({})",
                            too_old.requested, too_old.oldest
                        ),
                    );
                    self.phase = Phase::Done;
                    return Some(vec![self.framer.expired(&status)]);
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
/// resourceVersion the server has not reached yet; Kubernetes' 504 when it does not come.
async fn wait_for_start(
    cache: &WatchCache,
    from: u64,
    deadline: tokio::time::Instant,
) -> Result<(), Status> {
    if from <= cache.revision() {
        return Ok(());
    }
    let deadline = deadline.min(tokio::time::Instant::now() + FUTURE_RESOURCE_VERSION_WAIT);
    match tokio::time::timeout_at(deadline, cache.wait_after(from - 1)).await {
        Ok(()) => Ok(()),
        Err(_) => Err(ApiError::ResourceVersionTooLarge {
            requested: from,
            current: cache.revision(),
        }
        .to_status()),
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
fn translate<'a>(
    spec: &WatchSpec,
    e: &'a WatchEvent,
) -> Option<(EventType, &'a Arc<StoredObject>)> {
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
pub(crate) trait Framer: Send + 'static {
    type Frame: Send + 'static;
    fn event(&mut self, t: EventType, obj: &Arc<StoredObject>) -> Self::Frame;
    fn bookmark(&mut self, kind: Kind, rv: u64, initial_events_end: bool) -> Self::Frame;
    fn expired(&mut self, status: &Status) -> Self::Frame;
}

/// Frames for HTTP and WebSocket watchers: `{"type":…,"object":…}` JSON, objects spliced in
/// from their stored bytes, or Table rows when the watcher asked for a Table.
struct JsonFramer {
    kind: Kind,
    table: Option<Option<String>>,
    first_table: bool,
}

impl JsonFramer {
    fn new(spec: &WatchSpec) -> JsonFramer {
        JsonFramer {
            kind: spec.kind,
            table: spec.table.clone(),
            first_table: true,
        }
    }
}

impl Framer for JsonFramer {
    type Frame = Bytes;

    fn event(&mut self, t: EventType, obj: &Arc<StoredObject>) -> Bytes {
        match &self.table {
            None => {
                let mut buf = BytesMut::with_capacity(obj.json.len() + 32);
                buf.put_slice(b"{\"type\":\"");
                buf.put_slice(t.as_str().as_bytes());
                buf.put_slice(b"\",\"object\":");
                buf.put_slice(&obj.json);
                buf.put_u8(b'}');
                buf.freeze()
            }
            Some(include) => {
                let row = table::row(self.kind, obj, include.as_deref(), SystemTime::now());
                let t_obj = table::table(
                    self.kind,
                    vec![row],
                    obj.resource_version,
                    self.first_table,
                    None,
                );
                self.first_table = false;
                Bytes::from(
                    serde_json::to_vec(&json!({"type": t.as_str(), "object": t_obj}))
                        .unwrap_or_default(),
                )
            }
        }
    }

    fn bookmark(&mut self, kind: Kind, rv: u64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({ "resourceVersion": rv.to_string() });
        if initial_events_end {
            metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let obj = json!({ "apiVersion": API_VERSION, "kind": kind.name(), "metadata": metadata });
        Bytes::from(
            serde_json::to_vec(&json!({"type": "BOOKMARK", "object": obj})).unwrap_or_default(),
        )
    }

    fn expired(&mut self, status: &Status) -> Bytes {
        let v: Value = serde_json::to_value(status).unwrap_or(Value::Null);
        Bytes::from(serde_json::to_vec(&json!({"type": "ERROR", "object": v})).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests;
