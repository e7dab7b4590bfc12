use caravan_schemas::NameMap;

use caravan_schemas::allocation::{RescheduleEvent, RescheduleTracker, TaskState};
use caravan_schemas::mock;

use super::*;
use crate::scheduler::time::format_rfc3339;

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200;
const MINUTE: i64 = 60;
const HOUR: i64 = 3600;

/// An unlimited policy with `function`, `delay` and `max_delay`.
fn unlimited(function: DelayFunction, delay: &str, max_delay: &str) -> ReschedulePolicy {
    ReschedulePolicy {
        attempts: Some(0),
        interval: Some("0s".into()),
        delay: Some(delay.into()),
        delay_function: Some(function),
        max_delay: Some(max_delay.into()),
        unlimited: Some(true),
    }
}

/// `attempts` reschedules per `interval`, with `function`, `delay` and a one-hour ceiling.
fn limited(
    attempts: u32,
    interval: &str,
    function: DelayFunction,
    delay: &str,
) -> ReschedulePolicy {
    ReschedulePolicy {
        attempts: Some(attempts),
        interval: Some(interval.into()),
        delay: Some(delay.into()),
        delay_function: Some(function),
        max_delay: Some("1h".into()),
        unlimited: Some(false),
    }
}

fn event(at: i64, delay: Option<&str>) -> RescheduleEvent {
    RescheduleEvent {
        reschedule_time: format_rfc3339(at),
        prev_alloc_name: format!("prev-{at}"),
        prev_node_name: "n0".into(),
        delay: delay.map(str::to_string),
    }
}

/// A failed allocation whose status changed at `failed` (`None`: no time known), rescheduled
/// before by `events`.
fn failed_with(failed: Option<i64>, events: Vec<RescheduleEvent>) -> Allocation {
    let job = mock::job("web");
    let mut alloc = mock::allocation("a", &job, &mock::node("n1"));
    let status = alloc.status.get_or_insert_default();
    status.modify_time = failed.map(format_rfc3339);
    status.task_states.clear();
    alloc.spec.reschedule_tracker = Some(RescheduleTracker { events });
    alloc
}

/// A failed allocation (at `failed`) rescheduled before at each of `times`, delays unrecorded.
fn failed_at_times(failed: i64, times: &[i64]) -> Allocation {
    failed_with(
        Some(failed),
        times.iter().map(|t| event(*t, None)).collect(),
    )
}

/// The delay `reschedule_time` gives an allocation failing at `T0` after `previous`
/// reschedules, all at `T0` (so none is old enough to reset a capped delay).
fn delay_after(policy: Option<&ReschedulePolicy>, job_type: JobType, previous: usize) -> i64 {
    let alloc = failed_at_times(T0, &vec![T0; previous]);
    match reschedule_time(&alloc, policy, job_type, T0) {
        Reschedule::Later(at) => at - T0,
        Reschedule::Now => 0,
        Reschedule::Never => panic!("{previous} previous reschedules: never"),
    }
}

fn delays(policy: &ReschedulePolicy, reschedules: usize) -> Vec<i64> {
    (0..reschedules)
        .map(|n| delay_after(Some(policy), JobType::Service, n))
        .collect()
}

#[test]
fn constant_delay_never_grows() {
    let policy = unlimited(DelayFunction::Constant, "15s", "1m");
    assert_eq!(delays(&policy, 6), [15, 15, 15, 15, 15, 15]);
}

#[test]
fn exponential_delay_doubles_per_reschedule_up_to_max_delay() {
    let policy = unlimited(DelayFunction::Exponential, "10s", "5m");
    assert_eq!(delays(&policy, 8), [10, 20, 40, 80, 160, 300, 300, 300]);
    // Far down the series the ceiling still holds (no overflow).
    assert_eq!(delay_after(Some(&policy), JobType::Service, 80), 300);
}

#[test]
fn fibonacci_delay_follows_the_sequence_up_to_max_delay() {
    let policy = unlimited(DelayFunction::Fibonacci, "10s", "2m");
    assert_eq!(delays(&policy, 9), [10, 10, 20, 30, 50, 80, 120, 120, 120]);
    assert_eq!(delay_after(Some(&policy), JobType::Service, 100), 120);
}

#[test]
fn growing_delays_without_max_delay_are_not_capped() {
    let exponential = unlimited(DelayFunction::Exponential, "5s", "0s");
    assert_eq!(delays(&exponential, 8), [5, 10, 20, 40, 80, 160, 320, 640]);
    let fibonacci = unlimited(DelayFunction::Fibonacci, "5s", "0s");
    assert_eq!(delays(&fibonacci, 9), [5, 5, 10, 15, 25, 40, 65, 105, 170]);
}

#[test]
fn later_is_the_failure_time_plus_the_delay() {
    let policy = unlimited(DelayFunction::Constant, "30s", "0s");
    let alloc = failed_at_times(T0, &[]);
    let at = |now| reschedule_time(&alloc, Some(&policy), JobType::Service, now);
    assert_eq!(at(T0 - 5), Reschedule::Later(T0 + 30));
    assert_eq!(at(T0 + 1), Reschedule::Later(T0 + 30));
    assert_eq!(at(T0 + 29), Reschedule::Later(T0 + 30));
    assert_eq!(at(T0 + 30), Reschedule::Now);
    assert_eq!(at(T0 + HOUR), Reschedule::Now);

    // The failure time is the last task finish when tasks report one.
    let mut finished = failed_at_times(T0, &[]);
    let states = &mut finished.status.get_or_insert_default().task_states;
    *states = NameMap::from([
        (
            "a".to_string(),
            TaskState {
                finished_at: Some(format_rfc3339(T0 + 100)),
                ..TaskState::default()
            },
        ),
        (
            "b".to_string(),
            TaskState {
                finished_at: Some(format_rfc3339(T0 + 40)),
                ..TaskState::default()
            },
        ),
    ]);
    assert_eq!(
        reschedule_time(&finished, Some(&policy), JobType::Service, T0 + 120),
        Reschedule::Later(T0 + 130)
    );

    // Without any failure time there is nothing to wait from.
    let unknown = failed_with(None, Vec::new());
    assert_eq!(
        reschedule_time(&unknown, Some(&policy), JobType::Service, T0),
        Reschedule::Now
    );
}

#[test]
fn only_reschedules_within_the_interval_count_against_attempts() {
    let policy = limited(2, "1h", DelayFunction::Constant, "5s");
    let at = |times: &[i64]| {
        reschedule_time(
            &failed_at_times(T0, times),
            Some(&policy),
            JobType::Service,
            T0,
        )
    };
    assert_eq!(at(&[]), Reschedule::Later(T0 + 5));
    assert_eq!(at(&[T0 - 10 * MINUTE]), Reschedule::Later(T0 + 5));
    // Two within the hour: exhausted.
    assert_eq!(at(&[T0 - 50 * MINUTE, T0 - 10 * MINUTE]), Reschedule::Never);
    // One of them older than the interval: one attempt left.
    assert_eq!(
        at(&[T0 - 2 * HOUR, T0 - 30 * MINUTE]),
        Reschedule::Later(T0 + 5)
    );
    assert_eq!(
        at(&[T0 - 5 * HOUR, T0 - 4 * HOUR, T0 - 3 * HOUR, T0 - 2 * HOUR]),
        Reschedule::Later(T0 + 5)
    );
    // A reschedule exactly one interval before the failure is outside it.
    assert_eq!(at(&[T0 - HOUR, T0 - 10]), Reschedule::Later(T0 + 5));
    assert_eq!(at(&[T0 - HOUR + 1, T0 - 10]), Reschedule::Never);
}

#[test]
fn the_interval_is_measured_back_from_the_failure_not_from_now() {
    let policy = limited(2, "1h", DelayFunction::Constant, "5s");
    let exhausted = failed_at_times(T0, &[T0 - 30 * MINUTE, T0 - 20 * MINUTE]);
    // Evaluated hours later, the allocation that ran out of attempts stays failed.
    for now in [T0, T0 + 2 * HOUR, T0 + 48 * HOUR] {
        assert_eq!(
            reschedule_time(&exhausted, Some(&policy), JobType::Service, now),
            Reschedule::Never,
            "now = T0 + {}s",
            now - T0
        );
    }
}

#[test]
fn zero_attempts_without_unlimited_never_reschedules() {
    let policy = limited(0, "1h", DelayFunction::Constant, "5s");
    assert_eq!(
        reschedule_time(
            &failed_at_times(T0, &[]),
            Some(&policy),
            JobType::Service,
            T0
        ),
        Reschedule::Never
    );
}

#[test]
fn unlimited_ignores_attempts_and_interval() {
    let mut policy = unlimited(DelayFunction::Constant, "5s", "0s");
    policy.attempts = Some(1);
    policy.interval = Some("1h".into());
    let times: Vec<i64> = (0..20).map(|i| T0 - i).collect();
    assert_eq!(
        reschedule_time(
            &failed_at_times(T0, &times),
            Some(&policy),
            JobType::Service,
            T0
        ),
        Reschedule::Later(T0 + 5)
    );
}

#[test]
fn a_delay_that_outlasts_the_interval_is_not_rescheduled() {
    // 3 attempts per 2 minutes, 30s doubling: the third delay (120s) no longer fits.
    let policy = limited(3, "2m", DelayFunction::Exponential, "30s");
    let at = |times: &[i64]| {
        reschedule_time(
            &failed_at_times(T0, times),
            Some(&policy),
            JobType::Service,
            T0,
        )
    };
    assert_eq!(at(&[]), Reschedule::Later(T0 + 30));
    assert_eq!(at(&[T0 - 10]), Reschedule::Later(T0 + 60));
    assert_eq!(at(&[T0 - 20, T0 - 10]), Reschedule::Never);
}

#[test]
fn a_capped_delay_resets_after_running_longer_than_max_delay() {
    for function in [DelayFunction::Exponential, DelayFunction::Fibonacci] {
        let policy = unlimited(function, "10s", "100s");
        let after = |last: i64| {
            let mut times = vec![T0 - 10 * HOUR; 9];
            times.push(last);
            reschedule_time(
                &failed_at_times(T0, &times),
                Some(&policy),
                JobType::Service,
                T0,
            )
        };
        // Rescheduled 100s before failing: still at the ceiling.
        assert_eq!(after(T0 - 100), Reschedule::Later(T0 + 100), "{function:?}");
        // Ran longer than the ceiling: back to the first delay.
        assert_eq!(after(T0 - 101), Reschedule::Later(T0 + 10), "{function:?}");
    }
    // Below the ceiling, however long it ran, the series goes on.
    let policy = unlimited(DelayFunction::Exponential, "10s", "100s");
    let alloc = failed_at_times(T0, &[T0 - 10 * HOUR, T0 - 5 * HOUR]);
    assert_eq!(
        reschedule_time(&alloc, Some(&policy), JobType::Service, T0),
        Reschedule::Later(T0 + 40)
    );
}

#[test]
fn recorded_delays_continue_a_series_started_again() {
    let ago = T0 - 10;
    let exponential = unlimited(DelayFunction::Exponential, "10s", "100s");
    let events = vec![event(ago, Some("1m40s")), event(ago, Some("10s"))];
    assert_eq!(next_delay(&exponential, &events, Some(T0)), 20);

    let fibonacci = unlimited(DelayFunction::Fibonacci, "10s", "100s");
    let restarted = vec![
        event(ago, Some("80s")),
        event(ago, Some("100s")),
        event(ago, Some("10s")),
    ];
    assert_eq!(next_delay(&fibonacci, &restarted, Some(T0)), 10);
    let next = vec![
        event(ago, Some("100s")),
        event(ago, Some("10s")),
        event(ago, Some("10s")),
    ];
    assert_eq!(next_delay(&fibonacci, &next, Some(T0)), 20);
    let unrecorded = vec![event(ago, None); 3];
    assert_eq!(next_delay(&fibonacci, &unrecorded, Some(T0)), 30);
}

#[test]
fn service_default_is_30s_exponential_up_to_an_hour_unlimited() {
    let defaults: Vec<i64> = (0..10)
        .map(|n| delay_after(None, JobType::Service, n))
        .collect();
    assert_eq!(
        defaults,
        [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    );
    // Unlimited: hundreds of recent reschedules still leave one more.
    assert_eq!(delay_after(None, JobType::Service, 300), 3600);
}

#[test]
fn batch_default_is_one_attempt_per_day_after_5s() {
    let at = |times: &[i64], now| {
        reschedule_time(&failed_at_times(T0, times), None, JobType::Batch, now)
    };
    assert_eq!(at(&[], T0), Reschedule::Later(T0 + 5));
    assert_eq!(at(&[], T0 + 5), Reschedule::Now);
    assert_eq!(at(&[T0 - 23 * HOUR], T0), Reschedule::Never);
    assert_eq!(at(&[T0 - 23 * HOUR], T0 + 2 * HOUR), Reschedule::Never);
    // A day later the attempt is available again, after the same constant 5s.
    assert_eq!(at(&[T0 - 25 * HOUR], T0), Reschedule::Later(T0 + 5));
    assert_eq!(
        at(&[T0 - 50 * HOUR, T0 - 25 * HOUR], T0),
        Reschedule::Later(T0 + 5)
    );
}

#[test]
fn system_jobs_are_never_rescheduled() {
    for job_type in [JobType::System, JobType::Sysbatch] {
        assert_eq!(
            reschedule_time(&failed_at_times(T0, &[]), None, job_type, T0 + HOUR),
            Reschedule::Never
        );
    }
}

#[test]
fn service_default_waits_then_reschedules() {
    let alloc = failed_at_times(T0, &[]);
    assert_eq!(
        reschedule_time(&alloc, None, JobType::Service, T0 + 5),
        Reschedule::Later(T0 + 30)
    );
    assert_eq!(
        reschedule_time(&alloc, None, JobType::Service, T0 + 31),
        Reschedule::Now
    );
    let twice = failed_at_times(T0, &[T0, T0]);
    assert_eq!(
        reschedule_time(&twice, None, JobType::Service, T0),
        Reschedule::Later(T0 + 120)
    );
}
