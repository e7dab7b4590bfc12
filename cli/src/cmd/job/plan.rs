//! `caravan job plan`: reads the current Job, the Nodes and the job's Allocations, admits the
//! file's Job with `dryRun=All` (so defaults are the server's), runs the scheduler locally
//! ([`super::dryrun`]) and prints Nomad's plan: the diff with per-group annotations, then the
//! scheduler dry-run.

use anyhow::{Context as _, anyhow};
use caravan_client::{ListParams, ObjectList, PatchParams};
use caravan_schemas::plan::DesiredUpdates;
use caravan_schemas::evaluation::TriggeredBy;
use caravan_schemas::job::JobType;
use caravan_schemas::{Job, Kind};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::PlanArgs;
use super::diff::{job_diff, render};
use super::dryrun::{DryRunInput, DryRunResult, dry_run};
use super::exit::PLAN_CHANGES;
use super::format::{alloc_metrics, failed_group_header};
use super::run::load_job;
use crate::cmd::Context;

pub async fn run(ctx: &Context, args: PlanArgs) -> anyhow::Result<i32> {
    let (namespace, name, object) = load_job(ctx, &args.file)?;
    let api = ctx.client.api(Kind::Job, Some(&namespace));
    let current_value = api.get_opt(&name).await?;
    let params = PatchParams {
        dry_run: true,
        field_manager: Some("caravan".into()),
        force: true,
    };
    let proposed_value = api
        .apply(&name, &object, &params)
        .await
        .with_context(|| format!("error admitting job {name:?} (dry run)"))?;
    let nodes = ctx
        .client
        .api(Kind::Node, None)
        .list_all(&ListParams::default())
        .await
        .context("listing nodes")?;
    let selector = ListParams {
        field_selector: Some(format!("spec.jobName={name}")),
        ..ListParams::default()
    };
    let allocs = ctx
        .client
        .api(Kind::Allocation, Some(&namespace))
        .list_all(&selector)
        .await
        .context("listing the job's allocations")?;
    let index = list_revision(&nodes).max(list_revision(&allocs));
    let current: Option<Job> = current_value.clone().map(decode).transpose()?;
    let proposed: Job = decode(proposed_value.clone())?;
    let job_type = proposed.spec.job_type();
    let input = DryRunInput {
        current,
        proposed,
        nodes: decode_all(nodes)?,
        allocs: decode_all(allocs)?,
        index,
        now_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    let result = dry_run(input).map_err(|e| anyhow!("the scheduler failed: {e}"))?;
    let diff = job_diff(
        &name,
        current_value.as_ref().and_then(|v| v.get("spec")),
        proposed_value.get("spec"),
    );
    print!("{}", render(&diff, &result.annotations, args.verbose));
    println!();
    println!("Scheduler dry-run:");
    println!("{}", dry_run_section(&result, job_type));
    println!();
    println!(
        "To submit the job, run:\n\ncaravan job run -f {}",
        args.file.display()
    );
    Ok(exit_code(&result.annotations))
}

fn decode<T: DeserializeOwned>(value: Value) -> anyhow::Result<T> {
    serde_json::from_value(value).context("the server returned an undecodable object")
}

fn decode_all<T: DeserializeOwned>(list: ObjectList) -> anyhow::Result<Vec<T>> {
    list.items.into_iter().map(decode).collect()
}

fn list_revision(list: &ObjectList) -> u64 {
    list.metadata.resource_version.parse().unwrap_or(0)
}

/// Nomad's `job plan` exit code: 1 when allocations would be created, stopped, migrated or
/// replaced, 0 otherwise (in-place updates and ignores change no allocation's life).
pub fn exit_code(annotations: &BTreeMap<String, DesiredUpdates>) -> i32 {
    let changes = annotations
        .values()
        .any(|u| u.place + u.stop + u.migrate + u.destructive_update + u.reschedule > 0);
    if changes { PLAN_CHANGES } else { 0 }
}

/// The lines under `Scheduler dry-run:` (Nomad's `formatDryRun`).
pub fn dry_run_section(result: &DryRunResult, job_type: JobType) -> String {
    let mut out = Vec::new();
    if result.failed.is_empty() {
        out.push("- All tasks successfully allocated.".to_owned());
    } else {
        out.push(if job_type == JobType::System {
            "- WARNING: Failed to place allocations on all nodes.".to_owned()
        } else {
            "- WARNING: Failed to place all allocations.".to_owned()
        });
        for (group, metrics) in &result.failed {
            out.push(format!("  {}", failed_group_header(group, metrics)));
            out.extend(alloc_metrics(metrics, "    "));
        }
    }
    let rolling = result
        .created_evals
        .iter()
        .find(|e| e.spec.triggered_by == TriggeredBy::RollingUpdate);
    if let Some(at) = rolling.and_then(|e| e.spec.wait_until.as_deref()) {
        out.push(format!("- Rolling update, next evaluation at {at}."));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use caravan_schemas::AllocMetrics;

    use super::*;

    #[test]
    fn exit_codes_follow_allocation_changes() {
        let only = |u: DesiredUpdates| BTreeMap::from([("web".to_owned(), u)]);
        assert_eq!(exit_code(&BTreeMap::new()), 0);
        let ignore = DesiredUpdates {
            ignore: 3,
            in_place_update: 1,
            ..DesiredUpdates::default()
        };
        assert_eq!(exit_code(&only(ignore)), 0);
        let place = DesiredUpdates { place: 1, ..ignore };
        assert_eq!(exit_code(&only(place)), 1);
        let replace = DesiredUpdates {
            destructive_update: 2,
            ..DesiredUpdates::default()
        };
        assert_eq!(exit_code(&only(replace)), 1);
    }

    #[test]
    fn the_dry_run_section_reports_success_or_each_failed_group() {
        let ok = DryRunResult::default();
        assert_eq!(
            dry_run_section(&ok, JobType::Service),
            "- All tasks successfully allocated."
        );
        let failed = DryRunResult {
            failed: BTreeMap::from([(
                "web".to_owned(),
                AllocMetrics {
                    nodes_evaluated: 1,
                    nodes_exhausted: 1,
                    dimension_exhausted: BTreeMap::from([("memory".into(), 1)]),
                    ..AllocMetrics::default()
                },
            )]),
            ..DryRunResult::default()
        };
        assert_eq!(
            dry_run_section(&failed, JobType::Service),
            "\
- WARNING: Failed to place all allocations.
  Task Group \"web\" (failed to place 1 allocation):
    * Resources exhausted on 1 nodes
    * Dimension \"memory\" exhausted on 1 nodes"
        );
        assert!(dry_run_section(&failed, JobType::System).contains("on all nodes"));
    }
}
