//! The pure scheduler: turns an evaluation into a plan, after Nomad's `scheduler/` package.
//!
//! ```text
//!   Evaluation ──► Scheduler::process
//!                    │  State (snapshot: nodes, job, allocations)
//!                    ▼
//!                  reconcile ──► place / stop / in-place / destructive / ignore
//!                    │
//!                    ▼
//!                  Stack::select (per placement)
//!                    feasible: constraints, drivers, distinct hosts/property
//!                    rank:     bin pack, anti-affinity, reschedule penalty,
//!                              node affinity, spread, normalize → limit → max
//!                    │
//!                    ▼
//!                  Plan ──► Planner::submit_plan ──► PlanResult (retry on partial commit)
//!                    │
//!                    ▼
//!                  Planner::update_eval / create_eval (blocked, follow-up)
//! ```
//!
//! Architecture invariant: nothing in here does IO, reads the clock or blocks. Time is passed in
//! through [`SchedulerConfig::now_unix`].

pub mod build;
pub mod config;
pub mod context;
pub mod dry_run;
pub mod error;
pub mod feasible;
pub mod generic;
pub mod hash;
pub mod metrics;
pub mod naming;
pub mod rank;
pub mod reconcile;
pub mod stack;
pub mod state;
pub mod system;
pub mod time;
pub mod util;

pub mod bench;
pub mod harness;
#[cfg(any(test, feature = "testsuite"))]
pub mod testing;

pub use caravan_schemas::plan::{AllocStop, DesiredUpdates, Plan, PlanResult};
pub use config::{SchedulerAlgorithm, SchedulerConfig};
pub use error::SchedError;
pub use generic::GenericScheduler;
pub use state::{MemState, Planner, State};
pub use system::SystemScheduler;

use caravan_schemas::Evaluation;
use caravan_schemas::evaluation::EvaluationType;

/// A scheduler processes one evaluation to completion: it computes a plan, submits it, and
/// records the outcome through the [`Planner`].
pub trait Scheduler {
    /// Processes `eval`. Errors are returned only for failures of the planner itself; placement
    /// failures are reported in the evaluation's status.
    fn process(&mut self, eval: &Evaluation) -> Result<(), SchedError>;
}

/// Builds the scheduler that handles evaluations of type `kind` (`_core` has none).
pub fn new_scheduler<'a>(
    kind: EvaluationType,
    state: std::sync::Arc<dyn State>,
    planner: &'a mut dyn Planner,
    config: SchedulerConfig,
) -> Option<Box<dyn Scheduler + 'a>> {
    match kind {
        EvaluationType::Service => {
            Some(Box::new(GenericScheduler::service(state, planner, config)))
        }
        EvaluationType::Batch => Some(Box::new(GenericScheduler::batch(state, planner, config))),
        EvaluationType::System => Some(Box::new(SystemScheduler::system(state, planner, config))),
        EvaluationType::Sysbatch => {
            Some(Box::new(SystemScheduler::sysbatch(state, planner, config)))
        }
        EvaluationType::Core => None,
    }
}
