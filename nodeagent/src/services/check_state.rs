//! What one check's runs amount to, pure: its status after `successBeforePassing` and
//! `failuresBeforeCritical` (Consul's and Nomad's counting), and when `checkRestart` restarts
//! its task.
//!
//! ```text
//!  result passing:  successes += 1, failures = 0; successes ≥ max(successBeforePassing, 1)
//!                   ─▶ passing, else the status stays
//!  result warning or critical: failures += 1, successes = 0;
//!                   failures ≥ max(failuresBeforeCritical, 1) ─▶ the result, else the status stays
//!  restart: a status that is critical (or warning, unless ignoreWarnings) counts once the
//!           grace after the task's start is over; `limit` in a row ─▶ restart; healthy resets
//! ```

use std::time::{Duration, Instant};

use caravan_schemas::job::CheckStatus;

/// The status of one check over its runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckMachine {
    status: CheckStatus,
    successes: u32,
    failures: u32,
    success_before_passing: u32,
    failures_before_critical: u32,
}

impl CheckMachine {
    /// A check at `initial`, before its first run.
    pub fn new(
        initial: CheckStatus,
        success_before_passing: u32,
        failures_before_critical: u32,
    ) -> Self {
        Self {
            status: initial,
            successes: 0,
            failures: 0,
            success_before_passing,
            failures_before_critical,
        }
    }

    /// The status as reported.
    pub fn status(&self) -> CheckStatus {
        self.status
    }

    /// Takes the result of one run; the status after it.
    pub fn observe(&mut self, result: CheckStatus) -> CheckStatus {
        if result == CheckStatus::Passing {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if self.successes >= self.success_before_passing.max(1) {
                self.status = CheckStatus::Passing;
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.failures_before_critical.max(1) {
                self.status = result;
            }
        }
        self.status
    }
}

/// A check's `checkRestart`, with its defaults applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartRule {
    /// Unhealthy statuses in a row that restart the task; at least 1.
    pub limit: u32,
    /// Time after the task's start during which statuses are not counted.
    pub grace: Duration,
    /// Whether a warning counts as healthy.
    pub ignore_warnings: bool,
}

/// Counts a check's unhealthy statuses in a row for its `checkRestart`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartCounter {
    rule: RestartRule,
    counting_from: Instant,
    unhealthy: u32,
}

impl RestartCounter {
    /// Counting for a task that started at `started`.
    pub fn new(rule: RestartRule, started: Instant) -> Self {
        Self {
            rule,
            counting_from: started + rule.grace,
            unhealthy: 0,
        }
    }

    /// Takes the check's status after a run at `now`; whether the task is to restart now (the
    /// count then starts over).
    pub fn observe(&mut self, status: CheckStatus, now: Instant) -> bool {
        let unhealthy = match status {
            CheckStatus::Passing => false,
            CheckStatus::Warning => !self.rule.ignore_warnings,
            CheckStatus::Critical => true,
        };
        if !unhealthy {
            self.unhealthy = 0;
            return false;
        }
        if now < self.counting_from {
            return false;
        }
        self.unhealthy += 1;
        if self.unhealthy >= self.rule.limit.max(1) {
            self.unhealthy = 0;
            return true;
        }
        false
    }
}

/// The worst of `statuses`; passing when there are none.
pub fn worst(statuses: impl IntoIterator<Item = CheckStatus>) -> CheckStatus {
    statuses.into_iter().max().unwrap_or(CheckStatus::Passing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckStatus::{Critical, Passing, Warning};

    fn run(machine: &mut CheckMachine, results: &[CheckStatus]) -> Vec<CheckStatus> {
        results.iter().map(|r| machine.observe(*r)).collect()
    }

    #[test]
    fn without_thresholds_every_result_is_the_status() {
        let mut m = CheckMachine::new(Critical, 0, 0);
        assert_eq!(m.status(), Critical, "the initial status before any run");
        assert_eq!(
            run(&mut m, &[Passing, Warning, Critical, Passing]),
            [Passing, Warning, Critical, Passing]
        );
        let mut once = CheckMachine::new(Warning, 1, 1);
        assert_eq!(run(&mut once, &[Passing, Critical]), [Passing, Critical]);
    }

    #[test]
    fn passing_needs_successes_in_a_row() {
        let mut m = CheckMachine::new(Critical, 3, 0);
        assert_eq!(
            run(
                &mut m,
                &[Passing, Passing, Critical, Passing, Passing, Passing]
            ),
            [Critical, Critical, Critical, Critical, Critical, Passing]
        );
        // Once passing, one failure is enough without failuresBeforeCritical.
        assert_eq!(run(&mut m, &[Warning]), [Warning]);
    }

    #[test]
    fn failing_needs_failures_in_a_row() {
        let mut m = CheckMachine::new(Passing, 0, 2);
        assert_eq!(
            run(&mut m, &[Critical, Passing, Critical, Warning, Critical]),
            [Passing, Passing, Passing, Warning, Critical],
            "the second failure in a row reports what the run said"
        );
        let mut initial = CheckMachine::new(Warning, 2, 3);
        assert_eq!(
            run(
                &mut initial,
                &[Critical, Critical, Passing, Critical, Critical]
            ),
            [Warning, Warning, Warning, Warning, Warning],
            "the initial status holds until a threshold is met"
        );
    }

    fn rule(limit: u32, ignore_warnings: bool) -> RestartRule {
        RestartRule {
            limit,
            grace: Duration::from_secs(10),
            ignore_warnings,
        }
    }

    #[test]
    fn restarts_after_limit_unhealthy_statuses_past_the_grace() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut r = RestartCounter::new(rule(2, false), t0);
        assert!(!r.observe(Critical, at(1)), "inside the grace");
        assert!(!r.observe(Critical, at(9)));
        assert!(!r.observe(Critical, at(10)), "the first that counts");
        assert!(r.observe(Critical, at(11)), "the limit is reached");
        assert!(!r.observe(Critical, at(12)), "the count starts over");
        assert!(!r.observe(Passing, at(13)), "healthy resets");
        assert!(!r.observe(Warning, at(14)));
        assert!(r.observe(Critical, at(15)), "warnings count by default");
    }

    #[test]
    fn warnings_can_be_ignored_and_the_limit_is_at_least_one() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(60);
        let mut r = RestartCounter::new(rule(2, true), t0);
        assert!(!r.observe(Critical, later));
        assert!(
            !r.observe(Warning, later),
            "healthy when warnings are ignored"
        );
        assert!(!r.observe(Critical, later));
        assert!(r.observe(Critical, later));
        let mut zero = RestartCounter::new(rule(0, false), t0);
        assert!(zero.observe(Critical, later));
    }

    #[test]
    fn the_worst_status_wins() {
        assert_eq!(worst([]), Passing);
        assert_eq!(worst([Passing, Warning]), Warning);
        assert_eq!(worst([Critical, Passing, Warning]), Critical);
    }
}
