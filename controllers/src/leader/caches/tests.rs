//! Snapshots are complete up to their index, even when one kind's watch lags the others.

use std::time::Instant;

use caravan_schemas::mock;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch as gate;

use super::*;
use crate::client::{EventStream, ObjectList};
use crate::fake::FakeClient;
use crate::scheduler::{Plan, PlanResult};
use crate::worker::Snapshots;

const DEADLINE: Duration = Duration::from_secs(30);

/// The fake, with the events of allocation watches held back beyond the number the gate
/// allows (`usize::MAX`: all of them).
#[derive(Clone)]
struct Gated {
    fake: FakeClient,
    allowed: gate::Receiver<usize>,
}

impl Client for Gated {
    async fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Value, ClientError> {
        self.fake.get(kind, namespace, name).await
    }

    async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
    ) -> Result<ObjectList, ClientError> {
        self.fake.list(kind, namespace, query).await
    }

    async fn watch(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
        resource_version: u64,
    ) -> Result<EventStream, ClientError> {
        let events = self
            .fake
            .watch(kind, namespace, query, resource_version)
            .await?;
        if kind != Kind::Allocation {
            return Ok(events);
        }
        let allowed = self.allowed.clone();
        Ok(Box::pin(events.enumerate().then(move |(n, event)| {
            let mut allowed = allowed.clone();
            async move {
                let _ = allowed.wait_for(|allowed| n < *allowed).await;
                event
            }
        })))
    }

    async fn create(&self, kind: Kind, object: Value) -> Result<Value, ClientError> {
        self.fake.create(kind, object).await
    }

    async fn patch(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: Value,
        status: bool,
    ) -> Result<Value, ClientError> {
        self.fake.patch(kind, namespace, name, patch, status).await
    }

    async fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Result<(), ClientError> {
        self.fake.delete(kind, namespace, name).await
    }

    async fn submit_plan(&self, plan: Plan) -> Result<PlanResult, ClientError> {
        self.fake.submit_plan(plan).await
    }
}

fn has_alloc(state: &dyn State, name: &str) -> bool {
    state
        .allocs_by_node("n1")
        .iter()
        .any(|a| a.metadata.name.as_deref() == Some(name))
}

struct Setup {
    fake: FakeClient,
    job: caravan_schemas::Job,
    node: caravan_schemas::Node,
    /// How many events the allocation watch may deliver.
    opener: gate::Sender<usize>,
    caches: Caches,
}

/// Job `web` and node `n1`, cached, with the allocation watch's events held back.
async fn setup() -> Setup {
    let fake = FakeClient::new();
    let job = mock::job("web");
    let node = mock::node("n1");
    fake.seed(Kind::Job, serde_json::to_value(&job).unwrap());
    fake.seed(Kind::Node, serde_json::to_value(&node).unwrap());
    let (opener, allowed) = gate::channel(0);
    let (caches, _feeds) = Caches::start(Gated {
        fake: fake.clone(),
        allowed,
    });
    caches.wait_until_ready().await;
    Setup {
        fake,
        job,
        node,
        opener,
        caches,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_waits_for_the_kinds_that_lag() {
    let Setup {
        fake,
        job,
        node,
        opener,
        caches,
    } = setup().await;

    // An allocation is committed, then a job change after it; only the job watch moves on.
    let alloc = serde_json::to_value(mock::allocation("web-1", &job, &node)).unwrap();
    let placed = resource_version_of(&fake.create(Kind::Allocation, alloc).await.unwrap())
        .expect("a resourceVersion");
    let later = fake
        .patch(
            Kind::Job,
            "default",
            "web",
            serde_json::json!({"metadata": {"labels": {"touched": "yes"}}}),
            false,
        )
        .await
        .unwrap();
    let later = resource_version_of(&later).expect("a resourceVersion");
    assert!(later > placed);
    let deadline = Instant::now() + DEADLINE;
    while caches
        .jobs
        .get("default", "web")
        .is_none_or(|j| !j.metadata.labels.contains_key("touched"))
    {
        assert!(Instant::now() < deadline, "the job cache never moved");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The jobs are cached past the allocation's revision, the allocations are not: no snapshot
    // may claim to be at that revision without the allocation.
    let snapshots = caches.snapshots();
    let early = snapshots
        .wait_for_index(placed, Duration::from_millis(200))
        .await;
    assert!(
        matches!(early, Err(WorkerError::SnapshotTimeout { .. })),
        "a snapshot at {placed} before the allocation arrived: {:?}",
        early.map(|s| (s.index(), has_alloc(&*s, "web-1")))
    );
    let snapshot = caches.snapshot();
    assert!(
        snapshot.index() < placed,
        "index {} without the allocation placed at {placed}",
        snapshot.index()
    );

    opener.send_replace(usize::MAX);
    let snapshot = snapshots
        .wait_for_index(later, DEADLINE)
        .await
        .expect("every cache reaches the job change");
    assert!(snapshot.index() >= later);
    assert!(has_alloc(&*snapshot, "web-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_complete_only_once_all_its_objects_arrived() {
    let Setup {
        fake,
        job,
        node,
        opener,
        caches,
    } = setup().await;

    // One plan commits two allocations at one revision; the first of them reaches the cache.
    let mut plan = Plan {
        eval_name: "e1".into(),
        namespace: "default".into(),
        job_name: "web".into(),
        ..Plan::default()
    };
    plan.append_alloc(mock::allocation("web-1", &job, &node));
    plan.append_alloc(mock::allocation("web-2", &job, &node));
    fake.submit_plan(plan).await.unwrap();
    let committed = fake.revision();
    opener.send_replace(1);
    let deadline = Instant::now() + DEADLINE;
    while caches.allocations.state().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first allocation never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let snapshots = caches.snapshots();
    let early = snapshots
        .wait_for_index(committed, Duration::from_millis(200))
        .await;
    assert!(
        matches!(early, Err(WorkerError::SnapshotTimeout { .. })),
        "a snapshot at {committed} with half its commit: {:?}",
        early.map(|s| (s.index(), has_alloc(&*s, "web-2")))
    );

    opener.send_replace(usize::MAX);
    let snapshot = snapshots
        .wait_for_index(committed, DEADLINE)
        .await
        .expect("the whole commit arrives");
    assert!(has_alloc(&*snapshot, "web-1") && has_alloc(&*snapshot, "web-2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_caches_stops_their_watches() {
    let fake = FakeClient::new();
    let (caches, feeds) = Caches::start(fake.clone());
    let deadline = Instant::now() + DEADLINE;
    while fake.open_watches() < 4 {
        assert!(Instant::now() < deadline, "the caches never watched");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let snapshots = caches.snapshots();
    drop((caches, feeds));
    // A clone still in use keeps them.
    assert_eq!(fake.open_watches(), 4);
    drop(snapshots);
    let deadline = Instant::now() + DEADLINE;
    while fake.open_watches() > 0 {
        assert!(Instant::now() < deadline, "the watches outlived the caches");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
