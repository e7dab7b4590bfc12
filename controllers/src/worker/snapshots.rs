//! Where workers get state snapshots, and how they wait for one that has caught up with a write
//! (Nomad's `snapshotMinIndex`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::WorkerError;
use crate::scheduler::State;

/// Source of scheduler snapshots. Any `Fn() -> Arc<dyn State>` is one (waiting by polling);
/// [`WatchSnapshots`] waits on a channel instead.
pub trait Snapshots: Send + Sync + 'static {
    /// The newest snapshot.
    fn snapshot(&self) -> Arc<dyn State>;

    /// A snapshot at store index `index` or later, waiting up to `timeout` for it.
    fn wait_for_index(
        &self,
        index: u64,
        timeout: Duration,
    ) -> impl Future<Output = Result<Arc<dyn State>, WorkerError>> + Send {
        async move {
            let give_up = Instant::now() + timeout;
            let mut pause = Duration::from_millis(2);
            loop {
                let snapshot = self.snapshot();
                if snapshot.index() >= index {
                    return Ok(snapshot);
                }
                let now = Instant::now();
                if now >= give_up {
                    return Err(WorkerError::SnapshotTimeout {
                        index,
                        reached: snapshot.index(),
                    });
                }
                tokio::time::sleep(pause.min(give_up - now)).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
}

impl<F> Snapshots for F
where
    F: Fn() -> Arc<dyn State> + Send + Sync + 'static,
{
    fn snapshot(&self) -> Arc<dyn State> {
        self()
    }
}

/// Snapshots published on a `tokio::sync::watch` channel by whoever maintains the state (a
/// reflector, or the API server's store); waiting for an index costs no polling.
#[derive(Clone)]
pub struct WatchSnapshots {
    receiver: watch::Receiver<Arc<dyn State>>,
}

impl std::fmt::Debug for WatchSnapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchSnapshots")
            .field("index", &self.receiver.borrow().index())
            .finish()
    }
}

impl WatchSnapshots {
    /// Snapshots from `receiver`.
    pub fn new(receiver: watch::Receiver<Arc<dyn State>>) -> Self {
        Self { receiver }
    }
}

impl Snapshots for WatchSnapshots {
    fn snapshot(&self) -> Arc<dyn State> {
        self.receiver.borrow().clone()
    }

    async fn wait_for_index(
        &self,
        index: u64,
        timeout: Duration,
    ) -> Result<Arc<dyn State>, WorkerError> {
        let mut receiver = self.receiver.clone();
        let reached = || self.receiver.borrow().index();
        match tokio::time::timeout(timeout, receiver.wait_for(|s| s.index() >= index)).await {
            Ok(Ok(snapshot)) => Ok(snapshot.clone()),
            Ok(Err(_)) | Err(_) => Err(WorkerError::SnapshotTimeout {
                index,
                reached: reached(),
            }),
        }
    }
}
