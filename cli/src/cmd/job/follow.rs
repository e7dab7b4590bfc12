//! What `job run`, `job revert` and `job scale` follow after writing a job: the evaluation the
//! write created (`wait.rs`), then, when the job's new version gets a deployment, the
//! deployment to its end (`cmd::deployment::follow`).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::bail;
use caravan_schemas::evaluation::TriggeredBy;
use caravan_schemas::{Job, JobType, deployment};

use super::format::revision;
use super::monitor::{Target, exit_code};
use super::wait::monitor;
use crate::cmd::Context;
use crate::cmd::deployment::follow::follow;

/// How long a new version's deployment may take to appear. The job controller creates it
/// before the evaluation, so it normally is there once the evaluation is done.
const DEPLOYMENT_APPEARS_WITHIN: Duration = Duration::from_secs(5);

/// Whether a version of this job gets a deployment: a service job, not stopped, with a group
/// whose update block rolls allocations (`maxParallel` > 0). Jobs without an `update` block
/// get none.
pub fn expects_deployment(job: &Job) -> bool {
    job.spec.job_type() == JobType::Service
        && !job.spec.stop
        && job.spec.groups.iter().any(|g| {
            g.update
                .as_ref()
                .is_some_and(|u| u.max_parallel.unwrap_or(1) > 0)
        })
}

/// The evaluation a write of `job` (as the server answered it) creates.
pub fn register_target(job: &Job) -> Target {
    Target {
        job: job.metadata.name().to_owned(),
        after: revision(&job.metadata),
        min_version: job.version(),
        // A job that stays stopped is evaluated as a deregister.
        triggers: vec![TriggeredBy::JobRegister, TriggeredBy::JobDeregister],
    }
}

/// Follows the evaluation of a write of `job`, then the deployment of its version when it
/// gets one: the exit code is the evaluation's (2 when placements failed); a deployment that
/// fails or is cancelled is an error carrying its description.
pub async fn follow_write(
    ctx: &Context,
    namespace: &str,
    job: &Job,
    existed: BTreeSet<String>,
    timeout: Duration,
) -> anyhow::Result<i32> {
    let outcome = monitor(
        &ctx.client,
        namespace,
        register_target(job),
        existed,
        timeout,
    )
    .await?;
    let code = exit_code(&outcome);
    if !expects_deployment(job) {
        return Ok(code);
    }
    let name = deployment::name_for(job.metadata.name(), job.version());
    match follow(&ctx.client, namespace, &name, DEPLOYMENT_APPEARS_WITHIN).await? {
        Some(end) if !end.succeeded() => {
            let state = end.state.as_str();
            match end.description.as_str() {
                "" => bail!("deployment {name:?} {state}"),
                why => bail!("deployment {name:?} {state}: {why}"),
            }
        }
        _ => Ok(code),
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::job::UpdateStrategy;
    use caravan_schemas::mock;

    use super::*;

    #[test]
    fn only_rolling_service_jobs_get_deployments() {
        let mut job = mock::job("web");
        job.spec.update = None;
        for g in &mut job.spec.groups {
            g.update = None;
        }
        assert!(!expects_deployment(&job), "no update block, no deployment");
        job.spec.groups[0].update = Some(UpdateStrategy {
            max_parallel: Some(0),
            ..UpdateStrategy::default()
        });
        assert!(!expects_deployment(&job), "maxParallel 0 rolls nothing");
        job.spec.groups[0].update = Some(UpdateStrategy {
            max_parallel: Some(2),
            ..UpdateStrategy::default()
        });
        assert!(expects_deployment(&job));
        job.spec.stop = true;
        assert!(!expects_deployment(&job), "a stopped job");
        job.spec.stop = false;
        let mut batch = mock::batch_job("report");
        batch.spec.groups[0].update = job.spec.groups[0].update.clone();
        assert!(
            !expects_deployment(&batch),
            "batch jobs have no deployments"
        );
    }
}
