//! Every acknowledged write survives `kill -9`, and the watch resumes (or says 410) after it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use caravan_e2e::http::{self, WatchStream, collection_path, object_path};
use caravan_e2e::{Sandbox, fixtures};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Mutex;

const JOBS: usize = 1_000;
const CLIENTS: usize = 64;
const EVENT_DEADLINE: Duration = Duration::from_secs(30);

fn job_name(i: usize) -> String {
    format!("load-{i:04}")
}

/// Creates `JOBS` jobs from `CLIENTS` concurrent clients; returns name → acknowledged RV.
async fn create_jobs(sandbox: &Sandbox) -> BTreeMap<String, String> {
    let url = sandbox.url(&collection_path("default", "jobs"));
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (url, next, acked) = (url.clone(), next.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let client = http::client();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= JOBS {
                    return;
                }
                let name = job_name(i);
                let resp = client
                    .post(&url)
                    .json(&fixtures::small_job(&name))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("create {name}: {e}"));
                let status = resp.status();
                let body: Value = resp.json().await.unwrap_or_default();
                assert_eq!(status, StatusCode::CREATED, "create {name}: {body}");
                let rv = http::resource_version(&body)
                    .unwrap_or_else(|| panic!("create {name}: no resourceVersion in {body}"));
                acked.lock().await.insert(name, rv.to_owned());
            }
        }));
    }
    for task in tasks {
        task.await.expect("a client task panicked");
    }
    Arc::try_unwrap(acked).expect("all tasks done").into_inner()
}

/// Reads a watch until it ends; returns the events seen and whether it ended without an error.
async fn drain_watch(mut watch: WatchStream) -> (Vec<Value>, anyhow::Result<()>) {
    let mut seen = Vec::new();
    loop {
        match watch.next_event(Duration::from_secs(120)).await {
            Ok(Some(event)) => seen.push(event),
            Ok(None) => return (seen, Ok(())),
            Err(e) => return (seen, Err(e)),
        }
    }
}

fn rv_number(rv: &str) -> u64 {
    rv.parse()
        .unwrap_or_else(|_| panic!("resourceVersion {rv:?} is not a number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_survives_kill_9_with_every_acknowledged_write() {
    let mut sandbox = Sandbox::start("kill-9");
    let client = http::client();
    let jobs = collection_path("default", "jobs");

    let list: Value = client
        .get(sandbox.url(&jobs))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rv0 = http::resource_version(&list)
        .unwrap_or_else(|| panic!("list without resourceVersion: {list}"))
        .to_owned();
    let watch_url = sandbox.url(&format!("{jobs}?watch=true&resourceVersion={rv0}"));
    let live_watch = WatchStream::open(&client, &watch_url).await.unwrap();
    let live_watch = tokio::spawn(drain_watch(live_watch));

    let acked = create_jobs(&sandbox).await;
    sandbox.kill_9();
    assert_eq!(acked.len(), JOBS);

    // The live watch must end (the connection dies with the process), not hang.
    let (live_events, _end) = tokio::time::timeout(Duration::from_secs(10), live_watch)
        .await
        .expect("the watch opened before kill -9 did not end")
        .unwrap();
    for event in &live_events {
        let (Some(name), Some(rv)) = (
            http::name(&event["object"]),
            http::resource_version(&event["object"]),
        ) else {
            continue;
        };
        if event["type"] == "ADDED" && acked.contains_key(name) {
            assert_eq!(
                acked[name], rv,
                "live ADDED for {name} disagrees with the ack"
            );
        }
    }

    sandbox
        .restart()
        .unwrap_or_else(|e| panic!("restart after kill -9 failed: {e:#}"));

    // Every acknowledged job is there, unchanged since its ack (or only touched later).
    let recovered: Vec<(String, Value)> = futures::stream::iter(acked.keys().cloned())
        .map(|name| {
            let (client, url) = (
                client.clone(),
                sandbox.url(&object_path("default", "jobs", &name)),
            );
            async move {
                let resp = client
                    .get(&url)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("get {name}: {e}"));
                let status = resp.status();
                let body: Value = resp.json().await.unwrap_or_default();
                assert_eq!(
                    status,
                    StatusCode::OK,
                    "acknowledged job {name} lost: {body}"
                );
                (name, body)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (name, body) in &recovered {
        let rv = http::resource_version(body).unwrap_or_default();
        if rv != acked[name] {
            // A controller may have written the status since: never the spec, never backwards.
            assert!(
                rv_number(rv) > rv_number(&acked[name]),
                "{name}: rv {rv} < acked {}",
                acked[name]
            );
            assert_eq!(
                body["metadata"]["generation"], 1,
                "{name}: spec changed: {body}"
            );
        }
    }

    // A watch resumed from before the load replays every creation, or says 410 Gone.
    let mut resumed = WatchStream::open(&client, &watch_url).await.unwrap();
    let mut added: BTreeMap<String, String> = BTreeMap::new();
    let mut last_rv = rv_number(&rv0);
    let mut first = true;
    while added.len() < acked.len() {
        let event = resumed
            .next_event(EVENT_DEADLINE)
            .await
            .unwrap_or_else(|e| panic!("resumed watch: {e:#} after {} ADDED", added.len()))
            .unwrap_or_else(|| {
                panic!(
                    "resumed watch ended after {} of {} ADDED",
                    added.len(),
                    acked.len()
                )
            });
        if event["type"] == "ERROR" {
            assert!(
                first,
                "ERROR after {} replayed events: {event}",
                added.len()
            );
            http::assert_status(&event["object"], 410, "Expired");
            eprintln!("the resumed watch answered 410 Expired: {event}");
            return;
        }
        first = false;
        let object = &event["object"];
        let rv = http::resource_version(object).unwrap_or_else(|| panic!("no rv: {event}"));
        if event["type"] == "BOOKMARK" {
            continue;
        }
        assert!(rv_number(rv) >= last_rv, "events out of order at {event}");
        last_rv = rv_number(rv);
        let name = http::name(object).unwrap_or_default();
        if event["type"] == "ADDED" && acked.contains_key(name) {
            assert_eq!(
                acked[name], rv,
                "replayed ADDED for {name} disagrees with the ack"
            );
            added.insert(name.to_owned(), rv.to_owned());
        }
    }
    eprintln!("the resumed watch replayed all {} creations", added.len());
}
