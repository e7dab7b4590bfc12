//! `caravan alloc status NAME`: an allocation as Nomad shows it — its fields, each task's
//! state, resources and recent events, and how the scheduler chose its node.

use std::collections::BTreeSet;
use std::time::SystemTime;

use anyhow::Context as _;
use caravan_schemas::allocation::TaskState;
use caravan_schemas::naming::{display_name, parse_index};
use caravan_schemas::{Allocation, Kind};
use clap::{Args, Subcommand};

use crate::cmd::Context;
use crate::cmd::job::format::{ago, alloc_metrics, columns, kv, score_table, wire};

/// Arguments of `caravan alloc`.
#[derive(Debug, Args)]
pub struct AllocArgs {
    #[command(subcommand)]
    pub command: AllocCommand,
}

#[derive(Debug, Subcommand)]
pub enum AllocCommand {
    /// Show one allocation: tasks, events and placement metrics.
    Status(AllocStatusArgs),
}

#[derive(Debug, Args)]
pub struct AllocStatusArgs {
    /// The allocation's name.
    pub name: String,
}

pub async fn run(ctx: &Context, args: AllocArgs) -> anyhow::Result<()> {
    let AllocCommand::Status(a) = args.command;
    let value = ctx.api(Kind::Allocation).get(&a.name).await?;
    let alloc: Allocation =
        serde_json::from_value(value).context("the server returned an undecodable Allocation")?;
    print!("{}", alloc_status(&alloc, SystemTime::now()));
    Ok(())
}

/// One allocation in Nomad's `alloc status` layout.
pub fn alloc_status(alloc: &Allocation, now: SystemTime) -> String {
    let spec = &alloc.spec;
    let status = alloc.status.clone().unwrap_or_default();
    let name = alloc.metadata.name().to_string();
    let none = || "<none>".to_owned();
    let display =
        parse_index(&name).map_or_else(none, |i| display_name(&spec.job_name, &spec.group, i));
    let mut pairs = vec![
        ("ID", name.clone()),
        ("Eval ID", spec.eval_name.clone().unwrap_or_else(none)),
        ("Name", display),
        ("Node ID", spec.node_name.clone()),
        ("Job ID", spec.job_name.clone()),
        ("Job Version", spec.job_version.to_string()),
        ("Client Status", wire(&status.client_status)),
        (
            "Client Description",
            status.client_description.clone().unwrap_or_else(none),
        ),
        (
            "Desired Status",
            wire(&spec.desired_status.unwrap_or_default()),
        ),
        (
            "Desired Description",
            spec.desired_description.clone().unwrap_or_else(none),
        ),
        (
            "Created",
            ago(alloc.metadata.creation_timestamp.as_deref(), now),
        ),
        ("Modified", ago(status.modify_time.as_deref(), now)),
    ];
    if let Some(previous) = &spec.previous_allocation {
        pairs.push(("Replacement Of", previous.clone()));
    }
    if let Some(next) = &spec.next_allocation {
        pairs.push(("Replaced By", next.clone()));
    }
    if let Some(deployment) = &spec.deployment_name {
        pairs.push(("Deployment ID", deployment.clone()));
    }
    let mut out = kv(&pairs);

    let resources = spec.allocated_resources.as_ref();
    let ports = resources.map_or(&[][..], |r| r.shared.ports.as_slice());
    if !ports.is_empty() {
        out.push_str("\nAllocation Addresses:\n");
        let mut rows = vec![vec!["Label".into(), "Address".into(), "To".into()]];
        for port in ports {
            let ip = port.host_ip.as_deref().unwrap_or("<none>");
            let to = port.to.map_or_else(|| "-".to_owned(), |to| to.to_string());
            rows.push(vec![port.label.clone(), format!("{ip}:{}", port.value), to]);
        }
        out.push_str(&columns(&rows));
    }
    let mut tasks: BTreeSet<&String> = status.task_states.keys().collect();
    tasks.extend(resources.iter().flat_map(|r| r.tasks.keys()));
    for task in tasks {
        let state = status.task_states.get(task).cloned().unwrap_or_default();
        out.push_str(&format!("\nTask {task:?} is {:?}\n", wire(&state.state)));
        if let Some(r) = resources.and_then(|r| r.tasks.get(task)) {
            let disk = resources.map_or(0, |r| r.shared.disk_mb);
            out.push_str("Task Resources:\n");
            out.push_str(&columns(&[
                vec!["CPU".into(), "Memory".into(), "Disk".into()],
                vec![
                    format!("{} MHz", r.cpu),
                    format!("{} MiB", r.memory_mb),
                    format!("{disk} MiB"),
                ],
            ]));
        }
        out.push_str(&task_events(&state));
    }

    if let Some(metrics) = &status.metrics {
        out.push_str("\nPlacement Metrics\n");
        let mut pairs = vec![
            ("Nodes Evaluated", metrics.nodes_evaluated.to_string()),
            ("Nodes Filtered", metrics.nodes_filtered.to_string()),
            ("Nodes Exhausted", metrics.nodes_exhausted.to_string()),
        ];
        if let Some(time) = &metrics.allocation_time {
            pairs.push(("Allocation Time", time.clone()));
        }
        out.push_str(&kv(&pairs));
        for line in alloc_metrics(metrics, "") {
            if !line.contains("No nodes were eligible") {
                out.push_str(&line);
                out.push('\n');
            }
        }
        if let Some(scores) = score_table(metrics) {
            out.push('\n');
            out.push_str(&scores);
        }
    }
    out
}

/// `Task Events:` fields and, when there are any, the `Recent Events:` table, newest first.
fn task_events(state: &TaskState) -> String {
    let na = || "N/A".to_owned();
    let mut out = String::from("\nTask Events:\n");
    out.push_str(&kv(&[
        ("Started At", state.started_at.clone().unwrap_or_else(na)),
        ("Finished At", state.finished_at.clone().unwrap_or_else(na)),
        ("Total Restarts", state.restarts.to_string()),
        (
            "Last Restart",
            state.last_restart.clone().unwrap_or_else(na),
        ),
    ]));
    if state.events.is_empty() {
        return out;
    }
    out.push_str("\nRecent Events:\n");
    let mut rows = vec![vec!["Time".to_owned(), "Type".into(), "Description".into()]];
    for event in state.events.iter().rev() {
        let mut description = event.message.clone();
        let mut extra = Vec::new();
        if let Some(code) = event.exit_code {
            extra.push(format!("Exit Code: {code}"));
        }
        if let Some(signal) = event.signal.filter(|s| *s != 0) {
            extra.push(format!("Signal: {signal}"));
        }
        if !extra.is_empty() {
            if !description.is_empty() {
                description.push_str(", ");
            }
            description.push_str(&extra.join(", "));
        }
        rows.push(vec![event.time.clone(), event.r#type.clone(), description]);
    }
    out.push_str(&columns(&rows));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use caravan_schemas::allocation::{
        AllocationStatus, ClientStatus, NodeScore, ScorerScores, TaskEvent, TaskLifecycleState,
    };
    use caravan_schemas::{AllocMetrics, mock};

    use super::*;

    #[test]
    fn status_shows_tasks_events_and_placement_metrics() {
        let job = mock::job("web");
        let mut alloc = mock::allocation("web-web-3-0a1b2c3d", &job, &mock::node("n1"));
        alloc.spec.eval_name = Some("web-e1".into());
        let events = vec![
            TaskEvent {
                r#type: "Received".into(),
                time: "2026-01-02T15:00:00Z".into(),
                message: "Task received by client".into(),
                ..TaskEvent::default()
            },
            TaskEvent {
                r#type: "Terminated".into(),
                time: "2026-01-02T15:01:00Z".into(),
                exit_code: Some(1),
                ..TaskEvent::default()
            },
        ];
        alloc.status = Some(AllocationStatus {
            client_status: ClientStatus::Failed,
            task_states: caravan_schemas::NameMap::from([(
                "web".into(),
                TaskState {
                    state: TaskLifecycleState::Dead,
                    failed: true,
                    events,
                    ..TaskState::default()
                },
            )]),
            metrics: Some(Box::new(AllocMetrics {
                nodes_evaluated: 3,
                nodes_filtered: 1,
                constraint_filtered: BTreeMap::from([("${attr.kernel.name} = linux".into(), 1)]),
                scores: vec![NodeScore {
                    node_name: "n1".into(),
                    scores: ScorerScores {
                        binpack: Some(0.25),
                        ..ScorerScores::default()
                    },
                    norm_score: 0.25,
                }],
                ..AllocMetrics::default()
            })),
            ..AllocationStatus::default()
        });
        if let Some(resources) = alloc.spec.allocated_resources.as_mut() {
            resources.shared.ports = vec![caravan_schemas::allocation::AllocatedPort {
                label: "http".into(),
                value: 24527,
                to: None,
                host_ip: Some("10.0.0.5".into()),
            }];
        }
        let out = alloc_status(&alloc, SystemTime::now());
        assert!(
            out.contains(
                "\nAllocation Addresses:\n\
                 Label  Address         To\n\
                 http   10.0.0.5:24527  -\n"
            ),
            "{out}"
        );
        assert!(out.contains("Name                = web.web[3]\n"), "{out}");
        assert!(out.contains("Eval ID             = web-e1\n"), "{out}");
        assert!(out.contains("Client Status       = failed\n"), "{out}");
        assert!(out.contains("\nTask \"web\" is \"dead\"\n"), "{out}");
        assert!(
            out.contains(
                "Recent Events:\n\
             Time                  Type        Description\n\
             2026-01-02T15:01:00Z  Terminated  Exit Code: 1\n\
             2026-01-02T15:00:00Z  Received    Task received by client\n"
            ),
            "{out}"
        );
        assert!(
            out.ends_with(
                "Placement Metrics\n\
             Nodes Evaluated = 3\n\
             Nodes Filtered  = 1\n\
             Nodes Exhausted = 0\n\
             * Constraint \"${attr.kernel.name} = linux\": 1 nodes excluded by filter\n\
             \nNode  binpack  final score\n\
             n1    0.25     0.25\n"
            ),
            "{out}"
        );
    }
}
