//! The reconciler under a deployment: canaries, promotion, pacing, pause and failure (cases
//! after Nomad's `reconcile_test.go`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use caravan_schemas::allocation::{AllocDeploymentStatus, ClientStatus};
use caravan_schemas::deployment::{DeploymentGroupState, DeploymentState, DeploymentStatus};
use caravan_schemas::job::defaults;
use caravan_schemas::naming::alloc_object_name;
use caravan_schemas::{Allocation, Deployment, DeploymentSpec, Job, ObjectMeta, mock};

use super::*;

/// Version `version` of a job of `count` allocations with `maxParallel` and `canary`; every
/// version has other tasks than the one before it.
fn job(count: u32, version: i64, max_parallel: u32, canary: u32) -> Job {
    let mut job = mock::job("web");
    let group = &mut job.spec.groups[0];
    group.count = Some(count);
    group.update = Some(caravan_schemas::job::UpdateStrategy {
        max_parallel: Some(max_parallel),
        canary: Some(canary),
        ..defaults::update_strategy()
    });
    group.tasks[0]
        .env
        .insert("VERSION".into(), version.to_string());
    job.status.get_or_insert_default().version = version;
    job
}

fn deployment(job: &Job, canaries: u32, promoted: bool, state: DeploymentState) -> Deployment {
    let group = &job.spec.groups[0];
    Deployment {
        metadata: ObjectMeta {
            name: Some(format!("web-v{}", job.version())),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            job_name: "web".into(),
            job_version: job.version(),
            groups: BTreeMap::from([(
                group.name.clone(),
                group.update.clone().unwrap_or_default(),
            )]),
            ..DeploymentSpec::default()
        },
        status: Some(DeploymentStatus {
            status: state,
            groups: BTreeMap::from([(
                group.name.clone(),
                DeploymentGroupState {
                    desired_total: group.count.unwrap_or(1),
                    desired_canaries: canaries,
                    promoted,
                    ..DeploymentGroupState::default()
                },
            )]),
            ..DeploymentStatus::default()
        }),
        ..Deployment::default()
    }
}

/// A running allocation of `job` at `index`; `health` and `canary` as its deployment status
/// says, in deployment `web-v<version>` when it has a health to track.
fn alloc(job: &Job, index: u32, health: Option<bool>, canary: bool) -> Arc<Allocation> {
    let version = job.version();
    let mut a = mock::allocation(
        &alloc_object_name(
            "web",
            "web",
            index,
            &[&version.to_string(), &canary.to_string()],
        ),
        job,
        &mock::node("n1"),
    );
    a.spec.job_version = version;
    let status = a.status.get_or_insert_default();
    status.client_status = ClientStatus::Running;
    if health.is_some() || canary {
        a.spec.deployment_name = Some(format!("web-v{version}"));
        status.deployment_status = Some(AllocDeploymentStatus {
            healthy: health,
            canary,
            timestamp: None,
        });
    }
    Arc::new(a)
}

fn reconcile(
    job: &Job,
    old: &Job,
    allocs: &[Arc<Allocation>],
    deployment: Option<&Deployment>,
) -> ReconcileResults {
    let old = Arc::new(old.clone());
    let versions = move |v: i64| Some(old.clone()).filter(|j| j.version() == v);
    AllocReconciler {
        job: Some(job),
        batch: false,
        allocs,
        tainted: &HashMap::new(),
        job_version: &versions,
        deployment,
        now_unix: 0,
    }
    .compute()
}

fn old_allocs(old: &Job, count: u32) -> Vec<Arc<Allocation>> {
    (0..count)
        .map(|i| alloc(old, i, Some(true), false))
        .collect()
}

#[test]
fn canaries_are_placed_beside_the_old_allocations_and_nothing_is_replaced() {
    let (old, new) = (job(6, 0, 2, 1), job(6, 1, 2, 1));
    let d = deployment(&new, 1, false, DeploymentState::Running);
    let results = reconcile(&new, &old, &old_allocs(&old, 6), Some(&d));
    assert_eq!(results.place.len(), 1);
    let canary = &results.place[0];
    assert!(canary.canary && canary.previous.is_none());
    assert_eq!(
        canary.index, 0,
        "the canary takes the first index it will replace"
    );
    assert!(results.destructive_update.is_empty());
    assert!(results.stop.is_empty());
    assert_eq!(results.desired_tg_updates["web"].canary, 1);
    assert_eq!(results.desired_tg_updates["web"].ignore, 6);
}

#[test]
fn a_placed_canary_waits_for_promotion() {
    let (old, new) = (job(6, 0, 2, 1), job(6, 1, 2, 1));
    let d = deployment(&new, 1, false, DeploymentState::Running);
    let mut allocs = old_allocs(&old, 6);
    allocs.push(alloc(&new, 0, Some(true), true));
    let results = reconcile(&new, &old, &allocs, Some(&d));
    assert!(results.place.is_empty(), "{:?}", results.place);
    assert!(results.destructive_update.is_empty());
    assert!(results.stop.is_empty(), "{:?}", results.stop);
    assert_eq!(results.ignore.len(), 7);
}

#[test]
fn promotion_stops_what_the_canary_replaces_and_rolls_on_with_max_parallel() {
    let (old, new) = (job(6, 0, 2, 1), job(6, 1, 2, 1));
    let d = deployment(&new, 1, true, DeploymentState::Running);
    let mut allocs = old_allocs(&old, 6);
    allocs.push(alloc(&new, 0, Some(true), true));
    let results = reconcile(&new, &old, &allocs, Some(&d));
    assert_eq!(results.stop.len(), 1);
    assert_eq!(results.stop[0].alloc.spec.job_version, 0);
    assert_eq!(
        caravan_schemas::naming::parse_index(results.stop[0].alloc.metadata.name()),
        Some(0)
    );
    assert_eq!(results.destructive_update.len(), 2, "maxParallel 2");
    assert!(results.place.is_empty());
}

#[test]
fn blue_green_promotion_stops_every_old_allocation() {
    let (old, new) = (job(3, 0, 1, 3), job(3, 1, 1, 3));
    let d = deployment(&new, 3, true, DeploymentState::Running);
    let mut allocs = old_allocs(&old, 3);
    allocs.extend((0..3).map(|i| alloc(&new, i, Some(true), true)));
    let results = reconcile(&new, &old, &allocs, Some(&d));
    assert_eq!(results.stop.len(), 3);
    assert!(results.stop.iter().all(|s| s.alloc.spec.job_version == 0));
    assert!(results.destructive_update.is_empty() && results.place.is_empty());
}

#[test]
fn new_allocations_not_yet_healthy_hold_the_rolling_budget() {
    let (old, new) = (job(4, 0, 2, 0), job(4, 1, 2, 0));
    let d = deployment(&new, 0, false, DeploymentState::Running);
    let mut allocs = old_allocs(&old, 2);
    // Running but not known healthy yet, and unhealthy: both count against maxParallel.
    allocs.push(alloc(&new, 2, None, false));
    allocs.push(alloc(&new, 3, Some(false), false));
    let mut tracked = (*allocs[2]).clone();
    tracked.spec.deployment_name = Some("web-v1".into());
    allocs[2] = Arc::new(tracked);
    assert!(
        reconcile(&new, &old, &allocs, Some(&d))
            .destructive_update
            .is_empty()
    );
    // One turns healthy: one more is replaced.
    allocs[2] = alloc(&new, 2, Some(true), false);
    assert_eq!(
        reconcile(&new, &old, &allocs, Some(&d))
            .destructive_update
            .len(),
        1
    );
}

#[test]
fn a_paused_or_failed_deployment_replaces_nothing() {
    let (old, new) = (job(3, 0, 2, 0), job(3, 1, 2, 0));
    for state in [DeploymentState::Paused, DeploymentState::Failed] {
        let d = deployment(&new, 0, false, state);
        let results = reconcile(&new, &old, &old_allocs(&old, 3), Some(&d));
        assert!(results.destructive_update.is_empty(), "{state:?}");
        assert!(results.stop.is_empty(), "{state:?}");
    }
    let mut d = deployment(&new, 0, false, DeploymentState::Running);
    d.spec.paused = Some(true);
    let results = reconcile(&new, &old, &old_allocs(&old, 3), Some(&d));
    assert!(results.destructive_update.is_empty(), "paused by its spec");
}

#[test]
fn canaries_of_a_deployment_that_failed_unpromoted_are_stopped() {
    let (old, new) = (job(3, 0, 1, 1), job(3, 1, 1, 1));
    let d = deployment(&new, 1, false, DeploymentState::Failed);
    let mut allocs = old_allocs(&old, 3);
    allocs.push(alloc(&new, 0, Some(false), true));
    let results = reconcile(&new, &old, &allocs, Some(&d));
    assert_eq!(results.stop.len(), 1);
    assert!(results.stop[0].alloc.spec.job_version == 1);
    assert_eq!(results.stop[0].description, reasons::CANARY_OF_FAILED);
    assert!(results.destructive_update.is_empty() && results.place.is_empty());
}

#[test]
fn without_an_update_block_everything_is_replaced_at_once() {
    let mut old = job(4, 0, 1, 0);
    let mut new = job(4, 1, 1, 0);
    old.spec.groups[0].update = None;
    new.spec.groups[0].update = None;
    let results = reconcile(&new, &old, &old_allocs(&old, 4), None);
    assert_eq!(results.destructive_update.len(), 4);
}

/// A failed allocation of the new version, with no reschedule left.
fn failed(job: &Job, index: u32) -> Arc<Allocation> {
    let mut a = (*alloc(job, index, Some(false), false)).clone();
    a.status.get_or_insert_default().client_status = ClientStatus::Failed;
    Arc::new(a)
}

fn no_reschedule(job: &mut Job) {
    job.spec.groups[0].reschedule = Some(caravan_schemas::job::ReschedulePolicy {
        attempts: Some(0),
        unlimited: Some(false),
        ..caravan_schemas::job::ReschedulePolicy::default()
    });
}

#[test]
fn failed_allocations_of_a_bad_version_hold_the_rolling_budget() {
    let old = job(3, 0, 1, 0);
    let mut new = job(3, 1, 1, 0);
    no_reschedule(&mut new);
    let d = deployment(&new, 0, false, DeploymentState::Running);
    let mut allocs = old_allocs(&old, 2);
    allocs.push(failed(&new, 2));
    let results = reconcile(&new, &old, &allocs, Some(&d));
    assert!(
        results.destructive_update.is_empty(),
        "the failed replacement holds maxParallel: {:?}",
        results.destructive_update
    );
    assert!(results.stop.is_empty());
}

#[test]
fn failed_allocations_of_an_older_version_are_replaced_by_the_current_one() {
    // Version 1 failed everywhere; version 2 (a revert to version 0's tasks) replaces them.
    let mut bad = job(3, 1, 1, 0);
    no_reschedule(&mut bad);
    let mut reverted = job(3, 2, 1, 0);
    no_reschedule(&mut reverted);
    let d = deployment(&reverted, 0, false, DeploymentState::Running);
    let allocs: Vec<_> = (0..3).map(|i| failed(&bad, i)).collect();
    let results = reconcile(&reverted, &bad, &allocs, Some(&d));
    assert_eq!(results.destructive_update.len(), 1, "maxParallel 1");
    assert!(
        results.destructive_update[0]
            .previous
            .as_ref()
            .is_some_and(|p| p.spec.job_version == 1)
    );
}
