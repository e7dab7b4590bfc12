//! [`BrokerCore`]: every decision of the eval broker, with the time passed in.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::Instant;

use caravan_schemas::Evaluation;
use tracing::{debug, warn};

use super::queue::{EvalKey, JobKey, Queue, ReadyEval, eval_key, is_pending, job_key, priority};
use super::{BrokerConfig, BrokerError, BrokerStats, Delivery, Enqueued, Token};

/// An evaluation delivered and not yet acked.
#[derive(Clone, Debug)]
struct Unacked {
    key: EvalKey,
    eval: Evaluation,
    queue: Queue,
    /// When the delivery is nacked automatically; `None` while paused.
    deadline: Option<Instant>,
}

/// The eval broker's state machine. Nothing here reads the clock: every method that can expire
/// a nack timeout or release a delayed evaluation takes `now` and first advances to it.
#[derive(Debug)]
pub struct BrokerCore {
    config: BrokerConfig,
    enabled: bool,
    next_seq: u64,
    next_token: u64,
    /// Every evaluation the broker holds (ready, unacked, pending, waiting) → deliveries so far.
    tracked: HashMap<EvalKey, u32>,
    ready: HashMap<Queue, BinaryHeap<ReadyEval>>,
    unacked: HashMap<Token, Unacked>,
    /// The one evaluation of a job that is ready, out or held after a nack.
    job_evals: HashMap<JobKey, EvalKey>,
    /// Evaluations waiting behind their job's evaluation, with their arrival number.
    pending: HashMap<JobKey, Vec<(u64, Evaluation)>>,
    /// Evaluations held until a time: nack delays and `waitUntil`.
    waiting: BTreeMap<(Instant, u64), Evaluation>,
    /// Superseded evaluations for the caller to mark canceled.
    cancelable: Vec<Evaluation>,
}

impl BrokerCore {
    /// An empty broker, enabled when `config.enabled`.
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            enabled: config.enabled,
            config,
            next_seq: 0,
            next_token: 0,
            tracked: HashMap::new(),
            ready: HashMap::new(),
            unacked: HashMap::new(),
            job_evals: HashMap::new(),
            pending: HashMap::new(),
            waiting: BTreeMap::new(),
            cancelable: Vec::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Whether the broker accepts and hands out evaluations.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Enables the broker on gaining leadership, or disables it on losing it. Disabling drops
    /// every evaluation: the next leader restores them from the store.
    pub fn set_enabled(&mut self, enabled: bool) {
        if self.enabled && !enabled {
            self.flush();
        }
        self.enabled = enabled;
    }

    fn flush(&mut self) {
        self.tracked.clear();
        self.ready.clear();
        self.unacked.clear();
        self.job_evals.clear();
        self.pending.clear();
        self.waiting.clear();
        self.cancelable.clear();
    }

    /// Adds a pending evaluation. `ready_at` holds it until then (its `waitUntil`, converted by
    /// the caller to the broker's clock). Evaluations already tracked, not pending, or offered
    /// to a disabled broker are ignored.
    pub fn enqueue(
        &mut self,
        eval: Evaluation,
        now: Instant,
        ready_at: Option<Instant>,
    ) -> Enqueued {
        self.advance(now);
        if !self.enabled {
            return Enqueued::Disabled;
        }
        if !is_pending(&eval) {
            return Enqueued::NotPending;
        }
        let key = eval_key(&eval);
        if self.tracked.contains_key(&key) {
            return Enqueued::Duplicate;
        }
        self.tracked.insert(key, 0);
        match ready_at {
            Some(at) if at > now => {
                let seq = self.seq();
                self.waiting.insert((at, seq), eval);
                Enqueued::Waiting
            }
            _ => {
                let queue = Queue::of(&eval);
                self.enqueue_ready(eval, queue)
            }
        }
    }

    /// Puts an evaluation in its ready queue, or behind its job's evaluation.
    fn enqueue_ready(&mut self, eval: Evaluation, queue: Queue) -> Enqueued {
        let key = eval_key(&eval);
        let job = job_key(&eval);
        if queue != Queue::Failed {
            match self.job_evals.get(&job) {
                Some(current) if *current != key => {
                    let seq = self.seq();
                    self.pending.entry(job).or_default().push((seq, eval));
                    return Enqueued::Pending;
                }
                Some(_) => {}
                None => {
                    self.job_evals.insert(job, key);
                }
            }
        }
        let seq = self.seq();
        self.ready.entry(queue).or_default().push(ReadyEval {
            priority: priority(&eval),
            seq,
            eval,
        });
        Enqueued::Ready
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Hands out the highest-priority, oldest ready evaluation of `queues`, or `None`.
    pub fn dequeue(&mut self, queues: &[Queue], now: Instant) -> Option<Delivery> {
        self.advance(now);
        if !self.enabled {
            return None;
        }
        let queue = queues
            .iter()
            .filter_map(|q| self.ready.get(q).and_then(|h| h.peek()).map(|r| (r, *q)))
            .max_by(|a, b| a.0.cmp(b.0))
            .map(|(_, q)| q)?;
        let ready = self.ready.get_mut(&queue)?.pop()?;
        let key = eval_key(&ready.eval);
        let deliveries = self.tracked.entry(key.clone()).or_default();
        *deliveries += 1;
        let deliveries = *deliveries;
        self.next_token += 1;
        let token = Token::new(self.next_token);
        self.unacked.insert(
            token,
            Unacked {
                key,
                eval: ready.eval.clone(),
                queue,
                deadline: Some(now + self.config.nack_timeout),
            },
        );
        Some(Delivery {
            eval: ready.eval,
            token,
            deliveries,
        })
    }

    /// Finds the delivery `token` of evaluation `name`.
    fn outstanding_entry(&mut self, name: &str, token: Token) -> Result<&mut Unacked, BrokerError> {
        let Some(entry) = self.unacked.get_mut(&token) else {
            return Err(BrokerError::NotOutstanding {
                eval: name.to_string(),
                token,
            });
        };
        if entry.key.1 != name {
            return Err(BrokerError::TokenMismatch {
                eval: name.to_string(),
                token,
                actual: entry.key.1.clone(),
            });
        }
        Ok(entry)
    }

    /// Acknowledges that evaluation `name` was processed. The newest evaluation waiting behind
    /// it for the same job becomes ready; older ones become cancelable.
    pub fn ack(&mut self, name: &str, token: Token, now: Instant) -> Result<(), BrokerError> {
        self.advance(now);
        self.outstanding_entry(name, token)?;
        let Some(done) = self.unacked.remove(&token) else {
            return Ok(());
        };
        self.tracked.remove(&done.key);
        let job = job_key(&done.eval);
        if self.job_evals.get(&job) == Some(&done.key) {
            self.job_evals.remove(&job);
        }
        let Some(mut waiting) = self.pending.remove(&job) else {
            return Ok(());
        };
        waiting.sort_by_key(|(seq, _)| *seq);
        if let Some((_, newest)) = waiting.pop() {
            for (_, old) in waiting {
                self.tracked.remove(&eval_key(&old));
                self.cancelable.push(old);
            }
            let queue = Queue::of(&newest);
            self.enqueue_ready(newest, queue);
        }
        Ok(())
    }

    /// Gives evaluation `name` back: it is delivered again after the nack delay, or goes to the
    /// failed queue once it has been delivered `delivery_limit` times.
    pub fn nack(&mut self, name: &str, token: Token, now: Instant) -> Result<(), BrokerError> {
        self.advance(now);
        self.outstanding_entry(name, token)?;
        self.requeue(token, now);
        Ok(())
    }

    fn requeue(&mut self, token: Token, now: Instant) {
        let Some(entry) = self.unacked.remove(&token) else {
            return;
        };
        let deliveries = self.tracked.get(&entry.key).copied().unwrap_or_default();
        if deliveries >= self.config.delivery_limit {
            warn!(
                eval = %entry.key.1,
                namespace = %entry.key.0,
                deliveries,
                "evaluation reached the delivery limit; moved to the failed queue"
            );
            self.enqueue_ready(entry.eval, Queue::Failed);
            return;
        }
        let delay = if deliveries <= 1 {
            self.config.initial_nack_delay
        } else {
            self.config.subsequent_nack_delay
        };
        if delay.is_zero() {
            self.enqueue_ready(entry.eval, entry.queue);
        } else {
            let seq = self.seq();
            self.waiting.insert((now + delay, seq), entry.eval);
        }
    }

    /// The token of evaluation `namespace/name` if it is out.
    pub fn outstanding(&self, namespace: &str, name: &str) -> Option<Token> {
        self.unacked
            .iter()
            .find(|(_, u)| u.key.0 == namespace && u.key.1 == name)
            .map(|(token, _)| *token)
    }

    /// Restarts the nack timeout of an outstanding evaluation (the worker is still on it).
    pub fn outstanding_reset(
        &mut self,
        name: &str,
        token: Token,
        now: Instant,
    ) -> Result<(), BrokerError> {
        self.advance(now);
        let timeout = self.config.nack_timeout;
        let entry = self.outstanding_entry(name, token)?;
        entry.deadline = Some(now + timeout);
        Ok(())
    }

    /// Stops the nack timeout while the worker waits on something else (the plan applier).
    pub fn pause_nack_timeout(
        &mut self,
        name: &str,
        token: Token,
        now: Instant,
    ) -> Result<(), BrokerError> {
        self.advance(now);
        self.outstanding_entry(name, token)?.deadline = None;
        Ok(())
    }

    /// Restarts a paused nack timeout from `now`.
    pub fn resume_nack_timeout(
        &mut self,
        name: &str,
        token: Token,
        now: Instant,
    ) -> Result<(), BrokerError> {
        self.outstanding_reset(name, token, now)
    }

    /// Removes and returns up to `max` superseded evaluations, for the caller to cancel.
    pub fn take_cancelable(&mut self, max: usize) -> Vec<Evaluation> {
        let n = max.min(self.cancelable.len());
        self.cancelable.drain(..n).collect()
    }

    /// Applies everything due by `now`: expired nack timeouts are nacked and held evaluations
    /// become ready. Returns how many evaluations changed place.
    pub fn advance(&mut self, now: Instant) -> usize {
        let expired: Vec<Token> = self
            .unacked
            .iter()
            .filter(|(_, u)| u.deadline.is_some_and(|d| d <= now))
            .map(|(token, _)| *token)
            .collect();
        for token in &expired {
            if let Some(entry) = self.unacked.get(token) {
                debug!(eval = %entry.key.1, namespace = %entry.key.0, "nack timeout reached");
            }
            self.requeue(*token, now);
        }
        let mut released = 0;
        while let Some(entry) = self.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let eval = entry.remove();
            let queue = Queue::of(&eval);
            self.enqueue_ready(eval, queue);
            released += 1;
        }
        expired.len() + released
    }

    /// The next time something is due: a nack timeout or a held evaluation.
    pub fn next_deadline(&self) -> Option<Instant> {
        let nack = self.unacked.values().filter_map(|u| u.deadline).min();
        let held = self.waiting.keys().next().map(|(at, _)| *at);
        match (nack, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Counters.
    pub fn stats(&self) -> BrokerStats {
        let mut stats = BrokerStats {
            total_unacked: self.unacked.len(),
            total_pending: self.pending.values().map(Vec::len).sum(),
            total_waiting: self.waiting.len(),
            total_cancelable: self.cancelable.len(),
            ..BrokerStats::default()
        };
        for (queue, heap) in &self.ready {
            if *queue == Queue::Failed {
                stats.total_failed += heap.len();
            } else {
                stats.total_ready += heap.len();
            }
            stats
                .by_queue
                .entry(queue.as_str().to_string())
                .or_default()
                .ready += heap.len();
        }
        for entry in self.unacked.values() {
            stats
                .by_queue
                .entry(entry.queue.as_str().to_string())
                .or_default()
                .unacked += 1;
        }
        stats
    }
}
