//! A speed measurement of the service scheduler (`testsuite` feature), wired to
//! `caravan bench scheduler`.

use std::time::{Duration, Instant};

use super::config::SchedulerConfig;
use super::generic::GenericScheduler;
use super::testing::{Harness, cluster, eval_for, service_job};
use super::{Scheduler, util};

/// Builds an in-memory cluster of `nodes` nodes, registers one service job of `count`
/// allocations (100 MHz, 64 MB each) and runs the service scheduler once through a [`Harness`]
/// that applies the plan to its state without keeping a copy.
/// Returns the time spent inside `process` (plan submission to the harness included) and the
/// number of allocations placed.
pub fn bench_service_placement(nodes: usize, count: usize) -> (Duration, usize) {
    let mut harness = Harness::without_records(cluster(nodes, &["dc1"]));
    let job = service_job("bench", u32::try_from(count).unwrap_or(u32::MAX), 100, 64);
    harness.state.upsert_job(job.clone());
    let eval = eval_for("bench-eval", &job);
    let snapshot = harness.snapshot();
    let start = Instant::now();
    let outcome = GenericScheduler::new(false, snapshot, &mut harness, SchedulerConfig::default())
        .process(&eval);
    let elapsed = start.elapsed();
    let placed = match outcome {
        Ok(()) => harness
            .live_allocs(util::namespace(&job.metadata), "bench")
            .len(),
        Err(_) => 0,
    };
    (elapsed, placed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_places_every_allocation() {
        let (elapsed, placed) = bench_service_placement(200, 100);
        assert_eq!(placed, 100);
        assert!(elapsed > Duration::ZERO);
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// `cargo test --release -p caravan-controllers bench_speed -- --ignored --nocapture`
    #[test]
    #[ignore = "speed measurement, run in release"]
    fn bench_speed() {
        for _ in 0..3 {
            let (elapsed, placed) = bench_service_placement(5000, 1000);
            let rate = placed as f64 / elapsed.as_secs_f64();
            println!("placed {placed} on 5000 nodes in {elapsed:?}: {rate:.0} placements/s");
        }
    }
}
