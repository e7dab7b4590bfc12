//! The job controller's deployments, against the in-memory fake client with the leader's loops
//! running.

use caravan_schemas::job::defaults;
use caravan_schemas::{Kind, mock};
use serde_json::{Value, json};

use crate::leader::{LeaderConfig, run};
use caravan_runtime::Client;
use caravan_runtime::fake::{FakeClient, wait_for};

fn evaluations_of_version(fake: &FakeClient, version: i64) -> Vec<Value> {
    fake.objects(Kind::Evaluation)
        .into_iter()
        .filter(|e| e["spec"]["jobVersion"] == version)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_gets_its_deployment_before_its_evaluation_and_cancels_the_last() {
    let fake = FakeClient::new();
    let mut job = mock::job("web");
    job.metadata.uid = Some("u1".into());
    job.metadata.generation = Some(1);
    job.spec.groups[0].update = Some(defaults::update_strategy());
    fake.seed(Kind::Job, serde_json::to_value(&job).unwrap());
    let leader = tokio::spawn(run(fake.clone(), LeaderConfig::default()));

    wait_for("version 0's evaluation", || {
        let evaluated = !evaluations_of_version(&fake, 0).is_empty();
        // Whenever the evaluation is there, its deployment is already.
        assert!(
            !evaluated || fake.object(Kind::Deployment, "default", "web-v0").is_some(),
            "the evaluation was written before the deployment"
        );
        evaluated
    })
    .await;
    let first = fake
        .object(Kind::Deployment, "default", "web-v0")
        .expect("the deployment of version 0");
    assert_eq!(first["status"]["status"], "running");
    assert_eq!(first["status"]["groups"]["web"]["desiredTotal"], 10);

    // A new version: its own deployment; version 0's is cancelled.
    fake.patch(
        Kind::Job,
        "default",
        "web",
        json!({"spec": {"groups": [{
            "name": "web",
            "count": 2,
            "update": {"maxParallel": 1},
            "tasks": job.spec.groups[0].tasks,
        }]}}),
    )
    .await
    .expect("the new version");
    wait_for("version 1's deployment", || {
        fake.object(Kind::Deployment, "default", "web-v1").is_some()
    })
    .await;
    wait_for("version 0's deployment cancelled", || {
        fake.object(Kind::Deployment, "default", "web-v0")
            .is_some_and(|d| d["status"]["status"] == "cancelled")
    })
    .await;
    let cancelled = fake
        .object(Kind::Deployment, "default", "web-v0")
        .expect("version 0's deployment");
    assert_eq!(
        cancelled["status"]["statusDescription"],
        "Cancelled due to newer version of job"
    );
    leader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_without_an_update_block_get_no_deployment() {
    let fake = FakeClient::new();
    let mut job = mock::job("batchy");
    job.metadata.generation = Some(1);
    job.spec.groups[0].update = None;
    fake.seed(Kind::Job, serde_json::to_value(&job).unwrap());
    let leader = tokio::spawn(run(fake.clone(), LeaderConfig::default()));
    wait_for("the evaluation", || {
        !evaluations_of_version(&fake, 0).is_empty()
    })
    .await;
    assert!(fake.objects(Kind::Deployment).is_empty());
    leader.abort();
}
