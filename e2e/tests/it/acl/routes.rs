//! Every route the servers serve, without a token, with a bad one and with a management
//! token: nothing but health, version, discovery, OpenAPI and bootstrap answers an anonymous
//! request, a bad token gets 401 everywhere, and a management token is refused nowhere but
//! on the server-to-server paths (which need the cluster secret).

use reqwest::Method;

use super::{send, start};

const PREFIX: &str = "/apis/caravan.dev/v1";

/// (method, path, public): every route, with every verb of every resource path shape.
fn routes() -> Vec<(Method, String, bool)> {
    let mut routes = Vec::new();
    let mut add = |m: Method, p: String, public: bool| routes.push((m, p, public));
    for path in [
        "/version",
        "/healthz",
        "/livez",
        "/readyz",
        "/api",
        "/apis",
        "/apis/caravan.dev",
        "/apis/caravan.dev/v1",
        "/openapi/v3",
        "/openapi/v3/apis/caravan.dev/v1",
    ] {
        add(Method::GET, path.to_string(), true);
    }
    // Anyone may ask what it may do itself.
    add(
        Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews".to_string(),
        true,
    );
    for (method, path) in [
        (Method::GET, "/metrics"),
        (Method::GET, "/v1/agent/members"),
        (Method::PUT, "/v1/agent/join?address=127.0.0.1:9"),
        (Method::PUT, "/v1/agent/force-leave?node=nobody"),
        (Method::GET, "/v1/operator/raft/configuration"),
        (
            Method::PUT,
            "/v1/operator/raft/transfer-leadership?to=nobody",
        ),
        (Method::GET, "/v1/operator/keyring"),
        (Method::PUT, "/v1/operator/keyring?op=use&key=x"),
        (Method::PUT, "/v1/system/gc"),
        (Method::POST, "/v1/acl/tokens"),
        (Method::GET, "/v1/acl/token/self"),
        (Method::POST, "/v1/eval-broker/dequeue"),
        (Method::POST, "/internal/raft/vote"),
        (Method::GET, "/no/such/route"),
    ] {
        add(method, path.to_string(), false);
    }
    let namespaced = [
        "jobs",
        "evaluations",
        "allocations",
        "deployments",
        "jobversions",
        "serviceregistrations",
    ];
    for plural in namespaced {
        let collection = format!("{PREFIX}/namespaces/default/{plural}");
        add(Method::GET, format!("{PREFIX}/{plural}"), false);
        add(Method::GET, collection.clone(), false);
        add(
            Method::GET,
            format!("{collection}?watch=true&timeoutSeconds=1"),
            false,
        );
        add(Method::POST, collection.clone(), false);
        let object = format!("{collection}/x");
        for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
            add(method, object.clone(), false);
        }
        for method in [Method::GET, Method::PUT, Method::PATCH] {
            add(method, format!("{object}/status"), false);
        }
    }
    for plural in ["namespaces", "nodes", "aclpolicies", "acltokens"] {
        let collection = format!("{PREFIX}/{plural}");
        add(Method::GET, collection.clone(), false);
        add(
            Method::GET,
            format!("{collection}?watch=true&timeoutSeconds=1"),
            false,
        );
        add(Method::POST, collection.clone(), false);
        let object = format!("{collection}/x");
        for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
            add(method, object.clone(), false);
        }
        if plural == "nodes" || plural == "acltokens" {
            add(Method::PATCH, format!("{object}/status"), false);
        }
    }
    add(Method::POST, format!("{PREFIX}/nodes/x/heartbeat"), false);
    add(
        Method::GET,
        format!("{PREFIX}/namespaces/default/allocations/x/log"),
        false,
    );
    add(
        Method::POST,
        format!("{PREFIX}/namespaces/default/jobs/x/plan"),
        false,
    );
    add(
        Method::POST,
        format!("{PREFIX}/namespaces/default/evaluations/x/plan"),
        false,
    );
    routes
}

fn members_only(path: &str) -> bool {
    path.starts_with("/internal/") || path.starts_with("/v1/eval-broker/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_requests_without_a_valid_token() {
    let (sandbox, management) = start("acl-routes");
    let http = caravan_e2e::http::client();
    let mut failures = Vec::new();
    for (method, path, public) in routes() {
        let url = sandbox.url(&path);
        let body = || {
            http.request(method.clone(), &url)
                .header("content-type", "application/merge-patch+json")
                .body("{}")
        };
        let (anonymous, answer) = send(body()).await;
        let refused = anonymous == 401 || anonymous == 403;
        if public == refused {
            failures.push(format!(
                "{method} {path} without a token: {anonymous} {answer}"
            ));
        }
        if refused && answer["kind"] != "Status" {
            failures.push(format!("{method} {path}: not a Status: {answer}"));
        }
        let (bad, answer) = send(body().bearer_auth("not-a-token")).await;
        // Server-to-server paths refuse a request without the cluster secret first (403).
        let expected = if members_only(&path) { 403 } else { 401 };
        if bad != expected {
            failures.push(format!("{method} {path} with a bad token: {bad} {answer}"));
        }
        let (managed, answer) = send(body().bearer_auth(&management)).await;
        let refused = managed == 401 || managed == 403;
        if refused != members_only(&path) {
            failures.push(format!(
                "{method} {path} with a management token: {managed} {answer}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
