//! `caravan eval list [--job NAME]` and `caravan eval status NAME`: evaluations as Nomad shows
//! them, with the placement metrics of the groups that could not be placed.

use std::time::SystemTime;

use anyhow::Context as _;
use caravan_schemas::{Evaluation, Kind};
use clap::{Args, Subcommand};

use crate::cmd::Context;
use crate::cmd::job::format::{
    ago, alloc_metrics, columns, failed_group_header, kv, revision, wire,
};
use crate::cmd::job::status::list;

/// Arguments of `caravan eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub command: EvalCommand,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// List evaluations, newest first.
    List(EvalListArgs),
    /// Show one evaluation and its failed placements.
    Status(EvalStatusArgs),
}

#[derive(Debug, Args)]
pub struct EvalListArgs {
    /// Only evaluations of this job.
    #[arg(long)]
    pub job: Option<String>,
}

#[derive(Debug, Args)]
pub struct EvalStatusArgs {
    /// The evaluation's name.
    pub name: String,
}

pub async fn run(ctx: &Context, args: EvalArgs) -> anyhow::Result<()> {
    let now = SystemTime::now();
    match args.command {
        EvalCommand::List(a) => {
            let selector = a.job.map(|job| format!("spec.jobName={job}"));
            let evals: Vec<Evaluation> = list(ctx, Kind::Evaluation, selector.as_deref()).await?;
            if evals.is_empty() {
                println!("No evals found");
            } else {
                print!("{}", evals_table(evals, now));
            }
        }
        EvalCommand::Status(a) => {
            let value = ctx.api(Kind::Evaluation).get(&a.name).await?;
            let eval: Evaluation = serde_json::from_value(value)
                .context("the server returned an undecodable Evaluation")?;
            print!("{}", eval_status(&eval, now));
        }
    }
    Ok(())
}

/// `ID  Priority  Triggered By  Job ID  Job Version  Node  Status  Placement Failures  Created`.
pub fn evals_table(mut evals: Vec<Evaluation>, now: SystemTime) -> String {
    evals.sort_by_key(|e| std::cmp::Reverse(revision(&e.metadata)));
    let header = [
        "ID",
        "Priority",
        "Triggered By",
        "Job ID",
        "Job Version",
        "Node",
        "Status",
        "Placement Failures",
        "Created",
    ];
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for eval in &evals {
        let status = eval.status.clone().unwrap_or_default();
        rows.push(vec![
            eval.metadata.name().to_string(),
            eval.spec.priority.unwrap_or(50).to_string(),
            wire(&eval.spec.triggered_by),
            eval.spec.job_name.clone(),
            eval.spec.job_version.to_string(),
            eval.spec
                .node_name
                .clone()
                .unwrap_or_else(|| "<none>".into()),
            wire(&status.status),
            (!status.failed_group_allocs.is_empty()).to_string(),
            ago(eval.metadata.creation_timestamp.as_deref(), now),
        ]);
    }
    columns(&rows)
}

/// One evaluation in Nomad's `eval status` layout.
pub fn eval_status(eval: &Evaluation, now: SystemTime) -> String {
    let status = eval.status.clone().unwrap_or_default();
    let none = || "<none>".to_owned();
    let mut pairs = vec![
        ("ID", eval.metadata.name().to_string()),
        (
            "Create Time",
            ago(eval.metadata.creation_timestamp.as_deref(), now),
        ),
        ("Status", wire(&status.status)),
        (
            "Status Description",
            status.status_description.clone().unwrap_or_else(none),
        ),
        ("Type", wire(&eval.spec.r#type.unwrap_or_default())),
        ("TriggeredBy", wire(&eval.spec.triggered_by)),
        ("Job ID", eval.spec.job_name.clone()),
        ("Job Version", eval.spec.job_version.to_string()),
        ("Namespace", eval.metadata.namespace().to_string()),
        ("Priority", eval.spec.priority.unwrap_or(50).to_string()),
        (
            "Placement Failures",
            (!status.failed_group_allocs.is_empty()).to_string(),
        ),
    ];
    if let Some(node) = &eval.spec.node_name {
        pairs.push(("Node ID", node.clone()));
    }
    if let Some(at) = &eval.spec.wait_until {
        pairs.push(("Wait Until", at.clone()));
    }
    for (key, value) in [
        ("Previous Eval", &eval.spec.previous_eval),
        ("Next Eval", &status.next_eval),
        ("Blocked Eval", &status.blocked_eval),
    ] {
        pairs.push((key, value.clone().unwrap_or_else(none)));
    }
    let mut out = kv(&pairs);
    if !status.failed_group_allocs.is_empty() {
        out.push_str("\nFailed Placements\n");
        for (group, metrics) in &status.failed_group_allocs {
            out.push_str(&failed_group_header(group, metrics));
            out.push('\n');
            for line in alloc_metrics(metrics, "  ") {
                out.push_str(&line);
                out.push('\n');
            }
        }
        if let Some(blocked) = &status.blocked_eval {
            out.push_str(&format!(
                "\nEvaluation {blocked:?} waiting for additional capacity to place remainder\n"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use caravan_schemas::evaluation::EvaluationState;
    use caravan_schemas::{AllocMetrics, EvaluationStatus, mock};

    use super::*;

    fn blocked_eval() -> Evaluation {
        let mut eval = mock::evaluation("web-e1", &mock::job("web"));
        eval.metadata.resource_version = Some("4".into());
        eval.status = Some(EvaluationStatus {
            status: EvaluationState::Complete,
            blocked_eval: Some("web-blocked-1".into()),
            failed_group_allocs: BTreeMap::from([(
                "web".into(),
                AllocMetrics {
                    nodes_evaluated: 2,
                    nodes_filtered: 2,
                    constraint_filtered: BTreeMap::from([(
                        "${attr.kernel.name} = linux".into(),
                        2,
                    )]),
                    ..AllocMetrics::default()
                },
            )]),
            ..EvaluationStatus::default()
        });
        eval
    }

    #[test]
    fn status_lists_fields_then_failed_placements() {
        let out = eval_status(&blocked_eval(), SystemTime::now());
        assert!(out.starts_with("ID                 = web-e1\n"), "{out}");
        assert!(out.contains("Status             = complete\n"), "{out}");
        assert!(out.contains("TriggeredBy        = job-register\n"), "{out}");
        assert!(out.contains("Placement Failures = true\n"), "{out}");
        assert!(
            out.ends_with(
                "\nFailed Placements\n\
             Task Group \"web\" (failed to place 1 allocation):\n\
             \x20 * Constraint \"${attr.kernel.name} = linux\": 2 nodes excluded by filter\n\
             \nEvaluation \"web-blocked-1\" waiting for additional capacity to place remainder\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn the_list_is_newest_first() {
        let older = mock::evaluation("web-e0", &mock::job("web"));
        let out = evals_table(vec![older, blocked_eval()], SystemTime::now());
        let ids: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
        assert_eq!(ids, ["ID", "web-e1", "web-e0"]);
        assert!(
            out.lines().nth(1).unwrap().contains("job-register  web"),
            "{out}"
        );
    }
}
