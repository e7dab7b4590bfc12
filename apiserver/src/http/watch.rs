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

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
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

/// The framed events of a watch, batch by batch, until the timeout or a revision that fell
/// out of the window (a 410 `ERROR` event ends it). Every watcher reads this stream itself:
/// no task and no channel per watcher between the cache and the connection.
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
        told: spec.from,
        deadline: now + spec.timeout,
        next_bookmark: now + spec.bookmark_interval,
        spec,
        framer,
        started: false,
        done: false,
    };
    futures::stream::unfold(watch, |mut watch| async move {
        let batch = watch.next_batch().await?;
        Some((batch, watch))
    })
}

/// The state of one watch between batches.
struct Watch<F> {
    /// The server, counted as watched while the watch lasts.
    watcher: WatcherGuard,
    cache: Arc<WatchCache>,
    spec: WatchSpec,
    framer: F,
    cursor: u64,
    /// The revision the watcher knows it is complete up to.
    told: u64,
    deadline: tokio::time::Instant,
    next_bookmark: tokio::time::Instant,
    started: bool,
    done: bool,
}

impl<F: Framer> Watch<F> {
    /// The next non-empty batch of frames; `None` once the watch is over.
    async fn next_batch(&mut self) -> Option<Vec<F::Frame>> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            if self.spec.initial_state {
                let frames = self.initial_state();
                if !frames.is_empty() {
                    return Some(frames);
                }
            }
        }
        let (spec, cache) = (&self.spec, &self.cache);
        loop {
            let seen = cache.revision();
            let events = match &spec.value {
                Some((field, value)) => cache.events_after_value(*field, value, self.cursor),
                None => cache.events_after(spec.kind, self.cursor, usize::MAX),
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
                    self.done = true;
                    return Some(vec![self.framer.expired(&status)]);
                }
            };
            let mut frames: Vec<F::Frame> = events
                .iter()
                .filter_map(|e| translate(spec, e).map(|(t, o)| self.framer.event(t, o)))
                .collect();
            self.cursor = events
                .last()
                .map_or(self.cursor, |e| e.resource_version())
                .max(self.cursor)
                .max(seen);
            if spec.progress && self.cursor > self.told {
                frames.push(self.framer.bookmark(spec.kind, self.cursor, false));
                self.told = self.cursor;
            }
            if !frames.is_empty() {
                return Some(frames);
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
                    self.done = true;
                    return None;
                }
            }
        }
    }

    /// ADDED for every object in scope now (and the initial-events-end BOOKMARK when asked);
    /// the watch goes on from the state's revision.
    fn initial_state(&mut self) -> Vec<F::Frame> {
        let spec = &self.spec;
        let (revision, objects) = {
            let state = self.watcher.0.store.state();
            let indexed = spec.value.as_ref().and_then(|((kind, field), value)| {
                state.list_by_field(*kind, field, value, spec.namespace.as_deref())
            });
            let objs: Vec<Arc<StoredObject>> = match indexed {
                Some(objs) => objs.into_iter().filter(|o| spec.in_scope(o)).collect(),
                None => state
                    .list(spec.kind, spec.namespace.as_deref(), None)
                    .filter(|o| spec.in_scope(o))
                    .cloned()
                    .collect(),
            };
            (state.revision(), objs)
        };
        self.cursor = revision;
        self.told = revision;
        let mut frames: Vec<F::Frame> = objects
            .iter()
            .map(|o| self.framer.event(EventType::Added, o))
            .collect();
        if spec.initial_events_end {
            frames.push(self.framer.bookmark(spec.kind, revision, true));
        }
        frames
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
