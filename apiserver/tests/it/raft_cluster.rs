//! Two stores replicating over the HTTP Raft transport on loopback (entries and snapshots).

use std::collections::BTreeSet;
use std::time::Duration;

use caravan_apiserver::raft::{ReplicatedStore, StoreConfig, WriteError};
use caravan_apiserver::store::{ObjectJson, ObjectKey, Op, Precondition};
use caravan_schemas::Kind;
use openraft::BasicNode;
use serde_json::json;
use tempfile::TempDir;
use tokio::net::TcpListener;

fn namespace(name: &str) -> Op {
    Op::Put {
        kind: Kind::Namespace,
        object: ObjectJson::from_value(
            json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"name": name}}),
        ),
        expect: Precondition::Absent,
        version: None,
    }
}

fn namespace_key(name: &str) -> ObjectKey {
    ObjectKey {
        kind: Kind::Namespace,
        namespace: String::new(),
        name: name.to_owned(),
    }
}

/// Opens a store whose Raft routes are served on a fresh loopback port.
async fn start(
    dir: &TempDir,
    node_id: u64,
    bootstrap: bool,
    snapshot_threshold: u64,
) -> (ReplicatedStore, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let mut config = StoreConfig::new(dir.path().to_owned(), addr.clone());
    config.node_id = node_id;
    config.bootstrap = bootstrap;
    config.snapshot_threshold = snapshot_threshold;
    let store = ReplicatedStore::open(config).await.expect("open");
    let router: axum::Router = store.raft_router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (store, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_catches_up_by_snapshot_over_http_and_redirects_writes() {
    let (dir1, dir2) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let (leader, leader_addr) = start(&dir1, 1, true, 20).await;
    for i in 0..60 {
        leader
            .write(namespace(&format!("before-join-{i}")))
            .await
            .expect("write before join");
    }
    // The log before the snapshot is purged, so the new node can only catch up by snapshot.
    leader
        .raft()
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.purged.is_some(), "log purged")
        .await
        .expect("purge");

    let (follower, follower_addr) = start(&dir2, 2, false, 20).await;
    assert!(!follower.is_leader());
    leader
        .raft()
        .add_learner(2, BasicNode::new(follower_addr), true)
        .await
        .expect("add learner");
    leader
        .raft()
        .change_membership(BTreeSet::from([1, 2]), false)
        .await
        .expect("promote to voter");

    let written = leader
        .write(namespace("after-join"))
        .await
        .expect("write after join");
    follower
        .raft()
        .wait(Some(Duration::from_secs(10)))
        .applied_index_at_least(Some(written.resource_version), "replicated")
        .await
        .expect("follower applies the write");
    assert!(
        follower.raft().metrics().borrow().snapshot.is_some(),
        "the follower installed a snapshot"
    );
    {
        let state = follower.state();
        for i in 0..60 {
            let name = format!("before-join-{i}");
            assert!(
                state.get(&namespace_key(&name)).is_some(),
                "{name} replicated"
            );
        }
        assert_eq!(
            state
                .get(&namespace_key("after-join"))
                .map(|o| o.resource_version),
            Some(written.resource_version)
        );
    }

    match follower.write(namespace("on-follower")).await {
        Err(WriteError::NotLeader { leader }) => assert_eq!(leader, Some(leader_addr)),
        other => panic!("expected NotLeader, got {other:?}"),
    }
    follower.shutdown().await.expect("shutdown follower");
    leader.shutdown().await.expect("shutdown leader");
}
