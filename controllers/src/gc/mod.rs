//! Garbage collection on the leader, after Nomad's core scheduler: nodes down for long, dead
//! jobs, and terminal evaluations, allocations and deployments are deleted once they pass
//! their thresholds.
//!
//! ```text
//!  every gcInterval ─┐
//!  GcTrigger ────────┴▶ pass: caches ─▶ decide (pure: objects, thresholds, now) ─▶ Garbage
//!   (system gc)                                                                     │
//!        ▲                 GcSummary ◀── reap: re-read, delete through Client ◀─────┘
//!        └──────────────────────┘
//! ```
//!
//! The rules are in [`decide`](mod@decide) (pure); the loop that runs them and deletes through the normal API
//! delete path is the leader's (`leader::gc`).

mod age;
pub mod decide;
mod deployments;
mod trigger;

#[cfg(test)]
pub(crate) mod tests;

use std::time::Duration;

pub use age::{
    alloc_changed_at, deployment_changed_at, down_since, eval_changed_at, job_changed_at,
};
pub use caravan_schemas::gc::{Deleted, GcSummary};
pub use decide::{Garbage, Objects, decide};
pub use trigger::{GcError, GcTrigger};

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
    /// A terminal deployment unchanged for this long goes, unless it is its job's newest or
    /// an allocation that is not terminal names it (`deploymentGCThreshold`, 1h).
    pub deployment: Duration,
}

impl GcThresholds {
    /// Every threshold zero: a forced collection. The rules that keep live objects still hold.
    pub const ZERO: GcThresholds = GcThresholds {
        node: Duration::ZERO,
        job: Duration::ZERO,
        eval: Duration::ZERO,
        batch_eval: Duration::ZERO,
        deployment: Duration::ZERO,
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
            deployment: Duration::from_secs(HOUR),
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
