//! Reconciliation of one task group: classify its allocations, fix the count, pick updates.

use std::sync::Arc;

use caravan_schemas::allocation::ClientStatus;
use caravan_schemas::job::TaskGroup;
use caravan_schemas::naming::parse_index;
use caravan_schemas::{Allocation, Job};

use super::reschedule::{Reschedule, reschedule_time};
use super::{AllocReconciler, NodeTaint, PlaceRequest, ReconcileResults, StopRequest, reasons};
use crate::scheduler::DesiredUpdates;
use crate::scheduler::naming::NameIndex;

/// What happens to one existing allocation that holds a slot of the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Current version, healthy node: keep.
    Keep,
    /// Older version, same tasks: update in place.
    InPlace,
    /// Older version, changed tasks: replace.
    Destructive,
    /// Node down: stop and replace.
    Lost,
    /// Node draining: stop and replace elsewhere.
    Migrate,
    /// Failed, may be replaced now.
    Reschedule,
    /// Failed, may be replaced later.
    RescheduleLater(i64),
    /// Finished for good (batch complete, failed without attempts left): holds its slot.
    Done,
}

impl Fate {
    /// Lower sorts first when choosing what to remove on scale down.
    fn removal_rank(self) -> u8 {
        match self {
            Fate::Lost | Fate::Migrate | Fate::Reschedule | Fate::RescheduleLater(_) => 0,
            Fate::Destructive => 1,
            Fate::InPlace | Fate::Keep => 2,
            Fate::Done => 3,
        }
    }
}

/// One existing allocation that holds a slot of the group, and what becomes of it.
struct Slot<'a> {
    alloc: &'a Arc<Allocation>,
    /// Its index in `<job>.<group>[<index>]`, when its name carries one.
    index: Option<u32>,
    fate: Fate,
    /// Its index is missing or already held by an earlier slot.
    duplicate: bool,
    /// Stopped by the scale down.
    removed: bool,
}

fn max_parallel(group: &TaskGroup, batch: bool) -> Option<usize> {
    if batch {
        return None;
    }
    match group.update.as_ref().and_then(|u| u.max_parallel) {
        Some(0) => None,
        Some(n) => Some(n as usize),
        None => Some(1),
    }
}

/// Whether a new-version allocation still counts against the rolling update's parallelism.
fn in_flight(alloc: &Allocation) -> bool {
    let healthy = alloc
        .status
        .as_ref()
        .and_then(|s| s.deployment_status.as_ref())
        .and_then(|d| d.healthy);
    match healthy {
        Some(healthy) => !healthy,
        None => alloc.client_status() == ClientStatus::Pending,
    }
}

pub(super) fn reconcile_group(
    rec: &AllocReconciler<'_>,
    job: &Job,
    group: &TaskGroup,
    allocs: &[&Arc<Allocation>],
    results: &mut ReconcileResults,
) -> DesiredUpdates {
    let mut updates = DesiredUpdates::default();
    // Admission refuses more; a job stored before that limit existed is held to it here.
    let count = group
        .count
        .unwrap_or(1)
        .min(u32::try_from(caravan_schemas::limits::MAX_GROUP_COUNT).unwrap_or(u32::MAX))
        as usize;
    let mut slots = classify(rec, job, group, allocs, results, &mut updates);
    let mut names = mark_duplicates(&mut slots);
    let excess = scale_down(&mut slots, count, &mut names, results, &mut updates);
    let budget = destructive_budget(group, rec.batch, &slots);
    let mut place_new = carry_out_fates(group, &slots, budget, &mut names, results, &mut updates);
    scale_up(
        group,
        count,
        slots.len() - excess,
        &mut names,
        &mut place_new,
        &mut updates,
    );
    results.place.extend(place_new);
    updates
}

/// Gives each allocation of the group the servers still want running its [`Fate`]; those that
/// hold no slot (a completed service allocation) are ignored right away.
fn classify<'a>(
    rec: &AllocReconciler<'_>,
    job: &Job,
    group: &TaskGroup,
    allocs: &[&'a Arc<Allocation>],
    results: &mut ReconcileResults,
    updates: &mut DesiredUpdates,
) -> Vec<Slot<'a>> {
    let version = job.version();
    let job_type = job.spec.job_type();
    let mut old_jobs: Vec<(i64, Option<Arc<Job>>)> = Vec::new();

    let mut slots: Vec<Slot<'_>> = Vec::with_capacity(allocs.len());
    for &alloc in allocs {
        if alloc.is_server_terminal() {
            continue;
        }
        let taint = rec.tainted.get(&alloc.spec.node_name).copied();
        let fate = match alloc.client_status() {
            ClientStatus::Complete if rec.batch => Some(Fate::Done),
            ClientStatus::Complete => None,
            ClientStatus::Failed => Some(
                match reschedule_time(alloc, group.reschedule.as_ref(), job_type, rec.now_unix) {
                    Reschedule::Now => Fate::Reschedule,
                    Reschedule::Later(at) => Fate::RescheduleLater(at),
                    Reschedule::Never => Fate::Done,
                },
            ),
            ClientStatus::Lost => Some(Fate::Lost),
            ClientStatus::Pending | ClientStatus::Running | ClientStatus::Unknown => match taint {
                Some(NodeTaint::Down) => Some(Fate::Lost),
                // The drainer paces migrations (migrate.maxParallel, health, deadline) by
                // marking the allocations it moves; the others stay until marked.
                Some(NodeTaint::Draining) if alloc.spec.should_migrate() => Some(Fate::Migrate),
                _ if alloc.spec.job_version == version => Some(Fate::Keep),
                _ => Some(update_fate(rec, job, group, alloc, &mut old_jobs)),
            },
        };
        match fate {
            Some(fate) => slots.push(Slot {
                alloc,
                index: parse_index(alloc.metadata.name()),
                fate,
                duplicate: false,
                removed: false,
            }),
            None => {
                results.ignore.push(Arc::clone(alloc));
                updates.ignore += 1;
            }
        }
    }
    slots
}

/// How a live allocation of an older job version is updated: in place when the group's tasks
/// did not change, destructively otherwise (or when that version is gone). `old_jobs` keeps
/// the versions looked up so far.
fn update_fate(
    rec: &AllocReconciler<'_>,
    job: &Job,
    group: &TaskGroup,
    alloc: &Allocation,
    old_jobs: &mut Vec<(i64, Option<Arc<Job>>)>,
) -> Fate {
    let old_version = alloc.spec.job_version;
    let old_job = match old_jobs.iter().find(|(v, _)| *v == old_version) {
        Some((_, job)) => job.clone(),
        None => {
            let found = (rec.job_version)(old_version);
            old_jobs.push((old_version, found.clone()));
            found
        }
    };
    let old_group = old_job.as_ref().and_then(|j| {
        j.spec
            .groups
            .iter()
            .find(|g| g.name == group.name)
            .map(|g| (j, g))
    });
    match old_group {
        Some((old_job, old_group)) if !super::tasks_updated(old_job, old_group, job, group) => {
            Fate::InPlace
        }
        _ => Fate::Destructive,
    }
}

/// Takes every slot's index; duplicate or missing indexes are marked, the first to go on
/// scale down.
fn mark_duplicates(slots: &mut [Slot<'_>]) -> NameIndex {
    let mut names = NameIndex::default();
    for slot in slots.iter_mut() {
        slot.duplicate = slot.index.is_none_or(|index| !names.take(index));
    }
    names
}

/// Scale down to `count`: stops the cheapest slots, highest index first, and frees their
/// indexes; returns how many were removed.
fn scale_down(
    slots: &mut [Slot<'_>],
    count: usize,
    names: &mut NameIndex,
    results: &mut ReconcileResults,
    updates: &mut DesiredUpdates,
) -> usize {
    let removable = slots.iter().filter(|s| s.fate != Fate::Done).count();
    let excess = slots.len().saturating_sub(count).min(removable);
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|&i| {
        let slot = &slots[i];
        (
            slot.fate.removal_rank(),
            !slot.duplicate,
            std::cmp::Reverse(slot.index.unwrap_or(u32::MAX)),
        )
    });
    for &i in order.iter().take(excess) {
        let slot = &mut slots[i];
        slot.removed = true;
        if let Some(index) = slot.index
            && !slot.duplicate
        {
            names.release(index);
        }
        results.stop.push(StopRequest {
            alloc: Arc::clone(slot.alloc),
            description: reasons::NOT_NEEDED,
            client_status: None,
        });
        updates.stop += 1;
    }
    excess
}

/// Rolling update budget: max_parallel minus new-version allocations not yet healthy; `None`
/// when unlimited.
fn destructive_budget(group: &TaskGroup, batch: bool, slots: &[Slot<'_>]) -> Option<usize> {
    max_parallel(group, batch).map(|limit| {
        let busy = slots
            .iter()
            .filter(|s| !s.removed && s.fate == Fate::Keep && in_flight(s.alloc))
            .count();
        limit.saturating_sub(busy)
    })
}

/// Carries out the fate of every slot the scale down kept: ignore, reschedule later, update in
/// place, replace within the `budget`, stop and replace lost or migrating allocations,
/// reschedule failed ones. Returns the new placements, which go after the replacements.
fn carry_out_fates(
    group: &TaskGroup,
    slots: &[Slot<'_>],
    mut budget: Option<usize>,
    names: &mut NameIndex,
    results: &mut ReconcileResults,
    updates: &mut DesiredUpdates,
) -> Vec<PlaceRequest> {
    let mut place_new = Vec::new();
    for slot in slots.iter().filter(|s| !s.removed) {
        let alloc = slot.alloc;
        // A replacement keeps the index of what it replaces, or takes a fresh one.
        let index_for = |names: &mut NameIndex| match slot.index {
            Some(index) if !slot.duplicate => index,
            _ => names.next(1).first().copied().unwrap_or_default(),
        };
        match slot.fate {
            Fate::Keep | Fate::Done => {
                results.ignore.push(Arc::clone(alloc));
                updates.ignore += 1;
            }
            Fate::RescheduleLater(at) => {
                results.reschedule_later.push((Arc::clone(alloc), at));
                results.ignore.push(Arc::clone(alloc));
                updates.ignore += 1;
            }
            Fate::InPlace => {
                results.inplace_update.push(Arc::clone(alloc));
                updates.in_place_update += 1;
            }
            Fate::Destructive => {
                if budget.is_some_and(|b| b == 0) {
                    results.ignore.push(Arc::clone(alloc));
                    updates.ignore += 1;
                    continue;
                }
                if let Some(budget) = budget.as_mut() {
                    *budget -= 1;
                }
                results.destructive_update.push(PlaceRequest {
                    group: group.name.clone(),
                    index: index_for(names),
                    previous: Some(Arc::clone(alloc)),
                    stop_previous: Some(reasons::UPDATING),
                    reschedule: false,
                });
                updates.destructive_update += 1;
            }
            Fate::Lost | Fate::Migrate => {
                let (why, lost, counter) = if slot.fate == Fate::Lost {
                    (reasons::LOST, Some(ClientStatus::Lost), &mut updates.place)
                } else {
                    (reasons::MIGRATING, None, &mut updates.migrate)
                };
                *counter += 1;
                results.stop.push(StopRequest {
                    alloc: Arc::clone(alloc),
                    description: why,
                    // A lost allocation that already reported an end keeps its own status.
                    client_status: lost.filter(|_| !alloc.is_client_terminal()),
                });
                place_new.push(PlaceRequest {
                    group: group.name.clone(),
                    index: index_for(names),
                    previous: Some(Arc::clone(alloc)),
                    stop_previous: None,
                    reschedule: false,
                });
            }
            Fate::Reschedule => {
                updates.reschedule += 1;
                place_new.push(PlaceRequest {
                    group: group.name.clone(),
                    index: index_for(names),
                    previous: Some(Arc::clone(alloc)),
                    stop_previous: Some(reasons::RESCHEDULED),
                    reschedule: true,
                });
            }
        }
    }
    place_new
}

/// Scale up from `live` slots to `count`: fresh indexes, lowest free first.
fn scale_up(
    group: &TaskGroup,
    count: usize,
    live: usize,
    names: &mut NameIndex,
    place_new: &mut Vec<PlaceRequest>,
    updates: &mut DesiredUpdates,
) {
    if live >= count {
        return;
    }
    for index in names.next(count - live) {
        place_new.push(PlaceRequest {
            group: group.name.clone(),
            index,
            previous: None,
            stop_previous: None,
            reschedule: false,
        });
        updates.place += 1;
    }
}
