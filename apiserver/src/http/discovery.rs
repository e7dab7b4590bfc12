//! Discovery: `/version`, `/api`, `/apis` (plain and aggregated v2), `/apis/caravan.dev/v1`.

use axum::http::{HeaderValue, header};
use axum::response::Response;
use caravan_schemas::{GROUP, Kind, VERSION};
use serde_json::{Value, json};

use super::respond;
use crate::api::job_version::client_writable;

/// The Kubernetes minor version Caravan's API matches (kubectl warns beyond one minor of skew).
pub const KUBE_COMPAT: (&str, &str) = ("1", "37");

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn wants_aggregated(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').next().is_some_and(|first| {
            first.contains("as=APIGroupDiscoveryList") && first.contains("v=v2")
        })
    })
}

fn aggregated(value: &Value) -> Response {
    let mut resp = respond::json(200, value);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(AGGREGATED));
    resp
}

/// `GET /version`.
pub fn version() -> Response {
    let (major, minor) = KUBE_COMPAT;
    respond::json(
        200,
        &json!({
            "major": major,
            "minor": minor,
            "gitVersion": format!("v{major}.{minor}.0+caravan-{}", env!("CARGO_PKG_VERSION")),
            "gitCommit": "",
            "gitTreeState": "clean",
            "buildDate": "",
            "goVersion": "",
            "compiler": "rustc",
            "platform": format!("{}/{}", std::env::consts::OS, goarch()),
        }),
    )
}

fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /api`: no core group versions are served.
pub fn core(accept: Option<&str>) -> Response {
    if wants_aggregated(accept) {
        return aggregated(&json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": [],
        }));
    }
    respond::json(
        200,
        &json!({
            "kind": "APIVersions",
            "versions": [],
            "serverAddressByClientCIDRs": [],
        }),
    )
}

fn group_version() -> String {
    format!("{GROUP}/{VERSION}")
}

/// The verbs of a kind's main resource: JobVersions are written by the servers, so clients
/// only read them (and write their status).
fn verbs(kind: Kind) -> Vec<&'static str> {
    if client_writable(kind) {
        vec![
            "create", "delete", "get", "list", "patch", "update", "watch",
        ]
    } else {
        vec!["get", "list", "watch"]
    }
}

/// `GET /apis`.
pub fn groups(accept: Option<&str>) -> Response {
    if wants_aggregated(accept) {
        let resources: Vec<Value> = Kind::ALL
            .into_iter()
            .map(|k| {
                let gvk = json!({"group": GROUP, "version": VERSION, "kind": k.name()});
                let mut r = json!({
                    "resource": k.plural(),
                    "responseKind": gvk,
                    "scope": if k.namespaced() { "Namespaced" } else { "Cluster" },
                    "singularResource": k.singular(),
                    "verbs": verbs(k),
                    "shortNames": k.short_names(),
                    "categories": ["all", "caravan"],
                });
                if k.has_status() {
                    r["subresources"] = json!([{
                        "subresource": "status",
                        "responseKind": gvk,
                        "verbs": ["get", "patch", "update"],
                    }]);
                }
                r
            })
            .collect();
        return aggregated(&json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": [{
                "metadata": {"name": GROUP, "creationTimestamp": null},
                "versions": [{"version": VERSION, "resources": resources, "freshness": "Current"}],
            }],
        }));
    }
    respond::json(
        200,
        &json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [group()],
        }),
    )
}

fn group() -> Value {
    let gv = json!({"groupVersion": group_version(), "version": VERSION});
    json!({"name": GROUP, "versions": [gv.clone()], "preferredVersion": gv})
}

/// `GET /apis/caravan.dev`.
pub fn group_doc() -> Response {
    let mut g = group();
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    respond::json(200, &g)
}

/// `GET /apis/caravan.dev/v1`.
pub fn resources() -> Response {
    let mut list = Vec::new();
    for k in Kind::ALL {
        list.push(json!({
            "name": k.plural(),
            "singularName": k.singular(),
            "namespaced": k.namespaced(),
            "kind": k.name(),
            "verbs": verbs(k),
            "shortNames": k.short_names(),
            "categories": ["all", "caravan"],
        }));
        if k.has_status() {
            list.push(json!({
                "name": format!("{}/status", k.plural()),
                "singularName": "",
                "namespaced": k.namespaced(),
                "kind": k.name(),
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    respond::json(
        200,
        &json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version(),
            "resources": list,
        }),
    )
}
