//! `caravan system gc [--force]`: a garbage collection pass on the server now, as
//! `nomad system gc` does, printing what it deleted.

use caravan_controllers::gc::{Deleted, GcSummary};
use clap::{Args, Subcommand};

use crate::cmd::Context;
use crate::cmd::job::format::columns;

/// Arguments of `caravan system`.
#[derive(Debug, Args)]
pub struct SystemArgs {
    #[command(subcommand)]
    pub command: SystemCommand,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Collect garbage now: nodes down for long, dead jobs, old terminal evaluations and
    /// allocations, each past its threshold.
    Gc(GcArgs),
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Ignore the age thresholds (as `nomad system gc` does); nothing live is deleted.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(ctx: &Context, args: SystemArgs) -> anyhow::Result<()> {
    match args.command {
        SystemCommand::Gc(a) => {
            let summary = ctx.client.system_gc(a.force).await?;
            print!("{}", report(&summary));
            if !summary.errors.is_empty() {
                anyhow::bail!(
                    "{} deletion(s) failed:\n  {}",
                    summary.errors.len(),
                    summary.errors.join("\n  ")
                );
            }
            Ok(())
        }
    }
}

fn plural(count: usize, one: &str) -> String {
    if count == 1 {
        format!("{count} {one}")
    } else {
        format!("{count} {one}s")
    }
}

/// What a pass deleted: a count per kind, then one row per object.
pub fn report(summary: &GcSummary) -> String {
    if summary.total() == 0 {
        return "==> Nothing to collect\n".to_string();
    }
    let kinds: [(&str, &Deleted); 5] = [
        ("node", &summary.nodes),
        ("job", &summary.jobs),
        ("evaluation", &summary.evaluations),
        ("allocation", &summary.allocations),
        ("deployment", &summary.deployments),
    ];
    let counts: Vec<String> = kinds
        .iter()
        .map(|(kind, deleted)| plural(deleted.count, kind))
        .collect();
    let mut rows = vec![vec!["Kind".to_string(), "Name".to_string()]];
    for (kind, deleted) in kinds {
        for name in &deleted.names {
            rows.push(vec![kind.to_string(), name.clone()]);
        }
    }
    format!("==> Collected {}\n\n{}", counts.join(", "), columns(&rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deleted(names: &[&str]) -> Deleted {
        Deleted {
            count: names.len(),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn an_empty_pass_says_so() {
        assert_eq!(report(&GcSummary::default()), "==> Nothing to collect\n");
    }

    #[test]
    fn the_report_counts_each_kind_and_lists_every_object() {
        let summary = GcSummary {
            nodes: deleted(&["client-a"]),
            jobs: deleted(&["default/report"]),
            evaluations: deleted(&["default/report-e1", "default/report-e2"]),
            ..GcSummary::default()
        };
        let text = report(&summary);
        assert!(
            text.starts_with(
                "==> Collected 1 node, 1 job, 2 evaluations, 0 allocations, 0 deployments\n\nKind"
            ),
            "{text}"
        );
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(3)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows,
            [
                ["node", "client-a"],
                ["job", "default/report"],
                ["evaluation", "default/report-e1"],
                ["evaluation", "default/report-e2"],
            ]
        );
    }
}
