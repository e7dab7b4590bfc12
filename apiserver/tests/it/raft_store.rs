//! The Raft-backed store end to end: durability across reopen, group commit, snapshots, and
//! per-operation results inside a batch.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use caravan_apiserver::raft::{ReplicatedStore, StoreConfig, WriteError};
use caravan_apiserver::store::{
    ObjectJson, ObjectKey, Op, OpError, Precondition, StoredObject, VersionPut,
};
use caravan_schemas::Kind;
use futures::future::join_all;
use serde_json::json;
use tempfile::TempDir;

fn config(dir: &Path) -> StoreConfig {
    StoreConfig::new(dir.to_owned(), "127.0.0.1:1".to_owned())
}

fn namespace(name: &str) -> Op {
    Op::Put {
        kind: Kind::Namespace,
        object: ObjectJson::from_value(json!({
            "apiVersion": "caravan.dev/v1",
            "kind": "Namespace",
            "metadata": {"name": name, "uid": format!("uid-ns-{name}")},
        })),
        expect: Precondition::Absent,
        version: None,
    }
}

fn job(name: &str, expect: Precondition) -> Op {
    Op::Put {
        kind: Kind::Job,
        object: ObjectJson::from_value(json!({
            "apiVersion": "caravan.dev/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"type": "service", "groups": []},
        })),
        expect,
        version: None,
    }
}

/// The put of a new job with its version 0, as the API server proposes it.
fn versioned_job(name: &str, expect: Precondition) -> Op {
    let Op::Put {
        kind,
        object,
        expect,
        ..
    } = job(name, expect)
    else {
        unreachable!("job() is a put");
    };
    let version = ObjectJson::from_value(json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "JobVersion",
        "metadata": {"name": format!("{name}-v0"), "namespace": "default",
                     "uid": format!("uid-{name}-v0"), "labels": {"caravan.dev/job": name}},
        "spec": {"jobName": name, "version": 0, "job": {"type": "service", "groups": []}},
    }));
    Op::Put {
        kind,
        object,
        expect,
        version: Some(Box::new(VersionPut {
            object: version,
            keep: 6,
        })),
    }
}

fn job_key(name: &str) -> ObjectKey {
    ObjectKey {
        kind: Kind::Job,
        namespace: "default".to_owned(),
        name: name.to_owned(),
    }
}

fn version_key(name: &str) -> ObjectKey {
    ObjectKey {
        kind: Kind::JobVersion,
        namespace: "default".to_owned(),
        name: format!("{name}-v0"),
    }
}

fn last_log_index(store: &ReplicatedStore) -> u64 {
    store.raft().metrics().borrow().last_log_index.unwrap_or(0)
}

/// Writes `n` jobs concurrently and returns their resourceVersions by name.
async fn write_jobs(store: &ReplicatedStore, prefix: &str, n: usize) -> BTreeMap<String, u64> {
    let writes = (0..n).map(|i| {
        let name = format!("{prefix}-{i}");
        async move {
            let object = store
                .write(versioned_job(&name, Precondition::Absent))
                .await
                .unwrap_or_else(|e| panic!("write {name}: {e}"));
            (name, object.resource_version)
        }
    });
    join_all(writes).await.into_iter().collect()
}

fn assert_present(store: &ReplicatedStore, rvs: &BTreeMap<String, u64>) {
    let state = store.state();
    for (name, rv) in rvs {
        let object = state
            .get(&job_key(name))
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(object.resource_version, *rv, "{name} resourceVersion");
        let version = state
            .get(&version_key(name))
            .unwrap_or_else(|| panic!("the version of {name} missing"));
        assert_eq!(version.resource_version, *rv, "written in the job's entry");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_then_reopen_keeps_objects_and_resource_versions() {
    let dir = TempDir::new().expect("temp dir");
    let store = ReplicatedStore::open(config(dir.path()))
        .await
        .expect("open");
    assert!(store.is_leader());
    let ns_rv = store
        .write(namespace("default"))
        .await
        .expect("create namespace")
        .resource_version;
    let rvs = write_jobs(&store, "job", 300).await;
    let revision = store.state().revision();
    store.shutdown().await.expect("shutdown");
    drop(store);

    let store = ReplicatedStore::open(config(dir.path()))
        .await
        .expect("reopen");
    assert!(store.is_leader());
    assert_present(&store, &rvs);
    let ns = store.state().get(&ObjectKey {
        kind: Kind::Namespace,
        namespace: String::new(),
        name: "default".to_owned(),
    });
    assert_eq!(ns.map(|n| n.resource_version), Some(ns_rv));
    assert!(store.state().revision() >= revision);

    // Writes continue after the reopen, at higher resourceVersions.
    let more = write_jobs(&store, "after", 10).await;
    assert!(more.values().all(|rv| *rv > revision));
    store.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn concurrent_writes_are_grouped() {
    let dir = TempDir::new().expect("temp dir");
    let store = ReplicatedStore::open(config(dir.path()))
        .await
        .expect("open");
    store.write(namespace("default")).await.expect("namespace");

    let before = last_log_index(&store);
    let rvs = write_jobs(&store, "job", 256).await;
    let entries = last_log_index(&store) - before;
    assert_eq!(rvs.len(), 256);
    assert!(
        entries <= 16,
        "256 concurrent writes took {entries} raft entries"
    );
    store.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_recovers_from_snapshot_and_log() {
    let dir = TempDir::new().expect("temp dir");
    let mut cfg = config(dir.path());
    cfg.snapshot_threshold = 50;
    let store = ReplicatedStore::open(cfg.clone()).await.expect("open");
    store.write(namespace("default")).await.expect("namespace");
    let mut rvs = BTreeMap::new();
    for i in 0..200 {
        // One at a time, so every write is its own log entry and snapshots are taken.
        rvs.extend(write_jobs(&store, &format!("job-{i}"), 1).await);
    }
    store
        .raft()
        .wait(Some(std::time::Duration::from_secs(10)))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= 150),
            "a snapshot was built",
        )
        .await
        .expect("snapshot");
    store.shutdown().await.expect("shutdown");
    drop(store);

    let snapshots = std::fs::read_dir(dir.path().join("snapshots"))
        .expect("snapshot dir")
        .count();
    assert_eq!(snapshots, 1, "only the newest snapshot is kept");

    let store = ReplicatedStore::open(cfg).await.expect("reopen");
    assert_present(&store, &rvs);
    assert_eq!(store.state().count(Kind::Job), 200);
    assert_eq!(store.state().count(Kind::JobVersion), 200);
    store.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn rejected_op_fails_alone_in_its_batch() {
    let dir = TempDir::new().expect("temp dir");
    let store = ReplicatedStore::open(config(dir.path()))
        .await
        .expect("open");
    store.write(namespace("default")).await.expect("namespace");
    let existing = store
        .write(versioned_job("existing", Precondition::Absent))
        .await
        .expect("existing");

    // Issued together, so the proposer puts them in one batch (one log index).
    let ops = vec![
        versioned_job("a", Precondition::Absent),
        versioned_job("existing", Precondition::Absent),
        versioned_job("b", Precondition::Absent),
        versioned_job(
            "existing",
            Precondition::ResourceVersion(existing.resource_version + 100),
        ),
        versioned_job("c", Precondition::Absent),
        namespace("default"),
    ];
    let results: Vec<Result<Arc<StoredObject>, WriteError>> =
        join_all(ops.into_iter().map(|op| store.write(op))).await;

    let ok: Vec<u64> = [0, 2, 4]
        .iter()
        .map(|&i| match &results[i] {
            Ok(object) => object.resource_version,
            Err(e) => panic!("op {i} failed: {e}"),
        })
        .collect();
    assert!(
        ok.iter().all(|rv| *rv == ok[0]),
        "one batch, one index: {ok:?}"
    );
    assert!(matches!(
        results[1],
        Err(WriteError::Rejected(OpError::AlreadyExists))
    ));
    assert!(matches!(
        results[3],
        Err(WriteError::Rejected(OpError::Conflict { current })) if current == existing.resource_version
    ));
    assert!(matches!(
        results[5],
        Err(WriteError::Rejected(OpError::AlreadyExists))
    ));
    {
        let state = store.state();
        assert!(state.get(&job_key("a")).is_some());
        assert_eq!(
            state.get(&job_key("existing")).map(|o| o.resource_version),
            Some(existing.resource_version)
        );
        // The rejected puts of "existing" stored no version over its own.
        assert_eq!(
            state
                .get(&version_key("existing"))
                .map(|o| o.resource_version),
            Some(existing.resource_version)
        );
        assert_eq!(
            state.get(&version_key("a")).map(|o| o.resource_version),
            Some(ok[0])
        );
    }
    store.shutdown().await.expect("shutdown");
}

/// Prints write throughput and writes per entry by concurrency and batches in flight:
/// `cargo test -p caravan-apiserver --release --test it -- --ignored --nocapture write_throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn write_throughput() {
    for in_flight in [1, 2, 8] {
        let dir = TempDir::new().expect("temp dir");
        let mut cfg = config(dir.path());
        cfg.max_in_flight = in_flight;
        let store = ReplicatedStore::open(cfg).await.expect("open");
        store.write(namespace("default")).await.expect("namespace");
        for concurrency in [1, 16, 64, 256, 1024] {
            let total = 2048.max(concurrency * 4);
            let before = last_log_index(&store);
            let start = std::time::Instant::now();
            let writers = (0..concurrency).map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..total / concurrency {
                        let name = format!("c{concurrency}-{w}-{i}");
                        store
                            .write(job(&name, Precondition::Absent))
                            .await
                            .expect("write");
                    }
                })
            });
            for writer in join_all(writers).await {
                writer.expect("writer");
            }
            let elapsed = start.elapsed();
            let entries = last_log_index(&store) - before;
            println!(
                "in flight {in_flight}, concurrency {concurrency:4}: {total} writes in {elapsed:.2?} \
                 = {:.0}/s, {:.1} writes/entry",
                total as f64 / elapsed.as_secs_f64(),
                total as f64 / entries as f64
            );
        }
        store.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn the_log_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let store = ReplicatedStore::open(config(dir.path())).await.unwrap();
    store.write(namespace("private")).await.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("raft.redb")), 0o600);
    assert_eq!(mode(dir.path()), 0o700);
    store.shutdown().await.unwrap();
}
