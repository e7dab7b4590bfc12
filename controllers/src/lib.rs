//! Caravan controllers: the evaluator, the eval broker and the schedulers.
//!
//! The [`scheduler`] module is pure decision logic: it reads a snapshot through
//! [`scheduler::State`] and writes through [`scheduler::Planner`], with no IO, no clock and no
//! async.

pub mod blocked;
pub mod broker;
pub mod client;
pub mod drain;
pub mod evaluator;
#[cfg(any(test, feature = "testsuite"))]
pub mod fake;
pub mod gc;
pub mod job_status;
pub mod leader;
pub mod runtime;
pub mod scheduler;
pub mod worker;

pub use client::{Client, ClientError, EventStream, ListQuery, ObjectList, WatchEvent};
