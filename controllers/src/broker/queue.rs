//! The broker's queues: one ready heap per scheduler type plus the failed queue, ordered by
//! priority and then by arrival.

use std::cmp::Ordering;
use std::fmt;

use caravan_schemas::Evaluation;
use caravan_schemas::evaluation::{EvaluationState, EvaluationType};
use caravan_schemas::job::defaults;

/// A queue of the broker: the scheduler type an evaluation is for, or the failed queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Evaluations for one scheduler type.
    Scheduler(EvaluationType),
    /// Evaluations that reached the delivery limit.
    Failed,
}

impl Queue {
    /// The queue an evaluation belongs to when it is not failed.
    pub fn of(eval: &Evaluation) -> Self {
        Queue::Scheduler(eval.spec.r#type.unwrap_or_default())
    }

    /// Name of the queue, as in Nomad (`service`, `batch`, `system`, `sysbatch`, `_core`,
    /// `_failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Scheduler(EvaluationType::Service) => "service",
            Queue::Scheduler(EvaluationType::Batch) => "batch",
            Queue::Scheduler(EvaluationType::System) => "system",
            Queue::Scheduler(EvaluationType::Sysbatch) => "sysbatch",
            Queue::Scheduler(EvaluationType::Core) => "_core",
            Queue::Failed => "_failed",
        }
    }
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// (namespace, name) of an evaluation.
pub(crate) type EvalKey = (String, String);
/// (namespace, job name) of an evaluation's job.
pub(crate) type JobKey = (String, String);

/// The key of an evaluation.
pub(crate) fn eval_key(eval: &Evaluation) -> EvalKey {
    (
        eval.metadata.namespace().to_string(),
        eval.metadata.name().to_string(),
    )
}

/// The key of an evaluation's job.
pub(crate) fn job_key(eval: &Evaluation) -> JobKey {
    (eval_key(eval).0, eval.spec.job_name.clone())
}

/// Priority of an evaluation, the job default when unset.
pub(crate) fn priority(eval: &Evaluation) -> i32 {
    eval.spec.priority.unwrap_or(defaults::PRIORITY)
}

/// Whether the evaluation is waiting to be scheduled (a missing status counts as pending).
pub(crate) fn is_pending(eval: &Evaluation) -> bool {
    eval.status
        .as_ref()
        .is_none_or(|s| s.status == EvaluationState::Pending)
}

/// An evaluation in a ready heap. The heap is a max-heap: higher priority first, then the
/// earliest arrival (lowest sequence number).
#[derive(Clone, Debug)]
pub(crate) struct ReadyEval {
    pub priority: i32,
    pub seq: u64,
    pub eval: Evaluation,
}

impl PartialEq for ReadyEval {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ReadyEval {}

impl PartialOrd for ReadyEval {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ReadyEval {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}
