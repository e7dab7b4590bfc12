//! Evaluations: creating them, feeding pending ones to the broker and blocked ones to the
//! blocked tracker, and closing the ones the broker gave up on.

use std::sync::Arc;
use std::time::Duration;

use caravan_schemas::evaluation::{EvaluationState, TriggeredBy};
use caravan_schemas::{Evaluation, Kind};
use serde_json::json;
use tokio::sync::broadcast;

use super::Shared;
use crate::evaluator::{EvalRequest, eval_name, new_evaluation};
use crate::scheduler::util::stable_hash;
use caravan_runtime::Event;
use caravan_runtime::{Client, ClientError};

/// Creates the evaluation `req` asks for. `discriminator` makes its name: the same change
/// always makes the same name, so a change handled twice (a re-list, a new leader) creates one
/// evaluation.
pub(crate) async fn create<C: Client>(
    client: &C,
    req: &EvalRequest,
    discriminator: &[&str],
) -> Result<(), ClientError> {
    let hash = stable_hash(
        discriminator
            .iter()
            .copied()
            .chain([req.job_name.as_str(), req.namespace.as_str()]),
    );
    let name = eval_name(req, &format!("{hash:016x}"));
    let eval = new_evaluation(req, name.clone());
    let object = serde_json::to_value(&eval).map_err(|e| ClientError::Invalid(e.to_string()))?;
    match client.create(Kind::Evaluation, object).await {
        Ok(_) => {
            tracing::debug!(eval = %name, job = %req.job_name, trigger = ?req.triggered_by, "evaluation created");
            Ok(())
        }
        Err(ClientError::AlreadyExists) => Ok(()),
        Err(e) => Err(e),
    }
}

fn key(eval: &Evaluation) -> (String, String) {
    (
        eval.metadata.namespace().to_string(),
        eval.metadata.name().to_string(),
    )
}

async fn set_status<C: Client>(
    client: &C,
    eval: &Evaluation,
    status: EvaluationState,
    description: &str,
) {
    let (ns, name) = key(eval);
    let patch = json!({"status": {"status": status, "statusDescription": description}});
    if let Err(e) = client
        .patch_status(Kind::Evaluation, &ns, &name, patch)
        .await
    {
        tracing::warn!(eval = %name, error = %e, "could not update the evaluation status");
    }
}

/// Feeds every pending evaluation to the broker and every blocked one to the blocked tracker.
pub(crate) async fn feed<C: Client>(
    shared: Arc<Shared<C>>,
    mut events: broadcast::Receiver<Event>,
) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "evaluation feed lagged; re-reading the cache");
                for eval in shared.caches.evaluations.state() {
                    offer(&shared, (*eval).clone()).await;
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let object = match &event {
            Event::InitApply(v) | Event::Apply(v) => v,
            _ => continue,
        };
        if let Ok(eval) = serde_json::from_value::<Evaluation>(object.clone()) {
            offer(&shared, eval).await;
        }
    }
}

async fn offer<C: Client>(shared: &Shared<C>, eval: Evaluation) {
    let state = eval
        .status
        .as_ref()
        .map_or(EvaluationState::Pending, |s| s.status);
    match state {
        EvaluationState::Pending => {
            shared.broker.enqueue(eval);
            for canceled in shared.broker.take_cancelable(64) {
                set_status(
                    &shared.client,
                    &canceled,
                    EvaluationState::Canceled,
                    "superseded by a newer evaluation of the job",
                )
                .await;
            }
        }
        EvaluationState::Blocked => {
            let outcome = shared
                .blocked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .block(eval);
            for old in outcome.cancel {
                set_status(
                    &shared.client,
                    &old,
                    EvaluationState::Canceled,
                    "superseded by a newer blocked evaluation",
                )
                .await;
            }
            if let Some(ready) = outcome.enqueue {
                set_status(
                    &shared.client,
                    &ready,
                    EvaluationState::Pending,
                    "unblocked: capacity may be available",
                )
                .await;
            }
        }
        _ => {}
    }
}

/// Re-queues blocked evaluations as pending (their status write brings them to the broker).
pub(crate) async fn requeue<C: Client>(shared: &Shared<C>, evals: Vec<Evaluation>) {
    for eval in evals {
        set_status(
            &shared.client,
            &eval,
            EvaluationState::Pending,
            "unblocked: capacity may be available",
        )
        .await;
    }
}

/// Evaluations delivered too often are marked failed, with a follow-up evaluation of their job.
pub(crate) async fn reap_failed<C: Client>(shared: Arc<Shared<C>>) {
    loop {
        let Some(delivery) = shared.broker.dequeue_failed(Duration::from_secs(1)).await else {
            continue;
        };
        let eval = delivery.eval;
        set_status(
            &shared.client,
            &eval,
            EvaluationState::Failed,
            "evaluation reached its delivery limit",
        )
        .await;
        let req = EvalRequest {
            namespace: key(&eval).0,
            job_name: eval.spec.job_name.clone(),
            job_version: eval.spec.job_version,
            job_type: eval.spec.r#type.unwrap_or_default(),
            priority: eval.spec.priority.unwrap_or(50),
            triggered_by: TriggeredBy::FailedFollowUp,
            node_name: None,
        };
        let parent = key(&eval).1;
        if let Err(e) = create(&shared.client, &req, &["failed-follow-up", &parent]).await {
            tracing::warn!(eval = %parent, error = %e, "could not create the follow-up evaluation");
        }
        let _ = shared.broker.ack(&parent, delivery.token);
    }
}
