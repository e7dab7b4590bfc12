//! `caravan bench scheduler`: the pure service scheduler placing one job on an in-memory
//! cluster, no server involved. One warm-up run, then `--runs` measured runs. Each run's time is
//! split in two: the scheduler's (reconciling, selecting nodes, building the plan) and the test
//! harness's applying the plan (re-checking every node's fit and storing the allocations, the
//! plan applier's work). The summary gives the median rate and p50/p99 time of both.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use caravan_controllers::scheduler::bench::{Measured, bench_service_placement};

use super::SchedulerBenchArgs;
use super::report::percentile;

/// Placements per second of the scheduler alone.
pub fn rate(run: &Measured) -> f64 {
    per_second(run.placed, run.scheduling())
}

/// Placements per second with the plan applied.
pub fn applied_rate(run: &Measured) -> f64 {
    per_second(run.placed, run.total)
}

fn per_second(placed: usize, time: Duration) -> f64 {
    placed as f64 / time.as_secs_f64().max(1e-9)
}

/// The summary's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Scheduler alone.
    pub median_rate: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Plan application included.
    pub applied_median_rate: f64,
    pub applied_p50: Duration,
    pub applied_p99: Duration,
}

pub async fn run(args: SchedulerBenchArgs) -> anyhow::Result<()> {
    ensure!(args.runs > 0, "--runs must be at least 1");
    ensure!(args.nodes > 0, "--nodes must be at least 1");
    println!(
        "bench scheduler: service job of {} allocations (100 MHz, 64 MB, {} dynamic ports) on {} nodes, {} runs after 1 warm-up",
        args.count, args.ports, args.nodes, args.runs
    );
    let (nodes, count, runs, ports) = (args.nodes, args.count, args.runs, args.ports);
    let results = tokio::task::spawn_blocking(move || {
        let _ = bench_service_placement(nodes, count, ports);
        (0..runs)
            .map(|i| {
                let measured = bench_service_placement(nodes, count, ports);
                println!("{}", run_line(i + 1, &measured));
                measured
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
    for line in summary_lines(&summary) {
        println!("{line}");
    }
    Ok(())
}

fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1000.0
}

/// `run 1: placed 1000, scheduler 2.50 ms (400000/s), with the plan applied 9.00 ms (111111/s)`.
pub fn run_line(index: usize, result: &Measured) -> String {
    format!(
        "run {index}: placed {}, scheduler {:.2} ms ({:.0}/s), with the plan applied {:.2} ms ({:.0}/s)",
        result.placed,
        ms(result.scheduling()),
        rate(result),
        ms(result.total),
        applied_rate(result)
    )
}

/// The two summary lines: the scheduler alone, then with the plan applied.
pub fn summary_lines(summary: &Summary) -> [String; 2] {
    [
        format!(
            "scheduler: median {:.0} placements/s, evaluation time p50 {:.2} ms p99 {:.2} ms",
            summary.median_rate,
            ms(summary.p50),
            ms(summary.p99)
        ),
        format!(
            "with the plan applied: median {:.0} placements/s, p50 {:.2} ms p99 {:.2} ms",
            summary.applied_median_rate,
            ms(summary.applied_p50),
            ms(summary.applied_p99)
        ),
    ]
}

/// Median (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Median rates and nearest-rank percentiles of both measures.
pub fn summarize(results: &[Measured]) -> Summary {
    let sorted = |time: fn(&Measured) -> Duration| {
        let mut times: Vec<Duration> = results.iter().map(time).collect();
        times.sort();
        times
    };
    let scheduling = sorted(Measured::scheduling);
    let applied = sorted(|r| r.total);
    Summary {
        median_rate: median(results.iter().map(rate).collect()),
        p50: percentile(&scheduling, 0.50),
        p99: percentile(&scheduling, 0.99),
        applied_median_rate: median(results.iter().map(applied_rate).collect()),
        applied_p50: percentile(&applied, 0.50),
        applied_p99: percentile(&applied, 0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ms: u64, applying_ms: u64, placed: usize) -> Measured {
        Measured {
            total: Duration::from_millis(ms),
            applying: Duration::from_millis(applying_ms),
            placed,
        }
    }

    #[test]
    fn summary_takes_median_rates_and_nearest_rank_percentiles_of_both_measures() {
        let results = [
            run(100, 50, 1000),
            run(50, 10, 1000),
            run(200, 100, 1000),
            run(80, 60, 1000),
        ];
        let s = summarize(&results);
        // Scheduler alone: 50, 40, 100 and 20 ms, rates 20000, 25000, 10000, 50000.
        assert_eq!(s.median_rate, 22500.0);
        assert_eq!(s.p50, Duration::from_millis(40));
        assert_eq!(s.p99, Duration::from_millis(100));
        // With the plan applied: rates 10000, 20000, 5000, 12500.
        assert_eq!(s.applied_median_rate, 11250.0);
        assert_eq!(s.applied_p50, Duration::from_millis(80));
        assert_eq!(s.applied_p99, Duration::from_millis(200));
        assert_eq!(
            summary_lines(&s),
            [
                "scheduler: median 22500 placements/s, evaluation time p50 40.00 ms p99 100.00 ms",
                "with the plan applied: median 11250 placements/s, p50 80.00 ms p99 200.00 ms",
            ]
        );
        assert_eq!(
            run_line(2, &results[1]),
            "run 2: placed 1000, scheduler 40.00 ms (25000/s), with the plan applied 50.00 ms (20000/s)"
        );
    }

    #[test]
    fn a_single_run_is_its_own_median() {
        let s = summarize(&[run(10, 0, 10)]);
        assert_eq!(s.median_rate, 1000.0);
        assert_eq!(s.applied_median_rate, 1000.0);
        assert_eq!(
            (s.p50, s.p99),
            (Duration::from_millis(10), Duration::from_millis(10))
        );
        assert_eq!(summarize(&[]).p99, Duration::ZERO);
    }
}
