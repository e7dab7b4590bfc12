//! Tests of the blocked evaluations tracker.

use caravan_schemas::evaluation::{EvaluationState, TriggeredBy};
use caravan_schemas::{Evaluation, EvaluationStatus, mock};

use super::BlockedEvals;

fn blocked(name: &str, job: &str, snapshot: u64) -> Evaluation {
    let mut eval = mock::evaluation(name, &mock::job(job));
    eval.spec.triggered_by = TriggeredBy::QueuedAllocs;
    eval.status = Some(EvaluationStatus {
        status: EvaluationState::Blocked,
        snapshot_index: snapshot,
        ..EvaluationStatus::default()
    });
    eval
}

fn captured(name: &str, job: &str, classes: &[(&str, bool)]) -> Evaluation {
    let mut eval = blocked(name, job, 10);
    if let Some(status) = eval.status.as_mut() {
        status.class_eligibility = classes.iter().map(|(c, e)| (c.to_string(), *e)).collect();
    }
    eval
}

fn names(evals: &[Evaluation]) -> Vec<&str> {
    evals.iter().map(|e| e.metadata.name()).collect()
}

#[test]
fn escaped_eval_is_unblocked_by_any_class_as_pending() {
    let mut tracker = BlockedEvals::new();
    assert_eq!(tracker.block(blocked("b1", "web", 10)), Default::default());
    assert_eq!(tracker.stats().total_escaped, 1);
    let unblocked = tracker.unblock(Some("gpu"), 20);
    assert_eq!(names(&unblocked), ["b1"]);
    let status = unblocked[0].status.as_ref().map(|s| s.status);
    assert_eq!(status, Some(EvaluationState::Pending));
    assert_eq!(tracker.stats().total_blocked, 0);
}

#[test]
fn captured_eval_ignores_classes_it_is_ineligible_for() {
    let mut tracker = BlockedEvals::new();
    tracker.block(captured("b1", "web", &[("gpu", false), ("std", true)]));
    assert!(tracker.unblock(Some("gpu"), 20).is_empty());
    assert_eq!(names(&tracker.unblock(Some("std"), 21)), ["b1"]);
}

#[test]
fn captured_eval_is_unblocked_by_an_unknown_class() {
    let mut tracker = BlockedEvals::new();
    tracker.block(captured("b1", "web", &[("gpu", false)]));
    assert_eq!(names(&tracker.unblock(Some("new-class"), 20)), ["b1"]);
}

#[test]
fn unblock_any_releases_every_eval_oldest_first() {
    let mut tracker = BlockedEvals::new();
    tracker.block(captured("b1", "web", &[("gpu", false)]));
    tracker.block(blocked("b2", "api", 10));
    assert_eq!(names(&tracker.unblock(None, 20)), ["b1", "b2"]);
}

#[test]
fn newer_blocked_eval_of_a_job_replaces_and_cancels_the_older() {
    let mut tracker = BlockedEvals::new();
    tracker.block(blocked("b1", "web", 10));
    let outcome = tracker.block(blocked("b2", "web", 11));
    assert_eq!(names(&outcome.cancel), ["b1"]);
    assert_eq!(
        tracker
            .get("default", "web")
            .and_then(|e| e.metadata.name.as_deref()),
        Some("b2")
    );
    assert_eq!(tracker.stats().total_blocked, 1);
}

#[test]
fn stale_blocked_eval_of_a_job_is_canceled_itself() {
    let mut tracker = BlockedEvals::new();
    let mut newer = blocked("b2", "web", 11);
    newer.metadata.resource_version = Some("50".into());
    let mut older = blocked("b1", "web", 10);
    older.metadata.resource_version = Some("40".into());
    tracker.block(newer);
    let outcome = tracker.block(older);
    assert_eq!(names(&outcome.cancel), ["b1"]);
    assert_eq!(
        tracker
            .get("default", "web")
            .and_then(|e| e.metadata.name.as_deref()),
        Some("b2")
    );
}

#[test]
fn eval_that_missed_an_unblock_is_enqueued_at_once() {
    let mut tracker = BlockedEvals::new();
    tracker.unblock(Some("std"), 30);
    let outcome = tracker.block(blocked("b1", "web", 20));
    assert_eq!(
        outcome
            .enqueue
            .as_ref()
            .and_then(|e| e.metadata.name.as_deref()),
        Some("b1")
    );
    assert_eq!(tracker.stats().total_blocked, 0);
    // A snapshot taken after the unblock saw the capacity: it stays blocked.
    let outcome = tracker.block(blocked("b2", "api", 30));
    assert!(outcome.enqueue.is_none());
}

#[test]
fn missed_unblock_on_an_ineligible_class_keeps_eval_blocked() {
    let mut tracker = BlockedEvals::new();
    tracker.unblock(Some("gpu"), 30);
    let outcome = tracker.block(captured("b1", "web", &[("gpu", false)]));
    assert!(outcome.enqueue.is_none());
    assert_eq!(tracker.stats().total_blocked, 1);
}

#[test]
fn non_blocked_evals_are_ignored() {
    let mut tracker = BlockedEvals::new();
    tracker.block(mock::evaluation("p1", &mock::job("web")));
    assert_eq!(tracker.stats().total_blocked, 0);
}

#[test]
fn untrack_returns_the_jobs_blocked_eval() {
    let mut tracker = BlockedEvals::new();
    tracker.block(blocked("b1", "web", 10));
    assert!(tracker.untrack("default", "api").is_none());
    let gone = tracker.untrack("default", "web");
    assert_eq!(gone.and_then(|e| e.metadata.name), Some("b1".to_string()));
    assert!(tracker.unblock(None, 99).is_empty());
}

#[test]
fn unblock_node_releases_system_evals_blocked_on_that_node() {
    let mut tracker = BlockedEvals::new();
    let mut system = captured("s1", "sys", &[("std", false)]);
    system.spec.node_name = Some("n1".into());
    tracker.block(system);
    assert!(tracker.unblock_node("n2", Some("std"), 20).is_empty());
    assert_eq!(names(&tracker.unblock_node("n1", Some("std"), 21)), ["s1"]);
}

#[test]
fn unblock_failed_releases_max_plan_attempt_evals_only() {
    let mut tracker = BlockedEvals::new();
    let mut failed = blocked("f1", "web", 10);
    failed.spec.triggered_by = TriggeredBy::MaxPlanAttempts;
    tracker.block(failed);
    tracker.block(blocked("b1", "api", 10));
    assert_eq!(names(&tracker.unblock_failed()), ["f1"]);
    assert_eq!(tracker.stats().total_blocked, 1);
}

#[test]
fn disabling_forgets_everything() {
    let mut tracker = BlockedEvals::new();
    tracker.block(blocked("b1", "web", 10));
    tracker.set_enabled(false);
    assert_eq!(tracker.stats().total_blocked, 0);
    tracker.block(blocked("b2", "api", 10));
    assert_eq!(tracker.stats().total_blocked, 0);
    tracker.set_enabled(true);
    assert!(tracker.block(blocked("b2", "api", 10)).enqueue.is_none());
    assert_eq!(tracker.stats().total_blocked, 1);
}
