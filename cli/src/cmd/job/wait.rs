//! Drives the [`Monitor`]: watches the job's evaluations and allocations (list, then watch,
//! re-listing on expiry) until the followed evaluation is final, printing the monitor's lines
//! and, on waits of more than a few seconds, a spinner with the elapsed time on stderr
//! ([`Progress`]).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, bail};
use caravan_client::{HttpClient, ListParams};
use caravan_runtime::{ClientError, ListQuery};
use caravan_runtime::{Event, watcher};
use caravan_schemas::{Allocation, Evaluation, Kind};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::monitor::{Monitor, Outcome, Target};
use super::progress::Progress;
use crate::output::age::human_duration;

/// The names of the job's allocations now: those seen again after a write were modified.
pub async fn existing_allocs(
    client: &HttpClient,
    namespace: &str,
    job: &str,
) -> anyhow::Result<BTreeSet<String>> {
    let list = client
        .api(Kind::Allocation, Some(namespace))
        .list_all(&job_selector(job))
        .await
        .with_context(|| format!("listing the allocations of job {job:?}"))?;
    Ok(list
        .items
        .iter()
        .filter_map(|a| a.pointer("/metadata/name")?.as_str().map(str::to_owned))
        .collect())
}

fn job_selector(job: &str) -> ListParams {
    ListParams {
        field_selector: Some(format!("spec.jobName={job}")),
        ..ListParams::default()
    }
}

/// Follows the evaluation `target` describes until it is final or `timeout` passes.
pub async fn monitor(
    client: &HttpClient,
    namespace: &str,
    target: Target,
    existed: BTreeSet<String>,
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    let job = target.job.clone();
    let query = ListQuery {
        field_selector: Some(format!("spec.jobName={job}")),
        ..ListQuery::default()
    };
    let alloc_api = client.api(Kind::Allocation, Some(namespace));
    let ns = Some(namespace.to_string());
    let evals = watcher(client.clone(), Kind::Evaluation, ns.clone(), query.clone());
    let allocs = watcher(client.clone(), Kind::Allocation, ns, query);
    tokio::pin!(evals);
    tokio::pin!(allocs);
    let mut monitor = Monitor::new(target, existed);
    let mut progress = Progress::new();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while !monitor.done() {
        tokio::select! {
            Some(event) = evals.next() => {
                if let Some(eval) = applied::<Evaluation>(event)? {
                    progress.print(monitor.observe_eval(&eval));
                }
            }
            Some(event) = allocs.next() => {
                if let Some(alloc) = applied::<Allocation>(event)? {
                    progress.print(monitor.observe_alloc(&alloc));
                }
            }
            _ = tick.tick() => progress.tick(&waiting(&job, monitor.eval_name())),
            _ = &mut deadline => {
                progress.clear();
                let what = match monitor.eval_name() {
                    Some(eval) => format!("evaluation {eval:?}"),
                    None => format!("an evaluation of job {job:?}"),
                };
                bail!("timed out after {} waiting for {what}", human_duration(timeout));
            }
        }
    }
    // Allocations are written before the evaluation is updated, but on another stream: read
    // them once more so none created by the evaluation is missed.
    let list = alloc_api
        .list_all(&job_selector(&job))
        .await
        .with_context(|| format!("listing the allocations of job {job:?}"))?;
    for item in list.items {
        if let Ok(alloc) = serde_json::from_value::<Allocation>(item) {
            progress.print(monitor.observe_alloc(&alloc));
        }
    }
    let (lines, outcome) = monitor.finish();
    progress.print(lines);
    progress.clear();
    Ok(outcome)
}

/// What the spinner says while the evaluation is awaited.
fn waiting(job: &str, eval: Option<&str>) -> String {
    match eval {
        Some(eval) => format!("Waiting for evaluation {eval:?} to finish"),
        None => format!("Waiting for an evaluation of job {job:?}"),
    }
}

/// The object of an added or modified event; fails when the server cannot be reached (the
/// watcher itself re-lists on expiry and retries other errors).
fn applied<T: DeserializeOwned>(event: Result<Event, ClientError>) -> anyhow::Result<Option<T>> {
    let value: Value = match event {
        Ok(Event::InitApply(v) | Event::Apply(v)) => v,
        Ok(_) => return Ok(None),
        Err(e @ ClientError::Unavailable(_)) => {
            return Err(anyhow::Error::new(e).context("watching the job's evaluations"));
        }
        Err(e) => {
            tracing::warn!("{e:#}; retrying");
            return Ok(None);
        }
    };
    match serde_json::from_value(value) {
        Ok(object) => Ok(Some(object)),
        Err(e) => {
            tracing::warn!("skipping an undecodable object: {e}");
            Ok(None)
        }
    }
}
