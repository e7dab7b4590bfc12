//! Reading request bodies: the size limit, JSON and YAML decoding with positions.
//!
//! Decoding a large body takes a while (and a YAML one more), so [`decode`] runs YAML bodies
//! and JSON bodies above [`INLINE_JSON_BYTES`] on a blocking thread; a YAML body is refused
//! when it may nest deeper than [`MAX_NESTING_DEPTH`] before libyaml parses it
//! (`yaml_depth.rs`), since that parse slows down with the square of the nesting. JSON nesting
//! is limited by serde_json itself (128 levels, the same limit).

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use caravan_schemas::limits::{MAX_BODY_BYTES, MAX_NESTING_DEPTH};
use serde::de::DeserializeSeed;
use serde_json::Value;

use super::error::ApiError;

mod unique_keys;
mod yaml_depth;

use unique_keys::UniqueKeys;

/// JSON bodies up to this size are decoded on the request's task: a small write does not pay
/// for a thread hop.
pub const INLINE_JSON_BYTES: usize = 64 * 1024;

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] with 413.
pub async fn read(body: Body) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            // The limit error is `http_body_util::LengthLimitError`, wrapped by axum.
            let mut source: Option<&dyn std::error::Error> = Some(&e);
            let mut too_large = false;
            while let Some(err) = source {
                too_large |= err.to_string().contains("length limit exceeded");
                source = err.source();
            }
            if too_large {
                ApiError::BodyTooLarge {
                    limit: MAX_BODY_BYTES,
                }
            } else {
                ApiError::bad_request(format!("failed to read the request body: {e}"))
            }
        })
}

/// The media type of the body, without parameters, lowercased.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// Decodes a JSON or YAML object body. A syntax error is a 400 naming the line and column.
/// Runs on the caller's thread: request handlers use [`decode`].
#[cfg(test)]
pub fn decode_object(bytes: &[u8], media_type: &str) -> Result<Value, ApiError> {
    decode_with(bytes, media_type, false)
}

/// Decodes a JSON or YAML object body (a syntax error is a 400 naming the line and column),
/// off the async runtime unless it
/// is a small JSON body. `strict` (`fieldValidation=Strict`) refuses duplicate keys, as
/// Kubernetes' strict decoding does.
pub async fn decode(bytes: &Bytes, media_type: &str, strict: bool) -> Result<Value, ApiError> {
    let yaml = is_yaml(media_type);
    if !yaml && bytes.len() <= INLINE_JSON_BYTES {
        return decode_with(bytes, media_type, strict);
    }
    let (bytes, media_type) = (bytes.clone(), media_type.to_owned());
    blocking(move || decode_with(&bytes, &media_type, strict)).await
}

/// Runs a decoding step on a blocking thread.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("decoding the request body failed: {e}")))?
}

fn is_yaml(media_type: &str) -> bool {
    media_type.contains("yaml")
}

fn decode_with(bytes: &[u8], media_type: &str, strict: bool) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let value = if is_yaml(media_type) {
        decode_yaml(bytes, strict)?
    } else {
        decode_json(bytes, strict)?
    };
    if !value.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    Ok(value)
}

fn decode_json(bytes: &[u8], strict: bool) -> Result<Value, ApiError> {
    let decoded = if strict {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        UniqueKeys::JSON
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
    } else {
        serde_json::from_slice(bytes)
    };
    decoded.map_err(|e| {
        let message = e.to_string();
        match unique_keys::duplicate(&message) {
            Some(duplicate) => ApiError::bad_request(format!(
                "strict decoding error: {duplicate} (at line {} column {})",
                e.line(),
                e.column()
            )),
            None => ApiError::bad_request(format!(
                "error decoding JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            )),
        }
    })
}

fn decode_yaml(bytes: &[u8], strict: bool) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::bad_request(format!("the request body is not UTF-8: {e}")))?;
    yaml_depth::check(bytes, MAX_NESTING_DEPTH).map_err(|deep| {
        ApiError::bad_request(format!(
            "error decoding YAML: the body nests deeper than {MAX_NESTING_DEPTH} levels \
             (around line {})",
            deep.line
        ))
    })?;
    let decoded = if strict {
        UniqueKeys::YAML.deserialize(yaml_serde::Deserializer::from_str(text))
    } else {
        yaml_serde::from_str(text)
    };
    decoded.map_err(|e| {
        let message = e.to_string();
        match (unique_keys::duplicate(&message), e.location()) {
            (Some(duplicate), Some(at)) => ApiError::bad_request(format!(
                "strict decoding error: {duplicate} (at line {} column {})",
                at.line(),
                at.column()
            )),
            (Some(duplicate), None) => {
                ApiError::bad_request(format!("strict decoding error: {duplicate}"))
            }
            (None, _) => ApiError::bad_request(format!("error decoding YAML: {e}")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api;

    #[test]
    fn json_syntax_errors_name_the_position() {
        let err = decode_object(b"{\n  \"a\": ,\n}", "application/json").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(matches!(err, ApiError::Api(api::Error::BadRequest(_))));
    }

    #[test]
    fn yaml_syntax_errors_are_bad_requests() {
        let err = decode_object(b"a: [1, 2\nb: c", "application/yaml").unwrap_err();
        assert!(matches!(err, ApiError::Api(api::Error::BadRequest(_))));
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn non_objects_and_empty_bodies_are_rejected() {
        assert!(decode_object(b"[1]", "application/json").is_err());
        assert!(decode_object(b"  ", "application/json").is_err());
        assert!(decode_object(b"a: 1", "application/apply-patch+yaml").is_ok());
    }

    fn bad_request(result: Result<Value, ApiError>) -> String {
        match result {
            Err(ApiError::Api(api::Error::BadRequest(msg))) => msg,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    /// `{"a":` … `1` … `}` nested `depth` objects deep.
    fn nested_json(depth: usize) -> Vec<u8> {
        let mut body = "{\"a\":".repeat(depth);
        body.push('1');
        body.push_str(&"}".repeat(depth));
        body.into_bytes()
    }

    #[test]
    fn json_nesting_is_limited_by_serde_json() {
        // serde_json refuses its 128th level: MAX_NESTING_DEPTH counts the same way.
        let deepest = nested_json(MAX_NESTING_DEPTH - 1);
        for strict in [false, true] {
            assert!(decode_with(&deepest, "application/json", strict).is_ok());
            let deeper = nested_json(MAX_NESTING_DEPTH);
            let msg = bad_request(decode_with(&deeper, "application/json", strict));
            assert!(msg.contains("recursion limit exceeded"), "{msg}");
        }
        // A large body is decoded on a blocking thread, with the same limit.
        let huge = nested_json(MAX_BODY_BYTES / 6);
        let msg = bad_request(decode_object(&huge, "application/json"));
        assert!(msg.contains("recursion limit exceeded"), "{msg}");
    }

    /// Bodies of about `MAX_BODY_BYTES` nesting as deep as they can.
    fn deep_yaml() -> Vec<(&'static str, String)> {
        let n = MAX_BODY_BYTES / 2;
        vec![
            (
                "flow sequences",
                format!("a: {}x{}", "[".repeat(n), "]".repeat(n)),
            ),
            ("flow mappings", format!("a: {}x", "{a: ".repeat(n / 2))),
            ("block sequences", format!("{}x", "- ".repeat(n))),
            ("block keys", format!("{}x", "? ".repeat(n))),
            ("a sequence of flows", format!("- {}x", "- [".repeat(n / 2))),
        ]
    }

    #[test]
    fn deeply_nested_yaml_is_refused_before_it_is_parsed() {
        for (what, body) in deep_yaml() {
            let started = std::time::Instant::now();
            let msg = bad_request(decode_object(body.as_bytes(), "application/yaml"));
            assert!(
                msg.contains("nests deeper than 128 levels"),
                "{what}: {msg}"
            );
            // Measured, not asserted: the refusal reads a few hundred bytes.
            eprintln!(
                "{what}: {} bytes refused in {:?}",
                body.len(),
                started.elapsed()
            );
        }
        // A YAML apply patch is YAML too.
        let msg = bad_request(decode_object(
            deep_yaml()[0].1.as_bytes(),
            "application/apply-patch+yaml",
        ));
        assert!(msg.contains("nests deeper"), "{msg}");
    }

    #[test]
    fn yaml_nested_up_to_the_limit_and_brackets_in_scalars_are_accepted() {
        let n = MAX_NESTING_DEPTH - 1;
        let flow = format!("a: {}x{}", "[".repeat(n), "]".repeat(n));
        assert!(decode_object(flow.as_bytes(), "application/yaml").is_ok());
        let block: String = (0..n)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect::<String>()
            + &" ".repeat(n)
            + "x";
        assert!(decode_object(block.as_bytes(), "application/yaml").is_ok());
        let brackets = "[".repeat(3 * MAX_NESTING_DEPTH);
        let scalars = format!(
            "quoted: \"{brackets}\"\nsingle: '{brackets}'\nplain: x {brackets}\n\
             # {brackets}\nscript: |\n  x {brackets}\n  y - - - - {brackets}\n\
             after: [1, {{a: b}}]\n"
        );
        let value = decode_object(scalars.as_bytes(), "application/yaml").unwrap();
        assert_eq!(value["quoted"].as_str().map(str::len), Some(brackets.len()));
        assert_eq!(value["after"][1]["a"], "b");
    }

    #[tokio::test]
    async fn decode_runs_yaml_and_large_json_off_the_runtime() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(2 * INLINE_JSON_BYTES));
        let value = decode(&Bytes::from(big), "application/json", true)
            .await
            .unwrap();
        assert_eq!(
            value["a"].as_str().map(str::len),
            Some(2 * INLINE_JSON_BYTES)
        );
        let yaml = Bytes::from_static(b"kind: Job\nmetadata:\n  name: web\n");
        let value = decode(&yaml, "application/yaml", true).await.unwrap();
        assert_eq!(value["metadata"]["name"], "web");
        let deep = Bytes::from(deep_yaml().remove(0).1);
        let msg = bad_request(decode(&deep, "application/yaml", false).await);
        assert!(msg.contains("nests deeper"), "{msg}");
    }

    #[test]
    fn strict_decoding_refuses_duplicate_keys() {
        let body = br#"{"metadata": {"name": "a", "name": "b"}}"#;
        let msg = bad_request(decode_with(body, "application/json", true));
        assert!(
            msg.starts_with(r#"strict decoding error: json: duplicate field "name""#),
            "{msg}"
        );
        // Without strict validation the last one wins, as before.
        let lenient = decode_with(body, "application/json", false).unwrap();
        assert_eq!(lenient["metadata"]["name"], "b");
        let yaml = b"metadata:\n  name: a\n  name: b\n";
        let msg = bad_request(decode_with(yaml, "application/yaml", true));
        assert!(
            msg.starts_with(r#"strict decoding error: yaml: duplicate field "name""#),
            "{msg}"
        );
        assert_eq!(
            decode_with(yaml, "application/yaml", false).unwrap()["metadata"]["name"],
            "b"
        );
        // A key spelled with an escape is the same key.
        let escaped = br#"{"a": 1, "a": 2}"#;
        assert!(decode_with(escaped, "application/json", true).is_err());
    }

    #[test]
    fn strict_decoding_gives_the_same_value() {
        let json =
            br#"{"a": [1, -2, 3.5, 1e300, "s\u00e9", true, null, {}], "b": {"c": {"d": []}}}"#;
        assert_eq!(
            decode_with(json, "application/json", true).unwrap(),
            decode_with(json, "application/json", false).unwrap()
        );
        let yaml = b"a: [1, -2, 3.5, s, true, ~, {}]\nb:\n  c: &x 'x'\n  e: *x\n  1: one\n  d: |\n    text\n";
        assert_eq!(
            decode_with(yaml, "application/yaml", true).unwrap(),
            decode_with(yaml, "application/yaml", false).unwrap()
        );
        // Trailing characters stay an error.
        assert!(decode_with(b"{} x", "application/json", true).is_err());
    }
}
