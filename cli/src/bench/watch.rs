//! `caravan bench watch`: many watch streams, a steady writer, and the latency from each write
//! to its arrival at every watcher.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures::StreamExt;
use serde_json::json;

use super::WatchBenchArgs;
use super::payload::{create_namespace, job};
use super::report::{histogram, summary};

const SENT_AT: &str = "bench.caravan.dev/sent-at";

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

/// Finds the send time stamped in an event line without parsing the whole object.
fn sent_at(line: &[u8]) -> Option<u64> {
    let marker = format!("\"{SENT_AT}\":\"");
    let pos = line
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())?;
    let rest = &line[pos + marker.len()..];
    let end = rest.iter().position(|b| *b == b'"')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

struct WatcherResult {
    added: usize,
    latency: hdrhistogram::Histogram<u64>,
}

pub async fn run(base: &str, args: WatchBenchArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.watchers + 16)
        .tcp_nodelay(true)
        .build()?;
    let ns = create_namespace(&http, base, "bench-watch").await?;
    let url = format!("{base}/apis/caravan.dev/v1/namespaces/{ns}/jobs");
    let list: serde_json::Value = http
        .get(&url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    println!(
        "bench watch: {} watchers on namespace {ns}, {} writes at {}/s",
        args.watchers, args.events, args.rate
    );
    let ready = Arc::new(tokio::sync::Barrier::new(args.watchers + 1));
    let mut watchers = Vec::with_capacity(args.watchers);
    for _ in 0..args.watchers {
        let (http, ready) = (http.clone(), ready.clone());
        let watch_url = format!("{url}?watch=true&resourceVersion={rv}&timeoutSeconds=600");
        let expected = args.events;
        watchers.push(tokio::spawn(async move {
            let mut r = WatcherResult {
                added: 0,
                latency: histogram(),
            };
            let resp = http.get(&watch_url).send().await;
            ready.wait().await;
            let Ok(resp) = resp else { return r };
            let mut stream = resp.bytes_stream();
            let mut buf: Vec<u8> = Vec::new();
            while let Some(Ok(chunk)) = stream.next().await {
                let now = unix_micros();
                buf.extend_from_slice(&chunk);
                while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    if line.starts_with(b"{\"type\":\"ADDED\"") {
                        r.added += 1;
                        if let Some(sent) = sent_at(&line) {
                            let _ = r.latency.record(now.saturating_sub(sent).max(1));
                        }
                    }
                }
                if r.added >= expected {
                    break;
                }
            }
            r
        }));
    }
    ready.wait().await;
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let start = Instant::now();
    let mut acked = 0usize;
    for i in 0..args.events {
        tokio::time::sleep_until((start + interval.mul_f64(i as f64)).into()).await;
        let body = job(
            &ns,
            &format!("w-{i}"),
            args.size,
            json!({ SENT_AT: unix_micros().to_string() }),
        );
        let resp = http
            .post(&url)
            .json(&body)
            .send()
            .await
            .context("write failed")?;
        if resp.status().as_u16() == 201 {
            acked += 1;
        }
    }
    let mut latency = histogram();
    let mut short = 0usize;
    let deadline = Duration::from_secs(60);
    for w in watchers {
        let r = tokio::time::timeout(deadline, w)
            .await
            .context("a watcher did not receive every event within 60 s")??;
        if r.added != acked {
            short += 1;
        }
        latency.add(&r.latency)?;
    }
    println!(
        "writes: {acked} acknowledged in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    println!(
        "delivery to {} watchers ({} deliveries): {}",
        args.watchers,
        latency.len(),
        summary(&latency)
    );
    anyhow::ensure!(
        short == 0,
        "{short} watchers did not see exactly {acked} ADDED events"
    );
    println!("check: every watcher saw exactly {acked} ADDED events");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_at_is_found_in_an_event_line() {
        let line = br#"{"type":"ADDED","object":{"metadata":{"annotations":{"bench.caravan.dev/sent-at":"12345"}}}}"#;
        assert_eq!(sent_at(line), Some(12345));
        assert_eq!(sent_at(b"{}"), None);
    }
}
