//! The watch cache's per-value index, through the cache's API.

use std::sync::Arc;
use std::time::Duration;

use caravan_schemas::Kind;
use serde_json::json;

use crate::store::StoredObject;
use crate::store::watch_cache::{Change, EventType, Field, TooOld, WatchCache};

const NODE: Field = (Kind::Allocation, "spec.nodeName");

fn alloc(name: &str, node: &str, rv: u64) -> Arc<StoredObject> {
    let object = json!({
        "kind": "Allocation",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "jobName": "web"}
    });
    Arc::new(StoredObject::from_value(Kind::Allocation, object, rv))
}

fn added(name: &str, node: &str, rv: u64) -> Arc<Change> {
    Arc::new(Change {
        event_type: EventType::Added,
        object: alloc(name, node, rv),
        previous: None,
    })
}

/// `name` moved from `from` to `to` at `rv`.
fn moved(name: &str, from: &str, to: &str, rv: u64) -> Arc<Change> {
    Arc::new(Change {
        event_type: EventType::Modified,
        object: alloc(name, to, rv),
        previous: Some(alloc(name, from, rv - 1)),
    })
}

fn names(events: &[Arc<Change>]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| (e.object.key.name.clone(), e.resource_version()))
        .collect()
}

fn pairs(expected: &[(&str, u64)]) -> Vec<(String, u64)> {
    expected
        .iter()
        .map(|(n, rv)| (n.to_string(), *rv))
        .collect()
}

#[test]
fn a_value_sees_its_own_events_and_the_objects_that_leave_it() {
    let cache = WatchCache::new(100, 0);
    cache.push(1, &[added("a", "n1", 1), added("b", "n2", 1)]);
    cache.push(2, &[added("c", "n1", 2)]);
    cache.push(3, &[moved("a", "n1", "n2", 3)]);

    let n1 = cache.events_after_value(NODE, "n1", 0, usize::MAX).unwrap();
    assert_eq!(names(&n1), pairs(&[("a", 1), ("c", 2), ("a", 3)]));
    let n2 = cache.events_after_value(NODE, "n2", 1, usize::MAX).unwrap();
    assert_eq!(names(&n2), pairs(&[("a", 3)]));
    assert!(
        cache
            .events_after_value(NODE, "n3", 0, usize::MAX)
            .unwrap()
            .is_empty()
    );
    // The job index is kept too; other kinds have none.
    let job = cache
        .events_after_value((Kind::Allocation, "spec.jobName"), "web", 2, usize::MAX)
        .unwrap();
    assert_eq!(names(&job), pairs(&[("a", 3)]));
}

#[test]
fn the_kind_window_decides_what_is_too_old_and_pruning_keeps_the_window() {
    let cache = WatchCache::new(2, 0);
    for rv in 1..=6 {
        cache.push(rv, &[added(&format!("a{rv}"), "n1", rv)]);
    }
    assert_eq!(
        cache
            .events_after_value(NODE, "n1", 1, usize::MAX)
            .unwrap_err(),
        TooOld {
            requested: 1,
            oldest: 4
        }
    );
    let kept = cache.events_after_value(NODE, "n1", 4, usize::MAX).unwrap();
    assert_eq!(names(&kept), pairs(&[("a5", 5), ("a6", 6)]));
}

#[tokio::test]
async fn a_value_watch_wakes_for_its_value_only() {
    let cache = Arc::new(WatchCache::new(100, 0));
    cache.push(1, &[added("a", "n1", 1)]);
    // An event already cached past `after` resolves at once.
    tokio::time::timeout(Duration::from_secs(30), cache.wait_for_value(NODE, "n1", 0))
        .await
        .expect("the cached event wakes the wait");

    let waiting = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.wait_for_value(NODE, "n1", 1).await })
    };
    // Let the wait subscribe before the other node's event is pushed.
    tokio::task::yield_now().await;
    cache.push(2, &[added("b", "n2", 2)]);
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished(), "an event of n2 woke a watch of n1");
    cache.push(3, &[added("c", "n1", 3)]);
    tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("an event of n1 wakes it")
        .unwrap();
}

#[test]
fn a_quiet_value_keeps_its_window_when_the_kind_window_moves() {
    let cache = WatchCache::new(2, 0);
    cache.push(1, &[added("a", "n1", 1)]);
    for rv in 2..=10 {
        cache.push(rv, &[added(&format!("b{rv}"), "n2", rv)]);
    }
    // The kind's window moved far past 1, but n1 had nothing after it: no re-list needed.
    assert!(cache.events_after(Kind::Allocation, 1, 10).is_err());
    assert!(
        cache
            .events_after_value(NODE, "n1", 1, usize::MAX)
            .unwrap()
            .is_empty()
    );
    // n1's own event was dropped, so a watch from before it must re-list.
    assert_eq!(
        cache
            .events_after_value(NODE, "n1", 0, usize::MAX)
            .unwrap_err(),
        TooOld {
            requested: 0,
            oldest: 1
        }
    );
}

#[test]
fn forgotten_values_raise_the_floor_of_values_without_a_ring() {
    let cache = WatchCache::new(2, 0);
    for (rv, node) in (1..).zip(["n1", "n2", "n3", "n4", "n5", "n6"]) {
        cache.push(rv, &[added(&format!("a{rv}"), node, rv)]);
    }
    // More than two rings, the oldest ones empty after pruning: some were forgotten, and a
    // value without a ring can no longer be replayed from before them.
    assert!(cache.events_after_value(NODE, "n9", 0, usize::MAX).is_err());
    assert!(
        cache
            .events_after_value(NODE, "n9", 6, usize::MAX)
            .unwrap()
            .is_empty()
    );
    // The newest value is still there.
    let n6 = cache.events_after_value(NODE, "n6", 5, usize::MAX).unwrap();
    assert_eq!(names(&n6), pairs(&[("a6", 6)]));
}

#[test]
fn nothing_before_the_initial_revision_can_be_replayed() {
    let cache = WatchCache::new(10, 5);
    assert!(cache.events_after_value(NODE, "n1", 4, usize::MAX).is_err());
    assert!(
        cache
            .events_after_value(NODE, "n1", 5, usize::MAX)
            .unwrap()
            .is_empty()
    );
    cache.reset(8);
    assert!(cache.events_after_value(NODE, "n1", 7, usize::MAX).is_err());
}
