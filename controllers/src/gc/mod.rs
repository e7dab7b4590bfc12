//! Garbage collection on the leader, after Nomad's core scheduler: nodes down for long, dead
//! jobs, and terminal evaluations and allocations are deleted once they pass their thresholds.
//!
//! ```text
//!  every gcInterval ─┐
//!  GcTrigger ────────┴▶ pass: caches ─▶ decide (pure: objects, thresholds, now) ─▶ Garbage
//!   (system gc)                                                                     │
//!        ▲                 GcSummary ◀── reap: re-read, delete through Client ◀─────┘
//!        └──────────────────────┘
//! ```
//!
//! The rules are in [`decide`]; deletions go through the normal API delete path.

mod age;
pub mod decide;
mod reap;
mod trigger;

#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

use tokio::time::MissedTickBehavior;

pub use age::{alloc_changed_at, down_since, eval_changed_at, job_changed_at};
pub use caravan_schemas::gc::{Deleted, GcSummary};
pub use decide::{Garbage, Objects, decide};
pub(crate) use reap::ReapedJobs;
pub use trigger::{GcError, GcTrigger};

use crate::leader::Caches;
use caravan_runtime::Client;

/// The shortest interval between periodic passes.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// How old each kind of garbage must be before it is collected (Nomad's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcThresholds {
    /// A node `down` for this long goes (`nodeGCThreshold`, 24h).
    pub node: Duration,
    /// A dead job unchanged for this long goes (`jobGCThreshold`, 4h).
    pub job: Duration,
    /// A terminal evaluation this old goes (`evalGCThreshold`, 1h).
    pub eval: Duration,
    /// A terminal evaluation of a batch or sysbatch job this old goes (`batchEvalGCThreshold`,
    /// 24h).
    pub batch_eval: Duration,
}

impl GcThresholds {
    /// Every threshold zero: a forced collection. The rules that keep live objects still hold.
    pub const ZERO: GcThresholds = GcThresholds {
        node: Duration::ZERO,
        job: Duration::ZERO,
        eval: Duration::ZERO,
        batch_eval: Duration::ZERO,
    };
}

impl Default for GcThresholds {
    fn default() -> Self {
        const HOUR: u64 = 3600;
        GcThresholds {
            node: Duration::from_secs(24 * HOUR),
            job: Duration::from_secs(4 * HOUR),
            eval: Duration::from_secs(HOUR),
            batch_eval: Duration::from_secs(24 * HOUR),
        }
    }
}

/// Settings of the garbage collection loop.
#[derive(Clone, Debug)]
pub struct GcConfig {
    /// Time between periodic passes (`gcInterval`, 5m).
    pub interval: Duration,
    pub thresholds: GcThresholds,
    /// Runs a pass on request; the loop listens to it.
    pub trigger: GcTrigger,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            interval: Duration::from_secs(5 * 60),
            thresholds: GcThresholds::default(),
            trigger: GcTrigger::new(),
        }
    }
}

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
    let objects = Objects {
        nodes: &nodes,
        jobs: &jobs,
        evaluations: &evaluations,
        allocations: &allocations,
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
