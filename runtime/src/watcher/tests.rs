use std::pin::Pin;

use futures::{Stream, StreamExt};
use serde_json::json;
use tokio::time::Instant;

use super::*;
use crate::fake::{FakeClient, Verb};

type Events = Pin<Box<dyn Stream<Item = Result<Event, ClientError>> + Send>>;

fn job(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {}})
}

fn jobs(fake: &FakeClient) -> Events {
    Box::pin(watcher(fake.clone(), Kind::Job, None, ListQuery::default()))
}

/// `Init`, `InitApply a`, `Apply b`, `Delete c`, …
fn describe(event: &Event) -> String {
    let name = |o: &Value| o["metadata"]["name"].as_str().unwrap_or("?").to_owned();
    match event {
        Event::Init => "Init".into(),
        Event::InitApply(o) => format!("InitApply {}", name(o)),
        Event::InitDone => "InitDone".into(),
        Event::Apply(o) => format!("Apply {}", name(o)),
        Event::Delete(o) => format!("Delete {}", name(o)),
        Event::Progress(rv) => format!("Progress {rv}"),
    }
}

/// The next `n` events, which must not be errors, leaving out `Progress`.
async fn take(events: &mut Events, n: usize) -> Vec<String> {
    take_all(events, n)
        .await
        .into_iter()
        .filter(|e| !e.starts_with("Progress"))
        .collect()
}

/// The next events up to the `n`th that is not a `Progress`, which must not be errors.
async fn take_all(events: &mut Events, n: usize) -> Vec<String> {
    let mut taken = Vec::new();
    let mut counted = 0;
    while counted < n {
        let event = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .expect("the watcher stalled")
            .expect("the watcher ended")
            .expect("the watcher failed");
        counted += usize::from(!matches!(event, Event::Progress(_)));
        taken.push(describe(&event));
    }
    taken
}

#[tokio::test]
async fn lists_then_streams_live_changes() {
    let fake = FakeClient::new();
    fake.seed(Kind::Job, job("a"));
    fake.seed(Kind::Job, job("b"));
    let mut events = jobs(&fake);
    assert_eq!(
        take(&mut events, 4).await,
        ["Init", "InitApply a", "InitApply b", "InitDone"]
    );

    fake.create(Kind::Job, job("c")).await.unwrap();
    fake.patch(Kind::Job, "default", "a", json!({"spec": {"x": 1}}))
        .await
        .unwrap();
    fake.delete(Kind::Job, "default", "b").await.unwrap();
    assert_eq!(
        take(&mut events, 3).await,
        ["Apply c", "Apply a", "Delete b"]
    );
    assert_eq!((fake.calls(Verb::List), fake.calls(Verb::Watch)), (1, 1));
}

#[tokio::test]
async fn a_list_is_followed_by_its_revision_as_progress() {
    let fake = FakeClient::new();
    fake.seed(Kind::Job, job("a"));
    let listed = fake
        .list(Kind::Job, None, &ListQuery::default())
        .await
        .unwrap();
    let mut events = jobs(&fake);
    let mut seen = take_all(&mut events, 3).await;
    // The progress after InitDone comes before the next object event, so take one more.
    fake.create(Kind::Job, job("b")).await.unwrap();
    seen.extend(take_all(&mut events, 1).await);
    assert_eq!(
        seen,
        [
            "Init".to_owned(),
            "InitApply a".to_owned(),
            "InitDone".to_owned(),
            format!("Progress {}", listed.resource_version),
            "Apply b".to_owned(),
        ]
    );
}

#[tokio::test]
async fn gone_relists_with_a_fresh_init() {
    let fake = FakeClient::new();
    fake.seed(Kind::Job, job("a"));
    let mut events = jobs(&fake);
    take(&mut events, 3).await;
    fake.create(Kind::Job, job("b")).await.unwrap();
    assert_eq!(take(&mut events, 1).await, ["Apply b"]);

    fake.expire_watches();
    fake.create(Kind::Job, job("c")).await.unwrap();
    assert_eq!(
        take(&mut events, 5).await,
        [
            "Init",
            "InitApply a",
            "InitApply b",
            "InitApply c",
            "InitDone"
        ]
    );
    assert_eq!(fake.calls(Verb::List), 2);

    fake.delete(Kind::Job, "default", "a").await.unwrap();
    assert_eq!(take(&mut events, 1).await, ["Delete a"]);
}

#[tokio::test]
async fn an_ended_stream_resumes_from_the_last_revision() {
    let fake = FakeClient::new();
    let mut events = jobs(&fake);
    take(&mut events, 2).await;
    fake.create(Kind::Job, job("a")).await.unwrap();
    assert_eq!(take(&mut events, 1).await, ["Apply a"]);

    fake.end_watches();
    fake.create(Kind::Job, job("b")).await.unwrap();
    assert_eq!(take(&mut events, 1).await, ["Apply b"]);
    assert_eq!((fake.calls(Verb::List), fake.calls(Verb::Watch)), (1, 2));
}

#[tokio::test]
async fn resuming_from_a_compacted_revision_relists() {
    let fake = FakeClient::with_window(2);
    let mut events = jobs(&fake);
    take(&mut events, 2).await;
    fake.end_watches();
    for name in ["a", "b", "c"] {
        fake.create(Kind::Job, job(name)).await.unwrap();
    }
    assert_eq!(
        take(&mut events, 5).await,
        [
            "Init",
            "InitApply a",
            "InitApply b",
            "InitApply c",
            "InitDone"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn errors_are_yielded_then_retried_after_a_growing_backoff() {
    let fake = FakeClient::new();
    fake.fail_next(Verb::List, ClientError::Unavailable("down".into()));
    fake.fail_next(Verb::List, ClientError::Unavailable("still down".into()));
    let start = Instant::now();
    let mut events = jobs(&fake);
    assert!(matches!(
        events.next().await,
        Some(Err(ClientError::Unavailable(_)))
    ));
    assert!(matches!(
        events.next().await,
        Some(Err(ClientError::Unavailable(_)))
    ));
    assert_eq!(take(&mut events, 2).await, ["Init", "InitDone"]);
    assert!(matches!(events.next().await, Some(Ok(Event::Progress(_)))));
    assert_eq!(start.elapsed(), Duration::from_millis(500 + 1000));

    // A failed watch start resumes from the listed revision, without a re-list.
    fake.end_watches();
    fake.fail_next(Verb::Watch, ClientError::Unavailable("down".into()));
    fake.create(Kind::Job, job("a")).await.unwrap();
    assert!(matches!(
        events.next().await,
        Some(Err(ClientError::Unavailable(_)))
    ));
    assert_eq!(take(&mut events, 1).await, ["Apply a"]);
    assert_eq!(fake.calls(Verb::List), 3);
}

#[test]
fn backoff_doubles_and_is_capped() {
    assert_eq!(backoff(1), Duration::from_millis(500));
    assert_eq!(backoff(2), Duration::from_millis(1000));
    assert_eq!(backoff(5), Duration::from_millis(8000));
    assert_eq!(backoff(50), Duration::from_secs(30));
}

#[tokio::test]
async fn modify_changes_every_object_and_passes_the_rest_through() {
    let events = futures::stream::iter([
        Ok::<_, ClientError>(Event::Init),
        Ok(Event::InitApply(
            json!({"metadata": {"name": "a"}, "status": {"x": 1}}),
        )),
        Ok(Event::InitDone),
        Ok(Event::Apply(
            json!({"metadata": {"name": "a"}, "status": {"x": 2}}),
        )),
        Err(ClientError::Gone("expired".into())),
        Ok(Event::Delete(
            json!({"metadata": {"name": "a"}, "status": {"x": 3}}),
        )),
        Ok(Event::Progress(9)),
    ]);
    let out: Vec<_> = modify(events, |o| {
        o["status"].as_object_mut().unwrap().remove("x");
    })
    .collect()
    .await;
    let objects: Vec<_> = out
        .iter()
        .filter_map(|e| e.as_ref().ok().and_then(Event::object))
        .collect();
    assert_eq!(objects.len(), 3);
    assert!(objects.iter().all(|o| o["status"] == json!({})));
    assert_eq!(out.len(), 7);
    assert!(matches!(out[4], Err(ClientError::Gone(_))));
    assert!(matches!(out[6], Ok(Event::Progress(9))));
}
