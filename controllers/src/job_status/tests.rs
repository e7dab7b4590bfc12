//! Tests of the job status rules, one rule per test.

use std::collections::BTreeMap;
use std::sync::Arc;

use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::condition::ConditionStatus;
use caravan_schemas::evaluation::EvaluationState;
use caravan_schemas::job::{JobState, JobType, ParameterizedConfig, PeriodicConfig};
use caravan_schemas::{Allocation, Evaluation, EvaluationStatus, Job, JobStatus, mock};
use serde_json::json;

use super::{RUNNING_CONDITION, StateReason, job_state, status_patch, summarize, summarize_at};

fn alloc(name: &str, job: &Job, client: ClientStatus, desired: DesiredStatus) -> Arc<Allocation> {
    let mut alloc = mock::allocation(name, job, &mock::node("n1"));
    alloc.spec.desired_status = Some(desired);
    if let Some(status) = alloc.status.as_mut() {
        status.client_status = client;
    }
    Arc::new(alloc)
}

fn eval(name: &str, job: &Job, state: EvaluationState) -> Arc<Evaluation> {
    let mut eval = mock::evaluation(name, job);
    eval.status = Some(EvaluationStatus {
        status: state,
        ..EvaluationStatus::default()
    });
    Arc::new(eval)
}

fn processed(name: &str, job: &Job, rv: u64, queued: &[(&str, u64)]) -> Arc<Evaluation> {
    let mut eval = mock::evaluation(name, job);
    eval.metadata.resource_version = Some(rv.to_string());
    eval.status = Some(EvaluationStatus {
        status: EvaluationState::Complete,
        snapshot_index: rv,
        queued_allocations: queued.iter().map(|(g, n)| (g.to_string(), *n)).collect(),
        ..EvaluationStatus::default()
    });
    Arc::new(eval)
}

const RUN: DesiredStatus = DesiredStatus::Run;

#[test]
fn new_job_without_evals_is_pending() {
    let job = mock::job("web");
    assert_eq!(
        job_state(&job, &[], &[]),
        (JobState::Pending, StateReason::AwaitingEvaluation)
    );
}

#[test]
fn job_with_pending_or_blocked_eval_and_no_allocs_is_pending() {
    let job = mock::job("web");
    for state in [EvaluationState::Pending, EvaluationState::Blocked] {
        let evals = [eval("e1", &job, state)];
        assert_eq!(job_state(&job, &[], &evals).0, JobState::Pending);
    }
}

#[test]
fn job_with_non_terminal_alloc_is_running() {
    let job = mock::job("web");
    let allocs = [alloc("a1", &job, ClientStatus::Pending, RUN)];
    let evals = [eval("e1", &job, EvaluationState::Pending)];
    assert_eq!(
        job_state(&job, &allocs, &evals),
        (JobState::Running, StateReason::AllocationsActive)
    );
}

#[test]
fn job_with_only_terminal_allocs_and_evals_is_dead() {
    let job = mock::batch_job("report");
    let allocs = [
        alloc("a1", &job, ClientStatus::Complete, RUN),
        alloc("a2", &job, ClientStatus::Running, DesiredStatus::Stop),
    ];
    let evals = [eval("e1", &job, EvaluationState::Complete)];
    assert_eq!(
        job_state(&job, &allocs, &evals),
        (JobState::Dead, StateReason::Finished)
    );
}

#[test]
fn stopped_job_is_dead_once_its_allocs_are_told_to_stop() {
    let mut job = mock::job("web");
    job.spec.stop = true;
    let running = [alloc("a1", &job, ClientStatus::Running, RUN)];
    assert_eq!(job_state(&job, &running, &[]).0, JobState::Running);
    let stopping = [alloc(
        "a1",
        &job,
        ClientStatus::Running,
        DesiredStatus::Stop,
    )];
    assert_eq!(
        job_state(&job, &stopping, &[]),
        (JobState::Dead, StateReason::Stopped)
    );
}

#[test]
fn job_being_deleted_is_dead() {
    let mut job = mock::job("web");
    job.metadata.deletion_timestamp = Some("2026-01-01T00:00:00Z".into());
    assert_eq!(job_state(&job, &[], &[]).0, JobState::Dead);
}

#[test]
fn system_periodic_and_parameterized_jobs_run_until_stopped() {
    let mut system = mock::job("sys");
    system.spec.r#type = Some(JobType::System);
    let mut periodic = mock::batch_job("cron");
    periodic.spec.periodic = Some(PeriodicConfig {
        cron: "*/5 * * * *".into(),
        ..PeriodicConfig::default()
    });
    let mut parameterized = mock::batch_job("dispatch");
    parameterized.spec.parameterized = Some(ParameterizedConfig::default());
    for mut job in [system, periodic, parameterized] {
        assert_eq!(
            job_state(&job, &[], &[]),
            (JobState::Running, StateReason::AlwaysRunning)
        );
        job.spec.stop = true;
        assert_eq!(job_state(&job, &[], &[]).0, JobState::Dead);
    }
}

#[test]
fn objects_of_other_jobs_are_ignored() {
    let job = mock::job("web");
    let other = mock::job("api");
    let allocs = [alloc("a1", &other, ClientStatus::Running, RUN)];
    let evals = [eval("e1", &other, EvaluationState::Pending)];
    assert_eq!(job_state(&job, &allocs, &evals).0, JobState::Pending);
}

#[test]
fn summary_counts_allocs_by_client_status() {
    let job = mock::job("web");
    let allocs = [
        alloc("a1", &job, ClientStatus::Pending, RUN),
        alloc("a2", &job, ClientStatus::Pending, DesiredStatus::Stop),
        alloc("a3", &job, ClientStatus::Running, RUN),
        alloc("a4", &job, ClientStatus::Failed, RUN),
        alloc("a5", &job, ClientStatus::Complete, RUN),
        alloc("a6", &job, ClientStatus::Lost, DesiredStatus::Stop),
        alloc("a7", &job, ClientStatus::Unknown, RUN),
    ];
    let status = summarize(&job, &allocs, &[]);
    let web = status.summary.get("web").cloned().unwrap_or_default();
    assert_eq!(
        (
            web.starting,
            web.running,
            web.failed,
            web.complete,
            web.lost,
            web.unknown
        ),
        (1, 1, 1, 1, 1, 1)
    );
}

#[test]
fn queued_comes_from_the_latest_processed_eval() {
    let job = mock::job("web");
    let evals = [
        processed("e1", &job, 10, &[("web", 4)]),
        processed("e2", &job, 20, &[("web", 2)]),
        eval("e3", &job, EvaluationState::Pending),
    ];
    let status = summarize(&job, &[], &evals);
    assert_eq!(status.summary.get("web").map(|g| g.queued), Some(2));
    let placed = [processed("e4", &job, 30, &[])];
    let status = summarize(&job, &[], &placed);
    assert_eq!(status.summary.get("web").map(|g| g.queued), Some(0));
}

#[test]
fn summarize_keeps_server_fields_and_sets_the_running_condition() {
    let mut job = mock::job("web");
    job.status = Some(JobStatus {
        version: 3,
        submit_time: Some("2026-01-01T00:00:00Z".into()),
        ..JobStatus::default()
    });
    let allocs = [alloc("a1", &job, ClientStatus::Running, RUN)];
    let status = summarize_at(&job, &allocs, &[], Some("2026-01-02T00:00:00Z"));
    assert_eq!((status.version, status.status), (3, JobState::Running));
    assert_eq!(status.submit_time.as_deref(), Some("2026-01-01T00:00:00Z"));
    let condition = status
        .conditions
        .iter()
        .find(|c| c.r#type == RUNNING_CONDITION);
    assert_eq!(condition.map(|c| c.status), Some(ConditionStatus::True));
    assert_eq!(
        condition.and_then(|c| c.last_transition_time.as_deref()),
        Some("2026-01-02T00:00:00Z")
    );
    // No transition: the time is kept.
    job.status = Some(status.clone());
    let again = summarize_at(&job, &allocs, &[], Some("2026-01-03T00:00:00Z"));
    assert_eq!(again, status);
}

#[test]
fn status_patch_is_none_without_change_and_minimal_otherwise() {
    let mut job = mock::job("web");
    let allocs = [alloc("a1", &job, ClientStatus::Running, RUN)];
    let first = summarize(&job, &allocs, &[]);
    let patch = status_patch(&job.status, &first);
    assert_eq!(
        patch.as_ref().and_then(|p| p.pointer("/status/status")),
        Some(&json!("running"))
    );
    job.status = Some(first.clone());
    assert_eq!(
        status_patch(&job.status, &summarize(&job, &allocs, &[])),
        None
    );

    let more = [
        allocs[0].clone(),
        alloc("a2", &job, ClientStatus::Running, RUN),
    ];
    let second = summarize(&job, &more, &[]);
    let patch = status_patch(&job.status, &second);
    assert_eq!(
        patch,
        Some(json!({"status": {"summary": {"web": {"running": 2}}}}))
    );
}

#[test]
fn status_patch_from_no_status_writes_everything_but_defaults() {
    let job = mock::job("web");
    let new = JobStatus {
        summary: BTreeMap::from([("web".to_string(), Default::default())]),
        ..JobStatus::default()
    };
    let patch = status_patch(&None, &new);
    assert!(
        patch
            .as_ref()
            .and_then(|p| p.pointer("/status/summary/web"))
            .is_some()
    );
    assert_eq!(job.status, None);
}
