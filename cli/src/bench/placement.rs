//! `caravan bench placement`: registers nodes, submits jobs, and measures placements committed
//! through the Raft store per second and the evaluation latency, end to end on a live server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};

use super::PlacementBenchArgs;
use super::report::{histogram, summary};

/// Registers `n` ready nodes named `<prefix>-<i>`, 64 at a time.
async fn register_nodes(
    http: &reqwest::Client,
    base: &str,
    prefix: &str,
    n: usize,
) -> anyhow::Result<()> {
    let url = format!("{base}/apis/caravan.dev/v1/nodes");
    let results = futures::stream::iter(0..n)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let name = format!("{prefix}-{i}");
                let node = json!({"apiVersion": "caravan.dev/v1", "kind": "Node", "metadata": {"name": name}, "spec": {"datacenter": "dc1"}});
                http.post(&url).json(&node).send().await?.error_for_status()?;
                let status = json!({"status": {
                    "status": "ready",
                    "attributes": {"kernel.name": "linux", "cpu.arch": "amd64"},
                    "resources": {"cpu": 4000, "memoryMB": 16384, "diskMB": 100000},
                    "drivers": {"mock": {"detected": true, "healthy": true}}
                }});
                http.patch(format!("{url}/{name}/status"))
                    .header("content-type", "application/merge-patch+json")
                    .body(status.to_string())
                    .send()
                    .await?
                    .error_for_status()?;
                Ok::<(), reqwest::Error>(())
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    results
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .context("registering nodes")?;
    Ok(())
}

/// The number of Allocation objects the server holds, from `/metrics`.
async fn allocation_count(http: &reqwest::Client, base: &str) -> anyhow::Result<u64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("caravan_store_objects{kind=\"Allocation\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

pub async fn run(base: &str, args: PlacementBenchArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()?;
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
            & 0xffffff
    );
    println!("bench placement: registering {} nodes", args.nodes);
    let t = Instant::now();
    register_nodes(&http, base, &format!("bench-{run_id}"), args.nodes).await?;
    println!(
        "  {} nodes registered in {:.1} s",
        args.nodes,
        t.elapsed().as_secs_f64()
    );
    let before = allocation_count(&http, base).await?;
    // Evaluation latency: from the evaluation's ADDED to its status leaving pending.
    let evals_url = format!(
        "{base}/apis/caravan.dev/v1/evaluations?watch=true&resourceVersion=0&allowWatchBookmarks=true"
    );
    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latency = Arc::new(Mutex::new(histogram()));
    let watch = {
        let (started, latency) = (started.clone(), latency.clone());
        let resp = http.get(&evals_url).send().await?.error_for_status()?;
        tokio::spawn(async move {
            let mut stream = resp.bytes_stream();
            let mut buf = Vec::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buf.extend_from_slice(&chunk);
                while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                        continue;
                    };
                    let name = event["object"]["metadata"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    let state = event["object"]["status"]["status"]
                        .as_str()
                        .unwrap_or("pending");
                    let mut started = started
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    match (event["type"].as_str(), state) {
                        (Some("ADDED"), "pending") => {
                            started.insert(name, Instant::now());
                        }
                        (Some("MODIFIED"), "complete" | "failed" | "blocked") => {
                            if let Some(t) = started.remove(&name) {
                                let _ = latency
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    .record(t.elapsed().as_micros().max(1) as u64);
                            }
                        }
                        _ => {}
                    }
                }
            }
        })
    };
    let want = before + (args.jobs * args.count) as u64;
    println!(
        "bench placement: {} jobs × {} allocations",
        args.jobs, args.count
    );
    let start = Instant::now();
    let jobs_url = format!("{base}/apis/caravan.dev/v1/namespaces/default/jobs");
    let created = futures::stream::iter(0..args.jobs)
        .map(|i| {
            let (http, url) = (http.clone(), jobs_url.clone());
            let job = json!({
                "apiVersion": "caravan.dev/v1", "kind": "Job",
                "metadata": {"name": format!("bench-{run_id}-{i}")},
                "spec": {"datacenters": ["dc1"], "groups": [{"name": "g", "count": args.count, "tasks": [
                    {"name": "t", "driver": "mock", "resources": {"cpu": 100, "memoryMB": 64}}]}]}
            });
            async move { http.post(&url).json(&job).send().await?.error_for_status().map(|_| ()) }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    created
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .context("creating jobs")?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let mut placed = before;
    while placed < want {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {} allocations placed before the timeout",
            placed - before,
            want - before
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        placed = allocation_count(&http, base).await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = want - before;
    watch.abort();
    println!(
        "placed: {total} allocations in {elapsed:.2} s = {:.0} placements/s",
        total as f64 / elapsed
    );
    println!(
        "evaluation latency: {}",
        summary(
            &latency
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        )
    );
    Ok(())
}
