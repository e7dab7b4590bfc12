//! Watches through the HTTP API: resume, 410, selectors, initial events, bookmarks, timeouts.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::support::{alloc, rv, start, start_with};

#[tokio::test]
async fn watch_resumes_after_any_resource_version_in_the_window() {
    let s = start().await;
    let rv_a = s.create_job("a").await;
    s.create_job("b").await;
    s.http
        .delete(format!("{}/a", s.jobs()))
        .send()
        .await
        .unwrap();
    let mut w = s
        .watch(&format!("{}?watch=true&resourceVersion={rv_a}", s.jobs()))
        .await;
    assert_eq!(w.next_brief().await, ("ADDED".into(), "b".into()));
    let deleted = w.next().await;
    assert_eq!(deleted["type"], "DELETED");
    assert!(
        rv(&deleted["object"]) > rv_a,
        "DELETED carries the deletion's revision"
    );
    s.create_job("c").await;
    assert_eq!(w.next_brief().await, ("ADDED".into(), "c".into()));
}

#[tokio::test]
async fn watch_without_resource_version_starts_with_the_current_state() {
    let s = start().await;
    s.create_job("a").await;
    let mut w = s.watch(&format!("{}?watch=true", s.jobs())).await;
    assert_eq!(w.next_brief().await, ("ADDED".into(), "a".into()));
    s.send(
        Method::PATCH,
        &format!("{}/a", s.jobs()),
        "application/merge-patch+json",
        json!({"spec": {"priority": 10}}).to_string(),
    )
    .await;
    assert_eq!(w.next_brief().await, ("MODIFIED".into(), "a".into()));
}

#[tokio::test]
async fn a_resource_version_older_than_the_window_gets_410() {
    let s = start_with(|store, _| store.watch_cache_size = 5).await;
    let old = s.create_job("first").await;
    for i in 0..10 {
        s.create_job(&format!("j{i}")).await;
    }
    let mut w = s
        .watch(&format!("{}?watch=true&resourceVersion={old}", s.jobs()))
        .await;
    let e = w.next().await;
    assert_eq!(e["type"], "ERROR", "{e}");
    assert_eq!(e["object"]["code"], 410);
    assert_eq!(e["object"]["reason"], "Expired");
    assert!(
        w.next_within(Duration::from_secs(2)).await.is_none(),
        "the stream ends after the error"
    );
}

#[tokio::test]
async fn selector_watches_see_objects_enter_and_leave() {
    let s = start().await;
    let allocs = s.url("/apis/caravan.dev/v1/namespaces/default/allocations");
    let mut w = s
        .watch(&format!(
            "{allocs}?watch=true&resourceVersion=1&fieldSelector=spec.nodeName%3Dn1"
        ))
        .await;
    s.post(&allocs, &alloc("on-n2", "web", "n2")).await;
    s.post(&allocs, &alloc("on-n1", "web", "n1")).await;
    assert_eq!(w.next_brief().await, ("ADDED".into(), "on-n1".into()));
    let patch = |node: &str| json!({"spec": {"nodeName": node}}).to_string();
    s.send(
        Method::PATCH,
        &format!("{allocs}/on-n2"),
        "application/merge-patch+json",
        patch("n1"),
    )
    .await;
    assert_eq!(
        w.next_brief().await,
        ("ADDED".into(), "on-n2".into()),
        "moved into the selection"
    );
    s.send(
        Method::PATCH,
        &format!("{allocs}/on-n1"),
        "application/merge-patch+json",
        patch("n3"),
    )
    .await;
    assert_eq!(
        w.next_brief().await,
        ("DELETED".into(), "on-n1".into()),
        "moved out of the selection"
    );
}

#[tokio::test]
async fn send_initial_events_ends_with_the_initial_events_end_bookmark() {
    let s = start().await;
    s.create_job("a").await;
    s.create_job("b").await;
    let mut w = s
        .watch(&format!(
            "{}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&fieldSelector=metadata.name%3Db",
            s.jobs()
        ))
        .await;
    assert_eq!(w.next_brief().await, ("ADDED".into(), "b".into()));
    let bookmark = w.next().await;
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(bookmark["object"]["kind"], "Job");
    assert_eq!(bookmark["object"]["apiVersion"], "caravan.dev/v1");
    assert_eq!(
        bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

#[tokio::test]
async fn bookmarks_arrive_when_allowed() {
    let s = start_with(|_, api| api.bookmark_interval = Duration::from_millis(200)).await;
    let rv1 = s.create_job("a").await;
    let mut w = s
        .watch(&format!(
            "{}?watch=true&resourceVersion={rv1}&allowWatchBookmarks=true",
            s.jobs()
        ))
        .await;
    let e = w.next().await;
    assert_eq!(e["type"], "BOOKMARK");
    assert!(rv(&e["object"]) >= rv1);
}

#[tokio::test]
async fn timeout_seconds_ends_the_stream() {
    let s = start().await;
    let started = std::time::Instant::now();
    let mut w = s
        .watch(&format!(
            "{}?watch=true&resourceVersion=1&timeoutSeconds=1",
            s.jobs()
        ))
        .await;
    assert!(w.next_within(Duration::from_secs(10)).await.is_none());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the stream ended by the timeout"
    );
}

#[tokio::test]
async fn watching_one_object_by_name_sees_only_it() {
    let s = start().await;
    let rv1 = s.create_job("a").await;
    let mut w = s
        .watch(&format!("{}/b?watch=true&resourceVersion={rv1}", s.jobs()))
        .await;
    s.create_job("c").await;
    s.create_job("b").await;
    assert_eq!(w.next_brief().await, ("ADDED".into(), "b".into()));
}

#[tokio::test]
async fn progress_notify_tells_a_quiet_watch_every_commit_at_once() {
    // Periodic bookmarks are an hour apart: only progress notification can send one now.
    let s = start_with(|_, api| api.bookmark_interval = Duration::from_secs(3600)).await;
    let rv1 = s.create_job("a").await;
    let mut w = s
        .watch(&format!(
            "{}?watch=true&resourceVersion={rv1}&progressNotify=true",
            s.jobs()
        ))
        .await;
    let allocs = s.url("/apis/caravan.dev/v1/namespaces/default/allocations");
    let (code, created) = s.post(&allocs, &alloc("elsewhere", "a", "n1")).await;
    assert_eq!(code, 201);
    // The watch sees no allocation, but learns it is complete up to the allocation's revision.
    let bookmark = loop {
        let e = w
            .next_within(Duration::from_secs(30))
            .await
            .expect("a BOOKMARK after the commit");
        assert_eq!(
            e["type"], "BOOKMARK",
            "only bookmarks on a quiet watch: {e}"
        );
        if rv(&e["object"]) >= rv(&created) {
            break e;
        }
    };
    assert_eq!(bookmark["object"]["kind"], "Job");
    // A job change is still delivered as an event, not only as progress.
    let rv2 = s.create_job("b").await;
    let event = loop {
        let e = w.next().await;
        if e["type"] != "BOOKMARK" {
            break e;
        }
    };
    assert_eq!(
        (event["type"].as_str(), rv(&event["object"])),
        (Some("ADDED"), rv2)
    );
}

#[tokio::test]
async fn watches_share_one_http2_connection() {
    let s = start().await;
    // Cleartext HTTP/2 with prior knowledge: every request below is a stream of one
    // connection, as clients that multiplex their watches send them.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let version = h2.get(s.url("/version")).send().await.expect("version");
    assert_eq!(version.version(), reqwest::Version::HTTP_2);
    let mut watches = Vec::new();
    for _ in 0..3 {
        let resp = h2
            .get(format!("{}?watch=true", s.jobs()))
            .send()
            .await
            .expect("watch");
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        watches.push(crate::support::EventReader::new(resp));
    }
    s.create_job("a").await;
    for w in &mut watches {
        assert_eq!(w.next_brief().await, ("ADDED".into(), "a".into()));
    }
}
