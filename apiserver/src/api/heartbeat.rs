//! A node agent's heartbeat: the leader keeps it in memory and writes only a status change.
//!
//! ```text
//! heartbeat(node) ─▶ leader? ─▶ Node exists? ─▶ status.status != ready ─▶ merge into status
//!                                              │                          (one Raft write)
//!                                              └▶ HeartbeatTracker::beat (memory only) ─▶ TTL
//! ```

use std::time::{Duration, Instant, SystemTime};

use caravan_runtime::Subresource;
use caravan_schemas::Kind;
use serde_json::{Value, json};

use super::error::Error;
use super::options::{GetOptions, WriteOptions};
use super::read::get;
use super::write::{Patch, patch};
use crate::context::ApiContext;

/// Records a heartbeat of `node` and returns the TTL it must heartbeat within; marks the node
/// `ready` first when it is not.
pub async fn heartbeat(ctx: &ApiContext, node: &str) -> Result<Duration, Error> {
    if !ctx.store.is_leader() {
        return Err(Error::Unavailable(
            "heartbeats are held by the leader and this server is not the leader".into(),
        ));
    }
    let current = get(ctx, Kind::Node, "", node, &GetOptions::default())?;
    let ready = current
        .to_value()
        .pointer("/status/status")
        .and_then(Value::as_str)
        == Some("ready");
    if !ready {
        mark_ready(ctx, node).await?;
    }
    Ok(ctx.heartbeats.beat(node, Instant::now()))
}

/// The one write a heartbeat makes: the node's status becomes `ready`, through the status
/// subresource like any other status change.
async fn mark_ready(ctx: &ApiContext, node: &str) -> Result<(), Error> {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let status = Patch::Merge(json!({"status": {"status": "ready", "lastHeartbeat": now}}));
    let options = WriteOptions::default();
    patch(
        ctx,
        Kind::Node,
        "",
        node,
        Subresource::Status,
        status,
        &options,
    )
    .await?;
    Ok(())
}
