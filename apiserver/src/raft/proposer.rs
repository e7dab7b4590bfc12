//! Group commit: concurrent writes are queued, drained into batches and proposed as one Raft
//! entry each, so one log fsync covers many writes.
//!
//! ```text
//! ReplicatedStore::write ──(op, reply)──▶ queue ──▶ proposer task: take one, then every queued op
//!                                            (≤ max_batch) ──Request(ops)──▶ raft.client_write_ff
//!                                                                              │ (≤ max_in_flight)
//!                    reply per op ◀── waiter task ◀── Response(results) ◀──────┘
//! ```
//!
//! Batches are submitted to Raft in queue order; up to `max_in_flight` of them await commit at
//! once. While all slots are busy the queue fills, so batches grow with load.
//!
//! openraft 0.9 appends (and so fsyncs) each proposed entry on its own, one after the other:
//! batches in flight together are not merged into one append. More slots therefore mean more,
//! smaller entries; one slot gives the biggest batches and, on one node, the best throughput.

use std::sync::Arc;

use openraft::Raft;
use openraft::error::ClientWriteError;
use openraft::raft::ClientWriteResponse;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::WriteError;
use super::type_config::{NodeId, OpResult, Request, TypeConfig};
use crate::store::{Op, OpOutcome};

type Reply = oneshot::Sender<Result<OpOutcome, WriteError>>;
type Outcome =
    Result<ClientWriteResponse<TypeConfig>, ClientWriteError<NodeId, openraft::BasicNode>>;

/// The sending side of the proposer queue. Cloning shares the queue; the proposer task stops
/// when every clone is dropped.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<(Op, Reply)>,
}

impl Proposer {
    /// Starts the proposer task on the current runtime: batches of at most `max_batch` ops,
    /// at most `max_in_flight` batches awaiting commit.
    pub fn spawn(raft: Raft<TypeConfig>, max_batch: usize, max_in_flight: usize) -> Proposer {
        let max_batch = max_batch.max(1);
        let max_in_flight = max_in_flight.max(1);
        let (tx, rx) = mpsc::channel(max_batch * (max_in_flight + 1));
        tokio::spawn(run(raft, rx, max_batch, max_in_flight));
        Proposer { tx }
    }

    /// Queues `op` and waits for its own result.
    pub async fn propose(&self, op: Op) -> Result<OpOutcome, WriteError> {
        let (reply, result) = oneshot::channel();
        self.tx
            .send((op, reply))
            .await
            .map_err(|_| WriteError::Unavailable("the proposer has stopped".to_owned()))?;
        result
            .await
            .map_err(|_| WriteError::Unavailable("the write was dropped".to_owned()))?
    }
}

/// Longest a write waits for its entry to commit before it is answered with an error.
const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn run(
    raft: Raft<TypeConfig>,
    mut rx: mpsc::Receiver<(Op, Reply)>,
    max_batch: usize,
    max_in_flight: usize,
) {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    loop {
        // Take a slot first: while none is free, writes pile up in the queue and the next
        // batch gets bigger.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let capacity = max_batch.min(rx.len() + 1);
        let mut ops = Vec::with_capacity(capacity);
        let mut replies = Vec::with_capacity(capacity);
        let mut next = Some(first);
        while let Some((op, reply)) = next.take() {
            ops.push(op);
            replies.push(reply);
            if replies.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        tracing::trace!(ops = replies.len(), "proposing a batch");
        match raft.client_write_ff(Request(ops)).await {
            Ok(committed) => {
                tokio::spawn(async move {
                    let outcome = tokio::time::timeout(COMMIT_TIMEOUT, committed).await;
                    drop(slot);
                    match outcome {
                        Ok(Ok(outcome)) => deliver(replies, outcome),
                        Ok(Err(_)) => fail(replies, "raft dropped the write"),
                        // A leader cut off from its quorum: answer instead of hanging. The entry
                        // may still commit if the partition heals while it leads.
                        Err(_) => fail(
                            replies,
                            "the write was not committed in time (no quorum?); it may still be applied",
                        ),
                    }
                });
            }
            Err(fatal) => {
                tracing::warn!(error = %fatal, "raft refused a write batch");
                fail(replies, &fatal.to_string());
            }
        }
    }
}

/// Answers every waiter of a batch with its own result.
fn deliver(replies: Vec<Reply>, outcome: Outcome) {
    match outcome {
        Ok(response) => {
            let mut results = response.data.0.into_iter();
            for reply in replies {
                let result = match results.next() {
                    Some(OpResult(Ok(outcome))) => Ok(outcome),
                    Some(OpResult(Err(e))) => Err(WriteError::Rejected(e)),
                    None => Err(WriteError::Unavailable(
                        "the state machine returned too few results".to_owned(),
                    )),
                };
                let _ = reply.send(result);
            }
        }
        Err(ClientWriteError::ForwardToLeader(forward)) => {
            let leader = forward.leader_node.map(|n| n.addr);
            for reply in replies {
                let _ = reply.send(Err(WriteError::NotLeader {
                    leader: leader.clone(),
                }));
            }
        }
        Err(e) => fail(replies, &e.to_string()),
    }
}

fn fail(replies: Vec<Reply>, reason: &str) {
    for reply in replies {
        let _ = reply.send(Err(WriteError::Unavailable(reason.to_owned())));
    }
}
