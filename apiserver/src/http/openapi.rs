//! `/openapi/v3`: the index and the caravan.dev/v1 document, generated from the JSON Schemas.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::json;

use super::respond;

const GV_PATH: &str = "apis/caravan.dev/v1";

struct Document {
    body: Bytes,
    hash: String,
}

fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(|| {
        let body =
            serde_json::to_vec(&caravan_schemas::schema::openapi_v3_document()).unwrap_or_default();
        let mut h = DefaultHasher::new();
        body.hash(&mut h);
        Document {
            body: body.into(),
            hash: format!("{:016X}", h.finish()),
        }
    })
}

/// `GET /openapi/v3`: where each group-version's document is.
pub fn index() -> Response {
    let doc = document();
    respond::json(
        200,
        &json!({
            "paths": {
                GV_PATH: {
                    "serverRelativeURL": format!("/openapi/v3/{GV_PATH}?hash={}", doc.hash)
                }
            }
        }),
    )
}

/// `GET /openapi/v3/apis/caravan.dev/v1`.
pub fn group_version() -> Response {
    let doc = document();
    let mut resp = respond::raw_json(200, doc.body.clone());
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", doc.hash)) {
        resp.headers_mut().insert(header::ETAG, etag);
    }
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, immutable"),
    );
    resp
}
