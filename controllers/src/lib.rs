//! Caravan controllers: the evaluator, the eval broker and the schedulers.
//!
//! The [`scheduler`] module is pure decision logic: it reads a snapshot through
//! [`scheduler::State`] and writes through [`scheduler::Planner`], with no IO, no clock and no
//! async.

pub mod scheduler;
