//! `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`: whether the caller may do
//! something, as Kubernetes answers `kubectl auth can-i` (which sends the review as protobuf
//! and reads a JSON answer). The question is decided by the same
//! `acl::authorize` every request goes through; without ACLs everything is allowed.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use caravan_schemas::Kind;
use serde::Deserialize;
use serde_json::{Value, json};

use super::body;
use super::error::ApiError;
use super::respond;
use crate::acl::Identity;
use crate::acl::authorize::{Decision, Target, Verb, decide};
use crate::context::ApiContext;

/// The path kubectl posts its question to.
pub const PATH: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

/// The access review route.
pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new().route(PATH, post(review))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    #[serde(default)]
    spec: ReviewSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewSpec {
    resource_attributes: Option<Attributes>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attributes {
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    verb: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subresource: String,
    #[serde(default)]
    name: String,
}

/// Whether `identity` may do what `attributes` ask, and why not (pure).
fn answer(identity: Option<&Identity>, attributes: &Attributes) -> (bool, String) {
    let Some(identity) = identity else {
        return (true, "ACLs are disabled".into());
    };
    if attributes.group != caravan_schemas::GROUP {
        return (
            false,
            format!("no resources in group {:?} here", attributes.group),
        );
    }
    let Some(kind) = Kind::from_plural(&attributes.resource) else {
        return (
            false,
            format!("no resource {:?} in caravan.dev", attributes.resource),
        );
    };
    let verb = match attributes.verb.as_str() {
        "get" => Verb::Get,
        "list" => Verb::List,
        "watch" => Verb::Watch,
        "create" => Verb::Create,
        "update" => Verb::Update,
        "patch" => Verb::Patch,
        "delete" | "deletecollection" => Verb::Delete,
        other => return (false, format!("unknown verb {other:?}")),
    };
    let namespace = (kind.namespaced() && !attributes.namespace.is_empty())
        .then_some(attributes.namespace.as_str());
    let name = (!attributes.name.is_empty()).then_some(attributes.name.as_str());
    let target = Target::Resource {
        kind,
        namespace,
        name,
        verb,
        status: attributes.subresource == "status",
    };
    match decide(identity, target) {
        Decision::Allow(_) => (true, String::new()),
        Decision::Deny(reason) => (false, reason),
    }
}

/// The length-delimited fields of a protobuf message, by number (what the review's messages
/// are made of); other fields are skipped.
fn proto_fields(bytes: &[u8]) -> protobuf::Result<Vec<(u32, Vec<u8>)>> {
    let mut input = protobuf::CodedInputStream::from_bytes(bytes);
    let mut fields = Vec::new();
    while let Some(tag) = input.read_raw_tag_or_eof()? {
        let (number, wire) = (tag >> 3, tag & 7);
        if wire == 2 {
            fields.push((number, input.read_bytes()?));
        } else {
            let wire = protobuf::rt::WireType::new(wire)
                .ok_or_else(|| protobuf::Error::from(std::io::Error::other("bad wire type")))?;
            input.skip_field(wire)?;
        }
    }
    Ok(fields)
}

fn field(fields: &[(u32, Vec<u8>)], number: u32) -> Option<&[u8]> {
    fields
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, v)| v.as_slice())
}

/// The resource attributes of a protobuf-encoded review (`application/vnd.kubernetes.protobuf`,
/// as kubectl sends built-in kinds): the `k8s\0` envelope's `raw` (field 2), its `spec` (2),
/// its `resourceAttributes` (1): namespace 1, verb 2, group 3, resource 5, subresource 6,
/// name 7.
fn proto_attributes(bytes: &[u8]) -> Option<Attributes> {
    let envelope = bytes.strip_prefix(b"k8s\0")?;
    let unknown = proto_fields(envelope).ok()?;
    let review = proto_fields(field(&unknown, 2)?).ok()?;
    let spec = proto_fields(field(&review, 2)?).ok()?;
    let attributes = proto_fields(field(&spec, 1)?).ok()?;
    let text = |n| {
        field(&attributes, n)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    Some(Attributes {
        namespace: text(1),
        verb: text(2),
        group: text(3),
        resource: text(5),
        subresource: text(6),
        name: text(7),
    })
}

async fn review(State(ctx): State<Arc<ApiContext>>, req: Request) -> Response {
    let identity = req.extensions().get::<Identity>().cloned();
    let acl_on = ctx.config.acl.enabled;
    let protobuf = body::content_type(req.headers()).contains("protobuf");
    let result = async {
        let bytes = body::read(req.into_body()).await?;
        let attributes = if protobuf {
            proto_attributes(&bytes)
        } else {
            serde_json::from_slice::<Review>(&bytes)
                .map_err(|e| {
                    ApiError::bad_request(format!("invalid SelfSubjectAccessReview: {e}"))
                })?
                .spec
                .resource_attributes
        };
        let attributes = attributes.ok_or_else(|| {
            ApiError::bad_request(
                "spec.resourceAttributes is required (non-resource URLs are not reviewed)",
            )
        })?;
        let identity = if acl_on { identity.as_ref() } else { None };
        let (allowed, reason) = answer(identity, &attributes);
        let mut status = json!({"allowed": allowed});
        if !reason.is_empty() {
            status["reason"] = Value::String(reason);
        }
        Ok::<_, ApiError>(json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": {"resourceAttributes": {
                "namespace": attributes.namespace,
                "verb": attributes.verb,
                "group": attributes.group,
                "resource": attributes.resource,
                "subresource": attributes.subresource,
                "name": attributes.name,
            }},
            "status": status,
        }))
    }
    .await;
    match result {
        Ok(review) => respond::json(201, &review),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(verb: &str, resource: &str) -> Attributes {
        Attributes {
            namespace: "default".into(),
            verb: verb.into(),
            group: "caravan.dev".into(),
            resource: resource.into(),
            ..Attributes::default()
        }
    }

    #[test]
    fn kubectls_protobuf_review_is_read() {
        // What kubectl 1.37 sends for `kubectl auth can-i create jobs` (namespace default).
        let sent: &[u8] = b"k8s\x00\x0a\x32\x0a\x17authorization.k8s.io/v1\x12\x17SelfSubjectAccessReview\x12\x4a\x0a\x10\x0a\x00\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x2c\x0a\x2a\x0a\x07default\x12\x06create\x1a\x0bcaravan.dev\x22\x00\x2a\x04jobs\x32\x00\x3a\x00\x1a\x08\x08\x00\x12\x00\x1a\x00\x20\x00\x1a\x00\x22\x00";
        let attributes = proto_attributes(sent).expect("decoded");
        assert_eq!(attributes.namespace, "default");
        assert_eq!(attributes.verb, "create");
        assert_eq!(attributes.group, "caravan.dev");
        assert_eq!(attributes.resource, "jobs");
        assert!(attributes.name.is_empty());
        assert!(proto_attributes(b"{}").is_none());
        assert!(proto_attributes(b"k8s\x00\xff\xff").is_none());
    }

    #[test]
    fn reviews_follow_the_acls() {
        let anonymous = Identity::Policies {
            acl: Arc::new(caravan_schemas::acl::Acl::default()),
            accessor: String::new(),
        };
        assert!(!answer(Some(&anonymous), &attributes("create", "jobs")).0);
        assert!(answer(Some(&Identity::Management), &attributes("create", "jobs")).0);
        assert!(answer(None, &attributes("delete", "nodes")).0);
        let (allowed, reason) = answer(Some(&Identity::Management), &attributes("get", "pods"));
        assert!(!allowed && reason.contains("pods"), "{reason}");
    }
}
