//! Per-group facts the rules read: what the allocations of a deployment add up to, the
//! group's progress deadline, and the state a group starts from.

use std::collections::BTreeMap;

use caravan_schemas::deployment::DeploymentGroupState;
use caravan_schemas::duration::parse_duration;
use caravan_schemas::job::{UpdateStrategy, defaults};
use caravan_schemas::{Allocation, JobSpec};

use crate::scheduler::time::{format_rfc3339, parse_rfc3339};

/// What the allocations of one group of a deployment add up to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Allocations placed under the deployment, stopped ones included.
    pub placed: u32,
    /// Placed allocations reported healthy.
    pub healthy: u32,
    /// Placed allocations reported unhealthy.
    pub unhealthy: u32,
    /// Healthy allocations still running (not stopped, not ended).
    pub live_healthy: u32,
    /// Names of the canaries, sorted.
    pub canaries: Vec<String>,
    /// Canaries healthy and still running.
    pub live_healthy_canaries: u32,
    /// Whether a canary was reported unhealthy.
    pub unhealthy_canary: bool,
    /// The latest time (Unix seconds) an allocation was reported healthy.
    pub last_healthy: Option<i64>,
}

/// Tallies the allocations placed under deployment `name`, by group; groups not in `groups`
/// are left out (they are not rolled out by it).
pub fn tally<'a>(
    name: &str,
    groups: &BTreeMap<String, UpdateStrategy>,
    allocs: impl IntoIterator<Item = &'a Allocation>,
) -> BTreeMap<String, Tally> {
    let mut tallies: BTreeMap<String, Tally> = groups
        .keys()
        .map(|group| (group.clone(), Tally::default()))
        .collect();
    for alloc in allocs {
        if alloc.spec.deployment_name.as_deref() != Some(name) {
            continue;
        }
        let Some(tally) = tallies.get_mut(&alloc.spec.group) else {
            continue;
        };
        let health = alloc
            .status
            .as_ref()
            .and_then(|s| s.deployment_status.as_ref());
        let canary = health.is_some_and(|h| h.canary);
        let healthy = health.and_then(|h| h.healthy);
        tally.placed = tally.placed.saturating_add(1);
        if canary {
            tally.canaries.push(alloc.metadata.name().to_string());
        }
        match healthy {
            Some(true) => {
                tally.healthy = tally.healthy.saturating_add(1);
                if !alloc.is_terminal() {
                    tally.live_healthy = tally.live_healthy.saturating_add(1);
                    if canary {
                        tally.live_healthy_canaries = tally.live_healthy_canaries.saturating_add(1);
                    }
                }
                let at = health
                    .and_then(|h| h.timestamp.as_deref())
                    .and_then(parse_rfc3339);
                tally.last_healthy = tally.last_healthy.max(at);
            }
            Some(false) => {
                tally.unhealthy = tally.unhealthy.saturating_add(1);
                tally.unhealthy_canary |= canary;
            }
            None => {}
        }
    }
    for tally in tallies.values_mut() {
        tally.canaries.sort();
    }
    tallies
}

/// The group's progress deadline in whole seconds (a fraction counts as a second), Nomad's
/// 10 minutes when unset; `0` means none: the first unhealthy allocation fails the deployment.
pub fn progress_deadline(update: &UpdateStrategy) -> i64 {
    let fallback = defaults::update_strategy().progress_deadline;
    let raw = update.progress_deadline.as_deref().or(fallback.as_deref());
    let Some(duration) = raw.and_then(|raw| parse_duration(raw).ok()) else {
        return 0;
    };
    let secs = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
    if duration.subsec_nanos() > 0 {
        secs.saturating_add(1)
    } else {
        secs
    }
}

/// `from + seconds` as RFC 3339, or `None` without a deadline (`seconds == 0`) or past the
/// representable range.
pub fn deadline_after(from: i64, seconds: i64) -> Option<String> {
    if seconds <= 0 {
        return None;
    }
    from.checked_add(seconds).map(format_rfc3339)
}

/// The state a group of a deployment starts from, when the deployment has none yet: its
/// count from the job (when given, else what it is now), its canaries and a deadline
/// `progressDeadline` after `start`.
pub fn initial_group(
    update: &UpdateStrategy,
    group: Option<u32>,
    start: i64,
) -> DeploymentGroupState {
    DeploymentGroupState {
        desired_total: group.unwrap_or_default(),
        desired_canaries: update.canary.unwrap_or_default(),
        auto_revert: update.auto_revert.unwrap_or_default(),
        require_progress_by: deadline_after(start, progress_deadline(update)),
        ..DeploymentGroupState::default()
    }
}

/// The count of group `name` in `spec`, Nomad's 1 when unset.
pub fn group_count(spec: &JobSpec, name: &str) -> Option<u32> {
    spec.groups
        .iter()
        .find(|g| g.name == name)
        .map(|g| g.count.unwrap_or(defaults::COUNT))
}

/// Whether the group reached its healthy allocations with its canaries promoted (or none):
/// its deadline no longer applies.
pub fn is_complete(state: &DeploymentGroupState, tally: &Tally) -> bool {
    (state.desired_canaries == 0 || state.promoted) && tally.live_healthy >= state.desired_total
}

/// Whether the group waits for a promotion with every canary healthy: Nomad does not fail a
/// deployment at its deadline for that.
pub fn awaits_promotion(state: &DeploymentGroupState, tally: &Tally) -> bool {
    state.desired_canaries > 0
        && !state.promoted
        && tally.live_healthy_canaries >= state.desired_canaries
}

/// When the group must have made progress (Unix seconds), if its deadline applies now: it has
/// one, and is neither complete nor only waiting for a promotion.
pub fn deadline(
    update: &UpdateStrategy,
    state: &DeploymentGroupState,
    tally: &Tally,
) -> Option<i64> {
    if progress_deadline(update) == 0 || is_complete(state, tally) || awaits_promotion(state, tally)
    {
        return None;
    }
    state.require_progress_by.as_deref().and_then(parse_rfc3339)
}
