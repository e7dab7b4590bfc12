//! Reschedule policy of failed allocations: whether attempts remain in the window, and when
//! the next attempt may run (constant, exponential or fibonacci delay), after Nomad's
//! `Allocation.NextRescheduleTime` and `Allocation.NextDelay`.

use caravan_schemas::Allocation;
use caravan_schemas::allocation::RescheduleEvent;
use caravan_schemas::duration::parse_duration;
use caravan_schemas::job::{DelayFunction, JobType, ReschedulePolicy, defaults};

use crate::scheduler::time::parse_rfc3339;

/// When a failed allocation may be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reschedule {
    /// Now.
    Now,
    /// At this Unix time.
    Later(i64),
    /// Never: attempts are exhausted or the policy forbids it.
    Never,
}

fn seconds(raw: Option<&str>) -> i64 {
    raw.and_then(|d| parse_duration(d).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The reschedule events of the allocations `alloc` replaces.
fn events(alloc: &Allocation) -> &[RescheduleEvent] {
    alloc
        .spec
        .reschedule_tracker
        .as_ref()
        .map(|t| t.events.as_slice())
        .unwrap_or_default()
}

/// The delay, in seconds, the replacement of failed `alloc` waited under `policy` (the type's
/// default when `None`): what its reschedule event records.
pub fn delay_of(alloc: &Allocation, policy: Option<&ReschedulePolicy>, job_type: JobType) -> i64 {
    let default = defaults::reschedule_policy(job_type);
    policy.or(default.as_ref()).map_or(0, |policy| {
        next_delay(policy, events(alloc), failed_at(alloc))
    })
}

/// Time the allocation failed: its status time, or the latest task finish.
fn failed_at(alloc: &Allocation) -> Option<i64> {
    let status = alloc.status.as_ref()?;
    let finished = status
        .task_states
        .values()
        .filter_map(|t| t.finished_at.as_deref().and_then(parse_rfc3339))
        .max();
    finished.or_else(|| status.modify_time.as_deref().and_then(parse_rfc3339))
}

/// The delay the `index`-th reschedule (from 0) waits when no reset happened: `base` for
/// constant, `base·2^index` for exponential, the `index`-th of `base, base, 2·base, 3·base,
/// 5·base, …` for fibonacci, never more than `max` (when `max > 0`).
fn series_delay(function: DelayFunction, base: i64, max: i64, index: usize) -> i64 {
    let cap = |delay: i64| if max > 0 { delay.min(max) } else { delay };
    match function {
        DelayFunction::Constant => base,
        DelayFunction::Exponential => cap(base.saturating_mul(1i64 << index.min(40))),
        DelayFunction::Fibonacci => {
            let (mut previous, mut current) = (base, base);
            for _ in 1..index {
                if max > 0 && current >= max {
                    break;
                }
                (previous, current) = (current, previous.saturating_add(current));
            }
            cap(current)
        }
    }
}

/// Nomad's `NextDelay`, in seconds: how long an allocation that failed at `failed_at`, after
/// the reschedules in `events`, waits before its next reschedule. Each step follows the delay
/// the previous reschedules waited (recorded in their events, or else their place in the
/// series); a delay above `maxDelay` is capped, and resets to `delay` when the allocation ran
/// longer than `maxDelay` since its last reschedule, which starts a new series.
pub fn next_delay(
    policy: &ReschedulePolicy,
    events: &[RescheduleEvent],
    failed_at: Option<i64>,
) -> i64 {
    let base = seconds(policy.delay.as_deref());
    let max = seconds(policy.max_delay.as_deref());
    let function = policy.delay_function.unwrap_or_default();
    let Some(last) = events.last() else {
        return base;
    };
    let waited = |index: usize| {
        events[index]
            .delay
            .as_deref()
            .and_then(|d| parse_duration(d).ok())
            .map_or_else(
                || series_delay(function, base, max, index),
                |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            )
    };
    let n = events.len();
    let delay = match function {
        DelayFunction::Constant => return base,
        DelayFunction::Exponential => waited(n - 1).saturating_mul(2),
        DelayFunction::Fibonacci if n >= 2 => {
            let (last, before) = (waited(n - 1), waited(n - 2));
            // A reset right after the ceiling starts the series again: base, base, 2·base, …
            if before == max && last == base {
                last
            } else {
                last.saturating_add(before)
            }
        }
        DelayFunction::Fibonacci => base,
    };
    if max > 0 && delay > max {
        let ran = failed_at
            .zip(parse_rfc3339(&last.reschedule_time))
            .map(|(failed, rescheduled)| failed - rescheduled);
        return if ran.is_some_and(|ran| ran > max) {
            base
        } else {
            max
        };
    }
    delay
}

/// Decides when `alloc` (failed) may be rescheduled under `policy` (the type's default when
/// `None`).
///
/// Unless the policy is `unlimited`, only the reschedules less than `interval` before the
/// failure count against `attempts` (an `interval` of 0 counts them all), and once the
/// allocation was rescheduled, the next delay must be shorter than `interval`.
pub fn reschedule_time(
    alloc: &Allocation,
    policy: Option<&ReschedulePolicy>,
    job_type: JobType,
    now_unix: i64,
) -> Reschedule {
    let default = defaults::reschedule_policy(job_type);
    let Some(policy) = policy.or(default.as_ref()) else {
        return Reschedule::Never;
    };
    let events = events(alloc);
    let failed = failed_at(alloc);
    let delay = next_delay(policy, events, failed);
    if !policy.unlimited.unwrap_or(false) {
        let attempts = policy.attempts.unwrap_or(0);
        let interval = seconds(policy.interval.as_deref());
        let reference = failed.unwrap_or(now_unix);
        let recent = events
            .iter()
            .filter(|e| {
                interval == 0
                    || parse_rfc3339(&e.reschedule_time).is_none_or(|t| reference - t < interval)
            })
            .count();
        if recent >= attempts as usize {
            return Reschedule::Never;
        }
        if interval > 0 && !events.is_empty() && delay >= interval {
            return Reschedule::Never;
        }
    }
    match failed.map(|at| at.saturating_add(delay)) {
        Some(at) if at > now_unix => Reschedule::Later(at),
        _ => Reschedule::Now,
    }
}

#[cfg(test)]
mod tests;
