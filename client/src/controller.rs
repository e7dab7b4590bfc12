//! [`caravan_runtime::Client`] over HTTP: controllers, the evaluator and scheduler workers
//! running out of the server process use this [`HttpClient`].
//!
//! ```text
//!  get / create / patch / delete ──▶ Api verbs
//!  list  ──▶ Api::list_all (follows `continue`), revision of the first page
//!  watch ──▶ Api::watch ──▶ ADDED/MODIFIED/DELETED/BOOKMARK; ERROR 410 ──▶ Err(Gone)
//!  submit_plan ──▶ POST …/namespaces/{ns}/evaluations/{eval}/plan ──▶ PlanResult
//! ```

use caravan_runtime::{self as contract, ClientError, EventStream, ListQuery, Subresource};
use caravan_schemas::plan::{Plan, PlanResult};
use caravan_schemas::{API_VERSION, Kind, Status};
use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;

use crate::client::{HttpClient, Request};
use crate::error::Error;
use crate::params::{DeleteParams, ListParams, PatchParams, PostParams, WatchParams, encode};
use crate::watch::WireEvent;

/// Objects per page when listing for a controller.
const PAGE_SIZE: u32 = 500;

/// The one mapping from a client error to the controllers' [`ClientError`].
pub fn client_error(error: Error) -> ClientError {
    match error {
        Error::Api(status) => status_error(&status),
        Error::InvalidRequest(message) => ClientError::Invalid(message),
        other => ClientError::Unavailable(error_chain(&other)),
    }
}

/// A server `Status` as a [`ClientError`], by code (and reason, for 409).
fn status_error(status: &Status) -> ClientError {
    let message = status.message.clone();
    match status.code {
        404 => ClientError::NotFound,
        409 if status.reason == "AlreadyExists" => ClientError::AlreadyExists,
        409 => ClientError::Conflict(message),
        410 => ClientError::Gone(message),
        // 405: a verb the kind refuses (a client write of a JobVersion); retrying cannot help.
        400 | 405 | 422 => ClientError::Invalid(message),
        code => ClientError::Unavailable(format!("{} ({code}): {message}", status.reason)),
    }
}

/// The error and its sources, e.g. `request to http://a failed: connection refused`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A watch event as the controllers see it; `None` for events they need not see.
fn watch_event(
    event: Result<WireEvent, Error>,
) -> Option<Result<contract::WatchEvent, ClientError>> {
    Some(match event {
        Ok(WireEvent::Added(o)) => Ok(contract::WatchEvent::Added(o)),
        Ok(WireEvent::Modified(o)) => Ok(contract::WatchEvent::Modified(o)),
        Ok(WireEvent::Deleted(o)) => Ok(contract::WatchEvent::Deleted(o)),
        Ok(event @ WireEvent::Bookmark(_)) => {
            // A bookmark without a usable revision carries nothing.
            let rv = event.resource_version()?.parse().ok()?;
            Ok(contract::WatchEvent::Bookmark(rv))
        }
        Ok(WireEvent::Error(status)) => Err(status_error(&status)),
        Err(e) => Err(client_error(e)),
    })
}

fn revision(rv: &str) -> Result<u64, ClientError> {
    if rv.is_empty() {
        return Ok(0);
    }
    rv.parse().map_err(|_| {
        ClientError::Unavailable(format!(
            "the server sent resourceVersion {rv:?}, not a revision"
        ))
    })
}

/// `metadata.namespace`, `default` when absent.
fn namespace_of(object: &Value) -> &str {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty())
        .unwrap_or("default")
}

impl contract::Client for HttpClient {
    async fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Value, ClientError> {
        self.api(kind, Some(namespace))
            .get(name)
            .await
            .map_err(client_error)
    }

    async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
    ) -> Result<contract::ObjectList, ClientError> {
        let params = ListParams {
            label_selector: query.label_selector.clone(),
            field_selector: query.field_selector.clone(),
            limit: Some(PAGE_SIZE),
            continue_token: None,
        };
        let list = self
            .api(kind, namespace)
            .list_all(&params)
            .await
            .map_err(client_error)?;
        Ok(contract::ObjectList {
            resource_version: revision(&list.metadata.resource_version)?,
            items: list.items,
        })
    }

    async fn watch(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        query: &ListQuery,
        resource_version: u64,
    ) -> Result<EventStream, ClientError> {
        let params = WatchParams {
            label_selector: query.label_selector.clone(),
            field_selector: query.field_selector.clone(),
            progress_notify: query.progress,
            ..WatchParams::default()
        };
        let events = self
            .api(kind, namespace)
            .watch(&params, &resource_version.to_string())
            .await
            .map_err(client_error)?;
        Ok(Box::pin(
            events.filter_map(|event| async move { watch_event(event) }),
        ))
    }

    async fn create(&self, kind: Kind, object: Value) -> Result<Value, ClientError> {
        let namespace = namespace_of(&object).to_owned();
        self.api(kind, Some(&namespace))
            .create(&object, &PostParams::default())
            .await
            .map_err(client_error)
    }

    async fn patch_subresource(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: Value,
        subresource: Subresource,
    ) -> Result<Value, ClientError> {
        let api = self.api(kind, Some(namespace));
        let params = PatchParams::default();
        let patched = if subresource == Subresource::Status {
            api.patch_status(name, &patch, &params).await
        } else {
            api.patch_merge(name, &patch, &params).await
        };
        patched.map_err(client_error)
    }

    async fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Result<(), ClientError> {
        self.api(kind, Some(namespace))
            .delete(name, &DeleteParams::default())
            .await
            .map(drop)
            .map_err(client_error)
    }

    async fn delete_at(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> Result<(), ClientError> {
        let params = DeleteParams {
            resource_version: Some(resource_version.to_string()),
            ..DeleteParams::default()
        };
        self.api(kind, Some(namespace))
            .delete(name, &params)
            .await
            .map(drop)
            .map_err(client_error)
    }

    async fn submit_plan(&self, plan: Plan) -> Result<PlanResult, ClientError> {
        let path = plan_path(&plan.namespace, &plan.eval_name);
        let body = serde_json::to_value(&plan).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let req = Request::new(Method::POST, path)
            .json_body("application/json", &body)
            .accept("application/json");
        self.json(req).await.map_err(client_error)
    }
}

/// `/apis/caravan.dev/v1/namespaces/{ns}/evaluations/{eval}/plan`.
fn plan_path(namespace: &str, eval: &str) -> String {
    format!(
        "/apis/{API_VERSION}/namespaces/{}/{}/{}/plan",
        encode(namespace),
        Kind::Evaluation.plural(),
        encode(eval)
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn api_error(code: u16, reason: &str) -> Error {
        Status::failure(code, reason, "boom").into()
    }

    #[test]
    fn server_errors_map_by_code_and_reason() {
        let map = |code, reason| client_error(api_error(code, reason));
        assert_eq!(map(404, "NotFound"), ClientError::NotFound);
        assert_eq!(map(409, "AlreadyExists"), ClientError::AlreadyExists);
        assert_eq!(map(409, "Conflict"), ClientError::Conflict("boom".into()));
        assert_eq!(map(410, "Expired"), ClientError::Gone("boom".into()));
        assert_eq!(map(422, "Invalid"), ClientError::Invalid("boom".into()));
        assert_eq!(map(400, "BadRequest"), ClientError::Invalid("boom".into()));
        assert_eq!(
            map(503, "ServiceUnavailable"),
            ClientError::Unavailable("ServiceUnavailable (503): boom".into())
        );
        assert_eq!(
            client_error(Error::InvalidRequest("no name".into())),
            ClientError::Invalid("no name".into())
        );
    }

    #[test]
    fn watch_events_map_and_an_expired_error_means_gone() {
        let added = watch_event(Ok(WireEvent::Added(json!({"a": 1}))));
        assert_eq!(
            added,
            Some(Ok(contract::WatchEvent::Added(json!({"a": 1}))))
        );
        let bookmark = json!({"kind": "Job", "metadata": {"resourceVersion": "42"}});
        assert_eq!(
            watch_event(Ok(WireEvent::Bookmark(bookmark))),
            Some(Ok(contract::WatchEvent::Bookmark(42)))
        );
        assert_eq!(watch_event(Ok(WireEvent::Bookmark(json!({})))), None);
        let expired = WireEvent::Error(Box::new(Status::failure(410, "Expired", "too old")));
        assert_eq!(
            watch_event(Ok(expired)),
            Some(Err(ClientError::Gone("too old".into())))
        );
    }

    #[test]
    fn plans_post_to_their_evaluation() {
        assert_eq!(
            plan_path("prod", "web-1"),
            "/apis/caravan.dev/v1/namespaces/prod/evaluations/web-1/plan"
        );
        assert_eq!(revision("").unwrap(), 0);
        assert!(revision("x").is_err());
    }
}
