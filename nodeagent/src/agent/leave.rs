//! Graceful leave (`leave_on_interrupt`, `leave_on_terminate`): the agent drains its own node
//! so the servers migrate its allocations, keeps running them until each has stopped and been
//! reported, then marks its node `down` and exits.

use std::time::{Duration, SystemTime};

use caravan_runtime::{Client as _, ClientError};
use caravan_schemas::Kind;
use serde_json::{Value, json};
use tokio::time::Instant;

/// How the agent stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shutdown {
    /// Exit now; the tasks keep running and a restarted agent re-attaches to them (or, with
    /// `stop_tasks_on_shutdown`, stop them first).
    #[default]
    Stop,
    /// Drain this node so its work migrates, then exit.
    Leave,
}

/// How often the agent looks at its Node while it drains.
const POLL: Duration = Duration::from_millis(250);
/// Time past the drain deadline the agent still waits for the servers to finish.
const SLACK: Duration = Duration::from_secs(30);

/// The merge patch that drains the agent's own node.
pub fn drain_patch(deadline: Duration, now: SystemTime) -> Value {
    json!({"spec": {
        "schedulingEligibility": "ineligible",
        "drain": {
            "deadline": humantime::format_duration(deadline).to_string(),
            "startedAt": humantime::format_rfc3339_seconds(now).to_string(),
        },
    }})
}

/// Drains `node` and waits until the servers report the drain complete (or the deadline and
/// some slack pass); then marks the node `down`.
pub async fn leave(
    client: &caravan_client::HttpClient,
    node: &str,
    deadline: Duration,
) -> Result<(), ClientError> {
    tracing::info!(node, deadline = %humantime::format_duration(deadline), "leaving: draining this node");
    client
        .patch(
            Kind::Node,
            "",
            node,
            drain_patch(deadline, SystemTime::now()),
        )
        .await?;
    let until = Instant::now() + deadline + SLACK;
    loop {
        match client.get(Kind::Node, "", node).await {
            Ok(n) if n.pointer("/spec/drain").is_none_or(Value::is_null) => break,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "leaving: could not read the node"),
        }
        if Instant::now() >= until {
            tracing::warn!(node, "leaving: the drain did not complete in time");
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let status = json!({"status": {"status": "down", "statusDescription": "the agent left"}});
    client.patch_status(Kind::Node, "", node, status).await?;
    tracing::info!(node, "left: every allocation migrated");
    Ok(())
}
