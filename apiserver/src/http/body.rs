//! Reading request bodies: the size limit, JSON and YAML decoding with positions.

use axum::body::Body;
use axum::http::HeaderMap;
use serde_json::Value;

use super::error::ApiError;

/// Largest accepted request body (Kubernetes' limit is 3 MiB too).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

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
                ApiError::TooLarge {
                    limit: MAX_BODY_BYTES,
                }
            } else {
                ApiError::BadRequest(format!("failed to read the request body: {e}"))
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
pub fn decode_object(bytes: &[u8], media_type: &str) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("the request body is empty".into()));
    }
    let yaml = media_type.contains("yaml");
    let value: Value = if yaml {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| ApiError::BadRequest(format!("the request body is not UTF-8: {e}")))?;
        yaml_serde::from_str(text)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(bytes).map_err(|e| {
            ApiError::BadRequest(format!(
                "error decoding JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ))
        })?
    };
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be an object".into(),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_syntax_errors_name_the_position() {
        let err = decode_object(b"{\n  \"a\": ,\n}", "application/json").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(matches!(err, ApiError::BadRequest(_)));
    }

    #[test]
    fn yaml_syntax_errors_are_bad_requests() {
        let err = decode_object(b"a: [1, 2\nb: c", "application/yaml").unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(_)));
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn non_objects_and_empty_bodies_are_rejected() {
        assert!(decode_object(b"[1]", "application/json").is_err());
        assert!(decode_object(b"  ", "application/json").is_err());
        assert!(decode_object(b"a: 1", "application/apply-patch+yaml").is_ok());
    }
}
