//! Watch events and the decoder turning a newline-delimited body into a stream of them.

use std::collections::VecDeque;

use bytes::Bytes;
use caravan_schemas::Status;
use futures::stream::{self, BoxStream, Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::lines::LineDecoder;

/// One event of a watch stream.
#[derive(Clone, Debug, PartialEq)]
pub enum WireEvent {
    Added(Value),
    Modified(Value),
    Deleted(Value),
    /// Carries only `metadata.resourceVersion`: the point the watch has reached.
    Bookmark(Value),
    /// The server ended the watch; a 410 code means the version is too old: re-list.
    Error(Box<Status>),
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    object: Value,
}

impl WireEvent {
    /// Parses one `{"type": …, "object": …}` line.
    pub fn from_line(line: &[u8]) -> Result<WireEvent> {
        let raw: RawEvent = serde_json::from_slice(line).map_err(Error::Decode)?;
        Ok(match raw.kind.as_str() {
            "ADDED" => WireEvent::Added(raw.object),
            "MODIFIED" => WireEvent::Modified(raw.object),
            "DELETED" => WireEvent::Deleted(raw.object),
            "BOOKMARK" => WireEvent::Bookmark(raw.object),
            "ERROR" => WireEvent::Error(serde_json::from_value(raw.object).map_err(Error::Decode)?),
            other => {
                return Err(Error::Decode(serde::de::Error::custom(format!(
                    "unknown watch event type {other:?}"
                ))));
            }
        })
    }

    /// The event's object; `None` for errors.
    pub fn object(&self) -> Option<&Value> {
        match self {
            WireEvent::Added(o)
            | WireEvent::Modified(o)
            | WireEvent::Deleted(o)
            | WireEvent::Bookmark(o) => Some(o),
            WireEvent::Error(_) => None,
        }
    }

    /// The event type as on the wire, e.g. `ADDED`.
    pub fn type_name(&self) -> &'static str {
        match self {
            WireEvent::Added(_) => "ADDED",
            WireEvent::Modified(_) => "MODIFIED",
            WireEvent::Deleted(_) => "DELETED",
            WireEvent::Bookmark(_) => "BOOKMARK",
            WireEvent::Error(_) => "ERROR",
        }
    }

    /// The `metadata.resourceVersion` of the event's object.
    pub fn resource_version(&self) -> Option<&str> {
        self.object()?
            .pointer("/metadata/resourceVersion")?
            .as_str()
            .filter(|rv| !rv.is_empty())
    }
}

struct DecodeState<S> {
    chunks: S,
    lines: LineDecoder,
    ready: VecDeque<Bytes>,
    done: bool,
}

/// Decodes a body of newline-delimited watch events. A transport error ends the stream after
/// being yielded; an undecodable line is yielded as an error and decoding goes on.
pub fn decode_events<S>(chunks: S) -> BoxStream<'static, Result<WireEvent>>
where
    S: Stream<Item = Result<Bytes>> + Send + Unpin + 'static,
{
    let state = DecodeState {
        chunks,
        lines: LineDecoder::default(),
        ready: VecDeque::new(),
        done: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(line) = st.ready.pop_front() {
                return Some((WireEvent::from_line(&line), st));
            }
            if st.done {
                return None;
            }
            match st.chunks.next().await {
                Some(Ok(chunk)) => st.ready.extend(st.lines.push(&chunk)),
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.done = true;
                    st.ready.extend(st.lines.finish());
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(chunks: Vec<&'static [u8]>) -> Vec<Result<WireEvent>> {
        let chunks = stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))));
        futures::executor::block_on(decode_events(chunks).collect())
    }

    #[test]
    fn events_split_across_chunks_decode_in_order() {
        let events = decode(vec![
            b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"5\"}}}\n{\"ty",
            b"pe\":\"BOOKMARK\",\"object\":{\"kind\":\"Job\",\"metadata\":{\"resourceVersion\":\"9\"}}}",
            b"\n{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\",\"message\":\"too old\"}}",
        ]);
        let events: Vec<WireEvent> = events.into_iter().map(Result::unwrap).collect();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].type_name(), "ADDED");
        assert_eq!(events[0].resource_version(), Some("5"));
        assert_eq!(events[1].resource_version(), Some("9"));
        match &events[2] {
            WireEvent::Error(status) => {
                assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
            }
            other => panic!("expected an error event, got {other:?}"),
        }
    }

    #[test]
    fn a_bad_line_is_an_error_and_decoding_continues() {
        let events = decode(vec![
            b"not json\n{\"type\":\"WHAT\",\"object\":{}}\n",
            b"{\"type\":\"DELETED\",\"object\":{\"a\":1}}\n",
        ]);
        assert!(matches!(events[0], Err(Error::Decode(_))));
        assert!(matches!(events[1], Err(Error::Decode(_))));
        assert_eq!(
            events[2].as_ref().unwrap(),
            &WireEvent::Deleted(json!({"a": 1}))
        );
    }

    #[test]
    fn a_transport_error_ends_the_stream() {
        let chunks = stream::iter(vec![
            Ok(Bytes::from_static(
                b"{\"type\":\"ADDED\",\"object\":{}}\n{\"type\"",
            )),
            Err(Error::InvalidRequest("reset".into())),
            Ok(Bytes::from_static(b"ignored\n")),
        ]);
        let events: Vec<_> = futures::executor::block_on(decode_events(chunks).collect());
        assert_eq!(events.len(), 2);
        assert!(events[0].is_ok());
        assert!(events[1].is_err());
    }
}
