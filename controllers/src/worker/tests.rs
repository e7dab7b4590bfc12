//! End-to-end tests of the worker against the in-memory [`FakeClient`] and a [`MemState`]
//! snapshot.

use std::sync::Arc;
use std::time::Duration;

use caravan_schemas::evaluation::{EvaluationState, TriggeredBy};
use caravan_schemas::{Evaluation, Kind, mock};
use serde_json::Value;
use tokio::sync::watch;

use super::planner::derived_name;
use super::{Snapshots, WatchSnapshots, Worker, WorkerConfig, WorkerError, Workers};
use crate::broker::{BrokerConfig, EvalBroker};
use crate::scheduler::{MemState, State};
use caravan_runtime::ClientError;
use caravan_runtime::fake::{FakeClient, Verb};

struct Setup {
    client: FakeClient,
    broker: EvalBroker,
    snapshot: Arc<dyn State>,
}

/// A `web` service job (10 allocations) with a pending evaluation, and `nodes` ready nodes.
fn setup(nodes: usize) -> Setup {
    let client = FakeClient::new();
    let job = mock::job("web");
    client.seed(Kind::Job, to_value(&job));
    let seeded = client.seed(
        Kind::Evaluation,
        to_value(&mock::evaluation("web-e1", &job)),
    );
    let eval: Evaluation = serde_json::from_value(seeded).unwrap_or_default();
    let mut state = MemState::new();
    state.upsert_job(job);
    for i in 0..nodes {
        state.upsert_node(mock::node(&format!("n{i}")));
    }
    state.set_index(client.revision());
    let broker = EvalBroker::new(BrokerConfig::default());
    broker.enqueue(eval);
    Setup {
        client,
        broker,
        snapshot: Arc::new(state),
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

fn config() -> WorkerConfig {
    WorkerConfig {
        dequeue_timeout: Duration::from_millis(200),
        snapshot_timeout: Duration::from_millis(200),
        ..WorkerConfig::default()
    }
}

fn worker(s: &Setup) -> Worker<FakeClient, impl Snapshots + use<>, EvalBroker> {
    let snapshot = s.snapshot.clone();
    let snapshots = Arc::new(move || snapshot.clone());
    Worker::new(0, s.broker.clone(), snapshots, s.client.clone(), config())
}

fn eval_status(client: &FakeClient, name: &str) -> Option<String> {
    let object = client.object(Kind::Evaluation, "default", name)?;
    object
        .pointer("/status/status")?
        .as_str()
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_service_eval_is_planned_and_marked_complete() {
    let s = setup(3);
    let processed = worker(&s)
        .process_next()
        .await
        .expect("an evaluation was delivered");
    assert_eq!(processed.eval_name, "web-e1");
    assert!(processed.error.is_none(), "{:?}", processed.error);
    let plans = s.client.plans();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].placed_count(), 10);
    assert_eq!(plans[0].eval_name, "web-e1");
    assert_eq!(s.client.objects(Kind::Allocation).len(), 10);
    assert_eq!(
        eval_status(&s.client, "web-e1").as_deref(),
        Some("complete")
    );
    let stats = s.broker.stats();
    assert_eq!((stats.total_unacked, stats.total_ready), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_plan_submission_nacks_the_eval() {
    let s = setup(3);
    s.client.fail_next(
        Verb::SubmitPlan,
        ClientError::Unavailable("applier down".into()),
    );
    let processed = worker(&s).process_next().await.expect("delivered");
    assert!(matches!(
        processed.error,
        Some(WorkerError::Client(ClientError::Unavailable(_)))
    ));
    assert_eq!(eval_status(&s.client, "web-e1").as_deref(), Some("pending"));
    let stats = s.broker.stats();
    assert_eq!((stats.total_unacked, stats.total_waiting), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_placements_create_a_blocked_eval() {
    let s = setup(0);
    let processed = worker(&s).process_next().await.expect("delivered");
    assert!(processed.error.is_none(), "{:?}", processed.error);
    assert_eq!(
        eval_status(&s.client, "web-e1").as_deref(),
        Some("complete")
    );
    let blocked: Vec<Evaluation> = s
        .client
        .objects(Kind::Evaluation)
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Evaluation>(v).ok())
        .filter(|e| {
            e.status
                .as_ref()
                .is_some_and(|st| st.status == EvaluationState::Blocked)
        })
        .collect();
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].spec.triggered_by, TriggeredBy::QueuedAllocs);
    assert_eq!(blocked[0].spec.previous_eval.as_deref(), Some("web-e1"));
    let parent = s.client.object(Kind::Evaluation, "default", "web-e1");
    assert_eq!(
        parent
            .as_ref()
            .and_then(|p| p.pointer("/status/queuedAllocations/web")),
        Some(&Value::from(10))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_behind_the_eval_nacks_after_the_timeout() {
    let mut s = setup(3);
    let mut stale = MemState::new();
    stale.set_index(0);
    s.snapshot = Arc::new(stale);
    let processed = worker(&s).process_next().await.expect("delivered");
    assert!(matches!(
        processed.error,
        Some(WorkerError::SnapshotTimeout { reached: 0, .. })
    ));
    assert!(s.client.plans().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_pool_processes_evals_and_shuts_down() {
    let s = setup(3);
    let (sender, receiver) = watch::channel(s.snapshot.clone());
    let workers = Workers::spawn(
        2,
        &s.broker,
        Arc::new(WatchSnapshots::new(receiver)),
        &s.client,
        &config(),
    );
    assert_eq!(workers.len(), 2);
    let done = tokio::time::timeout(Duration::from_secs(10), async {
        while eval_status(&s.client, "web-e1").as_deref() != Some("complete") {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(done.is_ok(), "evaluation not completed");
    drop(sender);
    workers.shutdown().await;
    assert_eq!(s.broker.stats().total_unacked, 0);
}

#[tokio::test]
async fn watch_snapshots_wait_for_a_later_index() {
    let mut first = MemState::new();
    first.set_index(5);
    let (sender, receiver) = watch::channel::<Arc<dyn State>>(Arc::new(first));
    let snapshots = WatchSnapshots::new(receiver);
    let waiting =
        tokio::spawn(async move { snapshots.wait_for_index(7, Duration::from_secs(5)).await });
    let mut later = MemState::new();
    later.set_index(8);
    sender.send_replace(Arc::new(later));
    let snapshot = waiting.await.expect("join").expect("reached");
    assert_eq!(snapshot.index(), 8);
}

#[test]
fn derived_names_are_stable_per_parent_and_purpose() {
    let job = mock::job("web");
    let parent = mock::evaluation("web-e1", &job);
    let mut child = mock::evaluation("", &job);
    child.metadata.name = None;
    child.spec.triggered_by = TriggeredBy::FailedFollowUp;
    let name = derived_name(&parent, &child);
    assert!(
        name.starts_with("web-") && name.len() == "web-".len() + 8,
        "{name}"
    );
    assert_eq!(name, derived_name(&parent, &child));
    child.spec.triggered_by = TriggeredBy::QueuedAllocs;
    assert_ne!(name, derived_name(&parent, &child));
}
