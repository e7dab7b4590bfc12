//! Scheduler workers (Nomad's `nomad/worker.go`): each takes an evaluation from the broker,
//! runs the pure scheduler for its type on a blocking thread, writes the outcome through the
//! [`Client`], and acks (or nacks on failure).
//!
//! ```text
//!  EvalBroker::dequeue ──▶ wait for a snapshot at the eval's resourceVersion
//!        │                      │
//!        │                      ▼  spawn_blocking
//!        │            new_scheduler(type, snapshot, ClientPlanner).process(eval)
//!        │               submit_plan ──▶ Client::submit_plan (nack timeout paused)
//!        │                 refresh_index > 0 ──▶ wait for that snapshot, retry
//!        │               update_eval ──▶ Client::patch(status)
//!        │               create_eval ──▶ Client::create (blocked, follow-up)
//!        ▼
//!   ack on success (or max-plan-attempts, already recorded) │ nack on error
//! ```
//!
//! Blocked evaluations the scheduler writes reach the blocked tracker through the store (the
//! leader's feed), not through the worker.

mod planner;
mod snapshots;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use caravan_schemas::evaluation::EvaluationType;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use self::planner::ClientPlanner;
pub use self::snapshots::{Snapshots, WatchSnapshots};
use crate::broker::{BrokerError, Delivery, EvalSource};
use crate::scheduler::{SchedError, SchedulerConfig, new_scheduler};
use caravan_runtime::{Client, ClientError};

/// Settings of the workers.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerConfig {
    /// Scheduler types to dequeue (Nomad's `enabled_schedulers`): all four job types.
    pub schedulers: Vec<EvaluationType>,
    /// How long one dequeue waits before checking for shutdown.
    pub dequeue_timeout: Duration,
    /// How long to wait for a snapshot to reach an evaluation's or a plan's index (Nomad's
    /// `raftSyncLimit`, 5 s).
    pub snapshot_timeout: Duration,
    /// Scheduler settings; `now_unix` is set for each evaluation.
    pub scheduler: SchedulerConfig,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            schedulers: vec![
                EvaluationType::Service,
                EvaluationType::Batch,
                EvaluationType::System,
                EvaluationType::Sysbatch,
            ],
            dequeue_timeout: Duration::from_millis(500),
            snapshot_timeout: Duration::from_secs(5),
            scheduler: SchedulerConfig::default(),
        }
    }
}

/// Why a worker could not process an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The snapshot did not reach the index in time.
    #[error("snapshot did not reach index {index} in time (at {reached})")]
    SnapshotTimeout {
        /// Index waited for.
        index: u64,
        /// Index the snapshot reached.
        reached: u64,
    },
    /// A client call failed.
    #[error("client call failed")]
    Client(#[source] ClientError),
    /// The broker no longer knows the delivery (nack timeout, leadership lost).
    #[error("broker refused the delivery")]
    Broker(#[source] BrokerError),
    /// The scheduler failed.
    #[error("scheduler failed")]
    Scheduler(#[source] SchedError),
    /// The scheduler thread panicked or was cancelled.
    #[error("scheduler thread failed: {0}")]
    SchedulerThread(String),
}

/// What happened to one delivered evaluation.
#[derive(Debug)]
pub struct Processed {
    /// Name of the evaluation.
    pub eval_name: String,
    /// `None` when acked; the error when nacked.
    pub error: Option<WorkerError>,
}

/// One scheduler worker.
pub struct Worker<C, S, B> {
    id: usize,
    broker: B,
    snapshots: Arc<S>,
    client: C,
    config: WorkerConfig,
}

impl<C, S, B> std::fmt::Debug for Worker<C, S, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl<C: Client, S: Snapshots, B: EvalSource> Worker<C, S, B> {
    /// Worker number `id`.
    pub fn new(id: usize, broker: B, snapshots: Arc<S>, client: C, config: WorkerConfig) -> Self {
        Self {
            id,
            broker,
            snapshots,
            client,
            config,
        }
    }

    /// Processes evaluations until `shutdown` turns true (or its sender is dropped). An
    /// evaluation being processed is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        info!(worker = self.id, "scheduler worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            let delivery = tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() { break; }
                    continue;
                }
                delivery = self.broker.dequeue(&self.config.schedulers, self.config.dequeue_timeout) => delivery,
            };
            if let Some(delivery) = delivery {
                self.process(delivery).await;
            }
        }
        info!(worker = self.id, "scheduler worker stopped");
    }

    /// Waits up to the dequeue timeout for one evaluation and processes it.
    pub async fn process_next(&self) -> Option<Processed> {
        let delivery = self
            .broker
            .dequeue(&self.config.schedulers, self.config.dequeue_timeout)
            .await?;
        Some(self.process(delivery).await)
    }

    /// Processes one delivered evaluation, then acks or nacks it.
    pub async fn process(&self, delivery: Delivery) -> Processed {
        let eval_name = delivery.eval.metadata.name().to_owned();
        let span = info_span!(
            "evaluation",
            worker = self.id,
            eval = %eval_name,
            job = %delivery.eval.spec.job_name,
            deliveries = delivery.deliveries,
        );
        let token = delivery.token;
        let error = self.schedule(delivery).instrument(span.clone()).await.err();
        if let Some(error) = &error {
            let _entered = span.enter();
            warn!(error = %error, cause = ?std::error::Error::source(error).map(ToString::to_string), "evaluation failed; nacking");
        }
        let settled = match &error {
            None => self.broker.ack(&eval_name, token).await,
            Some(_) => self.broker.nack(&eval_name, token).await,
        };
        let _entered = span.enter();
        match settled {
            Ok(()) if error.is_none() => info!("evaluation processed"),
            Ok(()) => {}
            Err(e) => warn!(error = %e, "could not settle the delivery with the broker"),
        }
        Processed { eval_name, error }
    }

    async fn schedule(&self, delivery: Delivery) -> Result<(), WorkerError> {
        let Delivery { eval, token, .. } = delivery;
        let wait_index = eval
            .metadata
            .resource_version
            .as_deref()
            .and_then(|rv| rv.parse::<u64>().ok())
            .unwrap_or_default();
        let snapshot = self
            .snapshots
            .wait_for_index(wait_index, self.config.snapshot_timeout)
            .await?;
        debug!(snapshot_index = snapshot.index(), "scheduling");
        let kind = eval.spec.r#type.unwrap_or_default();
        let config = SchedulerConfig {
            now_unix: now_unix(),
            ..self.config.scheduler.clone()
        };
        let mut planner = ClientPlanner {
            handle: Handle::current(),
            client: self.client.clone(),
            snapshots: self.snapshots.clone(),
            broker: self.broker.clone(),
            eval: eval.clone(),
            token,
            refresh_timeout: self.config.snapshot_timeout,
            failure: None,
        };
        let task = tokio::task::spawn_blocking(move || {
            let result = match new_scheduler(kind, snapshot, &mut planner, config) {
                Some(mut scheduler) => scheduler.process(&eval),
                None => Err(SchedError::InvalidEval {
                    eval: eval.metadata.name().to_owned(),
                    reason: format!("no scheduler for type {kind:?}"),
                }),
            };
            (result, planner.failure)
        });
        let (result, failure) = task
            .await
            .map_err(|e| WorkerError::SchedulerThread(e.to_string()))?;
        match result {
            Ok(()) => Ok(()),
            // The scheduler already marked the evaluation failed and created a blocked one.
            Err(SchedError::MaxPlanAttempts(attempts)) => {
                warn!(attempts, "maximum plan attempts reached; evaluation failed");
                Ok(())
            }
            Err(error) => Err(failure.unwrap_or(WorkerError::Scheduler(error))),
        }
    }
}

/// A pool of workers sharing one broker.
#[derive(Debug)]
pub struct Workers {
    shutdown: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// One worker per core (Nomad's default).
    pub fn default_count() -> usize {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    }

    /// Starts `n` workers on the current runtime.
    pub fn spawn<C: Client, S: Snapshots, B: EvalSource>(
        n: usize,
        broker: &B,
        snapshots: Arc<S>,
        client: &C,
        config: &WorkerConfig,
    ) -> Self {
        let (shutdown, receiver) = watch::channel(false);
        let handles = (0..n)
            .map(|id| {
                let worker = Worker::new(
                    id,
                    broker.clone(),
                    snapshots.clone(),
                    client.clone(),
                    config.clone(),
                );
                tokio::spawn(worker.run(receiver.clone()))
            })
            .collect();
        Self { shutdown, handles }
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether the pool has no worker.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Stops every worker after its current evaluation and waits for them.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        for handle in self.handles {
            if let Err(error) = handle.await {
                warn!(error = %error, "scheduler worker ended abnormally");
            }
        }
    }
}
