use std::pin::Pin;
use std::sync::Mutex;

use caravan_schemas::ObjectMeta;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;

use super::*;
use crate::fake::FakeClient;

#[derive(Debug, Deserialize)]
struct Thing {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Value,
}

#[derive(Debug, thiserror::Error)]
#[error("reconcile failed on purpose")]
struct Failed;

/// What the test reconciler saw, and how it behaves.
#[derive(Default)]
struct Ctx {
    /// `(name, spec, still cached)` per reconcile, in start order.
    seen: Mutex<Vec<(String, Value, bool)>>,
    /// Reconciles running now, per name, and the most ever seen at once overall and per name.
    active: Mutex<(HashMap<String, usize>, usize, usize)>,
    /// When set, every reconcile takes a permit first.
    gate: Option<Semaphore>,
    store: Mutex<Option<Store<Thing>>>,
}

impl Ctx {
    fn seen(&self) -> Vec<(String, Value, bool)> {
        self.seen.lock().unwrap().clone()
    }
}

type Results =
    Pin<Box<dyn Stream<Item = Result<(ObjectRef, Action), ControllerError<Failed>>> + Send>>;

/// Reconciles `Thing`s; `spec.requeue` (seconds) asks for a requeue, `spec.fail` for an error.
async fn reconcile(obj: Arc<Thing>, ctx: Arc<Ctx>) -> Result<Action, Failed> {
    let name = obj.metadata.name().to_string();
    let cached = ctx
        .store
        .lock()
        .unwrap()
        .as_ref()
        .is_some_and(|s| s.get("default", &name).is_some());
    ctx.seen
        .lock()
        .unwrap()
        .push((name.clone(), obj.spec.clone(), cached));
    {
        let mut active = ctx.active.lock().unwrap();
        let running = active.0.entry(name.clone()).or_default();
        *running += 1;
        let (running, total) = (*running, active.0.values().sum());
        active.1 = active.1.max(total);
        active.2 = active.2.max(running);
    }
    if let Some(gate) = &ctx.gate {
        gate.acquire().await.unwrap().forget();
    }
    *ctx.active.lock().unwrap().0.get_mut(&name).unwrap() -= 1;
    if obj.spec["fail"] == true {
        return Err(Failed);
    }
    Ok(match obj.spec["requeue"].as_u64() {
        Some(seconds) => Action::requeue(Duration::from_secs(seconds)),
        None => Action::await_change(),
    })
}

fn error_policy(_obj: Arc<Thing>, _err: &Failed, _ctx: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_secs(5))
}

fn thing(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

fn controller(fake: &FakeClient) -> Controller<Thing, FakeClient> {
    Controller::new(fake.clone(), Kind::Job, None, ListQuery::default())
}

fn run(controller: Controller<Thing, FakeClient>, ctx: &Arc<Ctx>) -> Results {
    *ctx.store.lock().unwrap() = Some(controller.store());
    Box::pin(controller.run(reconcile, error_policy, ctx.clone()))
}

/// The next finished reconcile's object name; panics on an error item or a stall.
async fn next_name(results: &mut Results) -> String {
    let item = tokio::time::timeout(Duration::from_secs(3600), results.next())
        .await
        .expect("no reconcile finished within an hour")
        .expect("the controller stopped");
    item.expect("the reconcile failed").0.name
}

/// Whether nothing more finishes within an hour of (paused) time.
async fn quiet(results: &mut Results) -> bool {
    tokio::time::timeout(Duration::from_secs(3600), results.next())
        .await
        .is_err()
}

/// Drives `results` on a task of its own, forwarding items.
fn drive(mut results: Results) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(item) = results.next().await {
            let _ = tx.send(item.map(|(r, _)| r.name).unwrap_or_else(|e| e.to_string()));
        }
    });
    rx
}

/// Waits (in paused time) until `condition` holds.
async fn until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_runs_once_per_change() {
    let fake = FakeClient::new();
    fake.seed(Kind::Job, thing("a", json!({"n": 1})));
    let ctx = Arc::new(Ctx::default());
    let mut results = run(controller(&fake), &ctx);
    assert_eq!(next_name(&mut results).await, "a");
    assert!(quiet(&mut results).await);

    fake.patch(Kind::Job, "default", "a", json!({"spec": {"n": 2}}))
        .await
        .unwrap();
    assert_eq!(next_name(&mut results).await, "a");
    assert!(quiet(&mut results).await);
    let specs: Vec<Value> = ctx.seen().into_iter().map(|(_, spec, _)| spec).collect();
    assert_eq!(specs, [json!({"n": 1}), json!({"n": 2})]);
}

#[tokio::test(start_paused = true)]
async fn a_requeue_runs_again_after_the_delay() {
    let fake = FakeClient::new();
    fake.seed(Kind::Job, thing("a", json!({"requeue": 10})));
    let ctx = Arc::new(Ctx::default());
    let mut results = run(controller(&fake), &ctx);
    assert_eq!(next_name(&mut results).await, "a");
    let first = Instant::now();
    assert_eq!(next_name(&mut results).await, "a");
    assert_eq!(first.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_failed_reconcile_is_retried_as_the_error_policy_says() {
    let fake = FakeClient::new();
    fake.seed(Kind::Job, thing("a", json!({"fail": true})));
    let ctx = Arc::new(Ctx::default());
    let mut results = run(controller(&fake), &ctx);
    let failed = results.next().await.unwrap();
    assert!(
        matches!(failed, Err(ControllerError::ReconcileFailed { object, .. }) if object.name == "a")
    );
    let first = Instant::now();
    assert!(results.next().await.unwrap().is_err());
    assert_eq!(first.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn one_object_is_never_reconciled_twice_at_once() {
    let fake = FakeClient::new();
    fake.seed(Kind::Job, thing("a", json!({"n": 0})));
    let ctx = Arc::new(Ctx {
        gate: Some(Semaphore::new(0)),
        ..Ctx::default()
    });
    let controller = controller(&fake);
    let store = controller.store();
    let mut done = drive(run(controller, &ctx));
    until("the first reconcile starts", || ctx.seen().len() == 1).await;

    for n in 1..=3 {
        fake.patch(Kind::Job, "default", "a", json!({"spec": {"n": n}}))
            .await
            .unwrap();
    }
    until("the controller saw every change", || {
        store.get("default", "a").is_some_and(|a| a.spec["n"] == 3)
    })
    .await;
    ctx.gate.as_ref().unwrap().add_permits(10);
    assert_eq!(done.recv().await.unwrap(), "a");
    assert_eq!(done.recv().await.unwrap(), "a");
    assert!(
        tokio::time::timeout(Duration::from_secs(3600), done.recv())
            .await
            .is_err()
    );
    let seen = ctx.seen();
    assert_eq!(
        seen.len(),
        2,
        "changes made while running queue one more reconcile"
    );
    assert_eq!(seen[1].1, json!({"n": 3}));
    assert_eq!(ctx.active.lock().unwrap().2, 1);
}

#[tokio::test(start_paused = true)]
async fn reconciles_run_concurrently_up_to_the_bound() {
    let fake = FakeClient::new();
    for name in ["a", "b", "c", "d", "e"] {
        fake.seed(Kind::Job, thing(name, json!({})));
    }
    let ctx = Arc::new(Ctx {
        gate: Some(Semaphore::new(0)),
        ..Ctx::default()
    });
    let mut done = drive(run(controller(&fake).concurrency(2), &ctx));
    until("two reconciles start", || ctx.seen().len() == 2).await;
    ctx.gate.as_ref().unwrap().add_permits(5);
    let mut names: Vec<String> = Vec::new();
    for _ in 0..5 {
        names.push(done.recv().await.unwrap());
    }
    names.sort();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    assert_eq!(ctx.active.lock().unwrap().1, 2);
}

#[tokio::test(start_paused = true)]
async fn a_watched_kind_triggers_the_reconcile_of_its_owner() {
    let fake = FakeClient::new();
    fake.seed(Kind::Job, thing("web", json!({})));
    let ctx = Arc::new(Ctx::default());
    let controller = controller(&fake).watches(Kind::Allocation, |alloc| {
        let job = alloc["spec"]["jobName"].as_str().unwrap_or_default();
        vec![ObjectRef::new(Kind::Job, "default", job)]
    });
    let mut results = run(controller, &ctx);
    assert_eq!(next_name(&mut results).await, "web");
    assert!(quiet(&mut results).await);

    let alloc = json!({"metadata": {"name": "web-1"}, "spec": {"jobName": "web"}});
    fake.create(Kind::Allocation, alloc).await.unwrap();
    assert_eq!(next_name(&mut results).await, "web");
    let orphan = json!({"metadata": {"name": "api-1"}, "spec": {"jobName": "api"}});
    fake.create(Kind::Allocation, orphan).await.unwrap();
    assert!(
        quiet(&mut results).await,
        "a reference to no cached object reconciles nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deleted_object_is_reconciled_with_its_last_state() {
    let fake = FakeClient::new();
    fake.seed(Kind::Job, thing("a", json!({"n": 1})));
    let ctx = Arc::new(Ctx::default());
    let mut results = run(controller(&fake), &ctx);
    assert_eq!(next_name(&mut results).await, "a");
    fake.delete(Kind::Job, "default", "a").await.unwrap();
    assert_eq!(next_name(&mut results).await, "a");
    assert!(quiet(&mut results).await);
    assert_eq!(ctx.seen()[1], ("a".into(), json!({"n": 1}), false));
}

#[tokio::test(start_paused = true)]
async fn objects_deleted_while_the_watch_was_expired_are_reconciled_after_the_relist() {
    let fake = FakeClient::new();
    fake.seed(Kind::Job, thing("a", json!({})));
    fake.seed(Kind::Job, thing("b", json!({})));
    let ctx = Arc::new(Ctx::default());
    let mut done = drive(run(controller(&fake), &ctx));
    let mut names = vec![done.recv().await.unwrap(), done.recv().await.unwrap()];
    until("the watch is open", || fake.open_watches() == 1).await;

    fake.expire_watches();
    fake.delete(Kind::Job, "default", "b").await.unwrap();
    names.push(done.recv().await.unwrap());
    names.push(done.recv().await.unwrap());
    names.sort();
    assert_eq!(names, ["a", "a", "b", "b"]);
    assert_eq!(
        fake.calls(crate::fake::Verb::List),
        2,
        "the watcher re-listed"
    );
    let last_b = ctx
        .seen()
        .into_iter()
        .rfind(|(name, _, _)| name == "b")
        .unwrap();
    assert!(!last_b.2, "b is reconciled as deleted");
}
