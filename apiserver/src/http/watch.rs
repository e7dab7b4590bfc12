//! Watch over HTTP: newline-delimited JSON over a chunked response, or one message per event
//! over a WebSocket, each read from the service's watch stream (`api::frames`) with the
//! [`JsonFramer`]: `{"type":…,"object":…}` frames, objects spliced in from their stored bytes
//! or kubectl Table rows, and the watch's end as an `ERROR` event holding its `Status`.
//!
//! Nothing is encoded before the connection asks: the chunked body polls the stream for its
//! next batch only when hyper can send more, and the WebSocket loop only after the last batch
//! went out.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use caravan_schemas::{API_VERSION, Kind};
use futures::StreamExt;
use serde_json::{Value, json};

use super::error;
use super::table;
use crate::api::{self, Framer, WatchSpec};
use crate::context::ApiContext;
use crate::store::{EventType, StoredObject};

/// Serves a chunked watch response.
pub fn chunked(ctx: Arc<ApiContext>, spec: WatchSpec, framer: JsonFramer) -> Response {
    let stream = api::frames(ctx, spec, framer).map(|frames| {
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
pub async fn websocket(
    ctx: Arc<ApiContext>,
    spec: WatchSpec,
    framer: JsonFramer,
    mut socket: WebSocket,
) {
    let frames = api::frames(ctx, spec, framer);
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

/// Frames for HTTP and WebSocket watchers: `{"type":…,"object":…}` JSON, objects spliced in
/// from their stored bytes, or Table rows when the watcher asked for a Table.
pub struct JsonFramer {
    kind: Kind,
    /// `Some` for a Table, with the `includeObject` asked for.
    table: Option<Option<String>>,
    first_table: bool,
}

impl JsonFramer {
    /// Frames of `kind`; Table rows when `table` is `Some` (holding `includeObject`).
    pub fn new(kind: Kind, table: Option<Option<String>>) -> JsonFramer {
        JsonFramer {
            kind,
            table,
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

    fn expired(&mut self, error: &api::Error) -> Bytes {
        let v: Value = serde_json::to_value(error::status(error)).unwrap_or(Value::Null);
        Bytes::from(serde_json::to_vec(&json!({"type": "ERROR", "object": v})).unwrap_or_default())
    }
}
