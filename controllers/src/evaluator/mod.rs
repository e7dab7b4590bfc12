//! The evaluator: decides which Evaluations a change of desired or actual state needs.
//!
//! ```text
//! Job spec changed (generation ≠ evaluated version + 1) ─┐
//! Job deleted ──────────────────────────────────────────┤
//! Node registered / ready / down / eligibility / drain ─┼─▶ EvalRequest ─▶ new_evaluation ─▶ create
//! Allocation failed or lost ────────────────────────────┘
//! ```
//!
//! Everything here is pure: the controller in [`crate::leader`] feeds it objects and writes
//! what it returns.

mod decide;
pub mod deployment;

pub use decide::{
    AllocView, EvalRequest, NodeView, alloc_needs_eval, deleted_job_eval, drain_eval, eval_name,
    eval_type, job_needs_eval, job_version_patch, new_evaluation, node_change_evals,
};

#[cfg(test)]
mod tests;
