//! Caravan controllers: the evaluator, the eval broker, the schedulers and the leader's loops,
//! built on the controller runtime of `caravan-runtime`.
//!
//! The [`scheduler`] module is pure decision logic: it reads a snapshot through
//! [`scheduler::State`] and writes through [`scheduler::Planner`], with no IO, no clock and no
//! async.

pub mod blocked;
pub mod broker;
pub mod deployment;
pub mod drain;
pub mod evaluator;
pub mod gc;
pub mod job_status;
pub mod leader;
pub mod scheduler;
pub mod services;
pub mod worker;
