//! `caravan bench scheduler`: the pure service scheduler placing one job on an in-memory
//! cluster, no server involved. One warm-up run, then `--runs` measured runs; each reports
//! placements per second, and the summary gives the median rate and the p50/p99 of the time
//! spent evaluating.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use caravan_controllers::scheduler::bench::bench_service_placement;

use super::SchedulerBenchArgs;
use super::report::percentile;

/// One measured run: time inside the scheduler and allocations placed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunResult {
    pub elapsed: Duration,
    pub placed: usize,
}

impl RunResult {
    /// Placements per second of this run.
    pub fn rate(&self) -> f64 {
        self.placed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The summary line's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median_rate: f64,
    pub p50: Duration,
    pub p99: Duration,
}

pub async fn run(args: SchedulerBenchArgs) -> anyhow::Result<()> {
    ensure!(args.runs > 0, "--runs must be at least 1");
    ensure!(args.nodes > 0, "--nodes must be at least 1");
    println!(
        "bench scheduler: service job of {} allocations (100 MHz, 64 MB) on {} nodes, {} runs after 1 warm-up",
        args.count, args.nodes, args.runs
    );
    let (nodes, count, runs) = (args.nodes, args.count, args.runs);
    let results = tokio::task::spawn_blocking(move || {
        let _ = bench_service_placement(nodes, count);
        (0..runs)
            .map(|i| {
                let (elapsed, placed) = bench_service_placement(nodes, count);
                let result = RunResult { elapsed, placed };
                println!("{}", run_line(i + 1, &result));
                result
            })
            .collect::<Vec<_>>()
    })
    .await
    .context("scheduler benchmark panicked")?;
    if let Some(short) = results.iter().find(|r| r.placed < count) {
        anyhow::bail!(
            "the scheduler placed only {} of {count} allocations: the cluster is too small",
            short.placed
        );
    }
    let summary = summarize(&results);
    println!("{}", summary_line(&summary));
    Ok(())
}

/// `run 1: placed 1000 in 52.31 ms: 19117 placements/s`.
pub fn run_line(index: usize, result: &RunResult) -> String {
    format!(
        "run {index}: placed {} in {:.2} ms: {:.0} placements/s",
        result.placed,
        result.elapsed.as_secs_f64() * 1000.0,
        result.rate()
    )
}

/// `median 19117 placements/s, evaluation p50 52.31 ms p99 60.02 ms`.
pub fn summary_line(summary: &Summary) -> String {
    format!(
        "median {:.0} placements/s, evaluation time p50 {:.2} ms p99 {:.2} ms",
        summary.median_rate,
        summary.p50.as_secs_f64() * 1000.0,
        summary.p99.as_secs_f64() * 1000.0
    )
}

/// Median rate (the mean of the middle two for an even count) and nearest-rank percentiles.
pub fn summarize(results: &[RunResult]) -> Summary {
    let mut rates: Vec<f64> = results.iter().map(RunResult::rate).collect();
    rates.sort_by(f64::total_cmp);
    let median_rate = match rates.len() {
        0 => 0.0,
        n if n % 2 == 1 => rates[n / 2],
        n => (rates[n / 2 - 1] + rates[n / 2]) / 2.0,
    };
    let mut times: Vec<Duration> = results.iter().map(|r| r.elapsed).collect();
    times.sort();
    Summary {
        median_rate,
        p50: percentile(&times, 0.50),
        p99: percentile(&times, 0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ms: u64, placed: usize) -> RunResult {
        RunResult {
            elapsed: Duration::from_millis(ms),
            placed,
        }
    }

    #[test]
    fn summary_takes_the_median_rate_and_nearest_rank_percentiles() {
        let results = [run(100, 1000), run(50, 1000), run(200, 1000), run(80, 1000)];
        let s = summarize(&results);
        // Rates 5000, 10000, 12500, 20000: median of the middle two.
        assert_eq!(s.median_rate, 11250.0);
        assert_eq!(s.p50, Duration::from_millis(80));
        assert_eq!(s.p99, Duration::from_millis(200));
        assert_eq!(
            summary_line(&s),
            "median 11250 placements/s, evaluation time p50 80.00 ms p99 200.00 ms"
        );
        assert_eq!(
            run_line(2, &results[1]),
            "run 2: placed 1000 in 50.00 ms: 20000 placements/s"
        );
    }

    #[test]
    fn a_single_run_is_its_own_median() {
        let s = summarize(&[run(10, 10)]);
        assert_eq!(s.median_rate, 1000.0);
        assert_eq!(
            (s.p50, s.p99),
            (Duration::from_millis(10), Duration::from_millis(10))
        );
        assert_eq!(summarize(&[]).p99, Duration::ZERO);
    }
}
