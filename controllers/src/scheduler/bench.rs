//! A speed measurement of the service scheduler (`testsuite` feature), wired to
//! `caravan bench scheduler`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use caravan_schemas::Evaluation;

use super::Scheduler;
use super::config::SchedulerConfig;
use super::generic::GenericScheduler;
use super::state::{Planner, State};
use super::testing::{Harness, cluster, eval_for, service_job};
use super::{Plan, PlanResult, SchedError};

/// What one scheduling run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Time inside `process`, plan submission included.
    pub total: Duration,
    /// Of `total`, the time the harness spent applying the plan (re-checking every node's fit
    /// and storing the allocations): the plan applier's share, not the scheduler's.
    pub applying: Duration,
    /// Allocations placed.
    pub placed: usize,
}

impl Measured {
    /// Time the scheduler itself spent: reconciling, selecting nodes and building the plan.
    pub fn scheduling(&self) -> Duration {
        self.total.saturating_sub(self.applying)
    }
}

/// A [`Planner`] that times the plan submissions it forwards.
struct Timed<'a> {
    inner: &'a mut Harness,
    applying: Duration,
}

impl Planner for Timed<'_> {
    fn submit_plan(
        &mut self,
        plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), SchedError> {
        let start = Instant::now();
        let outcome = self.inner.submit_plan(plan);
        self.applying += start.elapsed();
        outcome
    }

    fn update_eval(&mut self, eval: Evaluation) -> Result<(), SchedError> {
        self.inner.update_eval(eval)
    }

    fn create_eval(&mut self, eval: Evaluation) -> Result<(), SchedError> {
        self.inner.create_eval(eval)
    }
}

/// Builds an in-memory cluster of `nodes` nodes, registers one service job of `count`
/// allocations (100 MHz, 64 MB each) and runs the service scheduler once through a [`Harness`]
/// that applies the plan to its state without keeping a copy.
pub fn bench_service_placement(nodes: usize, count: usize) -> Measured {
    let mut harness = Harness::without_records(cluster(nodes, &["dc1"]));
    let job = service_job("bench", u32::try_from(count).unwrap_or(u32::MAX), 100, 64);
    harness.state.upsert_job(job.clone());
    let eval = eval_for("bench-eval", &job);
    let snapshot = harness.snapshot();
    let mut planner = Timed {
        inner: &mut harness,
        applying: Duration::ZERO,
    };
    let start = Instant::now();
    let outcome = GenericScheduler::service(snapshot, &mut planner, SchedulerConfig::default())
        .process(&eval);
    let total = start.elapsed();
    let applying = planner.applying;
    let placed = match outcome {
        Ok(()) => harness.live_allocs(job.metadata.namespace(), "bench").len(),
        Err(_) => 0,
    };
    Measured {
        total,
        applying,
        placed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_places_every_allocation_and_splits_the_time() {
        let measured = bench_service_placement(200, 100);
        assert_eq!(measured.placed, 100);
        assert!(measured.applying > Duration::ZERO);
        assert!(measured.scheduling() > Duration::ZERO);
        assert!(measured.applying < measured.total);
    }
}
