//! Bad requests get precise Kubernetes `Status` answers and never change the store.

use caravan_e2e::http::{self, assert_status, collection_path, object_path};
use caravan_e2e::{Sandbox, fixtures};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Names, generations and specs of every job in `default`, sorted. (Resource versions move
/// when the server's controllers write a job's status, so they are not compared.)
async fn job_list(client: &reqwest::Client, sandbox: &Sandbox) -> Vec<(String, String)> {
    let resp = client
        .get(sandbox.url(&collection_path("default", "jobs")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let list: Value = resp.json().await.unwrap();
    let mut items: Vec<(String, String)> = list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {list}"))
        .iter()
        .map(|o| {
            let name = http::name(o).unwrap_or_default().to_owned();
            (
                name,
                format!("{} {}", o["metadata"]["generation"], o["spec"]),
            )
        })
        .collect();
    items.sort();
    items
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request failed");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {text:?}"));
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_status_not_500() {
    let sandbox = Sandbox::start("bad-input");
    let client = http::client();
    let jobs = sandbox.url(&collection_path("default", "jobs"));

    // One good job so that "unchanged" is not trivially an empty list.
    let (status, created) = send(client.post(&jobs).json(&fixtures::small_job("keep"))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let before = job_list(&client, &sandbox).await;

    // Malformed JSON.
    let (status, body) = send(
        client
            .post(&jobs)
            .header("content-type", "application/json")
            .body("{\"apiVersion\": "),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_status(&body, 400, "BadRequest");

    // Malformed YAML.
    let (status, body) = send(
        client
            .post(&jobs)
            .header("content-type", "application/yaml")
            .body("kind: Job\n  - : [\n"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_status(&body, 400, "BadRequest");

    // Two schema violations: both reported as causes.
    let mut invalid = fixtures::small_job("invalid");
    invalid["spec"]["priority"] = json!("high");
    invalid["spec"]["groups"][0]["count"] = json!("two");
    let (status, body) = send(client.post(&jobs).json(&invalid)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_status(&body, 422, "Invalid");
    let fields: Vec<&str> = body["details"]["causes"]
        .as_array()
        .unwrap_or_else(|| panic!("no details.causes: {body}"))
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    for field in ["spec.priority", "spec.groups[0].count"] {
        assert!(
            fields.contains(&field),
            "{field} missing from causes {fields:?}: {body}"
        );
    }

    // Unknown resource.
    let (status, body) =
        send(client.get(sandbox.url(&collection_path("default", "widgets")))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_status(&body, 404, "NotFound");

    // A 4 MiB body.
    let mut huge = fixtures::small_job("huge");
    huge["metadata"]["annotations"] = json!({ "filler": "x".repeat(4 << 20) });
    // Its own connection: the server may close the one it refuses to read the body of.
    let (status, body) = send(http::client().post(&jobs).json(&huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["code"], 413, "{body}");

    // Strategic merge patch is not supported for these resources.
    let (status, body) = send(
        client
            .patch(sandbox.url(&object_path("default", "jobs", "keep")))
            .header("content-type", "application/strategic-merge-patch+json")
            .body(r#"{"metadata":{"labels":{"smp":"yes"}}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["code"], 415, "{body}");

    assert_eq!(
        job_list(&client, &sandbox).await,
        before,
        "a rejected request changed the store"
    );
}
