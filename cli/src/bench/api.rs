//! `caravan bench api`: concurrent Job creates, closed loop (as fast as acknowledged) or open
//! loop at a fixed offered rate.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use super::ApiBenchArgs;
use super::payload::{count_jobs, create_namespace, job};
use super::report::{histogram, summary};

struct ClientResult {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    latency: hdrhistogram::Histogram<u64>,
}

pub async fn run(base: &str, args: ApiBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let ns = create_namespace(&http, base, "bench-api").await?;
    let template = serde_json::to_string(&job(&ns, "NAME_PLACEHOLDER", args.size, json!({})))?;
    let url = format!("{base}/apis/caravan.dev/v1/namespaces/{ns}/jobs");
    let interval = args
        .rate
        .map(|r| Duration::from_secs_f64(args.clients as f64 / r.max(0.001)));
    println!(
        "bench api: {} clients creating ~{} B Jobs in namespace {ns} for {:?}{}",
        args.clients,
        args.size,
        args.duration,
        args.rate
            .map(|r| format!(" at {r:.0}/s offered"))
            .unwrap_or_default()
    );
    let start = Instant::now();
    let end = start + args.duration;
    let mut tasks = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let (http, url, template) = (http.clone(), url.clone(), template.clone());
        tasks.push(tokio::spawn(async move {
            let mut r = ClientResult {
                ok: 0,
                errors: 0,
                first_error: None,
                latency: histogram(),
            };
            // Open-loop clients start staggered so the offered load is smooth.
            let mut next = start
                + interval.map_or(Duration::ZERO, |iv| {
                    iv.mul_f64(i as f64 / args.clients as f64)
                });
            for seq in 0u64.. {
                let scheduled = match interval {
                    Some(iv) => {
                        if next >= end {
                            break;
                        }
                        tokio::time::sleep_until(next.into()).await;
                        let s = next;
                        next += iv;
                        s
                    }
                    None => {
                        let now = Instant::now();
                        if now >= end {
                            break;
                        }
                        now
                    }
                };
                let body = template.replace("NAME_PLACEHOLDER", &format!("j-{i}-{seq}"));
                let resp = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match resp {
                    Ok(resp) if resp.status().as_u16() == 201 => {
                        let _ = resp.bytes().await;
                        r.ok += 1;
                    }
                    Ok(resp) => {
                        r.errors += 1;
                        let code = resp.status();
                        let text = resp.text().await.unwrap_or_default();
                        r.first_error.get_or_insert(format!("{code}: {text}"));
                    }
                    Err(e) => {
                        r.errors += 1;
                        r.first_error.get_or_insert(e.to_string());
                    }
                }
                let _ = r
                    .latency
                    .record(scheduled.elapsed().as_micros().max(1) as u64);
            }
            r
        }));
    }
    let mut latency = histogram();
    let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None);
    for t in tasks {
        let r = t.await.context("a client task panicked")?;
        ok += r.ok;
        errors += r.errors;
        first_error = first_error.or(r.first_error);
        latency.add(&r.latency).context("merging histograms")?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "creates: {ok} acknowledged, {errors} failed in {elapsed:.2} s = {:.0}/s",
        ok as f64 / elapsed
    );
    println!("latency: {}", summary(&latency));
    if let Some(e) = first_error {
        println!("first error: {e}");
    }
    let stored = count_jobs(&http, base, &ns).await?;
    anyhow::ensure!(
        stored as u64 == ok,
        "the server holds {stored} Jobs in {ns} but acknowledged {ok}"
    );
    println!("check: the server holds exactly the {stored} acknowledged Jobs");
    Ok(())
}
