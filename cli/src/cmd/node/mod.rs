//! `caravan node status [NODE]`, `caravan node eligibility NODE --enable|--disable` and
//! `caravan node drain` (in `drain.rs`), as `nomad node` shows and sets them.

mod drain;

use std::time::SystemTime;

use anyhow::Context as _;
use caravan_client::{ListParams, PatchParams};
use caravan_schemas::node::{Node, SchedulingEligibility};
use caravan_schemas::{Allocation, Kind};
use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;

use crate::cmd::Context;
use crate::cmd::job::format::{ago, columns, kv, wire};

/// Arguments of `caravan node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    pub command: NodeCommand,
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List nodes, or show one with its allocations.
    Status(NodeStatusArgs),
    /// Allow or forbid new placements on a node (running allocations stay).
    Eligibility(NodeEligibilityArgs),
    /// Move every allocation off a node (and make it ineligible), or stop a drain.
    Drain(drain::NodeDrainArgs),
}

#[derive(Debug, Args)]
pub struct NodeStatusArgs {
    /// The node's name; without it every node is listed.
    pub name: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["enable", "disable"])))]
pub struct NodeEligibilityArgs {
    /// The node's name.
    pub name: String,
    /// Make the node eligible for new allocations.
    #[arg(long)]
    pub enable: bool,
    /// Make the node ineligible for new allocations.
    #[arg(long)]
    pub disable: bool,
}

pub async fn run(ctx: &Context, args: NodeArgs) -> anyhow::Result<()> {
    match args.command {
        NodeCommand::Status(a) => match a.name {
            None => {
                let list = ctx
                    .client
                    .all_namespaces(Kind::Node)
                    .list_all(&ListParams::default())
                    .await?;
                let nodes: Vec<Node> = list
                    .items
                    .into_iter()
                    .filter_map(|v| serde_json::from_value(v).ok())
                    .collect();
                print!("{}", node_list(&nodes));
            }
            Some(name) => {
                let (node, allocs) = node_and_allocs(ctx, &name).await?;
                print!("{}", node_status(&node, &allocs, SystemTime::now()));
            }
        },
        NodeCommand::Eligibility(a) => {
            let value = if a.enable { "eligible" } else { "ineligible" };
            ctx.api(Kind::Node)
                .patch_merge(
                    &a.name,
                    &json!({"spec": {"schedulingEligibility": value}}),
                    &PatchParams::default(),
                )
                .await?;
            println!("Node {:?} scheduling eligibility set: {value}", a.name);
        }
        NodeCommand::Drain(a) => drain::run(ctx, a).await?,
    }
    Ok(())
}

/// The Node `name` and every allocation placed on it.
pub(super) async fn node_and_allocs(
    ctx: &Context,
    name: &str,
) -> anyhow::Result<(Node, Vec<Allocation>)> {
    let node: Node = serde_json::from_value(ctx.api(Kind::Node).get(name).await?)
        .context("the server returned an undecodable Node")?;
    let params = ListParams {
        field_selector: Some(format!("spec.nodeName={name}")),
        ..Default::default()
    };
    let allocs = ctx
        .client
        .all_namespaces(Kind::Allocation)
        .list_all(&params)
        .await?
        .items
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    Ok((node, allocs))
}

fn eligibility(node: &Node) -> String {
    wire(
        &node
            .spec
            .scheduling_eligibility
            .unwrap_or(SchedulingEligibility::Eligible),
    )
}

fn status(node: &Node) -> String {
    node.status
        .as_ref()
        .map_or_else(|| "initializing".into(), |s| wire(&s.status))
}

/// Every node, one row each (Nomad's `node status` columns).
pub fn node_list(nodes: &[Node]) -> String {
    if nodes.is_empty() {
        return "No nodes registered\n".into();
    }
    let mut rows = vec![
        [
            "Name",
            "Node Pool",
            "DC",
            "Class",
            "Drain",
            "Eligibility",
            "Status",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for node in nodes {
        rows.push(vec![
            node.metadata.name().to_string(),
            node.spec
                .node_pool
                .clone()
                .unwrap_or_else(|| "default".into()),
            node.spec.datacenter.clone().unwrap_or_else(|| "dc1".into()),
            node.spec
                .node_class
                .clone()
                .unwrap_or_else(|| "<none>".into()),
            node.spec.drain.is_some().to_string(),
            eligibility(node),
            status(node),
        ]);
    }
    columns(&rows)
}

/// One node with its resources and allocations.
pub fn node_status(node: &Node, allocs: &[Allocation], now: SystemTime) -> String {
    let st = node.status.clone().unwrap_or_default();
    let none = || "<none>".to_string();
    let mut out = kv(&[
        ("Name", node.metadata.name().to_string()),
        ("Class", node.spec.node_class.clone().unwrap_or_else(none)),
        (
            "DC",
            node.spec.datacenter.clone().unwrap_or_else(|| "dc1".into()),
        ),
        (
            "Node Pool",
            node.spec
                .node_pool
                .clone()
                .unwrap_or_else(|| "default".into()),
        ),
        ("Drain", node.spec.drain.is_some().to_string()),
        ("Eligibility", eligibility(node)),
        ("Status", status(node)),
        (
            "Status Description",
            st.status_description.clone().unwrap_or_else(none),
        ),
        (
            "Agent Address",
            node.spec.http_addr.clone().unwrap_or_else(none),
        ),
        ("Last Heartbeat", ago(st.last_heartbeat.as_deref(), now)),
        (
            "Drivers",
            st.drivers
                .iter()
                .filter(|(_, d)| d.detected && d.healthy)
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]);
    if let Some(r) = &st.resources {
        let reserved = st.reserved.clone().unwrap_or_default();
        out.push_str("\nNode Resources\n");
        out.push_str(&columns(&[
            vec!["CPU".into(), "Memory".into(), "Disk".into()],
            vec![
                format!("{}/{} MHz", r.cpu.saturating_sub(reserved.cpu), r.cpu),
                format!(
                    "{}/{} MiB",
                    r.memory_mb.saturating_sub(reserved.memory_mb),
                    r.memory_mb
                ),
                format!("{} MiB", r.disk_mb.saturating_sub(reserved.disk_mb)),
            ],
        ]));
    }
    out.push_str("\nAllocations\n");
    if allocs.is_empty() {
        out.push_str("No allocations placed\n");
        return out;
    }
    let mut rows = vec![
        [
            "ID",
            "Namespace",
            "Job",
            "Group",
            "Version",
            "Desired",
            "Status",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for a in allocs {
        rows.push(vec![
            a.metadata.name().to_string(),
            a.metadata.namespace.clone().unwrap_or_default(),
            a.spec.job_name.clone(),
            a.spec.group.clone(),
            a.spec.job_version.to_string(),
            wire(&a.spec.desired_status.unwrap_or_default()),
            a.status
                .as_ref()
                .map_or_else(|| "pending".into(), |s| wire(&s.client_status)),
        ]);
    }
    out.push_str(&columns(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(value: serde_json::Value) -> Node {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_list_shows_pool_dc_eligibility_and_status() {
        let nodes = [
            node(json!({"apiVersion": "caravan.dev/v1", "kind": "Node",
                "metadata": {"name": "n1"},
                "spec": {"datacenter": "east", "nodeClass": "gpu", "schedulingEligibility": "ineligible"},
                "status": {"status": "down"}})),
            node(json!({"apiVersion": "caravan.dev/v1", "kind": "Node",
                "metadata": {"name": "n2"}, "spec": {}})),
        ];
        let out = node_list(&nodes);
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            [
                "Name",
                "Node",
                "Pool",
                "DC",
                "Class",
                "Drain",
                "Eligibility",
                "Status"
            ]
        );
        assert_eq!(
            lines[1],
            [
                "n1",
                "default",
                "east",
                "gpu",
                "false",
                "ineligible",
                "down"
            ]
        );
        assert_eq!(
            lines[2],
            [
                "n2",
                "default",
                "dc1",
                "<none>",
                "false",
                "eligible",
                "initializing"
            ]
        );
        assert_eq!(node_list(&[]), "No nodes registered\n");
    }

    #[test]
    fn one_node_shows_resources_after_reserved_and_its_allocations() {
        let n = node(json!({"apiVersion": "caravan.dev/v1", "kind": "Node",
            "metadata": {"name": "n1"}, "spec": {"httpAddr": "10.0.0.5:4647"},
            "status": {"status": "ready",
                "resources": {"cpu": 4000, "memoryMB": 8192, "diskMB": 1000},
                "reserved": {"cpu": 500, "memoryMB": 192},
                "drivers": {"raw_exec": {"detected": true, "healthy": true},
                            "exec": {"detected": true, "healthy": false}}}}));
        let alloc: Allocation = serde_json::from_value(json!({
            "apiVersion": "caravan.dev/v1", "kind": "Allocation",
            "metadata": {"name": "web-web-0-abcdef01", "namespace": "default"},
            "spec": {"jobName": "web", "group": "web", "nodeName": "n1"},
            "status": {"clientStatus": "running"}}))
        .unwrap();
        let out = node_status(&n, &[alloc], SystemTime::now());
        assert!(out.contains("3500/4000 MHz"), "{out}");
        assert!(out.contains("8000/8192 MiB"), "{out}");
        let drivers = out.lines().find(|l| l.starts_with("Drivers")).unwrap();
        assert!(
            drivers.ends_with("= raw_exec"),
            "only healthy drivers: {drivers}"
        );
        assert!(out.contains("10.0.0.5:4647"), "{out}");
        let row = out.lines().last().unwrap();
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            [
                "web-web-0-abcdef01",
                "default",
                "web",
                "web",
                "0",
                "run",
                "running"
            ]
        );
    }
}
