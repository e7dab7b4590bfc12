//! The deployment rules, one table row or test each, on fixed times.

use caravan_schemas::allocation::{AllocDeploymentStatus, ClientStatus, DesiredStatus};
use caravan_schemas::condition::ConditionStatus;
use caravan_schemas::deployment::{DeploymentGroupState, DeploymentState, descriptions};
use caravan_schemas::job::UpdateStrategy;
use caravan_schemas::{
    Allocation, Deployment, DeploymentSpec, DeploymentStatus, Job, ObjectMeta, mock,
};

use super::*;
use crate::scheduler::time::format_rfc3339;

mod props;
mod rules;
mod writes;

pub(super) const NOW: i64 = 1_800_000_000;
const NAME: &str = "web-v1";

/// An update block: `canary` canaries, progress deadline `deadline`, and the flags.
pub(super) fn update(
    canary: u32,
    deadline: &str,
    auto_promote: bool,
    auto_revert: bool,
) -> UpdateStrategy {
    UpdateStrategy {
        canary: Some(canary),
        progress_deadline: Some(deadline.into()),
        auto_promote: Some(auto_promote),
        auto_revert: Some(auto_revert),
        ..caravan_schemas::job::defaults::update_strategy()
    }
}

/// Job `web` at version 1 with group `web` of `count`.
pub(super) fn job(count: u32) -> Job {
    let mut job = mock::job("web");
    job.metadata.uid = Some("job-uid".into());
    job.metadata.generation = Some(2);
    job.metadata.resource_version = Some("40".into());
    job.spec.groups[0].count = Some(count);
    job
}

/// Deployment `web-v1` of `groups`, with `status`.
pub(super) fn deployment(
    groups: &[(&str, UpdateStrategy)],
    status: Option<DeploymentStatus>,
) -> Deployment {
    Deployment {
        api_version: "caravan.dev/v1".into(),
        kind: "Deployment".into(),
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            namespace: Some("default".into()),
            uid: Some("dep-uid".into()),
            resource_version: Some("50".into()),
            creation_timestamp: Some(format_rfc3339(NOW - 100)),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            job_name: "web".into(),
            job_uid: "job-uid".into(),
            job_version: 1,
            groups: groups
                .iter()
                .map(|(name, update)| (name.to_string(), update.clone()))
                .collect(),
            ..DeploymentSpec::default()
        },
        status,
    }
}

/// A group state: `total` wanted, `canaries` canaries, deadline at `by`.
pub(super) fn group(total: u32, canaries: u32, by: i64) -> DeploymentGroupState {
    DeploymentGroupState {
        desired_total: total,
        desired_canaries: canaries,
        require_progress_by: Some(format_rfc3339(by)),
        ..DeploymentGroupState::default()
    }
}

/// A running status of `groups`.
pub(super) fn running(groups: &[(&str, DeploymentGroupState)]) -> DeploymentStatus {
    DeploymentStatus {
        status: DeploymentState::Running,
        status_description: Some(descriptions::RUNNING.into()),
        groups: groups
            .iter()
            .map(|(name, g)| (name.to_string(), g.clone()))
            .collect(),
        conditions: Vec::new(),
    }
}

/// Allocation `name` of group `web` placed under `web-v1`, healthy (`Some(true)`), unhealthy
/// or not known yet, reported at `at`.
pub(super) fn alloc(name: &str, healthy: Option<bool>, at: i64, canary: bool) -> Allocation {
    let mut alloc = mock::allocation(name, &job(1), &mock::node("n1"));
    alloc.spec.deployment_name = Some(NAME.into());
    let status = alloc.status.get_or_insert_default();
    status.client_status = ClientStatus::Running;
    status.deployment_status = Some(AllocDeploymentStatus {
        healthy,
        canary,
        timestamp: healthy.map(|_| format_rfc3339(at)),
    });
    alloc
}

pub(super) fn healthy(name: &str) -> Allocation {
    alloc(name, Some(true), NOW - 10, false)
}

pub(super) fn run(d: &Deployment, job: &Job, allocs: &[Allocation]) -> Decision {
    let refs: Vec<&Allocation> = allocs.iter().collect();
    decide(d, Some(job), &refs, NOW)
}

pub(super) fn new_status(decision: &Decision) -> &DeploymentStatus {
    decision.status.as_ref().expect("a status change")
}

#[test]
fn a_deployment_without_status_starts_from_its_spec_and_job() {
    let d = deployment(&[("web", update(2, "10m", false, true))], None);
    let decision = run(&d, &job(5), &[]);
    let status = new_status(&decision);
    assert_eq!(status.status, DeploymentState::Running);
    assert_eq!(
        status.status_description.as_deref(),
        Some(descriptions::NEEDS_PROMOTION)
    );
    let web = &status.groups["web"];
    assert_eq!((web.desired_total, web.desired_canaries), (5, 2));
    assert!(web.auto_revert);
    assert_eq!(
        web.require_progress_by,
        Some(format_rfc3339(NOW - 100 + 600))
    );
    assert_eq!(status.conditions[0].reason, "NewDeployment");
    assert!(!decision.evaluate && !decision.mark_stable && !decision.revert);
    assert_eq!(decision.requeue_at, Some(NOW + 500));
}

#[test]
fn a_deployment_without_status_waits_for_its_job_at_its_version() {
    let d = deployment(&[("web", update(0, "10m", false, false))], None);
    let mut newer = job(3);
    newer.metadata.generation = Some(3);
    assert_eq!(run(&d, &newer, &[]), Decision::default());
    assert_eq!(decide(&d, None, &[], NOW), Decision::default());
}

#[test]
fn terminal_deployments_never_change() {
    for state in [
        DeploymentState::Failed,
        DeploymentState::Successful,
        DeploymentState::Cancelled,
    ] {
        let mut status = running(&[("web", group(3, 0, NOW - 1000))]);
        status.status = state;
        let mut d = deployment(&[("web", update(0, "0", false, true))], Some(status));
        d.spec.failed = Some(true);
        d.spec.paused = Some(true);
        let allocs = [healthy("a"), alloc("b", Some(false), NOW, true)];
        assert_eq!(run(&d, &job(3), &allocs), Decision::default(), "{state:?}");
    }
}

#[test]
fn counts_come_from_the_deployments_own_allocations() {
    let d = deployment(
        &[("web", update(1, "10m", false, false))],
        Some(running(&[("web", group(3, 1, NOW + 100))])),
    );
    let mut other = healthy("other");
    other.spec.deployment_name = Some("web-v0".into());
    let mut other_group = healthy("api");
    other_group.spec.group = "api".into();
    let mut stopped = healthy("stopped");
    stopped.spec.desired_status = Some(DesiredStatus::Stop);
    let allocs = [
        alloc("c", None, NOW, true),
        healthy("h"),
        alloc("u", Some(false), NOW, false),
        stopped,
        other,
        other_group,
    ];
    let decision = run(&d, &job(3), &allocs);
    let web = &new_status(&decision).groups["web"];
    assert_eq!(
        (web.placed_allocs, web.healthy_allocs, web.unhealthy_allocs),
        (4, 2, 1)
    );
    assert_eq!(web.placed_canaries, ["c"]);
    assert!(decision.evaluate, "health counts changed");
}

#[test]
fn a_placement_alone_writes_counts_without_an_evaluation() {
    let d = deployment(
        &[("web", update(0, "10m", false, false))],
        Some(running(&[("web", group(3, 0, NOW + 100))])),
    );
    let decision = run(&d, &job(3), &[alloc("a", None, NOW, false)]);
    assert_eq!(new_status(&decision).groups["web"].placed_allocs, 1);
    assert!(!decision.evaluate);
}

#[test]
fn a_new_healthy_allocation_moves_the_deadline_never_back() {
    let d = deployment(
        &[("web", update(0, "10m", false, false))],
        Some(running(&[("web", group(3, 0, NOW + 100))])),
    );
    let late = alloc("a", Some(true), NOW - 20, false);
    let decision = run(&d, &job(3), &[late]);
    let by = &new_status(&decision).groups["web"].require_progress_by;
    assert_eq!(by.as_deref(), Some(format_rfc3339(NOW - 20 + 600).as_str()));
    let early = alloc("b", Some(true), NOW - 1000, false);
    let decision = run(&d, &job(3), &[early]);
    let by = &new_status(&decision).groups["web"].require_progress_by;
    assert_eq!(by.as_deref(), Some(format_rfc3339(NOW + 100).as_str()));
}

#[test]
fn promotion_marks_every_group_and_restarts_the_deadlines() {
    let d = deployment(
        &[("web", update(1, "10m", false, false))],
        Some(running(&[("web", group(2, 1, NOW + 5))])),
    );
    let mut d = d;
    d.spec.promoted = Some(true);
    let decision = run(&d, &job(2), &[alloc("c", None, NOW, true)]);
    let web = &new_status(&decision).groups["web"];
    assert!(web.promoted);
    assert_eq!(web.require_progress_by, Some(format_rfc3339(NOW + 600)));
    assert_eq!(decision.requeue_at, Some(NOW + 600));
}

#[test]
fn resuming_restarts_the_deadlines() {
    let mut status = running(&[("web", group(2, 0, NOW - 50))]);
    status.status = DeploymentState::Paused;
    let d = deployment(&[("web", update(0, "1m", false, false))], Some(status));
    let decision = run(&d, &job(2), &[]);
    let status = new_status(&decision);
    assert_eq!(status.status, DeploymentState::Running);
    assert_eq!(
        status.groups["web"].require_progress_by,
        Some(format_rfc3339(NOW + 60))
    );
}

#[test]
fn the_next_look_is_the_earliest_deadline_of_an_unfinished_group() {
    let groups = [
        ("api", update(0, "10m", false, false)),
        ("web", update(0, "10m", false, false)),
    ];
    let d = deployment(
        &groups,
        Some(running(&[
            ("api", group(1, 0, NOW + 30)),
            ("web", group(5, 0, NOW + 90)),
        ])),
    );
    let mut api = alloc("api-1", Some(true), NOW - 700, false);
    api.spec.group = "api".into();
    let decision = run(&d, &job(5), &[api]);
    assert_eq!(decision.requeue_at, Some(NOW + 90), "api is complete");
    let paused = Deployment {
        spec: DeploymentSpec {
            paused: Some(true),
            ..d.spec.clone()
        },
        ..d
    };
    assert_eq!(run(&paused, &job(5), &[]).requeue_at, None);
}

#[test]
fn a_decision_written_back_asks_for_nothing_more() {
    let d = deployment(&[("web", update(0, "10m", false, false))], None);
    let allocs = [healthy("a"), alloc("b", None, NOW, false)];
    let first = run(&d, &job(2), &allocs);
    let written = Deployment {
        status: first.status.clone(),
        ..d
    };
    let again = run(&written, &job(2), &allocs);
    assert_eq!(again.status, None);
    assert!(!again.evaluate);
}

#[test]
fn conditions_keep_their_transition_time_while_their_status_holds() {
    let mut status = running(&[("web", group(2, 0, NOW + 100))]);
    set_conditions(&mut status, &[], NOW - 500);
    let d = deployment(&[("web", update(0, "10m", false, false))], Some(status));
    let decision = run(&d, &job(2), &[healthy("a")]);
    let conditions = &new_status(&decision).conditions;
    let progressing = conditions.iter().find(|c| c.r#type == PROGRESSING).unwrap();
    assert_eq!(progressing.reason, "Running");
    assert_eq!(
        progressing.last_transition_time,
        Some(format_rfc3339(NOW - 500))
    );
    let decision = run(&d, &job(2), &[healthy("a"), healthy("b")]);
    let conditions = &new_status(&decision).conditions;
    let available = conditions.iter().find(|c| c.r#type == AVAILABLE).unwrap();
    assert_eq!(available.status, ConditionStatus::True);
    assert_eq!(available.last_transition_time, Some(format_rfc3339(NOW)));
    let progressing = conditions.iter().find(|c| c.r#type == PROGRESSING).unwrap();
    assert_eq!(
        (
            progressing.reason.as_str(),
            progressing.last_transition_time.clone()
        ),
        ("Successful", Some(format_rfc3339(NOW - 500)))
    );
}

#[test]
fn failure_conditions_name_the_reason() {
    let d = deployment(
        &[("web", update(1, "10m", false, false))],
        Some(running(&[("web", group(2, 1, NOW - 1))])),
    );
    let decision = run(&d, &job(2), &[]);
    let conditions = &new_status(&decision).conditions;
    let reasons: Vec<_> = conditions
        .iter()
        .map(|c| (c.r#type.as_str(), c.status, c.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                PROGRESSING,
                ConditionStatus::False,
                "ProgressDeadlineExceeded"
            ),
            (AVAILABLE, ConditionStatus::False, "AllocationsNotHealthy"),
            (PROMOTED, ConditionStatus::False, "PromotionRequired"),
        ]
    );
}
