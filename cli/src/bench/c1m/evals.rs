//! Evaluation latency: a watch on the bench's evaluations, from each one's ADDED (pending) to
//! the event that shows it `complete`, `failed`, `blocked` or `canceled`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use anyhow::Context as _;
use caravan_client::{HttpClient, ListParams, WatchParams, WireEvent};
use caravan_schemas::Kind;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::jobs::NAMESPACE;
use crate::bench::report::histogram;

/// What the watch saw so far.
#[derive(Clone, Debug)]
pub struct EvalStats {
    /// Microseconds from ADDED to a final status.
    pub latency: Histogram<u64>,
    pub finished: u64,
    pub blocked: u64,
    pub failed: u64,
}

impl Default for EvalStats {
    fn default() -> Self {
        EvalStats {
            latency: histogram(),
            finished: 0,
            blocked: 0,
            failed: 0,
        }
    }
}

#[derive(Default)]
struct Tracker {
    started: HashMap<String, Instant>,
    stats: EvalStats,
}

impl Tracker {
    /// Records one event of an evaluation of a job whose name starts with `prefix`.
    fn observe(&mut self, event: &WireEvent, prefix: &str, now: Instant) {
        let (added, object) = match event {
            WireEvent::Added(o) => (true, o),
            WireEvent::Modified(o) => (false, o),
            _ => return,
        };
        let job = object.pointer("/spec/jobName").and_then(Value::as_str);
        if !job.is_some_and(|j| j.starts_with(prefix)) {
            return;
        }
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let status = object
            .pointer("/status/status")
            .and_then(Value::as_str)
            .unwrap_or("pending");
        if added && status == "pending" {
            self.started.insert(name, now);
            return;
        }
        if !matches!(status, "complete" | "failed" | "blocked" | "canceled") {
            return;
        }
        if let Some(t) = self.started.remove(&name) {
            let micros = now.duration_since(t).as_micros().max(1);
            let _ = self
                .stats
                .latency
                .record(u64::try_from(micros).unwrap_or(u64::MAX));
            self.stats.finished += 1;
            self.stats.blocked += u64::from(status == "blocked");
            self.stats.failed += u64::from(status == "failed");
        }
    }
}

/// A running evaluation watch.
pub struct EvalWatch {
    tracker: Arc<Mutex<Tracker>>,
    task: JoinHandle<()>,
}

impl EvalWatch {
    /// Watches evaluations from now on; counts those of jobs named `prefix…`.
    pub async fn start(client: &HttpClient, prefix: &str) -> anyhow::Result<EvalWatch> {
        let api = client.api(Kind::Evaluation, Some(NAMESPACE));
        let list = api
            .list(&ListParams {
                limit: Some(1),
                ..ListParams::default()
            })
            .await
            .context("listing evaluations")?;
        let params = WatchParams {
            timeout_seconds: Some(3600),
            ..WatchParams::default()
        };
        let mut events = api
            .watch(&params, &list.metadata.resource_version)
            .await
            .context("watching evaluations")?;
        let tracker: Arc<Mutex<Tracker>> = Arc::default();
        let prefix = prefix.to_string();
        let task = {
            let tracker = tracker.clone();
            tokio::spawn(async move {
                while let Some(Ok(event)) = events.next().await {
                    tracker
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .observe(&event, &prefix, Instant::now());
                }
            })
        };
        Ok(EvalWatch { tracker, task })
    }

    pub fn stats(&self) -> EvalStats {
        self.tracker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stats
            .clone()
    }

    /// Whether the watch stream is still open.
    pub fn watching(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for EvalWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn eval(name: &str, job: &str, status: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {"jobName": job}, "status": {"status": status}})
    }

    #[test]
    fn latency_runs_from_pending_to_a_final_status() {
        let mut t = Tracker::default();
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(40);
        let events = [
            (WireEvent::Added(eval("e1", "c1m-x-1", "pending")), t0),
            (WireEvent::Added(eval("e2", "other", "pending")), t0),
            (WireEvent::Added(eval("e3", "c1m-x-2", "pending")), t0),
            (WireEvent::Modified(eval("e1", "c1m-x-1", "pending")), later),
            (
                WireEvent::Modified(eval("e1", "c1m-x-1", "complete")),
                later,
            ),
            (WireEvent::Modified(eval("e3", "c1m-x-2", "blocked")), later),
            (WireEvent::Modified(eval("e2", "other", "complete")), later),
        ];
        for (event, at) in &events {
            t.observe(event, "c1m-x-", *at);
        }
        assert_eq!(
            (t.stats.finished, t.stats.blocked, t.stats.failed),
            (2, 1, 0)
        );
        let p50 = t.stats.latency.value_at_quantile(0.5);
        assert!((39_900..=40_100).contains(&p50), "{p50}");
        assert!(t.started.is_empty());
    }
}
