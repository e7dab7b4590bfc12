//! The watch stream served over WebSocket carries the same events as the chunked HTTP stream.

use std::time::Duration;

use caravan_e2e::http::{self, WatchStream, collection_path};
use caravan_e2e::{Sandbox, fixtures};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const DEADLINE: Duration = Duration::from_secs(20);

fn is_added(event: &Value, name: &str) -> bool {
    event["type"] == "ADDED" && http::name(&event["object"]) == Some(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_watch_streams_events() {
    let sandbox = Sandbox::start("websocket");
    let client = http::client();
    let watch_path = format!(
        "{}?watch=true&resourceVersion=0",
        collection_path("default", "jobs")
    );

    let ws_url = format!("ws://127.0.0.1:{}{watch_path}", sandbox.port());
    let (mut ws, response) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap_or_else(|e| panic!("websocket handshake with {ws_url} failed: {e}"));
    assert_eq!(response.status().as_u16(), 101);
    let mut chunked = WatchStream::open(&client, &sandbox.url(&watch_path))
        .await
        .unwrap();

    let resp = client
        .post(sandbox.url(&collection_path("default", "jobs")))
        .json(&fixtures::small_job("over-ws"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    let from_ws = tokio::time::timeout(DEADLINE, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let event: Value = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("websocket text is not JSON ({e}): {text}"));
                    if is_added(&event, "over-ws") {
                        return event;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("unexpected websocket message before ADDED: {other:?}"),
            }
        }
    })
    .await
    .expect("no ADDED event over the websocket");

    let from_chunked = loop {
        let event = chunked
            .next_event(DEADLINE)
            .await
            .unwrap()
            .expect("chunked watch ended");
        if is_added(&event, "over-ws") {
            break event;
        }
    };
    assert_eq!(from_ws, from_chunked, "websocket and chunked events differ");
    let _ = ws.close(None).await;
}
