//! Reconciliation of one task group: classify its allocations, fix the count, pick updates.

use std::sync::Arc;

use caravan_schemas::allocation::ClientStatus;
use caravan_schemas::deployment::DeploymentState;
use caravan_schemas::job::TaskGroup;
use caravan_schemas::naming::parse_index;
use caravan_schemas::{Allocation, Deployment, Job};

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

/// The rolling update's parallelism: `None` (unlimited) without an `update` block, with
/// `maxParallel: 0` and for batch jobs, as in Nomad.
fn max_parallel(group: &TaskGroup, batch: bool) -> Option<usize> {
    if batch {
        return None;
    }
    match group.update.as_ref().and_then(|u| u.max_parallel) {
        Some(0) | None => None,
        Some(n) => Some(n as usize),
    }
}

/// Whether a new-version allocation still counts against the rolling update's parallelism:
/// until it is healthy (an unhealthy one holds its place), or, when nobody tracks its health
/// (no deployment), while it is pending.
fn in_flight(alloc: &Allocation) -> bool {
    match reported_health(alloc) {
        Some(healthy) => !healthy,
        None => {
            alloc.spec.deployment_name.is_some() || alloc.client_status() == ClientStatus::Pending
        }
    }
}

/// Whether an allocation serves: healthy, or running where nobody tracks its health.
fn serving(alloc: &Allocation) -> bool {
    match reported_health(alloc) {
        Some(healthy) => healthy,
        None => alloc.spec.deployment_name.is_none(),
    }
}

/// The health an allocation's node agent (or an operator) reported, when it did.
fn reported_health(alloc: &Allocation) -> Option<bool> {
    alloc
        .status
        .as_ref()
        .and_then(|s| s.deployment_status.as_ref())
        .and_then(|d| d.healthy)
}

fn is_canary(alloc: &Allocation) -> bool {
    alloc
        .status
        .as_ref()
        .and_then(|s| s.deployment_status.as_ref())
        .is_some_and(|d| d.canary)
}

/// How the deployment of the job's current version steers one group.
#[derive(Clone, Copy, Debug, Default)]
struct Rollout<'a> {
    /// The deployment, when it names this group.
    deployment: Option<&'a Deployment>,
    /// Canaries wanted before the rolling update proceeds, while not promoted.
    canaries: usize,
    /// Paused or failed: no replacements and no canaries are placed.
    held: bool,
    /// The canaries failed before promotion: they are stopped.
    drop_canaries: bool,
}

impl<'a> Rollout<'a> {
    fn of(deployment: Option<&'a Deployment>, job: &Job, group: &TaskGroup) -> Self {
        let Some(deployment) = deployment.filter(|d| {
            d.spec.job_version == job.version() && d.spec.groups.contains_key(&group.name)
        }) else {
            return Rollout::default();
        };
        let state = deployment.state();
        let failed = state == DeploymentState::Failed || deployment.spec.is_failed();
        let paused = state == DeploymentState::Paused || deployment.spec.is_paused();
        let promoted = deployment.promoted(&group.name);
        let desired = deployment
            .group(&group.name)
            .map_or(0, |g| g.desired_canaries as usize);
        Rollout {
            deployment: Some(deployment),
            canaries: if deployment.is_active() && !promoted {
                desired
            } else {
                0
            },
            held: failed || paused,
            drop_canaries: desired > 0
                && !promoted
                && (failed || state == DeploymentState::Cancelled),
        }
    }

    /// Whether `alloc` is a canary of this deployment.
    fn owns_canary(&self, alloc: &Allocation) -> bool {
        is_canary(alloc)
            && self.deployment.is_some_and(|d| {
                alloc.spec.deployment_name.as_deref() == d.metadata.name.as_deref()
            })
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
    let rollout = Rollout::of(rec.deployment, job, group);
    let mut slots = classify(rec, job, group, allocs, results, &mut updates);
    let canaries = set_canaries_aside(&rollout, &mut slots, results, &mut updates);
    let mut names = mark_duplicates(&mut slots);
    let excess = scale_down(&mut slots, count, &mut names, results, &mut updates);
    let budget = destructive_budget((group, job.version()), rec.batch, &rollout, &slots);
    let mut place_new = carry_out_fates(group, &slots, budget, &mut names, results, &mut updates);
    place_canaries(
        group,
        &rollout,
        &slots,
        &canaries,
        &mut place_new,
        &mut updates,
    );
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
                    // A failed service allocation of an older version is replaced by the
                    // current one (a revert brings back what failed), paced like any update.
                    Reschedule::Never if !rec.batch && alloc.spec.job_version != version => {
                        Fate::Destructive
                    }
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

/// While canaries are wanted, this deployment's canaries stand beside the group's slots (they
/// neither count toward nor are stopped by its count) and are returned; once promoted they
/// are slots like the others (and the old allocations of their indexes, duplicates, go on
/// scale down). Canaries of a deployment that failed unpromoted are stopped.
fn set_canaries_aside<'a>(
    rollout: &Rollout<'_>,
    slots: &mut Vec<Slot<'a>>,
    results: &mut ReconcileResults,
    updates: &mut DesiredUpdates,
) -> Vec<Slot<'a>> {
    if rollout.canaries == 0 && !rollout.drop_canaries {
        return Vec::new();
    }
    let (canaries, rest): (Vec<_>, Vec<_>) = std::mem::take(slots)
        .into_iter()
        .partition(|s| s.fate == Fate::Keep && rollout.owns_canary(s.alloc));
    *slots = rest;
    for canary in &canaries {
        if rollout.drop_canaries {
            results.stop.push(StopRequest {
                alloc: Arc::clone(canary.alloc),
                description: reasons::CANARY_OF_FAILED,
                client_status: None,
            });
            updates.stop += 1;
        } else {
            results.ignore.push(Arc::clone(canary.alloc));
            updates.ignore += 1;
        }
    }
    if rollout.drop_canaries {
        Vec::new()
    } else {
        canaries
    }
}

/// Places the canaries still missing, each with the index of an allocation it will replace.
fn place_canaries(
    group: &TaskGroup,
    rollout: &Rollout<'_>,
    slots: &[Slot<'_>],
    canaries: &[Slot<'_>],
    place_new: &mut Vec<PlaceRequest>,
    updates: &mut DesiredUpdates,
) {
    if rollout.held || canaries.len() >= rollout.canaries {
        return;
    }
    let taken: Vec<u32> = canaries.iter().filter_map(|c| c.index).collect();
    let mut to_replace: Vec<u32> = slots
        .iter()
        .filter(|s| !s.removed && s.fate == Fate::Destructive)
        .filter_map(|s| s.index)
        .filter(|i| !taken.contains(i))
        .collect();
    // Nothing left to replace: no canaries needed.
    if to_replace.is_empty() && canaries.is_empty() {
        return;
    }
    to_replace.sort_unstable();
    to_replace.dedup();
    let missing = rollout.canaries - canaries.len();
    for index in to_replace.into_iter().take(missing) {
        place_new.push(PlaceRequest {
            group: group.name.clone(),
            index,
            previous: None,
            stop_previous: None,
            reschedule: false,
            canary: true,
        });
        updates.canary += 1;
    }
}

/// Takes every slot's index, slots at the current version first (a promoted canary keeps the
/// index it shares with the allocation it replaces); duplicate or missing indexes are marked,
/// the first to go on scale down.
fn mark_duplicates(slots: &mut [Slot<'_>]) -> NameIndex {
    let mut names = NameIndex::default();
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|&i| slots[i].fate != Fate::Keep);
    for i in order {
        let slot = &mut slots[i];
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
/// when unlimited; none while canaries are wanted or the deployment is paused or failed.
fn destructive_budget(
    (group, version): (&TaskGroup, i64),
    batch: bool,
    rollout: &Rollout<'_>,
    slots: &[Slot<'_>],
) -> Option<usize> {
    if rollout.held || rollout.canaries > 0 {
        return Some(0);
    }
    max_parallel(group, batch).map(|limit| {
        // Every allocation of the current version not healthy yet holds its place, a failed
        // or unhealthy one too: a bad version never replaces more than the limit.
        let busy = slots
            .iter()
            .filter(|s| !s.removed && s.alloc.spec.job_version == version && in_flight(s.alloc))
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
    // Old allocations that are not healthy are replaced first: that costs no serving one.
    let mut kept: Vec<&Slot<'_>> = slots.iter().filter(|s| !s.removed).collect();
    kept.sort_by_key(|s| s.fate == Fate::Destructive && serving(s.alloc));
    for slot in kept {
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
                    canary: false,
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
                    canary: false,
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
                    canary: false,
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
            canary: false,
        });
        updates.place += 1;
    }
}
