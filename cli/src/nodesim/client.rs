//! The HTTP client of one simulated node: the shared `caravan_client::HttpClient` (one connection
//! pool for every node) behind the controllers' `Client` trait, so the real agent's watcher
//! and status batcher run over it unchanged. It counts what the node asked and what the
//! servers acknowledged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use caravan_runtime::{Client, ClientError, EventStream, ListQuery, ObjectList, Subresource};
use caravan_schemas::Kind;
use caravan_schemas::plan::{Plan, PlanResult};
use serde_json::Value;

use super::stats::SimStats;

/// What the servers acknowledged of one allocation's status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reported {
    pub running: bool,
    pub terminal: bool,
}

impl Reported {
    /// Records an acknowledged `clientStatus`; returns the counters it newly reaches.
    pub fn ack(&mut self, client_status: &str) -> Reached {
        let mut reached = Reached::default();
        if client_status == "running" && !self.running {
            self.running = true;
            reached.running = true;
        }
        if matches!(client_status, "complete" | "failed") && !self.terminal {
            self.terminal = true;
            reached.complete = client_status == "complete";
            reached.failed = client_status == "failed";
        }
        reached
    }
}

/// Counters an acknowledgement reaches for the first time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reached {
    pub running: bool,
    pub complete: bool,
    pub failed: bool,
}

/// One node's view of the shared client.
#[derive(Clone)]
pub struct SimClient {
    http: caravan_client::HttpClient,
    stats: Arc<SimStats>,
    /// Allocation name → what the servers acknowledged of its status.
    reported: Arc<Mutex<HashMap<String, Reported>>>,
}

impl SimClient {
    pub fn new(http: caravan_client::HttpClient, stats: Arc<SimStats>) -> SimClient {
        SimClient {
            http,
            stats,
            reported: Arc::default(),
        }
    }

    pub fn http(&self) -> &caravan_client::HttpClient {
        &self.http
    }

    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Forgets an allocation the servers deleted.
    pub fn forget(&self, alloc: &str) {
        self.reported
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(alloc);
    }

    fn acked_status(&self, alloc: &str, client_status: Option<&str>) {
        SimStats::inc(&self.stats.status_patches);
        let Some(status) = client_status else {
            return;
        };
        let reached = self
            .reported
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(alloc.to_string())
            .or_default()
            .ack(status);
        if reached.running {
            SimStats::inc(&self.stats.running);
        }
        if reached.complete {
            SimStats::inc(&self.stats.complete);
        }
        if reached.failed {
            SimStats::inc(&self.stats.failed);
        }
    }
}

impl Client for SimClient {
    async fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Value, ClientError> {
        if kind == Kind::Job {
            SimStats::inc(&self.stats.job_gets);
        }
        self.http.get(kind, namespace, name).await
    }

    async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
    ) -> Result<ObjectList, ClientError> {
        self.http.list(kind, namespace, query).await
    }

    async fn watch(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
        resource_version: u64,
    ) -> Result<EventStream, ClientError> {
        self.http
            .watch(kind, namespace, query, resource_version)
            .await
    }

    async fn create(&self, kind: Kind, object: Value) -> Result<Value, ClientError> {
        self.http.create(kind, object).await
    }

    async fn patch_subresource(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: Value,
        subresource: Subresource,
    ) -> Result<Value, ClientError> {
        if kind != Kind::Allocation || subresource != Subresource::Status {
            return self
                .http
                .patch_subresource(kind, namespace, name, patch, subresource)
                .await;
        }
        let client_status = patch
            .pointer("/status/clientStatus")
            .and_then(Value::as_str)
            .map(str::to_string);
        let result = self
            .http
            .patch_subresource(kind, namespace, name, patch, subresource)
            .await;
        match &result {
            Ok(_) => self.acked_status(name, client_status.as_deref()),
            Err(_) => SimStats::inc(&self.stats.status_errors),
        }
        result
    }

    async fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Result<(), ClientError> {
        self.http.delete(kind, namespace, name).await
    }

    async fn delete_at(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> Result<(), ClientError> {
        self.http
            .delete_at(kind, namespace, name, resource_version)
            .await
    }

    async fn submit_plan(&self, plan: Plan) -> Result<PlanResult, ClientError> {
        self.http.submit_plan(plan).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_is_counted_once_per_allocation() {
        let mut r = Reported::default();
        assert!(r.ack("pending") == Reached::default());
        assert!(r.ack("running").running);
        assert!(!r.ack("running").running, "counted once");
        let done = r.ack("complete");
        assert!(done.complete && !done.failed && !done.running);
        assert_eq!(r.ack("failed"), Reached::default(), "already terminal");
        let mut f = Reported::default();
        let failed = f.ack("failed");
        assert!(failed.failed && !failed.running);
    }
}
