//! The allocation manager: the job at the version an allocation runs, and an update in place
//! into a new deployment reaching the allocation's runner with that version's job.

use std::time::SystemTime;

use caravan_runtime::fake::{FakeClient, Verb, wait_for};
use serde_json::json;

use super::*;

fn group(update: Value) -> Value {
    json!([{
        "name": "g",
        "update": update,
        "tasks": [{"name": "web", "driver": "mock", "config": {}}]
    }])
}

fn min(min_healthy_time: &str) -> Value {
    json!({"minHealthyTime": min_healthy_time})
}

fn manager(client: &FakeClient, dir: &tempfile::TempDir) -> AllocManager<FakeClient> {
    let drivers = BTreeMap::from([("mock".to_string(), crate::driver::mock::driver())]);
    AllocManager::new(
        client.clone(),
        "n1".into(),
        Arc::new(drivers),
        SpecSettings {
            alloc_root: dir.path().join("alloc"),
            pids_limit: 0,
            node: Arc::default(),
            network: Default::default(),
        },
        Duration::from_secs(5),
        LocalState::open(&dir.path().join("state.redb")).unwrap(),
        StatusBatcher::new(),
    )
}

fn alloc(job: &str, version: i64) -> Allocation {
    serde_json::from_value(json!({
        "apiVersion": "caravan.dev/v1", "kind": "Allocation",
        "metadata": {"name": format!("{job}-g-0-00000000"), "namespace": "default"},
        "spec": {"jobName": job, "jobVersion": version, "group": "g", "nodeName": "n1"}
    }))
    .unwrap()
}

fn min_healthy_time(job: &Job) -> &str {
    crate::runner::health::rules::group_update(job, "g")
        .and_then(|u| u.min_healthy_time.as_deref())
        .unwrap_or_default()
}

/// Job `name` at version 1 (`2s`), its version 0 (`1s`) kept as a JobVersion when `kept`.
async fn job_at_version_1(client: &FakeClient, name: &str, kept: Option<&str>) {
    job_with_versions(client, name, kept, min("1s"), min("2s")).await;
}

/// Job `name` at version 1 (update block `v1`), its version 0 (`v0`) kept as a JobVersion when
/// `kept` (with this job uid; `""` for the job's own).
async fn job_with_versions(
    client: &FakeClient,
    name: &str,
    kept: Option<&str>,
    v0: Value,
    v1: Value,
) {
    let created = client.seed(
        Kind::Job,
        json!({"metadata": {"name": name}, "spec": {"type": "service", "groups": group(v0.clone())}}),
    );
    client
        .patch(
            Kind::Job,
            "default",
            name,
            json!({"spec": {"groups": group(v1)}}),
        )
        .await
        .unwrap();
    if let Some(uid) = kept {
        let uid = if uid.is_empty() {
            created["metadata"]["uid"].clone()
        } else {
            json!(uid)
        };
        client.seed(
            Kind::JobVersion,
            json!({
                "metadata": {"name": format!("{name}-v0"), "namespace": "default"},
                "spec": {"jobName": name, "jobUid": uid, "version": 0,
                         "job": {"type": "service", "groups": group(v0)}}
            }),
        );
    }
}

#[tokio::test]
async fn an_allocation_runs_the_job_at_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let client = FakeClient::new();
    job_at_version_1(&client, "web", Some("")).await;
    let manager = manager(&client, &dir);

    let old = manager.job_for(&alloc("web", 0)).await.unwrap();
    assert_eq!(old.version(), 0);
    assert_eq!(min_healthy_time(&old), "1s", "the spec of version 0");
    assert_eq!(old.metadata.name(), "web");
    let current = manager.job_for(&alloc("web", 1)).await.unwrap();
    assert_eq!(current.version(), 1);
    assert_eq!(min_healthy_time(&current), "2s");

    let reads = client.calls(Verb::Get);
    let again = manager.job_for(&alloc("web", 0)).await.unwrap();
    assert_eq!(again, old);
    manager.job_for(&alloc("web", 1)).await.unwrap();
    assert_eq!(client.calls(Verb::Get), reads, "both versions cached");
}

#[tokio::test]
async fn without_its_job_version_an_allocation_runs_the_current_job() {
    let dir = tempfile::tempdir().unwrap();
    let client = FakeClient::new();
    job_at_version_1(&client, "missing", None).await;
    // A version of an earlier job of the same name is no version of this one.
    job_at_version_1(&client, "reborn", Some("an-earlier-uid")).await;
    let manager = manager(&client, &dir);
    for name in ["missing", "reborn"] {
        let job = manager.job_for(&alloc(name, 0)).await.unwrap();
        assert_eq!(job.version(), 1, "{name}");
        assert_eq!(min_healthy_time(&job), "2s", "{name}");
    }
    assert_eq!(
        manager.job_for(&alloc("gone", 0)).await.unwrap_err(),
        "job gone not found"
    );
}

#[tokio::test]
async fn an_update_in_place_tracks_health_with_the_new_versions_update_block() {
    let dir = tempfile::tempdir().unwrap();
    let client = FakeClient::new();
    job_with_versions(
        &client,
        "web",
        Some(""),
        json!({"healthCheck": "manual"}),
        min("200ms"),
    )
    .await;
    let manager = manager(&client, &dir);
    tokio::spawn(
        manager
            .status
            .clone()
            .run(client.clone(), Duration::from_millis(5)),
    );
    let placed = |version: i64| {
        let mut alloc = serde_json::to_value(alloc("web", version)).unwrap();
        alloc["metadata"]["uid"] = json!("0b5f3c2e-8a4d-4f7e-9c1a-2d3e4f5a6b7c");
        alloc["spec"]["deploymentName"] = json!(format!("web-v{version}"));
        alloc
    };
    client.seed(Kind::Allocation, placed(0));
    let stored = || {
        client
            .object(Kind::Allocation, "default", "web-g-0-00000000")
            .unwrap()
    };

    // Placed at version 0, whose health is manual: the agent runs it and leaves health alone.
    manager.apply(placed(0)).await;
    wait_for("the allocation runs", || {
        stored()["status"]["clientStatus"] == "running"
    })
    .await;
    // Updated in place into version 1's deployment: tracked with version 1's block, from now.
    let updated = SystemTime::now();
    manager.apply(placed(1)).await;
    wait_for("the allocation is healthy", || {
        stored()["status"]["deploymentStatus"]["healthy"] == true
    })
    .await;
    let timestamp = stored()["status"]["deploymentStatus"]["timestamp"]
        .as_str()
        .map(humantime::parse_rfc3339_weak)
        .unwrap()
        .unwrap();
    // Reported to the millisecond.
    assert!(timestamp + Duration::from_millis(1) >= updated + Duration::from_millis(200));
    manager.stop_all().await;
}
