//! `caravan job plan`: POSTs the file's Job to the server's plan endpoint
//! (`…/namespaces/{ns}/jobs/{name}/plan`, Nomad's `Job.Plan`), which admits it as `job run`
//! would store it and runs the real scheduler on its own state, writing nothing; prints
//! Nomad's plan from the answer (a `JobPlan`): the diff with per-group annotations, then the
//! scheduler dry-run.

use std::collections::BTreeMap;

use anyhow::Context as _;
use caravan_schemas::Kind;
use caravan_schemas::evaluation::TriggeredBy;
use caravan_schemas::job::JobType;
use caravan_schemas::job_plan::{JobPlan, SUBRESOURCE};
use caravan_schemas::plan::DesiredUpdates;

use super::PlanArgs;
use super::diff::{job_diff, render};
use super::exit::PLAN_CHANGES;
use super::format::{alloc_metrics, failed_group_header};
use super::run::load_job;
use crate::cmd::Context;

pub async fn run(ctx: &Context, args: PlanArgs) -> anyhow::Result<i32> {
    let (namespace, name, object) = load_job(ctx, &args.file)?;
    let plan: JobPlan = ctx
        .client
        .api(Kind::Job, Some(&namespace))
        .post_subresource(&name, SUBRESOURCE, &object)
        .await
        .with_context(|| format!("error planning job {name:?}"))?;
    let current = plan
        .current_spec
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .context("encoding the current job's spec")?;
    let proposed = serde_json::to_value(&plan.job.spec).context("encoding the job's spec")?;
    let diff = job_diff(&name, current.as_ref(), Some(&proposed));
    print!("{}", render(&diff, &plan.annotations, args.verbose));
    println!();
    println!("Scheduler dry-run:");
    println!("{}", dry_run_section(&plan, plan.job.spec.job_type()));
    println!();
    println!(
        "To submit the job, run:\n\ncaravan job run -f {}",
        args.file.display()
    );
    Ok(exit_code(&plan.annotations))
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
pub fn dry_run_section(plan: &JobPlan, job_type: JobType) -> String {
    let mut out = Vec::new();
    if plan.failed_group_allocs.is_empty() {
        out.push("- All tasks successfully allocated.".to_owned());
    } else {
        out.push(if job_type == JobType::System {
            "- WARNING: Failed to place allocations on all nodes.".to_owned()
        } else {
            "- WARNING: Failed to place all allocations.".to_owned()
        });
        for (group, metrics) in &plan.failed_group_allocs {
            out.push(format!("  {}", failed_group_header(group, metrics)));
            out.extend(alloc_metrics(metrics, "    "));
        }
    }
    let rolling = plan
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
        let ok = JobPlan::default();
        assert_eq!(
            dry_run_section(&ok, JobType::Service),
            "- All tasks successfully allocated."
        );
        let failed = JobPlan {
            failed_group_allocs: BTreeMap::from([(
                "web".to_owned(),
                AllocMetrics {
                    nodes_evaluated: 1,
                    nodes_exhausted: 1,
                    dimension_exhausted: BTreeMap::from([("memory".into(), 1)]),
                    ..AllocMetrics::default()
                },
            )]),
            ..JobPlan::default()
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
