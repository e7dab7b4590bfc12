//! Tests of the plan's pure core: objects in, scheduler annotations out, no server.

use caravan_controllers::scheduler::testing::{Harness, cluster, eval_for, service_job};
use caravan_schemas::{Allocation, Job, Node};

use super::*;

/// A cluster of `nodes` nodes running `job` as the scheduler placed it.
fn running(nodes: usize, job: &Job) -> (Vec<Node>, Vec<Allocation>) {
    let mut harness = Harness::new(cluster(nodes, &["dc1"]));
    harness.state.upsert_job(job.clone());
    harness.process(&eval_for("initial", job)).unwrap();
    let nodes = harness
        .state
        .nodes()
        .iter()
        .map(|n| (**n).clone())
        .collect();
    let allocs = harness
        .state
        .allocs()
        .iter()
        .map(|a| (**a).clone())
        .collect();
    (nodes, allocs)
}

fn input(
    current: Option<&Job>,
    proposed: &Job,
    nodes: Vec<Node>,
    allocs: Vec<Allocation>,
) -> DryRunInput {
    DryRunInput {
        current: current.cloned(),
        proposed: proposed.clone(),
        nodes,
        allocs,
        index: 10,
        now_unix: 1_800_000_000,
    }
}

fn updates(result: &DryRunResult) -> DesiredUpdates {
    result.annotations.get("web").copied().unwrap_or_default()
}

#[test]
fn a_new_job_places_every_allocation() {
    let job = service_job("web", 3, 100, 64);
    let (nodes, _) = running(3, &service_job("other", 0, 100, 64));
    let result = dry_run(input(None, &job, nodes, Vec::new())).unwrap();
    assert_eq!(result.version, 0);
    assert_eq!(
        updates(&result),
        DesiredUpdates {
            place: 3,
            ..DesiredUpdates::default()
        }
    );
    assert!(result.failed.is_empty());
    assert_eq!(result.plan.map(|p| p.placed_count()), Some(3));
}

#[test]
fn an_unchanged_job_ignores_its_allocations_and_keeps_its_version() {
    let job = service_job("web", 3, 100, 64);
    let (nodes, allocs) = running(3, &job);
    let result = dry_run(input(Some(&job), &job, nodes, allocs)).unwrap();
    assert_eq!(result.version, 0);
    assert_eq!(
        updates(&result),
        DesiredUpdates {
            ignore: 3,
            ..DesiredUpdates::default()
        }
    );
    assert!(result.plan.is_none());
}

#[test]
fn scaling_up_creates_the_difference_at_the_next_version() {
    let job = service_job("web", 3, 100, 64);
    let (nodes, allocs) = running(3, &job);
    let mut bigger = job.clone();
    bigger.spec.groups[0].count = Some(4);
    let result = dry_run(input(Some(&job), &bigger, nodes, allocs)).unwrap();
    assert_eq!(result.version, 1);
    let got = updates(&result);
    assert_eq!(got.place, 1, "{got:?}");
    assert_eq!(got.place + got.ignore + got.in_place_update, 4, "{got:?}");
}

#[test]
fn a_changed_task_replaces_allocations() {
    let job = service_job("web", 2, 100, 64);
    let (nodes, allocs) = running(2, &job);
    let mut changed = job.clone();
    changed.spec.groups[0].tasks[0]
        .env
        .insert("NEW".into(), "1".into());
    let result = dry_run(input(Some(&job), &changed, nodes, allocs)).unwrap();
    let got = updates(&result);
    // The update strategy's maxParallel (1) limits replacements per evaluation, as in Nomad.
    assert_eq!((got.destructive_update, got.ignore), (1, 1), "{got:?}");
    assert_eq!(result.version, 1);
}

#[test]
fn placements_that_do_not_fit_are_reported_with_their_metrics() {
    let job = service_job("web", 2, 100, 1_000_000);
    let (nodes, _) = running(2, &service_job("other", 0, 100, 64));
    let result = dry_run(input(None, &job, nodes, Vec::new())).unwrap();
    assert_eq!(updates(&result).place, 2);
    let metrics = result.failed.get("web").expect("the group failed");
    assert_eq!(metrics.coalesced_failures, 1);
    assert_eq!(metrics.nodes_exhausted, 2);
    assert_eq!(metrics.dimension_exhausted.get("memory"), Some(&2));
    assert!(result.plan.is_none());
}

#[test]
fn versions_follow_spec_changes() {
    let mut job = service_job("web", 1, 100, 64);
    job.status.get_or_insert_default().version = 4;
    let mut same = job.clone();
    same.status = None;
    assert_eq!(next_version(Some(&job), &same), 4);
    let mut changed = same.clone();
    changed.spec.priority = Some(70);
    assert_eq!(next_version(Some(&job), &changed), 5);
    changed.status.get_or_insert_default().version = 5;
    assert_eq!(next_version(Some(&job), &changed), 5);
    assert_eq!(next_version(None, &same), 0);
}
