//! The restart policy, as Nomad's `RestartTracker` applies it: within each `interval`, up to
//! `attempts` restarts after `delay` (plus up to 25 % jitter); past that, `mode: fail` gives up
//! and `mode: delay` waits for the interval to end. Pure: the caller passes `now` and the
//! jitter draw.

use std::time::{Duration, Instant};

use caravan_schemas::job::RestartMode;

/// The restart policy of one task, with Nomad's defaults already filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub attempts: u32,
    pub interval: Duration,
    pub delay: Duration,
    pub mode: RestartMode,
    /// Restart a task that exited successfully (service and system tasks, sidecars); batch
    /// tasks and prestart hooks that succeed are done.
    pub on_success: bool,
}

/// How the last run of a task ended, as far as restarting is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The task exited with code 0 and no signal.
    Succeeded,
    /// The task exited otherwise, or its driver lost it.
    Failed,
    /// The driver could not start the task, but might next time.
    StartFailed,
    /// The task's configuration cannot work: never restart.
    Unrecoverable,
}

/// What to do after a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start the task again after `delay`.
    Restart { delay: Duration, reason: String },
    /// Done, successfully: the task is dead and did not fail.
    Terminated,
    /// Give up: the task is dead and failed.
    NotRestarting { reason: String },
}

/// Counts restarts within the policy's interval.
#[derive(Clone, Debug)]
pub struct Tracker {
    policy: Policy,
    window_start: Instant,
    count: u32,
}

impl Tracker {
    pub fn new(policy: Policy, now: Instant) -> Self {
        Self {
            policy,
            window_start: now,
            count: 0,
        }
    }

    /// Decides what follows `outcome`. `jitter` in `[0, 1)` scales the up-to-25 % random part
    /// of the delay.
    pub fn next(&mut self, outcome: Outcome, now: Instant, jitter: f64) -> Decision {
        let policy = self.policy;
        if outcome == Outcome::Unrecoverable {
            return Decision::NotRestarting {
                reason: "Error was unrecoverable".into(),
            };
        }
        if outcome == Outcome::Succeeded && !policy.on_success {
            return Decision::Terminated;
        }
        if policy.attempts == 0 {
            return match outcome {
                Outcome::Succeeded => Decision::Terminated,
                _ => Decision::NotRestarting {
                    reason: "Policy allows no restarts".into(),
                },
            };
        }
        let end = self.window_start + policy.interval;
        if now > end {
            self.count = 0;
            self.window_start = now;
        }
        self.count += 1;
        if self.count > policy.attempts {
            return match policy.mode {
                RestartMode::Fail => Decision::NotRestarting {
                    reason: format!(
                        "Exceeded allowed attempts {} in interval {} and mode is \"fail\"",
                        policy.attempts,
                        humantime::format_duration(policy.interval)
                    ),
                },
                RestartMode::Delay => Decision::Restart {
                    delay: (self.window_start + policy.interval).saturating_duration_since(now),
                    reason: "Exceeded allowed attempts, applying a delay".into(),
                },
            };
        }
        let jitter = jitter.clamp(0.0, 1.0) * 0.25;
        Decision::Restart {
            delay: policy.delay + policy.delay.mul_f64(jitter),
            reason: "Restart within policy".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: u32, mode: RestartMode, on_success: bool) -> Policy {
        Policy {
            attempts,
            interval: Duration::from_secs(60),
            delay: Duration::from_secs(1),
            mode,
            on_success,
        }
    }

    #[test]
    fn failures_restart_up_to_attempts_then_fail() {
        let now = Instant::now();
        let mut t = Tracker::new(policy(2, RestartMode::Fail, true), now);
        for _ in 0..2 {
            assert!(matches!(
                t.next(Outcome::Failed, now, 0.0),
                Decision::Restart { delay, .. } if delay == Duration::from_secs(1)
            ));
        }
        let Decision::NotRestarting { reason } = t.next(Outcome::Failed, now, 0.0) else {
            panic!("expected to give up")
        };
        assert!(reason.contains("Exceeded allowed attempts 2"), "{reason}");
    }

    #[test]
    fn a_new_interval_resets_the_count() {
        let now = Instant::now();
        let mut t = Tracker::new(policy(1, RestartMode::Fail, true), now);
        assert!(matches!(
            t.next(Outcome::Failed, now, 0.0),
            Decision::Restart { .. }
        ));
        let later = now + Duration::from_secs(61);
        assert!(matches!(
            t.next(Outcome::Failed, later, 0.0),
            Decision::Restart { .. }
        ));
        assert!(matches!(
            t.next(Outcome::Failed, later, 0.0),
            Decision::NotRestarting { .. }
        ));
    }

    #[test]
    fn delay_mode_waits_for_the_interval_end() {
        let now = Instant::now();
        let mut t = Tracker::new(policy(1, RestartMode::Delay, true), now);
        t.next(Outcome::Failed, now, 0.0);
        let at = now + Duration::from_secs(20);
        assert_eq!(
            t.next(Outcome::Failed, at, 0.0),
            Decision::Restart {
                delay: Duration::from_secs(40),
                reason: "Exceeded allowed attempts, applying a delay".into()
            }
        );
    }

    #[test]
    fn success_ends_batch_tasks_and_restarts_services() {
        let now = Instant::now();
        let mut batch = Tracker::new(policy(3, RestartMode::Fail, false), now);
        assert_eq!(
            batch.next(Outcome::Succeeded, now, 0.0),
            Decision::Terminated
        );
        let mut service = Tracker::new(policy(3, RestartMode::Fail, true), now);
        assert!(matches!(
            service.next(Outcome::Succeeded, now, 0.0),
            Decision::Restart { .. }
        ));
    }

    #[test]
    fn jitter_adds_at_most_a_quarter_and_config_errors_never_restart() {
        let now = Instant::now();
        let mut t = Tracker::new(policy(5, RestartMode::Fail, true), now);
        let Decision::Restart { delay, .. } = t.next(Outcome::StartFailed, now, 0.999) else {
            panic!()
        };
        assert!(delay >= Duration::from_secs(1) && delay <= Duration::from_millis(1250));
        assert!(matches!(
            t.next(Outcome::Unrecoverable, now, 0.0),
            Decision::NotRestarting { .. }
        ));
        let mut none = Tracker::new(policy(0, RestartMode::Fail, true), now);
        assert!(matches!(
            none.next(Outcome::Failed, now, 0.0),
            Decision::NotRestarting { .. }
        ));
    }
}
