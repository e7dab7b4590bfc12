//! The cleanup loop against the in-memory fake client.

use std::sync::Mutex;

use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::node::NodeState;
use caravan_schemas::{Allocation, Node};
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinHandle;

use super::*;
use crate::blocked::BlockedEvals;
use crate::broker::{BrokerConfig, EvalBroker};
use crate::services::tests::{allocation, node, registration};
use caravan_runtime::fake::{FakeClient, wait_for};

fn seed<T: Serialize>(fake: &FakeClient, kind: Kind, object: &T) {
    fake.seed(kind, serde_json::to_value(object).unwrap());
}

fn exists(fake: &FakeClient, registration: &ServiceRegistration) -> bool {
    fake.object(
        Kind::ServiceRegistration,
        "default",
        registration.metadata.name(),
    )
    .is_some()
}

/// Caches over `fake` and the cleanup running on them.
async fn start(fake: &FakeClient) -> JoinHandle<()> {
    let (caches, feeds) = Caches::start(fake.clone());
    caches.wait_until_ready().await;
    let shared = Arc::new(Shared {
        client: fake.clone(),
        caches,
        broker: EvalBroker::new(BrokerConfig::default()),
        blocked: Mutex::new(BlockedEvals::new()),
        reaped_jobs: Default::default(),
    });
    tokio::spawn(run(shared, feeds.allocations, feeds.nodes))
}

async fn set_client_status(fake: &FakeClient, alloc: &Allocation, status: &str) {
    let patch = json!({"status": {"clientStatus": status}});
    fake.patch_status(Kind::Allocation, "default", alloc.metadata.name(), patch)
        .await
        .unwrap();
}

async fn set_node_status(fake: &FakeClient, node: &Node, status: &str) {
    let patch = json!({"status": {"status": status}});
    fake.patch_status(Kind::Node, "", node.metadata.name(), patch)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_go_with_their_allocations_and_nodes() {
    let fake = FakeClient::new();
    let n1 = node("n1", NodeState::Ready);
    let n2 = node("n2", NodeState::Ready);
    let running = allocation("a1", &n1, ClientStatus::Running, DesiredStatus::Run);
    let complete = allocation("a2", &n1, ClientStatus::Complete, DesiredStatus::Run);
    let elsewhere = allocation("a3", &n2, ClientStatus::Running, DesiredStatus::Run);
    let gone = allocation("a4", &n1, ClientStatus::Running, DesiredStatus::Run);
    let stopping = allocation("a5", &n1, ClientStatus::Running, DesiredStatus::Stop);
    for n in [&n1, &n2] {
        seed(&fake, Kind::Node, n);
    }
    for a in [&running, &complete, &elsewhere, &stopping] {
        seed(&fake, Kind::Allocation, a);
    }
    let [r1, r2, r3, r4, r5] =
        [&running, &complete, &elsewhere, &gone, &stopping].map(|a| registration(a, 0));
    for r in [&r1, &r2, &r3, &r4, &r5] {
        seed(&fake, Kind::ServiceRegistration, r);
    }
    let cleanup = start(&fake).await;

    wait_for("the registrations of ended and gone allocations go", || {
        !exists(&fake, &r2) && !exists(&fake, &r4)
    })
    .await;
    assert!(exists(&fake, &r1) && exists(&fake, &r3) && exists(&fake, &r5));

    set_node_status(&fake, &n2, "down").await;
    wait_for("the registrations of a down node go", || {
        !exists(&fake, &r3)
    })
    .await;

    set_client_status(&fake, &running, "failed").await;
    wait_for("the registrations of a failed allocation go", || {
        !exists(&fake, &r1)
    })
    .await;

    // One written now for an allocation that ended goes too; the stopping one stays.
    fake.create(
        Kind::ServiceRegistration,
        serde_json::to_value(registration(&complete, 0)).unwrap(),
    )
    .await
    .unwrap();
    wait_for("a late registration of an ended allocation goes", || {
        !exists(&fake, &r2)
    })
    .await;
    assert!(exists(&fake, &r5));
    cleanup.abort();
}

/// A registration whose allocation has not reached the leader's caches yet is not taken for
/// one whose allocation is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_waits_for_its_allocation_to_be_cached() {
    let fake = FakeClient::new();
    let n1 = node("n1", NodeState::Ready);
    seed(&fake, Kind::Node, &n1);
    let opener = fake.hold_watch_events(Kind::Allocation);
    let cleanup = start(&fake).await;

    let fresh = allocation("a1", &n1, ClientStatus::Running, DesiredStatus::Run);
    let r1 = registration(&fresh, 0);
    fake.create(Kind::Allocation, serde_json::to_value(&fresh).unwrap())
        .await
        .unwrap();
    fake.create(
        Kind::ServiceRegistration,
        serde_json::to_value(&r1).unwrap(),
    )
    .await
    .unwrap();
    tokio::time::sleep(SETTLE + RETRY + Duration::from_millis(500)).await;
    assert!(
        exists(&fake, &r1),
        "deleted before its allocation was cached"
    );

    opener.send_replace(usize::MAX);
    // A registration of an allocation that is gone, written after: once it went, every
    // pass since the caches caught up has kept the first.
    let gone = allocation("a2", &n1, ClientStatus::Running, DesiredStatus::Run);
    let r2 = registration(&gone, 0);
    fake.create(
        Kind::ServiceRegistration,
        serde_json::to_value(&r2).unwrap(),
    )
    .await
    .unwrap();
    wait_for("the registration of a gone allocation goes", || {
        !exists(&fake, &r2)
    })
    .await;
    assert!(exists(&fake, &r1));
    cleanup.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleanup_stops_its_watch_when_it_stops() {
    let fake = FakeClient::new();
    let (caches, feeds) = Caches::start(fake.clone());
    caches.wait_until_ready().await;
    wait_for("the caches watch", || fake.open_watches() == 5).await;
    let shared = Arc::new(Shared {
        client: fake.clone(),
        caches,
        broker: EvalBroker::new(BrokerConfig::default()),
        blocked: Mutex::new(BlockedEvals::new()),
        reaped_jobs: Default::default(),
    });
    // The caches stay, as the other loops hold them.
    let cleanup = tokio::spawn(run(shared.clone(), feeds.allocations, feeds.nodes));
    wait_for("the cleanup watches registrations", || {
        fake.open_watches() == 6
    })
    .await;
    cleanup.abort();
    wait_for("its watch ends with it", || fake.open_watches() == 5).await;
}

#[test]
fn passes_are_called_for_by_ended_allocations_down_nodes_and_written_registrations() {
    let alloc = |status: &str| json!({"status": {"clientStatus": status}});
    for status in ["complete", "failed", "lost"] {
        assert!(allocation_ended(&Event::Apply(alloc(status))), "{status}");
    }
    for status in ["pending", "running", "unknown"] {
        assert!(!allocation_ended(&Event::Apply(alloc(status))), "{status}");
    }
    assert!(allocation_ended(&Event::Delete(alloc("running"))));
    assert!(!allocation_ended(&Event::Progress(3)));

    let node = |status: &str| json!({"status": {"status": status}});
    assert!(node_down(&Event::Apply(node("down"))));
    assert!(node_down(&Event::InitApply(node("down"))));
    assert!(!node_down(&Event::Apply(node("ready"))));
    assert!(!node_down(&Event::Apply(node("disconnected"))));
    assert!(!node_down(&Event::Delete(node("down"))));

    assert!(registration_written(&Event::Apply(json!({}))));
    assert!(registration_written(&Event::InitDone));
    assert!(!registration_written(&Event::Delete(json!({}))));
    assert!(!registration_written(&Event::InitApply(json!({}))));

    assert_eq!(woken(Err(RecvError::Lagged(3)), node_down), Some(true));
    assert_eq!(woken(Err(RecvError::Closed), node_down), None);
}
