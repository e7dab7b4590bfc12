//! Auto-revert targets, the patches written and the evaluation asked for.

use std::collections::BTreeMap;

use caravan_schemas::deployment::{DeploymentState, descriptions};
use caravan_schemas::job::UpdateStrategy;
use caravan_schemas::{Job, JobVersion, JobVersionSpec, JobVersionStatus, ObjectMeta};
use serde_json::json;

use super::{NOW, deployment, group, job, new_status, running, update};
use crate::deployment::*;

fn version(n: i64, stable: bool, job: &Job) -> JobVersion {
    JobVersion {
        metadata: ObjectMeta {
            name: Some(format!("web-v{n}")),
            ..ObjectMeta::default()
        },
        spec: JobVersionSpec {
            job_name: "web".into(),
            job_uid: "job-uid".into(),
            version: n,
            job: job.spec.clone(),
        },
        status: Some(JobVersionStatus { stable }),
        ..JobVersion::default()
    }
}

#[test]
fn a_revert_goes_to_the_newest_older_stable_version_unless_it_changes_nothing() {
    let mut d = deployment(&[("web", update(0, "10m", false, true))], None);
    d.spec.job_version = 3;
    let current = job(3);
    let (old, older) = (job(1), job(2));
    let mut foreign = version(2, true, &older);
    foreign.spec.job_uid = "another-job".into();
    let versions = [
        version(0, true, &older),
        version(1, true, &old),
        foreign,
        version(2, false, &older),
        version(3, false, &current),
        version(4, true, &older),
    ];
    let target = revert_target(&d, &current, &versions);
    assert_eq!(target, RevertTarget::To(Box::new(versions[1].clone())));
    assert_eq!(
        revert_description(descriptions::FAILED_PROGRESS_DEADLINE, &target),
        "Failed due to progress deadline - rolling back to job version 1"
    );
    let same = [version(0, true, &older), version(1, true, &current)];
    assert_eq!(
        revert_target(&d, &current, &same),
        RevertTarget::Unchanged(1)
    );
    assert_eq!(
        revert_description("x", &RevertTarget::Unchanged(1)),
        "x - not rolling back to stable job version 1 as current job has same specification"
    );
    assert_eq!(
        revert_target(&d, &current, &[version(0, false, &old)]),
        RevertTarget::NoStable
    );
    assert_eq!(
        revert_description("x", &RevertTarget::NoStable),
        "x - no stable job version to auto revert to"
    );
}

#[test]
fn a_failure_without_its_job_does_not_revert() {
    let mut d = deployment(
        &[("web", update(0, "10m", false, true))],
        Some(running(&[("web", group(2, 0, NOW + 100))])),
    );
    d.spec.failed = Some(true);
    let decision = decide(&d, None, &[], NOW);
    assert_eq!(new_status(&decision).status, DeploymentState::Failed);
    assert!(!decision.revert);
}

#[test]
fn patches_carry_only_what_changed_and_the_resource_version() {
    let old = running(&[("web", group(3, 0, NOW + 100))]);
    let mut new = old.clone();
    new.groups.get_mut("web").unwrap().healthy_allocs = 2;
    assert_eq!(
        status_patch(Some(&old), &new, Some("50")),
        Some(json!({
            "metadata": {"resourceVersion": "50"},
            "status": {"groups": {"web": {"healthyAllocs": 2}}}
        }))
    );
    let current = job(3);
    let mut target = current.spec.clone();
    target.groups[0].count = Some(1);
    target.meta = BTreeMap::new();
    assert_eq!(
        spec_patch(&current, &target),
        Some(json!({
            "metadata": {"resourceVersion": "40"},
            "spec": {"groups": serde_json::to_value(&target.groups).unwrap(), "meta": null}
        }))
    );
    assert_eq!(spec_patch(&current, &current.spec), None);
}

#[test]
fn evaluations_come_from_the_deployment_watcher_at_the_jobs_priority() {
    let mut job = job(2);
    job.spec.priority = Some(70);
    let request = evaluation_request(&job);
    assert_eq!(
        request.triggered_by,
        caravan_schemas::evaluation::TriggeredBy::DeploymentWatcher
    );
    assert_eq!((request.priority, request.job_version), (70, 1));
}

#[test]
fn progress_deadlines_round_fractions_up() {
    assert_eq!(progress_deadline(&update(0, "0", false, false)), 0);
    assert_eq!(progress_deadline(&update(0, "500ms", false, false)), 1);
    assert_eq!(progress_deadline(&update(0, "1m30s", false, false)), 90);
    let unset = UpdateStrategy::default();
    assert_eq!(progress_deadline(&unset), 600);
}
