//! Node liveness on the leader: a node that misses its heartbeat TTL plus grace is marked
//! `down` (one Raft write through the status subresource); the leader's node trigger then
//! creates an evaluation for every job with allocations on it, and the schedulers mark those
//! allocations `lost` and replace them.
//!
//! ```text
//!  gains leadership (leadership.rs) ─▶ run: every known Node not yet heard from expected
//!                                       within failover TTL + grace
//!  every tick ─▶ HeartbeatTracker::expired(now) ─▶ forget_expired ─▶ api::patch status: down
//!  loses leadership (leadership.rs) ─▶ run aborted, forget_deadlines
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use caravan_schemas::Kind;
use serde_json::{Value, json};

use crate::api::{self, GetOptions, ListOptions, Patch, Subresource, WriteOptions};
use crate::context::ApiContext;
use crate::store::StoredObject;

/// How often deadlines are checked: a quarter of the minimum TTL, at most every second.
fn tick(ctx: &ApiContext) -> Duration {
    (ctx.heartbeats.config().min_ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// The `status.status` of a node object.
fn status_of(node: &StoredObject) -> String {
    node.to_value()
        .pointer("/status/status")
        .and_then(Value::as_str)
        .unwrap_or("initializing")
        .to_string()
}

/// Status of a node in the store, if it exists.
fn node_status(ctx: &ApiContext, name: &str) -> Option<String> {
    let node = api::get(ctx, Kind::Node, "", name, &GetOptions::default()).ok()?;
    Some(status_of(&node))
}

/// Gives every node that is not down the failover TTL (a new leader has seen no heartbeat).
fn expect_known_nodes(ctx: &ApiContext, now: Instant) {
    let config = ctx.heartbeats.config().clone();
    let deadline = now + config.failover_ttl + config.grace;
    let Ok(nodes) = api::list(ctx, Kind::Node, None, &ListOptions::default()) else {
        return;
    };
    for node in nodes.items {
        if status_of(&node) != "down" {
            ctx.heartbeats.expect(&node.key.name, deadline);
        }
    }
}

/// Marks `node` down.
async fn mark_down(ctx: &ApiContext, node: &str) -> Result<(), api::Error> {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    // Garbage collection reads this time as when the node went down
    // (`caravan_controllers::gc::down_since`): keep `last checked {time}`.
    let down = Patch::Merge(json!({"status": {
        "status": "down",
        "statusDescription": format!("missed its heartbeat TTL (last checked {now})"),
    }}));
    let options = WriteOptions::default();
    api::patch(
        ctx,
        Kind::Node,
        "",
        node,
        Subresource::Status,
        down,
        &options,
    )
    .await?;
    Ok(())
}

/// Marks nodes down as they miss their heartbeats, for as long as this server leads:
/// `leadership.rs` starts it when leadership is gained and aborts it when it is lost. A new
/// leader has seen no heartbeat: heartbeats it already took keep their deadlines, and every
/// other known node that is not down gets the failover TTL.
pub async fn run(ctx: Arc<ApiContext>) {
    expect_known_nodes(&ctx, Instant::now());
    loop {
        tokio::time::sleep(tick(&ctx)).await;
        if !ctx.store.is_leader() {
            // Leadership moved; `leadership.rs` stops this loop as soon as it sees it.
            continue;
        }
        let now = Instant::now();
        for node in ctx.heartbeats.expired(now) {
            match node_status(&ctx, &node) {
                None => ctx.heartbeats.forget(&node),
                Some(status) if status == "down" => ctx.heartbeats.forget(&node),
                Some(_) => {
                    if !ctx.heartbeats.forget_expired(&node, now) {
                        continue;
                    }
                    match mark_down(&ctx, &node).await {
                        Ok(()) => {
                            tracing::warn!(node = %node, "node missed its heartbeat: marked down")
                        }
                        Err(e) => {
                            tracing::warn!(node = %node, error = %e, "failed to mark a node down; retrying");
                            ctx.heartbeats.expect(&node, now);
                        }
                    }
                }
            }
        }
    }
}

/// Forgets every heartbeat deadline when leadership is lost: deadlines from an earlier term
/// mean nothing to the next one.
pub fn forget_deadlines(ctx: &ApiContext) {
    ctx.heartbeats.clear();
}
