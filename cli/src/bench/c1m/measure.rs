//! The measured part of a C1M run: wait for the nodes, submit the jobs, then follow the
//! allocations until every one is placed and reported running.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use caravan_client::{HttpClient, PostParams};
use caravan_schemas::Kind;
use futures::StreamExt;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::check;
use super::evals::EvalWatch;
use super::jobs::{self, JobShape, NAMESPACE};
use super::server::LocalServer;
use crate::bench::report::summary;
use crate::nodesim::Simulator;
use caravan_apiserver::procfs::{self, gib};

/// How often the counts are read.
const POLL: Duration = Duration::from_millis(250);
/// How often a progress line is printed.
const PROGRESS: Duration = Duration::from_secs(5);
/// How often the server-side check runs while waiting for nodes of another process.
const EXTERNAL_CHECK: Duration = Duration::from_secs(5);

/// The number of Allocation objects the server holds, from `/metrics`.
pub async fn allocation_count(http: &reqwest::Client, base: &str) -> anyhow::Result<u64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix("caravan_store_objects{kind=\"Allocation\"} "))
        .and_then(|v| v.trim().parse().ok())
        .context("no Allocation count in /metrics")
}

#[derive(Deserialize)]
struct Count {
    items: Vec<IgnoredAny>,
}

/// Nodes whose status is `ready`.
async fn ready_nodes(client: &HttpClient) -> anyhow::Result<u64> {
    let list: Count = client
        .get_path("/apis/caravan.dev/v1/nodes?fieldSelector=status.status%3Dready")
        .await
        .context("listing ready nodes")?;
    Ok(list.items.len() as u64)
}

/// Waits until `n` nodes are ready and (when simulated here) every one watches its
/// allocations.
pub async fn wait_nodes(
    client: &HttpClient,
    sim: Option<&Simulator>,
    n: u64,
    timeout: Duration,
) -> anyhow::Result<u64> {
    let deadline = Instant::now() + timeout;
    loop {
        let ready = ready_nodes(client).await?;
        let watching = sim.map_or(n, |s| s.stats().watching);
        if ready >= n && watching >= n {
            return Ok(ready);
        }
        if Instant::now() > deadline {
            let sim = sim.map(|s| s.stats().to_string()).unwrap_or_default();
            bail!("only {ready} of {n} nodes ready after {timeout:?} {sim}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Creates the jobs, `concurrency` requests at a time; with a `rate` (jobs per second), job `i`
/// is sent no earlier than `i / rate` seconds after the first.
pub async fn submit(
    client: &HttpClient,
    run_id: &str,
    shape: &JobShape,
    jobs: usize,
    (concurrency, rate): (usize, Option<f64>),
) -> anyhow::Result<()> {
    let api = client.api(Kind::Job, Some(NAMESPACE));
    let start = tokio::time::Instant::now();
    let gap = rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let results: Vec<caravan_client::Result<serde_json::Value>> = futures::stream::iter(0..jobs)
        .map(|i| {
            let (api, body) = (api.clone(), jobs::job(run_id, i, shape));
            let at = gap.map(|gap| start + gap.mul_f64(i as f64));
            async move {
                if let Some(at) = at {
                    tokio::time::sleep_until(at).await;
                }
                api.create(&body, &PostParams::default()).await
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for result in results {
        result.context("creating a job")?;
    }
    Ok(())
}

/// Where the run is watched from.
pub struct Sources<'a> {
    pub client: &'a HttpClient,
    pub http: reqwest::Client,
    pub base: String,
    pub sim: Option<&'a Simulator>,
    pub server: Option<&'a mut LocalServer>,
    pub server_pid: Option<u32>,
    pub evals: &'a EvalWatch,
    /// Allocations the server held before the jobs were submitted.
    pub before: u64,
    pub job_names: &'a [String],
    pub count: u32,
}

/// When each milestone was reached, from the first job submitted.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timeline {
    pub placed: Option<Duration>,
    pub running: Option<Duration>,
    pub peak_server_rss: u64,
}

/// Follows the run until every allocation is placed and running; fails at `timeout`, when the
/// server dies, or past `max_rss` bytes of server memory.
pub async fn follow(
    src: &mut Sources<'_>,
    started: Instant,
    timeout: Duration,
    max_rss: u64,
) -> anyhow::Result<Timeline> {
    let total = src.job_names.len() as u64 * u64::from(src.count);
    let mut timeline = Timeline::default();
    let mut last_print = Instant::now();
    let mut last_check = Instant::now();
    let mut last_placed = 0;
    loop {
        tokio::time::sleep(POLL).await;
        let elapsed = started.elapsed();
        let placed = allocation_count(&src.http, &src.base)
            .await?
            .saturating_sub(src.before);
        let running = src.sim.map(|s| s.stats().running);
        let rss = src
            .server_pid
            .and_then(|p| procfs::sample(Some(p)))
            .map_or(0, |s| s.rss_bytes);
        timeline.peak_server_rss = timeline.peak_server_rss.max(rss);
        if placed >= total && timeline.placed.is_none() {
            timeline.placed = Some(elapsed);
        }
        match running {
            Some(r) if r >= total => timeline.running = Some(elapsed),
            None if timeline.placed.is_some() && last_check.elapsed() >= EXTERNAL_CHECK => {
                last_check = Instant::now();
                let rows = check::fetch(src.client, src.job_names).await?;
                if check::check(src.job_names, src.count, &rows).passed() {
                    timeline.running = Some(started.elapsed());
                }
            }
            _ => {}
        }
        let lately = placed.saturating_sub(last_placed) as f64 / last_print.elapsed().as_secs_f64();
        let sim_rss = match src.sim {
            Some(_) => procfs::sample(None).map_or(0, |s| s.rss_bytes),
            None => 0,
        };
        let line = |what: &str| {
            let evals = src.evals.stats();
            format!(
                "[{:>7.1}s] {what}placed {placed}/{total} ({lately:.0}/s lately), running {}, \
                 evaluations finished {}/{}, server RSS {}{}",
                elapsed.as_secs_f64(),
                running.map_or_else(|| "(checked on the server)".into(), |r| r.to_string()),
                evals.finished,
                src.job_names.len(),
                gib(rss),
                if sim_rss > 0 {
                    format!(", simulator RSS {}", gib(sim_rss))
                } else {
                    String::new()
                },
            )
        };
        if timeline.placed.is_some() && timeline.running.is_some() {
            println!("{}", line(""));
            return Ok(timeline);
        }
        if last_print.elapsed() >= PROGRESS {
            println!("{}", line(""));
            last_print = Instant::now();
            last_placed = placed;
        }
        if let Some(server) = src.server.as_deref_mut()
            && !server.running()
        {
            bail!(
                "{}\nthe server exited; {}",
                line("STOPPED: "),
                server.log_tail()
            );
        }
        if elapsed > timeout {
            let sim = src.sim.map(|s| s.stats().to_string()).unwrap_or_default();
            let rejections = src.server.as_deref().map(|s| s.rejections());
            bail!(
                "{}\ngave up after {timeout:?}; finished evaluations' latency {}; plan \
                 rejections {rejections:?}; simulator: {sim}",
                line("TIMEOUT: "),
                summary(&src.evals.stats().latency),
            );
        }
        if rss > max_rss {
            bail!(
                "{}\nthe server's RSS passed the {} limit",
                line("MEMORY: "),
                gib(max_rss)
            );
        }
    }
}
