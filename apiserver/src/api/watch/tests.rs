use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use serde_json::json;

use super::*;
use crate::api::testing::{context, create_job, job};

/// What a test watcher receives.
#[derive(Debug)]
enum Frame {
    Event(EventType, String, usize),
    Bookmark,
    /// The watch fell out of the window (410 `Expired` over HTTP).
    Gone(String),
    /// The revision asked for did not come (504 over HTTP).
    TooLarge {
        requested: u64,
        current: u64,
    },
}

/// Frames events as (type, name, bytes), counting what it framed.
struct Recorder {
    framed: Arc<AtomicUsize>,
}

impl Framer for Recorder {
    type Frame = Frame;

    fn event(&mut self, t: EventType, obj: &Arc<StoredObject>) -> Frame {
        self.framed.fetch_add(1, Ordering::SeqCst);
        Frame::Event(t, obj.key.name.clone(), frame_bytes(obj))
    }

    fn bookmark(&mut self, _kind: Kind, _rv: u64, _initial_events_end: bool) -> Frame {
        Frame::Bookmark
    }

    fn expired(&mut self, error: &Error) -> Frame {
        match error {
            Error::Gone(message) => Frame::Gone(message.clone()),
            Error::ResourceVersionTooLarge { requested, current } => Frame::TooLarge {
                requested: *requested,
                current: *current,
            },
            other => panic!("a watch ends on Gone or ResourceVersionTooLarge, not {other:?}"),
        }
    }
}

/// A watch of the default namespace's jobs from `resource_version` (`None`: the current state).
fn spec(ctx: &ApiContext, resource_version: Option<u64>) -> WatchSpec {
    let options = WatchOptions {
        resource_version,
        ..WatchOptions::default()
    };
    WatchSpec::new(ctx, Kind::Job, Some("default"), options)
}

/// A Job of about `bytes` bytes of JSON.
fn big_job(name: &str, bytes: usize) -> serde_json::Value {
    let mut job = job(name);
    job["metadata"]["annotations"] = json!({"blob": "x".repeat(bytes)});
    job
}

fn events(batch: &[Frame]) -> Vec<&str> {
    batch
        .iter()
        .filter_map(|f| match f {
            Frame::Event(_, name, _) => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_watcher_that_does_not_read_holds_one_batch_of_the_initial_state() {
    let (_dir, ctx) = context(1000).await;
    let count = 64;
    let writes = (0..count).map(|i| create_job(&ctx, big_job(&format!("j{i:02}"), 16 * 1024)));
    futures::future::join_all(writes).await;
    let framed = Arc::new(AtomicUsize::new(0));
    let recorder = Recorder {
        framed: framed.clone(),
    };
    let stream = frames(ctx.clone(), spec(&ctx, None), recorder);
    futures::pin_mut!(stream);

    // Nothing is framed before the connection asks.
    tokio::task::yield_now().await;
    assert_eq!(framed.load(Ordering::SeqCst), 0);
    // One poll frames one batch: about BATCH_BYTES, far from the 1 MiB of the list.
    let first = stream.next().await.expect("a batch");
    let bytes: usize = first
        .iter()
        .map(|f| match f {
            Frame::Event(_, _, bytes) => *bytes,
            _ => 0,
        })
        .sum();
    assert!(bytes <= BATCH_BYTES + 17 * 1024, "{bytes}");
    assert!(bytes >= BATCH_BYTES, "{bytes}");
    assert_eq!(framed.load(Ordering::SeqCst), first.len());
    assert!(first.len() < count / 3, "{}", first.len());
    assert!(
        first
            .iter()
            .all(|f| matches!(f, Frame::Event(EventType::Added, ..))),
        "{first:?}"
    );

    // The rest comes batch by batch, each object once, in order.
    let mut names: Vec<String> = events(&first).into_iter().map(str::to_owned).collect();
    while names.len() < count {
        let batch = stream.next().await.expect("a batch");
        assert!(batch.len() <= first.len() + 1);
        names.extend(events(&batch).into_iter().map(str::to_owned));
    }
    let expected: Vec<String> = (0..count).map(|i| format!("j{i:02}")).collect();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn events_are_sent_a_batch_at_a_time_and_resume_inside_a_revision() {
    let (_dir, ctx) = context(1000).await;
    let from = ctx.store.watch_cache().revision();
    let count = 48;
    // Written concurrently: the proposer groups several into one log entry (one revision).
    let writes = (0..count).map(|i| create_job(&ctx, big_job(&format!("e{i:02}"), 16 * 1024)));
    futures::future::join_all(writes).await;
    let framed = Arc::new(AtomicUsize::new(0));
    let recorder = Recorder {
        framed: framed.clone(),
    };
    let stream = frames(ctx.clone(), spec(&ctx, Some(from)), recorder);
    futures::pin_mut!(stream);
    let mut names = Vec::new();
    while names.len() < count {
        let batch = stream.next().await.expect("a batch");
        assert!(
            batch.len() <= BATCH_BYTES / (16 * 1024) + 1,
            "{}",
            batch.len()
        );
        names.extend(events(&batch).into_iter().map(str::to_owned));
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "each event once");
    assert_eq!(framed.load(Ordering::SeqCst), count);
}

#[tokio::test]
async fn a_watcher_left_behind_by_the_window_gets_410_and_the_watch_ends() {
    let (_dir, ctx) = context(8).await;
    let from = create_job(&ctx, job("first")).await.resource_version;
    let stream = frames(
        ctx.clone(),
        spec(&ctx, Some(from)),
        Recorder {
            framed: Arc::default(),
        },
    );
    futures::pin_mut!(stream);
    // The watcher reads nothing while more events than the window holds are written.
    for i in 0..20 {
        create_job(&ctx, job(&format!("late{i}"))).await;
    }
    let batch = stream.next().await.expect("a batch");
    match batch.as_slice() {
        [Frame::Gone(message)] => {
            assert!(message.contains("too old resource version"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn a_watch_from_a_future_resource_version_waits_then_times_out() {
    let (_dir, ctx) = context(100).await;
    let current = ctx.store.watch_cache().revision();
    let far = current + 1000;
    let stream = frames(
        ctx.clone(),
        spec(&ctx, Some(far)),
        Recorder {
            framed: Arc::default(),
        },
    );
    futures::pin_mut!(stream);
    let started = std::time::Instant::now();
    let batch = stream.next().await.expect("a batch");
    assert!(started.elapsed() >= FUTURE_RESOURCE_VERSION_WAIT);
    match batch.as_slice() {
        [
            Frame::TooLarge {
                requested,
                current: at,
            },
        ] => {
            assert_eq!((*requested, *at), (far, current));
        }
        other => panic!("{other:?}"),
    }
    assert!(stream.next().await.is_none());

    // A revision that arrives while the watch waits starts it.
    let next = ctx.store.watch_cache().revision() + 1;
    let stream = frames(
        ctx.clone(),
        spec(&ctx, Some(next)),
        Recorder {
            framed: Arc::default(),
        },
    );
    futures::pin_mut!(stream);
    let writer = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            create_job(&ctx, job("soon")).await;
            create_job(&ctx, job("later")).await;
        })
    };
    let batch = stream.next().await.expect("a batch");
    writer.await.expect("writer");
    assert!(
        batch
            .iter()
            .all(|f| !matches!(f, Frame::Gone(_) | Frame::TooLarge { .. })),
        "{batch:?}"
    );
}
