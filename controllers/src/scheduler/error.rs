//! [`SchedError`]: why a scheduler could not process an evaluation.

/// Why a scheduler could not process an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    /// The planner could not apply a plan.
    #[error("plan submission failed: {0}")]
    PlanSubmitFailed(String),
    /// The planner could not update an evaluation.
    #[error("evaluation update failed: {0}")]
    EvalUpdateFailed(String),
    /// The planner could not create an evaluation.
    #[error("evaluation creation failed: {0}")]
    EvalCreateFailed(String),
    /// The evaluation cannot be handled by this scheduler.
    #[error("invalid evaluation {eval}: {reason}")]
    InvalidEval {
        /// Name of the evaluation.
        eval: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Partial commits kept happening; the evaluation was failed with a follow-up.
    #[error("maximum plan attempts ({0}) reached")]
    MaxPlanAttempts(u32),
}
