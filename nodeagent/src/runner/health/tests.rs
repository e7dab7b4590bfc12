use std::time::{Duration, SystemTime, UNIX_EPOCH};

use caravan_schemas::allocation::TaskLifecycleState::{Dead, Pending, Running};

use super::checks::CheckView;
use super::*;

const RULES: HealthRules = HealthRules {
    min_healthy_time: Duration::from_secs(10),
    healthy_deadline: Duration::from_secs(300),
    checks: false,
};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn task(name: &str, role: TaskRole, state: TaskLifecycleState, started: Option<u64>) -> TaskView {
    TaskView {
        name: name.to_string(),
        role,
        state,
        failed: false,
        started_at: started.map(at),
        finished_at: None,
    }
}

fn main_task(state: TaskLifecycleState, started: Option<u64>) -> TaskView {
    task("web", TaskRole::Running, state, started)
}

#[test]
fn running_for_the_minimum_time_is_healthy_from_then() {
    let tasks = [main_task(Running, Some(5))];
    assert_eq!(
        decide(RULES, at(0), &tasks, at(14)),
        Health::Pending { recheck_at: at(15) }
    );
    assert_eq!(
        decide(RULES, at(0), &tasks, at(20)),
        Health::Healthy { at: at(15) }
    );
}

#[test]
fn every_running_task_counts_from_the_latest_start() {
    let tasks = [
        main_task(Running, Some(5)),
        task("proxy", TaskRole::Running, Running, Some(12)),
    ];
    assert_eq!(
        decide(RULES, at(0), &tasks, at(20)),
        Health::Pending { recheck_at: at(22) }
    );
    assert_eq!(
        decide(RULES, at(0), &tasks, at(22)),
        Health::Healthy { at: at(22) }
    );
}

#[test]
fn a_restart_starts_the_window_again() {
    // The task restarted at 12: its start moved, the 10 s count from there.
    let tasks = [main_task(Running, Some(12))];
    assert_eq!(
        decide(RULES, at(0), &tasks, at(16)),
        Health::Pending { recheck_at: at(22) }
    );
    let restarting = [main_task(Pending, Some(5))];
    assert_eq!(
        decide(RULES, at(0), &restarting, at(16)),
        Health::Pending {
            recheck_at: at(300)
        }
    );
}

#[test]
fn a_failed_task_is_unhealthy_at_once() {
    let mut failed = main_task(Dead, Some(5));
    failed.failed = true;
    failed.finished_at = Some(at(7));
    let tasks = [failed, task("proxy", TaskRole::Running, Running, Some(1))];
    assert_eq!(
        decide(RULES, at(0), &tasks, at(8)),
        Health::Unhealthy {
            at: at(7),
            reason: "task web failed".into()
        }
    );
}

#[test]
fn not_running_by_the_deadline_is_unhealthy() {
    let tasks = [main_task(Pending, None)];
    assert_eq!(
        decide(RULES, at(0), &tasks, at(299)),
        Health::Pending {
            recheck_at: at(300)
        }
    );
    assert_eq!(
        decide(RULES, at(0), &tasks, at(301)),
        Health::Unhealthy {
            at: at(300),
            reason: "task web is not running by the healthy deadline".into()
        }
    );
}

#[test]
fn healthy_only_if_the_minimum_time_ends_by_the_deadline() {
    // Running since 295: the minimum time would end at 305, after the deadline at 300.
    let tasks = [main_task(Running, Some(295))];
    assert_eq!(
        decide(RULES, at(0), &tasks, at(296)),
        Health::Pending {
            recheck_at: at(300)
        }
    );
    assert_eq!(
        decide(RULES, at(0), &tasks, at(306)),
        Health::Unhealthy {
            at: at(300),
            reason: "the tasks did not run for the minimum healthy time by the healthy deadline"
                .into()
        }
    );
}

#[test]
fn prestart_hooks_complete_poststop_hooks_are_ignored() {
    let mut init = task("init", TaskRole::Completes, Running, Some(1));
    let tasks = [
        init.clone(),
        main_task(Pending, None),
        task("cleanup", TaskRole::Ignored, Pending, None),
    ];
    assert_eq!(
        decide(RULES, at(0), &tasks, at(3)),
        Health::Pending {
            recheck_at: at(300)
        }
    );
    init.state = Dead;
    init.finished_at = Some(at(4));
    let tasks = [
        init,
        main_task(Running, Some(4)),
        task("cleanup", TaskRole::Ignored, Pending, None),
        task("notify", TaskRole::MustNotFail, Dead, Some(5)),
    ];
    assert_eq!(
        decide(RULES, at(0), &tasks, at(14)),
        Health::Healthy { at: at(14) }
    );
}

#[test]
fn a_failed_poststop_hook_does_not_count() {
    let mut cleanup = task("cleanup", TaskRole::Ignored, Dead, Some(1));
    cleanup.failed = true;
    let tasks = [main_task(Running, Some(1)), cleanup];
    assert_eq!(
        decide(RULES, at(0), &tasks, at(11)),
        Health::Healthy { at: at(11) }
    );
}

#[test]
fn roles_follow_the_lifecycle_phase() {
    assert_eq!(
        TaskRole::of(Phase::Main { leader: false }),
        TaskRole::Running
    );
    assert_eq!(
        TaskRole::of(Phase::Prestart { sidecar: true }),
        TaskRole::Running
    );
    assert_eq!(
        TaskRole::of(Phase::Prestart { sidecar: false }),
        TaskRole::Completes
    );
    assert_eq!(
        TaskRole::of(Phase::Poststart { sidecar: true }),
        TaskRole::Running
    );
    assert_eq!(
        TaskRole::of(Phase::Poststart { sidecar: false }),
        TaskRole::MustNotFail
    );
    assert_eq!(TaskRole::of(Phase::Poststop), TaskRole::Ignored);
}

#[test]
fn tasks_running_before_tracking_count_from_its_start() {
    // Updated in place into a new deployment at 100, its task running since 5.
    let tasks = [main_task(Running, Some(5))];
    assert_eq!(
        decide(RULES, at(100), &tasks, at(104)),
        Health::Pending {
            recheck_at: at(110)
        }
    );
    assert_eq!(
        decide(RULES, at(100), &tasks, at(111)),
        Health::Healthy { at: at(110) }
    );
}

const CHECKED: HealthRules = HealthRules {
    checks: true,
    ..RULES
};

fn check(name: &str, passing_since: Option<u64>) -> CheckView {
    CheckView {
        name: name.to_string(),
        passing_since: passing_since.map(at),
    }
}

#[test]
fn with_checks_every_check_must_pass_for_the_minimum_time_too() {
    let tasks = [main_task(Running, Some(5))];
    let checks = [check("http", Some(8)), check("tcp", Some(12))];
    assert_eq!(
        decide_with_checks(CHECKED, at(0), &tasks, &checks, at(20)),
        Health::Pending { recheck_at: at(22) },
        "from when the last check started passing"
    );
    assert_eq!(
        decide_with_checks(CHECKED, at(0), &tasks, &checks, at(22)),
        Health::Healthy { at: at(22) }
    );
    // The same checks do not count under task_states.
    assert_eq!(
        decide_with_checks(RULES, at(0), &tasks, &checks, at(16)),
        Health::Healthy { at: at(15) }
    );
}

#[test]
fn a_failing_check_waits_for_the_deadline() {
    let tasks = [main_task(Running, Some(5))];
    let checks = [check("http", Some(8)), check("tcp", None)];
    assert_eq!(
        decide_with_checks(CHECKED, at(0), &tasks, &checks, at(100)),
        Health::Pending {
            recheck_at: at(300)
        },
        "never unhealthy before the deadline for a check"
    );
    assert_eq!(
        decide_with_checks(CHECKED, at(0), &tasks, &checks, at(300)),
        Health::Unhealthy {
            at: at(300),
            reason: "check tcp is not passing by the healthy deadline".into()
        }
    );
    // A task not running is named first.
    let pending = [main_task(Pending, None)];
    assert_eq!(
        decide_with_checks(CHECKED, at(0), &pending, &checks, at(300)),
        Health::Unhealthy {
            at: at(300),
            reason: "task web is not running by the healthy deadline".into()
        }
    );
}

#[test]
fn without_checks_the_checks_rule_is_the_task_states_rule() {
    let tasks = [main_task(Running, Some(5))];
    assert_eq!(
        decide_with_checks(CHECKED, at(0), &tasks, &[], at(20)),
        decide(RULES, at(0), &tasks, at(20))
    );
}
