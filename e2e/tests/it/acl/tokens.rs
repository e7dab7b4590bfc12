//! Tokens scoped by their policies: a read-only token reads and nothing more, a token of one
//! namespace sees only it in lists and watches, an expired or revoked token stops working, and
//! bootstrap happens once. (kubectl sends a token only over TLS: `tls.rs` tests it.)

use std::time::Duration;

use caravan_e2e::fixtures::small_job;
use caravan_e2e::http::{WatchStream, client_with_token, collection_path, create, object_path};
use caravan_e2e::wait::wait_until_async;
use serde_json::json;

use super::{send, start, token_with};

pub(super) const READ_ONLY: &str = "apiVersion: caravan.dev/v1
kind: ACLPolicy
metadata: {name: readonly}
spec:
  namespaces:
    - {name: default, policy: read}
";

const TEAM_A: &str = "apiVersion: caravan.dev/v1
kind: ACLPolicy
metadata: {name: team-a}
spec:
  namespaces:
    - {name: team-a, policy: write}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_reads_but_cannot_submit_plan_or_read_logs() {
    let (sandbox, management) = start("acl-readonly");
    let admin = client_with_token(&management, None);
    create(
        &admin,
        &sandbox.url(&collection_path("default", "jobs")),
        &small_job("web"),
    )
    .await;
    let reader = token_with(&sandbox, &management, READ_ONLY, "readonly");
    let http = client_with_token(&reader, None);
    let jobs = sandbox.url(&collection_path("default", "jobs"));
    let (code, list) = send(http.get(&jobs)).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["items"][0]["metadata"]["name"], "web");
    let (code, _) = send(http.get(sandbox.url(&object_path("default", "jobs", "web")))).await;
    assert_eq!(code, 200);
    let (code, refused) = send(http.post(&jobs).json(&small_job("other"))).await;
    assert_eq!(code, 403, "{refused}");
    assert_eq!(refused["reason"], "Forbidden");
    assert!(
        refused["message"].as_str().unwrap().contains("submit-job"),
        "{refused}"
    );
    let plan = sandbox.url("/apis/caravan.dev/v1/namespaces/default/jobs/web/plan");
    let (code, _) = send(http.post(&plan).json(&small_job("web"))).await;
    assert_eq!(code, 403);
    let logs = sandbox.url("/apis/caravan.dev/v1/namespaces/default/allocations/any/log");
    let (code, _) = send(http.get(&logs)).await;
    assert_eq!(code, 403);
    let (code, _) = send(http.delete(sandbox.url(&object_path("default", "jobs", "web")))).await;
    assert_eq!(code, 403);
    // Nothing changed.
    let (_, list) = send(admin.get(&jobs)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    // The CLI says so too.
    let out = sandbox.caravan(&["--token", &reader, "delete", "job", "web"]);
    out.assert_failure();
    assert!(out.stderr.contains("Forbidden"), "{}", out.stderr);
    // Bootstrap happens once, and its record cannot be deleted to open it again.
    let again = sandbox.caravan(&["acl", "bootstrap"]);
    again.assert_failure();
    assert!(
        again.stderr.contains("already bootstrapped"),
        "{}",
        again.stderr
    );
    let delete = sandbox.caravan(&[
        "--token",
        &management,
        "acl",
        "token",
        "delete",
        "acl-bootstrap",
    ]);
    delete.assert_failure();
    assert!(
        delete.stderr.contains("cannot be deleted"),
        "{}",
        delete.stderr
    );
    sandbox.caravan(&["acl", "bootstrap"]).assert_failure();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_token_sees_only_its_namespace_in_lists_and_watches() {
    let (sandbox, management) = start("acl-namespace");
    let admin = client_with_token(&management, None);
    for ns in ["team-a", "team-b"] {
        create(
            &admin,
            &sandbox.url("/apis/caravan.dev/v1/namespaces"),
            &json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await;
        let mut job = small_job(&format!("{ns}-job"));
        job["metadata"]["namespace"] = json!(ns);
        create(&admin, &sandbox.url(&collection_path(ns, "jobs")), &job).await;
    }
    let token = token_with(&sandbox, &management, TEAM_A, "team-a");
    let http = client_with_token(&token, None);
    let names = |list: &serde_json::Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{list}"))
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (code, all) = send(http.get(sandbox.url("/apis/caravan.dev/v1/jobs"))).await;
    assert_eq!(code, 200, "{all}");
    assert_eq!(names(&all), ["team-a-job"]);
    let (_, namespaces) = send(http.get(sandbox.url("/apis/caravan.dev/v1/namespaces"))).await;
    assert_eq!(names(&namespaces), ["team-a"]);
    let (code, _) = send(http.get(sandbox.url(&collection_path("team-b", "jobs")))).await;
    assert_eq!(code, 403);

    // A watch of every namespace: the initial state and later events of team-a only.
    let url = sandbox.url("/apis/caravan.dev/v1/jobs?watch=true");
    let mut watch = WatchStream::open(&http, &url).await.unwrap();
    let first = watch
        .next_event(Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first["object"]["metadata"]["name"], "team-a-job", "{first}");
    let mut job = small_job("team-b-later");
    job["metadata"]["namespace"] = json!("team-b");
    create(
        &admin,
        &sandbox.url(&collection_path("team-b", "jobs")),
        &job,
    )
    .await;
    let mut job = small_job("team-a-later");
    job["metadata"]["namespace"] = json!("team-a");
    create(
        &admin,
        &sandbox.url(&collection_path("team-a", "jobs")),
        &job,
    )
    .await;
    loop {
        let event = watch
            .next_event(Duration::from_secs(10))
            .await
            .unwrap()
            .expect("the watch goes on");
        let namespace = event["object"]["metadata"]["namespace"]
            .as_str()
            .unwrap_or("");
        assert_eq!(namespace, "team-a", "an event out of scope: {event}");
        if event["object"]["metadata"]["name"] == "team-a-later" {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_revoked_tokens_stop_working() {
    let (sandbox, management) = start("acl-expiry");
    let out = sandbox.caravan(&[
        "--token",
        &management,
        "acl",
        "token",
        "create",
        "--type",
        "management",
        "--ttl",
        "2s",
    ]);
    out.assert_success();
    let short = super::secret_of(&out.stdout);
    let http = client_with_token(&short, None);
    let url = sandbox.url("/apis/caravan.dev/v1/namespaces");
    let (code, _) = send(http.get(&url)).await;
    assert_eq!(code, 200);
    wait_until_async(Duration::from_secs(10), "the token expires", || async {
        send(http.get(&url)).await.0 == 401
    })
    .await
    .unwrap();
    // Revoked: deleted by its accessor id.
    let reader = token_with(&sandbox, &management, READ_ONLY, "readonly");
    let me = sandbox.caravan(&["--token", &reader, "acl", "token", "self"]);
    me.assert_success();
    let accessor = me
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Accessor ID"))
        .unwrap()
        .trim()
        .to_string();
    sandbox
        .caravan(&["--token", &management, "acl", "token", "delete", &accessor])
        .assert_success();
    let http = client_with_token(&reader, None);
    let (code, answer) = send(http.get(&url)).await;
    assert_eq!(code, 401, "{answer}");
    assert_eq!(answer["reason"], "Unauthorized");
}
