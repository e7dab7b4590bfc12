//! [`ClientPlanner`]: the scheduler's [`Planner`] over the async [`Client`], run on the worker's
//! blocking thread (each call blocks on the runtime with `Handle::block_on`).

use std::sync::Arc;
use std::time::Duration;

use caravan_schemas::{Evaluation, Kind};
use serde_json::{Value, json};
use tokio::runtime::Handle;
use tracing::{debug, warn};

use super::WorkerError;
use super::snapshots::Snapshots;
use crate::broker::{EvalSource, Token};
use crate::job_status::merge_patch_diff;
use crate::scheduler::util::stable_hash;
use crate::scheduler::{Plan, PlanResult, Planner, SchedError, State};
use caravan_runtime::{Client, ClientError};

/// Bridges one evaluation's scheduler run to the client, the snapshots and the broker.
pub(crate) struct ClientPlanner<C, S, B> {
    pub handle: Handle,
    pub client: C,
    pub snapshots: Arc<S>,
    pub broker: B,
    /// The evaluation as last written, to compute status patches against.
    pub eval: Evaluation,
    pub token: Token,
    pub refresh_timeout: Duration,
    /// The first failure met, kept for the worker's log with its source.
    pub failure: Option<WorkerError>,
}

/// A name for a created evaluation that has none: `<job>-<8 hex>`, stable for a given parent
/// and purpose so a redelivered evaluation creates the same object again.
pub(crate) fn derived_name(parent: &Evaluation, child: &Evaluation) -> String {
    let purpose = serde_json::to_value(child.spec.triggered_by)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let status = child.status.as_ref().map(|s| s.status).unwrap_or_default();
    let status = format!("{status:?}");
    let hash = stable_hash([parent.metadata.name(), purpose.as_str(), status.as_str()]);
    let job = child.spec.job_name.trim_end_matches('-');
    let job = job.get(..job.len().min(200)).unwrap_or(job);
    format!("{job}-{:08x}", hash as u32)
}

impl<C: Client, S: Snapshots, B: EvalSource> ClientPlanner<C, S, B> {
    fn fail(&mut self, error: WorkerError) -> String {
        let message = error.to_string();
        self.failure.get_or_insert(error);
        message
    }

    fn touch(&self) {
        if let Err(error) = self.handle.block_on(
            self.broker
                .outstanding_reset(self.eval.metadata.name(), self.token),
        ) {
            debug!(eval = %self.eval.metadata.name(), error = %error, "could not extend the nack timeout");
        }
    }
}

impl<C: Client, S: Snapshots, B: EvalSource> Planner for ClientPlanner<C, S, B> {
    fn submit_plan(
        &mut self,
        plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), SchedError> {
        let name = self.eval.metadata.name().to_string();
        // Waiting on the plan applier is not the worker's fault: no nack timeout meanwhile.
        if let Err(error) = self
            .handle
            .block_on(self.broker.pause_nack_timeout(&name, self.token))
        {
            let message = self.fail(WorkerError::Broker(error));
            return Err(SchedError::PlanSubmitFailed(message));
        }
        let submitted = self.handle.block_on(self.client.submit_plan(plan));
        if let Err(error) = self
            .handle
            .block_on(self.broker.resume_nack_timeout(&name, self.token))
        {
            let message = self.fail(WorkerError::Broker(error));
            return Err(SchedError::PlanSubmitFailed(message));
        }
        let result = match submitted {
            Ok(result) => result,
            Err(error) => {
                let message = self.fail(WorkerError::Client(error));
                return Err(SchedError::PlanSubmitFailed(message));
            }
        };
        if result.refresh_index == 0 {
            return Ok((result, None));
        }
        debug!(eval = %name, refresh_index = result.refresh_index, "plan partly rejected; refreshing snapshot");
        let refreshed = self.handle.block_on(
            self.snapshots
                .wait_for_index(result.refresh_index, self.refresh_timeout),
        );
        self.touch();
        match refreshed {
            Ok(state) => Ok((result, Some(state))),
            Err(error) => {
                let message = self.fail(error);
                Err(SchedError::PlanSubmitFailed(message))
            }
        }
    }

    fn update_eval(&mut self, eval: Evaluation) -> Result<(), SchedError> {
        let old = serde_json::to_value(self.eval.status.clone().unwrap_or_default());
        let new = serde_json::to_value(eval.status.clone().unwrap_or_default());
        let (Ok(old), Ok(new)) = (old, new) else {
            return Err(SchedError::EvalUpdateFailed(
                "evaluation status does not serialize".into(),
            ));
        };
        let Some(diff) = merge_patch_diff(&old, &new) else {
            self.eval = eval;
            return Ok(());
        };
        let (namespace, name) = (
            eval.metadata.namespace().to_string(),
            eval.metadata.name().to_string(),
        );
        let patch: Value = json!({ "status": diff });
        let written = self.handle.block_on(self.client.patch_status(
            Kind::Evaluation,
            &namespace,
            &name,
            patch,
        ));
        self.touch();
        match written {
            Ok(_) => {
                debug!(eval = %name, namespace = %namespace, status = ?eval.status.as_ref().map(|s| s.status), "evaluation updated");
                self.eval = eval;
                Ok(())
            }
            Err(error) => Err(SchedError::EvalUpdateFailed(
                self.fail(WorkerError::Client(error)),
            )),
        }
    }

    fn create_eval(&mut self, mut eval: Evaluation) -> Result<(), SchedError> {
        if eval.metadata.name.as_deref().is_none_or(str::is_empty) {
            eval.metadata.name = Some(derived_name(&self.eval, &eval));
        }
        if eval.metadata.namespace.is_none() {
            eval.metadata.namespace = Some(self.eval.metadata.namespace().to_string());
        }
        let name = eval.metadata.name().to_string();
        let object = serde_json::to_value(&eval).map_err(|e| {
            SchedError::EvalCreateFailed(format!("evaluation {name} does not serialize: {e}"))
        })?;
        let created = self
            .handle
            .block_on(self.client.create(Kind::Evaluation, object));
        self.touch();
        match created {
            Ok(_) => {
                debug!(eval = %name, parent = %self.eval.metadata.name(), "evaluation created");
                Ok(())
            }
            // A redelivered evaluation creates the same (deterministically named) object again.
            Err(ClientError::AlreadyExists) => {
                warn!(eval = %name, "evaluation already exists; keeping it");
                Ok(())
            }
            Err(error) => Err(SchedError::EvalCreateFailed(
                self.fail(WorkerError::Client(error)),
            )),
        }
    }
}
