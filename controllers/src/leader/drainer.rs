//! The leader's node drainer loop: every [`DRAIN_INTERVAL`] it asks [`crate::drain::decide`]
//! (pure) what to do with draining nodes and carries it out through the client: stamps
//! `spec.drain.startedAt`, marks allocations for migration with one node-drain evaluation per
//! job, and clears `spec.drain` of drained nodes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use caravan_runtime::{Client, ClientError};
use caravan_schemas::Kind;
use serde_json::json;

use super::Shared;
use super::evals::create;
use crate::drain::{Decisions, decide};
use crate::evaluator::drain_eval;
use crate::scheduler::time::format_rfc3339;

/// How often the drainer looks again: health and deadlines move with the clock.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(500);

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn ignore_missing(result: Result<serde_json::Value, ClientError>) -> Result<(), ClientError> {
    match result {
        Ok(_) | Err(ClientError::NotFound) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Runs the drainer until the future is dropped.
pub(crate) async fn run<C: Client>(shared: Arc<Shared<C>>) {
    shared.caches.wait_until_ready().await;
    // Allocations marked by this drainer, until the cache shows the mark.
    let mut marked: HashSet<(String, String)> = HashSet::new();
    let mut ticker = tokio::time::interval(DRAIN_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let nodes = shared.caches.nodes.state();
        if nodes.iter().all(|n| n.spec.drain.is_none()) {
            marked.clear();
            continue;
        }
        let allocs = shared.caches.allocations.state();
        let jobs = &shared.caches.jobs;
        let now = now_unix();
        let decisions = decide(&nodes, &allocs, &|ns, name| jobs.get(ns, name), now);
        if let Err(e) = apply(&shared, decisions, &mut marked, now).await {
            tracing::warn!(error = %e, "drainer write failed; retrying");
        }
        marked.retain(|(ns, name)| {
            shared
                .caches
                .allocations
                .get(ns, name)
                .is_some_and(|a| !a.spec.should_migrate())
        });
    }
}

async fn apply<C: Client>(
    shared: &Shared<C>,
    decisions: Decisions,
    marked: &mut HashSet<(String, String)>,
    now: i64,
) -> Result<(), ClientError> {
    let client = &shared.client;
    for node in &decisions.stamp_start {
        let patch = json!({"spec": {"drain": {"startedAt": format_rfc3339(now)}}});
        ignore_missing(client.patch(Kind::Node, "", node, patch).await)?;
    }
    // Marks, then one evaluation per job and node.
    let mut evals: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for alloc in &decisions.migrate {
        let ns = alloc.metadata.namespace().to_string();
        let name = alloc.metadata.name().to_string();
        if !marked.insert((ns.clone(), name.clone())) {
            continue;
        }
        let patch = json!({"spec": {"desiredTransition": {"migrate": true}}});
        ignore_missing(client.patch(Kind::Allocation, &ns, &name, patch).await)?;
        tracing::info!(alloc = %name, node = %alloc.spec.node_name, "allocation marked for migration");
        evals
            .entry((
                ns,
                alloc.spec.job_name.clone(),
                alloc.spec.node_name.clone(),
            ))
            .or_default()
            .push(name);
    }
    for ((ns, job_name, node), names) in evals {
        let Some(job) = shared.caches.jobs.get(&ns, &job_name) else {
            continue;
        };
        let req = drain_eval(&job, &node);
        let mut discriminator: Vec<&str> = vec!["drain", &node];
        discriminator.extend(names.iter().map(String::as_str));
        create(client, &req, &discriminator).await?;
    }
    for node in &decisions.complete {
        let patch = json!({"spec": {"drain": null}});
        ignore_missing(client.patch(Kind::Node, "", node, patch).await)?;
        tracing::info!(node = %node, "node drain complete");
    }
    Ok(())
}
