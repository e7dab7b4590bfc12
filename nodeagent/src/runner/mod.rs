//! Allocation and task runners: lifecycle order, restart policy, task events and status
//! reporting.

pub mod alloc;
pub mod env;
pub mod events;
pub mod health;
pub mod interpolate;
pub mod restart;
pub mod spec;
pub mod status;
pub mod task;

#[cfg(test)]
mod tests;
