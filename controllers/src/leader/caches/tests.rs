//! Snapshots are complete up to their index, even when one kind's watch lags the others.

use caravan_schemas::mock;
use tokio::sync::watch as gate;

use super::*;
use crate::scheduler::Plan;
use crate::worker::Snapshots;
use caravan_runtime::fake::{FakeClient, wait_for};

const DEADLINE: Duration = Duration::from_secs(30);

fn has_alloc(state: &dyn State, name: &str) -> bool {
    state
        .allocs_by_node("n1")
        .iter()
        .any(|a| a.metadata.name.as_deref() == Some(name))
}

/// No snapshot claims `index` while the allocation `missing` committed at or before it has not
/// reached the caches: waiting for it times out.
async fn assert_no_snapshot_at(snapshots: &CacheSnapshots, index: u64, missing: &str) {
    let early = snapshots
        .wait_for_index(index, Duration::from_millis(200))
        .await;
    assert!(
        matches!(early, Err(WorkerError::SnapshotTimeout { .. })),
        "a snapshot at {index} without {missing}: {:?}",
        early.map(|s| (s.index(), has_alloc(&*s, missing)))
    );
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
    let opener = fake.hold_watch_events(Kind::Allocation);
    let (caches, _feeds) = Caches::start(fake.clone());
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
        )
        .await
        .unwrap();
    let later = resource_version_of(&later).expect("a resourceVersion");
    assert!(later > placed);
    wait_for("the job cache has the change", || {
        caches
            .jobs
            .get("default", "web")
            .is_some_and(|j| j.metadata.labels.contains_key("touched"))
    })
    .await;

    // The jobs are cached past the allocation's revision, the allocations are not: no snapshot
    // may claim to be at that revision without the allocation.
    let snapshots = caches.snapshots();
    assert_no_snapshot_at(&snapshots, placed, "web-1").await;
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
    wait_for("the first allocation arrives", || {
        !caches.allocations.state().is_empty()
    })
    .await;

    let snapshots = caches.snapshots();
    assert_no_snapshot_at(&snapshots, committed, "web-2").await;

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
    wait_for("the caches watch", || fake.open_watches() == 5).await;
    let snapshots = caches.snapshots();
    drop((caches, feeds));
    // A clone still in use keeps them.
    assert_eq!(fake.open_watches(), 5);
    drop(snapshots);
    wait_for("the watches end with the caches", || {
        fake.open_watches() == 0
    })
    .await;
}

/// The caches keep allocations without their placement metrics and task events, and
/// everything else of them.
#[tokio::test]
async fn cached_allocations_leave_their_placement_metrics_and_task_events_behind() {
    let fake = FakeClient::new();
    let job = mock::job("web");
    let node = mock::node("n1");
    let mut alloc = mock::allocation("web-1", &job, &node);
    let status = alloc.status.get_or_insert_default();
    status.metrics = Some(Box::new(caravan_schemas::allocation::AllocMetrics {
        nodes_evaluated: 13,
        ..Default::default()
    }));
    status.client_status = caravan_schemas::allocation::ClientStatus::Running;
    status.task_states.insert(
        "web".into(),
        caravan_schemas::allocation::TaskState {
            state: caravan_schemas::allocation::TaskLifecycleState::Running,
            restarts: 2,
            events: vec![caravan_schemas::allocation::TaskEvent {
                r#type: "Started".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    fake.seed(Kind::Allocation, serde_json::to_value(&alloc).unwrap());
    let (caches, _feeds) = Caches::start(fake.clone());
    caches.wait_until_ready().await;

    let cached = caches.allocations.get("default", "web-1").expect("cached");
    let status = cached.status.as_ref().expect("a status");
    assert_eq!(status.metrics, None);
    let task = &status.task_states["web"];
    assert!(task.events.is_empty());
    assert_eq!(task.restarts, 2);
    assert_eq!(
        task.state,
        caravan_schemas::allocation::TaskLifecycleState::Running
    );
    assert_eq!(
        status.client_status,
        caravan_schemas::allocation::ClientStatus::Running
    );
    assert_eq!(cached.spec, alloc.spec);
    let stored = fake
        .get(Kind::Allocation, "default", "web-1")
        .await
        .unwrap();
    assert_eq!(stored["status"]["metrics"]["nodesEvaluated"], 13);
    assert_eq!(
        stored["status"]["taskStates"]["web"]["events"][0]["type"],
        "Started"
    );
}

#[test]
fn omitted_paths_are_removed_from_objects_that_still_carry_them() {
    let mut object = serde_json::json!({
        "metadata": {"name": "a", "labels": {"metrics": "kept"}},
        "status": {
            "metrics": {"nodesEvaluated": 3},
            "taskStates": {"web": {"state": "running", "events": [1]}, "log": {"events": []}},
            "clientStatus": "running"
        },
        "spec": {"all": {"x": 1, "y": 2}}
    });
    remove_paths(&mut object, LEAN_ALLOCATION);
    remove_paths(&mut object, &[&["spec", "all", "*"], &["missing", "path"]]);
    assert_eq!(
        object,
        serde_json::json!({
            "metadata": {"name": "a", "labels": {"metrics": "kept"}},
            "status": {
                "taskStates": {"web": {"state": "running"}, "log": {}},
                "clientStatus": "running"
            },
            "spec": {"all": {}}
        })
    );
}

#[test]
fn the_revision_of_some_kinds_is_the_least_of_theirs() {
    let mut revisions = Revisions::default();
    for (kind, rv) in [
        (Kind::Job, 9),
        (Kind::Node, 7),
        (Kind::Allocation, 5),
        (Kind::Evaluation, 3),
        (Kind::Deployment, 8),
    ] {
        assert!(revisions.advance(slot_of(kind).unwrap(), rv));
    }
    assert_eq!(revisions.complete(), 3);
    assert_eq!(revisions.complete_for(&[Kind::Node, Kind::Allocation]), 5);
    assert_eq!(revisions.complete_for(&[Kind::Node]), 7);
}
