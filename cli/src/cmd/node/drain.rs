//! `caravan node drain NODE --enable|--disable [--deadline D] [--no-deadline] [--force]
//! [--ignore-system] [--keep-ineligible] [--monitor]`: sets or clears the Node's `spec.drain`
//! (the leader's drainer does the moving) and follows the drain until it completes.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use caravan_client::PatchParams;
use caravan_schemas::allocation::ClientStatus;
use caravan_schemas::{Allocation, Kind};
use clap::{ArgGroup, Args};
use serde_json::{Value, json};

use crate::cmd::Context;
use crate::cmd::job::format::wire;

/// How often `--monitor` looks at the node and its allocations.
const MONITOR_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["enable", "disable", "monitor"]).multiple(true)))]
pub struct NodeDrainArgs {
    /// The node's name.
    pub name: String,
    /// Start draining: the node becomes ineligible and its allocations move elsewhere.
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Stop draining; the node becomes eligible again unless --keep-ineligible.
    #[arg(long)]
    pub disable: bool,
    /// Time allowed for migrations; what is left then is stopped, e.g. `1h`, `30m`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
    /// No deadline: wait for every migration however long it takes.
    #[arg(long, conflicts_with_all = ["deadline", "force"])]
    pub no_deadline: bool,
    /// Stop every allocation now, ignoring the groups' migrate settings.
    #[arg(long)]
    pub force: bool,
    /// Leave system job allocations running on the node.
    #[arg(long)]
    pub ignore_system: bool,
    /// With --disable: keep the node ineligible for new allocations.
    #[arg(long, conflicts_with = "enable")]
    pub keep_ineligible: bool,
    /// Follow the drain until it completes (Ctrl-C stops following, not the drain).
    #[arg(long)]
    pub monitor: bool,
}

/// The merge patch that starts a drain.
pub fn enable_patch(args: &NodeDrainArgs, now: SystemTime) -> Value {
    let deadline = if args.no_deadline {
        "0s".to_string()
    } else {
        humantime::format_duration(args.deadline).to_string()
    };
    json!({"spec": {
        "schedulingEligibility": "ineligible",
        "drain": {
            "deadline": deadline,
            "force": args.force,
            "ignoreSystemJobs": args.ignore_system,
            "startedAt": humantime::format_rfc3339_seconds(now).to_string(),
        },
    }})
}

/// The merge patch that stops a drain.
pub fn disable_patch(keep_ineligible: bool) -> Value {
    let eligibility = if keep_ineligible {
        "ineligible"
    } else {
        "eligible"
    };
    json!({"spec": {"drain": null, "schedulingEligibility": eligibility}})
}

pub async fn run(ctx: &Context, args: NodeDrainArgs) -> anyhow::Result<()> {
    let api = ctx.api(Kind::Node);
    if args.enable {
        api.patch_merge(
            &args.name,
            &enable_patch(&args, SystemTime::now()),
            &PatchParams::default(),
        )
        .await?;
        println!("Node {:?} drain strategy set", args.name);
    } else if args.disable {
        api.patch_merge(
            &args.name,
            &disable_patch(args.keep_ineligible),
            &PatchParams::default(),
        )
        .await?;
        println!("Node {:?} drain strategy unset", args.name);
    }
    if args.monitor && !args.disable {
        monitor(ctx, &args.name).await?;
    }
    Ok(())
}

/// What the monitor remembers of an allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    marked: bool,
    status: ClientStatus,
}

fn seen(alloc: &Allocation) -> Seen {
    Seen {
        marked: alloc.spec.should_migrate(),
        status: alloc
            .status
            .as_ref()
            .map_or(ClientStatus::Pending, |s| s.client_status),
    }
}

/// The monitor's lines for what changed on the node's allocations since `before`.
pub fn changes(before: &BTreeMap<String, Seen>, allocs: &[Allocation]) -> Vec<String> {
    let mut lines = Vec::new();
    for alloc in allocs {
        let name = alloc.metadata.name().to_string();
        let now = seen(alloc);
        let old = before.get(&name);
        if now.marked && !old.is_some_and(|o| o.marked) {
            lines.push(format!("Alloc {name:?} marked for migration"));
        }
        if let Some(old) = old
            && old.status != now.status
        {
            lines.push(format!(
                "Alloc {name:?} status {} -> {}",
                wire(&old.status),
                wire(&now.status)
            ));
        }
    }
    lines
}

fn stamp(line: &str) {
    println!(
        "{}: {line}",
        humantime::format_rfc3339_seconds(SystemTime::now())
    );
}

async fn monitor(ctx: &Context, name: &str) -> anyhow::Result<()> {
    stamp("Ctrl-C to stop monitoring: will not cancel the node drain");
    let mut before: BTreeMap<String, Seen> = BTreeMap::new();
    let mut first = true;
    loop {
        let (node, allocs) = super::node_and_allocs(ctx, name).await?;
        for line in changes(&before, &allocs) {
            stamp(&line);
        }
        before = allocs
            .iter()
            .map(|a| (a.metadata.name().to_string(), seen(a)))
            .collect();
        if node.spec.drain.is_none() {
            if first {
                stamp(&format!("No drain strategy set for node {name:?}"));
            } else {
                stamp(&format!("Drain complete for node {name:?}"));
            }
            return Ok(());
        }
        first = false;
        tokio::time::sleep(MONITOR_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: NodeDrainArgs,
    }

    fn parse(args: &[&str]) -> Result<NodeDrainArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("drain").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn enable_sets_the_strategy_and_makes_the_node_ineligible() {
        let args = parse(&["n1", "--enable", "--deadline", "30m", "--ignore-system"]).unwrap();
        let patch = enable_patch(&args, SystemTime::UNIX_EPOCH);
        assert_eq!(patch["spec"]["schedulingEligibility"], "ineligible");
        assert_eq!(patch["spec"]["drain"]["deadline"], "30m");
        assert_eq!(patch["spec"]["drain"]["ignoreSystemJobs"], true);
        assert_eq!(patch["spec"]["drain"]["force"], false);
        assert_eq!(patch["spec"]["drain"]["startedAt"], "1970-01-01T00:00:00Z");
        let none = parse(&["n1", "--enable", "--no-deadline"]).unwrap();
        assert_eq!(
            enable_patch(&none, SystemTime::UNIX_EPOCH)["spec"]["drain"]["deadline"],
            "0s"
        );
    }

    #[test]
    fn flags_that_contradict_each_other_are_refused() {
        assert!(parse(&["n1"]).is_err(), "a mode is required");
        assert!(parse(&["n1", "--enable", "--disable"]).is_err());
        assert!(parse(&["n1", "--enable", "--keep-ineligible"]).is_err());
        assert!(parse(&["n1", "--enable", "--force", "--no-deadline"]).is_err());
        assert!(
            parse(&["n1", "--monitor"]).is_ok(),
            "monitor an existing drain"
        );
    }

    #[test]
    fn disable_clears_the_drain_and_restores_eligibility_unless_kept() {
        assert_eq!(
            disable_patch(false),
            json!({"spec": {"drain": null, "schedulingEligibility": "eligible"}})
        );
        assert_eq!(
            disable_patch(true)["spec"]["schedulingEligibility"],
            "ineligible"
        );
    }

    #[test]
    fn the_monitor_reports_marks_and_status_changes_once() {
        let alloc = |marked: bool, status: &str| -> Allocation {
            serde_json::from_value(json!({
                "apiVersion": "caravan.dev/v1", "kind": "Allocation",
                "metadata": {"name": "a1", "namespace": "default"},
                "spec": {"jobName": "web", "group": "web", "nodeName": "n1",
                         "desiredTransition": {"migrate": marked}},
                "status": {"clientStatus": status}}))
            .unwrap()
        };
        let before = BTreeMap::from([("a1".to_string(), seen(&alloc(false, "running")))]);
        assert!(changes(&before, &[alloc(false, "running")]).is_empty());
        assert_eq!(
            changes(&before, &[alloc(true, "running")]),
            ["Alloc \"a1\" marked for migration"]
        );
        let marked = BTreeMap::from([("a1".to_string(), seen(&alloc(true, "running")))]);
        assert_eq!(
            changes(&marked, &[alloc(true, "complete")]),
            ["Alloc \"a1\" status running -> complete"]
        );
    }
}
