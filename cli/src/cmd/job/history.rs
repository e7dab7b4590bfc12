//! `caravan job history JOB [-p]`: the job's kept versions, newest first, in Nomad's layout;
//! with `-p`, what each version changed from the one before it, as `job plan` prints a diff.
//!
//! ```text
//! Version     = 1
//! Stable      = false
//! Submit Date = 2026-01-02T15:04:05Z
//! Diff        =
//! +/- Job: "web"
//! +/- Task Group: "web"
//!   +/- Task: "server"
//!     +/- env[GREETING]: "hello" => "hi"
//! ```

use std::collections::BTreeMap;

use anyhow::Context as _;
use caravan_schemas::{JobVersion, Kind};

use super::HistoryArgs;
use super::diff::{job_diff, render};
use super::format::kv;
use super::run::decode;
use super::versions::list_versions;
use crate::cmd::Context;

pub async fn run(ctx: &Context, args: HistoryArgs) -> anyhow::Result<()> {
    let job = decode(ctx.api(Kind::Job).get(&args.name).await?)?;
    let versions = list_versions(ctx, &job).await?;
    if versions.is_empty() {
        println!("No versions of job {:?} are kept", args.name);
        return Ok(());
    }
    print!("{}", history(&args.name, &versions, args.diff)?);
    Ok(())
}

/// The versions (newest first) as Nomad's `job history` blocks, separated by blank lines;
/// with `diffs`, each but the oldest shows its changes from the next older one.
pub fn history(job: &str, newest_first: &[JobVersion], diffs: bool) -> anyhow::Result<String> {
    let mut blocks = Vec::with_capacity(newest_first.len());
    for (i, version) in newest_first.iter().enumerate() {
        let mut pairs = vec![
            ("Version", version.spec.version.to_string()),
            ("Stable", version.is_stable().to_string()),
            (
                "Submit Date",
                version
                    .metadata
                    .creation_timestamp
                    .clone()
                    .unwrap_or_else(|| "<none>".into()),
            ),
        ];
        let previous = newest_first.get(i + 1).filter(|_| diffs);
        if previous.is_some() {
            pairs.push(("Diff", String::new()));
        }
        let mut block = kv(&pairs);
        if let Some(previous) = previous {
            block.push_str(&version_diff(job, previous, version)?);
        }
        blocks.push(block);
    }
    Ok(blocks.join("\n"))
}

/// What `newer` changed from `older`, rendered as `job plan` renders a diff.
pub fn version_diff(job: &str, older: &JobVersion, newer: &JobVersion) -> anyhow::Result<String> {
    let old = serde_json::to_value(&older.spec.job).context("encoding a job version's spec")?;
    let new = serde_json::to_value(&newer.spec.job).context("encoding a job version's spec")?;
    let diff = job_diff(job, Some(&old), Some(&new));
    Ok(render(&diff, &BTreeMap::new(), false))
}

#[cfg(test)]
mod tests;
