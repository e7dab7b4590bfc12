use std::sync::Arc;

use caravan_schemas::allocation::ClientStatus;
use caravan_schemas::deployment::DeploymentState;
use caravan_schemas::job::{UpdateStrategy, defaults};
use caravan_schemas::{Allocation, Deployment, Job, mock};

use super::*;

/// Version `version` of `web` (uid `u1`), 3 allocations, `canary` canaries; `env` is the
/// task's `V`, so versions with different `env` have changed tasks.
fn job(version: i64, canary: u32, env: &str) -> Job {
    let mut job = mock::job("web");
    job.metadata.uid = Some("u1".into());
    job.metadata.generation = Some(version + 1);
    let group = &mut job.spec.groups[0];
    group.count = Some(3);
    group.update = Some(UpdateStrategy {
        canary: Some(canary),
        progress_deadline: Some("1m".into()),
        ..defaults::update_strategy()
    });
    group.tasks[0].env.insert("V".into(), env.into());
    job
}

fn running(job: &Job, n: usize) -> Vec<Arc<Allocation>> {
    (0..n)
        .map(|i| {
            let mut a = mock::allocation(&format!("a{i}"), job, &mock::node("n1"));
            a.spec.job_version = job.version();
            a.status.get_or_insert_default().client_status = ClientStatus::Running;
            Arc::new(a)
        })
        .collect()
}

fn changes(job: &Job, old: &Job, deployments: &[Deployment]) -> DeploymentChanges {
    let allocs = running(old, 3);
    let old = Arc::new(old.clone());
    let versions = move |v: i64| Some(old.clone()).filter(|j| j.version() == v);
    let deployments: Vec<Arc<Deployment>> = deployments.iter().cloned().map(Arc::new).collect();
    deployment_changes(job, &deployments, &allocs, &versions, 1_000)
}

#[test]
fn a_new_version_with_changed_tasks_gets_a_deployment_with_its_canaries() {
    let (old, new) = (job(0, 2, "a"), job(1, 2, "b"));
    let created = changes(&new, &old, &[]).create.expect("a deployment");
    assert_eq!(created.metadata.name(), "web-v1");
    assert_eq!(created.spec.job_uid, "u1");
    assert_eq!(created.metadata.labels["caravan.dev/job"], "web");
    assert_eq!(created.state(), DeploymentState::Running);
    let group = created.group("web").expect("the group");
    assert_eq!((group.desired_total, group.desired_canaries), (3, 2));
    // 1 000 s + 1 m.
    assert_eq!(
        group.require_progress_by.as_deref(),
        Some(format_rfc3339(1_060).as_str())
    );
    let status = created.status.as_ref().expect("status");
    assert_eq!(
        status.status_description.as_deref(),
        Some(descriptions::NEEDS_PROMOTION)
    );
    assert_eq!(status.conditions[0].reason, "NewDeployment");
}

#[test]
fn a_version_that_changed_no_task_places_no_canaries() {
    let old = job(0, 2, "a");
    let mut new = job(1, 2, "a");
    new.spec.groups[0].count = Some(5);
    let created = changes(&new, &old, &[]).create.expect("a deployment");
    let group = created.group("web").expect("the group");
    assert_eq!((group.desired_total, group.desired_canaries), (5, 0));
    assert_eq!(
        created.status.and_then(|s| s.status_description).as_deref(),
        Some(descriptions::RUNNING)
    );
}

#[test]
fn jobs_without_rolling_updates_get_no_deployment() {
    let old = job(0, 0, "a");
    let mut new = job(1, 0, "b");
    new.spec.groups[0].update = None;
    assert!(changes(&new, &old, &[]).create.is_none());
    new.spec.groups[0].update = Some(UpdateStrategy {
        max_parallel: Some(0),
        ..defaults::update_strategy()
    });
    assert!(changes(&new, &old, &[]).create.is_none(), "maxParallel 0");
    let mut batch = job(1, 0, "b");
    batch.spec.r#type = Some(caravan_schemas::JobType::Batch);
    assert!(changes(&batch, &old, &[]).create.is_none());
}

#[test]
fn a_new_version_cancels_the_running_deployment_and_a_stop_cancels_its_own() {
    let (old, new) = (job(0, 0, "a"), job(1, 0, "b"));
    let running = changes(&old, &old, &[])
        .create
        .expect("version 0's deployment");
    let got = changes(&new, &old, std::slice::from_ref(&running));
    assert_eq!(
        got.cancel,
        vec![("web-v0".to_owned(), descriptions::NEWER_JOB)]
    );
    assert!(got.create.is_some());

    let mut stopped = job(2, 0, "b");
    stopped.spec.stop = true;
    let current = changes(&new, &old, &[])
        .create
        .expect("version 1's deployment");
    let mut renamed = current.clone();
    renamed.metadata.name = Some("web-v2".into());
    renamed.spec.job_version = 2;
    let got = changes(&stopped, &old, &[renamed]);
    assert_eq!(
        got.cancel,
        vec![("web-v2".to_owned(), descriptions::STOPPED_JOB)]
    );
    assert!(got.create.is_none(), "a stopped job gets no deployment");
}

#[test]
fn a_deployment_left_by_a_deleted_job_of_the_same_name_is_replaced() {
    let (old, new) = (job(0, 0, "a"), job(1, 0, "b"));
    let mut stale = changes(&new, &old, &[]).create.expect("a deployment");
    stale.spec.job_uid = "u0".into();
    let got = changes(&new, &old, &[stale]);
    assert_eq!(got.delete_stale.as_deref(), Some("web-v1"));
    assert!(got.create.is_some());
    // Its own deployment exists already: nothing to create.
    let own = changes(&new, &old, &[]).create.expect("a deployment");
    assert_eq!(changes(&new, &old, &[own]), DeploymentChanges::default());
}

#[test]
fn cancelling_turns_progressing_false_and_keeps_other_conditions() {
    let (old, new) = (job(0, 0, "a"), job(1, 0, "b"));
    let mut d = changes(&new, &old, &[]).create.expect("a deployment");
    if let Some(status) = d.status.as_mut() {
        status.conditions.push(Condition {
            r#type: "Available".into(),
            status: ConditionStatus::False,
            ..Condition::default()
        });
    }
    let patch = cancel_patch(&d, descriptions::NEWER_JOB, 2_000);
    assert_eq!(patch["status"]["status"], "cancelled");
    let conditions = patch["status"]["conditions"]
        .as_array()
        .expect("conditions");
    assert_eq!(conditions.len(), 2);
    let progressing = conditions
        .iter()
        .find(|c| c["type"] == "Progressing")
        .expect("Progressing");
    assert_eq!(progressing["status"], "False");
    assert_eq!(progressing["reason"], "Cancelled");
}
