//! `caravan job revert JOB VERSION`: replaces the job's spec with the one kept in JobVersion
//! `<job>-v<VERSION>` (a PUT carrying the resourceVersion the job was read at, so a change
//! made in between is refused, not overwritten), then follows the rollout as `job run` does.

use std::collections::BTreeSet;

use anyhow::{Context as _, bail};
use caravan_client::PostParams;
use caravan_schemas::{Job, JobVersion, Kind};
use serde_json::Value;

use super::RevertArgs;
use super::follow::follow_write;
use super::run::decode;
use super::versions::get_version;
use super::wait::existing_allocs;
use crate::cmd::Context;

pub async fn run(ctx: &Context, args: RevertArgs) -> anyhow::Result<i32> {
    let namespace = ctx.global.namespace().to_owned();
    let name = args.name.as_str();
    let api = ctx.api(Kind::Job);
    let current_value = api.get(name).await?;
    let current = decode(current_value.clone())?;
    let version = get_version(ctx, &current, args.version).await?;
    let body = reverted(&current_value, &current, &version).map_err(anyhow::Error::msg)?;
    let existed = if args.detach {
        BTreeSet::new()
    } else {
        existing_allocs(&ctx.client, &namespace, name).await?
    };
    let written = match api.replace(name, &body, &PostParams::default()).await {
        Ok(written) => decode(written)?,
        Err(e) if e.is_conflict() => bail!("{}", conflict(name, current.version())),
        Err(e) => return Err(e).with_context(|| format!("error reverting job {name:?}")),
    };
    println!(
        "Job {name:?} reverted to the spec of version {}: it is now at version {}",
        args.version,
        written.version()
    );
    if args.detach {
        return Ok(0);
    }
    follow_write(ctx, &namespace, &written, existed, args.timeout).await
}

/// The job to PUT: the job as read (`current_value`, with its resourceVersion) with the spec
/// of `version`. Refused when that spec is the job's current one.
pub fn reverted(
    current_value: &Value,
    current: &Job,
    version: &JobVersion,
) -> Result<Value, String> {
    let name = current.metadata.name();
    let n = version.spec.version;
    if version.spec.job == current.spec {
        return Err(if n == current.version() {
            format!("job {name:?} is at version {n} already: nothing to revert")
        } else {
            format!(
                "version {n} of job {name:?} has the job's current spec (version {}): nothing \
                 to revert",
                current.version()
            )
        });
    }
    let spec = serde_json::to_value(&version.spec.job)
        .map_err(|e| format!("encoding the spec of version {n}: {e}"))?;
    let mut body = current_value.clone();
    let Some(object) = body.as_object_mut() else {
        return Err(format!("the server returned job {name:?} as a non-object"));
    };
    object.insert("spec".into(), spec);
    object.remove("status");
    Ok(body)
}

/// The error of a PUT refused because the job changed after it was read.
pub fn conflict(name: &str, read_version: i64) -> String {
    format!(
        "job {name:?} was changed by another writer after it was read at version \
         {read_version}; nothing was written: check `caravan job history {name}` and run the \
         revert again"
    )
}

#[cfg(test)]
mod tests {
    use caravan_schemas::{JobVersionSpec, mock};
    use serde_json::json;

    use super::*;

    fn version_of(job: &Job, n: i64) -> JobVersion {
        JobVersion {
            spec: JobVersionSpec {
                job_name: job.metadata.name().into(),
                version: n,
                job: job.spec.clone(),
                ..JobVersionSpec::default()
            },
            ..JobVersion::default()
        }
    }

    fn current() -> (Job, Value) {
        let mut job = mock::job("web");
        job.metadata.generation = Some(4);
        job.metadata.resource_version = Some("42".into());
        let mut value = serde_json::to_value(&job).unwrap();
        value["status"] = json!({"status": "running"});
        (job, value)
    }

    #[test]
    fn the_put_keeps_the_metadata_and_takes_the_versions_spec() {
        let (job, value) = current();
        let mut old = version_of(&job, 1);
        old.spec.job.groups[0].count = Some(3);
        let body = reverted(&value, &job, &old).unwrap();
        assert_eq!(body["metadata"]["resourceVersion"], "42");
        assert_eq!(body["metadata"]["name"], "web");
        assert_eq!(body["spec"]["groups"][0]["count"], 3);
        assert_eq!(body["kind"], "Job");
        assert!(body.get("status").is_none());
    }

    #[test]
    fn the_current_spec_is_not_reverted_to() {
        let (job, value) = current();
        assert_eq!(
            reverted(&value, &job, &version_of(&job, 3)).unwrap_err(),
            "job \"web\" is at version 3 already: nothing to revert"
        );
        assert_eq!(
            reverted(&value, &job, &version_of(&job, 1)).unwrap_err(),
            "version 1 of job \"web\" has the job's current spec (version 3): nothing to revert"
        );
    }
}
