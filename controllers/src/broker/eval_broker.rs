//! [`EvalBroker`]: the shared, async handle around [`BrokerCore`] that workers dequeue from.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use caravan_schemas::Evaluation;
use caravan_schemas::evaluation::EvaluationType;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::core::BrokerCore;
use super::queue::Queue;
use super::{BrokerConfig, BrokerError, BrokerStats, Delivery, Enqueued, Token};
use crate::scheduler::time::parse_rfc3339;

#[derive(Debug)]
struct Inner {
    core: Mutex<BrokerCore>,
    /// Woken whenever an evaluation may have become ready or the broker was enabled.
    changed: Notify,
}

/// The eval broker shared by the leader's feed and its scheduler workers. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct EvalBroker {
    inner: Arc<Inner>,
}

/// The current time on tokio's clock (so paused-time tests drive the broker too).
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// When an evaluation's `waitUntil` falls, on the broker's clock; `None` when unset, past or
/// unparsable.
fn ready_at(eval: &Evaluation, now: std::time::Instant) -> Option<std::time::Instant> {
    let wait_until = parse_rfc3339(eval.spec.wait_until.as_deref()?)?;
    let now_unix = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    let delay = u64::try_from(wait_until).ok()?.checked_sub(now_unix)?;
    (delay > 0).then(|| now + Duration::from_secs(delay))
}

impl EvalBroker {
    /// A broker with `config`.
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                core: Mutex::new(BrokerCore::new(config)),
                changed: Notify::new(),
            }),
        }
    }

    fn core(&self) -> MutexGuard<'_, BrokerCore> {
        self.inner
            .core
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a pending evaluation (see [`BrokerCore::enqueue`]); its `waitUntil` is honoured.
    pub fn enqueue(&self, eval: Evaluation) -> Enqueued {
        let now = now();
        let at = ready_at(&eval, now);
        let outcome = self.core().enqueue(eval, now, at);
        if outcome == Enqueued::Ready {
            self.inner.changed.notify_waiters();
        }
        outcome
    }

    /// Waits up to `timeout` for an evaluation of one of `schedulers`. Returns `None` on timeout,
    /// including while the broker is disabled.
    pub async fn dequeue(
        &self,
        schedulers: &[EvaluationType],
        timeout: Duration,
    ) -> Option<Delivery> {
        let queues: Vec<Queue> = schedulers.iter().map(|t| Queue::Scheduler(*t)).collect();
        self.dequeue_queues(&queues, timeout).await
    }

    /// Waits up to `timeout` for an evaluation of the failed queue. The caller marks it failed,
    /// creates its `failed-follow-up` evaluation, then acks it.
    pub async fn dequeue_failed(&self, timeout: Duration) -> Option<Delivery> {
        self.dequeue_queues(&[Queue::Failed], timeout).await
    }

    async fn dequeue_queues(&self, queues: &[Queue], timeout: Duration) -> Option<Delivery> {
        let give_up = Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (delivery, moved, next) = {
                let mut core = self.core();
                let now = now();
                let moved = core.advance(now);
                let delivery = core.dequeue(queues, now);
                (delivery, moved, core.next_deadline())
            };
            if moved > 0 {
                // Timeouts and delays may have readied evaluations for other queues' workers.
                self.inner.changed.notify_waiters();
            }
            if delivery.is_some() {
                return delivery;
            }
            if Instant::now() >= give_up {
                return None;
            }
            let wake = next.map_or(give_up, |at| Instant::from_std(at).min(give_up));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Acknowledges a processed evaluation.
    pub fn ack(&self, eval_name: &str, token: Token) -> Result<(), BrokerError> {
        let result = self.core().ack(eval_name, token, now());
        self.inner.changed.notify_waiters();
        result
    }

    /// Gives an evaluation back for redelivery (or the failed queue).
    pub fn nack(&self, eval_name: &str, token: Token) -> Result<(), BrokerError> {
        let result = self.core().nack(eval_name, token, now());
        self.inner.changed.notify_waiters();
        result
    }

    /// The token of evaluation `namespace/name` if it is out.
    pub fn outstanding(&self, namespace: &str, name: &str) -> Option<Token> {
        self.core().outstanding(namespace, name)
    }

    /// Restarts the nack timeout of an outstanding evaluation.
    pub fn outstanding_reset(&self, eval_name: &str, token: Token) -> Result<(), BrokerError> {
        self.core().outstanding_reset(eval_name, token, now())
    }

    /// Stops the nack timeout while the worker waits on the plan applier.
    pub fn pause_nack_timeout(&self, eval_name: &str, token: Token) -> Result<(), BrokerError> {
        self.core().pause_nack_timeout(eval_name, token, now())
    }

    /// Restarts a paused nack timeout.
    pub fn resume_nack_timeout(&self, eval_name: &str, token: Token) -> Result<(), BrokerError> {
        self.core().resume_nack_timeout(eval_name, token, now())
    }

    /// Enables (leader) or disables and flushes (follower) the broker.
    pub fn set_enabled(&self, enabled: bool) {
        self.core().set_enabled(enabled);
        self.inner.changed.notify_waiters();
    }

    /// Whether the broker is enabled.
    pub fn enabled(&self) -> bool {
        self.core().is_enabled()
    }

    /// Removes and returns up to `max` superseded evaluations, for the caller to cancel.
    pub fn take_cancelable(&self, max: usize) -> Vec<Evaluation> {
        self.core().take_cancelable(max)
    }

    /// Counters, after applying whatever is due.
    pub fn stats(&self) -> BrokerStats {
        let mut core = self.core();
        core.advance(now());
        core.stats()
    }
}
