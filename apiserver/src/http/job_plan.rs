//! `POST /apis/caravan.dev/v1/namespaces/{ns}/jobs/{name}/plan` (Nomad's `Job.Plan`): a Job in
//! (JSON or YAML, the body limits of every write), a `JobPlan` out: what registering the job
//! would do, computed by the real scheduler on this server's state. Nothing is written.
//!
//! ```text
//! POST? (405) ─▶ query (fieldValidation) ─▶ body (JSON or YAML, 413 past the limit)
//!             ─▶ crate::job_plan::plan_job ─▶ 200 JobPlan (admission warnings as `Warning` headers)
//! ```

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use caravan_schemas::job_plan::SUBRESOURCE;

use super::body;
use super::error::ApiError;
use super::path::namespaced_action;
use super::query::Query;
use super::respond::{json, with_warnings};
use crate::context::ApiContext;
use crate::job_plan::plan_job;

/// The job a plan path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobPlanPath {
    pub namespace: String,
    pub job: String,
}

impl JobPlanPath {
    /// `Some` only for `…/namespaces/{ns}/jobs/{name}/plan`; every other path is left to the
    /// resource router.
    pub fn parse(path: &str) -> Option<JobPlanPath> {
        let (namespace, job) = namespaced_action(path, "jobs", SUBRESOURCE)?;
        Some(JobPlanPath { namespace, job })
    }
}

/// Handles a request to a job plan path.
pub async fn handle(
    ctx: &ApiContext,
    target: JobPlanPath,
    req: Request,
) -> Result<Response, ApiError> {
    if req.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed(format!(
            "method {} is not allowed on a job plan: POST the Job",
            req.method()
        )));
    }
    let options = Query::parse(req.uri().query())?.write_options();
    let media = body::content_type(req.headers());
    let bytes = body::read(req.into_body()).await?;
    let value = body::decode(&bytes, &media, options.strict()).await?;
    let planned = plan_job(ctx, &target.namespace, &target.job, value, &options).await?;
    Ok(with_warnings(json(200, &planned.plan), &planned.warnings))
}

#[cfg(test)]
mod tests;
