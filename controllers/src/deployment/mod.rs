//! What the deployment controller decides (pure; the loop that carries it out is the
//! leader's, `leader::deployments`): Nomad's deployment watcher, one reconcile of a
//! deployment at a time from the deployment, its job and the job's allocations.
//!
//! ```text
//! Deployment + Job + allocations (spec.deploymentName) + now
//!     ─▶ decide ─▶ status: counts, promotion, paused/running, failed, successful, conditions
//!               ─▶ evaluate (a health count changed, promoted, resumed, failed)
//!               ─▶ mark the JobVersion stable (successful)
//!               ─▶ revert to the newest older stable version (failed, autoRevert)
//!               ─▶ look again at the next progress deadline
//! ```
//!
//! Operators act through the spec (`paused`, `promoted`, `failed`); the scheduler reads the
//! status (promoted canaries, paused or failed) and paces the rollout by it.

mod conditions;
mod decide;
mod groups;
mod patch;
mod revert;
#[cfg(test)]
mod tests;

pub use conditions::{AVAILABLE, PROGRESSING, PROMOTED, set_conditions};
pub use decide::{Decision, decide, evaluation_request};
pub use groups::{Tally, progress_deadline, tally};
pub use patch::{spec_patch, status_patch};
pub use revert::{RevertTarget, describe_revert, job_matches, revert_description, revert_target};
