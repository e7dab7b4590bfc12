//! Reading the servers' answers: etcd's range and watch bodies, Kubernetes watch lines, and
//! the few fields the load generator needs, found without parsing whole documents.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::Value;

use super::UPDATES;

/// The end of etcd's range of keys starting with `prefix`: the prefix with its last byte
/// incremented (as `clientv3.WithPrefix` computes it).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The first string value of `key` in a JSON body, found without parsing it (the bench's
/// documents hold no escaped quotes in these values).
pub fn string_field<'a>(body: &'a [u8], key: &str) -> Option<&'a str> {
    let marker = format!("\"{key}\":\"");
    let pos = body
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())?;
    let rest = &body[pos + marker.len()..];
    let end = rest.iter().position(|b| *b == b'"')?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// The `resourceVersion` of an object in a response body.
pub fn resource_version(body: &[u8]) -> Option<String> {
    string_field(body, "resourceVersion").map(str::to_string)
}

/// The value of the `UPDATES` annotation of a stored document (0 when absent).
pub fn updates_of(doc: &Value) -> u64 {
    doc["metadata"]["annotations"][UPDATES]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// An answer of etcd's `/v3/kv/range`.
#[derive(Deserialize)]
pub(super) struct RangeResponse {
    #[serde(default)]
    pub(super) kvs: Vec<Kv>,
    #[serde(default)]
    pub(super) more: bool,
}

/// One key and value (both base64) of a range answer.
#[derive(Deserialize)]
pub(super) struct Kv {
    pub(super) key: String,
    #[serde(default)]
    pub(super) value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchFormat {
    Kubernetes,
    Etcd,
}

/// The newline-delimited lines of a watch response.
pub struct WatchStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
    pub format: WatchFormat,
}

impl WatchStream {
    pub(super) fn new(resp: reqwest::Response, format: WatchFormat, buf: Vec<u8>) -> WatchStream {
        use futures::StreamExt;
        WatchStream {
            body: resp.bytes_stream().boxed(),
            buf,
            format,
        }
    }

    /// The next complete line, `None` at the end of the stream.
    pub async fn next_line(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        use futures::StreamExt;
        loop {
            if let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                return Ok(Some(line));
            }
            match self.body.next().await {
                Some(chunk) => self.buf.extend_from_slice(&chunk?),
                None => return Ok(None),
            }
        }
    }
}

/// The created objects one watch line carries, each as the raw JSON of its document: a
/// Kubernetes ADDED event holds one; an etcd watch response holds every event of a batch
/// (creates only: a key's first version).
pub fn created_in(format: WatchFormat, line: &[u8]) -> Vec<Vec<u8>> {
    match format {
        WatchFormat::Kubernetes => {
            if line.starts_with(b"{\"type\":\"ADDED\"") {
                vec![line.to_vec()]
            } else {
                Vec::new()
            }
        }
        WatchFormat::Etcd => {
            #[derive(Deserialize)]
            struct Line {
                result: Option<Batch>,
            }
            #[derive(Deserialize)]
            struct Batch {
                #[serde(default)]
                events: Vec<Event>,
            }
            #[derive(Deserialize)]
            struct Event {
                #[serde(rename = "type")]
                kind: Option<String>,
                kv: EventKv,
            }
            #[derive(Deserialize)]
            struct EventKv {
                #[serde(default)]
                value: String,
                version: Option<String>,
            }
            let Ok(Line {
                result: Some(batch),
            }) = serde_json::from_slice::<Line>(line)
            else {
                return Vec::new();
            };
            batch
                .events
                .into_iter()
                .filter(|e| e.kind.is_none() && e.kv.version.as_deref() == Some("1"))
                .filter_map(|e| B64.decode(e.kv.value).ok())
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end("/bench/a/"), b"/bench/a0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
    }

    #[test]
    fn resource_versions_are_found_in_bodies() {
        let body = br#"{"kind":"Job","metadata":{"name":"a","resourceVersion":"42"}}"#;
        assert_eq!(resource_version(body), Some("42".into()));
        assert_eq!(resource_version(b"{}"), None);
    }

    #[test]
    fn etcd_watch_batches_yield_their_created_documents() {
        let v1 = B64.encode(r#"{"a":1}"#);
        let v2 = B64.encode(r#"{"a":2}"#);
        let line = format!(
            r#"{{"result":{{"header":{{}},"events":[{{"kv":{{"key":"eA==","version":"1","value":"{v1}"}}}},{{"kv":{{"key":"eA==","version":"2","value":"{v2}"}}}},{{"type":"DELETE","kv":{{"key":"eQ==","version":"1"}}}}]}}}}"#
        );
        assert_eq!(
            created_in(WatchFormat::Etcd, line.as_bytes()),
            vec![br#"{"a":1}"#.to_vec()]
        );
        let created = br#"{"result":{"header":{},"created":true}}"#;
        assert!(created_in(WatchFormat::Etcd, created).is_empty());
    }

    #[test]
    fn kubernetes_watch_lines_yield_added_objects_only() {
        let added = br#"{"type":"ADDED","object":{}}"#;
        let bookmark = br#"{"type":"BOOKMARK","object":{}}"#;
        assert_eq!(created_in(WatchFormat::Kubernetes, added).len(), 1);
        assert!(created_in(WatchFormat::Kubernetes, bookmark).is_empty());
    }

    #[test]
    fn updates_are_read_from_the_annotation() {
        let doc = json!({"metadata": {"annotations": {UPDATES: "7"}}});
        assert_eq!(updates_of(&doc), 7);
        assert_eq!(updates_of(&json!({})), 0);
    }
}
