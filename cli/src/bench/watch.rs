//! `caravan bench watch`: many watch streams, a steady writer, the latency from each write to
//! its arrival at every watcher, and the server's memory per open watch, against Caravan or,
//! with `--etcd`, against etcd's JSON gateway.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::json;

use super::WatchBenchArgs;
use super::report::{histogram, summary};
use caravan_apiserver::procfs;

use super::target::{Target, created_in, server_usage, string_field};

const SENT_AT: &str = "bench.caravan.dev/sent-at";
/// Watches being opened at once (10,000 at once would overflow the listen backlog).
const OPENING: usize = 256;

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

/// The send time stamped in an event's document.
fn sent_at(doc: &[u8]) -> Option<u64> {
    string_field(doc, SENT_AT)?.parse().ok()
}

struct WatcherResult {
    added: usize,
    error: Option<String>,
    latency: hdrhistogram::Histogram<u64>,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub async fn run(base: &str, args: WatchBenchArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.watchers + 16)
        .tcp_nodelay(true)
        .build()?;
    let target = Arc::new(Target::prepare(&http, base, args.etcd.as_deref(), "bench-watch").await?);
    let from = target.watch_start(&http).await?;
    println!(
        "bench watch: {} watchers, {} writes at {}/s; {}",
        args.watchers,
        args.events,
        args.rate,
        target.describe()
    );
    let rss_before = server_usage(&http, &target).await?.rss_bytes;
    let ready = Arc::new(tokio::sync::Barrier::new(args.watchers + 1));
    let opening = Arc::new(tokio::sync::Semaphore::new(OPENING));
    let opened_at = Instant::now();
    let per_connection = args.streams_per_connection.map(|n| n.max(1));
    let connections = match per_connection {
        Some(per) => (0..args.watchers.div_ceil(per))
            .map(|_| {
                reqwest::Client::builder()
                    .http2_prior_knowledge()
                    .tcp_nodelay(true)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![http.clone()],
    };
    println!(
        "{}",
        match per_connection {
            Some(per) => format!(
                "watches: HTTP/2, {per} per connection, {} connections",
                connections.len()
            ),
            None => "watches: HTTP/1.1, one connection each".to_string(),
        }
    );
    let mut watchers = Vec::with_capacity(args.watchers);
    for i in 0..args.watchers {
        let connection = &connections[per_connection.map_or(0, |per| i / per)];
        let (http, ready, opening, target, from) = (
            connection.clone(),
            ready.clone(),
            opening.clone(),
            target.clone(),
            from.clone(),
        );
        let expected = args.events;
        watchers.push(tokio::spawn(async move {
            let mut r = WatcherResult {
                added: 0,
                error: None,
                latency: histogram(),
            };
            let permit = opening.acquire().await;
            let stream = target.watch(&http, &from).await;
            drop(permit);
            // Every watcher reaches the barrier, opened or not, so the run never hangs.
            ready.wait().await;
            let mut stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    r.error = Some(format!("{e:#}"));
                    return r;
                }
            };
            while r.added < expected {
                let line = match stream.next_line().await {
                    Ok(Some(line)) => line,
                    Ok(None) => break,
                    Err(e) => {
                        r.error = Some(format!("{e:#}"));
                        break;
                    }
                };
                let now = unix_micros();
                for doc in created_in(stream.format, &line) {
                    r.added += 1;
                    if let Some(sent) = sent_at(&doc) {
                        let _ = r.latency.record(now.saturating_sub(sent).max(1));
                    }
                }
            }
            r
        }));
    }
    ready.wait().await;
    let open_secs = opened_at.elapsed().as_secs_f64();
    // Let the server settle the streams' buffers before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open = server_usage(&http, &target).await?;
    let rss_open = open.rss_bytes;
    let self_start = procfs::sample(None);
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let start = Instant::now();
    let mut acked = 0usize;
    for i in 0..args.events {
        tokio::time::sleep_until((start + interval.mul_f64(i as f64)).into()).await;
        let name = format!("w-{i}");
        let doc = target.document(
            &name,
            args.size,
            json!({ SENT_AT: unix_micros().to_string() }),
        );
        let req = target.create(&name, doc);
        let resp = http
            .request(req.method, &req.url)
            .header("content-type", req.content_type)
            .body(req.body.unwrap_or_default())
            .send()
            .await
            .context("write failed")?;
        if resp.status().as_u16() == target.created_code() {
            acked += 1;
        }
        let _ = resp.bytes().await;
    }
    let write_secs = start.elapsed().as_secs_f64();
    let mut latency = histogram();
    let (mut short, mut first_error) = (0usize, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    for w in watchers {
        let r = tokio::time::timeout_at(deadline.into(), w)
            .await
            .context("a watcher did not receive every event within 60 s of the last write")??;
        if r.added != acked {
            short += 1;
        }
        first_error = first_error.or(r.error);
        latency.add(&r.latency)?;
    }
    let end = server_usage(&http, &target).await?;
    let rss_end = end.rss_bytes;
    let self_cpu = match (self_start, procfs::sample(None)) {
        (Some(a), Some(b)) => (b.cpu - a.cpu).as_secs_f64(),
        _ => 0.0,
    };
    let server_cpu = end.cpu_seconds - open.cpu_seconds;
    let deliveries = latency.len().max(1) as f64;
    let per_watcher =
        |rss: u64| rss.saturating_sub(rss_before) as f64 / args.watchers as f64 / 1024.0;
    println!("watches: {} open in {open_secs:.2} s", args.watchers);
    println!("writes: {acked} acknowledged in {write_secs:.2} s");
    println!(
        "delivery to {} watchers ({} deliveries): {}",
        args.watchers,
        latency.len(),
        summary(&latency)
    );
    println!(
        "server RSS: {:.1} MiB before the watches, {:.1} MiB with them open ({:.1} KiB per \
         watcher), {:.1} MiB after the writes ({:.1} KiB per watcher)",
        mib(rss_before),
        mib(rss_open),
        per_watcher(rss_open),
        mib(rss_end),
        per_watcher(rss_end),
    );
    println!(
        "CPU from the first write to the last delivery: server {server_cpu:.1} s ({:.1} µs per \
         delivery), this load generator {self_cpu:.1} s ({:.1} µs per delivery)",
        server_cpu * 1e6 / deliveries,
        self_cpu * 1e6 / deliveries,
    );
    if let Some(e) = first_error {
        println!("first watch error: {e}");
    }
    anyhow::ensure!(
        short == 0,
        "{short} watchers did not see exactly {acked} created objects"
    );
    println!("check: every watcher saw exactly {acked} created objects");
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "summary op=watch watchers={} p50_ms={:.2} p99_ms={:.2} rss_per_watcher_kib={:.1}",
        args.watchers,
        ms(0.5),
        ms(0.99),
        per_watcher(rss_open)
    );
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
