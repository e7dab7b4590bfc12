//! `caravan job status [NAME]`: the jobs table, or one job in Nomad's layout — its fields,
//! the per-group `Summary`, placement failures, the latest deployment, the latest evaluations
//! and the allocations.

use std::collections::BTreeMap;
use std::time::SystemTime;

use anyhow::Context as _;
use caravan_client::ListParams;
use caravan_schemas::evaluation::EvaluationState;
use caravan_schemas::job::GroupSummary;
use caravan_schemas::{Allocation, Deployment, Evaluation, Job, Kind};
use serde::de::DeserializeOwned;

use super::StatusArgs;
use super::format::{ago, alloc_metrics, columns, kv, revision, wire};
use crate::cmd::Context;
use crate::cmd::deployment::format::latest_deployment;
use crate::cmd::deployment::operate;

/// Evaluations shown under `Latest Evaluations`.
const LATEST_EVALS: usize = 5;

pub async fn run(ctx: &Context, args: StatusArgs) -> anyhow::Result<()> {
    let now = SystemTime::now();
    let Some(name) = args.name else {
        let jobs: Vec<Job> = list(ctx, Kind::Job, None).await?;
        if jobs.is_empty() {
            println!("No running jobs");
        } else {
            print!("{}", jobs_table(&jobs, now));
        }
        return Ok(());
    };
    let job: Job = serde_json::from_value(ctx.api(Kind::Job).get(&name).await?)
        .context("the server returned an undecodable Job")?;
    let selector = format!("spec.jobName={name}");
    let evals: Vec<Evaluation> = list(ctx, Kind::Evaluation, Some(&selector)).await?;
    let allocs: Vec<Allocation> = list(ctx, Kind::Allocation, Some(&selector)).await?;
    let deployments: Vec<Deployment> = list(ctx, Kind::Deployment, Some(&selector)).await?;
    let latest = operate::latest(&deployments, &job);
    print!("{}", job_status(&job, &evals, &allocs, latest, now));
    Ok(())
}

/// Every object of `kind` in the namespace, decoded.
pub async fn list<T: DeserializeOwned>(
    ctx: &Context,
    kind: Kind,
    field_selector: Option<&str>,
) -> anyhow::Result<Vec<T>> {
    let params = ListParams {
        field_selector: field_selector.map(str::to_owned),
        ..ListParams::default()
    };
    let list = ctx.api(kind).list_all(&params).await?;
    list.items
        .into_iter()
        .map(|item| {
            serde_json::from_value(item).context("the server returned an undecodable object")
        })
        .collect()
}

fn name(meta: &caravan_schemas::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

/// `running`, or `dead (stopped)` for a stopped job, as Nomad shows it.
fn job_state(job: &Job) -> String {
    let state = job
        .status
        .as_ref()
        .map(|s| wire(&s.status))
        .unwrap_or_else(|| "pending".into());
    if job.spec.stop {
        format!("{state} (stopped)")
    } else {
        state
    }
}

fn submit_time(job: &Job) -> Option<&str> {
    job.status
        .as_ref()
        .and_then(|s| s.submit_time.as_deref())
        .or(job.metadata.creation_timestamp.as_deref())
}

/// `ID  Type  Priority  Status  Submit Date`.
pub fn jobs_table(jobs: &[Job], now: SystemTime) -> String {
    let mut rows = vec![
        vec!["ID", "Type", "Priority", "Status", "Submit Date"]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
    ];
    for job in jobs {
        rows.push(vec![
            name(&job.metadata),
            job.spec.job_type().as_str().to_owned(),
            job.spec.priority.unwrap_or(50).to_string(),
            job_state(job),
            ago(submit_time(job), now),
        ]);
    }
    columns(&rows)
}

/// One job in Nomad's `job status` layout; `deployment` is the job's latest deployment, shown
/// under `Latest Deployment`.
pub fn job_status(
    job: &Job,
    evals: &[Evaluation],
    allocs: &[Allocation],
    deployment: Option<&Deployment>,
    now: SystemTime,
) -> String {
    let spec = &job.spec;
    let datacenters = if spec.datacenters.is_empty() {
        "*".into()
    } else {
        spec.datacenters.join(",")
    };
    let mut out = kv(&[
        ("ID", name(&job.metadata)),
        ("Name", name(&job.metadata)),
        ("Submit Date", ago(submit_time(job), now)),
        ("Type", spec.job_type().as_str().to_owned()),
        ("Priority", spec.priority.unwrap_or(50).to_string()),
        ("Datacenters", datacenters),
        ("Namespace", job.metadata.namespace().to_string()),
        (
            "Node Pool",
            spec.node_pool.clone().unwrap_or_else(|| "default".into()),
        ),
        ("Status", job_state(job)),
        ("Version", job.version().to_string()),
        ("Periodic", spec.periodic.is_some().to_string()),
        ("Parameterized", spec.parameterized.is_some().to_string()),
    ]);
    out.push_str("\nSummary\n");
    out.push_str(&summary_table(job));
    let mut evals: Vec<&Evaluation> = evals.iter().collect();
    evals.sort_by_key(|e| std::cmp::Reverse(revision(&e.metadata)));
    if let Some(failures) = placement_failures(&evals) {
        out.push_str("\nPlacement Failure\n");
        out.push_str(&failures);
    }
    if let Some(deployment) = deployment {
        out.push_str("\nLatest Deployment\n");
        out.push_str(&latest_deployment(deployment));
    }
    out.push_str("\nLatest Evaluations\n");
    if evals.is_empty() {
        out.push_str("No evaluations found\n");
    } else {
        out.push_str(&evals_table(&evals[..evals.len().min(LATEST_EVALS)], now));
    }
    out.push_str("\nAllocations\n");
    if allocs.is_empty() {
        out.push_str("No allocations placed\n");
    } else {
        out.push_str(&allocs_table(allocs, now));
    }
    out
}

/// `Task Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown`, one row per group
/// of the spec or the summary.
pub fn summary_table(job: &Job) -> String {
    let mut groups: BTreeMap<&str, GroupSummary> = job
        .spec
        .groups
        .iter()
        .map(|g| (g.name.as_str(), GroupSummary::default()))
        .collect();
    for (group, summary) in job.status.iter().flat_map(|s| &s.summary) {
        groups.insert(group, summary.clone());
    }
    let header = [
        "Task Group",
        "Queued",
        "Starting",
        "Running",
        "Failed",
        "Complete",
        "Lost",
        "Unknown",
    ];
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for (group, s) in groups {
        let counts = [
            s.queued, s.starting, s.running, s.failed, s.complete, s.lost, s.unknown,
        ];
        let mut row = vec![group.to_owned()];
        row.extend(counts.iter().map(u32::to_string));
        rows.push(row);
    }
    columns(&rows)
}

/// The failed placements of the newest blocked evaluation, if one still waits.
fn placement_failures(newest_first: &[&Evaluation]) -> Option<String> {
    let blocked = newest_first.iter().find(|e| {
        e.status.as_ref().is_some_and(|s| {
            s.status == EvaluationState::Blocked && !s.failed_group_allocs.is_empty()
        })
    })?;
    let mut out = String::new();
    for (group, metrics) in &blocked.status.as_ref()?.failed_group_allocs {
        out.push_str(&format!("Task Group {group:?}:\n"));
        for line in alloc_metrics(metrics, "  ") {
            out.push_str(&line);
            out.push('\n');
        }
    }
    Some(out)
}

/// `ID  Priority  Triggered By  Job Version  Status  Placement Failures  Created`.
pub fn evals_table(evals: &[&Evaluation], now: SystemTime) -> String {
    let header = [
        "ID",
        "Priority",
        "Triggered By",
        "Job Version",
        "Status",
        "Placement Failures",
        "Created",
    ];
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for eval in evals {
        let status = eval.status.clone().unwrap_or_default();
        rows.push(vec![
            name(&eval.metadata),
            eval.spec.priority.unwrap_or(50).to_string(),
            wire(&eval.spec.triggered_by),
            eval.spec.job_version.to_string(),
            wire(&status.status),
            (!status.failed_group_allocs.is_empty()).to_string(),
            ago(eval.metadata.creation_timestamp.as_deref(), now),
        ]);
    }
    columns(&rows)
}

/// `ID  Node  Task Group  Version  Desired  Status  Created`, newest first.
pub fn allocs_table(allocs: &[Allocation], now: SystemTime) -> String {
    let mut sorted: Vec<&Allocation> = allocs.iter().collect();
    sorted.sort_by(|a, b| {
        (&b.metadata.creation_timestamp, &a.metadata.name)
            .cmp(&(&a.metadata.creation_timestamp, &b.metadata.name))
    });
    let header = [
        "ID",
        "Node",
        "Task Group",
        "Version",
        "Desired",
        "Status",
        "Created",
    ];
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for alloc in sorted {
        rows.push(vec![
            name(&alloc.metadata),
            alloc.spec.node_name.clone(),
            alloc.spec.group.clone(),
            alloc.spec.job_version.to_string(),
            wire(&alloc.spec.desired_status.unwrap_or_default()),
            wire(
                &alloc
                    .status
                    .as_ref()
                    .map(|s| s.client_status)
                    .unwrap_or_default(),
            ),
            ago(alloc.metadata.creation_timestamp.as_deref(), now),
        ]);
    }
    columns(&rows)
}

#[cfg(test)]
mod tests;
