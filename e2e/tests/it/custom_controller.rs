//! A custom controller built on caravan-runtime, run as its own process against a real server:
//! the `node_labeler` example (`runtime/examples/node_labeler.rs`, built by
//! `cargo build --workspace --examples`) over `caravan_client::HttpClient`, next to a
//! `caravan agent --dev`. It keeps `driver.example.caravan.dev/<driver>=true` on every Node
//! for each driver the node reports healthy; the test checks what an operator relies on: the
//! labels appear on the agent's node and on a node registered through the API, a label
//! selector finds nodes by driver, the labels follow a change of the drivers' health, a label
//! removed by hand comes back, and labels of others are left alone.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use caravan_e2e::http::{self, create};
use caravan_e2e::{Sandbox, StreamingChild, paths, wait_until_async};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);
const PREFIX: &str = "driver.example.caravan.dev/";
/// The dev agent's own node.
const AGENT_NODE: &str = "labeler-agent";
/// A node registered through the API (no agent behind it), whose status the test writes.
const API_NODE: &str = "labeler-api";

struct Setup {
    /// Declared first: stopped before the server.
    labeler: StreamingChild,
    sandbox: Sandbox,
    http: reqwest::Client,
}

impl Setup {
    fn node_url(&self, name: &str) -> String {
        self.sandbox
            .url(&format!("/apis/caravan.dev/v1/nodes/{name}"))
    }

    /// Every label of the Node `name` (empty when it does not exist).
    async fn labels(&self, name: &str) -> BTreeMap<String, String> {
        let node = http::get_json(&self.http, &self.node_url(name)).await;
        serde_json::from_value(node["metadata"]["labels"].clone()).unwrap_or_default()
    }

    /// Waits until the Node `name`'s labels are `want`: the driver labels exactly, and the
    /// other labels of `want` unchanged beside them.
    async fn wait_labels(&self, name: &str, what: &str, want: &[(&str, &str)]) {
        let want: BTreeMap<String, String> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let result = wait_until_async(DEADLINE, &format!("node {name} {what}"), || async {
            let labels = self.labels(name).await;
            let drivers = |labels: &BTreeMap<String, String>| {
                labels
                    .iter()
                    .filter(|(k, _)| k.starts_with(PREFIX))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            };
            drivers(&labels) == drivers(&want) && want.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .await;
        if let Err(e) = result {
            panic!(
                "{e:#}\nlabels now: {:#?}\n--- node_labeler ---\n{}",
                self.labels(name).await,
                self.labeler.report()
            );
        }
    }

    /// A JSON merge patch of `url`; panics unless the server answers 200. Returns the object.
    async fn merge_patch(&self, url: &str, patch: &Value) -> Value {
        let resp = self
            .http
            .patch(url)
            .header("content-type", "application/merge-patch+json")
            .body(patch.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PATCH {url}: {e}"));
        let code = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(code, 200, "PATCH {url}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Names of the nodes `selector` selects.
    async fn select(&self, selector: &str) -> Vec<String> {
        let url = format!(
            "{}?labelSelector={selector}",
            self.sandbox.url("/apis/caravan.dev/v1/nodes")
        );
        let list = http::get_json(&self.http, &url).await;
        let mut names: Vec<String> = list["items"]
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {list}"))
            .iter()
            .filter_map(|n| http::name(n).map(str::to_string))
            .collect();
        names.sort();
        names
    }
}

/// Starts the example against `sandbox`, logging at info.
fn start_labeler(sandbox: &Sandbox) -> StreamingChild {
    let mut cmd = Command::new(paths::example_bin("node_labeler"));
    cmd.arg("--server")
        .arg(sandbox.base_url())
        .env_remove("CARAVAN_ADDR")
        .env("RUST_LOG", "info");
    StreamingChild::spawn(cmd).unwrap_or_else(|e| panic!("{e:#}"))
}

fn driver(healthy: bool) -> Value {
    json!({"detected": true, "healthy": healthy})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_controller_labels_nodes_by_healthy_driver_and_keeps_them_in_line() {
    let sandbox = Sandbox::builder()
        .name("custom-controller")
        .client()
        // The agent's node: a fixed name, and only drivers that are healthy without root.
        .arg("--name")
        .arg(AGENT_NODE)
        .arg("--drivers")
        .arg("raw_exec,mock")
        .start()
        .unwrap_or_else(|e| panic!("failed to start the dev agent: {e:#}"));
    let http = http::client();

    // A machine registered through the API before the controller starts (it finds it by
    // listing), with a stale driver label of ours and a label of the operator's.
    let node = json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Node",
        "metadata": {"name": API_NODE, "labels": {
            "team": "infra",
            "driver.example.caravan.dev/exec": "true",
        }},
    });
    create(&http, &sandbox.url("/apis/caravan.dev/v1/nodes"), &node).await;

    let mut setup = Setup {
        labeler: start_labeler(&sandbox),
        sandbox,
        http,
    };
    let status_url = format!("{}/status", setup.node_url(API_NODE));
    let status = json!({"status": {"status": "ready", "drivers": {
        "mock": driver(true),
        "oci": driver(false),
    }}});
    setup.merge_patch(&status_url, &status).await;

    // The agent's node: its healthy drivers are labelled; the agent's own label stays.
    setup
        .wait_labels(
            AGENT_NODE,
            "is labelled with raw_exec and mock",
            &[
                ("driver.example.caravan.dev/mock", "true"),
                ("driver.example.caravan.dev/raw_exec", "true"),
            ],
        )
        .await;
    assert!(
        setup
            .labels(AGENT_NODE)
            .await
            .contains_key("caravan.dev/node-id"),
        "the agent's label was dropped: {:?}",
        setup.labels(AGENT_NODE).await
    );
    // The API node: mock only (oci is unhealthy, the stale exec label goes), team stays.
    setup
        .wait_labels(
            API_NODE,
            "is labelled with mock only",
            &[
                ("team", "infra"),
                ("driver.example.caravan.dev/mock", "true"),
            ],
        )
        .await;

    // What the labels are for: selecting nodes by what they can run.
    assert_eq!(
        setup
            .select("driver.example.caravan.dev/raw_exec=true")
            .await,
        [AGENT_NODE]
    );
    assert_eq!(
        setup.select("driver.example.caravan.dev/mock=true").await,
        [AGENT_NODE, API_NODE]
    );

    // The drivers' health changes: the labels follow (the watch path, not the first list).
    let status = json!({"status": {"drivers": {
        "mock": driver(false),
        "oci": driver(true),
    }}});
    setup.merge_patch(&status_url, &status).await;
    setup
        .wait_labels(
            API_NODE,
            "is labelled with oci only",
            &[
                ("team", "infra"),
                ("driver.example.caravan.dev/oci", "true"),
            ],
        )
        .await;
    assert_eq!(
        setup.select("driver.example.caravan.dev/oci=true").await,
        [API_NODE]
    );

    // Someone removes a label the controller owns: it puts it back.
    let removed = setup
        .merge_patch(
            &setup.node_url(AGENT_NODE),
            &json!({"metadata": {"labels": {"driver.example.caravan.dev/mock": null}}}),
        )
        .await;
    assert!(
        removed["metadata"]["labels"]
            .get("driver.example.caravan.dev/mock")
            .is_none(),
        "the label was not removed: {removed:#}"
    );
    setup
        .wait_labels(
            AGENT_NODE,
            "has its mock label back",
            &[
                ("driver.example.caravan.dev/mock", "true"),
                ("driver.example.caravan.dev/raw_exec", "true"),
            ],
        )
        .await;

    // It logs what it did, and is still running.
    let stderr = setup.labeler.stderr();
    for expected in ["relabelled node", AGENT_NODE, API_NODE] {
        assert!(
            stderr.contains(expected),
            "{expected:?} not logged:\n{}",
            setup.labeler.report()
        );
    }
    assert!(!setup.labeler.exited(), "{}", setup.labeler.report());
}
