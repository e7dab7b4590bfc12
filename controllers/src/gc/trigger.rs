//! [`GcTrigger`]: a cloneable handle that asks the running garbage collection loop for a pass
//! now and waits for its [`GcSummary`].

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard, mpsc, oneshot};

use super::GcSummary;

/// Requests waiting for the loop; a pass runs per request.
const QUEUE: usize = 16;

/// One request for a pass.
#[derive(Debug)]
pub(crate) struct GcRequest {
    /// Treat every threshold as zero (Nomad's forced collection); the safety rules still hold.
    pub force: bool,
    pub reply: oneshot::Sender<GcSummary>,
}

/// Why a pass could not be run on request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GcError {
    /// No garbage collection loop listens to this trigger (controllers not running).
    #[error("garbage collection is not running")]
    NotRunning,
}

/// Asks the garbage collection loop for a pass. Clones share one loop; a trigger nobody
/// listens to answers [`GcError::NotRunning`].
#[derive(Clone)]
pub struct GcTrigger {
    requests: mpsc::Sender<GcRequest>,
    /// Held by the loop for as long as it runs.
    receiver: Arc<Mutex<mpsc::Receiver<GcRequest>>>,
}

impl std::fmt::Debug for GcTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcTrigger")
            .field("listening", &self.is_listening())
            .finish()
    }
}

impl Default for GcTrigger {
    fn default() -> Self {
        GcTrigger::new()
    }
}

impl GcTrigger {
    pub fn new() -> GcTrigger {
        let (requests, receiver) = mpsc::channel(QUEUE);
        GcTrigger {
            requests,
            receiver: Arc::new(Mutex::new(receiver)),
        }
    }

    /// Whether a loop listens to this trigger.
    pub fn is_listening(&self) -> bool {
        self.receiver.try_lock().is_err()
    }

    /// Runs a pass now (every threshold zero with `force`) and returns what it deleted.
    pub async fn collect(&self, force: bool) -> Result<GcSummary, GcError> {
        if !self.is_listening() {
            return Err(GcError::NotRunning);
        }
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(GcRequest { force, reply })
            .await
            .map_err(|_| GcError::NotRunning)?;
        answer.await.map_err(|_| GcError::NotRunning)
    }

    /// The requests, for the one loop that serves them; a second loop waits here until the
    /// first ends.
    pub(crate) async fn listen(&self) -> OwnedMutexGuard<mpsc::Receiver<GcRequest>> {
        self.receiver.clone().lock_owned().await
    }
}
