//! The controller against the in-memory fake client: health reported → counts, evaluations,
//! success and a stable version; a deadline passed → failure and a revert.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use caravan_schemas::deployment::{
    DeploymentGroupState, DeploymentState, DeploymentStatus, descriptions,
};
use caravan_schemas::job::UpdateStrategy;
use caravan_schemas::{
    Deployment, DeploymentSpec, Job, JobSpec, JobVersion, JobVersionSpec, JobVersionStatus, Kind,
    ObjectMeta, mock,
};
use futures::StreamExt;
use serde_json::{Value, json};

use super::controller;
use crate::blocked::BlockedEvals;
use crate::broker::{BrokerConfig, EvalBroker};
use crate::leader::{Caches, Shared};
use crate::scheduler::time::format_rfc3339;
use caravan_runtime::Client;
use caravan_runtime::fake::{FakeClient, wait_for};

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

fn to_value<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap()
}

/// Starts the controller over `fake`; it stops when the handle is aborted.
fn start(fake: &FakeClient) -> tokio::task::JoinHandle<()> {
    let (caches, feeds) = Caches::start(fake.clone());
    let shared = Arc::new(Shared {
        client: fake.clone(),
        caches,
        broker: EvalBroker::new(BrokerConfig::default()),
        blocked: std::sync::Mutex::new(BlockedEvals::new()),
        reaped_jobs: Default::default(),
    });
    tokio::spawn(async move {
        let mut results = std::pin::pin!(controller(shared, feeds.allocations));
        while results.next().await.is_some() {}
    })
}

fn update(auto_revert: bool) -> UpdateStrategy {
    UpdateStrategy {
        auto_revert: Some(auto_revert),
        ..caravan_schemas::job::defaults::update_strategy()
    }
}

/// Job `web` (2 allocations) at version 1, whose version 0 (stable) had another greeting;
/// their JobVersions; returns the job's uid and the spec of version 0.
fn seed_job(fake: &FakeClient, auto_revert: bool) -> (String, JobSpec) {
    let mut job = mock::job("web");
    job.spec.groups[0].count = Some(2);
    job.spec.groups[0].update = Some(update(auto_revert));
    let v0 = job.spec.clone();
    let stored = fake.seed(Kind::Job, to_value(&job));
    let uid = stored["metadata"]["uid"].as_str().unwrap().to_string();
    let mut v1 = v0.clone();
    v1.groups[0].tasks[0]
        .env
        .insert("GREETING".into(), "hi".into());
    futures::executor::block_on(fake.patch(Kind::Job, "default", "web", json!({"spec": v1})))
        .unwrap();
    for (version, spec, stable) in [(0, &v0, true), (1, &v1, false)] {
        let jv = JobVersion {
            metadata: ObjectMeta {
                name: Some(format!("web-v{version}")),
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            spec: JobVersionSpec {
                job_name: "web".into(),
                job_uid: uid.clone(),
                version,
                job: spec.clone(),
            },
            status: Some(JobVersionStatus { stable }),
            ..JobVersion::default()
        };
        fake.seed(Kind::JobVersion, to_value(&jv));
    }
    (uid, v0)
}

/// Deployment `web-v1`, running, its deadline at `by`.
fn seed_deployment(fake: &FakeClient, uid: &str, auto_revert: bool, by: i64) {
    let deployment = Deployment {
        metadata: ObjectMeta {
            name: Some("web-v1".into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            job_name: "web".into(),
            job_uid: uid.into(),
            job_version: 1,
            groups: [("web".to_string(), update(auto_revert))].into(),
            ..DeploymentSpec::default()
        },
        status: Some(DeploymentStatus {
            status: DeploymentState::Running,
            status_description: Some(descriptions::RUNNING.into()),
            groups: [(
                "web".to_string(),
                DeploymentGroupState {
                    desired_total: 2,
                    auto_revert,
                    require_progress_by: Some(format_rfc3339(by)),
                    ..DeploymentGroupState::default()
                },
            )]
            .into(),
            conditions: Vec::new(),
        }),
        ..Deployment::default()
    };
    fake.seed(Kind::Deployment, to_value(&deployment));
}

/// Allocations `web-a1` and `web-a2` of version 1, placed under `web-v1`, health unknown.
fn seed_allocs(fake: &FakeClient) {
    let mut job = mock::job("web");
    job.metadata.generation = Some(2);
    for name in ["web-a1", "web-a2"] {
        let mut alloc = mock::allocation(name, &job, &mock::node("n1"));
        alloc.spec.job_version = 1;
        alloc.spec.deployment_name = Some("web-v1".into());
        fake.seed(Kind::Allocation, to_value(&alloc));
    }
}

fn deployment(fake: &FakeClient) -> Deployment {
    serde_json::from_value(fake.object(Kind::Deployment, "default", "web-v1").unwrap()).unwrap()
}

fn group(fake: &FakeClient) -> DeploymentGroupState {
    deployment(fake).group("web").cloned().unwrap_or_default()
}

fn watcher_evals(fake: &FakeClient) -> usize {
    fake.objects(Kind::Evaluation)
        .iter()
        .filter(|e| e.pointer("/spec/triggeredBy") == Some(&json!("deployment-watcher")))
        .count()
}

async fn report_health(fake: &FakeClient, alloc: &str) {
    let patch = json!({"status": {"deploymentStatus": {
        "healthy": true,
        "timestamp": format_rfc3339(now()),
    }}});
    fake.patch_status(Kind::Allocation, "default", alloc, patch)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_allocations_move_the_deployment_to_success_and_a_stable_version() {
    let fake = FakeClient::new();
    let (uid, _) = seed_job(&fake, false);
    seed_deployment(&fake, &uid, false, now() + 600);
    seed_allocs(&fake);
    let task = start(&fake);
    wait_for("the placements counted", || group(&fake).placed_allocs == 2).await;
    // A new leader evaluates each active deployment once: the one before it may have lost
    // its leadership between a status write and its evaluation.
    wait_for("the new leader's evaluation", || watcher_evals(&fake) == 1).await;
    assert_eq!(
        watcher_evals(&fake),
        1,
        "placements alone need no evaluation"
    );

    report_health(&fake, "web-a1").await;
    wait_for("one healthy allocation counted", || {
        group(&fake).healthy_allocs == 1
    })
    .await;
    wait_for("an evaluation", || watcher_evals(&fake) == 2).await;
    assert_eq!(deployment(&fake).state(), DeploymentState::Running);

    report_health(&fake, "web-a2").await;
    wait_for("the deployment successful", || {
        deployment(&fake).state() == DeploymentState::Successful
    })
    .await;
    wait_for("version 1 stable", || {
        let jv = fake.object(Kind::JobVersion, "default", "web-v1").unwrap();
        jv.pointer("/status/stable") == Some(&json!(true))
    })
    .await;
    wait_for("the second health change's evaluation", || {
        watcher_evals(&fake) == 3
    })
    .await;
    let status = deployment(&fake).status.unwrap();
    assert_eq!(
        status.status_description.as_deref(),
        Some(descriptions::SUCCESSFUL)
    );
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.r#type == "Available" && c.reason == "AllocationsHealthy")
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_fails_the_deployment_and_reverts_the_job() {
    let fake = FakeClient::new();
    let (uid, v0) = seed_job(&fake, true);
    seed_deployment(&fake, &uid, true, now() + 1);
    seed_allocs(&fake);
    let task = start(&fake);
    wait_for("the deployment failed", || {
        deployment(&fake).state() == DeploymentState::Failed
    })
    .await;
    let description = deployment(&fake).status.unwrap().status_description;
    assert_eq!(
        description.as_deref(),
        Some("Failed due to progress deadline - rolling back to job version 0")
    );
    wait_for("the job back at version 0's spec", || {
        let job: Job =
            serde_json::from_value(fake.object(Kind::Job, "default", "web").unwrap()).unwrap();
        job.spec == v0 && job.version() == 2
    })
    .await;
    // The new leader's evaluation of the active deployment, then the failure's.
    wait_for("the failure's evaluation", || watcher_evals(&fake) == 2).await;
    let stable = fake.object(Kind::JobVersion, "default", "web-v1").unwrap();
    assert_eq!(stable.pointer("/status/stable"), Some(&json!(false)));
    task.abort();
}
