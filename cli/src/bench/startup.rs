//! `caravan bench startup`: the time from a job's create request to its task running, end to
//! end on a live cluster (the dev agent: server and client in one process).
//!
//! For each of `--jobs` batch jobs, one after the other: list the job's allocations (none) and
//! open a watch on them (`fieldSelector=spec.jobName=<job>`) from that list's version, start
//! the clock, create the Job, and stop the clock at the first event showing the allocation's
//! `status.clientStatus` `running`. The breakdown: the create acknowledged, the allocation
//! placed (its ADDED event), running. Afterwards every job is stopped (`spec.stop`), its
//! allocations are waited for until the node reports them terminal, and the job is deleted.

use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use caravan_client::{
    Api, DeleteParams, HttpClient, ListParams, PatchParams, PostParams, WatchParams, WireEvent,
};
use caravan_schemas::Kind;
use futures::StreamExt;
use serde_json::{Value, json};

use super::StartupBenchArgs;
use super::report::{Stats, ms};

const NAMESPACE: &str = "default";
const TASK: &str = "t";
/// How long the cleanup waits for stopped allocations to become terminal.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// One job's timings, from just before its create request was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The create was acknowledged.
    pub acked: Duration,
    /// The allocation's ADDED event arrived.
    pub placed: Duration,
    /// An event showed the allocation running.
    pub running: Duration,
}

/// The task's driver configuration.
fn task_config(driver: &str, image: &str) -> Value {
    match driver {
        "raw_exec" => json!({"command": "/bin/sh", "args": ["-c", "sleep 30"]}),
        "oci" => json!({"image": image, "command": "/bin/sh", "args": ["-c", "sleep 30"]}),
        _ => json!({"runFor": "30s"}),
    }
}

/// A batch Job of one group with one small task that is never restarted.
pub fn job(name: &str, run_id: &str, driver: &str, image: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"bench": "startup", "bench.caravan.dev/run": run_id},
        },
        "spec": {
            "type": "batch",
            "groups": [{
                "name": "g",
                "count": 1,
                "restart": {"attempts": 0},
                "tasks": [{
                    "name": TASK,
                    "driver": driver,
                    "config": task_config(driver, image),
                    "resources": {"cpu": 20, "memoryMB": 16},
                }],
            }],
        },
    })
}

/// `spec.jobName=<job>`.
fn selector(job: &str) -> ListParams {
    ListParams {
        field_selector: Some(format!("spec.jobName={job}")),
        ..ListParams::default()
    }
}

fn client_status(alloc: &Value) -> &str {
    alloc
        .pointer("/status/clientStatus")
        .and_then(Value::as_str)
        .unwrap_or("pending")
}

fn terminal(status: &str) -> bool {
    matches!(status, "complete" | "failed" | "lost")
}

/// The task events of an allocation, `Type: message` each, for error messages.
fn task_events(alloc: &Value) -> String {
    let events: Vec<String> = alloc
        .pointer("/status/taskStates")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|states| states.values())
        .flat_map(|state| state["events"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            let (kind, message) = (
                e["type"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or(""),
            );
            if message.is_empty() {
                kind.to_owned()
            } else {
                format!("{kind}: {message}")
            }
        })
        .collect();
    if events.is_empty() {
        "no task events".into()
    } else {
        events.join("; ")
    }
}

/// Fails unless a ready node offers a healthy `driver`; returns its name.
async fn ready_node(client: &HttpClient, driver: &str) -> anyhow::Result<String> {
    let nodes = client
        .api(Kind::Node, None)
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing nodes at {}", client.address()))?;
    nodes
        .items
        .iter()
        .find(|n| {
            n.pointer("/status/status").and_then(Value::as_str) == Some("ready")
                && n.pointer(&format!("/status/drivers/{driver}/healthy"))
                    .and_then(Value::as_bool)
                    == Some(true)
        })
        .and_then(|n| n.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_owned)
        .ok_or_else(|| {
            anyhow!(
                "no ready node with a healthy {driver} driver among {} nodes (start `caravan \
                 agent --dev` as root for raw_exec and oci)",
                nodes.items.len()
            )
        })
}

pub async fn run(address: &str, args: StartupBenchArgs) -> anyhow::Result<()> {
    ensure!(args.jobs > 0, "--jobs must be at least 1");
    let client = HttpClient::new(address)?;
    let node = ready_node(&client, &args.driver).await?;
    let jobs = client.api(Kind::Job, Some(NAMESPACE));
    let allocs = client.api(Kind::Allocation, Some(NAMESPACE));
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
            & 0xff_ffff
    );
    println!(
        "bench startup: {} batch jobs one at a time, driver {} with config {}, against {} \
         (node {node})",
        args.jobs,
        args.driver,
        task_config(&args.driver, &args.image),
        client.address()
    );
    println!(
        "  each: list + watch allocations?fieldSelector=spec.jobName=<job>, then clock from \
         POST …/namespaces/{NAMESPACE}/jobs to the allocation's status.clientStatus=running"
    );
    let timeout = Duration::from_secs(args.timeout_secs);
    let mut created = Vec::with_capacity(args.jobs);
    let mut samples = Vec::with_capacity(args.jobs);
    let mut outcome = Ok(());
    for i in 0..args.jobs {
        let name = format!("bench-startup-{run_id}-{i}");
        match measure_one(&jobs, &allocs, &args, &name, &run_id, timeout, &mut created).await {
            Ok(sample) => samples.push(sample),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    let cleanup = cleanup(&jobs, &allocs, &created).await;
    outcome?;
    let cleanup = cleanup?;
    println!("{}", report(&args.driver, &samples));
    println!(
        "check: {} jobs created, each with exactly one allocation, each seen running",
        samples.len()
    );
    println!("{cleanup}");
    Ok(())
}

/// One job: watch, create, wait for its allocation to run.
async fn measure_one(
    jobs: &Api,
    allocs: &Api,
    args: &StartupBenchArgs,
    name: &str,
    run_id: &str,
    timeout: Duration,
    created: &mut Vec<String>,
) -> anyhow::Result<Sample> {
    let params = selector(name);
    let list = allocs.list(&params).await.context("listing allocations")?;
    ensure!(list.items.is_empty(), "job {name} already has allocations");
    let watch_params = WatchParams {
        timeout_seconds: Some(u32::try_from(timeout.as_secs() + 30).unwrap_or(u32::MAX)),
        ..WatchParams::from_list(&params)
    };
    let mut events = allocs
        .watch(&watch_params, &list.metadata.resource_version)
        .await
        .context("opening the allocation watch")?;
    let body = job(name, run_id, &args.driver, &args.image);

    let t0 = Instant::now();
    jobs.create(&body, &PostParams::default())
        .await
        .with_context(|| format!("creating job {name}"))?;
    let acked = t0.elapsed();
    created.push(name.to_owned());

    let deadline = tokio::time::Instant::from_std(t0 + timeout);
    let mut alloc_name: Option<String> = None;
    let mut placed = None;
    let mut last = Value::Null;
    loop {
        let next = tokio::time::timeout_at(deadline, events.next())
            .await
            .map_err(|_| {
                anyhow!(
                    "job {name}: its allocation was not running after {timeout:?} (client \
                     status {}, {})",
                    client_status(&last),
                    task_events(&last)
                )
            })?;
        let event = next
            .ok_or_else(|| anyhow!("job {name}: the allocation watch ended"))?
            .with_context(|| format!("job {name}: the allocation watch failed"))?;
        let object = match event {
            WireEvent::Added(o) => {
                ensure!(
                    placed.is_none(),
                    "job {name}: a second allocation was added"
                );
                placed = Some(t0.elapsed());
                o
            }
            WireEvent::Modified(o) => o,
            WireEvent::Bookmark(_) => continue,
            WireEvent::Deleted(o) => bail!(
                "job {name}: allocation {} was deleted",
                o.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            ),
            WireEvent::Error(status) => {
                bail!(
                    "job {name}: the allocation watch ended with {}",
                    status.message
                )
            }
        };
        let this = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match &alloc_name {
            None => alloc_name = Some(this),
            Some(first) => ensure!(
                *first == this,
                "job {name}: a second allocation {this} (after {first})"
            ),
        }
        let status = client_status(&object).to_owned();
        if status == "running" {
            let running = t0.elapsed();
            let placed =
                placed.ok_or_else(|| anyhow!("job {name}: running before its ADDED event"))?;
            return Ok(Sample {
                acked,
                placed,
                running,
            });
        }
        ensure!(
            !terminal(&status),
            "job {name}: allocation {} is {status} before running: {}",
            alloc_name.as_deref().unwrap_or("?"),
            task_events(&object)
        );
        last = object;
    }
}

/// Stops every job, waits until the node reports each one's allocations terminal, deletes the
/// jobs. Says what it did.
async fn cleanup(jobs: &Api, allocs: &Api, created: &[String]) -> anyhow::Result<String> {
    let stop = json!({"spec": {"stop": true}});
    for name in created {
        jobs.patch_merge(name, &stop, &PatchParams::default())
            .await
            .with_context(|| format!("stopping job {name}"))?;
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    let mut statuses: Vec<String>;
    loop {
        statuses = Vec::new();
        let mut waiting = None;
        for name in created {
            let list = allocs.list(&selector(name)).await?;
            ensure!(
                list.items.len() == 1,
                "job {name} has {} allocations, not 1",
                list.items.len()
            );
            for alloc in &list.items {
                let status = client_status(alloc);
                if !terminal(status) && waiting.is_none() {
                    waiting = Some(format!("{name} ({status})"));
                }
                statuses.push(status.to_owned());
            }
        }
        let Some(waiting) = waiting else { break };
        ensure!(
            Instant::now() < deadline,
            "the allocations of the stopped jobs are not all terminal after {STOP_TIMEOUT:?}: \
             {waiting} still runs"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for name in created {
        jobs.delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting job {name}"))?;
    }
    let count = |s: &str| statuses.iter().filter(|x| *x == s).count();
    Ok(format!(
        "cleanup: stopped {} jobs, their {} allocations ended ({} complete, {} failed, {} lost), \
         deleted the jobs",
        created.len(),
        statuses.len(),
        count("complete"),
        count("failed"),
        count("lost"),
    ))
}

/// Target p50 of job applied → task running, per driver.
fn target(driver: &str) -> Option<Duration> {
    match driver {
        "raw_exec" => Some(Duration::from_millis(200)),
        "oci" => Some(Duration::from_millis(300)),
        _ => None,
    }
}

fn line(s: &Stats) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  max {}  mean {}",
        ms(s.p50),
        ms(s.p90),
        ms(s.p99),
        ms(s.max),
        ms(s.mean)
    )
}

/// The summary of all jobs.
pub fn report(driver: &str, samples: &[Sample]) -> String {
    let stats = |f: fn(&Sample) -> Duration| Stats::of(&samples.iter().map(f).collect::<Vec<_>>());
    let total = stats(|s| s.running);
    let verdict = match target(driver) {
        Some(t) if total.p50 < t => format!("target p50 < {}: met", ms(t)),
        Some(t) => format!("target p50 < {}: NOT met", ms(t)),
        None => "no target for this driver".into(),
    };
    format!(
        "job applied → task running ({driver}, {} jobs): {}\n\
         \x20 create acknowledged:       {}\n\
         \x20 allocation placed (ADDED): {}\n\
         \x20 placed → running:          {}\n\
         {verdict}",
        total.count,
        line(&total),
        line(&stats(|s| s.acked)),
        line(&stats(|s| s.placed)),
        line(&stats(|s| s.running.saturating_sub(s.placed))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_small_batch_jobs_without_restarts() {
        let j = job("bench-startup-1-0", "1", "oci", "busybox:latest");
        assert_eq!(j["spec"]["type"], "batch");
        let group = &j["spec"]["groups"][0];
        assert_eq!(group["restart"]["attempts"], 0);
        let task = &group["tasks"][0];
        assert_eq!(task["resources"], json!({"cpu": 20, "memoryMB": 16}));
        assert_eq!(task["config"]["image"], "busybox:latest");
        assert_eq!(task["config"]["args"], json!(["-c", "sleep 30"]));
        let mock = job("j", "1", "mock", "busybox");
        assert_eq!(
            mock["spec"]["groups"][0]["tasks"][0]["config"],
            json!({"runFor": "30s"})
        );
        let raw = job("j", "1", "raw_exec", "busybox");
        assert_eq!(
            raw["spec"]["groups"][0]["tasks"][0]["config"]["command"],
            "/bin/sh"
        );
    }

    #[test]
    fn the_report_gives_percentiles_and_the_verdict() {
        let ms_ = Duration::from_millis;
        let samples: Vec<Sample> = (1..=10)
            .map(|i| Sample {
                acked: ms_(5),
                placed: ms_(20),
                running: ms_(100 + i * 10),
            })
            .collect();
        let text = report("raw_exec", &samples);
        assert!(
            text.starts_with(
                "job applied → task running (raw_exec, 10 jobs): p50 150.0 ms  p90 190.0 ms  \
                 p99 200.0 ms  max 200.0 ms  mean 155.0 ms"
            ),
            "{text}"
        );
        assert!(
            text.contains("placed → running:          p50 130.0 ms"),
            "{text}"
        );
        assert!(text.ends_with("target p50 < 200.0 ms: met"), "{text}");
        assert!(report("oci", &samples[9..]).ends_with("target p50 < 300.0 ms: met"));
        assert!(report("mock", &samples).ends_with("no target for this driver"));
        let slow = [Sample {
            acked: ms_(1),
            placed: ms_(2),
            running: ms_(250),
        }];
        assert!(report("raw_exec", &slow).ends_with("NOT met"));
    }

    #[test]
    fn task_events_are_summarised() {
        let alloc = json!({"status": {"clientStatus": "failed", "taskStates": {"t": {"events": [
            {"type": "Received", "time": "x"},
            {"type": "Driver Failure", "time": "x", "message": "image \"nope\" not found"},
        ]}}}});
        assert_eq!(client_status(&alloc), "failed");
        assert_eq!(
            task_events(&alloc),
            "Received; Driver Failure: image \"nope\" not found"
        );
        assert_eq!(task_events(&json!({})), "no task events");
        assert_eq!(client_status(&json!({})), "pending");
    }
}
