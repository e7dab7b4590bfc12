//! Reading a job's JobVersions (`<job>-v<N>`, written by the servers on every spec change) for
//! `job history`, `job revert` and `job inspect --version`.

use anyhow::{Context as _, bail};
use caravan_schemas::{Job, JobVersion, Kind, job_version};

use super::status::list;
use crate::cmd::Context;

/// The versions of this incarnation of `job` (a job deleted and created again under the same
/// name starts its versions anew), newest first.
pub fn of_job(mut versions: Vec<JobVersion>, job: &Job) -> Vec<JobVersion> {
    let uid = job.metadata.uid.as_deref().unwrap_or("");
    versions.retain(|v| {
        v.spec.job_name == job.metadata.name()
            && (uid.is_empty() || v.spec.job_uid.is_empty() || v.spec.job_uid == uid)
    });
    versions.sort_by_key(|v| std::cmp::Reverse(v.spec.version));
    versions
}

/// The error for a version that is not kept: which ones are.
pub fn missing_version(job: &str, version: i64, newest_first: &[JobVersion]) -> String {
    if newest_first.is_empty() {
        return format!("job {job:?} has no version {version}: no versions are kept");
    }
    let kept: Vec<String> = newest_first
        .iter()
        .map(|v| v.spec.version.to_string())
        .collect();
    format!(
        "job {job:?} has no version {version}; the kept versions are {} (caravan job history {job})",
        kept.join(", ")
    )
}

/// Every kept version of `job`, newest first.
pub async fn list_versions(ctx: &Context, job: &Job) -> anyhow::Result<Vec<JobVersion>> {
    let selector = format!("spec.jobName={}", job.metadata.name());
    let versions = list(ctx, Kind::JobVersion, Some(&selector)).await?;
    Ok(of_job(versions, job))
}

/// Version `version` of `job`; when it is not kept, the error lists the versions that are.
pub async fn get_version(ctx: &Context, job: &Job, version: i64) -> anyhow::Result<JobVersion> {
    let name = job.metadata.name();
    let found = ctx
        .api(Kind::JobVersion)
        .get_opt(&job_version::name_for(name, version))
        .await?;
    let found: Option<JobVersion> = found
        .map(serde_json::from_value)
        .transpose()
        .context("the server returned an undecodable JobVersion")?;
    match found {
        Some(v) if of_job(vec![v.clone()], job).len() == 1 => Ok(v),
        _ => bail!(
            "{}",
            missing_version(name, version, &list_versions(ctx, job).await?)
        ),
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::{JobVersionSpec, ObjectMeta, mock};

    use super::*;

    fn version(job: &str, uid: &str, n: i64) -> JobVersion {
        JobVersion {
            metadata: ObjectMeta {
                name: Some(job_version::name_for(job, n)),
                ..ObjectMeta::default()
            },
            spec: JobVersionSpec {
                job_name: job.into(),
                job_uid: uid.into(),
                version: n,
                ..JobVersionSpec::default()
            },
            ..JobVersion::default()
        }
    }

    #[test]
    fn versions_are_the_jobs_own_newest_first() {
        let mut job = mock::job("web");
        job.metadata.uid = Some("u2".into());
        let all = vec![
            version("web", "u2", 1),
            version("web", "u1", 7),
            version("web", "u2", 3),
            version("api", "u2", 9),
            version("web", "", 2),
        ];
        let kept: Vec<i64> = of_job(all, &job).iter().map(|v| v.spec.version).collect();
        assert_eq!(kept, [3, 2, 1]);
    }

    #[test]
    fn a_missing_version_names_the_kept_ones() {
        let kept = [version("web", "", 5), version("web", "", 4)];
        assert_eq!(
            missing_version("web", 1, &kept),
            "job \"web\" has no version 1; the kept versions are 5, 4 (caravan job history web)"
        );
        assert_eq!(
            missing_version("web", 1, &[]),
            "job \"web\" has no version 1: no versions are kept"
        );
    }
}
