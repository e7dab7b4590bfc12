use caravan_schemas::allocation::{AllocationStatus, ClientStatus};
use caravan_schemas::evaluation::TriggeredBy;
use caravan_schemas::job::JobType;
use caravan_schemas::mock;
use caravan_schemas::node::{NodeState, SchedulingEligibility};

use super::*;

fn job_at(generation: i64, evaluated: Option<i64>) -> caravan_schemas::Job {
    let mut job = mock::job("web");
    job.metadata.generation = Some(generation);
    job.status = evaluated.map(|v| caravan_schemas::JobStatus {
        version: v,
        ..Default::default()
    });
    job
}

#[test]
fn a_new_or_changed_spec_needs_one_register_eval() {
    let req = job_needs_eval(&job_at(1, None)).expect("a new job is evaluated");
    assert_eq!(
        (req.job_version, req.triggered_by),
        (0, TriggeredBy::JobRegister)
    );
    assert_eq!(
        job_needs_eval(&job_at(1, Some(0))),
        None,
        "already evaluated"
    );
    let req = job_needs_eval(&job_at(3, Some(1))).expect("spec changed twice since");
    assert_eq!(req.job_version, 2);
    assert_eq!(
        job_version_patch(&job_at(3, Some(1)))["status"]["version"],
        2
    );
}

#[test]
fn a_stopped_job_needs_a_deregister_eval() {
    let mut job = job_at(2, Some(0));
    job.spec.stop = true;
    assert_eq!(
        job_needs_eval(&job).map(|r| r.triggered_by),
        Some(TriggeredBy::JobDeregister)
    );
}

#[test]
fn failed_and_lost_allocations_need_one_eval() {
    let job = job_at(1, Some(0));
    let node = mock::node("n1");
    let running = mock::allocation("a", &job, &node);
    let mut failed = running.clone();
    failed.status = Some(AllocationStatus {
        client_status: ClientStatus::Failed,
        ..Default::default()
    });
    let req = alloc_needs_eval(Some(&AllocView::of(&running)), &failed, Some(&job))
        .expect("failure triggers");
    assert_eq!(
        (req.triggered_by, req.node_name.as_deref()),
        (TriggeredBy::AllocFailure, Some("n1"))
    );
    assert_eq!(
        alloc_needs_eval(Some(&AllocView::of(&failed)), &failed, Some(&job)),
        None,
        "only on the change"
    );
    assert_eq!(alloc_needs_eval(None, &running, Some(&job)), None);
}

#[test]
fn node_changes_evaluate_its_jobs_and_system_jobs_when_it_can_run_work() {
    let mut node = mock::node("n1");
    let service = job_at(1, Some(0));
    let mut system = job_at(1, Some(0));
    system.metadata.name = Some("logs".into());
    system.spec.r#type = Some(JobType::System);
    let registered = node_change_evals(None, &node, [], [&system]);
    assert_eq!(registered.len(), 1, "a new ready node gets the system jobs");
    assert_eq!(registered[0].job_name, "logs");
    let before = NodeView::of(&node);
    assert!(
        node_change_evals(Some(&before), &node, [&service], [&system]).is_empty(),
        "no change"
    );
    node.status.as_mut().expect("mock nodes have status").status = NodeState::Down;
    let down = node_change_evals(Some(&before), &node, [&service], [&system]);
    assert_eq!(
        down.iter().map(|r| r.job_name.as_str()).collect::<Vec<_>>(),
        ["web"]
    );
    let down_view = NodeView::of(&node);
    node.status.as_mut().expect("status").status = NodeState::Ready;
    node.spec.scheduling_eligibility = Some(SchedulingEligibility::Eligible);
    let back = node_change_evals(Some(&down_view), &node, [&service], [&system]);
    assert_eq!(back.len(), 2, "its jobs and the system jobs");
}

#[test]
fn evaluations_are_created_without_status_and_named_for_their_job() {
    let req = job_needs_eval(&job_at(1, None)).expect("eval");
    let eval = new_evaluation(&req, eval_name(&req, "0A1B-2C3D-4E5F"));
    assert_eq!(eval.metadata.name.as_deref(), Some("web-0a1b2c3d4e"));
    assert_eq!(eval.spec.job_name, "web");
    assert!(eval.status.is_none());
}
