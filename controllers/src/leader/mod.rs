//! The leader's duties, wired together: caches of jobs, nodes, allocations and evaluations; the
//! evaluator; the job controller (evaluations for new job versions, job status); the eval broker
//! fed from the evaluation cache; blocked evaluations; the scheduler workers; garbage
//! collection ([`crate::gc`]); and the cleanup of stale service registrations
//! ([`crate::services`]).
//!
//! ```text
//! watch Jobs ──▶ job controller ── reconcile(job) ─▶ create Deployment (new version of a job
//!                                  with an update block), create Evaluation, patch Job status
//! watch Nodes ─▶ node trigger ──▶ node-update evals, unblock blocked evals
//! watch Allocs ▶ alloc trigger ─▶ alloc-failure evals, unblock on freed capacity
//! watch Evals ─▶ eval feed ─────▶ EvalBroker (pending) / BlockedEvals (blocked)
//! draining Nodes ─▶ drainer ───▶ desiredTransition.migrate marks, node-drain evals
//! watch Deployments + alloc feed ─▶ deployment controller ─▶ Deployment status, evals,
//!                                   JobVersion stable, job reverted
//! watch ServiceRegistrations + alloc and node feeds ─▶ service cleanup ─▶ delete the
//!                                   registrations of ended allocations and down nodes
//!                                      │ dequeue
//!                                      ▼
//!        workers: snapshot (caches → MemState) → scheduler → Client::submit_plan → ack
//! ```
//!
//! Everything goes through a [`Client`], so the same code runs in the server process (over the
//! local store) or outside it (over HTTP).

mod caches;
mod deployments;
mod drainer;
pub(crate) mod evals;
mod gc;
mod job_controller;
mod services;
mod triggers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinSet;

pub use caches::Caches;

use crate::blocked::BlockedEvals;
use crate::broker::{BrokerConfig, EvalBroker, EvalSource};
use crate::gc::GcConfig;
use crate::worker::{WorkerConfig, Workers};
use caravan_runtime::Client;
use gc::ReapedJobs;

/// Settings of the leader's controllers.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Scheduler workers (Nomad: one per core).
    pub workers: usize,
    pub worker: WorkerConfig,
    pub broker: BrokerConfig,
    /// Garbage collection: interval, thresholds and the on-demand trigger.
    pub gc: GcConfig,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        LeaderConfig {
            workers: Workers::default_count(),
            worker: WorkerConfig::default(),
            broker: BrokerConfig::default(),
            gc: GcConfig::default(),
        }
    }
}

/// What the leader's loops share.
pub(crate) struct Shared<C> {
    pub client: C,
    pub caches: Caches,
    pub broker: EvalBroker,
    pub blocked: Mutex<BlockedEvals>,
    /// Jobs the garbage collector deleted: no deregister evaluation for them.
    pub reaped_jobs: ReapedJobs,
}

/// Runs the leader's controllers until the returned future is dropped.
pub async fn run<C: Client>(client: C, config: LeaderConfig) {
    let broker = EvalBroker::new(config.broker.clone());
    run_with_broker(client, config, broker).await;
}

/// Like [`run`], around `broker`, which the caller also serves to followers' workers.
pub async fn run_with_broker<C: Client>(client: C, config: LeaderConfig, broker: EvalBroker) {
    let (caches, feeds) = Caches::start(client.clone());
    let deployment_allocations = feeds.allocations.resubscribe();
    let service_feeds = (feeds.allocations.resubscribe(), feeds.nodes.resubscribe());
    let shared = Arc::new(Shared {
        client: client.clone(),
        caches,
        broker: broker.clone(),
        blocked: Mutex::new(BlockedEvals::new()),
        reaped_jobs: ReapedJobs::default(),
    });
    let mut tasks = JoinSet::new();
    tasks.spawn(triggers::nodes(shared.clone(), feeds.nodes));
    tasks.spawn(triggers::allocations(shared.clone(), feeds.allocations));
    tasks.spawn(triggers::deleted_jobs(shared.clone(), feeds.jobs));
    tasks.spawn(evals::feed(shared.clone(), feeds.evaluations));
    tasks.spawn(evals::reap_failed(shared.clone()));
    tasks.spawn(gc::run(
        client.clone(),
        shared.caches.clone(),
        config.gc.clone(),
        shared.reaped_jobs.clone(),
    ));
    tasks.spawn(drainer::run(shared.clone()));
    tasks.spawn(services::run(
        shared.clone(),
        service_feeds.0,
        service_feeds.1,
    ));
    let controller = job_controller::controller(shared.clone(), feeds.job_triggers);
    tasks.spawn(async move {
        let mut results = std::pin::pin!(controller);
        while let Some(result) = results.next().await {
            if let Err(e) = result {
                tracing::debug!(error = %e, "job reconcile failed");
            }
        }
    });
    let deployments = deployments::controller(shared.clone(), deployment_allocations);
    tasks.spawn(async move {
        let mut results = std::pin::pin!(deployments);
        while let Some(result) = results.next().await {
            if let Err(e) = result {
                tracing::debug!(error = %e, "deployment reconcile failed");
            }
        }
    });
    shared.caches.wait_until_ready().await;
    let workers = Workers::spawn(
        config.workers,
        &broker,
        Arc::new(shared.caches.snapshots()),
        &client,
        &config.worker,
    );
    tracing::info!(workers = workers.len(), "leader controllers running");
    while let Some(ended) = tasks.join_next().await {
        if let Err(e) = ended {
            tracing::error!(error = %e, "a leader task ended");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    workers.shutdown().await;
}

/// Scheduler workers on a follower (Nomad's servers all schedule): snapshots from the local
/// replica (`local`), evaluations from the leader's broker (`source`), plans and writes through
/// `client`, which reaches the leader. Runs until the future is dropped.
pub async fn run_follower_workers<L: Client, C: Client, B: EvalSource>(
    local: L,
    client: C,
    source: B,
    config: LeaderConfig,
) {
    let (caches, _feeds) = Caches::start(local);
    caches.wait_until_ready().await;
    let workers = Workers::spawn(
        config.workers,
        &source,
        Arc::new(caches.snapshots()),
        &client,
        &config.worker,
    );
    tracing::info!(
        workers = workers.len(),
        "follower scheduler workers running"
    );
    // Dropping the pool (when this future is dropped) stops the workers.
    let _workers = workers;
    std::future::pending::<()>().await;
}
