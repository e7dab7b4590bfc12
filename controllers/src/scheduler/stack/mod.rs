//! Stacks chain the checkers and scorers for one placement (Nomad's `stack.go`):
//! [`GenericStack`] for service and batch jobs, [`SystemStack`] for system and sysbatch jobs.
//!
//! ```text
//!  nodes (shuffled) → job constraints → drivers → group constraints → devices
//!    → distinct hosts → distinct property → fit (exhausted?) → bin pack
//!    → job anti-affinity → reschedule penalty → node affinity → spread
//!    → normalize → limit → max score
//! ```

mod generic;
mod group;
mod system;

pub use generic::GenericStack;
pub use group::GroupStack;
pub use system::SystemStack;

/// Options of one selection (Nomad's `SelectOptions`).
#[derive(Clone, Debug, Default)]
pub struct SelectOptions {
    /// Nodes a rescheduled allocation failed on, scored down.
    pub penalty_nodes: Vec<String>,
    /// A node to try first (sticky ephemeral disk).
    pub preferred_node: Option<String>,
}
