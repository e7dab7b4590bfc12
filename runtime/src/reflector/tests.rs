use caravan_schemas::{Kind, ObjectMeta};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::client::{Client, ListQuery};
use crate::fake::FakeClient;
use crate::watcher;

#[derive(Debug, Deserialize, PartialEq)]
struct Thing {
    metadata: ObjectMeta,
    spec: Spec,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Spec {
    replicas: u32,
}

fn thing(name: &str, replicas: u32) -> Value {
    json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"replicas": replicas}})
}

fn names(store: &Store<Thing>) -> Vec<String> {
    let mut names: Vec<String> = store
        .state()
        .iter()
        .map(|t| t.metadata.name().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn a_relist_swaps_the_whole_contents_at_init_done() {
    let (store, mut writer) = store::<Thing>();
    writer.apply_event(&Event::Init);
    writer.apply_event(&Event::InitApply(thing("a", 1)));
    assert!(
        store.is_empty() && !store.is_ready(),
        "nothing shows before InitDone"
    );
    writer.apply_event(&Event::InitDone);
    assert_eq!(names(&store), ["a"]);
    assert!(store.is_ready());

    writer.apply_event(&Event::Init);
    writer.apply_event(&Event::InitApply(thing("b", 1)));
    writer.apply_event(&Event::InitApply(thing("c", 1)));
    assert_eq!(
        names(&store),
        ["a"],
        "readers see the old contents during a re-list"
    );
    writer.apply_event(&Event::InitDone);
    assert_eq!(names(&store), ["b", "c"]);
}

#[test]
fn applies_and_deletes_change_the_live_contents_and_bad_objects_are_skipped() {
    let (store, mut writer) = store::<Thing>();
    writer.apply_event(&Event::Init);
    writer.apply_event(&Event::InitDone);
    writer.apply_event(&Event::Apply(thing("a", 1)));
    writer.apply_event(&Event::Apply(thing("a", 3)));
    writer.apply_event(&Event::Apply(
        json!({"metadata": {"name": "bad"}, "spec": {"replicas": "x"}}),
    ));
    writer.apply_event(&Event::Apply(json!({"spec": {"replicas": 1}})));
    assert_eq!(store.len(), 1);
    assert_eq!(store.get("default", "a").unwrap().spec.replicas, 3);
    assert!(store.get("default", "bad").is_none());

    writer.apply_event(&Event::Delete(
        json!({"metadata": {"name": "a", "namespace": "default"}}),
    ));
    assert!(store.is_empty());
}

#[tokio::test]
async fn wait_until_ready_returns_after_the_first_list_or_fails_without_a_writer() {
    let (store, mut writer) = store::<Thing>();
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.wait_until_ready().await }
    });
    writer.apply_event(&Event::Init);
    writer.apply_event(&Event::InitDone);
    assert_eq!(waiting.await.unwrap(), Ok(()));
    assert_eq!(store.wait_until_ready().await, Ok(()));

    let (never, writer) = super::store::<Thing>();
    drop(writer);
    assert_eq!(never.wait_until_ready().await, Err(WriterDropped));
}

#[tokio::test]
async fn a_reflector_keeps_the_store_in_step_with_a_watcher() {
    let fake = FakeClient::new();
    fake.seed(Kind::Job, thing("a", 1));
    let (store, writer) = store::<Thing>();
    let events = watcher(fake.clone(), Kind::Job, None, ListQuery::default());
    let mut events = Box::pin(reflector(writer, events));
    while !matches!(events.next().await, Some(Ok(Event::InitDone))) {}
    assert_eq!(names(&store), ["a"]);

    fake.create(Kind::Job, thing("b", 2)).await.unwrap();
    assert!(matches!(events.next().await, Some(Ok(Event::Progress(_)))));
    assert!(matches!(events.next().await, Some(Ok(Event::Apply(_)))));
    assert_eq!(store.get("default", "b").unwrap().spec.replicas, 2);
}
