//! `node_labeler`: a custom controller built on `caravan-runtime`, run against a Caravan server.
//!
//! It keeps one label on every Node per task driver the node reports healthy, the way
//! Kubernetes' node feature discovery labels nodes by feature:
//!
//! ```text
//!  Node status.drivers {raw_exec: healthy, mock: healthy, oci: unhealthy}
//!    ──▶ metadata.labels  driver.example.caravan.dev/raw_exec=true
//!                         driver.example.caravan.dev/mock=true
//! ```
//!
//! so that people and tools can select nodes by what they can run:
//! `caravan get nodes -l driver.example.caravan.dev/raw_exec=true`. The label of a driver that
//! is no longer healthy is removed; labels without the prefix are never touched. A node is
//! patched only when its labels differ from what they should be, a failed reconcile is retried
//! after 5 s (the error policy), and every change is logged.
//!
//! Run it against a server (here a dev agent, which registers one node):
//!
//! ```text
//! caravan agent --dev                                     # or: cargo run -- agent --dev
//! cargo run -p caravan-runtime --example node_labeler -- --server http://127.0.0.1:4646
//! caravan get nodes -l driver.example.caravan.dev/raw_exec=true
//! ```
//!
//! `--server` defaults to `$CARAVAN_ADDR`, then `http://127.0.0.1:4646`, as for the CLI;
//! `RUST_LOG` sets the log level (default `info`; `caravan_runtime=debug` shows every
//! reconcile). The tests at the bottom run the same controller against `FakeClient`
//! (`cargo test -p caravan-runtime --example node_labeler`).

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use caravan_client::HttpClient;
use caravan_runtime::{Action, Client, ClientError, Controller, ControllerError, ListQuery, Store};
use caravan_schemas::{Kind, Node};
use clap::Parser;
use futures::StreamExt;
use serde_json::{Map, Value, json};

/// Prefix of the labels this controller owns: `<PREFIX><driver>=true`.
const PREFIX: &str = "driver.example.caravan.dev/";
/// The value of every label it sets.
const VALUE: &str = "true";
/// How long after a failed reconcile the node is reconciled again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Labels every Node with its healthy task drivers: driver.example.caravan.dev/<driver>=true.
#[derive(Debug, Parser)]
#[command(name = "node_labeler")]
struct Args {
    /// Caravan server address; several comma-separated addresses fail over in order.
    #[arg(long, env = "CARAVAN_ADDR", default_value = caravan_client::DEFAULT_ADDRESS)]
    server: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let client = HttpClient::new(&args.server)
        .with_context(|| format!("invalid --server {:?}", args.server))?;
    tracing::info!(server = %args.server, "labelling nodes with their healthy drivers");
    run(client).await;
    Ok(())
}

/// What every reconcile shares.
struct Ctx<C> {
    client: C,
    /// The controller's cache of Nodes.
    nodes: Store<Node>,
}

/// Runs the controller until its watches end (never, against a server): generic over the
/// client, so the tests run it against `FakeClient`.
async fn run<C: Client>(client: C) {
    let controller =
        Controller::<Node, C>::new(client.clone(), Kind::Node, None, ListQuery::default());
    let ctx = Arc::new(Ctx {
        client,
        nodes: controller.store(),
    });
    // The stream must be polled for the controller to run; each item is a finished reconcile.
    let mut results = std::pin::pin!(controller.run(reconcile, error_policy, ctx));
    while let Some(result) = results.next().await {
        match result {
            Ok((node, action)) => tracing::debug!(%node, ?action, "reconciled"),
            // Already logged by the error policy, which scheduled the retry.
            Err(ControllerError::ReconcileFailed { .. }) => {}
            // The watcher backs off and retries on its own (a server restarting, say).
            Err(ControllerError::WatchFailed { kind, source }) => {
                tracing::warn!(%kind, error = %source, "watch failed; retrying");
            }
        }
    }
}

/// Brings one node's driver labels in line with its status. Level-based: it looks only at the
/// node as it is now, so it does the right thing however many changes it missed, and writes
/// only when something differs (its own write triggers one more reconcile, which finds nothing
/// to do).
async fn reconcile<C: Client>(node: Arc<Node>, ctx: Arc<Ctx<C>>) -> Result<Action, ClientError> {
    let name = node.metadata.name();
    // A deleted node is reconciled once more, with the last state the watch saw; it is no
    // longer in the cache then, and there is nothing to label.
    if ctx.nodes.get("", name).is_none() {
        return Ok(Action::await_change());
    }
    let Some(change) = LabelChange::of(&node) else {
        return Ok(Action::await_change());
    };
    match ctx
        .client
        .patch(Kind::Node, "", name, change.merge_patch())
        .await
    {
        Ok(_) => tracing::info!(
            node = name,
            added = ?change.add,
            removed = ?change.remove,
            "relabelled node"
        ),
        // Deleted since the cache saw it: its deletion is reconciled next.
        Err(ClientError::NotFound) => {}
        Err(error) => return Err(error),
    }
    // The watch reconciles the node again whenever it changes: no periodic requeue needed.
    Ok(Action::await_change())
}

/// A failed reconcile (the server unreachable, say): log it and try again in a while.
fn error_policy<C: Client>(node: Arc<Node>, error: &ClientError, _ctx: Arc<Ctx<C>>) -> Action {
    tracing::warn!(
        node = node.metadata.name(),
        %error,
        retry_in = ?RETRY_AFTER,
        "labelling failed"
    );
    Action::requeue(RETRY_AFTER)
}

/// The labels a node should carry: one per driver its status reports healthy.
fn wanted_labels(node: &Node) -> BTreeSet<String> {
    let drivers = node.status.iter().flat_map(|status| &status.drivers);
    drivers
        .filter(|(_, driver)| driver.healthy)
        .filter_map(|(driver, _)| {
            if label_name_ok(driver) {
                Some(format!("{PREFIX}{driver}"))
            } else {
                tracing::warn!(
                    node = node.metadata.name(),
                    driver,
                    "a driver name that cannot be a label name; not labelled"
                );
                None
            }
        })
        .collect()
}

/// Whether `name` may follow the prefix of a label key: at most 63 characters, alphanumeric,
/// `-`, `_` or `.`, starting and ending alphanumeric (the server rejects any other).
fn label_name_ok(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The label keys to set and to remove to bring a node in line.
#[derive(Debug, PartialEq)]
struct LabelChange {
    add: Vec<String>,
    remove: Vec<String>,
}

impl LabelChange {
    /// What has to change on `node`; `None` when its labels are as they should be.
    fn of(node: &Node) -> Option<LabelChange> {
        let wanted = wanted_labels(node);
        let labels = &node.metadata.labels;
        let add: Vec<String> = wanted
            .iter()
            .filter(|key| labels.get(*key).map(String::as_str) != Some(VALUE))
            .cloned()
            .collect();
        let remove: Vec<String> = labels
            .keys()
            .filter(|key| key.starts_with(PREFIX) && !wanted.contains(*key))
            .cloned()
            .collect();
        (!add.is_empty() || !remove.is_empty()).then_some(LabelChange { add, remove })
    }

    /// A JSON merge patch of the node's labels: `null` removes one. It names only the labels
    /// that change, so labels set by others meanwhile survive, and carries no
    /// `resourceVersion`: the last writer of one of our labels wins, which is right here.
    fn merge_patch(&self) -> Value {
        let mut labels = Map::new();
        for key in &self.add {
            labels.insert(key.clone(), json!(VALUE));
        }
        for key in &self.remove {
            labels.insert(key.clone(), Value::Null);
        }
        json!({"metadata": {"labels": labels}})
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use caravan_runtime::fake::{FakeClient, Verb, wait_for};

    use super::*;

    const MOCK: &str = "driver.example.caravan.dev/mock";
    const OCI: &str = "driver.example.caravan.dev/oci";

    fn node(name: &str, labels: Value, drivers: Value) -> Value {
        json!({
            "metadata": {"name": name, "labels": labels},
            "status": {"status": "ready", "drivers": drivers},
        })
    }

    /// Every label of the node `name` in the fake.
    fn labels(fake: &FakeClient, name: &str) -> BTreeMap<String, String> {
        let node = fake.object(Kind::Node, "", name).expect("the node exists");
        serde_json::from_value(node["metadata"]["labels"].clone()).unwrap_or_default()
    }

    fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn labels_follow_the_healthy_drivers_and_leave_other_labels_alone() {
        let fake = FakeClient::new();
        fake.seed(
            Kind::Node,
            node(
                "n1",
                json!({"team": "infra", "driver.example.caravan.dev/exec": "true"}),
                json!({
                    "mock": {"detected": true, "healthy": true},
                    "oci": {"detected": true, "healthy": false},
                }),
            ),
        );
        tokio::spawn(run(fake.clone()));
        let want = expect(&[("team", "infra"), (MOCK, "true")]);
        wait_for("n1 is labelled with mock only", || {
            labels(&fake, "n1") == want
        })
        .await;

        fake.patch_status(
            Kind::Node,
            "",
            "n1",
            json!({"status": {"drivers": {
                "mock": {"healthy": false},
                "oci": {"healthy": true},
            }}}),
        )
        .await
        .unwrap();
        let want = expect(&[("team", "infra"), (OCI, "true")]);
        wait_for("n1 is labelled with oci only", || {
            labels(&fake, "n1") == want
        })
        .await;

        // Its own writes come back as changes and are reconciled too, but patch nothing: two
        // relabels and the test's status write are all the patches, even an hour later.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(
            fake.calls(Verb::Patch),
            3,
            "two relabels and the status write"
        );
        assert_eq!(labels(&fake, "n1"), want);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_patch_is_retried() {
        let fake = FakeClient::new();
        fake.fail_next(Verb::Patch, ClientError::Unavailable("server down".into()));
        fake.seed(
            Kind::Node,
            node(
                "n1",
                json!({}),
                json!({"mock": {"detected": true, "healthy": true}}),
            ),
        );
        tokio::spawn(run(fake.clone()));
        wait_for("n1 is labelled", || labels(&fake, "n1").contains_key(MOCK)).await;
        assert_eq!(fake.calls(Verb::Patch), 2, "one failed patch, one retry");
    }

    #[test]
    fn driver_names_that_cannot_be_label_names_are_skipped() {
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "caravan.dev/v1",
            "kind": "Node",
            "metadata": {"name": "n1"},
            "status": {"drivers": {
                "raw_exec": {"healthy": true},
                "bad/name": {"healthy": true},
                "-dash": {"healthy": true},
            }},
        }))
        .unwrap();
        assert_eq!(
            LabelChange::of(&node),
            Some(LabelChange {
                add: vec!["driver.example.caravan.dev/raw_exec".into()],
                remove: vec![],
            })
        );
    }
}
