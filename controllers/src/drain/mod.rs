//! What the node drainer decides (pure; the loop that carries it out is the leader's,
//! `leader::drainer`): it moves allocations off draining nodes at the pace of each
//! group's `migrate` block, stops what is left at the deadline, moves system jobs last, and
//! clears `spec.drain` when a node is empty (it stays ineligible).
//!
//! ```text
//! caches (nodes, allocations, jobs) ─▶ decide (pure) ─▶ stamp spec.drain.startedAt
//!                                                    ─▶ mark spec.desiredTransition.migrate
//!                                                       + one node-drain evaluation per job
//!                                                    ─▶ clear spec.drain of drained nodes
//! ```
//!
//! The scheduler does the moving: it stops a marked allocation on a draining node and places
//! its replacement elsewhere (`scheduler::reconcile`, `scheduler::system`).

mod decide;
#[cfg(test)]
mod tests;

pub use decide::{DEFAULT_DEADLINE, Decisions, DrainClock, decide, is_healthy};
