//! `caravan job inspect JOB [--version N] [-o yaml|json]`: the job as stored, or one of its
//! kept versions shown as a Job (the job's metadata, the version's spec).

use caravan_schemas::{API_VERSION, JobVersion, Kind};
use serde_json::{Value, json};

use super::run::decode;
use super::versions::get_version;
use super::{InspectArgs, InspectFormat};
use crate::cmd::Context;
use crate::output::object::{to_json, to_yaml};

pub async fn run(ctx: &Context, args: InspectArgs) -> anyhow::Result<()> {
    let value = ctx.api(Kind::Job).get(&args.name).await?;
    let object = match args.version {
        None => value,
        Some(n) => {
            let job = decode(value.clone())?;
            let version = get_version(ctx, &job, n).await?;
            version_as_job(&value, &version)?
        }
    };
    match args.output {
        InspectFormat::Json => print!("{}", to_json(&object)),
        InspectFormat::Yaml => print!("{}", to_yaml(&object)?),
    }
    Ok(())
}

/// Version `version` as a Job: `apiVersion` and `kind` of a Job, the metadata of the job as
/// read (`job`), the version's spec, no status.
pub fn version_as_job(job: &Value, version: &JobVersion) -> anyhow::Result<Value> {
    Ok(json!({
        "apiVersion": API_VERSION,
        "kind": Kind::Job.name(),
        "metadata": job.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "spec": serde_json::to_value(&version.spec.job)?,
    }))
}

#[cfg(test)]
mod tests {
    use caravan_schemas::{JobVersionSpec, mock};

    use super::*;

    #[test]
    fn a_version_is_shown_as_a_job_with_the_jobs_metadata() {
        let mut job = mock::job("web");
        job.metadata.generation = Some(5);
        let value = serde_json::to_value(&job).unwrap();
        let mut spec = job.spec.clone();
        spec.groups[0].count = Some(2);
        let version = JobVersion {
            spec: JobVersionSpec {
                job_name: "web".into(),
                version: 1,
                job: spec,
                ..JobVersionSpec::default()
            },
            ..JobVersion::default()
        };
        let shown = version_as_job(&value, &version).unwrap();
        assert_eq!(shown["apiVersion"], API_VERSION);
        assert_eq!(shown["kind"], "Job");
        assert_eq!(shown["metadata"], value["metadata"]);
        assert_eq!(shown["spec"]["groups"][0]["count"], 2);
        assert!(shown.get("status").is_none());
    }
}
