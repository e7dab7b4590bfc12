//! Tests of the watch cache.

use std::time::Duration;

use serde_json::json;

use super::*;

fn event(kind: Kind, name: &str, rv: u64) -> Arc<Change> {
    let object = json!({"kind": kind.name(), "metadata": {"name": name, "namespace": "default"}});
    Arc::new(Change {
        event_type: EventType::Added,
        object: Arc::new(StoredObject::from_value(kind, object, rv)),
        previous: None,
    })
}

fn rvs(events: &[Arc<Change>]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| (e.object.key.name.clone(), e.resource_version()))
        .collect()
}

fn pair(name: &str, rv: u64) -> (String, u64) {
    (name.to_owned(), rv)
}

#[test]
fn events_after_returns_newer_events_of_the_kind_in_order() {
    let cache = WatchCache::new(10, 1);
    cache.push(2, &[event(Kind::Job, "j1", 2), event(Kind::Node, "n1", 2)]);
    cache.push(3, &[]);
    cache.push(4, &[event(Kind::Job, "j2", 4)]);
    assert_eq!(cache.revision(), 4);

    let all = cache
        .events_after(Kind::Job, 1, 100)
        .expect("inside the window");
    assert_eq!(rvs(&all), [pair("j1", 2), pair("j2", 4)]);
    let newer = cache
        .events_after(Kind::Job, 2, 100)
        .expect("inside the window");
    assert_eq!(rvs(&newer), [pair("j2", 4)]);
    assert_eq!(
        rvs(&cache.events_after(Kind::Job, 3, 100).expect("ok")),
        [pair("j2", 4)]
    );
    assert!(
        cache
            .events_after(Kind::Job, 4, 100)
            .expect("ok")
            .is_empty()
    );
    assert!(
        cache
            .events_after(Kind::Job, 99, 100)
            .expect("ok")
            .is_empty()
    );
    assert_eq!(
        rvs(&cache.events_after(Kind::Job, 1, 1).expect("ok")),
        [pair("j1", 2)]
    );
    assert_eq!(
        rvs(&cache.events_after(Kind::Node, 1, 10).expect("ok")),
        [pair("n1", 2)]
    );
    assert!(
        cache
            .events_after(Kind::Allocation, 1, 10)
            .expect("ok")
            .is_empty()
    );
}

/// The error `events_after` gives, if any.
fn too_old(cache: &WatchCache, kind: Kind, after: u64) -> Option<TooOld> {
    cache.events_after(kind, after, usize::MAX).err()
}

#[test]
fn events_before_the_initial_revision_are_too_old() {
    let cache = WatchCache::new(10, 5);
    let expected = TooOld {
        requested: 4,
        oldest: 5,
    };
    assert_eq!(too_old(&cache, Kind::Job, 4), Some(expected));
    assert_eq!(too_old(&cache, Kind::Job, 5), None);
    cache.push(6, &[event(Kind::Job, "j1", 6)]);
    assert_eq!(too_old(&cache, Kind::Job, 4), Some(expected));
    assert_eq!(
        rvs(&cache.events_after(Kind::Job, 5, 10).expect("ok")),
        [pair("j1", 6)]
    );
}

#[test]
fn capacity_evicts_the_oldest_and_moves_the_window() {
    let cache = WatchCache::new(2, 0);
    for rv in 1..=4 {
        cache.push(rv, &[event(Kind::Job, &format!("j{rv}"), rv)]);
    }
    // j1 and j2 were dropped: the window starts at 2.
    assert_eq!(
        too_old(&cache, Kind::Job, 1),
        Some(TooOld {
            requested: 1,
            oldest: 2
        })
    );
    let events = cache
        .events_after(Kind::Job, 2, 10)
        .expect("inside the window");
    assert_eq!(rvs(&events), [pair("j3", 3), pair("j4", 4)]);
    // Eviction is per kind: another kind keeps its own window.
    assert!(
        cache
            .events_after(Kind::Node, 0, 10)
            .expect("ok")
            .is_empty()
    );
}

#[test]
fn events_sharing_a_revision_are_never_split() {
    let cache = WatchCache::new(3, 0);
    cache.push(1, &[event(Kind::Job, "a", 1)]);
    cache.push(
        2,
        &[
            event(Kind::Job, "b", 2),
            event(Kind::Job, "c", 2),
            event(Kind::Job, "d", 2),
        ],
    );
    // `a` was dropped: everything after 1 is still there.
    let events = cache
        .events_after(Kind::Job, 1, 10)
        .expect("inside the window");
    assert_eq!(rvs(&events), [pair("b", 2), pair("c", 2), pair("d", 2)]);
    assert!(too_old(&cache, Kind::Job, 0).is_some());

    cache.push(3, &[event(Kind::Job, "e", 3)]);
    // `b` (rv 2) was dropped, so a watch from 1 would miss it; from 2 it misses nothing.
    assert_eq!(
        too_old(&cache, Kind::Job, 1),
        Some(TooOld {
            requested: 1,
            oldest: 2
        })
    );
    let events = cache
        .events_after(Kind::Job, 2, 10)
        .expect("inside the window");
    assert_eq!(rvs(&events), [pair("e", 3)]);
}

#[test]
fn reset_clears_events_and_starts_the_window_at_the_revision() {
    let cache = WatchCache::new(10, 0);
    cache.push(1, &[event(Kind::Job, "j1", 1)]);
    cache.reset(50);
    assert_eq!(cache.revision(), 50);
    assert!(too_old(&cache, Kind::Job, 0).is_some());
    assert!(too_old(&cache, Kind::Node, 49).is_some());
    assert!(
        cache
            .events_after(Kind::Job, 50, 10)
            .expect("ok")
            .is_empty()
    );
    cache.push(51, &[event(Kind::Job, "j2", 51)]);
    assert_eq!(
        rvs(&cache.events_after(Kind::Job, 50, 10).expect("ok")),
        [pair("j2", 51)]
    );
}

#[tokio::test]
async fn wait_after_wakes_on_push() {
    let cache = Arc::new(WatchCache::new(10, 3));
    // Already past: resolves at once.
    tokio::time::timeout(Duration::from_secs(5), cache.wait_after(2))
        .await
        .expect("revision 3 > 2");

    let waiter = tokio::spawn({
        let cache = cache.clone();
        async move { cache.wait_after(4).await }
    });
    tokio::task::yield_now().await;
    cache.push(4, &[]);
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "revision 4 is not after 4");
    cache.push(5, &[event(Kind::Job, "j", 5)]);
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken by the push")
        .expect("task ok");
}

#[tokio::test]
async fn wait_for_kind_ignores_other_kinds() {
    let cache = WatchCache::new(10, 0);
    let waiting = {
        let cache = std::sync::Arc::new(cache);
        let c = cache.clone();
        let task = tokio::spawn(async move { c.wait_for_kind(Kind::Job, 0).await });
        cache.push(1, &[event(Kind::Allocation, "a", 1)]);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            !task.is_finished(),
            "an allocation change does not wake job watchers"
        );
        cache.push(2, &[event(Kind::Job, "j", 2)]);
        task
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
        .await
        .expect("a job change wakes job watchers")
        .expect("task");
}
