//! `POST /apis/caravan.dev/v1/namespaces/{ns}/evaluations/{name}/plan`: a scheduler submits the
//! plan of an evaluation and gets the `PlanResult` (camelCase JSON) back.
//!
//! ```text
//! body (Plan, JSON or YAML) ─▶ namespace / evalName from the path ─▶ api::submit_plan
//!                                                                       ─▶ 200 PlanResult
//! ```
//!
//! Fields left out of the body take their defaults (an empty `nodeUpdate`, no annotations…).

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use caravan_schemas::plan::Plan;
use serde_json::Value;

use super::body;
use super::error::ApiError;
use super::path::namespaced_action;
use super::respond::json;
use crate::api;
use crate::context::ApiContext;

/// The evaluation a plan path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanPath {
    pub namespace: String,
    pub eval: String,
}

impl PlanPath {
    /// `Some` only for `…/namespaces/{ns}/evaluations/{name}/plan`; every other path is left to
    /// the resource router.
    pub fn parse(path: &str) -> Option<PlanPath> {
        let (namespace, eval) = namespaced_action(path, "evaluations", "plan")?;
        Some(PlanPath { namespace, eval })
    }
}

/// Handles a request to a plan path.
pub async fn handle(
    ctx: &ApiContext,
    target: PlanPath,
    req: Request,
) -> Result<Response, ApiError> {
    if req.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed(format!(
            "method {} is not allowed on a plan: POST it",
            req.method()
        )));
    }
    let media = body::content_type(req.headers());
    let bytes = body::read(req.into_body()).await?;
    let value = body::decode(&bytes, &media, false).await?;
    let plan = decode_plan(value, &target)?;
    let result = api::submit_plan(ctx, plan).await?;
    Ok(json(200, &result))
}

/// The plan in `value`, with defaults for missing fields and the path's namespace and
/// evaluation; a body naming others is refused.
fn decode_plan(mut value: Value, target: &PlanPath) -> Result<Plan, ApiError> {
    if let (Some(body), Ok(Value::Object(defaults))) =
        (value.as_object_mut(), serde_json::to_value(Plan::default()))
    {
        for (field, default) in defaults {
            body.entry(field).or_insert(default);
        }
    }
    let mut plan: Plan = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("the body is not a plan: {e}")))?;
    for (what, field, wanted) in [
        ("namespace", &mut plan.namespace, &target.namespace),
        ("evaluation", &mut plan.eval_name, &target.eval),
    ] {
        if field.is_empty() {
            field.clone_from(wanted);
        } else if field != wanted {
            return Err(ApiError::bad_request(format!(
                "the {what} of the plan ({field}) does not match the {what} sent on the request ({wanted})"
            )));
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::http::path::PREFIX;

    fn target() -> PlanPath {
        PlanPath {
            namespace: "default".to_owned(),
            eval: "e1".to_owned(),
        }
    }

    #[test]
    fn only_plan_paths_match() {
        assert_eq!(
            PlanPath::parse(&format!("{PREFIX}namespaces/default/evaluations/e1/plan")),
            Some(target())
        );
        for other in [
            "namespaces/default/evaluations/e1",
            "namespaces/default/evaluations/e1/status",
            "namespaces/default/jobs/e1/plan",
            "namespaces//evaluations/e1/plan",
            "evaluations/e1/plan",
        ] {
            assert_eq!(
                PlanPath::parse(&format!("{PREFIX}{other}")),
                None,
                "{other}"
            );
        }
    }

    #[test]
    fn missing_fields_default_and_the_path_fills_namespace_and_eval() {
        let plan = decode_plan(json!({"jobName": "web"}), &target()).expect("plan");
        assert_eq!(
            (
                plan.namespace.as_str(),
                plan.eval_name.as_str(),
                plan.job_name.as_str()
            ),
            ("default", "e1", "web")
        );
        assert!(plan.is_no_op());
    }

    #[test]
    fn another_namespace_or_eval_is_refused() {
        let err = decode_plan(json!({"namespace": "prod"}), &target());
        assert!(matches!(err, Err(ApiError::Api(api::Error::BadRequest(_)))));
        let err = decode_plan(json!({"evalName": "e2"}), &target());
        assert!(matches!(err, Err(ApiError::Api(api::Error::BadRequest(_)))));
        let err = decode_plan(json!({"nodeUpdate": 3}), &target());
        assert!(matches!(err, Err(ApiError::Api(api::Error::BadRequest(_)))));
    }
}
