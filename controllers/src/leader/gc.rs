//! The leader's garbage collection loop: every `gcInterval` and on a [`GcTrigger`] request, one
//! pass decides over the caches ([`crate::gc::decide`], pure) and deletes what it found
//! ([`reap`]).
//!
//! [`GcTrigger`]: crate::gc::GcTrigger

mod reap;
#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

use caravan_runtime::Client;
use caravan_schemas::gc::GcSummary;
use tokio::time::MissedTickBehavior;

use super::Caches;
use crate::gc::{GcConfig, GcThresholds, Objects, decide};
pub(crate) use reap::ReapedJobs;

/// The shortest interval between periodic passes.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// One pass over the cached objects.
pub(crate) async fn pass<C: Client>(
    client: &C,
    caches: &Caches,
    thresholds: &GcThresholds,
    reaped: &ReapedJobs,
) -> GcSummary {
    let nodes = caches.nodes.state();
    let jobs = caches.jobs.state();
    let evaluations = caches.evaluations.state();
    let allocations = caches.allocations.state();
    let deployments = caches.deployments.state();
    let objects = Objects {
        nodes: &nodes,
        jobs: &jobs,
        evaluations: &evaluations,
        allocations: &allocations,
        deployments: &deployments,
    };
    let garbage = decide(objects, thresholds, SystemTime::now());
    if garbage.is_empty() {
        return GcSummary::default();
    }
    reap::reap(client, garbage, reaped).await
}

/// Runs passes every `config.interval` and on request, until dropped.
pub(crate) async fn run<C: Client>(
    client: C,
    caches: Caches,
    config: GcConfig,
    reaped: ReapedJobs,
) {
    let mut requests = config.trigger.listen().await;
    caches.wait_until_ready().await;
    let period = config.interval.max(MIN_INTERVAL);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let (force, reply) = tokio::select! {
            _ = ticks.tick() => (false, None),
            Some(request) = requests.recv() => (request.force, Some(request.reply)),
        };
        let thresholds = if force {
            GcThresholds::ZERO
        } else {
            config.thresholds
        };
        let summary = pass(&client, &caches, &thresholds, &reaped).await;
        if summary.total() > 0 || !summary.errors.is_empty() {
            tracing::info!(
                nodes = summary.nodes.count,
                jobs = summary.jobs.count,
                evaluations = summary.evaluations.count,
                allocations = summary.allocations.count,
                deployments = summary.deployments.count,
                errors = summary.errors.len(),
                force,
                "garbage collected"
            );
        }
        if let Some(reply) = reply {
            let _ = reply.send(summary);
        }
    }
}
