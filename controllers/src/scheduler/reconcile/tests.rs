use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::naming::{alloc_object_name, parse_index};
use caravan_schemas::{Allocation, Job, mock};

use super::*;
use crate::scheduler::util::Rng;

fn job(count: u32, version: i64) -> Job {
    let mut job = mock::job("web");
    job.spec.groups[0].count = Some(count);
    job.spec.groups[0].update = Some(caravan_schemas::job::defaults::update_strategy());
    job.status.get_or_insert_default().version = version;
    job
}

fn alloc(job: &Job, index: u32, node: &str, version: i64, status: ClientStatus) -> Arc<Allocation> {
    let mut a = mock::allocation(
        &alloc_object_name("web", "web", index, &[node, &version.to_string()]),
        job,
        &mock::node(node),
    );
    a.spec.job_version = version;
    a.status.get_or_insert_default().client_status = status;
    Arc::new(a)
}

fn reconcile(
    job: Option<&Job>,
    allocs: &[Arc<Allocation>],
    tainted: &HashMap<String, NodeTaint>,
    old: Option<Job>,
) -> ReconcileResults {
    let old = old.map(Arc::new);
    let versions = move |v: i64| old.clone().filter(|j| j.version() == v);
    AllocReconciler {
        job,
        batch: false,
        allocs,
        tainted,
        job_version: &versions,
        deployment: None,
        now_unix: 0,
    }
    .compute()
}

fn indexes(places: &[PlaceRequest]) -> Vec<u32> {
    places.iter().map(|p| p.index).collect()
}

#[test]
fn a_count_past_the_limit_stored_before_it_existed_places_at_most_the_limit() {
    let job = job(1_000_000_000, 0);
    let results = reconcile(Some(&job), &[], &HashMap::new(), None);
    let limit = caravan_schemas::limits::MAX_GROUP_COUNT as usize;
    assert_eq!(results.place.len(), limit);
    assert_eq!(results.desired_tg_updates["web"].place as usize, limit);
}

#[test]
fn places_count_allocations_with_indexes() {
    let job = job(3, 0);
    let results = reconcile(Some(&job), &[], &HashMap::new(), None);
    assert_eq!(indexes(&results.place), [0, 1, 2]);
    assert_eq!(results.desired_tg_updates["web"].place, 3);
}

#[test]
fn scale_up_reuses_free_indexes() {
    let job = job(4, 0);
    let allocs = [
        alloc(&job, 0, "n1", 0, ClientStatus::Running),
        alloc(&job, 2, "n1", 0, ClientStatus::Running),
    ];
    let results = reconcile(Some(&job), &allocs, &HashMap::new(), None);
    assert_eq!(indexes(&results.place), [1, 3]);
    assert_eq!(results.ignore.len(), 2);
}

#[test]
fn scale_down_stops_highest_indexes() {
    let job = job(2, 0);
    let allocs: Vec<_> = (0..4)
        .map(|i| alloc(&job, i, "n1", 0, ClientStatus::Running))
        .collect();
    let results = reconcile(Some(&job), &allocs, &HashMap::new(), None);
    let stopped: BTreeSet<_> = results
        .stop
        .iter()
        .filter_map(|s| parse_index(s.alloc.metadata.name()))
        .collect();
    assert_eq!(stopped, BTreeSet::from([2, 3]));
    assert!(results.place.is_empty());
}

#[test]
fn stopped_or_deleted_job_stops_everything() {
    let mut job = job(2, 0);
    let allocs: Vec<_> = (0..2)
        .map(|i| alloc(&job, i, "n1", 0, ClientStatus::Running))
        .collect();
    assert_eq!(
        reconcile(None, &allocs, &HashMap::new(), None).stop.len(),
        2
    );
    job.spec.stop = true;
    let results = reconcile(Some(&job), &allocs, &HashMap::new(), None);
    assert_eq!(results.stop.len(), 2);
    assert_eq!(results.stop[0].description, reasons::JOB_STOPPED);
}

#[test]
fn lost_allocations_are_stopped_and_replaced_with_the_same_index() {
    let job = job(2, 0);
    let allocs = [
        alloc(&job, 0, "n1", 0, ClientStatus::Running),
        alloc(&job, 1, "n2", 0, ClientStatus::Running),
    ];
    let tainted = HashMap::from([("n2".to_string(), NodeTaint::Down)]);
    let results = reconcile(Some(&job), &allocs, &tainted, None);
    assert_eq!(results.stop.len(), 1);
    assert_eq!(results.stop[0].description, reasons::LOST);
    assert_eq!(indexes(&results.place), [1]);
    assert!(results.place[0].previous.is_some());
}

#[test]
fn draining_allocations_migrate_when_the_drainer_marks_them() {
    let job = job(3, 0);
    let allocs: Vec<_> = (0..3)
        .map(|i| {
            let mut a = alloc(&job, i, "n1", 0, ClientStatus::Running);
            if i == 0 {
                Arc::make_mut(&mut a).spec.desired_transition =
                    Some(caravan_schemas::allocation::DesiredTransition {
                        migrate: Some(true),
                    });
            }
            a
        })
        .collect();
    let tainted = HashMap::from([("n1".to_string(), NodeTaint::Draining)]);
    let results = reconcile(Some(&job), &allocs, &tainted, None);
    assert_eq!(results.desired_tg_updates["web"].migrate, 1);
    assert_eq!(results.place.len(), 1);
    assert_eq!(
        results.place[0]
            .previous
            .as_deref()
            .map(|a| a.metadata.name.clone()),
        Some(allocs[0].metadata.name.clone())
    );
    assert_eq!(results.ignore.len(), 2);
}

#[test]
fn failed_allocations_are_rescheduled() {
    let job = job(1, 0);
    let allocs = [alloc(&job, 0, "n1", 0, ClientStatus::Failed)];
    let results = reconcile(Some(&job), &allocs, &HashMap::new(), None);
    assert_eq!(results.place.len(), 1);
    assert!(results.place[0].reschedule);
    assert_eq!(results.place[0].stop_previous, Some(reasons::RESCHEDULED));
}

#[test]
fn count_change_is_in_place_and_task_change_is_destructive() {
    let old = job(2, 0);
    let allocs: Vec<_> = (0..2)
        .map(|i| alloc(&old, i, "n1", 0, ClientStatus::Running))
        .collect();

    let scaled = job(2, 1);
    let results = reconcile(Some(&scaled), &allocs, &HashMap::new(), Some(old.clone()));
    assert_eq!(results.inplace_update.len(), 2);
    assert!(results.destructive_update.is_empty());

    let mut changed = job(2, 1);
    changed.spec.groups[0].tasks[0]
        .env
        .insert("NEW".into(), "1".into());
    let results = reconcile(Some(&changed), &allocs, &HashMap::new(), Some(old));
    assert_eq!(results.destructive_update.len(), 1, "max_parallel 1");
    assert_eq!(results.ignore.len(), 1);
    assert_eq!(results.desired_tg_updates["web"].destructive_update, 1);
}

#[test]
fn rolling_update_waits_for_pending_new_allocations() {
    let old = job(2, 0);
    let new = job(2, 1);
    let allocs = [
        alloc(&new, 0, "n1", 1, ClientStatus::Pending),
        alloc(&old, 1, "n1", 0, ClientStatus::Running),
    ];
    let results = reconcile(Some(&new), &allocs, &HashMap::new(), None);
    assert!(results.destructive_update.is_empty());
    let allocs = [
        alloc(&new, 0, "n1", 1, ClientStatus::Running),
        alloc(&old, 1, "n1", 0, ClientStatus::Running),
    ];
    let results = reconcile(Some(&new), &allocs, &HashMap::new(), None);
    assert_eq!(results.destructive_update.len(), 1);
}

/// Property: every live allocation lands in exactly one bucket, and applying the results
/// leaves exactly `count` allocations with distinct indexes.
#[test]
fn reconcile_covers_every_allocation_exactly_once() {
    let statuses = [
        ClientStatus::Pending,
        ClientStatus::Running,
        ClientStatus::Running,
        ClientStatus::Complete,
        ClientStatus::Failed,
        ClientStatus::Lost,
    ];
    for seed in 0..500u64 {
        let mut rng = Rng::new(seed);
        let count = rng.below(8) as u32;
        let old = job(count, 0);
        let mut new = job(count, 1);
        if rng.below(2) == 0 {
            new.spec.groups[0].tasks[0]
                .env
                .insert("V".into(), "2".into());
        }
        let current = if rng.below(3) == 0 { &old } else { &new };
        let n = rng.below(10);
        let mut allocs = Vec::new();
        for _ in 0..n {
            let index = rng.below(10) as u32;
            let version = rng.below(2) as i64;
            let node = format!("n{}", rng.below(4));
            let status = statuses[rng.below(statuses.len())];
            let mut a = (*alloc(&old, index, &node, version, status)).clone();
            a.metadata.name = Some(alloc_object_name(
                "web",
                "web",
                index,
                &[&seed.to_string(), &allocs.len().to_string()],
            ));
            if rng.below(8) == 0 {
                a.spec.desired_status = Some(DesiredStatus::Stop);
            }
            allocs.push(Arc::new(a));
        }
        let mut tainted = HashMap::new();
        if rng.below(2) == 0 {
            tainted.insert("n0".to_string(), NodeTaint::Down);
        }
        if rng.below(2) == 0 {
            tainted.insert("n1".to_string(), NodeTaint::Draining);
        }
        let results = reconcile(Some(current), &allocs, &tainted, Some(old.clone()));

        // Exactly one bucket per non-server-terminal allocation.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut mark =
            |a: &Arc<Allocation>| *seen.entry(a.metadata.name().to_string()).or_default() += 1;
        results.ignore.iter().for_each(&mut mark);
        results.inplace_update.iter().for_each(&mut mark);
        results.stop.iter().for_each(|s| mark(&s.alloc));
        for p in results.destructive_update.iter().chain(&results.place) {
            if p.stop_previous.is_some() {
                mark(p.previous.as_ref().expect("stop_previous implies previous"));
            }
        }
        for a in &allocs {
            let name = a.metadata.name().to_string();
            let want = usize::from(!a.is_server_terminal());
            assert_eq!(
                seen.get(&name).copied().unwrap_or(0),
                want,
                "seed {seed}: {name}"
            );
        }

        // Resulting slots: ignored allocations that still hold one, plus updates and placements.
        let holds_slot = |a: &Arc<Allocation>| {
            !matches!(
                a.client_status(),
                ClientStatus::Complete | ClientStatus::Lost
            )
        };
        let mut slots: Vec<Option<u32>> = results
            .ignore
            .iter()
            .filter(|a| holds_slot(a))
            .map(|a| parse_index(a.metadata.name()))
            .collect();
        slots.extend(
            results
                .inplace_update
                .iter()
                .map(|a| parse_index(a.metadata.name())),
        );
        slots.extend(
            results
                .destructive_update
                .iter()
                .chain(&results.place)
                .map(|p| Some(p.index)),
        );
        assert_eq!(slots.len(), count as usize, "seed {seed}");
    }
}
