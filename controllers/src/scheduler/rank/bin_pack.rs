//! [`BinPackIterator`]: Nomad's `ScoreFitBinPack` (prefer full nodes) and `ScoreFitSpread`
//! (prefer empty nodes), normalized to [0, 1].

use caravan_schemas::resources::Comparable;

use crate::scheduler::config::SchedulerAlgorithm;

/// Best possible fit score before normalization.
pub const MAX_FIT_SCORE: f64 = 18.0;

/// Scores how well a placement fits a node.
#[derive(Clone, Copy, Debug, Default)]
pub struct BinPackIterator {
    algorithm: SchedulerAlgorithm,
}

impl BinPackIterator {
    /// A scorer with the cluster's algorithm.
    pub fn new(algorithm: SchedulerAlgorithm) -> Self {
        Self { algorithm }
    }

    /// The normalized score of a node with `capacity` once `util` (usage after the placement)
    /// is placed.
    pub fn score(&self, capacity: &Comparable, util: &Comparable) -> f64 {
        let fit = match self.algorithm {
            SchedulerAlgorithm::Binpack => score_fit_binpack(capacity, util),
            SchedulerAlgorithm::Spread => score_fit_spread(capacity, util),
        };
        fit / MAX_FIT_SCORE
    }
}

/// `10^freeCpu + 10^freeMem`: 20 on an empty node, 2 on a full one.
fn free_total(capacity: &Comparable, util: &Comparable) -> f64 {
    let fraction = |used: u64, total: u64| {
        if total == 0 {
            0.0
        } else {
            1.0 - used as f64 / total as f64
        }
    };
    let free_cpu = fraction(util.cpu, capacity.cpu);
    let free_mem = fraction(util.memory_mb, capacity.memory_mb);
    // 10^x as e^(x ln 10): the same value, without the general `powf`.
    let ten_to = |x: f64| (x * std::f64::consts::LN_10).exp();
    ten_to(free_cpu) + ten_to(free_mem)
}

/// Nomad's `ScoreFitBinPack`: 20 − (10^freeCpu + 10^freeMem), clamped to [0, 18].
pub fn score_fit_binpack(capacity: &Comparable, util: &Comparable) -> f64 {
    (20.0 - free_total(capacity, util)).clamp(0.0, MAX_FIT_SCORE)
}

/// Nomad's `ScoreFitSpread`: (10^freeCpu + 10^freeMem) − 2, clamped to [0, 18].
pub fn score_fit_spread(capacity: &Comparable, util: &Comparable) -> f64 {
    (free_total(capacity, util) - 2.0).clamp(0.0, MAX_FIT_SCORE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(cpu: u64, memory_mb: u64) -> Comparable {
        Comparable {
            cpu,
            memory_mb,
            ..Comparable::default()
        }
    }

    #[test]
    fn binpack_prefers_fuller_nodes() {
        let capacity = res(4000, 8192);
        assert_eq!(score_fit_binpack(&capacity, &res(0, 0)), 0.0);
        assert_eq!(score_fit_binpack(&capacity, &res(4000, 8192)), 18.0);
        let half = score_fit_binpack(&capacity, &res(2000, 4096));
        assert!((half - (20.0 - 2.0 * 10f64.sqrt())).abs() < 1e-9);
        let binpack = BinPackIterator::new(SchedulerAlgorithm::Binpack);
        assert!(
            binpack.score(&capacity, &res(3000, 6000)) > binpack.score(&capacity, &res(1000, 2000))
        );
    }

    #[test]
    fn spread_is_the_inverse() {
        let capacity = res(4000, 8192);
        assert_eq!(score_fit_spread(&capacity, &res(0, 0)), 18.0);
        assert_eq!(score_fit_spread(&capacity, &res(4000, 8192)), 0.0);
        let spread = BinPackIterator::new(SchedulerAlgorithm::Spread);
        assert!(
            spread.score(&capacity, &res(1000, 2000)) > spread.score(&capacity, &res(3000, 6000))
        );
    }
}
