//! Node liveness on the leader: a node that misses its heartbeat TTL plus grace is marked
//! `down` (one Raft write through the status subresource); the leader's node trigger then
//! creates an evaluation for every job with allocations on it, and the schedulers mark those
//! allocations `lost` and replace them.
//!
//! ```text
//!  becomes leader ─▶ every known Node not yet heard from expected within failover TTL + grace
//!  loses leadership ─▶ forget every deadline
//!  every tick ─▶ HeartbeatTracker::expired(now) ─▶ forget_expired ─▶ status: down
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use caravan_schemas::Kind;
use serde_json::{Value, json};

use super::context::ApiContext;
use super::path::ResourcePath;
use super::query::Query;
use super::write::{self, PatchKind};
use crate::store::ObjectKey;

/// How often deadlines are checked: a quarter of the minimum TTL, at most every second.
fn tick(ctx: &ApiContext) -> Duration {
    (ctx.heartbeats.config().min_ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Status of a node in the store, if it exists.
fn node_status(ctx: &ApiContext, name: &str) -> Option<String> {
    let key = ObjectKey {
        kind: Kind::Node,
        namespace: String::new(),
        name: name.to_string(),
    };
    let object = ctx.store.state().get(&key)?;
    Some(
        object
            .to_value()
            .pointer("/status/status")
            .and_then(Value::as_str)
            .unwrap_or("initializing")
            .to_string(),
    )
}

/// Gives every node that is not down the failover TTL (a new leader has seen no heartbeat).
fn expect_known_nodes(ctx: &ApiContext, now: Instant) {
    let config = ctx.heartbeats.config().clone();
    let deadline = now + config.failover_ttl + config.grace;
    let names: Vec<(String, String)> = ctx
        .store
        .state()
        .list(Kind::Node, None, None)
        .map(|o| {
            let value = o.to_value();
            let status = value
                .pointer("/status/status")
                .and_then(Value::as_str)
                .unwrap_or("initializing")
                .to_string();
            (o.key.name.clone(), status)
        })
        .collect();
    for (name, status) in names {
        if status != "down" {
            ctx.heartbeats.expect(&name, deadline);
        }
    }
}

/// Marks `node` down.
async fn mark_down(ctx: &ApiContext, node: &str) -> Result<(), super::ApiError> {
    let path = ResourcePath {
        kind: Kind::Node,
        namespace: None,
        name: Some(node.to_string()),
        status: true,
    };
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    // Garbage collection reads this time as when the node went down
    // (`caravan_controllers::gc::down_since`): keep `last checked {time}`.
    let patch = json!({"status": {
        "status": "down",
        "statusDescription": format!("missed its heartbeat TTL (last checked {now})"),
    }});
    write::patch_with(ctx, &path, &Query::default(), PatchKind::Merge(patch)).await?;
    Ok(())
}

/// Marks nodes down as they miss their heartbeats, while this server is the leader. Runs
/// forever.
pub async fn run_node_liveness(ctx: Arc<ApiContext>) {
    let mut was_leader = false;
    loop {
        tokio::time::sleep(tick(&ctx)).await;
        let leader = ctx.store.is_leader();
        if leader && !was_leader {
            // Heartbeats this leader already took (they are refused elsewhere) keep their
            // deadlines; every other known node gets the failover TTL.
            expect_known_nodes(&ctx, Instant::now());
        }
        if !leader && was_leader {
            // Deadlines from an earlier term mean nothing to the next one.
            ctx.heartbeats.clear();
        }
        was_leader = leader;
        if !leader {
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
