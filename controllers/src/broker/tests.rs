//! Tests of the broker core, with the time passed in (no sleeping).

use std::time::{Duration, Instant};

use caravan_schemas::evaluation::{EvaluationState, EvaluationType};
use caravan_schemas::{Evaluation, EvaluationStatus, mock};

use super::{BrokerConfig, BrokerCore, BrokerError, Enqueued, Queue};

const SERVICE: &[Queue] = &[Queue::Scheduler(EvaluationType::Service)];

fn eval(name: &str, job: &str, priority: i32) -> Evaluation {
    let mut eval = mock::evaluation(name, &mock::job(job));
    eval.spec.priority = Some(priority);
    eval.spec.r#type = Some(EvaluationType::Service);
    eval.status = Some(EvaluationStatus::default());
    eval
}

fn core() -> BrokerCore {
    BrokerCore::new(BrokerConfig::default())
}

fn name(eval: &Evaluation) -> &str {
    eval.metadata.name()
}

#[test]
fn dequeue_orders_by_priority_then_arrival() {
    let (mut b, t0) = (core(), Instant::now());
    b.enqueue(eval("low", "a", 20), t0, None);
    b.enqueue(eval("high-1", "b", 80), t0, None);
    b.enqueue(eval("high-2", "c", 80), t0, None);
    let order: Vec<String> = (0..3)
        .filter_map(|_| b.dequeue(SERVICE, t0))
        .map(|d| name(&d.eval).to_string())
        .collect();
    assert_eq!(order, ["high-1", "high-2", "low"]);
    assert!(b.dequeue(SERVICE, t0).is_none());
}

#[test]
fn dequeue_only_serves_requested_schedulers() {
    let (mut b, t0) = (core(), Instant::now());
    let mut batch = eval("b1", "a", 50);
    batch.spec.r#type = Some(EvaluationType::Batch);
    b.enqueue(batch, t0, None);
    assert!(b.dequeue(SERVICE, t0).is_none());
    let batch_queue = [Queue::Scheduler(EvaluationType::Batch)];
    assert!(b.dequeue(&batch_queue, t0).is_some());
}

#[test]
fn enqueue_ignores_non_pending_duplicate_and_disabled() {
    let (mut b, t0) = (core(), Instant::now());
    let mut blocked = eval("blocked", "a", 50);
    blocked.status = Some(EvaluationStatus {
        status: EvaluationState::Blocked,
        ..EvaluationStatus::default()
    });
    assert_eq!(b.enqueue(blocked, t0, None), Enqueued::NotPending);
    assert_eq!(b.enqueue(eval("e1", "a", 50), t0, None), Enqueued::Ready);
    assert_eq!(
        b.enqueue(eval("e1", "a", 50), t0, None),
        Enqueued::Duplicate
    );
    b.set_enabled(false);
    assert_eq!(b.enqueue(eval("e2", "b", 50), t0, None), Enqueued::Disabled);
}

#[test]
fn one_outstanding_eval_per_job_and_newest_pending_wins_on_ack() {
    let (mut b, t0) = (core(), Instant::now());
    assert_eq!(b.enqueue(eval("e1", "web", 50), t0, None), Enqueued::Ready);
    assert_eq!(
        b.enqueue(eval("e2", "web", 50), t0, None),
        Enqueued::Pending
    );
    assert_eq!(
        b.enqueue(eval("e3", "web", 50), t0, None),
        Enqueued::Pending
    );
    let first = b.dequeue(SERVICE, t0).expect("e1 ready");
    assert_eq!(name(&first.eval), "e1");
    assert!(
        b.dequeue(SERVICE, t0).is_none(),
        "job already has an eval out"
    );
    assert_eq!(b.stats().total_pending, 2);

    b.ack("e1", first.token, t0).expect("ack");
    let canceled: Vec<String> = b
        .take_cancelable(10)
        .iter()
        .map(|e| name(e).to_string())
        .collect();
    assert_eq!(canceled, ["e2"]);
    let next = b.dequeue(SERVICE, t0).expect("e3 ready");
    assert_eq!(name(&next.eval), "e3");
    assert_eq!(b.stats().total_pending, 0);
}

#[test]
fn ack_with_wrong_or_stale_token_is_refused() {
    let (mut b, t0) = (core(), Instant::now());
    b.enqueue(eval("e1", "a", 50), t0, None);
    b.enqueue(eval("e2", "b", 50), t0, None);
    let d1 = b.dequeue(SERVICE, t0).expect("e1");
    let d2 = b.dequeue(SERVICE, t0).expect("e2");
    assert!(matches!(
        b.ack("e1", d2.token, t0),
        Err(BrokerError::TokenMismatch { .. })
    ));
    b.ack("e1", d1.token, t0).expect("ack");
    assert!(matches!(
        b.ack("e1", d1.token, t0),
        Err(BrokerError::NotOutstanding { .. })
    ));
}

#[test]
fn nack_redelivers_after_the_nack_delay() {
    let (mut b, t0) = (core(), Instant::now());
    b.enqueue(eval("e1", "a", 50), t0, None);
    let d = b.dequeue(SERVICE, t0).expect("e1");
    b.nack("e1", d.token, t0).expect("nack");
    assert!(
        b.dequeue(SERVICE, t0).is_none(),
        "held for the initial nack delay"
    );
    assert_eq!(b.stats().total_waiting, 1);
    let again = b
        .dequeue(SERVICE, t0 + Duration::from_secs(1))
        .expect("redelivered");
    assert_eq!(again.deliveries, 2);
    assert_ne!(again.token, d.token);
}

#[test]
fn nacked_job_eval_keeps_later_evals_of_the_job_pending() {
    let (mut b, t0) = (core(), Instant::now());
    b.enqueue(eval("e1", "a", 50), t0, None);
    let d = b.dequeue(SERVICE, t0).expect("e1");
    b.nack("e1", d.token, t0).expect("nack");
    assert_eq!(b.enqueue(eval("e2", "a", 50), t0, None), Enqueued::Pending);
    let again = b
        .dequeue(SERVICE, t0 + Duration::from_secs(2))
        .expect("e1 again");
    assert_eq!(name(&again.eval), "e1");
}

#[test]
fn delivery_limit_moves_eval_to_failed_queue() {
    let (mut b, mut now) = (core(), Instant::now());
    b.enqueue(eval("e1", "a", 50), now, None);
    for attempt in 1..=3 {
        let d = b.dequeue(SERVICE, now).expect("delivered");
        assert_eq!(d.deliveries, attempt);
        b.nack("e1", d.token, now).expect("nack");
        now += Duration::from_secs(20);
    }
    assert!(b.dequeue(SERVICE, now).is_none());
    assert_eq!(b.stats().total_failed, 1);
    let failed = b.dequeue(&[Queue::Failed], now).expect("failed queue");
    assert_eq!(name(&failed.eval), "e1");
    // Later evals of the job wait until the reaper acks the failed one.
    assert_eq!(b.enqueue(eval("e2", "a", 50), now, None), Enqueued::Pending);
    b.ack("e1", failed.token, now).expect("ack");
    assert_eq!(name(&b.dequeue(SERVICE, now).expect("e2").eval), "e2");
}

#[test]
fn nack_timeout_redelivers_and_refuses_the_late_ack() {
    let (mut b, t0) = (core(), Instant::now());
    b.enqueue(eval("e1", "a", 50), t0, None);
    let d = b.dequeue(SERVICE, t0).expect("e1");
    assert_eq!(b.next_deadline(), Some(t0 + Duration::from_secs(60)));
    let late = t0 + Duration::from_secs(61);
    assert_eq!(b.advance(late), 1);
    assert!(b.ack("e1", d.token, late).is_err());
    let again = b
        .dequeue(SERVICE, late + Duration::from_secs(1))
        .expect("redelivered");
    assert_eq!(again.deliveries, 2);
}

#[test]
fn outstanding_reset_and_pause_extend_the_nack_timeout() {
    let (mut b, t0) = (core(), Instant::now());
    b.enqueue(eval("e1", "a", 50), t0, None);
    let d = b.dequeue(SERVICE, t0).expect("e1");
    assert_eq!(b.outstanding("default", "e1"), Some(d.token));
    b.outstanding_reset("e1", d.token, t0 + Duration::from_secs(50))
        .expect("reset");
    assert_eq!(b.advance(t0 + Duration::from_secs(100)), 0);
    b.pause_nack_timeout("e1", d.token, t0 + Duration::from_secs(100))
        .expect("pause");
    assert_eq!(b.next_deadline(), None);
    assert_eq!(b.advance(t0 + Duration::from_secs(1000)), 0);
    b.resume_nack_timeout("e1", d.token, t0 + Duration::from_secs(1000))
        .expect("resume");
    b.ack("e1", d.token, t0 + Duration::from_secs(1059))
        .expect("ack in time");
}

#[test]
fn wait_until_holds_eval_until_due() {
    let (mut b, t0) = (core(), Instant::now());
    let due = t0 + Duration::from_secs(30);
    assert_eq!(
        b.enqueue(eval("e1", "a", 50), t0, Some(due)),
        Enqueued::Waiting
    );
    assert!(b.dequeue(SERVICE, t0 + Duration::from_secs(29)).is_none());
    assert_eq!(b.next_deadline(), Some(due));
    assert!(b.dequeue(SERVICE, due).is_some());
}

#[test]
fn disabling_flushes_everything_and_invalidates_tokens() {
    let (mut b, t0) = (core(), Instant::now());
    b.enqueue(eval("e1", "a", 50), t0, None);
    b.enqueue(eval("e2", "a", 50), t0, None);
    b.enqueue(eval("e3", "b", 50), t0, None);
    let d = b.dequeue(SERVICE, t0).expect("e1");
    b.set_enabled(false);
    assert_eq!(b.stats(), super::BrokerStats::default());
    assert!(b.dequeue(SERVICE, t0).is_none());
    b.set_enabled(true);
    assert!(b.ack("e1", d.token, t0).is_err());
    assert_eq!(b.enqueue(eval("e1", "a", 50), t0, None), Enqueued::Ready);
}

#[test]
fn stats_count_each_queue() {
    let (mut b, t0) = (core(), Instant::now());
    b.enqueue(eval("e1", "a", 50), t0, None);
    b.enqueue(eval("e2", "b", 50), t0, None);
    b.dequeue(SERVICE, t0).expect("one out");
    let stats = b.stats();
    assert_eq!((stats.total_ready, stats.total_unacked), (1, 1));
    let service = stats.by_queue.get("service").copied().unwrap_or_default();
    assert_eq!((service.ready, service.unacked), (1, 1));
}

#[tokio::test]
async fn dequeue_wakes_on_enqueue_and_times_out_when_disabled() {
    let broker = super::EvalBroker::new(BrokerConfig::default());
    let waiter = {
        let broker = broker.clone();
        tokio::spawn(async move {
            broker
                .dequeue(&[EvaluationType::Service], Duration::from_secs(5))
                .await
        })
    };
    tokio::task::yield_now().await;
    assert_eq!(broker.enqueue(eval("e1", "a", 50)), Enqueued::Ready);
    let delivery = waiter.await.expect("join").expect("delivered");
    assert_eq!(name(&delivery.eval), "e1");
    broker.ack("e1", delivery.token).expect("ack");

    broker.set_enabled(false);
    assert_eq!(broker.enqueue(eval("e2", "b", 50)), Enqueued::Disabled);
    let none = broker
        .dequeue(&[EvaluationType::Service], Duration::from_millis(20))
        .await;
    assert!(none.is_none());
}
