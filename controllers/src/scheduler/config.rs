//! Scheduler settings (Nomad's `SchedulerConfiguration`) and the time of the evaluation.

/// How the bin packing ranker scores a node's fit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SchedulerAlgorithm {
    /// Prefer the fullest nodes that fit (Nomad's default, `ScoreFitBinPack`).
    #[default]
    Binpack,
    /// Prefer the emptiest nodes (`ScoreFitSpread`).
    Spread,
}

/// Settings of one scheduler run.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfig {
    /// Bin packing or spread scoring.
    pub algorithm: SchedulerAlgorithm,
    /// Nodes scored per placement when a group has affinities or spreads, unless its count is
    /// larger (Nomad's `NodeLimitForFeasibilityChecks`, 100).
    pub node_limit_with_affinities: usize,
    /// Plans submitted before a service evaluation gives up (Nomad: 5).
    pub max_service_plan_attempts: u32,
    /// Plans submitted before a batch evaluation gives up (Nomad: 2).
    pub max_batch_plan_attempts: u32,
    /// Current time in seconds since the Unix epoch, passed in by the caller: the scheduler never
    /// reads the clock. Used for reschedule windows.
    pub now_unix: i64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            algorithm: SchedulerAlgorithm::Binpack,
            node_limit_with_affinities: 100,
            max_service_plan_attempts: 5,
            max_batch_plan_attempts: 2,
            now_unix: 0,
        }
    }
}
