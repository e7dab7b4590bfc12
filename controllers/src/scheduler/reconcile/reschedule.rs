//! Reschedule policy of failed allocations: whether attempts remain in the window, and when
//! the next attempt may run (constant, exponential or fibonacci delay).

use caravan_schemas::Allocation;
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

/// Decides when `alloc` (failed) may be rescheduled under `policy` (the type's default when
/// `None`).
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
    let unlimited = policy.unlimited.unwrap_or(false);
    let events = alloc
        .spec
        .reschedule_tracker
        .as_ref()
        .map(|t| t.events.as_slice())
        .unwrap_or_default();
    if !unlimited {
        let attempts = policy.attempts.unwrap_or(0);
        let interval = seconds(policy.interval.as_deref());
        let recent = events
            .iter()
            .filter(|e| {
                interval == 0
                    || parse_rfc3339(&e.reschedule_time).is_none_or(|t| now_unix - t < interval)
            })
            .count();
        if recent >= attempts as usize {
            return Reschedule::Never;
        }
    }
    let base = seconds(policy.delay.as_deref());
    let max = seconds(policy.max_delay.as_deref());
    let n = events.len();
    let delay = match policy.delay_function.unwrap_or_default() {
        DelayFunction::Constant => base,
        DelayFunction::Exponential => base.saturating_mul(1i64 << n.min(40)),
        DelayFunction::Fibonacci => {
            let (mut a, mut b) = (base, base);
            for _ in 1..n {
                (a, b) = (b, a.saturating_add(b));
            }
            if n == 0 { a } else { b }
        }
    };
    let delay = if max > 0 { delay.min(max) } else { delay };
    match failed_at(alloc) {
        Some(at) if at + delay > now_unix => Reschedule::Later(at + delay),
        _ => Reschedule::Now,
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::allocation::{RescheduleEvent, RescheduleTracker};
    use caravan_schemas::mock;

    use super::*;

    fn failed(at: &str, previous: usize) -> Allocation {
        let job = mock::job("web");
        let mut alloc = mock::allocation("a", &job, &mock::node("n1"));
        alloc.status.get_or_insert_default().modify_time = Some(at.into());
        alloc.spec.reschedule_tracker = Some(RescheduleTracker {
            events: (0..previous)
                .map(|i| RescheduleEvent {
                    reschedule_time: "2024-01-01T00:00:00Z".into(),
                    prev_alloc_name: format!("p{i}"),
                    prev_node_name: "n0".into(),
                    delay: None,
                })
                .collect(),
        });
        alloc
    }

    #[test]
    fn service_default_waits_then_reschedules() {
        let t0 = parse_rfc3339("2024-01-01T00:00:00Z").unwrap_or_default();
        let alloc = failed("2024-01-01T00:00:00Z", 0);
        assert_eq!(
            reschedule_time(&alloc, None, JobType::Service, t0 + 5),
            Reschedule::Later(t0 + 30)
        );
        assert_eq!(
            reschedule_time(&alloc, None, JobType::Service, t0 + 31),
            Reschedule::Now
        );
        let twice = failed("2024-01-01T00:00:00Z", 2);
        assert_eq!(
            reschedule_time(&twice, None, JobType::Service, t0),
            Reschedule::Later(t0 + 120)
        );
    }

    #[test]
    fn batch_default_allows_one_attempt_per_day() {
        let t0 = parse_rfc3339("2024-01-01T00:00:00Z").unwrap_or_default();
        assert_eq!(
            reschedule_time(
                &failed("2024-01-01T00:00:00Z", 0),
                None,
                JobType::Batch,
                t0 + 10
            ),
            Reschedule::Now
        );
        assert_eq!(
            reschedule_time(
                &failed("2024-01-01T00:00:00Z", 1),
                None,
                JobType::Batch,
                t0 + 10
            ),
            Reschedule::Never
        );
        assert_eq!(
            reschedule_time(
                &failed("2024-01-01T00:00:00Z", 0),
                None,
                JobType::System,
                t0
            ),
            Reschedule::Never
        );
    }
}
