//! Latency histograms and their one-line summaries, and statistics of small sample sets.

use std::time::Duration;

use hdrhistogram::Histogram;

/// A latency histogram in microseconds, 1 µs to 60 s.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// `p50 1.2 ms  p90 …  p99 …  p99.9 …  max …`.
pub fn summary(h: &Histogram<u64>) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
    )
}

/// Mean, nearest-rank percentiles and extremes of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub count: usize,
    pub mean: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub min: Duration,
    pub max: Duration,
}

impl Stats {
    /// The statistics of `samples`; all zero when there are none.
    pub fn of(samples: &[Duration]) -> Stats {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let count = sorted.len();
        let mean = match u32::try_from(count) {
            Ok(n) if n > 0 => sorted.iter().sum::<Duration>() / n,
            _ => Duration::ZERO,
        };
        Stats {
            count,
            mean,
            p50: percentile(&sorted, 0.50),
            p90: percentile(&sorted, 0.90),
            p99: percentile(&sorted, 0.99),
            min: sorted.first().copied().unwrap_or_default(),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

/// Nearest-rank percentile of sorted values; zero when empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `12.3 ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `mean 12.3 ms  p50 …  p90 …  min …  max …`.
pub fn stats_line(s: &Stats) -> String {
    format!(
        "mean {}  p50 {}  p90 {}  min {}  max {}",
        ms(s.mean),
        ms(s.p50),
        ms(s.p90),
        ms(s.min),
        ms(s.max)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn stats_use_nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=20).rev().map(ms_).collect();
        let s = Stats::of(&samples);
        assert_eq!(s.count, 20);
        assert_eq!(s.mean, Duration::from_micros(10_500));
        assert_eq!((s.p50, s.p90, s.p99), (ms_(10), ms_(18), ms_(20)));
        assert_eq!((s.min, s.max), (ms_(1), ms_(20)));
        assert_eq!(
            stats_line(&s),
            "mean 10.5 ms  p50 10.0 ms  p90 18.0 ms  min 1.0 ms  max 20.0 ms"
        );
    }

    #[test]
    fn stats_of_nothing_are_zero() {
        let s = Stats::of(&[]);
        assert_eq!((s.count, s.mean, s.p99, s.max), (0, ms_(0), ms_(0), ms_(0)));
        let one = Stats::of(&[ms_(7)]);
        assert_eq!(
            (one.p50, one.p90, one.p99, one.mean),
            (ms_(7), ms_(7), ms_(7), ms_(7))
        );
    }
}
