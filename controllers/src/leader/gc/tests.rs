//! The loop, the trigger and the deletions, against the in-memory fake client.

use std::time::{Duration, Instant};

use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::deployment::DeploymentState;
use caravan_schemas::evaluation::EvaluationState;
use caravan_schemas::job::JobState;
use caravan_schemas::{Kind, mock};
use serde::Serialize;
use serde_json::Value;

use super::reap::{ReapedJobs, reap};
use super::run;
use crate::gc::decide::{Garbage, JobGarbage, Target};
use crate::gc::tests::*;
use crate::gc::{GcConfig, GcError, GcThresholds, GcTrigger};
use crate::leader::{Caches, LeaderConfig};
use caravan_runtime::fake::{FakeClient, Verb, wait_for};
use caravan_runtime::{Client, ClientError};

const DEADLINE: Duration = Duration::from_secs(30);

fn seed<T: Serialize>(client: &FakeClient, kind: Kind, object: &T) -> Value {
    client.seed(kind, serde_json::to_value(object).unwrap())
}

fn target(value: &Value) -> Target {
    let meta = &value["metadata"];
    Target {
        namespace: meta["namespace"].as_str().unwrap_or_default().to_string(),
        name: meta["name"].as_str().unwrap().to_string(),
        resource_version: meta["resourceVersion"].as_str().map(str::to_string),
    }
}

/// A finished batch job `report` (with its evaluation and allocation), a down node `n1`, a
/// ready node `n2` and a running service job `web` on it, all long past every threshold (the
/// fixtures' times are taken before [`now`], itself in the past).
fn seed_cluster(client: &FakeClient) {
    let report = dead_batch("report", 48 * HOUR);
    let e1 = eval("report-e1", &report, EvaluationState::Complete, 48 * HOUR);
    let a1 = alloc(
        "report-a1",
        &e1,
        &report,
        ClientStatus::Complete,
        DesiredStatus::Run,
        48 * HOUR,
    );
    let web = job_in("web", mock::job("web"), JobState::Running, 48 * HOUR);
    let w1 = eval("web-e1", &web, EvaluationState::Complete, 48 * HOUR);
    let mut w1a = alloc(
        "web-a1",
        &w1,
        &web,
        ClientStatus::Running,
        DesiredStatus::Run,
        48 * HOUR,
    );
    w1a.spec.node_name = "n2".into();
    seed(client, Kind::Job, &report);
    seed(client, Kind::Evaluation, &e1);
    seed(client, Kind::Allocation, &a1);
    seed(client, Kind::Job, &web);
    seed(client, Kind::Evaluation, &w1);
    seed(client, Kind::Allocation, &w1a);
    seed(client, Kind::Node, &down_node("n1", None, None));
    seed(client, Kind::Node, &mock::node("n2"));
}

/// Deployments of `web` (seeded by [`seed_cluster`]): `web-v1`, cancelled, and `web-v2`, its
/// newest, successful; and `gone-v0` of a job that is no more. All ended two days ago; `web-v1`
/// and `gone-v0` are garbage.
fn seed_deployments(client: &FakeClient) {
    let web = job_in("web", mock::job("web"), JobState::Running, 48 * HOUR);
    let gone = job_in("gone", mock::job("gone"), JobState::Dead, 48 * HOUR);
    for deployment in [
        deployment(&web, 1, DeploymentState::Cancelled, 48 * HOUR),
        deployment(&web, 2, DeploymentState::Successful, 48 * HOUR),
        deployment(&gone, 0, DeploymentState::Successful, 48 * HOUR),
    ] {
        seed(client, Kind::Deployment, &deployment);
    }
}

fn spawn_loop(client: &FakeClient, config: GcConfig) -> tokio::task::JoinHandle<()> {
    let (caches, _feeds) = Caches::start(client.clone());
    tokio::spawn(run(client.clone(), caches, config, ReapedJobs::default()))
}

#[tokio::test]
async fn a_trigger_nobody_listens_to_answers_not_running() {
    assert_eq!(
        GcTrigger::new().collect(false).await,
        Err(GcError::NotRunning)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_pass_deletes_through_the_client_and_reports_what_it_deleted() {
    let client = FakeClient::new();
    seed_cluster(&client);
    seed_deployments(&client);
    let config = GcConfig {
        interval: Duration::from_secs(3600),
        ..GcConfig::default()
    };
    let trigger = config.trigger.clone();
    let task = spawn_loop(&client, config);
    wait_for("the loop listens", || trigger.is_listening()).await;

    let summary = trigger.collect(true).await.unwrap();
    assert_eq!(summary.jobs.names, ["default/report"]);
    assert_eq!(summary.evaluations.names, ["default/report-e1"]);
    assert_eq!(summary.allocations.names, ["default/report-a1"]);
    assert_eq!(
        summary.deployments.names,
        ["default/gone-v0", "default/web-v1"]
    );
    assert_eq!(summary.nodes.names, ["n1"]);
    assert_eq!(summary.total(), 6);
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert!(client.object(Kind::Job, "default", "report").is_none());
    assert!(client.object(Kind::Node, "", "n1").is_none());
    // What lives stays.
    assert!(client.object(Kind::Job, "default", "web").is_some());
    assert!(
        client
            .object(Kind::Evaluation, "default", "web-e1")
            .is_some()
    );
    assert!(
        client
            .object(Kind::Allocation, "default", "web-a1")
            .is_some()
    );
    assert!(client.object(Kind::Node, "", "n2").is_some());
    assert!(
        client
            .object(Kind::Deployment, "default", "web-v1")
            .is_none()
    );
    // The newest deployment of a job that exists stays.
    assert!(
        client
            .object(Kind::Deployment, "default", "web-v2")
            .is_some()
    );

    // Nothing is left to collect.
    let again = trigger.collect(true).await.unwrap();
    assert_eq!(again.total(), 0, "{again:?}");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_collects_on_its_interval_with_the_thresholds() {
    let client = FakeClient::new();
    seed_cluster(&client);
    seed_deployments(&client);
    let config = GcConfig {
        interval: Duration::from_millis(20),
        thresholds: GcThresholds {
            node: Duration::from_secs(HOUR),
            ..GcThresholds::default()
        },
        ..GcConfig::default()
    };
    let task = spawn_loop(&client, config);
    wait_for("the down node is collected", || {
        client.object(Kind::Node, "", "n1").is_none()
    })
    .await;
    // A dead job of two days passes the 4h job threshold too.
    wait_for("the dead job is collected", || {
        client.object(Kind::Job, "default", "report").is_none()
    })
    .await;
    // Deployments ended two days ago pass the 1h deployment threshold.
    wait_for("the old deployments are collected", || {
        client.objects(Kind::Deployment).len() == 1
    })
    .await;
    assert!(client.object(Kind::Job, "default", "web").is_some());
    assert!(
        client
            .object(Kind::Deployment, "default", "web-v2")
            .is_some()
    );
    task.abort();
}

#[tokio::test]
async fn deletions_skip_changed_and_missing_objects_and_report_failures() {
    let client = FakeClient::new();
    let job = dead_batch("report", 48 * HOUR);
    let e1 = eval("e1", &job, EvaluationState::Complete, 48 * HOUR);
    let a1 = alloc(
        "a1",
        &e1,
        &job,
        ClientStatus::Complete,
        DesiredStatus::Run,
        1,
    );
    let a2 = alloc(
        "a2",
        &e1,
        &job,
        ClientStatus::Complete,
        DesiredStatus::Run,
        1,
    );
    let job = seed(&client, Kind::Job, &job);
    let e1 = seed(&client, Kind::Evaluation, &e1);
    let a1 = seed(&client, Kind::Allocation, &a1);
    let a2 = seed(&client, Kind::Allocation, &a2);
    let node = seed(&client, Kind::Node, &down_node("n1", Some(1), None));
    let web = job_in("web", mock::job("web"), JobState::Running, 48 * HOUR);
    let d1 = seed(
        &client,
        Kind::Deployment,
        &deployment(&web, 1, DeploymentState::Successful, 48 * HOUR),
    );

    let mut stale_job = target(&job);
    stale_job.resource_version = Some("1".into());
    let mut stale = target(&a2);
    stale.resource_version = Some("1".into());
    let missing = Target {
        name: "gone".into(),
        ..target(&a1)
    };
    let mut stale_deployment = target(&d1);
    stale_deployment.resource_version = Some("1".into());
    let garbage = Garbage {
        // The job changed: neither it nor its evaluation goes.
        jobs: vec![JobGarbage {
            job: stale_job,
            evaluations: vec![target(&e1)],
            allocations: vec![],
        }],
        // a2 changed since the decision: the delete's precondition keeps it.
        allocations: vec![stale, missing],
        evaluations: vec![],
        deployments: vec![stale_deployment],
        nodes: vec![],
    };
    let summary = reap(&client, garbage, &ReapedJobs::default()).await;
    assert_eq!(summary.total(), 0, "{summary:?}");
    assert!(summary.errors.is_empty(), "{summary:?}");
    client.fail_next(Verb::Delete, ClientError::Unavailable("disk full".into()));
    let garbage = Garbage {
        nodes: vec![target(&node)],
        ..Garbage::default()
    };
    let summary = reap(&client, garbage, &ReapedJobs::default()).await;
    assert_eq!(summary.total(), 0, "{summary:?}");
    assert_eq!(summary.errors.len(), 1, "{summary:?}");
    assert!(summary.errors[0].contains("n1"), "{summary:?}");
    for (kind, name) in [
        (Kind::Job, "report"),
        (Kind::Evaluation, "e1"),
        (Kind::Allocation, "a2"),
        (Kind::Deployment, "web-v1"),
    ] {
        assert!(client.object(kind, "default", name).is_some(), "{name}");
    }
    assert!(client.object(Kind::Node, "", "n1").is_some());

    let garbage = Garbage {
        jobs: vec![JobGarbage {
            job: target(&client.object(Kind::Job, "default", "report").unwrap()),
            evaluations: vec![target(&e1)],
            allocations: vec![target(&a1), target(&a2)],
        }],
        deployments: vec![target(&d1)],
        nodes: vec![target(&node)],
        ..Garbage::default()
    };
    let summary = reap(&client, garbage, &ReapedJobs::default()).await;
    assert_eq!(summary.jobs.names, ["default/report"]);
    assert_eq!(summary.deployments.names, ["default/web-v1"]);
    assert_eq!(summary.evaluations.names, ["default/e1"]);
    assert_eq!(summary.allocations.names, ["default/a1", "default/a2"]);
    assert_eq!(summary.nodes.count, 1);
    assert!(client.objects(Kind::Allocation).is_empty());
    assert!(client.objects(Kind::Deployment).is_empty());
}

/// Names of the evaluations of `job`.
fn evals_of(client: &FakeClient, job: &str) -> Vec<Value> {
    client
        .objects(Kind::Evaluation)
        .into_iter()
        .filter(|e| e["spec"]["jobName"] == job)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_the_collector_deletes_gets_no_deregister_evaluation() {
    let client = FakeClient::new();
    seed_cluster(&client);
    let config = LeaderConfig {
        workers: 1,
        gc: GcConfig {
            interval: Duration::from_secs(3600),
            ..GcConfig::default()
        },
        ..LeaderConfig::default()
    };
    let trigger = config.gc.trigger.clone();
    let leader = tokio::spawn(crate::leader::run(client.clone(), config));
    wait_for("the loop listens", || trigger.is_listening()).await;
    let deadline = Instant::now() + DEADLINE;
    while client.object(Kind::Job, "default", "report").is_some() {
        let collected = trigger.collect(false).await;
        assert!(
            Instant::now() < deadline,
            "the job was never collected; last pass: {collected:?}; jobs: {:?}; evaluations: {:?}",
            client.objects(Kind::Job),
            client.objects(Kind::Evaluation)
        );
    }
    // A job deleted by someone else afterwards gets its deregister evaluation; once it
    // exists, the collected job's deletion was handled before it.
    client.delete(Kind::Job, "default", "web").await.unwrap();
    wait_for("the deregister evaluation of web", || {
        evals_of(&client, "web")
            .iter()
            .any(|e| e["spec"]["triggeredBy"] == "job-deregister")
    })
    .await;
    assert!(
        evals_of(&client, "report").is_empty(),
        "{:#?}",
        evals_of(&client, "report")
    );
    leader.abort();
}
