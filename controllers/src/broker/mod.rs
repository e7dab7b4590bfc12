//! The eval broker (Nomad's `nomad/eval_broker.go`): the leader's in-memory queue of pending
//! evaluations, handed to scheduler workers by priority with at-least-once delivery.
//!
//! ```text
//!  evaluator / broker feed ──enqueue──▶ ready[scheduler] (priority, then FIFO)
//!        │ (job already has an eval out)       │ dequeue
//!        ▼                                     ▼
//!   pending[job] ──ack of the job's eval──▶ unacked (token, nack deadline)
//!        │ older ones                          │ ack ──▶ done
//!        ▼                                     │ nack / nack timeout
//!   cancelable (caller marks canceled)         ▼
//!                                    waiting (nack delay, waitUntil) ──▶ ready
//!                                    after `delivery_limit` deliveries ──▶ failed queue
//!                                    (caller marks the eval failed, creates a follow-up)
//! ```
//!
//! [`BrokerCore`] holds every decision and takes the time as an argument; [`EvalBroker`] is the
//! thread-safe, async handle around it that workers share.

mod core;
mod eval_broker;
mod queue;
mod source;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

pub use self::core::BrokerCore;
pub use self::eval_broker::EvalBroker;
pub use self::queue::Queue;
pub use caravan_runtime::eval_source::{BrokerError, Delivery, EvalSource, Token};

/// Settings of the broker; the defaults are Nomad's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// An unacknowledged evaluation is nacked automatically after this long (Nomad: 60 s).
    pub nack_timeout: Duration,
    /// Deliveries after which a nacked evaluation goes to the failed queue (Nomad: 3).
    pub delivery_limit: u32,
    /// Delay before an evaluation nacked for the first time is ready again (Nomad: 1 s).
    pub initial_nack_delay: Duration,
    /// Delay before an evaluation nacked more than once is ready again (Nomad: 20 s).
    pub subsequent_nack_delay: Duration,
    /// Whether the broker accepts evaluations from the start (it should only on the leader).
    pub enabled: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            nack_timeout: Duration::from_secs(60),
            delivery_limit: 3,
            initial_nack_delay: Duration::from_secs(1),
            subsequent_nack_delay: Duration::from_secs(20),
            enabled: true,
        }
    }
}

/// What [`BrokerCore::enqueue`] did with an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Ready to be dequeued.
    Ready,
    /// Another evaluation of the same job is out; this one waits behind it.
    Pending,
    /// Held until its `waitUntil` time.
    Waiting,
    /// Already tracked by the broker; ignored.
    Duplicate,
    /// Not a pending evaluation; ignored.
    NotPending,
    /// The broker is disabled (not the leader); ignored.
    Disabled,
}

/// Counters of the broker, for metrics and `operator` commands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Evaluations ready to be dequeued, failed queue excluded.
    pub total_ready: usize,
    /// Evaluations delivered and not yet acked or nacked.
    pub total_unacked: usize,
    /// Evaluations waiting behind another evaluation of their job.
    pub total_pending: usize,
    /// Evaluations held for a nack delay or their `waitUntil` time.
    pub total_waiting: usize,
    /// Evaluations in the failed queue.
    pub total_failed: usize,
    /// Superseded evaluations the caller should mark canceled.
    pub total_cancelable: usize,
    /// Ready and unacked evaluations per queue (`service`, …, `_failed`).
    pub by_queue: BTreeMap<String, QueueStats>,
}

/// Counters of one queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Ready to be dequeued.
    pub ready: usize,
    /// Delivered and not yet acked.
    pub unacked: usize,
}
