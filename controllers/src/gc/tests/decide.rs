//! The garbage collection rules, one per test.

use caravan_schemas::allocation::{
    ClientStatus, DesiredStatus, RescheduleEvent, RescheduleTracker,
};
use caravan_schemas::evaluation::EvaluationState;
use caravan_schemas::job::{JobState, PeriodicConfig, ReschedulePolicy};
use caravan_schemas::mock;
use caravan_schemas::node::NodeState;

use super::*;

const COMPLETE: EvaluationState = EvaluationState::Complete;
const RUN: DesiredStatus = DesiredStatus::Run;
const STOP: DesiredStatus = DesiredStatus::Stop;

// Nodes.

#[test]
fn a_node_down_longer_than_the_node_threshold_is_collected() {
    let world = World::default().node(down_node("n1", Some(25 * HOUR), Some(30 * HOUR)));
    assert_eq!(names(&world.decide().nodes), ["n1"]);
}

#[test]
fn a_node_down_for_less_than_the_threshold_is_kept_even_with_an_old_heartbeat() {
    // Marked down 23h ago: the heartbeat written when it last became ready is older.
    let world = World::default().node(down_node("n1", Some(23 * HOUR), Some(30 * HOUR)));
    assert!(world.decide().nodes.is_empty());
}

#[test]
fn a_node_down_with_no_marked_time_counts_from_its_last_heartbeat() {
    let old = World::default().node(down_node("old", None, Some(25 * HOUR)));
    assert_eq!(names(&old.decide().nodes), ["old"]);
    let recent = World::default().node(down_node("recent", None, Some(23 * HOUR)));
    assert!(recent.decide().nodes.is_empty());
}

#[test]
fn a_node_that_is_not_down_is_never_collected() {
    let mut world = World::default();
    for state in [
        NodeState::Ready,
        NodeState::Initializing,
        NodeState::Disconnected,
    ] {
        let mut node = down_node(&format!("{state:?}"), Some(48 * HOUR), Some(48 * HOUR));
        node.status.as_mut().unwrap().status = state;
        world = world.node(node);
    }
    assert!(world.decide_with(&GcThresholds::ZERO).nodes.is_empty());
}

#[test]
fn a_down_node_with_a_non_terminal_allocation_is_kept() {
    let job = job_in("web", mock::job("web"), JobState::Running, 48 * HOUR);
    let e1 = eval("e1", &job, COMPLETE, 48 * HOUR);
    // Not yet marked lost by the scheduler.
    let running = alloc("a1", &e1, &job, ClientStatus::Running, RUN, 26 * HOUR);
    let world = World::default()
        .node(down_node("n1", Some(25 * HOUR), None))
        .job(&job)
        .eval(&e1)
        .alloc(running);
    assert!(world.decide_with(&GcThresholds::ZERO).nodes.is_empty());
}

#[test]
fn a_down_node_whose_allocations_are_lost_is_collected() {
    let job = job_in("web", mock::job("web"), JobState::Running, 48 * HOUR);
    let e1 = eval("e1", &job, COMPLETE, 48 * HOUR);
    let lost = alloc("a1", &e1, &job, ClientStatus::Lost, STOP, 26 * HOUR);
    let world = World::default()
        .node(down_node("n1", Some(25 * HOUR), None))
        .job(&job)
        .eval(&e1)
        .alloc(lost);
    assert_eq!(names(&world.decide().nodes), ["n1"]);
}

#[test]
fn a_down_node_with_no_known_time_is_kept_unless_forced() {
    let mut node = down_node("n1", None, None);
    node.metadata.creation_timestamp = None;
    let world = World::default().node(node);
    assert!(world.decide().nodes.is_empty());
    assert_eq!(names(&world.decide_with(&GcThresholds::ZERO).nodes), ["n1"]);
}

// Jobs.

/// A dead batch job, its complete evaluation and complete allocation, all `age` old.
fn finished_batch(name: &str, age: u64) -> World {
    let job = dead_batch(name, age);
    let e1 = eval(&format!("{name}-e1"), &job, COMPLETE, age);
    let a1 = alloc(
        &format!("{name}-a1"),
        &e1,
        &job,
        ClientStatus::Complete,
        RUN,
        age,
    );
    World::default().job(&job).eval(&e1).alloc(a1)
}

#[test]
fn a_dead_batch_job_past_the_job_threshold_goes_with_its_evaluations_and_allocations() {
    let garbage = finished_batch("report", 5 * HOUR).decide();
    assert_eq!(garbage.jobs.len(), 1, "{garbage:#?}");
    let job = &garbage.jobs[0];
    assert_eq!(job.job.display(), "default/report");
    assert_eq!(names(&job.evaluations), ["default/report-e1"]);
    assert_eq!(names(&job.allocations), ["default/report-a1"]);
    // Nothing is deleted twice.
    assert!(garbage.evaluations.is_empty() && garbage.allocations.is_empty());
}

#[test]
fn a_dead_batch_job_younger_than_the_job_threshold_is_kept() {
    let garbage = finished_batch("report", 3 * HOUR).decide();
    assert!(garbage.is_empty(), "{garbage:#?}");
}

#[test]
fn a_dead_job_whose_allocation_finished_recently_is_kept() {
    let job = dead_batch("report", 10 * HOUR);
    let e1 = eval("e1", &job, COMPLETE, 10 * HOUR);
    let a1 = alloc("a1", &e1, &job, ClientStatus::Complete, RUN, HOUR);
    let world = World::default().job(&job).eval(&e1).alloc(a1);
    assert!(world.decide().jobs.is_empty());
}

#[test]
fn a_job_that_is_not_dead_is_never_collected() {
    for state in [JobState::Pending, JobState::Running] {
        let job = job_in("report", mock::batch_job("report"), state, 10 * HOUR);
        let e1 = eval("e1", &job, COMPLETE, 10 * HOUR);
        let a1 = alloc("a1", &e1, &job, ClientStatus::Complete, RUN, 10 * HOUR);
        let world = World::default().job(&job).eval(&e1).alloc(a1);
        assert!(
            world.decide_with(&GcThresholds::ZERO).jobs.is_empty(),
            "{state:?}"
        );
    }
}

#[test]
fn a_dead_job_with_a_running_allocation_or_a_pending_evaluation_is_kept() {
    // The status may lag: the allocations and evaluations decide.
    let job = dead_batch("report", 10 * HOUR);
    let e1 = eval("e1", &job, COMPLETE, 10 * HOUR);
    let running = alloc("a1", &e1, &job, ClientStatus::Running, RUN, 10 * HOUR);
    let world = World::default().job(&job).eval(&e1).alloc(running);
    let garbage = world.decide_with(&GcThresholds::ZERO);
    assert!(
        garbage.jobs.is_empty() && garbage.allocations.is_empty(),
        "{garbage:#?}"
    );

    let pending = eval("e2", &job, EvaluationState::Pending, 10 * HOUR);
    let world = finished_batch("report", 10 * HOUR).eval(&pending);
    assert!(world.decide_with(&GcThresholds::ZERO).jobs.is_empty());
}

#[test]
fn a_dead_service_job_goes_only_when_stopped() {
    let mut job = job_in("web", mock::job("web"), JobState::Dead, 10 * HOUR);
    let e1 = eval("e1", &job, COMPLETE, 10 * HOUR);
    let a1 = alloc("a1", &e1, &job, ClientStatus::Failed, RUN, 10 * HOUR);
    let world = World::default().job(&job).eval(&e1).alloc(a1.clone());
    assert!(world.decide().jobs.is_empty());

    job.spec.stop = true;
    let world = World::default().job(&job).eval(&e1).alloc(a1);
    assert_eq!(world.decide().jobs.len(), 1);
}

#[test]
fn a_periodic_job_goes_only_when_stopped() {
    let mut job = dead_batch("nightly", 10 * HOUR);
    job.spec.periodic = Some(PeriodicConfig {
        cron: "0 0 * * *".into(),
        ..PeriodicConfig::default()
    });
    let world = World::default().job(&job);
    assert!(world.decide().jobs.is_empty());
    job.spec.stop = true;
    let world = World::default().job(&job);
    assert_eq!(world.decide().jobs.len(), 1);
}

// Evaluations.

/// A running service job with an old complete evaluation (its allocation stopped) and a newer
/// one (its allocation running).
fn service_with_history(old_eval_age: u64) -> World {
    let job = job_in("web", mock::job("web"), JobState::Running, 48 * HOUR);
    let mut e1 = eval("web-e1", &job, COMPLETE, old_eval_age);
    e1.metadata.resource_version = Some("10".into());
    let mut e2 = eval("web-e2", &job, COMPLETE, 30 * 60);
    e2.metadata.resource_version = Some("20".into());
    let stopped = alloc(
        "web-a1",
        &e1,
        &job,
        ClientStatus::Complete,
        STOP,
        old_eval_age,
    );
    let running = alloc("web-a2", &e2, &job, ClientStatus::Running, RUN, 60);
    World::default()
        .job(&job)
        .eval(&e1)
        .eval(&e2)
        .alloc(stopped)
        .alloc(running)
}

#[test]
fn a_terminal_evaluation_past_the_eval_threshold_goes_with_its_terminal_allocations() {
    let garbage = service_with_history(2 * HOUR).decide();
    assert_eq!(names(&garbage.evaluations), ["default/web-e1"]);
    assert_eq!(names(&garbage.allocations), ["default/web-a1"]);
    assert!(garbage.jobs.is_empty());
}

#[test]
fn a_terminal_evaluation_younger_than_the_eval_threshold_is_kept() {
    let garbage = service_with_history(30 * 60).decide();
    assert!(garbage.is_empty(), "{garbage:#?}");
}

#[test]
fn an_evaluation_that_is_not_terminal_is_never_collected() {
    let job = job_in("web", mock::job("web"), JobState::Pending, 48 * HOUR);
    let mut world = World::default().job(&job);
    for state in [EvaluationState::Pending, EvaluationState::Blocked] {
        world = world.eval(&eval(&format!("{state:?}"), &job, state, 48 * HOUR));
    }
    let garbage = world.decide_with(&GcThresholds::ZERO);
    assert!(garbage.evaluations.is_empty(), "{garbage:#?}");
}

#[test]
fn an_evaluation_with_a_running_allocation_stays_and_its_finished_ones_go() {
    let job = job_in("web", mock::job("web"), JobState::Running, 48 * HOUR);
    let e1 = eval("e1", &job, COMPLETE, 2 * HOUR);
    let newest = eval("e2", &job, COMPLETE, 2 * HOUR);
    let world = World::default()
        .job(&job)
        .eval(&e1)
        .eval(&newest)
        .alloc(alloc(
            "stopped",
            &e1,
            &job,
            ClientStatus::Complete,
            STOP,
            2 * HOUR,
        ))
        .alloc(alloc(
            "running",
            &e1,
            &job,
            ClientStatus::Running,
            RUN,
            2 * HOUR,
        ));
    let garbage = world.decide_with(&GcThresholds::ZERO);
    assert_eq!(names(&garbage.allocations), ["default/stopped"]);
    assert!(!names(&garbage.evaluations).contains(&"default/e1".to_string()));
}

#[test]
fn an_allocation_still_running_after_its_stop_is_kept() {
    let job = job_in("web", mock::job("web"), JobState::Running, 48 * HOUR);
    let e1 = eval("e1", &job, COMPLETE, 48 * HOUR);
    let stopping = alloc("a1", &e1, &job, ClientStatus::Running, STOP, 48 * HOUR);
    let world = World::default().job(&job).eval(&e1).alloc(stopping);
    assert!(
        world
            .decide_with(&GcThresholds::ZERO)
            .allocations
            .is_empty()
    );
}

#[test]
fn the_newest_evaluation_of_a_job_that_is_not_stopped_stays() {
    // A finished service job: its status reads its evaluations.
    let job = job_in("web", mock::job("web"), JobState::Dead, 48 * HOUR);
    let mut e1 = eval("e1", &job, COMPLETE, 10 * HOUR);
    e1.metadata.resource_version = Some("5".into());
    let mut e2 = eval("e2", &job, COMPLETE, 9 * HOUR);
    e2.metadata.resource_version = Some("7".into());
    let world = World::default().job(&job).eval(&e1).eval(&e2);
    assert_eq!(names(&world.decide().evaluations), ["default/e1"]);
}

#[test]
fn batch_evaluations_wait_for_the_batch_threshold() {
    // The job is gone: every allocation may go once the evaluation is old enough.
    let job = dead_batch("report", 48 * HOUR);
    let young = eval("young", &job, COMPLETE, 2 * HOUR);
    let old = eval("old", &job, COMPLETE, 25 * HOUR);
    let world = World::default()
        .eval(&young)
        .eval(&old)
        .alloc(alloc(
            "young-a",
            &young,
            &job,
            ClientStatus::Complete,
            RUN,
            2 * HOUR,
        ))
        .alloc(alloc(
            "old-a",
            &old,
            &job,
            ClientStatus::Complete,
            RUN,
            25 * HOUR,
        ));
    let garbage = world.decide();
    assert_eq!(names(&garbage.evaluations), ["default/old"]);
    assert_eq!(names(&garbage.allocations), ["default/old-a"]);
}

#[test]
fn a_running_batch_job_keeps_its_current_allocations_and_loses_older_versions() {
    let mut job = job_in(
        "report",
        mock::batch_job("report"),
        JobState::Running,
        72 * HOUR,
    );
    job.status.as_mut().unwrap().version = 1;
    job.metadata.generation = Some(2);
    let e1 = eval("e1", &job, COMPLETE, 48 * HOUR);
    let mut v0 = alloc("v0", &e1, &job, ClientStatus::Complete, RUN, 48 * HOUR);
    v0.spec.job_version = 0;
    let mut v1 = alloc("v1", &e1, &job, ClientStatus::Complete, RUN, 48 * HOUR);
    v1.spec.job_version = 1;
    let latest = eval("e2", &job, COMPLETE, 47 * HOUR);
    let world = World::default()
        .job(&job)
        .eval(&e1)
        .eval(&latest)
        .alloc(v0)
        .alloc(v1);
    let garbage = world.decide_with(&GcThresholds::ZERO);
    assert_eq!(names(&garbage.allocations), ["default/v0"]);
    assert!(garbage.evaluations.is_empty(), "{garbage:#?}");
    assert!(garbage.jobs.is_empty());
}

#[test]
fn a_finished_sysbatch_job_that_is_not_stopped_keeps_its_allocations_until_the_job_goes() {
    // Dead once every node ran it; deleting its allocations alone would run it again.
    let mut job = dead_batch("setup", 48 * HOUR);
    job.spec.r#type = Some(caravan_schemas::JobType::Sysbatch);
    let e1 = eval("e1", &job, COMPLETE, 48 * HOUR);
    let e2 = eval("e2", &job, COMPLETE, 47 * HOUR);
    let done = alloc("done", &e1, &job, ClientStatus::Complete, RUN, 2 * HOUR);
    let world = World::default().job(&job).eval(&e1).eval(&e2).alloc(done);
    let garbage = world.decide();
    assert!(
        garbage.jobs.is_empty() && garbage.allocations.is_empty(),
        "{garbage:#?}"
    );
    // Past the job threshold, the job goes with everything.
    let world = World::default().job(&job).eval(&e1).eval(&e2).alloc(alloc(
        "done",
        &e1,
        &job,
        ClientStatus::Complete,
        RUN,
        5 * HOUR,
    ));
    assert_eq!(names(&world.decide().jobs[0].allocations), ["default/done"]);
}

#[test]
fn a_failed_allocation_waiting_for_its_reschedule_is_kept() {
    let job = job_in("web", mock::job("web"), JobState::Running, 48 * HOUR);
    let e1 = eval("e1", &job, COMPLETE, 48 * HOUR);
    let newest = eval("e2", &job, COMPLETE, 48 * HOUR);
    // Service jobs reschedule without limit by default.
    let failed = alloc("failed", &e1, &job, ClientStatus::Failed, RUN, 48 * HOUR);
    let mut replaced = alloc("replaced", &e1, &job, ClientStatus::Failed, RUN, 48 * HOUR);
    replaced.spec.next_allocation = Some("next".into());
    let world = World::default()
        .job(&job)
        .eval(&e1)
        .eval(&newest)
        .alloc(failed)
        .alloc(replaced);
    let garbage = world.decide_with(&GcThresholds::ZERO);
    assert_eq!(names(&garbage.allocations), ["default/replaced"]);
    assert!(
        garbage.evaluations.is_empty(),
        "e1 keeps its waiting allocation"
    );
}

#[test]
fn a_failed_allocation_goes_once_its_reschedule_interval_passed() {
    let mut job = job_in("web", mock::job("web"), JobState::Running, 48 * HOUR);
    job.spec.groups[0].reschedule = Some(ReschedulePolicy {
        attempts: Some(1),
        interval: Some("1h".into()),
        unlimited: Some(false),
        ..ReschedulePolicy::default()
    });
    let e1 = eval("e1", &job, COMPLETE, 48 * HOUR);
    let newest = eval("e2", &job, COMPLETE, 48 * HOUR);
    let with_event = |name: &str, at: u64| {
        let mut a = alloc(name, &e1, &job, ClientStatus::Failed, RUN, 48 * HOUR);
        a.spec.reschedule_tracker = Some(RescheduleTracker {
            events: vec![RescheduleEvent {
                reschedule_time: ago(at),
                ..RescheduleEvent::default()
            }],
        });
        a
    };
    let world = World::default()
        .job(&job)
        .eval(&e1)
        .eval(&newest)
        .alloc(with_event("recent", 30 * 60))
        .alloc(with_event("past", 2 * HOUR))
        .alloc(alloc(
            "untried",
            &e1,
            &job,
            ClientStatus::Failed,
            RUN,
            48 * HOUR,
        ));
    let garbage = world.decide_with(&GcThresholds::ZERO);
    assert_eq!(names(&garbage.allocations), ["default/past"]);
}

#[test]
fn an_allocation_whose_evaluation_is_gone_follows_the_same_rules() {
    let job = dead_batch("report", 48 * HOUR);
    let e1 = eval("gone", &job, COMPLETE, 48 * HOUR);
    let world = World::default()
        .alloc(alloc(
            "old",
            &e1,
            &job,
            ClientStatus::Complete,
            RUN,
            2 * HOUR,
        ))
        .alloc(alloc(
            "recent",
            &e1,
            &job,
            ClientStatus::Complete,
            RUN,
            30 * 60,
        ))
        .alloc(alloc(
            "running",
            &e1,
            &job,
            ClientStatus::Running,
            RUN,
            2 * HOUR,
        ));
    assert_eq!(names(&world.decide().allocations), ["default/old"]);
}

#[test]
fn a_forced_pass_ignores_ages_but_keeps_everything_live() {
    let world = finished_batch("report", 60)
        .node(down_node("n1", Some(1), None))
        .node(down_node("busy", Some(1), None));
    let job = job_in("web", mock::job("web"), JobState::Running, 60);
    let e1 = eval("web-e1", &job, COMPLETE, 60);
    let mut running = alloc("web-a1", &e1, &job, ClientStatus::Running, RUN, 60);
    running.spec.node_name = "busy".into();
    let world = world.job(&job).eval(&e1).alloc(running);
    assert!(world.decide().is_empty());
    let garbage = world.decide_with(&GcThresholds::ZERO);
    assert_eq!(names(&garbage.nodes), ["n1"]);
    assert_eq!(garbage.jobs.len(), 1);
    assert_eq!(garbage.jobs[0].job.display(), "default/report");
    assert!(garbage.allocations.is_empty() && garbage.evaluations.is_empty());
}
