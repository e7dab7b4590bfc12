//! Reconciliation of one task group: classify its allocations, fix the count, pick updates.

use std::sync::Arc;

use caravan_schemas::allocation::ClientStatus;
use caravan_schemas::job::TaskGroup;
use caravan_schemas::{Allocation, Job};

use super::reschedule::{Reschedule, reschedule_time};
use super::{AllocReconciler, NodeTaint, PlaceRequest, ReconcileResults, StopRequest, reasons};
use crate::scheduler::DesiredUpdates;
use crate::scheduler::naming::{NameIndex, parse_index};
use crate::scheduler::util;

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

struct Slot<'a> {
    alloc: &'a Arc<Allocation>,
    index: Option<u32>,
    fate: Fate,
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
        None => util::client_status(alloc) == ClientStatus::Pending,
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
    let version = util::job_version(job);
    // Admission refuses more; a job stored before that limit existed is held to it here.
    let count = group
        .count
        .unwrap_or(1)
        .min(u32::try_from(caravan_schemas::limits::MAX_GROUP_COUNT).unwrap_or(u32::MAX))
        as usize;
    let job_type = job.spec.job_type();
    let mut old_groups: Vec<(i64, Option<Arc<Job>>)> = Vec::new();

    let mut slots: Vec<Slot<'_>> = Vec::with_capacity(allocs.len());
    for &alloc in allocs {
        if util::is_server_terminal(alloc) {
            continue;
        }
        let taint = rec.tainted.get(&alloc.spec.node_name).copied();
        let fate = match util::client_status(alloc) {
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
                _ => {
                    let old_version = alloc.spec.job_version;
                    let old_job = match old_groups.iter().find(|(v, _)| *v == old_version) {
                        Some((_, job)) => job.clone(),
                        None => {
                            let found = (rec.job_version)(old_version);
                            old_groups.push((old_version, found.clone()));
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
                        Some((old_job, old_group))
                            if !super::tasks_updated(old_job, old_group, job, group) =>
                        {
                            Some(Fate::InPlace)
                        }
                        _ => Some(Fate::Destructive),
                    }
                }
            },
        };
        match fate {
            Some(fate) => slots.push(Slot {
                alloc,
                index: parse_index(util::name(&alloc.metadata)),
                fate,
            }),
            None => {
                results.ignore.push(Arc::clone(alloc));
                updates.ignore += 1;
            }
        }
    }

    // Duplicate or missing indexes are the first to go on scale down.
    let mut names = NameIndex::default();
    let mut duplicate = vec![false; slots.len()];
    for (i, slot) in slots.iter().enumerate() {
        duplicate[i] = slot.index.is_none_or(|index| !names.take(index));
    }

    // Scale down: remove the cheapest slots, highest index first.
    let removable = slots.iter().filter(|s| s.fate != Fate::Done).count();
    let excess = slots.len().saturating_sub(count).min(removable);
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|&i| {
        let slot = &slots[i];
        (
            slot.fate.removal_rank(),
            !duplicate[i],
            std::cmp::Reverse(slot.index.unwrap_or(u32::MAX)),
        )
    });
    let mut removed = vec![false; slots.len()];
    for &i in order.iter().take(excess) {
        removed[i] = true;
        let slot = &slots[i];
        if let Some(index) = slot.index
            && !duplicate[i]
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

    // Rolling update budget: max_parallel minus new-version allocations not yet healthy.
    let mut destructive_budget = max_parallel(group, rec.batch).map(|limit| {
        let busy = slots
            .iter()
            .zip(&removed)
            .filter(|(s, r)| !**r && s.fate == Fate::Keep && in_flight(s.alloc))
            .count();
        limit.saturating_sub(busy)
    });

    let mut place_new = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        if removed[i] {
            continue;
        }
        let alloc = slot.alloc;
        // A replacement keeps the index of what it replaces, or takes a fresh one.
        let index_for = |names: &mut NameIndex| match slot.index {
            Some(index) if !duplicate[i] => index,
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
                if destructive_budget.is_some_and(|b| b == 0) {
                    results.ignore.push(Arc::clone(alloc));
                    updates.ignore += 1;
                    continue;
                }
                if let Some(budget) = destructive_budget.as_mut() {
                    *budget -= 1;
                }
                results.destructive_update.push(PlaceRequest {
                    group: group.name.clone(),
                    index: index_for(&mut names),
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
                    client_status: lost.filter(|_| !util::is_client_terminal(alloc)),
                });
                place_new.push(PlaceRequest {
                    group: group.name.clone(),
                    index: index_for(&mut names),
                    previous: Some(Arc::clone(alloc)),
                    stop_previous: None,
                    reschedule: false,
                });
            }
            Fate::Reschedule => {
                updates.reschedule += 1;
                place_new.push(PlaceRequest {
                    group: group.name.clone(),
                    index: index_for(&mut names),
                    previous: Some(Arc::clone(alloc)),
                    stop_previous: Some(reasons::RESCHEDULED),
                    reschedule: true,
                });
            }
        }
    }

    // Scale up: fresh indexes, lowest free first.
    let live = slots.len() - excess;
    if live < count {
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
    results.place.extend(place_new);
    updates
}
